//! The vault's key ring: the root key versions wherever they are held ([`RootRing`]: the key
//! file, the environment, or a PKCS#11 token), and the blind-index, audit-signing, portal and
//! outbox keys, stored wrapped by the root key.

use custos_core::audit::SigningKey;
use custos_core::crypto::{CryptoError, DataKey, IndexKey, MacKey, WrapContext};
use custos_core::inventory::RootKeyConfig;
use custos_store::{Store, StoreError};

use crate::VaultError;

mod file;
mod ring;
mod token;

pub(crate) use file::{root_keys_from_env, write_root_key};
pub use ring::ROOT_KEY_RECHECK;
pub(crate) use ring::RootRing;
pub(crate) use token::Token;

const INDEX_KEY: &str = "index";
const SIGNING_KEY: &str = "audit-signing";
const PORTAL_KEY: &str = "portal";
/// The key operators' addresses and TOTP secrets are sealed under.
pub(crate) const OPERATORS_KEY: &str = "operators";
/// The key messages about no subject are sealed under (`Vault::enqueue_mail`).
pub(crate) const OUTBOX_KEY: &str = "outbox";

/// The keys a running vault holds in memory; each zeroises itself on drop.
pub(crate) struct KeyRing {
    pub(crate) root: RootRing,
    pub(crate) index: IndexKey,
    pub(crate) signer: SigningKey,
    /// Keyed digests of sign-in codes, addresses and client addresses, and CSRF tokens.
    pub(crate) mac: MacKey,
}

impl KeyRing {
    pub(crate) async fn load_or_create(
        store: &dyn Store,
        root: RootRing,
    ) -> Result<Self, VaultError> {
        let index = named_key(store, &root, INDEX_KEY).await?.into_index_key();
        let signer = named_key(store, &root, SIGNING_KEY).await?.to_signing_key();
        let mac = named_key(store, &root, PORTAL_KEY).await?.into_mac_key();
        Ok(Self {
            root,
            index,
            signer,
            mac,
        })
    }
}

/// A named vault key, unwrapped; created (and stored wrapped) when absent.
pub(crate) async fn named_key(
    store: &dyn Store,
    root: &RootRing,
    name: &str,
) -> Result<DataKey, VaultError> {
    let wrong_root = |e| match e {
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
    };
    if let Some(w) = store.vault_key(name).await? {
        return root
            .unwrap(WrapContext::Named(name), &w)
            .map_err(wrong_root);
    }
    let key = DataKey::generate(1)?;
    match store
        .insert_vault_key(name, root.wrap(WrapContext::Named(name), &key)?)
        .await
    {
        Ok(()) => Ok(key),
        // Another process created it first: use theirs.
        Err(StoreError::Conflict(_)) => {
            let w = store
                .vault_key(name)
                .await?
                .ok_or(VaultError::Internal(format!("the {name} key vanished")))?;
            root.unwrap(WrapContext::Named(name), &w)
                .map_err(wrong_root)
        }
        Err(e) => Err(e.into()),
    }
}

/// The key file `[root_key] file` names (relative to the data directory), else `root.key`
/// there; for versions held elsewhere, the path their lock file goes beside.
pub(crate) fn key_file(paths: &crate::Paths, config: &RootKeyConfig) -> std::path::PathBuf {
    config
        .key_file(&paths.dir, &paths.root_key)
        .unwrap_or_else(|| paths.root_key.clone())
}

/// The root key versions as the inventory says to find them: in the key file (read again when
/// it changes), in the environment variable `[root_key] env` names (read once), or in the
/// PKCS#11 token `[root_key.pkcs11]` names (looked up again the same way).
pub(crate) fn root_ring(
    paths: &crate::Paths,
    inventory: &custos_core::inventory::Inventory,
) -> Result<RootRing, VaultError> {
    match &inventory.root_key {
        RootKeyConfig::File(_) => RootRing::from_file(&key_file(paths, &inventory.root_key)),
        RootKeyConfig::Env(name) => Ok(RootRing::fixed(root_keys_from_env(name)?)),
        RootKeyConfig::Pkcs11(config) => {
            let token = Token::open(config)?;
            if token.versions().is_empty() {
                return Err(VaultError::Setup(format!(
                    "{} holds no key labelled {}: run `custos init` to make the first",
                    token.describe(),
                    token.label_of(1)
                )));
            }
            Ok(RootRing::from_token(token, &paths.root_key))
        }
    }
}
