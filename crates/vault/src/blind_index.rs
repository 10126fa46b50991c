//! The blind index as the vault uses it: entries digested under every blind-index key held,
//! and lookups retried when the store answers that the keys changed (a rotation began or
//! ended since they were read; see `custos_store::IndexKeyStore`).

use custos_store::{IndexEntry, RecordWithKey, StoreError};

use crate::error::{INDEX_CHANGED_AGAIN, KEY_ATTEMPTS};
use crate::keys::IndexKeys;
use crate::{Vault, VaultError};

/// The entries of one field's normalised value, one per blind-index key in `keys` (the keys
/// held when the write began, the same for all its fields).
pub(crate) fn index_entries(
    keys: &IndexKeys,
    collection: &str,
    field: &str,
    normalised: &str,
) -> impl Iterator<Item = IndexEntry> + use<> {
    let field = field.to_owned();
    keys.digests(collection, field.as_str(), normalised)
        .into_iter()
        .map(move |(key_version, digest)| IndexEntry {
            field: field.clone(),
            key_version,
            digest,
        })
}

impl Vault {
    /// The records of a collection whose field holds this normalised value.
    pub(crate) async fn find_by_value(
        &self,
        collection: &str,
        field: &str,
        normalised: &str,
    ) -> Result<Vec<RecordWithKey>, VaultError> {
        for _ in 0..KEY_ATTEMPTS {
            let digests = self.keys.index.get().digests(collection, field, normalised);
            match self.store.find_by_digest(collection, field, &digests).await {
                Err(StoreError::IndexChanged) => self.refresh_index().await?,
                other => return Ok(other?),
            }
        }
        Err(VaultError::Conflict(INDEX_CHANGED_AGAIN.into()))
    }

    /// Reads the blind-index keys again, after the store said they changed.
    pub(crate) async fn refresh_index(&self) -> Result<(), VaultError> {
        self.keys
            .index
            .refresh(self.store.as_ref(), &self.keys.root)
            .await
    }
}
