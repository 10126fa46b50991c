//! Blind-index key versions and the re-index a rotation of them runs: [`IndexKeyStore`], and
//! the checks every index write and search makes.
//!
//! The versions are the vault's named keys `index` (version 1) and `index.N`: one while no
//! rotation runs (the current key), two while one does (the current key and the next). A
//! rotation adds the next key, writes every record's entries under it, then removes the
//! current key, in the transaction that checks no entry is missing under the next one.
//!
//! Two rules keep every search right meanwhile:
//! - A write of index entries carries entries under every key held, no more and no fewer
//!   ([`check_written`]); otherwise it is refused as [`StoreError::IndexChanged`]. While a
//!   rotation runs, the current key's entries are therefore whole, and a record's next-key
//!   entries are whole once the re-index has passed it.
//! - A search digests its value under the keys the vault holds and is refused the same way,
//!   checked after the lookup, when the current key is not among them ([`check_searched`]).
//!   The current key only moves forward, and its entries are whole, so a search it lets
//!   through found every record.

use std::collections::BTreeMap;

use async_trait::async_trait;
use custos_core::ids::RecordId;

use crate::error::StoreError;
use crate::records::{IndexEntry, RecordWithKey};

/// The named key of blind-index key version `version`.
pub fn index_key_name(version: u32) -> String {
    match version {
        1 => "index".to_owned(),
        v => format!("index.{v}"),
    }
}

/// The blind-index key version a named key is, if it is one.
pub fn index_version_of(name: &str) -> Option<u32> {
    match name {
        "index" => Some(1),
        _ => name
            .strip_prefix("index.")
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| *v >= 2 && index_key_name(*v) == name),
    }
}

/// The versions among `names` (the vault's named keys), ascending.
pub(crate) fn versions_of<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<u32> {
    let mut v: Vec<u32> = names.into_iter().filter_map(index_version_of).collect();
    v.sort_unstable();
    v
}

/// The condition selecting blind-index keys among the named keys, for both backends.
pub(crate) const INDEX_KEY_NAMES: &str = "(name = 'index' OR name LIKE 'index.%')";

/// Refuses entries unless each field's are under exactly `live`, the versions held now. A
/// database holding no blind-index key yet (no vault has opened it) takes any.
pub(crate) fn check_written(live: &[u32], entries: &[IndexEntry]) -> Result<(), StoreError> {
    if entries.is_empty() || live.is_empty() {
        return Ok(());
    }
    let mut per_field: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for e in entries {
        per_field.entry(&e.field).or_default().push(e.key_version);
    }
    for written in per_field.values_mut() {
        written.sort_unstable();
        written.dedup();
        if written != live {
            return Err(StoreError::IndexChanged);
        }
    }
    Ok(())
}

/// Refuses a search that did not digest under the current version (the lowest of `live`).
pub(crate) fn check_searched(live: &[u32], searched: &[u32]) -> Result<(), StoreError> {
    match live.first() {
        Some(current) if !searched.contains(current) => Err(StoreError::IndexChanged),
        _ => Ok(()),
    }
}

/// A record's entries under the next key, computed from the record as read.
#[derive(Debug, Clone)]
pub struct Reindexed {
    /// The record.
    pub id: RecordId,
    /// Its version when read: the entries are written only while it is unchanged.
    pub version: i64,
    /// Its entries under the next key; a field the current key indexed and these omit (no
    /// longer searchable) loses its current entry too.
    pub entries: Vec<IndexEntry>,
}

/// Blind-index key versions, and what a rotation of them reads and writes.
#[async_trait]
pub trait IndexKeyStore: Send + Sync {
    /// The blind-index key versions stored, ascending: the current one, then the next while a
    /// rotation runs. Empty before the vault first opened the database.
    async fn index_versions(&self) -> Result<Vec<u32>, StoreError>;
    /// How many records have a field indexed under `current` and not yet under `next`.
    async fn count_unindexed(&self, current: u32, next: u32) -> Result<u64, StoreError>;
    /// Up to `limit` of those records, in id order after `after`.
    async fn unindexed_records(
        &self,
        current: u32,
        next: u32,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<RecordWithKey>, StoreError>;
    /// Writes each record's entries under `next` (replacing any it has) while the record is
    /// still the version read, and counts them into the rotation's progress, in one
    /// transaction; returns how many records were written. A changed record is skipped: a
    /// change writes the fields it sets under both keys, and a field it left is found again
    /// by the next pass.
    async fn reindex(
        &self,
        rotation: i64,
        current: u32,
        next: u32,
        batch: Vec<Reindexed>,
    ) -> Result<u64, StoreError>;
    /// Removes the key of `current`, making `next` the only one, in a transaction that first
    /// checks no record still lacks an entry under `next`: a conflict naming how many do.
    async fn finish_index_rotation(&self, current: u32, next: u32) -> Result<(), StoreError>;
    /// Deletes up to `limit` entries made under versions below `version`; how many.
    async fn drop_index_entries(&self, version: u32, limit: usize) -> Result<u64, StoreError>;
    /// The number of entries under each version, ascending.
    async fn index_entries_per_version(&self) -> Result<Vec<(u32, u64)>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(v: u32) -> IndexEntry {
        entry_of("email", v)
    }

    fn entry_of(field: &str, v: u32) -> IndexEntry {
        IndexEntry {
            field: field.into(),
            key_version: v,
            digest: vec![v as u8; 32],
        }
    }

    #[test]
    fn names_and_versions() {
        assert_eq!(index_key_name(1), "index");
        assert_eq!(index_key_name(7), "index.7");
        for v in [1, 2, 17] {
            assert_eq!(index_version_of(&index_key_name(v)), Some(v));
        }
        for other in [
            "index.1", "index.x", "indexes", "portal", "index.", "index.02", "index.+2",
        ] {
            assert_eq!(index_version_of(other), None, "{other}");
        }
        assert_eq!(versions_of(["index.3", "portal", "index.2"]), vec![2, 3]);
    }

    #[test]
    fn writes_carry_every_live_version() {
        assert!(check_written(&[1], &[]).is_ok());
        assert!(check_written(&[], &[entry(3)]).is_ok());
        assert!(check_written(&[1], &[entry(1)]).is_ok());
        assert!(check_written(&[1, 2], &[entry(1), entry(2)]).is_ok());
        for (live, written) in [
            (vec![1, 2], vec![entry(1)]),
            (vec![2], vec![entry(1), entry(2)]),
            (vec![1], vec![entry(2)]),
            // Every field under both keys, not one field under each.
            (vec![1, 2], vec![entry(1), entry_of("phone", 2)]),
            (vec![1, 2], vec![entry(1), entry(2), entry_of("phone", 1)]),
        ] {
            assert!(matches!(
                check_written(&live, &written),
                Err(StoreError::IndexChanged)
            ));
        }
    }

    #[test]
    fn searches_need_the_current_version() {
        assert!(check_searched(&[1, 2], &[1]).is_ok());
        assert!(check_searched(&[1, 2], &[1, 2]).is_ok());
        assert!(check_searched(&[2], &[1, 2]).is_ok());
        assert!(check_searched(&[], &[1]).is_ok());
        assert!(matches!(
            check_searched(&[2], &[1]),
            Err(StoreError::IndexChanged)
        ));
    }
}
