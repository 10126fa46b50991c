//! One conformance suite for the `Store` trait, run against every backend: the same tests,
//! not copies. A backend joins by one `conformance!` line.

mod suite;

use std::sync::Arc;

use custos_store::{Location, Store};

/// A store in a fresh place, and what keeps that place alive.
pub(crate) struct Fresh {
    pub(crate) store: Arc<dyn Store>,
    _guard: tempfile::TempDir,
}

async fn sqlite() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let store = custos_store::open(&Location::Sqlite(dir.path().join("t.db")))
        .await
        .unwrap();
    Fresh { store, _guard: dir }
}

macro_rules! conformance {
    ($backend:ident) => {
        mod $backend {
            use crate::suite;

            #[tokio::test(flavor = "multi_thread")]
            async fn records_round_trip() {
                suite::records_round_trip(crate::$backend().await.store).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn stale_updates_conflict_and_indexes_follow() {
                suite::stale_updates_conflict_and_indexes_follow(crate::$backend().await.store)
                    .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn deletes_take_their_index_entries() {
                suite::deletes_take_their_index_entries(crate::$backend().await.store).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn a_failed_write_changes_nothing_and_spares_its_neighbours() {
                suite::a_failed_write_changes_nothing_and_spares_its_neighbours(
                    crate::$backend().await.store,
                )
                .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn audit_queue_and_integration() {
                suite::audit_queue_and_integration(crate::$backend().await.store).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn api_keys() {
                suite::api_keys(crate::$backend().await.store).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn vault_keys_are_written_once() {
                suite::vault_keys_are_written_once(crate::$backend().await.store).await;
            }
        }
    };
}

conformance!(sqlite);

#[tokio::test]
async fn sqlite_refuses_a_schema_newer_than_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(
        custos_store::open(&Location::Sqlite(path.clone()))
            .await
            .unwrap(),
    );
    // Reopening an up-to-date database is fine and migrates nothing.
    drop(
        custos_store::open(&Location::Sqlite(path.clone()))
            .await
            .unwrap(),
    );
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("PRAGMA user_version = 999").unwrap();
    drop(c);
    match custos_store::open(&Location::Sqlite(path)).await {
        Err(custos_store::StoreError::SchemaTooNew { found: 999, .. }) => {}
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}
