//! The conformance tests of the outbox, written against `dyn Store` only.

use std::collections::BTreeSet;
use std::sync::Arc;

use custos_core::ids::{MailId, SubjectId};
use custos_store::{CopyRow, OutboxCounts, OutboxRow, Store, StoreError, Table};

use crate::suite::insert;

fn queued(subject: Option<SubjectId>, now_ms: i64, expires_ms: i64) -> OutboxRow {
    OutboxRow::queued(
        MailId::random(),
        subject,
        now_ms,
        expires_ms,
        b"ct-sealed".to_vec(),
    )
}

/// Every outbox row, as `db copy` reads them.
async fn rows(store: &dyn Store) -> Vec<OutboxRow> {
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
    rows(store).await.into_iter().find(|r| r.id == id).unwrap()
}

/// Only due, unfinished, unclaimed (or lapsed) messages are claimed, expired ones included;
/// only the holder of a claim marks it; a subject without a key queues nothing.
pub(crate) async fn mail_is_claimed_when_due_and_marked_only_by_its_holder(store: Arc<dyn Store>) {
    let subject = insert(store.as_ref(), 1).await.subject_id;
    let a = queued(None, 1_000, 60_000);
    let mut b = queued(Some(subject), 1_000, 60_000);
    b.next_attempt_ms = 5_000;
    let c = queued(None, 500, 900);
    for r in [&a, &b, &c] {
        store.enqueue_mail(r.clone()).await.unwrap();
    }
    assert!(matches!(
        store.enqueue_mail(a.clone()).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .enqueue_mail(queued(Some(SubjectId::random()), 1_000, 60_000))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(rows(store.as_ref()).await.len(), 3);

    // Due now: a, and c, expired, so that it can be given up.
    let got = store.claim_mail("s1", 1_000, 500, 10).await.unwrap();
    assert_eq!(
        got.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![c.id, a.id]
    );
    assert!(got.iter().all(|r| r.attempts == 1
        && r.claimed_by.as_deref() == Some("s1")
        && r.claimed_until_ms == Some(1_500)));
    assert_eq!(got[1].sealed, b"ct-sealed");
    assert!(
        store
            .claim_mail("s2", 1_200, 500, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.mail_sent(a.id, "s2", 1_300).await,
        Err(StoreError::Conflict(_))
    ));
    store.mail_sent(a.id, "s1", 1_300).await.unwrap();
    assert!(matches!(
        store.mail_sent(a.id, "s1", 1_300).await,
        Err(StoreError::Conflict(_))
    ));
    let sent = row(store.as_ref(), a.id).await;
    assert_eq!(sent.sent_ms, Some(1_300));
    assert_eq!(sent.claimed_by, None);
    assert!(sent.sealed.is_empty(), "a sent message's ciphertext goes");
    store
        .mail_failed(c.id, "s1", 1_300, "expired")
        .await
        .unwrap();
    let failed = row(store.as_ref(), c.id).await;
    assert_eq!(
        (failed.failed_ms, failed.last_error.as_deref()),
        (Some(1_300), Some("expired"))
    );
    assert!(failed.sealed.is_empty());
    assert!(matches!(
        store.mail_retry(c.id, "s1", 2_000, "again").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.outbox_counts().await.unwrap(),
        OutboxCounts {
            queued: 1,
            sent: 1,
            failed: 1
        }
    );

    // b is due at 5 s; s1's claim lapses and s2 takes it over: s1 can no longer mark it.
    assert!(
        store
            .claim_mail("s1", 4_999, 500, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.claim_mail("s1", 5_000, 500, 10).await.unwrap()[0].id,
        b.id
    );
    assert!(
        store
            .claim_mail("s2", 5_499, 500, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let taken = store.claim_mail("s2", 5_500, 500, 10).await.unwrap();
    assert_eq!((taken[0].id, taken[0].attempts), (b.id, 2));
    assert!(matches!(
        store.mail_retry(b.id, "s1", 9_000, "refused").await,
        Err(StoreError::Conflict(_))
    ));
    store
        .mail_retry(b.id, "s2", 9_000, "connection refused")
        .await
        .unwrap();
    let waiting = row(store.as_ref(), b.id).await;
    assert_eq!(waiting.claimed_by, None);
    assert_eq!(waiting.last_error.as_deref(), Some("connection refused"));
    assert_eq!(
        waiting.sealed, b"ct-sealed",
        "a message waiting keeps its ciphertext"
    );
    assert!(
        store
            .claim_mail("s1", 8_999, 500, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_mail("s1", 9_000, 500, 1).await.unwrap();
    assert_eq!((again[0].id, again[0].attempts), (b.id, 3));
    assert_eq!(again[0].subject_id, Some(subject));
}

/// Two servers claiming at once, over and over, never both get one message, and between
/// them deliver each.
pub(crate) async fn two_concurrent_claimers_never_get_the_same_row(store: Arc<dyn Store>) {
    let mut all = BTreeSet::new();
    for _ in 0..120 {
        let r = queued(None, 1_000, 60_000);
        all.insert(r.id);
        store.enqueue_mail(r).await.unwrap();
    }
    let claimer = |store: Arc<dyn Store>, holder: &'static str| async move {
        let mut mine = Vec::new();
        loop {
            let got = store.claim_mail(holder, 2_000, 60_000, 7).await.unwrap();
            if got.is_empty() {
                return mine;
            }
            for r in got {
                store.mail_sent(r.id, holder, 2_000).await.unwrap();
                mine.push(r.id);
            }
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(claimer(store.clone(), "a")),
        tokio::spawn(claimer(store.clone(), "b"))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (sa, sb): (BTreeSet<_>, BTreeSet<_>) =
        (a.iter().copied().collect(), b.iter().copied().collect());
    assert_eq!(
        sa.len() + sb.len(),
        a.len() + b.len(),
        "no claimer got one twice"
    );
    assert!(sa.is_disjoint(&sb), "a message claimed by both");
    assert_eq!(&sa | &sb, all);
    assert_eq!(
        store.outbox_counts().await.unwrap(),
        OutboxCounts {
            queued: 0,
            sent: 120,
            failed: 0
        }
    );
}

/// `db copy` moves the outbox as stored, claims and ciphertexts included, once.
pub(crate) async fn the_outbox_is_copied_as_stored(from: Arc<dyn Store>, to: Arc<dyn Store>) {
    let subject = insert(from.as_ref(), 1).await.subject_id;
    for i in 0..5 {
        let s = (i % 2 == 0).then_some(subject);
        from.enqueue_mail(queued(s, 1_000 + i, 60_000))
            .await
            .unwrap();
    }
    let claimed = from.claim_mail("s1", 1_002, 500, 2).await.unwrap();
    from.mail_sent(claimed[0].id, "s1", 1_100).await.unwrap();
    let mut copied = Vec::new();
    let mut after = None;
    loop {
        let page = from.export(Table::Outbox, after, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        copied.extend(page);
    }
    to.import(copied.clone()).await.unwrap();
    to.import(copied).await.unwrap();
    assert_eq!(rows(to.as_ref()).await, rows(from.as_ref()).await);
    assert_eq!(to.count(Table::Outbox).await.unwrap(), (5, 0));
    assert_eq!(
        to.outbox_counts().await.unwrap(),
        from.outbox_counts().await.unwrap()
    );
}
