//! The conformance tests, written against `dyn Store` only.

use std::sync::Arc;

use custos_core::audit::{SignedTreeHead, TreeHead};
use custos_core::ids::{EventId, RecordId, SubjectId};
use custos_store::testing::wrapped_key;
use custos_store::{
    ApiKeyRow, EncryptedFields, HoldRow, IndexEntry, Integration, LeafRow, NewRecord, NewSubject,
    QueuedAudit, RecordChange, RecordRow, Store, StoreError, TreeState,
};

pub(crate) fn audit(tag: &str, subject: Option<SubjectId>) -> QueuedAudit {
    QueuedAudit {
        subject_id: subject,
        entry: format!("{{\"tag\":\"{tag}\"}}").into_bytes(),
    }
}

pub(crate) fn row(subject: SubjectId, fields: &[(&str, &[u8])]) -> RecordRow {
    RecordRow {
        id: RecordId::random(),
        subject_id: subject,
        collection: "customers".into(),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect::<EncryptedFields>(),
        version: 1,
        created_ms: 1,
        updated_ms: 1,
    }
}

fn digest(b: u8) -> Vec<u8> {
    vec![b; 32]
}

/// Inserts a record for a new subject, indexed on `email` with `email_digest`.
pub(crate) async fn insert(store: &dyn Store, email_digest: u8) -> RecordRow {
    let subject = SubjectId::random();
    let r = row(subject, &[("email", b"ct-email"), ("name", b"ct-name")]);
    store
        .insert_record(NewRecord {
            record: r.clone(),
            new_subject: Some(NewSubject {
                id: subject,
                wrapped_key: wrapped_key(1, 0xaa),
                created_ms: 1,
            }),
            index: vec![IndexEntry {
                field: "email".into(),
                key_version: 1,
                digest: digest(email_digest),
            }],
            audit: audit("create", Some(subject)),
        })
        .await
        .unwrap();
    r
}

pub(crate) async fn records_round_trip(store: Arc<dyn Store>) {
    let r = insert(store.as_ref(), 1).await;
    let got = store.record("customers", r.id).await.unwrap().unwrap();
    assert_eq!(got.record, r);
    assert_eq!(got.wrapped_key, wrapped_key(1, 0xaa));
    assert!(
        store.record("orders", r.id).await.unwrap().is_none(),
        "a record belongs to its collection"
    );
    assert!(
        store
            .record("customers", RecordId::random())
            .await
            .unwrap()
            .is_none()
    );

    // A second record of the same subject.
    let second = row(r.subject_id, &[("email", b"ct2")]);
    let new = NewRecord {
        record: second.clone(),
        new_subject: None,
        index: vec![],
        audit: audit("create", Some(r.subject_id)),
    };
    store.insert_record(new).await.unwrap();
    let all = store.subject_records(r.subject_id).await.unwrap();
    assert_eq!(all.iter().map(|x| x.record.id).collect::<Vec<_>>().len(), 2);
    assert_eq!(
        store.subject_key(r.subject_id).await.unwrap().unwrap(),
        wrapped_key(1, 0xaa)
    );
    assert!(
        store
            .subject_key(SubjectId::random())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.count_records("customers").await.unwrap(), 2);

    let found = store
        .find_by_digest("customers", "email", &[(1, digest(1))])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].record.id, r.id);
    assert!(
        store
            .find_by_digest("customers", "phone", &[(1, digest(1))])
            .await
            .unwrap()
            .is_empty(),
        "digests are per field"
    );
    assert!(
        store
            .find_by_digest("customers", "email", &[(1, digest(2))])
            .await
            .unwrap()
            .is_empty()
    );
    store.ping().await.unwrap();
}

pub(crate) async fn stale_updates_conflict_and_indexes_follow(store: Arc<dyn Store>) {
    let r = insert(store.as_ref(), 3).await;
    let mut changed = r.clone();
    changed.fields.insert("email".into(), b"ct-new".to_vec());
    let change = |rec: RecordRow| RecordChange {
        record: rec,
        reindexed_fields: vec!["email".into()],
        index: vec![IndexEntry {
            field: "email".into(),
            key_version: 1,
            digest: digest(4),
        }],
        audit: audit("update", Some(r.subject_id)),
    };
    store.update_record(change(changed.clone())).await.unwrap();
    // The same version again is stale now.
    assert!(matches!(
        store.update_record(change(changed)).await,
        Err(StoreError::Conflict(_))
    ));
    let got = store
        .record("customers", r.id)
        .await
        .unwrap()
        .unwrap()
        .record;
    assert_eq!(got.version, 2);
    assert_eq!(got.fields["email"], b"ct-new");
    assert!(
        store
            .find_by_digest("customers", "email", &[(1, digest(3))])
            .await
            .unwrap()
            .is_empty(),
        "old digest gone"
    );
    assert_eq!(
        store
            .find_by_digest("customers", "email", &[(1, digest(4))])
            .await
            .unwrap()
            .len(),
        1
    );
}

pub(crate) async fn deletes_take_their_index_entries(store: Arc<dyn Store>) {
    let r = insert(store.as_ref(), 5).await;
    assert!(matches!(
        store.delete_record("orders", r.id, audit("d", None)).await,
        Err(StoreError::NotFound)
    ));
    store
        .delete_record("customers", r.id, audit("delete", Some(r.subject_id)))
        .await
        .unwrap();
    assert!(store.record("customers", r.id).await.unwrap().is_none());
    assert!(
        store
            .find_by_digest("customers", "email", &[(1, digest(5))])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .delete_record("customers", r.id, audit("d", None))
            .await,
        Err(StoreError::NotFound)
    ));
}

pub(crate) async fn a_failed_write_changes_nothing_and_spares_its_neighbours(
    store: Arc<dyn Store>,
) {
    let existing = insert(store.as_ref(), 6).await;
    let queued_before = store.queued_audit(10_000).await.unwrap().len();
    // Many writes at once, so that they share a group commit; every third reuses an id.
    let mut handles = Vec::new();
    for i in 0..30 {
        let store = Arc::clone(&store);
        let mut r = row(existing.subject_id, &[("email", b"x")]);
        if i % 3 == 0 {
            r.id = existing.id;
        }
        handles.push(tokio::spawn(async move {
            let new = NewRecord {
                record: r,
                new_subject: None,
                index: vec![IndexEntry {
                    field: "email".into(),
                    key_version: 1,
                    digest: vec![100 + i as u8; 32],
                }],
                audit: audit("create", None),
            };
            store.insert_record(new).await
        }));
    }
    let mut ok = 0;
    for (i, h) in handles.into_iter().enumerate() {
        match h.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Conflict(_)) => assert_eq!(i % 3, 0, "only the duplicates fail"),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 20);
    assert_eq!(store.count_records("customers").await.unwrap(), 21);
    assert_eq!(
        store.queued_audit(10_000).await.unwrap().len(),
        queued_before + 20,
        "failed writes queued no audit entry"
    );
    // The failed writes left no index entry behind.
    assert!(
        store
            .find_by_digest("customers", "email", &[(1, vec![100; 32])])
            .await
            .unwrap()
            .is_empty()
    );
    // A record for a subject that does not exist is refused.
    let orphan = NewRecord {
        record: row(SubjectId::random(), &[]),
        new_subject: None,
        index: vec![],
        audit: audit("x", None),
    };
    assert!(matches!(
        store.insert_record(orphan).await,
        Err(StoreError::Conflict(_))
    ));
}

pub(crate) fn head(size: u64) -> SignedTreeHead {
    SignedTreeHead {
        head: TreeHead {
            size,
            root: [size as u8; 32],
            timestamp_ms: size,
        },
        signature: [7; 64],
    }
}

pub(crate) async fn audit_queue_and_integration(store: Arc<dyn Store>) {
    assert_eq!(store.tree_state().await.unwrap(), TreeState::default());
    assert!(store.latest_tree_head().await.unwrap().is_none());
    let s = SubjectId::random();
    store
        .append_audit(vec![
            audit("a", Some(s)),
            audit("b", None),
            audit("c", Some(s)),
        ])
        .await
        .unwrap();
    let q = store.queued_audit(2).await.unwrap();
    assert_eq!(
        q.iter().map(|r| r.audit.entry.clone()).collect::<Vec<_>>(),
        [audit("a", None).entry, audit("b", None).entry],
        "oldest first"
    );
    let leaves: Vec<LeafRow> = q
        .iter()
        .enumerate()
        .map(|(i, r)| LeafRow {
            index: i as u64,
            subject_id: r.audit.subject_id,
            entry: r.audit.entry.clone(),
            leaf_hash: [i as u8; 32],
        })
        .collect();
    let batch = Integration {
        from_size: 0,
        queue_ids: q.iter().map(|r| r.queue_id).collect(),
        leaves,
        state: TreeState {
            size: 2,
            peaks: vec![[9; 32]],
        },
        head: head(2),
    };
    store.integrate_audit(batch.clone()).await.unwrap();
    // The same batch again: the tree has grown, so it is refused whole.
    assert!(matches!(
        store.integrate_audit(batch).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.tree_state().await.unwrap(),
        TreeState {
            size: 2,
            peaks: vec![[9; 32]]
        }
    );
    assert_eq!(store.latest_tree_head().await.unwrap(), Some(head(2)));
    assert_eq!(store.tree_heads().await.unwrap(), vec![head(2)]);
    let remaining = store.queued_audit(10).await.unwrap();
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0].audit.entry, audit("c", None).entry);
    assert_eq!(store.leaves(0, 10).await.unwrap().len(), 2);
    assert_eq!(
        store.leaves(1, 2).await.unwrap()[0].entry,
        audit("b", None).entry
    );
    let mine = store.subject_leaves(s).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].index, 0);
}

pub(crate) async fn api_keys(store: Arc<dyn Store>) {
    let key = |name: &str, d: u8| ApiKeyRow {
        name: name.into(),
        role: "admin".into(),
        digest: vec![d; 32],
        created_ms: 5,
        revoked_ms: None,
    };
    store
        .insert_api_key(key("ops", 1), audit("k", None))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_api_key(key("ops", 2), audit("k", None)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .insert_api_key(key("other", 1), audit("k", None))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .api_key_by_digest(&[1; 32])
            .await
            .unwrap()
            .unwrap()
            .name,
        "ops"
    );
    assert!(store.api_key_by_digest(&[2; 32]).await.unwrap().is_none());
    store
        .revoke_api_key("ops", 9, audit("r", None))
        .await
        .unwrap();
    assert!(
        store.api_key_by_digest(&[1; 32]).await.unwrap().is_none(),
        "a revoked key no longer authenticates"
    );
    assert!(matches!(
        store.revoke_api_key("ops", 10, audit("r", None)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.api_keys().await.unwrap()[0].revoked_ms, Some(9));
}

pub(crate) async fn vault_keys_are_written_once(store: Arc<dyn Store>) {
    assert!(store.vault_key("index").await.unwrap().is_none());
    store
        .insert_vault_key("index", wrapped_key(1, 1))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_vault_key("index", wrapped_key(1, 2)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.vault_key("index").await.unwrap().unwrap(),
        wrapped_key(1, 1)
    );
}

pub(crate) async fn sequencer_lease_is_exclusive_until_it_lapses(store: Arc<dyn Store>) {
    assert!(store.sequencer_lease("a", 1_000, 500).await.unwrap());
    assert!(
        !store.sequencer_lease("b", 1_200, 500).await.unwrap(),
        "a live lease is not taken"
    );
    assert!(
        store.sequencer_lease("a", 1_400, 500).await.unwrap(),
        "the holder renews"
    );
    assert!(!store.sequencer_lease("b", 1_800, 500).await.unwrap());
    assert!(
        store.sequencer_lease("b", 1_901, 500).await.unwrap(),
        "a lapsed lease is taken over"
    );
    assert!(!store.sequencer_lease("a", 1_950, 500).await.unwrap());
}

/// Many writers at once, then two sequencers racing on one queue: every entry ends in the
/// tree exactly once.
pub(crate) async fn concurrent_writers_and_racing_integrations(store: Arc<dyn Store>) {
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8u8 {
        let store = store.clone();
        writers.spawn(async move {
            for i in 0..25u8 {
                insert(store.as_ref(), w.wrapping_mul(31).wrapping_add(i)).await;
            }
        });
    }
    while let Some(r) = writers.join_next().await {
        r.unwrap();
    }
    assert_eq!(store.count_records("customers").await.unwrap(), 200);
    let integrate = |store: Arc<dyn Store>| async move {
        let mut won = 0;
        loop {
            let state = store.tree_state().await.unwrap();
            let q = store.queued_audit(16).await.unwrap();
            if q.is_empty() {
                return won;
            }
            let n = q.len() as u64;
            let leaves = q
                .iter()
                .enumerate()
                .map(|(i, r)| LeafRow {
                    index: state.size + i as u64,
                    subject_id: r.audit.subject_id,
                    entry: r.audit.entry.clone(),
                    leaf_hash: [0; 32],
                })
                .collect();
            let batch = Integration {
                from_size: state.size,
                queue_ids: q.iter().map(|r| r.queue_id).collect(),
                leaves,
                state: TreeState {
                    size: state.size + n,
                    peaks: vec![],
                },
                head: head(state.size + n),
            };
            match store.integrate_audit(batch).await {
                Ok(()) => won += n,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    };
    let (a, b) = tokio::join!(integrate(store.clone()), integrate(store.clone()));
    assert_eq!(a + b, 200, "every queued entry integrated once");
    let leaves = store.leaves(0, 1_000).await.unwrap();
    assert_eq!(leaves.len(), 200);
    assert!(leaves.iter().enumerate().all(|(i, l)| l.index == i as u64));
    assert_eq!(store.tree_state().await.unwrap().size, 200);
    assert!(store.queued_audit(10).await.unwrap().is_empty());
}

async fn export_all(store: &dyn Store, page: usize) -> Vec<custos_store::CopyRow> {
    let mut all = Vec::new();
    for table in custos_store::Table::ALL {
        let mut after = None;
        loop {
            let rows = store.export(table, after.clone(), page).await.unwrap();
            let Some(last) = rows.last() else { break };
            after = Some(last.cursor());
            all.extend(rows);
        }
    }
    all
}

/// What `db copy` relies on: a store exported page by page and imported into another holds the
/// same rows, and importing again (a re-run after an interruption) adds nothing.
pub(crate) async fn export_and_import_copy_every_row_once(
    from: Arc<dyn Store>,
    to: Arc<dyn Store>,
) {
    from.insert_vault_key("index", wrapped_key(1, 3))
        .await
        .unwrap();
    let mut rows = Vec::new();
    for d in 0..7 {
        rows.push(insert(from.as_ref(), d).await);
    }
    from.delete_record("customers", rows[3].id, audit("d", None))
        .await
        .unwrap();
    from.insert_api_key(
        ApiKeyRow {
            name: "ops".into(),
            role: "admin".into(),
            digest: vec![1; 32],
            created_ms: 5,
            revoked_ms: Some(6),
        },
        audit("k", None),
    )
    .await
    .unwrap();
    from.place_hold(hold(&rows[1]), audit("h", None))
        .await
        .unwrap();
    for (i, r) in rows.iter().enumerate().take(4) {
        from.insert_consent_event(
            EventId::random(),
            r.subject_id,
            format!("c{i}").into_bytes(),
        )
        .await
        .unwrap();
    }
    let q = from.queued_audit(100).await.unwrap();
    let n = q.len() as u64;
    from.integrate_audit(Integration {
        from_size: 0,
        queue_ids: q.iter().map(|r| r.queue_id).collect(),
        leaves: q
            .iter()
            .enumerate()
            .map(|(i, r)| LeafRow {
                index: i as u64,
                subject_id: r.audit.subject_id,
                entry: r.audit.entry.clone(),
                leaf_hash: [i as u8; 32],
            })
            .collect(),
        state: TreeState {
            size: n,
            peaks: vec![[1; 32], [2; 32]],
        },
        head: head(n),
    })
    .await
    .unwrap();

    // Pages of three, so every table spans pages; the first half, "interrupted", then all.
    let exported = export_all(from.as_ref(), 3).await;
    let half = exported.len() / 2;
    to.import(exported[..half].to_vec()).await.unwrap();
    for chunk in exported.chunks(4) {
        to.import(chunk.to_vec()).await.unwrap();
    }
    to.import(exported.clone()).await.unwrap();
    assert_eq!(export_all(to.as_ref(), 100).await, exported);
    for table in custos_store::Table::ALL {
        assert_eq!(
            to.count(table).await.unwrap(),
            from.count(table).await.unwrap(),
            "{table:?}"
        );
    }
    assert_eq!(
        from.count(custos_store::Table::Records).await.unwrap(),
        (6, 6)
    );
    assert_eq!(
        to.tree_state().await.unwrap(),
        from.tree_state().await.unwrap()
    );
    let moved = to.record("customers", rows[0].id).await.unwrap().unwrap();
    assert_eq!(moved.record, rows[0]);
    assert_eq!(to.holds().await.unwrap(), vec![hold(&rows[1])]);
    // The copy's ledger goes on where the original's stopped.
    let later = EventId::random();
    to.insert_consent_event(later, rows[0].subject_id, b"after".to_vec())
        .await
        .unwrap();
    let ledger = to.consent_events(rows[0].subject_id).await.unwrap();
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[1].id, later);
    assert!(ledger[0].seq < ledger[1].seq);
    assert_eq!(
        to.find_by_digest("customers", "email", &[(1, digest(5))])
            .await
            .unwrap()
            .len(),
        1
    );
}

/// The ledger keeps a subject's events in the order recorded, each with its audit entry
/// queued in the same transaction; an unknown subject's event is refused and leaves nothing.
pub(crate) async fn consent_ledger_keeps_order_and_audits_each_event(store: Arc<dyn Store>) {
    let ra = insert(store.as_ref(), 1).await;
    let a = ra.subject_id;
    let b = insert(store.as_ref(), 2).await.subject_id;
    // A read says whether the subject's ledger holds anything.
    assert!(
        !store
            .record("customers", ra.id)
            .await
            .unwrap()
            .unwrap()
            .has_ledger
    );
    let before = store.queued_audit(100).await.unwrap().len();
    let mut ids = Vec::new();
    for (i, s) in [a, b, a, a].into_iter().enumerate() {
        let id = EventId::random();
        store
            .insert_consent_event(id, s, format!("event {i}").into_bytes())
            .await
            .unwrap();
        ids.push(id);
    }
    let ledger = store.consent_events(a).await.unwrap();
    assert_eq!(
        ledger.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[0], ids[2], ids[3]]
    );
    assert!(ledger.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(ledger[1].entry, b"event 2");
    assert!(
        store
            .record("customers", ra.id)
            .await
            .unwrap()
            .unwrap()
            .has_ledger
    );
    assert!(store.subject_records(a).await.unwrap()[0].has_ledger);
    let found = store
        .find_by_digest("customers", "email", &[(1, digest(1))])
        .await
        .unwrap();
    assert!(found.len() == 1 && found[0].has_ledger);
    assert_eq!(
        store.consent_event(ids[2]).await.unwrap().as_ref(),
        Some(&ledger[1])
    );
    assert_eq!(store.consent_event(EventId::random()).await.unwrap(), None);
    assert!(ledger.iter().all(|e| e.subject_id == a));
    let queued = store.queued_audit(100).await.unwrap();
    assert_eq!(queued.len(), before + 4);
    assert_eq!(queued.last().unwrap().audit.entry, b"event 3");
    assert_eq!(queued.last().unwrap().audit.subject_id, Some(a));

    let stranger = SubjectId::random();
    assert!(matches!(
        store
            .insert_consent_event(EventId::random(), stranger, b"x".to_vec())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(store.consent_events(stranger).await.unwrap().is_empty());
    assert_eq!(store.queued_audit(100).await.unwrap().len(), before + 4);
    // An event is recorded once.
    assert!(
        store
            .insert_consent_event(ids[0], a, b"again".to_vec())
            .await
            .is_err()
    );
    assert_eq!(store.consent_events(a).await.unwrap().len(), 3);
}

fn hold(r: &RecordRow) -> HoldRow {
    HoldRow {
        record_id: r.id,
        collection: r.collection.clone(),
        subject_id: r.subject_id,
        reason: "litigation: case 113".into(),
        placed_by: "apikey:officer".into(),
        placed_ms: 42,
    }
}

/// A hold is placed once on a record that exists, lifted once, and each act is audited in
/// its own transaction; failures leave nothing.
pub(crate) async fn legal_holds_are_placed_and_released_once(store: Arc<dyn Store>) {
    let r = insert(store.as_ref(), 1).await;
    let before = store.queued_audit(100).await.unwrap().len();
    store
        .place_hold(hold(&r), audit("place", Some(r.subject_id)))
        .await
        .unwrap();
    assert!(matches!(
        store.place_hold(hold(&r), audit("again", None)).await,
        Err(StoreError::Conflict(_))
    ));
    let mut elsewhere = hold(&r);
    elsewhere.collection = "orders".into();
    elsewhere.record_id = RecordId::random();
    assert!(matches!(
        store.place_hold(elsewhere, audit("missing", None)).await,
        Err(StoreError::NotFound)
    ));
    let mut wrong_collection = hold(&r);
    wrong_collection.collection = "orders".into();
    assert!(matches!(
        store
            .place_hold(wrong_collection, audit("wrong", None))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.holds().await.unwrap(), vec![hold(&r)]);
    store
        .release_hold(r.id, audit("release", None))
        .await
        .unwrap();
    assert!(matches!(
        store.release_hold(r.id, audit("again", None)).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.holds().await.unwrap().is_empty());
    let queued = store.queued_audit(100).await.unwrap();
    let tags: Vec<String> = queued[before..]
        .iter()
        .map(|q| String::from_utf8(q.audit.entry.clone()).unwrap())
        .collect();
    assert_eq!(tags, ["{\"tag\":\"place\"}", "{\"tag\":\"release\"}"]);
}

/// An anonymised copy replaces its original in one transaction: the original and its index
/// entries go, the copy of a new subject comes; a second attempt finds nothing and adds nothing.
pub(crate) async fn anonymising_replaces_the_record_in_one_transaction(store: Arc<dyn Store>) {
    let old = insert(store.as_ref(), 7).await;
    let nobody = SubjectId::random();
    let copy = row(nobody, &[("country", b"ct-country")]);
    let new = |copy: &RecordRow| NewRecord {
        record: copy.clone(),
        new_subject: Some(NewSubject {
            id: nobody,
            wrapped_key: wrapped_key(1, 0xfe),
            created_ms: 2,
        }),
        index: vec![],
        audit: audit("anonymise", Some(old.subject_id)),
    };
    let before = store.queued_audit(100).await.unwrap().len();
    store
        .anonymise_record("customers", old.id, new(&copy))
        .await
        .unwrap();
    assert!(store.record("customers", old.id).await.unwrap().is_none());
    assert!(
        store
            .find_by_digest("customers", "email", &[(1, digest(7))])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .subject_records(old.subject_id)
            .await
            .unwrap()
            .is_empty()
    );
    let moved = store.record("customers", copy.id).await.unwrap().unwrap();
    assert_eq!(moved.record, copy);
    assert_eq!(moved.wrapped_key, wrapped_key(1, 0xfe));
    assert_eq!(store.queued_audit(100).await.unwrap().len(), before + 1);

    let again = row(SubjectId::random(), &[("country", b"x")]);
    assert!(matches!(
        store
            .anonymise_record("customers", old.id, new(&again))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(store.record("customers", again.id).await.unwrap().is_none());
    assert_eq!(store.queued_audit(100).await.unwrap().len(), before + 1);
}

/// An erasure deletes and trims what it names, destroys the key when asked, marks the subject
/// erased and lists it, all with its audit entry; a stale plan, or a second erasure, changes
/// nothing.
pub(crate) async fn erasure_shreds_in_one_transaction(store: Arc<dyn Store>) {
    use custos_store::{Erasure, Trim};
    let a = insert(store.as_ref(), 7).await;
    let s = a.subject_id;
    let mut b = row(s, &[("email", b"ct-b"), ("name", b"ct-b-name")]);
    b.collection = "customers".into();
    store
        .insert_record(NewRecord {
            record: b.clone(),
            new_subject: None,
            index: vec![IndexEntry {
                field: "email".into(),
                key_version: 1,
                digest: digest(8),
            }],
            audit: audit("create-b", Some(s)),
        })
        .await
        .unwrap();
    let erasure = |remaining: u64, destroy_key: bool, version: i64| Erasure {
        subject_id: s,
        erase: vec![(a.id, 1)],
        trim: vec![Trim {
            id: b.id,
            version,
            fields: [("name".to_string(), b"ct-b-name".to_vec())].into(),
            removed: vec!["email".into()],
        }],
        remaining,
        destroy_key,
        erased_ms: 42,
        audit: audit("erase", Some(s)),
    };
    let before = store.queued_audit(100).await.unwrap().len();
    // A plan that no longer matches (a stale version, or a record it did not see) is refused
    // and leaves everything as it was.
    for stale in [erasure(1, false, 7), erasure(0, false, 1)] {
        assert!(matches!(
            store.erase_subject(stale).await,
            Err(StoreError::Conflict(_))
        ));
    }
    assert!(store.record("customers", a.id).await.unwrap().is_some());
    assert!(store.subject_key(s).await.unwrap().is_some());
    assert!(store.erasures().await.unwrap().is_empty());

    store.erase_subject(erasure(1, false, 1)).await.unwrap();
    assert!(store.record("customers", a.id).await.unwrap().is_none());
    assert!(
        store
            .find_by_digest("customers", "email", &[(1, digest(7))])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .find_by_digest("customers", "email", &[(1, digest(8))])
            .await
            .unwrap()
            .is_empty()
    );
    let kept = store.record("customers", b.id).await.unwrap().unwrap();
    assert_eq!(kept.record.fields.keys().collect::<Vec<_>>(), ["name"]);
    // The kept record keeps its key, but the subject is no longer found as a subject.
    assert!(store.subject_key(s).await.unwrap().is_none());
    assert_eq!(
        store.erasures().await.unwrap(),
        vec![custos_store::ErasureRow {
            subject_id: s,
            erased_ms: 42
        }]
    );
    assert_eq!(store.erasure(s).await.unwrap().unwrap().erased_ms, 42);
    assert!(matches!(
        store.erase_subject(erasure(1, true, 2)).await,
        Err(StoreError::NotFound)
    ));
    let queued = store.queued_audit(100).await.unwrap();
    let tags: Vec<String> = queued[before..]
        .iter()
        .map(|q| String::from_utf8(q.audit.entry.clone()).unwrap())
        .collect();
    assert_eq!(tags, ["{\"tag\":\"erase\"}"]);

    // Nothing new is filed under an erased subject, though its key survives for what is kept.
    let late = row(s, &[("email", b"ct-late")]);
    assert!(matches!(
        store
            .insert_record(NewRecord {
                record: late.clone(),
                new_subject: None,
                index: vec![],
                audit: audit("late", Some(s)),
            })
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(store.record("customers", late.id).await.unwrap().is_none());

    // A hold placed after the erasure was planned keeps its record: the erasure is refused.
    let d = insert(store.as_ref(), 10).await;
    store
        .place_hold(hold(&d), audit("hold-d", Some(d.subject_id)))
        .await
        .unwrap();
    assert!(matches!(
        store
            .erase_subject(Erasure {
                subject_id: d.subject_id,
                erase: vec![(d.id, 1)],
                trim: vec![],
                remaining: 0,
                destroy_key: true,
                erased_ms: 44,
                audit: audit("erase-d", Some(d.subject_id)),
            })
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.record("customers", d.id).await.unwrap().is_some());
    assert!(store.subject_key(d.subject_id).await.unwrap().is_some());

    // With nothing kept, the key row goes too.
    let c = insert(store.as_ref(), 9).await;
    store
        .erase_subject(Erasure {
            subject_id: c.subject_id,
            erase: vec![(c.id, 1)],
            trim: vec![],
            remaining: 0,
            destroy_key: true,
            erased_ms: 43,
            audit: audit("erase-c", Some(c.subject_id)),
        })
        .await
        .unwrap();
    let keys = export_all(store.as_ref(), 100).await;
    assert!(keys.iter().all(|row| match row {
        custos_store::CopyRow::Subject { id, keys, .. } => *id != c.subject_id || keys.is_empty(),
        _ => true,
    }));
}
