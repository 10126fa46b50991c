//! What both backends share: statements they run alike and the encodings of stored values.
//! Backends import from here, never from each other.

use custos_core::merkle::Hash;

use crate::error::StoreError;

/// The columns a read of a record with its subject's key selects, in the order both backends
/// read them; each appends its own conditions.
pub(crate) const RECORD_WITH_KEY: &str = "SELECT r.id, r.subject_id, r.collection, r.fields, r.version, r.created_ms, \
     r.updated_ms, k.wrapped, \
     EXISTS (SELECT 1 FROM consent_events c WHERE c.subject_id = r.subject_id) \
     FROM records r JOIN subject_keys k ON k.subject_id = r.subject_id";

/// Takes the sequencer lease when it is free, lapsed or already ours; returns a row when
/// taken. The same statement runs on SQLite and PostgreSQL.
pub(crate) const LEASE_SQL: &str = "INSERT INTO leases (name, holder, expires_ms) \
     VALUES ('sequencer', CAST($1 AS TEXT), CAST($2 AS BIGINT) + CAST($3 AS BIGINT)) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms \
     WHERE leases.holder = excluded.holder OR leases.expires_ms < CAST($2 AS BIGINT) RETURNING holder";

/// A stored hash, which must be 32 bytes.
pub(crate) fn hash32(b: Vec<u8>) -> Result<Hash, StoreError> {
    b.try_into()
        .map_err(|_| StoreError::Corrupt("a hash column is not 32 bytes".into()))
}

/// A stored Ed25519 signature, which must be 64 bytes.
pub(crate) fn signature64(b: Vec<u8>) -> Result<[u8; 64], StoreError> {
    b.try_into()
        .map_err(|_| StoreError::Corrupt("a signature is not 64 bytes".into()))
}

/// The tree state's peaks, stored concatenated.
pub(crate) fn split_peaks(peaks: &[u8]) -> Result<Vec<Hash>, StoreError> {
    if !peaks.len().is_multiple_of(32) {
        return Err(StoreError::Corrupt(
            "the tree state's peaks are not whole hashes".into(),
        ));
    }
    peaks.chunks(32).map(|c| hash32(c.to_vec())).collect()
}

#[cfg(test)]
mod tests {
    /// What both backends need comes from this file: neither backend names the other.
    #[test]
    fn backends_never_import_each_other() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for (dir, other) in [("sqlite", "postgres"), ("postgres", "sqlite")] {
            for entry in std::fs::read_dir(src.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                for needle in [format!("crate::{other}"), format!("super::super::{other}")] {
                    assert!(!text.contains(&needle), "{} names {needle}", path.display());
                }
            }
        }
    }
}
