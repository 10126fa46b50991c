//! The vault's key ring: the root key from its file, and the blind-index, audit-signing,
//! portal and outbox keys, stored wrapped by the root key.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use custos_core::audit::SigningKey;
use custos_core::crypto::{DataKey, IndexKey, MacKey, RootKey, WrapContext};
use custos_store::{Store, StoreError};

use crate::VaultError;

const INDEX_KEY: &str = "index";
const SIGNING_KEY: &str = "audit-signing";
const PORTAL_KEY: &str = "portal";
/// The key operators' addresses and TOTP secrets are sealed under.
pub(crate) const OPERATORS_KEY: &str = "operators";
/// The key messages about no subject are sealed under (`Vault::enqueue_mail`).
pub(crate) const OUTBOX_KEY: &str = "outbox";

/// The keys a running vault holds in memory; each zeroises itself on drop.
pub(crate) struct KeyRing {
    pub(crate) root: RootKey,
    pub(crate) index: IndexKey,
    pub(crate) signer: SigningKey,
    /// Keyed digests of sign-in codes, addresses and client addresses, and CSRF tokens.
    pub(crate) mac: MacKey,
}

impl KeyRing {
    pub(crate) async fn load_or_create(
        store: &dyn Store,
        root: RootKey,
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
    root: &RootKey,
    name: &str,
) -> Result<DataKey, VaultError> {
    let wrong_root = |_| {
        VaultError::Setup(format!(
            "the root key does not open this vault's {name} key: is {} the key this database was created with?",
            crate::ROOT_KEY_FILE
        ))
    };
    if let Some(w) = store.vault_key(name).await? {
        return root
            .unwrap(WrapContext::Named(name), &w)
            .map_err(wrong_root);
    }
    let key = DataKey::generate(1)?;
    match store
        .insert_vault_key(name, root.wrap(WrapContext::Named(name), &key))
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

/// Reads the root key file, refusing one that other users can read.
pub(crate) fn read_root_key(path: &Path) -> Result<RootKey, VaultError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        VaultError::Setup(format!(
            "reading the root key {}: {e} (run `custos init` first)",
            path.display()
        ))
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(VaultError::Setup(format!(
            "the root key {} has mode {mode:o}, so other users can read it: run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            VaultError::Setup(format!("reading the root key {}: {e}", path.display()))
        })?);
    RootKey::from_file_contents(&text)
        .map_err(|e| VaultError::Setup(format!("{}: {e}", path.display())))
}

/// Writes a new root key file with mode 0600; never replaces an existing one.
pub(crate) fn write_root_key(path: &Path, key: &RootKey) -> Result<(), VaultError> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            VaultError::Setup(format!(
                "refusing to overwrite the existing root key {}: without it the data it protects is lost",
                path.display()
            ))
        } else {
            VaultError::Setup(format!("writing the root key {}: {e}", path.display()))
        }
    })?;
    f.write_all(key.to_file_contents().expose_secret().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| VaultError::Setup(format!("writing the root key {}: {e}", path.display())))
}
