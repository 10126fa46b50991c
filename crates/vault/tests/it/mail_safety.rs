//! What mail must not do: leave an address or a body in the database, show a credential, or
//! arrive twice from two vaults on one PostgreSQL; and the file transport's files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use custos_core::crypto::RootKey;
use custos_core::ids::MailId;
use custos_core::inventory::{CredentialVars, MailConfig, MailTransport, SmtpConfig, SmtpSecurity};
use custos_core::mail::Mail;
use custos_core::personal::PersonalValue;
use custos_vault::testing::{SmtpSink, free_port};
use custos_vault::{Clock, Transport, Vault, VaultError};

use crate::support::{HOUR, mail, smtp, sqlite_env, subject, two_on_postgres};

#[tokio::test(flavor = "multi_thread")]
async fn the_file_transport_writes_a_parseable_eml_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let root = RootKey::generate(1).unwrap();
    let e = sqlite_env(dir.path(), &root).await;
    let t = Transport::from_config(&e.vault.inventory().mail, dir.path()).unwrap();
    let mail_dir = dir.path().join("mail");
    assert_eq!(t.to_string(), format!("files in {}", mail_dir.display()));
    let meta = std::fs::metadata(&mail_dir).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let id = e
        .vault
        .enqueue_mail(
            None,
            mail(
                "ada@example.com",
                "Your sign-in code",
                "Code: 482913\nValid 15 minutes.\n",
            ),
            e.clock.now_ms() + HOUR,
        )
        .await
        .unwrap();
    assert_eq!(e.vault.deliver_mail(&t, "test").await.unwrap().sent, 1);
    let names: Vec<String> = std::fs::read_dir(&mail_dir)
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        [format!("20260101T000000000Z-{id}.eml")],
        "no temporary file is left"
    );
    let path = mail_dir.join(&names[0]);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let parsed = std::process::Command::new("python3")
        .args([
            "-c",
            "import email, email.policy, sys\n\
             m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\n\
             print(m['From']); print(m['To']); print(m['Subject']); print(m['Message-ID'])\n\
             print(m.get_body(preferencelist=('plain',)).get_content(), end='')",
        ])
        .arg(&path)
        .output()
        .expect("python3 parses the message");
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    assert_eq!(
        String::from_utf8(parsed.stdout).unwrap(),
        format!(
            "Example Shop Ltd <privacy@shop.example>\nada@example.com\nYour sign-in code\n<{id}@shop.example>\nCode: 482913\nValid 15 minutes.\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_credential_variable_is_named_and_no_value_shown() {
    let config = MailConfig {
        from: "privacy@shop.example".parse().unwrap(),
        transport: MailTransport::Smtp(SmtpConfig {
            host: "smtp.example.com".into(),
            port: 587,
            security: SmtpSecurity::Starttls,
            credentials: Some(CredentialVars {
                username_env: "PATH".into(),
                password_env: "CUSTOS_TEST_UNSET_SMTP_PASSWORD".into(),
            }),
        }),
    };
    let e = Transport::from_config(&config, Path::new("/")).unwrap_err();
    let VaultError::Setup(m) = &e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains("CUSTOS_TEST_UNSET_SMTP_PASSWORD, which is not set"),
        "{m}"
    );
    let path = std::env::var("PATH").unwrap();
    assert!(!m.contains(&path), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_address_subject_or_body_is_in_any_byte_of_the_database() {
    const ADDRESS: &str = "canary-addr-5c1e@example.com";
    const SUBJECT: &str = "canary-subject-77d2";
    const BODY: &str = "canary-body-90af";
    let dir = tempfile::tempdir().unwrap();
    let root = RootKey::generate(1).unwrap();
    let e = sqlite_env(dir.path(), &root).await;
    let about = subject(&e.vault).await;
    for s in [None, Some(about)] {
        e.vault
            .enqueue_mail(s, mail(ADDRESS, SUBJECT, BODY), e.clock.now_ms() + HOUR)
            .await
            .unwrap();
    }
    // A failed attempt notes its reason: the reason holds none of them either.
    let r = e
        .vault
        .deliver_mail(&smtp(free_port()), "test")
        .await
        .unwrap();
    assert_eq!(r.retried, 2);
    drop(e);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            for canary in [ADDRESS, SUBJECT, BODY, "canary-"] {
                assert!(
                    !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                    "{canary} found in {}",
                    path.display()
                );
            }
        }
    }
}

/// Enqueues `n` messages from `vault`, each to its own address.
async fn enqueue_many(vault: &Vault, tag: &str, n: usize, expires: i64) -> Vec<MailId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let to = format!("user{i}-{tag}@example.com");
        ids.push(
            vault
                .enqueue_mail(None, mail(&to, "Hi", &format!("message {tag}{i}")), expires)
                .await
                .unwrap(),
        );
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn two_vaults_on_one_postgres_deliver_fifty_messages_exactly_once() {
    let Some((schema, a, b)) = two_on_postgres().await else {
        return;
    };
    let expires = a.clock.now_ms() + HOUR;
    // Both create the outbox key at once: one stores it, the other uses theirs.
    let (ia, ib) = tokio::join!(
        enqueue_many(&a.vault, "a", 25, expires),
        enqueue_many(&b.vault, "b", 25, expires)
    );
    let sink = SmtpSink::start();
    let round = |env: Arc<Vault>, holder: &'static str, port: u16| async move {
        let t = smtp(port);
        let mut sent = 0;
        for _ in 0..200 {
            let r = env.deliver_mail(&t, holder).await.unwrap();
            sent += r.sent;
            assert_eq!(r.failed + r.retried, 0, "{r:?}");
            if r.claimed == 0 {
                break;
            }
        }
        sent
    };
    let (sa, sb) = tokio::join!(
        tokio::spawn(round(a.vault.clone(), "server-a", sink.port())),
        tokio::spawn(round(b.vault.clone(), "server-b", sink.port()))
    );
    assert_eq!(sa.unwrap() + sb.unwrap(), 50);
    let got = sink.wait_for(50, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_again = sink.received();
    assert_eq!((got.len(), got_again.len()), (50, 50));
    let mut ids: Vec<String> = got_again.iter().map(|m| m.message_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50, "each message arrived exactly once");
    let mut want: Vec<String> = ia
        .iter()
        .chain(&ib)
        .map(|id| format!("<{id}@shop.example>"))
        .collect();
    want.sort();
    assert_eq!(ids, want);
    let counts = a.store.outbox_counts().await.unwrap();
    assert_eq!((counts.queued, counts.sent), (0, 50));

    // The table holds no address and no body as text, sent or queued.
    enqueue_many(&a.vault, "canary-pg", 1, expires).await;
    let client = custos_store::testing::connect(&schema.url).await;
    let text: String = client
        .query_one(
            "SELECT coalesce(string_agg(o::text, ' '), '') FROM outbox o",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    for canary in ["@example.com", "canary-pg", "message "] {
        assert!(!text.contains(canary), "{canary} in the outbox table");
    }
}

#[test]
fn a_message_the_caller_got_wrong_is_invalid_naming_its_part() {
    let cases = [
        (
            Mail::new(&PersonalValue::text("nobody"), "s", "t"),
            "to",
            "mail_recipient",
        ),
        (
            Mail::new(&PersonalValue::text("a@example.com"), "", "t"),
            "subject",
            "mail_subject",
        ),
        (
            Mail::new(&PersonalValue::text("a@example.com"), "s", "\u{7}"),
            "text",
            "mail_text",
        ),
    ];
    for (made, want_field, want_rule) in cases {
        match VaultError::from(made.unwrap_err()) {
            VaultError::Invalid {
                field,
                rule,
                message,
                ..
            } => {
                assert_eq!(
                    (field.as_deref(), rule.as_str()),
                    (Some(want_field), want_rule)
                );
                assert!(!message.contains("nobody"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
