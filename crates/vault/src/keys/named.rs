//! The vault's named keys: stored wrapped by the root key under their names, made when first
//! needed, and the marks key, which a vault made before it existed begins from its first
//! blind-index key.

use custos_core::crypto::{CryptoError, DataKey, MarkKey, WrapContext};
use custos_store::{Store, StoreError};

use super::ring::RootRing;
use crate::VaultError;

/// The key of marks that outlive blind-index keys (`MarkKey`).
const MARKS_KEY: &str = "marks";

/// The marks key; when absent, made from the first blind-index key if the vault has it (it
/// was made before marks had their own key, and its sites' keys and tokens must still hold),
/// else new.
pub(super) async fn marks_key(store: &dyn Store, root: &RootRing) -> Result<MarkKey, VaultError> {
    if let Some(k) = stored_key(store, root, MARKS_KEY).await? {
        return Ok(k.into_mark_key());
    }
    let first = custos_store::index_key_name(1);
    let seed = match stored_key(store, root, &first).await? {
        Some(k) => k,
        None => DataKey::generate(1)?,
    };
    Ok(create_key(store, root, MARKS_KEY, seed)
        .await?
        .into_mark_key())
}

/// The refusal of a root key that does not open the named key `name`.
fn wrong_root(root: &RootRing, name: &str, e: CryptoError) -> VaultError {
    match e {
        CryptoError::UnknownKeyVersion(v) => VaultError::Setup(format!(
            "this vault's {name} key is wrapped by root key version {v}, which {} does not hold \
             (with a key file: copy the one holding it from where `custos keys rotate-root` ran)",
            root.describe()
        )),
        CryptoError::Token(e) => VaultError::Setup(format!(
            "unwrapping this vault's {name} key in {}: {e}",
            root.describe()
        )),
        _ => VaultError::Setup(format!(
            "the root key does not open this vault's {name} key: is {} the key this database was created with?",
            root.describe()
        )),
    }
}

/// A named vault key, unwrapped, if it is stored.
pub(crate) async fn stored_key(
    store: &dyn Store,
    root: &RootRing,
    name: &str,
) -> Result<Option<DataKey>, VaultError> {
    match store.vault_key(name).await? {
        Some(w) => root
            .unwrap(WrapContext::Named(name), &w)
            .map(Some)
            .map_err(|e| wrong_root(root, name, e)),
        None => Ok(None),
    }
}

/// A named vault key, unwrapped; created (and stored wrapped) when absent.
pub(crate) async fn named_key(
    store: &dyn Store,
    root: &RootRing,
    name: &str,
) -> Result<DataKey, VaultError> {
    if let Some(k) = stored_key(store, root, name).await? {
        return Ok(k);
    }
    create_key(store, root, name, DataKey::generate(1)?).await
}

/// Stores `key` as the named key `name`; when another process stored one first, theirs.
async fn create_key(
    store: &dyn Store,
    root: &RootRing,
    name: &str,
    key: DataKey,
) -> Result<DataKey, VaultError> {
    match store
        .insert_vault_key(name, root.wrap(WrapContext::Named(name), &key)?)
        .await
    {
        Ok(()) => Ok(key),
        // Another process created it first: use theirs.
        Err(StoreError::Conflict(_)) => stored_key(store, root, name)
            .await?
            .ok_or(VaultError::Internal(format!("the {name} key vanished"))),
        Err(e) => Err(e.into()),
    }
}
