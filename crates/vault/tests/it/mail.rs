//! Mail delivery against a real SMTP receiver (Python's aiosmtpd on loopback): arrival,
//! retries with backoff, expiry, refusals, erasure, restarts, two vaults on one PostgreSQL,
//! the file transport, and canaries.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use custos_core::crypto::RootKey;
use custos_core::ids::{MailId, SubjectId};
use custos_core::inventory::{
    CredentialVars, EXAMPLE, Inventory, MailConfig, MailTransport, SmtpConfig, SmtpSecurity,
};
use custos_core::mail::Mail;
use custos_core::personal::PersonalValue;
use custos_store::{CopyRow, Location, OutboxRow, Store, Table};
use custos_vault::testing::{SmtpSink, free_port};
use custos_vault::{Clock, Principal, Transport, Vault, VaultError};

/// A clock the test moves.
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// A vault over `store` with a clock of the test's own.
struct Env {
    vault: Arc<Vault>,
    store: Arc<dyn Store>,
    clock: Arc<TestClock>,
}

fn root_copy(root: &RootKey) -> RootKey {
    RootKey::from_file_contents(root.to_file_contents().expose_secret()).unwrap()
}

async fn env_on(store: Arc<dyn Store>, root: &RootKey, clock: Arc<TestClock>) -> Env {
    let inventory = Inventory::from_toml(EXAMPLE).unwrap();
    let vault = Vault::with_store(store.clone(), inventory, root_copy(root), clock.clone())
        .await
        .unwrap();
    Env {
        vault: Arc::new(vault),
        store,
        clock,
    }
}

async fn sqlite_env(dir: &Path, root: &RootKey) -> Env {
    let store = custos_store::open(&Location::Sqlite(dir.join("custos.db")))
        .await
        .unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(1_767_225_600_000)));
    env_on(store, root, clock).await
}

/// SMTP in clear to a loopback port, as the inventory allows only there.
fn smtp(port: u16) -> Transport {
    let config = MailConfig {
        from: "Example Shop Ltd <privacy@shop.example>".parse().unwrap(),
        transport: MailTransport::Smtp(SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            security: SmtpSecurity::None,
            credentials: None,
        }),
    };
    Transport::from_config(&config, Path::new("/nonexistent")).unwrap()
}

fn mail(to: &str, subject: &str, text: &str) -> Mail {
    Mail::new(&PersonalValue::text(to), subject, text).unwrap()
}

async fn outbox(store: &dyn Store) -> Vec<OutboxRow> {
    store
        .export(Table::Outbox, None, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| match r {
            CopyRow::Mail(m) => m,
            other => panic!("{other:?}"),
        })
        .collect()
}

async fn row(store: &dyn Store, id: MailId) -> OutboxRow {
    outbox(store)
        .await
        .into_iter()
        .find(|r| r.id == id)
        .unwrap()
}

async fn subject(vault: &Vault) -> SubjectId {
    vault
        .put_record(
            &Principal::Cli,
            "customers",
            None,
            &custos_vault::demo_customer(3),
        )
        .await
        .unwrap()
        .subject_id
}

const HOUR: i64 = 3_600_000;

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_message_arrives_over_smtp_once_with_its_recipient_subject_and_body() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let root = RootKey::generate(1).unwrap();
    let e = sqlite_env(dir.path(), &root).await;
    let expires = e.clock.now_ms() + HOUR;
    let about = subject(&e.vault).await;
    let id = e
        .vault
        .enqueue_mail(
            Some(about),
            mail(
                "Ada.Lovelace@Example.COM",
                "Your sign-in code",
                "Your code is 482913.\n",
            ),
            expires,
        )
        .await
        .unwrap();
    let t = smtp(sink.port());
    assert_eq!(
        t.to_string(),
        format!("smtp 127.0.0.1:{} (none)", sink.port())
    );
    let r = e.vault.deliver_mail(&t, "test").await.unwrap();
    assert_eq!((r.claimed, r.sent, r.retried, r.failed), (1, 1, 0, 0));
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.rcpt_tos, ["Ada.Lovelace@example.com"]);
    assert_eq!(m.mail_from, "privacy@shop.example");
    assert_eq!(m.to, "Ada.Lovelace@example.com");
    assert_eq!(m.from, "Example Shop Ltd <privacy@shop.example>");
    assert_eq!(m.subject, "Your sign-in code");
    assert_eq!(m.body.trim_end(), "Your code is 482913.");
    assert_eq!(m.message_id, format!("<{id}@shop.example>"));

    let sent = row(e.store.as_ref(), id).await;
    assert!(sent.sent_ms.is_some() && sent.sealed.is_empty(), "{sent:?}");
    assert_eq!(sent.subject_id, Some(about));
    e.clock.advance(HOUR / 2);
    let again = e.vault.deliver_mail(&t, "test").await.unwrap();
    assert_eq!(again.claimed, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1, "sent once");
    let counts = e.vault.outbox_counts().await.unwrap();
    assert_eq!((counts.queued, counts.sent, counts.failed), (0, 1, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_is_retried_with_backoff_until_the_sink_starts() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let root = RootKey::generate(1).unwrap();
    let e = sqlite_env(dir.path(), &root).await;
    let t = smtp(port);
    let start = e.clock.now_ms();
    let id = e
        .vault
        .enqueue_mail(
            None,
            mail("grace@example.com", "Hello", "Retried."),
            start + HOUR,
        )
        .await
        .unwrap();
    let r = e.vault.deliver_mail(&t, "test").await.unwrap();
    assert_eq!((r.claimed, r.retried), (1, 1));
    let waiting = row(e.store.as_ref(), id).await;
    assert_eq!(
        (waiting.attempts, waiting.next_attempt_ms),
        (1, start + 1_000)
    );
    assert_eq!(
        waiting.last_error.as_deref(),
        Some("the relay could not be reached or broke off the conversation")
    );
    // Not due yet: nothing is tried.
    assert_eq!(e.vault.deliver_mail(&t, "test").await.unwrap().claimed, 0);
    e.clock.advance(1_000);
    assert_eq!(e.vault.deliver_mail(&t, "test").await.unwrap().retried, 1);
    let waiting = row(e.store.as_ref(), id).await;
    assert_eq!(
        (waiting.attempts, waiting.next_attempt_ms),
        (2, start + 3_000)
    );
    e.clock.advance(1_999);
    assert_eq!(e.vault.deliver_mail(&t, "test").await.unwrap().claimed, 0);

    let sink = SmtpSink::start_on(port);
    e.clock.advance(1);
    let r = e.vault.deliver_mail(&t, "test").await.unwrap();
    assert_eq!((r.claimed, r.sent), (1, 1));
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body.trim_end(), "Retried.");
    assert_eq!(row(e.store.as_ref(), id).await.attempts, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_queued_is_lost_when_the_vault_is_reopened() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let root = RootKey::generate(1).unwrap();
    let (id, now) = {
        let e = sqlite_env(dir.path(), &root).await;
        let id = e
            .vault
            .enqueue_mail(
                None,
                mail("alan@example.com", "Kept", "Survives."),
                e.clock.now_ms() + HOUR,
            )
            .await
            .unwrap();
        assert_eq!(
            e.vault
                .deliver_mail(&smtp(port), "before")
                .await
                .unwrap()
                .retried,
            1
        );
        (id, e.clock.now_ms())
    };
    // The vault and its store are gone; a new one opens the same file.
    let sink = SmtpSink::start_on(port);
    let e = sqlite_env(dir.path(), &root).await;
    e.clock.0.store(now + 5_000, Ordering::SeqCst);
    let r = e.vault.deliver_mail(&smtp(port), "after").await.unwrap();
    assert_eq!(r.sent, 1);
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, format!("<{id}@shop.example>"));
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_about_an_erased_subject_is_given_up_and_no_more_is_queued() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let root = RootKey::generate(1).unwrap();
    let e = sqlite_env(dir.path(), &root).await;
    let about = subject(&e.vault).await;
    let expires = e.clock.now_ms() + HOUR;
    let id = e
        .vault
        .enqueue_mail(
            Some(about),
            mail("edsger@example.com", "Code", "123456"),
            expires,
        )
        .await
        .unwrap();
    e.vault.erase_subject(&Principal::Cli, about).await.unwrap();
    let r = e
        .vault
        .deliver_mail(&smtp(sink.port()), "test")
        .await
        .unwrap();
    assert_eq!((r.claimed, r.failed, r.sent), (1, 1, 0));
    let failed = row(e.store.as_ref(), id).await;
    assert_eq!(failed.last_error.as_deref(), Some("subject erased"));
    assert!(failed.sealed.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.received().is_empty());
    let again = e
        .vault
        .enqueue_mail(
            Some(about),
            mail("edsger@example.com", "Code", "1"),
            expires,
        )
        .await;
    assert!(
        matches!(again, Err(VaultError::NotFound("subject"))),
        "{again:?}"
    );
    let unknown = e
        .vault
        .enqueue_mail(
            Some(SubjectId::random()),
            mail("x@example.com", "Code", "1"),
            expires,
        )
        .await;
    assert!(
        matches!(unknown, Err(VaultError::NotFound("subject"))),
        "{unknown:?}"
    );
    let past = e
        .vault
        .enqueue_mail(None, mail("x@example.com", "Code", "1"), e.clock.now_ms())
        .await;
    assert!(matches!(past, Err(VaultError::Invalid { .. })), "{past:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_gives_up_and_a_refusal_for_good_is_not_retried() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let root = RootKey::generate(1).unwrap();
    let e = sqlite_env(dir.path(), &root).await;
    let now = e.clock.now_ms();
    let t = smtp(sink.port());
    let bounce = e
        .vault
        .enqueue_mail(
            None,
            mail("bounce-canary@example.com", "s", "t"),
            now + HOUR,
        )
        .await
        .unwrap();
    let later = e
        .vault
        .enqueue_mail(
            None,
            mail("later-canary@example.com", "s", "t"),
            now + 1_500,
        )
        .await
        .unwrap();
    let r = e.vault.deliver_mail(&t, "test").await.unwrap();
    assert_eq!((r.claimed, r.failed, r.retried), (2, 1, 1));
    let b = row(e.store.as_ref(), bounce).await;
    assert_eq!(
        b.last_error.as_deref(),
        Some("the relay refused the message for good (SMTP 550)")
    );
    let l = row(e.store.as_ref(), later).await;
    assert_eq!(
        l.last_error.as_deref(),
        Some("the relay refused the message for now (SMTP 451)")
    );
    assert_eq!(l.next_attempt_ms, now + 1_000);
    // The next wait would end past the expiry: the last round is at the expiry, and gives up.
    e.clock.advance(1_000);
    assert_eq!(e.vault.deliver_mail(&t, "test").await.unwrap().retried, 1);
    assert_eq!(
        row(e.store.as_ref(), later).await.next_attempt_ms,
        now + 1_500
    );
    e.clock.advance(500);
    let r = e.vault.deliver_mail(&t, "test").await.unwrap();
    assert_eq!((r.claimed, r.failed), (1, 1));
    let l = row(e.store.as_ref(), later).await;
    assert_eq!(
        l.last_error.as_deref(),
        Some("expired before it could be sent")
    );
    let counts = e.store.outbox_counts().await.unwrap();
    assert_eq!((counts.queued, counts.sent, counts.failed), (0, 0, 2));
}

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
    let Some(schema) = custos_store::testing::Schema::create().await else {
        return;
    };
    let location = Location::Postgres(schema.url.clone());
    custos_store::migrate(&location).await.unwrap();
    let root = RootKey::generate(1).unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(1_767_225_600_000)));
    let a = env_on(
        custos_store::open(&location).await.unwrap(),
        &root,
        clock.clone(),
    )
    .await;
    let b = env_on(
        custos_store::open(&location).await.unwrap(),
        &root,
        clock.clone(),
    )
    .await;
    let expires = clock.now_ms() + HOUR;
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
