//! The vault's key ring: the root key versions from their file ([`RootRing`]), and the
//! blind-index, audit-signing, portal and outbox keys, stored wrapped by the root key.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use custos_core::audit::SigningKey;
use custos_core::crypto::{CryptoError, DataKey, IndexKey, MacKey, RootKey, RootKeys, WrapContext};
use custos_store::{Store, StoreError};

use crate::VaultError;

/// How often a running vault looks at its root key file for a version another process added:
/// within this long of `custos keys rotate-root` writing it, every server wraps under it.
pub const ROOT_KEY_RECHECK: Duration = Duration::from_secs(1);

/// The root key versions a vault holds, read again from their file when it changes: a
/// rotation run by another process adds a version, and from then on this vault wraps under
/// it, and unwraps keys wrapped by it.
pub(crate) struct RootRing {
    file: Option<PathBuf>,
    state: RwLock<RingState>,
}

struct RingState {
    keys: Arc<RootKeys>,
    /// The file as last read: device, inode, length, modification time.
    stamp: Option<(u64, u64, u64, i64, i64)>,
    checked: Instant,
}

fn stamp(path: &Path) -> Option<(u64, u64, u64, i64, i64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
}

impl RootRing {
    /// Versions that live only in memory (tests, a vault built over a given key).
    pub(crate) fn fixed(keys: RootKeys) -> Self {
        Self {
            file: None,
            state: RwLock::new(RingState {
                keys: Arc::new(keys),
                stamp: None,
                checked: Instant::now(),
            }),
        }
    }

    /// The versions in the key file, read again when it changes.
    pub(crate) fn from_file(path: &Path) -> Result<Self, VaultError> {
        let stamped = stamp(path);
        let keys = read_root_keys(path)?;
        Ok(Self {
            file: Some(path.to_owned()),
            state: RwLock::new(RingState {
                keys: Arc::new(keys),
                stamp: stamped,
                checked: Instant::now(),
            }),
        })
    }

    /// The key file, when the versions are read from one.
    pub(crate) fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The versions held now.
    pub(crate) fn keys(&self) -> Arc<RootKeys> {
        Arc::clone(&self.state.read().expect("root ring lock").keys)
    }

    /// Reads the file again when it changed (at once with `force`, else at most once per
    /// [`ROOT_KEY_RECHECK`]). A file that cannot be read keeps the versions held, loudly.
    pub(crate) fn refresh(&self, force: bool) {
        let Some(path) = &self.file else { return };
        {
            let st = self.state.read().expect("root ring lock");
            if !force && st.checked.elapsed() < ROOT_KEY_RECHECK {
                return;
            }
        }
        let now = stamp(path);
        let mut st = self.state.write().expect("root ring lock");
        st.checked = Instant::now();
        if now.is_none() || now == st.stamp {
            return;
        }
        match read_root_keys(path) {
            Ok(keys) => {
                if keys.versions() != st.keys.versions() {
                    tracing::info!(versions = ?keys.versions(), "root key versions read again");
                }
                st.keys = Arc::new(keys);
                st.stamp = now;
            }
            Err(e) => {
                tracing::error!(error = %e, "the root key file changed and cannot be read; keeping the versions held");
            }
        }
    }

    /// Wraps a key under the newest version.
    pub(crate) fn wrap(&self, ctx: WrapContext<'_>, key: &DataKey) -> Vec<u8> {
        self.refresh(false);
        self.keys().wrap(ctx, key)
    }

    /// Unwraps a key under the version it names, reading the file again first when that
    /// version is not held (another process has just added it).
    pub(crate) fn unwrap(
        &self,
        ctx: WrapContext<'_>,
        wrapped: &[u8],
    ) -> Result<DataKey, CryptoError> {
        match self.keys().unwrap(ctx, wrapped) {
            Err(CryptoError::UnknownKeyVersion(_)) if self.file.is_some() => {
                self.refresh(true);
                self.keys().unwrap(ctx, wrapped)
            }
            other => other,
        }
    }
}

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
            "this vault's {name} key is wrapped by root key version {v}, which {} does not hold: \
             copy the key file holding it from where `custos keys rotate-root` ran",
            crate::ROOT_KEY_FILE
        )),
        _ => VaultError::Setup(format!(
            "the root key does not open this vault's {name} key: is {} the key this database was created with?",
            crate::ROOT_KEY_FILE
        )),
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

/// The root key versions as the inventory says to find them: in the key file (read again when
/// it changes), or in the environment variable `[root_key] env` names (read once).
pub(crate) fn root_ring(
    paths: &crate::Paths,
    inventory: &custos_core::inventory::Inventory,
) -> Result<RootRing, VaultError> {
    match &inventory.root_key_env {
        None => RootRing::from_file(&paths.root_key),
        Some(name) => Ok(RootRing::fixed(root_keys_from_env(name)?)),
    }
}

/// Reads root key versions from an environment variable: the key file's text.
pub(crate) fn root_keys_from_env(name: &str) -> Result<RootKeys, VaultError> {
    let text = zeroize::Zeroizing::new(std::env::var(name).map_err(|_| {
        VaultError::Setup(format!(
            "the root key is read from the environment variable {name} ([root_key] env in \
             custos.toml), and {name} is not set"
        ))
    })?);
    RootKeys::from_file_contents(&text)
        .map_err(|e| VaultError::Setup(format!("the environment variable {name}: {e}")))
}

/// Reads the root key file (every version in it), refusing one that other users can read.
pub(crate) fn read_root_keys(path: &Path) -> Result<RootKeys, VaultError> {
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
    RootKeys::from_file_contents(&text)
        .map_err(|e| VaultError::Setup(format!("{}: {e}", path.display())))
}

/// Replaces the root key file with these versions: a new file of mode 0600 beside it,
/// synced, renamed over the old one, and the directory synced, so a crash leaves the old
/// file or the new one, never a torn one.
pub(crate) fn replace_root_keys(path: &Path, keys: &RootKeys) -> Result<(), VaultError> {
    let fail = |e: std::io::Error| {
        VaultError::Setup(format!("writing the root key {}: {e}", path.display()))
    };
    let nonce = custos_core::crypto::random_bytes(8)
        .map(hex::encode)
        .map_err(|e| VaultError::Setup(e.to_string()))?;
    let tmp = path.with_extension(format!("key.{nonce}.new"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    // A temporary file left behind would hold key material: it goes whatever fails.
    f.write_all(keys.to_file_contents().expose_secret().as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(e)
        })?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
    }
    Ok(())
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

/// An exclusive hold on the root key file's lock file (`root.key.lock` beside it): whoever
/// changes which versions the file holds takes it first, and reads the file under it. Released
/// when dropped, or when the process dies.
pub(crate) struct KeyFileLock(#[allow(dead_code)] std::fs::File);

impl KeyFileLock {
    pub(crate) fn take(path: &Path) -> Result<Self, VaultError> {
        let lock = path.with_extension("key.lock");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock)
            .map_err(|e| VaultError::Setup(format!("opening {}: {e}", lock.display())))?;
        match f.try_lock() {
            Ok(()) => Ok(Self(f)),
            Err(std::fs::TryLockError::WouldBlock) => Err(VaultError::Conflict(format!(
                "another `custos keys` command is changing {} now: wait for it to end",
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(VaultError::Setup(format!(
                "locking {}: {e}",
                lock.display()
            ))),
        }
    }
}
