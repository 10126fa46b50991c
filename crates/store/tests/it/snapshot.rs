//! Snapshots for `custos backup` on every backend: one instant of every table while writers
//! go on, in a file SQLite opens alone; and a wipe that empties every table.

use std::sync::Arc;

use custos_store::prelude::*;
use custos_store::{SqliteStore, Store, Table};

use crate::suite::insert;

pub(crate) async fn a_snapshot_is_one_instant_and_a_wipe_empties(store: Arc<dyn Store>) {
    for d in 0..20 {
        insert(store.as_ref(), d).await;
    }
    assert!(!store.is_empty().await.unwrap());

    // Each insert writes a subject, a record and an index entry in one transaction: a
    // snapshot read table by table at different instants would count more records than
    // subjects.
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for d in 0..150u8 {
                insert(store.as_ref(), d).await;
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.db");
    store.snapshot_into(&path).await.unwrap();
    writer.await.unwrap();
    assert!(
        store.snapshot_into(&path).await.is_err(),
        "a snapshot never overwrites a file"
    );
    assert!(
        !dir.path().join("snapshot.db-wal").exists(),
        "the file alone holds the snapshot"
    );

    let snap = SqliteStore::open(&path).await.unwrap();
    let subjects = snap.count(Table::Subjects).await.unwrap().0;
    let (records, index) = snap.count(Table::Records).await.unwrap();
    assert!(subjects >= 20, "{subjects}");
    assert_eq!(
        (records, index),
        (subjects, subjects),
        "one instant of every table"
    );
    assert_eq!(
        snap.tree_state().await.unwrap(),
        // The snapshot's right edge is the store's as of then; nothing was sequenced since.
        store.tree_state().await.unwrap()
    );

    store.wipe().await.unwrap();
    assert!(store.is_empty().await.unwrap());
    assert_eq!(store.count(Table::Records).await.unwrap(), (0, 0));
    assert_eq!(store.tree_state().await.unwrap().size, 0);
    insert(store.as_ref(), 1).await;
    assert_eq!(store.count(Table::Records).await.unwrap(), (1, 1));
}
