//! Mail through the real `custos serve`: where it says mail goes, files by default, and an
//! SMTP relay that is down while the server restarts, with nothing lost and no address or
//! body in the logs or the data directory.

use std::path::Path;
use std::time::{Duration, Instant};

use custos_core::mail::Mail;
use custos_core::personal::PersonalValue;
use custos_vault::testing::{SmtpSink, free_port};
use custos_vault::{Paths, Vault};

use crate::{Server, custos};

const HOUR: i64 = 3_600_000;

fn init() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let o = custos(dir.path(), &["init"]);
    assert!(o.status.success(), "{}", crate::stderr(&o));
    dir
}

/// Queues messages from outside the server, as the portal will from inside it.
async fn enqueue(dir: &Path, messages: &[(&str, &str, &str)]) {
    let vault = Vault::open(&Paths::in_dir(dir)).await.unwrap();
    let expires = chrono_now_ms() + HOUR;
    for (to, subject, text) in messages {
        let mail = Mail::new(&PersonalValue::text(*to), *subject, *text).unwrap();
        vault.enqueue_mail(None, mail, expires).await.unwrap();
    }
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn log_of(s: &Server) -> String {
    std::fs::read_to_string(&s.log).unwrap_or_default()
}

/// Waits until `f` holds, or fails after `secs` with `what`.
fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(secs), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_mail_section_serve_writes_mail_as_files_and_says_where() {
    let dir = init();
    enqueue(dir.path(), &[("ada@example.com", "Hello", "A file.")]).await;
    let server = Server::start(dir.path(), &[]);
    let mail_dir = dir.path().join("mail");
    assert!(
        log_of(&server).contains(&format!("mail: files in {}\n", mail_dir.display())),
        "{}",
        log_of(&server)
    );
    eventually(10, "the message was not written", || {
        std::fs::read_dir(&mail_dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|e| e.path().extension().is_some_and(|x| x == "eml"))
            })
            .unwrap_or(false)
    });
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_queued_while_the_relay_is_down_arrives_after_a_restart_and_leaks_nowhere() {
    const ADDRESS: &str = "canary-e2e-31b7@example.com";
    const BOUNCE: &str = "bounce-canary-e2e-31b7@example.com";
    const SUBJECT: &str = "canary-e2e-subject";
    const BODY: &str = "canary-e2e-body";
    let dir = init();
    let port = free_port();
    let toml = dir.path().join("custos.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(&format!(
        "\n[mail]\nfrom = \"Example Shop <privacy@shop.example>\"\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n"
    ));
    std::fs::write(&toml, text).unwrap();
    enqueue(
        dir.path(),
        &[(ADDRESS, SUBJECT, BODY), (BOUNCE, SUBJECT, BODY)],
    )
    .await;

    // Nothing listens on the port: the server tries, fails, and is killed.
    let first = Server::start(dir.path(), &[]);
    assert!(
        log_of(&first).contains(&format!("mail: smtp 127.0.0.1:{port} (none)\n")),
        "{}",
        log_of(&first)
    );
    eventually(10, "no attempt was logged", || {
        log_of(&first).contains("mail not delivered yet; will retry")
    });
    // Past the mark that follows the log line: a claim held at the kill would wait out its
    // lease (a minute) before another server takes it.
    std::thread::sleep(Duration::from_millis(300));
    let mut logs = log_of(&first);
    first.kill();

    let sink = SmtpSink::start_on(port);
    let second = Server::start(dir.path(), &[]);
    let got = sink.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 1, "the queued message arrived after the restart");
    assert_eq!(got[0].rcpt_tos, [ADDRESS]);
    assert_eq!(got[0].subject, SUBJECT);
    assert_eq!(got[0].body.trim_end(), BODY);
    eventually(10, "the bounce was not given up", || {
        log_of(&second).contains("mail given up")
    });
    logs.push_str(&second.stop());

    // The relay's refusal quoted the address; neither the logs nor any file repeat it.
    for canary in ["canary-e2e"] {
        assert!(!logs.contains(canary), "{canary} in the server's logs");
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                    "{canary} in {}",
                    path.display()
                );
            }
        }
    }
}
