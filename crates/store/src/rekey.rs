//! Subjects' data keys replaced: a rotation gives a subject a new data key and seals again,
//! in one transaction, everything sealed under the old one (its records' fields, its
//! requests' reasons, its queued messages). [`SubjectKeyStore`].
//!
//! Writes race it safely: every write of something sealed under a subject's key says which
//! key version sealed it (the ciphertexts' headers do), and is refused with
//! [`StoreError::KeyChanged`] when the subject's key is another by then. On PostgreSQL the
//! write holds the subject's and its key's rows `FOR SHARE` until it commits, and the
//! rotation takes them `FOR UPDATE` before reading, so one waits for the other; on SQLite the
//! one writer thread orders them.

use std::sync::Arc;

use async_trait::async_trait;
use custos_core::ids::{MailId, RecordId, RequestId, SubjectId};

use crate::error::StoreError;
use crate::records::EncryptedFields;

/// What is sealed under one subject's data key, as a rotation reads it and writes it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectSecrets {
    /// The subject.
    pub subject: SubjectId,
    /// The data key's version.
    pub key_version: u32,
    /// The data key, wrapped by the root key.
    pub wrapped_key: Vec<u8>,
    /// Every record's collection and sealed fields, by record id.
    pub records: Vec<(RecordId, String, EncryptedFields)>,
    /// Every request's sealed reasons, by request id.
    pub requests: Vec<(RequestId, EncryptedFields)>,
    /// Every message to the subject in the outbox, sealed, by id.
    pub mail: Vec<(MailId, Vec<u8>)>,
}

/// Seals a subject's secrets again under a new data key: given them as stored, returns them
/// under a key of a higher version, the same rows with new ciphertexts.
pub type Reseal = Arc<dyn Fn(SubjectSecrets) -> Result<SubjectSecrets, StoreError> + Send + Sync>;

/// What became of one subject in a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rekeyed {
    /// Given a new key, everything sealed again, and counted in the rotation's progress.
    Done,
    /// Its key is no older than the cutoff any more (another run did it), or the subject is
    /// erased or gone: nothing to do.
    Skipped,
    /// A message to it is being delivered right now: try it again after the delivery lease.
    Busy,
}

/// Subjects' data keys by age, and their replacement.
#[async_trait]
pub trait SubjectKeyStore: Send + Sync {
    /// Up to `limit` subjects not erased whose data key was made before `before_ms`, oldest
    /// key first, after `after` (a key's creation time and its subject) when given.
    async fn keyed_before(
        &self,
        before_ms: i64,
        after: Option<(i64, SubjectId)>,
        limit: usize,
    ) -> Result<Vec<(i64, SubjectId)>, StoreError>;

    /// How many subjects not erased have a data key made before `before_ms`.
    async fn count_keyed_before(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// Gives `subject` a new data key, in one transaction: its rows are locked, read, sealed
    /// again by `reseal`, written back with the new wrapped key (made at `now_ms`), and
    /// counted into rotation `rotation`'s progress. Refused as [`Rekeyed::Busy`] while a
    /// message to it is claimed for delivery at `now_ms`.
    async fn rekey_subject(
        &self,
        rotation: i64,
        subject: SubjectId,
        before_ms: i64,
        now_ms: i64,
        reseal: Reseal,
    ) -> Result<Rekeyed, StoreError>;
}

/// The one data-key version these ciphertexts were sealed under; none when there are none
/// (bytes that are not one of the vault's ciphertexts name no version). Ciphertexts of two
/// versions are refused as [`StoreError::KeyChanged`]: part was sealed before a rotation and
/// part after.
///
/// # Errors
/// `KeyChanged` as above.
pub(crate) fn sealed_version<'a>(
    sealed: impl IntoIterator<Item = &'a Vec<u8>>,
) -> Result<Option<u32>, StoreError> {
    let mut version = None;
    for ct in sealed {
        let Ok(v) = custos_core::crypto::ciphertext_key_version(ct) else {
            continue;
        };
        match version {
            None => version = Some(v),
            Some(seen) if seen != v => return Err(StoreError::KeyChanged),
            Some(_) => {}
        }
    }
    Ok(version)
}

/// Checks that `new` is `old` sealed again: the same rows, a key of a higher version, and
/// every ciphertext under it.
pub(crate) fn check_resealed(old: &SubjectSecrets, new: &SubjectSecrets) -> Result<(), StoreError> {
    let refuse = |what: &str| Err(StoreError::Backend(format!("a reseal {what}")));
    if new.subject != old.subject || new.key_version <= old.key_version {
        return refuse("must keep the subject and raise the key version");
    }
    let same_rows = new.records.len() == old.records.len()
        && new.requests.len() == old.requests.len()
        && new.mail.len() == old.mail.len()
        && new
            .records
            .iter()
            .zip(&old.records)
            .all(|(n, o)| n.0 == o.0 && n.1 == o.1 && n.2.keys().eq(o.2.keys()))
        && new
            .requests
            .iter()
            .zip(&old.requests)
            .all(|(n, o)| n.0 == o.0 && n.1.keys().eq(o.1.keys()))
        && new.mail.iter().zip(&old.mail).all(|(n, o)| n.0 == o.0);
    if !same_rows {
        return refuse("must return the rows it was given");
    }
    let sealed = new
        .records
        .iter()
        .flat_map(|r| r.2.values())
        .chain(new.requests.iter().flat_map(|r| r.1.values()))
        .chain(new.mail.iter().map(|m| &m.1));
    match sealed_version(sealed)? {
        Some(v) if v != new.key_version => refuse("must seal under the new key"),
        _ => Ok(()),
    }
}
