//! Mail delivery against a real SMTP receiver (Python's aiosmtpd on loopback): arrival,
//! retries with backoff, restarts, erasure, expiry and refusals.

use std::sync::atomic::Ordering;
use std::time::Duration;

use custos_core::crypto::RootKey;
use custos_core::ids::SubjectId;
use custos_vault::testing::{SmtpSink, free_port};
use custos_vault::{Clock, Principal, VaultError};

use crate::support::{HOUR, mail, row, smtp, sqlite_env, subject};

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
