//! Canaries, the detector's steps, alerts and incidents, and the log searched by actor and
//! time, on every backend.

use std::sync::Arc;

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::ids::{AlertId, IncidentId, MailId, RecordId, SubjectId};
use custos_store::{
    AlertRow, CanaryRow, DetectorStep, IncidentRow, Integration, LeafRow, NewAlert, OutboxRow,
    Store, StoreError, TreeState, WindowCount,
};

use crate::suite::audit;

fn alert(dedup: &str, at: i64) -> NewAlert {
    NewAlert {
        row: AlertRow {
            id: AlertId::random(),
            dedup: dedup.into(),
            kind: "canary_touched".into(),
            actor: "apikey:support".into(),
            raised_ms: at,
            acknowledged_ms: None,
            acknowledged_by: None,
            body: b"{}".to_vec(),
        },
        outbox: vec![OutboxRow::queued(
            MailId::random(),
            None,
            at,
            at + 1_000,
            vec![1, 2, 3],
        )],
        audit: audit("alert", None),
    }
}

fn count(actor: &str, window_ms: i64, reads: u64) -> WindowCount {
    WindowCount {
        actor: actor.into(),
        window_ms,
        collection: "customers".into(),
        reads,
    }
}

/// A detector step moves the position once (a second from the same place conflicts),
/// counts add up, and an alert raised twice is one alert with one set of deliveries.
pub(crate) async fn detector_steps_count_once_and_alerts_dedupe(store: Arc<dyn Store>) {
    assert_eq!(store.detector_position().await.unwrap(), 0);
    let first = alert("canary:7", 10);
    let step = DetectorStep {
        from: 0,
        to: 5,
        counts: vec![
            count("apikey:a", 3_600_000, 4),
            count("apikey:b", 3_600_000, 1),
        ],
        alerts: vec![first.clone()],
    };
    assert_eq!(
        store.advance_detector(step.clone()).await.unwrap(),
        [first.row.id]
    );
    assert!(matches!(
        store.advance_detector(step).await,
        Err(StoreError::Conflict(_))
    ));
    let again = alert("canary:7", 11);
    let second = alert("read_volume:apikey:a:3600000", 12);
    let step = DetectorStep {
        from: 5,
        to: 9,
        counts: vec![
            count("apikey:a", 3_600_000, 2),
            count("apikey:a", 7_200_000, 1),
        ],
        alerts: vec![again, second.clone()],
    };
    assert_eq!(store.advance_detector(step).await.unwrap(), [second.row.id]);
    assert_eq!(store.detector_position().await.unwrap(), 9);
    let a = store
        .access_counts("apikey:a", 0, 10_000_000)
        .await
        .unwrap();
    assert_eq!(
        a.iter().map(|w| (w.window_ms, w.reads)).collect::<Vec<_>>(),
        [(3_600_000, 6), (7_200_000, 1)]
    );
    assert!(
        store
            .access_counts("apikey:a", 0, 3_600_000)
            .await
            .unwrap()
            .is_empty()
    );
    let listed = store.alerts(false, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|a| a.id).collect::<Vec<_>>(),
        [second.row.id, first.row.id]
    );
    assert_eq!(
        store.outbox_counts().await.unwrap().queued,
        2,
        "one delivery per new alert"
    );
    // raise_alert dedupes the same way.
    assert!(!store.raise_alert(alert("canary:7", 13)).await.unwrap());
    assert!(store.raise_alert(alert("canary:8", 13)).await.unwrap());
    // Acknowledged once; an unknown alert is not found.
    store
        .acknowledge_alert(first.row.id, "cli", 20, audit("ack", None))
        .await
        .unwrap();
    assert!(matches!(
        store
            .acknowledge_alert(first.row.id, "cli", 21, audit("ack", None))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .acknowledge_alert(AlertId::random(), "cli", 21, audit("ack", None))
            .await,
        Err(StoreError::NotFound)
    ));
    let open = store.alerts(true, 10).await.unwrap();
    assert_eq!(open.len(), 2);
    let acked = store.alert(first.row.id).await.unwrap().unwrap();
    assert_eq!(
        (acked.acknowledged_ms, acked.acknowledged_by.as_deref()),
        (Some(20), Some("cli"))
    );
}

/// Canaries are listed; an incident is written only from its latest read.
pub(crate) async fn canaries_and_incidents(store: Arc<dyn Store>) {
    let c = CanaryRow {
        record_id: RecordId::random(),
        subject_id: SubjectId::random(),
        collection: "customers".into(),
        planted_ms: 5,
    };
    store
        .plant_canaries(vec![c.clone()], audit("plant", None))
        .await
        .unwrap();
    assert_eq!(store.canaries().await.unwrap(), std::slice::from_ref(&c));
    assert!(
        store
            .canary_digests("customers", &[("email".into(), vec![1; 32])])
            .await
            .unwrap()
            .is_empty()
    );
    let row = IncidentRow {
        id: IncidentId::random(),
        status: "open".into(),
        aware_ms: 100,
        opened_ms: 110,
        changed_ms: 110,
        sealed: vec![9; 40],
    };
    store
        .insert_incident(row.clone(), audit("open", None))
        .await
        .unwrap();
    let mut next = row.clone();
    next.status = "contained".into();
    next.changed_ms = 120;
    store
        .update_incident(next.clone(), 110, audit("upd", None))
        .await
        .unwrap();
    let mut stale = row.clone();
    stale.changed_ms = 130;
    assert!(matches!(
        store.update_incident(stale, 110, audit("upd", None)).await,
        Err(StoreError::Conflict(_))
    ));
    let mut unknown = row.clone();
    unknown.id = IncidentId::random();
    assert!(matches!(
        store
            .update_incident(unknown, 110, audit("upd", None))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.incident(row.id).await.unwrap(), Some(next.clone()));
    assert_eq!(store.incidents().await.unwrap(), [next]);
}

fn entry(actor: &str, time: &str) -> Vec<u8> {
    let mut e = AuditEntry::new(actor, Action::RecordRead, Outcome::Ok);
    e.time = time.into();
    e.to_bytes()
}

/// The log is searched by actor and time through its columns.
pub(crate) async fn leaves_are_found_by_actor_and_time(store: Arc<dyn Store>) {
    let rows = [
        ("apikey:a", "2026-01-01T00:00:00.000Z"),
        ("apikey:b", "2026-01-01T01:00:00.000Z"),
        ("apikey:a", "2026-01-01T02:00:00.000Z"),
        ("apikey:a", "2026-01-01T03:00:00.000Z"),
    ];
    let leaves: Vec<LeafRow> = rows
        .iter()
        .enumerate()
        .map(|(i, (a, t))| LeafRow {
            index: i as u64,
            subject_id: None,
            entry: entry(a, t),
            leaf_hash: [i as u8; 32],
        })
        .collect();
    store
        .integrate_audit(Integration {
            from_size: 0,
            queue_ids: Vec::new(),
            leaves,
            state: TreeState {
                size: 4,
                peaks: vec![[1; 32]],
            },
            head: crate::suite::head(4),
        })
        .await
        .unwrap();
    let idx = |l: Vec<LeafRow>| l.iter().map(|l| l.index).collect::<Vec<_>>();
    assert_eq!(
        idx(store.leaves_by(Some("apikey:a"), None, None).await.unwrap()),
        [0, 2, 3]
    );
    assert_eq!(
        idx(store
            .leaves_by(
                Some("apikey:a"),
                Some("2026-01-01T01:00:00.000Z"),
                Some("2026-01-01T03:00:00.000Z")
            )
            .await
            .unwrap()),
        [2]
    );
    assert_eq!(
        idx(store
            .leaves_by(None, Some("2026-01-01T01:00:00.000Z"), None)
            .await
            .unwrap()),
        [1, 2, 3]
    );
    assert_eq!(
        idx(store.leaves_by(None, None, None).await.unwrap()),
        [0, 1, 2, 3]
    );
}
