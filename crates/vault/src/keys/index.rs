//! The blind-index keys a vault holds: the current one, and the next while a rotation runs
//! (`custos keys rotate-index`). Read from the store's named keys `index` and `index.N`, and
//! read again whenever the store answers that they changed (`StoreError::IndexChanged`).

use std::sync::{Arc, RwLock};

use custos_core::crypto::IndexKey;
use custos_store::{Store, index_key_name};

use super::named::{named_key, stored_key};
use super::ring::RootRing;
use crate::VaultError;

/// The blind-index keys held at one moment, by version, ascending: the current key first.
pub(crate) struct IndexKeys {
    keys: Vec<(u32, IndexKey)>,
}

impl IndexKeys {
    /// The versions held, ascending.
    pub(crate) fn versions(&self) -> Vec<u32> {
        self.keys.iter().map(|(v, _)| *v).collect()
    }

    /// The current version: the one whose entries are whole.
    pub(crate) fn current(&self) -> u32 {
        self.keys[0].0
    }

    /// The next version, while a rotation runs.
    pub(crate) fn next(&self) -> Option<(u32, &IndexKey)> {
        self.keys.get(1).map(|(v, k)| (*v, k))
    }

    /// The digests of a normalised value under every key held, each with its version: what a
    /// write stores and a search looks up.
    pub(crate) fn digests(
        &self,
        collection: &str,
        field: &str,
        normalised: &str,
    ) -> Vec<(u32, Vec<u8>)> {
        self.keys
            .iter()
            .map(|(v, k)| (*v, k.digest(collection, field, normalised).to_vec()))
            .collect()
    }
}

/// The keys held now, replaced as a whole when read again; one refresh at a time.
pub(crate) struct IndexRing {
    held: RwLock<Arc<IndexKeys>>,
    refreshing: tokio::sync::Mutex<()>,
}

/// How many times the keys are listed and read again when one vanishes between the two (a
/// rotation finishing meanwhile).
const LOAD_ATTEMPTS: usize = 5;

impl IndexRing {
    pub(crate) async fn load(store: &dyn Store, root: &RootRing) -> Result<Self, VaultError> {
        Ok(Self {
            held: RwLock::new(Arc::new(read(store, root, true).await?)),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// The keys held now.
    pub(crate) fn get(&self) -> Arc<IndexKeys> {
        self.held.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the keys again from the store, unless another refresh just did: many requests
    /// refused at once cost one listing each and one read of the keys.
    pub(crate) async fn refresh(
        &self,
        store: &dyn Store,
        root: &RootRing,
    ) -> Result<(), VaultError> {
        let _one = self.refreshing.lock().await;
        if store.index_versions().await? == self.get().versions() {
            return Ok(());
        }
        let keys = Arc::new(read(store, root, false).await?);
        let versions = keys.versions();
        *self.held.write().unwrap_or_else(|e| e.into_inner()) = keys;
        tracing::debug!(?versions, "blind-index keys read again");
        Ok(())
    }
}

/// The blind-index keys stored; with `create`, version 1 is made when there is none (a new
/// vault). A refresh never makes one: a database emptied under a running server (a restore
/// in progress) must get the backup's key, not a new one.
async fn read(store: &dyn Store, root: &RootRing, create: bool) -> Result<IndexKeys, VaultError> {
    'again: for _ in 0..LOAD_ATTEMPTS {
        let versions = store.index_versions().await?;
        if versions.is_empty() && !create {
            return Err(VaultError::Unavailable(
                "the database holds no blind-index key (is it being restored?)".into(),
            ));
        }
        if versions.is_empty() {
            let key = named_key(store, root, &index_key_name(1)).await?;
            return Ok(IndexKeys {
                keys: vec![(1, key.into_index_key())],
            });
        }
        let consecutive = versions.len() <= 2 && versions.windows(2).all(|w| w[1] == w[0] + 1);
        if !consecutive {
            return Err(VaultError::Integrity(format!(
                "the database holds blind-index keys {versions:?}: one, or two in a row while a \
                 rotation runs, was expected"
            )));
        }
        let mut keys = Vec::with_capacity(versions.len());
        for v in versions {
            let name = index_key_name(v);
            match stored_key(store, root, &name).await? {
                Some(k) => keys.push((v, k.into_index_key())),
                // A rotation finished between the listing and this read.
                None => continue 'again,
            }
        }
        return Ok(IndexKeys { keys });
    }
    Err(VaultError::Conflict(
        "the blind-index keys kept changing while they were read; try again".into(),
    ))
}
