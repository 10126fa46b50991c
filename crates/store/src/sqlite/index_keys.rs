//! The blind-index keys as SQLite stores them (named keys `index` and `index.N`), and the
//! check every write of index entries makes against them on the writer thread.

use rusqlite::Connection;

use super::convert::backend;
use crate::error::StoreError;
use crate::records::IndexEntry;
use crate::reindex::{INDEX_KEY_NAMES, check_written, versions_of};

/// The blind-index key versions stored, ascending.
pub(super) fn live_versions(c: &Connection) -> Result<Vec<u32>, StoreError> {
    let mut st = c
        .prepare_cached(&format!(
            "SELECT name FROM vault_keys WHERE {INDEX_KEY_NAMES}"
        ))
        .map_err(backend)?;
    let names = st
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    Ok(versions_of(names.iter().map(String::as_str)))
}

/// Refuses entries not made under exactly the versions stored.
pub(super) fn check_index(c: &Connection, entries: &[IndexEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    check_written(&live_versions(c)?, entries)
}
