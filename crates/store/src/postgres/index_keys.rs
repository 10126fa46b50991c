//! The blind-index keys as PostgreSQL stores them (named keys `index` and `index.N`), and the
//! check every write of index entries makes against them, holding their rows `FOR KEY SHARE`
//! until it commits (see `reindex`).

use super::convert::backend;
use super::{PostgresStore, Tx};
use crate::error::StoreError;
use crate::records::IndexEntry;
use crate::reindex::{INDEX_KEY_NAMES, check_written, index_key_name, versions_of};

/// The statement listing the blind-index keys' names.
pub(super) fn names_sql(lock: bool) -> String {
    format!(
        "SELECT name FROM vault_keys WHERE {INDEX_KEY_NAMES}{}",
        if lock { " FOR KEY SHARE" } else { "" }
    )
}

pub(super) fn versions_in(rows: &[tokio_postgres::Row]) -> Vec<u32> {
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    versions_of(names.iter().map(String::as_str))
}

/// Refuses entries not made under exactly the versions stored, holding those keys' rows
/// until the transaction ends.
pub(super) async fn guard_index(tx: &Tx<'_>, entries: &[IndexEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let rows = tx.query(&names_sql(true), &[]).await.map_err(backend)?;
    check_written(&versions_in(&rows), entries)
}

/// The names of the keys `entries` were made under, distinct: what [`INSERT_RECORD`]
/// compares with the keys stored.
///
/// [`INSERT_RECORD`]: super::records
pub(super) fn written_names(entries: &[IndexEntry]) -> Vec<String> {
    let mut v: Vec<u32> = entries.iter().map(|e| e.key_version).collect();
    v.sort_unstable();
    v.dedup();
    v.into_iter().map(index_key_name).collect()
}

impl PostgresStore {
    pub(super) async fn live_index_versions(&self) -> Result<Vec<u32>, StoreError> {
        Ok(versions_in(&self.query(&names_sql(false), &[]).await?))
    }
}
