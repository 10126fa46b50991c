//! One conformance suite for the `Store` trait, run against every backend: the same tests,
//! not copies. A backend joins by one `conformance!` line.

mod breach;
mod operators;
mod outbox;
mod reindex;
mod rekey;
mod requests;
mod rotation;
mod signin;
mod snapshot;
mod suite;

use std::sync::Arc;

use custos_store::{Location, Store};

mod pg;
mod pg_tls;

/// A store in a fresh place, and what removes that place afterwards.
pub(crate) struct Fresh {
    pub(crate) store: Arc<dyn Store>,
    _guard: Box<dyn Send>,
}

async fn sqlite() -> Option<Fresh> {
    let dir = tempfile::tempdir().unwrap();
    let store = custos_store::open(&Location::Sqlite(dir.path().join("t.db")))
        .await
        .unwrap();
    Some(Fresh {
        store,
        _guard: Box::new(dir),
    })
}

/// A migrated PostgreSQL store in a schema of its own, so tests run in parallel; `None` (the
/// test is skipped, loudly) only when `CUSTOS_TEST_POSTGRES_URL` is unset. `.ci/run` sets it.
async fn postgres() -> Option<Fresh> {
    let schema = custos_store::testing::Schema::create().await?;
    let location = Location::Postgres(schema.url.clone());
    custos_store::migrate(&location).await.unwrap();
    let store = custos_store::open(&location).await.unwrap();
    Some(Fresh {
        store,
        _guard: Box::new(schema),
    })
}

macro_rules! conformance {
    ($backend:ident) => {
        mod $backend {
            use crate::suite;

            #[tokio::test(flavor = "multi_thread")]
            async fn erasure_shreds_in_one_transaction() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                suite::erasure_shreds_in_one_transaction(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn challenges_are_counted_and_used_once() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::signin::challenges_are_counted_and_used_once(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn sessions_are_touched_ended_and_purged() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::signin::sessions_are_touched_ended_and_purged(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn keys_are_rewrapped_once_and_a_version_retires_empty() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::rotation::keys_are_rewrapped_once_and_a_version_retires_empty(
                    fresh.store.clone(),
                )
                .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn an_index_rotation_finishes_only_when_whole() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::reindex::an_index_rotation_finishes_only_when_whole(fresh.store.clone())
                    .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn a_subject_is_rekeyed_whole_and_a_stale_write_is_refused() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::rekey::a_subject_is_rekeyed_whole_and_a_stale_write_is_refused(
                    fresh.store.clone(),
                )
                .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn a_snapshot_is_one_instant_and_a_wipe_empties() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::snapshot::a_snapshot_is_one_instant_and_a_wipe_empties(fresh.store.clone())
                    .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn detector_steps_count_once_and_alerts_dedupe() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::breach::detector_steps_count_once_and_alerts_dedupe(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn canaries_and_incidents() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::breach::canaries_and_incidents(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn leaves_are_found_by_actor_and_time() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::breach::leaves_are_found_by_actor_and_time(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn operators_are_found_updated_and_unique() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::operators::operators_are_found_updated_and_unique(fresh.store.clone())
                    .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn operator_logins_and_sessions() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::operators::logins_and_sessions(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn records_round_trip() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                suite::records_round_trip(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn stale_updates_conflict_and_indexes_follow() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                suite::stale_updates_conflict_and_indexes_follow(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn deletes_take_their_index_entries() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                suite::deletes_take_their_index_entries(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn a_failed_write_changes_nothing_and_spares_its_neighbours() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                suite::a_failed_write_changes_nothing_and_spares_its_neighbours(
                    fresh.store.clone(),
                )
                .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn audit_queue_and_integration() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                suite::audit_queue_and_integration(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn api_keys() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                suite::api_keys(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn sequencer_lease_is_exclusive_until_it_lapses() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                suite::sequencer_lease_is_exclusive_until_it_lapses(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn concurrent_writers_and_racing_integrations() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                suite::concurrent_writers_and_racing_integrations(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn export_and_import_copy_every_row_once() {
                let (Some(from), Some(to)) = (crate::$backend().await, crate::$backend().await)
                else {
                    return;
                };
                suite::export_and_import_copy_every_row_once(from.store.clone(), to.store.clone())
                    .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn consent_ledger_keeps_order_and_audits_each_event() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                suite::consent_ledger_keeps_order_and_audits_each_event(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn legal_holds_are_placed_and_released_once() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                suite::legal_holds_are_placed_and_released_once(fresh.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn anonymising_replaces_the_record_in_one_transaction() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                suite::anonymising_replaces_the_record_in_one_transaction(fresh.store.clone())
                    .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn requests_are_filed_and_listed_by_every_filter() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::requests::requests_are_filed_and_listed_by_every_filter(
                    fresh.store.clone(),
                )
                .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn a_transition_commits_with_its_audit_entry_and_a_stale_one_conflicts() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::requests::a_transition_commits_with_its_audit_entry_and_a_stale_one_conflicts(
                    fresh.store.clone(),
                )
                .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn requests_are_copied_as_stored() {
                let (Some(from), Some(to)) = (crate::$backend().await, crate::$backend().await)
                else {
                    return;
                };
                crate::requests::requests_are_copied_as_stored(from.store.clone(), to.store.clone())
                    .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn mail_is_claimed_when_due_and_marked_only_by_its_holder() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::outbox::mail_is_claimed_when_due_and_marked_only_by_its_holder(
                    fresh.store.clone(),
                )
                .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn two_concurrent_claimers_never_get_the_same_row() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                crate::outbox::two_concurrent_claimers_never_get_the_same_row(fresh.store.clone())
                    .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn the_outbox_is_copied_as_stored() {
                let (Some(from), Some(to)) = (crate::$backend().await, crate::$backend().await)
                else {
                    return;
                };
                crate::outbox::the_outbox_is_copied_as_stored(from.store.clone(), to.store.clone())
                    .await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn vault_keys_are_written_once() {
                let Some(fresh) = crate::$backend().await else {
                    return;
                };
                suite::vault_keys_are_written_once(fresh.store.clone()).await;
            }
        }
    };
}

conformance!(sqlite);
conformance!(postgres);

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
