//! Sign-in challenges and sessions, on every backend.

use std::sync::Arc;

use custos_core::ids::SubjectId;
use custos_core::signin::Counts;
use custos_store::{ChallengeRow, SessionRow, Store, StoreError};

use crate::suite::{audit, insert};

fn challenge(id: u8, address: u8, client: u8, subject: Option<SubjectId>, at: i64) -> ChallengeRow {
    ChallengeRow {
        id: vec![id; 32],
        address_digest: vec![address; 32],
        client_digest: vec![client; 32],
        subject_id: subject,
        code_digest: vec![0xC0; 32],
        created_ms: at,
        tries: 0,
        last_try_ms: None,
        used_ms: None,
    }
}

/// Codes and wrong codes are counted per address and per client within their windows; a code
/// signs in once, and a second use conflicts.
pub(crate) async fn challenges_are_counted_and_used_once(store: Arc<dyn Store>) {
    let subject = insert(store.as_ref(), 1).await.subject_id;
    let t = 10_000_000;
    for (i, (addr, client, at)) in [(1, 9, t), (1, 9, t + 1), (2, 9, t + 2), (1, 8, t - 5_000)]
        .into_iter()
        .enumerate()
    {
        let s = (addr == 1).then_some(subject);
        store
            .insert_challenge(
                challenge(i as u8 + 1, addr, client, s, at),
                audit("code", s),
            )
            .await
            .unwrap();
    }
    let counts = store
        .signin_counts(&[1; 32], &[9; 32], t - 1_000, t - 1_000)
        .await
        .unwrap();
    assert_eq!(
        counts,
        Counts {
            codes_for_address: 2,
            codes_for_client: 3,
            wrong_codes_for_address: 0
        }
    );
    // Each try is counted before its code is compared, and sees every try of its address.
    for (n, at) in [t + 10, t + 20, t + 30].into_iter().enumerate() {
        let seen = store.count_try(&[2; 32], at, t).await.unwrap();
        assert_eq!(seen, n as u32 + 1);
    }
    // Another challenge of the same address sees the first one's tries too.
    assert_eq!(store.count_try(&[1; 32], t + 31, t).await.unwrap(), 4);
    assert!(matches!(
        store.count_try(&[77; 32], t, t).await,
        Err(StoreError::NotFound)
    ));
    let wrong = |since| {
        let store = Arc::clone(&store);
        async move {
            store
                .signin_counts(&[1; 32], &[9; 32], t, since)
                .await
                .unwrap()
                .wrong_codes_for_address
        }
    };
    assert_eq!(wrong(t).await, 4);
    // Counted from the last try: none after t + 31.
    assert_eq!(wrong(t + 32).await, 0);
    let ch = store.challenge(&[2; 32]).await.unwrap().unwrap();
    assert_eq!(
        (ch.tries, ch.last_try_ms, ch.subject_id),
        (3, Some(t + 30), Some(subject))
    );
    assert!(store.challenge(&[77; 32]).await.unwrap().is_none());

    let session = SessionRow {
        id: vec![0x5E; 32],
        subject_id: subject,
        created_ms: t + 40,
        last_seen_ms: t + 40,
        revoked_ms: None,
    };
    store
        .start_session(&[2; 32], session.clone(), audit("signin", Some(subject)))
        .await
        .unwrap();
    let replay = SessionRow {
        id: vec![0x5F; 32],
        ..session.clone()
    };
    let e = store
        .start_session(&[2; 32], replay, audit("signin", Some(subject)))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    assert!(store.session(&[0x5F; 32]).await.unwrap().is_none());
    assert_eq!(store.session(&[0x5E; 32]).await.unwrap(), Some(session));
    // The try that signed in is taken back: it counts toward no lockout.
    let used = store.challenge(&[2; 32]).await.unwrap().unwrap();
    assert_eq!((used.used_ms, used.tries), (Some(t + 40), 2));
}

/// A session is touched, ended once, and purged when old.
pub(crate) async fn sessions_are_touched_ended_and_purged(store: Arc<dyn Store>) {
    let subject = insert(store.as_ref(), 1).await.subject_id;
    store
        .insert_challenge(challenge(1, 1, 1, Some(subject), 100), audit("code", None))
        .await
        .unwrap();
    let s = SessionRow {
        id: vec![0x5E; 32],
        subject_id: subject,
        created_ms: 100,
        last_seen_ms: 100,
        revoked_ms: None,
    };
    store
        .start_session(&[1; 32], s.clone(), audit("signin", None))
        .await
        .unwrap();
    store.touch_session(&s.id, 500).await.unwrap();
    // An older touch never moves it back.
    store.touch_session(&s.id, 300).await.unwrap();
    assert_eq!(
        store.session(&s.id).await.unwrap().unwrap().last_seen_ms,
        500
    );
    store
        .end_session(&s.id, 600, audit("signout", None))
        .await
        .unwrap();
    store
        .end_session(&s.id, 700, audit("signout", None))
        .await
        .unwrap();
    let ended = store.session(&s.id).await.unwrap().unwrap();
    assert_eq!(ended.revoked_ms, Some(600));
    // An ended session is not used again.
    store.touch_session(&s.id, 900).await.unwrap();
    assert_eq!(
        store.session(&s.id).await.unwrap().unwrap().last_seen_ms,
        500
    );
    assert_eq!(store.purge_signins(550).await.unwrap(), 2);
    assert!(store.session(&s.id).await.unwrap().is_none());
    assert!(store.challenge(&[1; 32]).await.unwrap().is_none());
}
