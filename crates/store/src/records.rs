//! Records and their subjects: the rows a record is stored as, and [`RecordStore`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use custos_core::ids::{RecordId, SubjectId};

use crate::audit::QueuedAudit;
use crate::error::StoreError;

/// A field name to its ciphertext.
pub type EncryptedFields = BTreeMap<String, Vec<u8>>;

/// One stored record: ciphertexts only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// The record.
    pub id: RecordId,
    /// Its subject.
    pub subject_id: SubjectId,
    /// Its collection.
    pub collection: String,
    /// Its fields, encrypted.
    pub fields: EncryptedFields,
    /// Bumped on every change, for optimistic concurrency.
    pub version: i64,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Last changed, ms since the epoch.
    pub updated_ms: i64,
}

/// A record with its subject's wrapped data key: what a read needs, in one query.
#[derive(Debug, Clone)]
pub struct RecordWithKey {
    /// The record.
    pub record: RecordRow,
    /// The subject's data key, wrapped by the root key.
    pub wrapped_key: Vec<u8>,
    /// Whether the subject's consent ledger holds any event: when not, a read needs no
    /// second query to know the subject chose nothing.
    pub has_ledger: bool,
}

/// A blind-index entry of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The field.
    pub field: String,
    /// The blind-index key version the digest was made with.
    pub key_version: u32,
    /// HMAC of its normalised value.
    pub digest: Vec<u8>,
}

/// A subject created with its first record.
#[derive(Debug, Clone)]
pub struct NewSubject {
    /// The subject.
    pub id: SubjectId,
    /// Its data key, wrapped.
    pub wrapped_key: Vec<u8>,
    /// Created, ms since the epoch.
    pub created_ms: i64,
}

/// A new record, and all that commits with it.
#[derive(Debug, Clone)]
pub struct NewRecord {
    /// The record.
    pub record: RecordRow,
    /// The subject, when the record creates it.
    pub new_subject: Option<NewSubject>,
    /// Its blind-index entries.
    pub index: Vec<IndexEntry>,
    /// Its audit entry.
    pub audit: QueuedAudit,
}

/// A change to a record, and all that commits with it.
#[derive(Debug, Clone)]
pub struct RecordChange {
    /// The record with its new fields; `version` is the version that was read.
    pub record: RecordRow,
    /// Fields whose blind-index entries are replaced (all of them for a field given here).
    pub reindexed_fields: Vec<String>,
    /// The new entries of those fields.
    pub index: Vec<IndexEntry>,
    /// Its audit entry.
    pub audit: QueuedAudit,
}

/// Records with their subjects, keys and blind-index entries.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Creates a record, its subject when new, its index entries and its audit entry.
    async fn insert_record(&self, new: NewRecord) -> Result<(), StoreError>;
    /// Replaces a record by its anonymised copy in one transaction: deletes `old` of
    /// `collection` with its index entries (`NotFound` when it is gone) and inserts `new`, a
    /// record of a new subject, with `new.audit` as the one audit entry of the act.
    async fn anonymise_record(
        &self,
        collection: &str,
        old: RecordId,
        new: NewRecord,
    ) -> Result<(), StoreError>;
    /// Changes a record if its version is still the one read; a conflict otherwise.
    async fn update_record(&self, change: RecordChange) -> Result<(), StoreError>;
    /// Deletes a record of a collection with its index entries; `NotFound` when absent.
    async fn delete_record(
        &self,
        collection: &str,
        id: RecordId,
        audit: QueuedAudit,
    ) -> Result<(), StoreError>;
    /// A record of a collection with its subject's wrapped key.
    async fn record(
        &self,
        collection: &str,
        id: RecordId,
    ) -> Result<Option<RecordWithKey>, StoreError>;
    /// The records of a collection whose field has one of these digests, each given with the
    /// blind-index key version it was made with; [`StoreError::IndexChanged`] when none was
    /// made with the current version (see [`crate::IndexKeyStore`]).
    async fn find_by_digest(
        &self,
        collection: &str,
        field: &str,
        digests: &[(u32, Vec<u8>)],
    ) -> Result<Vec<RecordWithKey>, StoreError>;
    /// All records of a subject.
    async fn subject_records(&self, subject: SubjectId) -> Result<Vec<RecordWithKey>, StoreError>;
    /// Whether a subject exists, and its wrapped key.
    async fn subject_key(&self, subject: SubjectId) -> Result<Option<Vec<u8>>, StoreError>;
    /// The number of records in a collection.
    async fn count_records(&self, collection: &str) -> Result<u64, StoreError>;
}

/// Encodes a field map as bytes: count, then (name, ciphertext) pairs, length-prefixed.
pub fn encode_fields(fields: &EncryptedFields) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.values().map(|v| v.len() + 24).sum::<usize>() + 2);
    out.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (name, ct) in fields {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(ct.len() as u32).to_be_bytes());
        out.extend_from_slice(ct);
    }
    out
}

/// Decodes [`encode_fields`].
///
/// # Errors
/// [`StoreError::Corrupt`] when the bytes are truncated or malformed.
pub fn decode_fields(mut b: &[u8]) -> Result<EncryptedFields, StoreError> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], StoreError> {
        if b.len() < n {
            return Err(StoreError::Corrupt("record fields are truncated".into()));
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Ok(h)
    }
    let n = u16::from_be_bytes(take(&mut b, 2)?.try_into().expect("two bytes"));
    let mut out = EncryptedFields::new();
    for _ in 0..n {
        let len = u16::from_be_bytes(take(&mut b, 2)?.try_into().expect("two bytes")) as usize;
        let name = std::str::from_utf8(take(&mut b, len)?)
            .map_err(|_| StoreError::Corrupt("a field name is not UTF-8".into()))?
            .to_owned();
        let len = u32::from_be_bytes(take(&mut b, 4)?.try_into().expect("four bytes")) as usize;
        out.insert(name, take(&mut b, len)?.to_vec());
    }
    if !b.is_empty() {
        return Err(StoreError::Corrupt(
            "record fields have trailing bytes".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_truncation_is_caught() {
        let mut f = EncryptedFields::new();
        f.insert("email".into(), vec![1, 2, 3]);
        f.insert("name".into(), vec![]);
        let b = encode_fields(&f);
        assert_eq!(decode_fields(&b).unwrap(), f);
        for cut in 0..b.len() {
            assert!(decode_fields(&b[..cut]).is_err(), "cut at {cut}");
        }
    }
}
