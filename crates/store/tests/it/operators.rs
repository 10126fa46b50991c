//! Operators and their console sessions, on every backend.

use std::sync::Arc;

use custos_core::operator::{OperatorId, OperatorStatus};
use custos_store::{AccountChange, OperatorRow, OperatorSessionRow, Store, StoreError};

use crate::suite::audit;

fn operator(email: u8, at: i64) -> OperatorRow {
    OperatorRow {
        id: OperatorId::random(),
        email_digest: vec![email; 32],
        email_sealed: vec![0xEE; 40],
        role: "support".into(),
        status: OperatorStatus::Invited,
        password_hash: None,
        totp_sealed: None,
        totp_last_step: None,
        setup_digest: Some(vec![email ^ 0xFF; 32]),
        setup_expires_ms: Some(at + 1_000),
        failed_logins: 0,
        locked_until_ms: None,
        created_ms: at,
        changed_ms: at,
    }
}

fn session(id: u8, op: OperatorId, at: i64) -> OperatorSessionRow {
    OperatorSessionRow {
        id: vec![id; 32],
        operator_id: op,
        created_ms: at,
        last_seen_ms: at,
        revoked_ms: None,
    }
}

/// An account is found by id, address and setup link; an address is taken once; an update
/// writes the account, replaces the recovery codes and ends the sessions it says.
pub(crate) async fn operators_are_found_updated_and_unique(store: Arc<dyn Store>) {
    let t = 5_000_000;
    let a = operator(1, t);
    store
        .insert_operator(a.clone(), audit("add", None))
        .await
        .unwrap();
    let b = operator(2, t + 1);
    store
        .insert_operator(b.clone(), audit("add", None))
        .await
        .unwrap();
    let mut twin = operator(1, t + 2);
    twin.setup_digest = None;
    assert!(matches!(
        store.insert_operator(twin, audit("add", None)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.operator(a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(
        store.operator_by_email(&[2; 32]).await.unwrap().as_ref(),
        Some(&b)
    );
    assert_eq!(
        store.operator_by_setup(&[0xFE; 32]).await.unwrap().as_ref(),
        Some(&a)
    );
    assert_eq!(store.operator_by_email(&[3; 32]).await.unwrap(), None);
    let all: Vec<_> = store
        .operators()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(all, [a.id, b.id]);

    let mut active = a.clone();
    active.status = OperatorStatus::Active;
    active.password_hash = Some("$argon2id$...".into());
    active.totp_sealed = Some(vec![7; 40]);
    active.setup_digest = None;
    active.setup_expires_ms = None;
    active.changed_ms = t + 10;
    let codes = AccountChange {
        recovery_codes: Some(vec![vec![0xA1; 32], vec![0xA2; 32]]),
        end_sessions_at: None,
        clear_lock: false,
    };
    store
        .update_operator(active.clone(), t, codes, vec![audit("enrol", None)])
        .await
        .unwrap();
    // A write made from the reading before is refused: the account changed since.
    let mut stale = a.clone();
    stale.status = OperatorStatus::Disabled;
    stale.changed_ms = t + 11;
    assert!(matches!(
        store
            .update_operator(stale, t, AccountChange::default(), vec![])
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.operator(a.id).await.unwrap().as_ref(), Some(&active));
    assert_eq!(store.operator_by_setup(&[0xFE; 32]).await.unwrap(), None);

    // Recovery codes: each once; a code of another operator is no code.
    assert_eq!(
        store.use_recovery_code(b.id, &[0xA1; 32], t).await.unwrap(),
        None
    );
    assert_eq!(
        store.use_recovery_code(a.id, &[0xA1; 32], t).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        store.use_recovery_code(a.id, &[0xA1; 32], t).await.unwrap(),
        None
    );
    assert_eq!(
        store.use_recovery_code(a.id, &[0xA2; 32], t).await.unwrap(),
        Some(0)
    );

    // TOTP steps: only ever later ones.
    assert!(store.use_totp_step(a.id, 100).await.unwrap());
    assert!(!store.use_totp_step(a.id, 100).await.unwrap(), "a replay");
    assert!(!store.use_totp_step(a.id, 99).await.unwrap());
    assert!(store.use_totp_step(a.id, 101).await.unwrap());

    let mut gone = active.clone();
    gone.id = OperatorId::random();
    assert!(matches!(
        store
            .update_operator(gone, t + 10, AccountChange::default(), vec![])
            .await,
        Err(StoreError::NotFound)
    ));
}

/// Login attempts count up until a session begins, the fifth locking the account, no
/// attempt counted while it is locked, longer locks after; sessions carry their account as
/// it stands, end singly or all at once, and are purged.
pub(crate) async fn logins_and_sessions(store: Arc<dyn Store>) {
    let t = 6_000_000;
    let a = operator(1, t);
    store
        .insert_operator(a.clone(), audit("add", None))
        .await
        .unwrap();
    for n in 1..=4 {
        let at = store.begin_login(a.id, t).await.unwrap().unwrap();
        assert_eq!((at.attempts, at.locks_until_ms), (n, None));
    }
    let fifth = store.begin_login(a.id, t).await.unwrap().unwrap();
    assert_eq!(
        (fifth.attempts, fifth.locks_until_ms),
        (5, Some(t + 60_000))
    );
    assert_eq!(
        store.begin_login(a.id, t + 59_999).await.unwrap(),
        None,
        "locked"
    );
    let sixth = store.begin_login(a.id, t + 60_000).await.unwrap().unwrap();
    assert_eq!(
        (sixth.attempts, sixth.locks_until_ms),
        (6, Some(t + 180_000))
    );
    assert_eq!(
        store.begin_login(OperatorId::random(), t).await.unwrap(),
        None,
        "no such account"
    );
    let locked = store.operator(a.id).await.unwrap().unwrap();
    assert_eq!(
        (locked.failed_logins, locked.locked_until_ms),
        (6, Some(t + 180_000))
    );

    store
        .start_operator_session(session(1, a.id, t + 100), vec![audit("login", None)])
        .await
        .unwrap();
    store
        .start_operator_session(session(2, a.id, t + 200), vec![audit("login", None)])
        .await
        .unwrap();
    let (s, o) = store.operator_session(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(s, session(1, a.id, t + 100));
    assert_eq!(
        (o.failed_logins, o.locked_until_ms),
        (0, None),
        "a login clears them"
    );
    assert_eq!(store.operator_session(&[9; 32]).await.unwrap(), None);

    store
        .touch_operator_session(&[1; 32], t + 500)
        .await
        .unwrap();
    store
        .touch_operator_session(&[1; 32], t + 400)
        .await
        .unwrap();
    let (s, _) = store.operator_session(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(s.last_seen_ms, t + 500, "never moves back");

    store
        .end_operator_session(&[1; 32], t + 600, audit("out", None))
        .await
        .unwrap();
    store
        .end_operator_session(&[1; 32], t + 700, audit("out", None))
        .await
        .unwrap();
    let (s, _) = store.operator_session(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(s.revoked_ms, Some(t + 600));

    // Disabling ends every live session at once.
    let mut off = store.operator(a.id).await.unwrap().unwrap();
    off.status = OperatorStatus::Disabled;
    let was = off.changed_ms;
    off.changed_ms = was + 1;
    let end = AccountChange {
        recovery_codes: None,
        end_sessions_at: Some(t + 800),
        clear_lock: true,
    };
    store
        .update_operator(off, was, end, vec![audit("disable", None)])
        .await
        .unwrap();
    let (s, o) = store.operator_session(&[2; 32]).await.unwrap().unwrap();
    assert_eq!(
        (s.revoked_ms, o.status),
        (Some(t + 800), OperatorStatus::Disabled)
    );
    assert_eq!(
        (o.failed_logins, o.locked_until_ms),
        (0, None),
        "the lock cleared"
    );

    // The second session was last used at t + 200; the first at t + 500.
    assert_eq!(store.purge_operator_sessions(t + 300).await.unwrap(), 1);
    assert_eq!(store.operator_session(&[2; 32]).await.unwrap(), None);
    assert!(store.operator_session(&[1; 32]).await.unwrap().is_some());
    assert_eq!(store.purge_operator_sessions(t + 900).await.unwrap(), 1);
}
