//! The vault's key ring: the root key versions wherever they are held ([`RootRing`]: the key
//! file, the environment, or a PKCS#11 token), and the blind-index ([`IndexRing`]), marks,
//! audit-signing, portal and outbox keys, stored wrapped by the root key.

use custos_core::audit::SigningKey;
use custos_core::crypto::{MacKey, MarkKey};
use custos_core::inventory::RootKeyConfig;
use custos_store::Store;

use crate::VaultError;

mod file;
mod index;
mod named;
mod ring;
mod token;

pub(crate) use file::{root_keys_from_env, write_root_key};
pub(crate) use index::{IndexKeys, IndexRing};
use named::marks_key;
pub(crate) use named::named_key;
pub use ring::ROOT_KEY_RECHECK;
pub(crate) use ring::RootRing;
pub(crate) use token::Token;

const SIGNING_KEY: &str = "audit-signing";
const PORTAL_KEY: &str = "portal";
/// The key operators' addresses and TOTP secrets are sealed under.
pub(crate) const OPERATORS_KEY: &str = "operators";
/// The key messages about no subject are sealed under (`Vault::enqueue_mail`).
pub(crate) const OUTBOX_KEY: &str = "outbox";

/// The keys a running vault holds in memory; each zeroises itself on drop.
pub(crate) struct KeyRing {
    pub(crate) root: RootRing,
    pub(crate) index: IndexRing,
    /// Sites' publishable keys and subject tokens, consent evidence's address digests.
    pub(crate) marks: MarkKey,
    pub(crate) signer: SigningKey,
    /// Keyed digests of sign-in codes, addresses and client addresses, and CSRF tokens.
    pub(crate) mac: MacKey,
}

impl KeyRing {
    pub(crate) async fn load_or_create(
        store: &dyn Store,
        root: RootRing,
    ) -> Result<Self, VaultError> {
        let marks = marks_key(store, &root).await?;
        let index = IndexRing::load(store, &root).await?;
        let signer = named_key(store, &root, SIGNING_KEY).await?.to_signing_key();
        let mac = named_key(store, &root, PORTAL_KEY).await?.into_mac_key();
        Ok(Self {
            root,
            index,
            marks,
            signer,
            mac,
        })
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
