//! A blind-index key rotation, on every backend: the keys are the named keys `index` and
//! `index.N`; while two are held a write must carry entries under both and a search must
//! digest under the current one; the re-index writes a record's entries under the next key
//! only while the record is unchanged; the finish refuses while any field lacks an entry
//! under the next key, then leaves that key alone; old entries are deleted in batches.

use std::sync::Arc;

use custos_core::ids::{RecordId, SubjectId};
use custos_store::testing::wrapped_key;
use custos_store::{
    IndexEntry, NewRecord, NewSubject, RecordChange, RecordRow, Reindexed, RotationKind, Store,
    StoreError,
};

use crate::suite::{audit, row};

/// The digest of value `n` under key version `v`.
fn dg(v: u32, n: u8) -> Vec<u8> {
    vec![(v as u8) << 4 | n; 32]
}

fn entries(of: &[(&str, u8)], versions: &[u32]) -> Vec<IndexEntry> {
    versions
        .iter()
        .flat_map(|v| {
            of.iter().map(move |(f, n)| IndexEntry {
                field: (*f).to_owned(),
                key_version: *v,
                digest: dg(*v, *n),
            })
        })
        .collect()
}

async fn insert(
    store: &dyn Store,
    of: &[(&str, u8)],
    versions: &[u32],
) -> Result<RecordRow, StoreError> {
    let subject = SubjectId::random();
    let fields: Vec<(&str, &[u8])> = of.iter().map(|(f, _)| (*f, &b"sealed"[..])).collect();
    let record = row(subject, &fields);
    store
        .insert_record(NewRecord {
            record: record.clone(),
            new_subject: Some(NewSubject {
                id: subject,
                wrapped_key: wrapped_key(1, 1),
                created_ms: 1,
            }),
            index: entries(of, versions),
            audit: audit("create", Some(subject)),
        })
        .await
        .map(|()| record)
}

async fn found(store: &dyn Store, field: &str, digests: &[(u32, Vec<u8>)]) -> Vec<RecordId> {
    store
        .find_by_digest("customers", field, digests)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.record.id)
        .collect()
}

fn changed(record: &RecordRow, field: &str, n: u8, versions: &[u32]) -> RecordChange {
    RecordChange {
        record: record.clone(),
        reindexed_fields: vec![field.to_owned()],
        index: entries(&[(field, n)], versions),
        audit: audit("update", Some(record.subject_id)),
    }
}

pub(crate) async fn an_index_rotation_finishes_only_when_whole(store: Arc<dyn Store>) {
    let s = store.as_ref();
    s.insert_vault_key("index", wrapped_key(1, 9))
        .await
        .unwrap();
    assert_eq!(s.index_versions().await.unwrap(), vec![1]);
    let a = insert(s, &[("email", 1), ("phone", 2)], &[1])
        .await
        .unwrap();
    let b = insert(s, &[("email", 3)], &[1]).await.unwrap();
    insert(s, &[], &[1]).await.unwrap();
    assert_eq!(found(s, "email", &[(1, dg(1, 1))]).await, vec![a.id]);

    // A rotation begins: the next key is stored.
    s.insert_vault_key("index.2", wrapped_key(1, 8))
        .await
        .unwrap();
    assert_eq!(s.index_versions().await.unwrap(), vec![1, 2]);
    let rotation = s
        .start_rotation(RotationKind::Index, 2, 10, 2)
        .await
        .unwrap();
    // A write under the current key alone is refused, whole: no subject, no record.
    let before = s.count_records("customers").await.unwrap();
    let stale = insert(s, &[("email", 4)], &[1]).await;
    assert!(matches!(stale, Err(StoreError::IndexChanged)), "{stale:?}");
    assert_eq!(s.count_records("customers").await.unwrap(), before);
    // So is one whose fields are not each under both keys.
    let subject = SubjectId::random();
    let mut mixed = entries(&[("email", 4)], &[1, 2]);
    mixed.extend(entries(&[("phone", 4)], &[1]));
    let refused = s
        .insert_record(NewRecord {
            record: row(subject, &[("email", b"sealed"), ("phone", b"sealed")]),
            new_subject: Some(NewSubject {
                id: subject,
                wrapped_key: wrapped_key(1, 1),
                created_ms: 1,
            }),
            index: mixed,
            audit: audit("create", Some(subject)),
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::IndexChanged)),
        "{refused:?}"
    );
    assert!(s.subject_key(subject).await.unwrap().is_none());
    assert_eq!(s.count_records("customers").await.unwrap(), before);
    let d = insert(s, &[("email", 4)], &[1, 2]).await.unwrap();
    // A search under the current key finds old and new records; one without it is refused.
    assert_eq!(found(s, "email", &[(1, dg(1, 4))]).await, vec![d.id]);
    assert!(matches!(
        s.find_by_digest("customers", "email", &[(2, dg(2, 1))])
            .await,
        Err(StoreError::IndexChanged)
    ));

    // What is left: a and b (d has both, the record with no searchable field has none).
    assert_eq!(s.count_unindexed(1, 2).await.unwrap(), 2);
    let mut ids = [a.id, b.id];
    ids.sort_by_key(|i| i.to_string());
    let first = s.unindexed_records(1, 2, None, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    let rest = s
        .unindexed_records(1, 2, Some(first[0].record.id), 10)
        .await
        .unwrap();
    let paged: Vec<RecordId> = first.iter().chain(&rest).map(|r| r.record.id).collect();
    assert_eq!(
        paged.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        ids.iter().map(|i| i.to_string()).collect::<Vec<_>>()
    );

    // A change under one key alone is refused; under both it is taken.
    assert!(matches!(
        s.update_record(changed(&b, "email", 5, &[1])).await,
        Err(StoreError::IndexChanged)
    ));
    s.update_record(changed(&b, "email", 5, &[1, 2]))
        .await
        .unwrap();
    // A change of one field leaves a's other field to the re-index.
    s.update_record(changed(&a, "phone", 6, &[1, 2]))
        .await
        .unwrap();
    assert_eq!(s.count_unindexed(1, 2).await.unwrap(), 1);

    // The finish refuses while a lacks its email under key 2, and changes nothing.
    let refused = s.finish_index_rotation(1, 2).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(s.index_versions().await.unwrap(), vec![1, 2]);

    // The re-index skips b as read before its change (version 1), and writes a as it is now.
    let reindexed = s
        .reindex(
            rotation.id,
            1,
            2,
            vec![
                Reindexed {
                    id: b.id,
                    version: 1,
                    entries: entries(&[("email", 3)], &[2]),
                },
                Reindexed {
                    id: a.id,
                    version: 2,
                    entries: entries(&[("email", 1), ("phone", 6)], &[2]),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(reindexed, 1);
    assert_eq!(s.count_unindexed(1, 2).await.unwrap(), 0);
    // b's old value is found under neither key; its new one under both.
    assert!(
        found(s, "email", &[(1, dg(1, 3)), (2, dg(2, 3))])
            .await
            .is_empty()
    );
    assert_eq!(
        found(s, "email", &[(1, dg(1, 5)), (2, dg(2, 5))]).await,
        vec![b.id]
    );

    s.finish_index_rotation(1, 2).await.unwrap();
    assert_eq!(s.index_versions().await.unwrap(), vec![2]);
    assert!(s.vault_key("index").await.unwrap().is_none());
    assert!(s.vault_key("index.2").await.unwrap().is_some());
    // Now key 2 is current: searches and writes under key 1 are refused.
    assert!(matches!(
        s.find_by_digest("customers", "email", &[(1, dg(1, 1))])
            .await,
        Err(StoreError::IndexChanged)
    ));
    assert_eq!(
        found(s, "email", &[(1, dg(1, 1)), (2, dg(2, 1))]).await,
        vec![a.id]
    );
    assert_eq!(found(s, "phone", &[(2, dg(2, 6))]).await, vec![a.id]);
    assert!(matches!(
        insert(s, &[("email", 7)], &[1, 2]).await,
        Err(StoreError::IndexChanged)
    ));
    insert(s, &[("email", 7)], &[2]).await.unwrap();
    assert!(matches!(
        s.finish_index_rotation(1, 2).await,
        Err(StoreError::IndexChanged)
    ));

    // The old entries go in batches; the rotation counted what it did.
    let per = s.index_entries_per_version().await.unwrap();
    let old = per.iter().find(|(v, _)| *v == 1).map_or(0, |(_, n)| *n);
    assert_eq!(old, 4, "{per:?}");
    assert_eq!(s.drop_index_entries(2, 3).await.unwrap(), 3);
    assert_eq!(s.drop_index_entries(2, 3).await.unwrap(), 1);
    assert_eq!(s.drop_index_entries(2, 3).await.unwrap(), 0);
    let per = s.index_entries_per_version().await.unwrap();
    assert_eq!(per, vec![(2, 5)]);
    let r = s.open_rotation(RotationKind::Index).await.unwrap().unwrap();
    assert_eq!((r.target, r.done), (2, 1));
}
