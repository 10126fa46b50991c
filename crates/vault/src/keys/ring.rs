//! [`RootRing`]: the root key versions a running vault wraps and unwraps under, wherever they
//! are held: in memory (read from the environment, or given), in the key file (read again when
//! another process changes it), or in a PKCS#11 token (looked up again the same way).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use custos_core::crypto::{CryptoError, DataKey, RootKeys, WrapContext};

use super::file::{KeyFileLock, read_root_keys, replace_root_keys};
use super::token::Token;
use crate::VaultError;

/// How often a running vault looks at its root key file (or token) for a version another
/// process added: within this long of `custos keys rotate-root` adding it, every server wraps
/// under it.
pub const ROOT_KEY_RECHECK: Duration = Duration::from_secs(1);

/// The root key versions a vault holds. A rotation run by another process adds a version, and
/// from then on this vault wraps under it, and unwraps keys wrapped by it.
pub(crate) struct RootRing {
    holder: Holder,
    /// The lock file whoever changes which versions are held takes first (`root.key.lock`).
    lock: Option<PathBuf>,
}

enum Holder {
    /// Versions that live only in memory: read once from the environment, or given (tests).
    Memory(Arc<RootKeys>),
    /// The key file, read again when it changes.
    File {
        path: PathBuf,
        state: RwLock<FileState>,
    },
    /// Keys that never leave a PKCS#11 token.
    Token(Token),
}

struct FileState {
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
    /// Versions that live only in memory (the environment, tests, a vault over a given key).
    pub(crate) fn fixed(keys: RootKeys) -> Self {
        Self {
            holder: Holder::Memory(Arc::new(keys)),
            lock: None,
        }
    }

    /// The versions in the key file, read again when it changes.
    pub(crate) fn from_file(path: &Path) -> Result<Self, VaultError> {
        let stamped = stamp(path);
        let keys = read_root_keys(path)?;
        Ok(Self {
            holder: Holder::File {
                path: path.to_owned(),
                state: RwLock::new(FileState {
                    keys: Arc::new(keys),
                    stamp: stamped,
                    checked: Instant::now(),
                }),
            },
            lock: Some(path.to_owned()),
        })
    }

    /// The versions in a token; `lock_beside` names the key file whose lock guards changes.
    pub(crate) fn from_token(token: Token, lock_beside: &Path) -> Self {
        Self {
            holder: Holder::Token(token),
            lock: Some(lock_beside.to_owned()),
        }
    }

    /// Where the versions are held, for messages.
    pub(crate) fn describe(&self) -> String {
        match &self.holder {
            Holder::Memory(_) => "the environment variable [root_key] env names".into(),
            Holder::File { path, .. } => path.display().to_string(),
            Holder::Token(t) => t.describe(),
        }
    }

    /// Takes the lock whoever changes which versions are held takes first. Refused for
    /// versions held in memory: a rotation writes its new version where it will be found.
    pub(crate) fn lock(&self) -> Result<KeyFileLock, VaultError> {
        match (&self.holder, &self.lock) {
            (Holder::Memory(_), _) | (_, None) => Err(held_in_memory()),
            (_, Some(beside)) => KeyFileLock::take(beside),
        }
    }

    /// The versions held now, oldest first (looked up again first).
    pub(crate) fn versions(&self) -> Vec<u32> {
        self.refresh(true);
        match &self.holder {
            Holder::Memory(k) => k.versions(),
            Holder::File { state, .. } => state.read().expect("root ring lock").keys.versions(),
            Holder::Token(t) => t.versions(),
        }
    }

    /// Looks again at the file or the token when it may have changed (at once with `force`,
    /// else at most once per [`ROOT_KEY_RECHECK`]). A file that cannot be read keeps the
    /// versions held, loudly.
    pub(crate) fn refresh(&self, force: bool) {
        match &self.holder {
            Holder::Memory(_) => {}
            Holder::Token(t) => t.refresh(force, ROOT_KEY_RECHECK),
            Holder::File { path, state } => refresh_file(path, state, force),
        }
    }

    /// Wraps a key under the newest version.
    pub(crate) fn wrap(&self, ctx: WrapContext<'_>, key: &DataKey) -> Result<Vec<u8>, CryptoError> {
        self.refresh(false);
        match &self.holder {
            Holder::Memory(k) => k.wrap(ctx, key),
            Holder::File { state, .. } => {
                let keys = Arc::clone(&state.read().expect("root ring lock").keys);
                keys.wrap(ctx, key)
            }
            Holder::Token(t) => t.wrap(ctx, key),
        }
    }

    /// Unwraps a key under the version it names, looking again first when that version is
    /// not held (another process has just added it).
    pub(crate) fn unwrap(
        &self,
        ctx: WrapContext<'_>,
        wrapped: &[u8],
    ) -> Result<DataKey, CryptoError> {
        let once = || match &self.holder {
            Holder::Memory(k) => k.unwrap(ctx, wrapped),
            Holder::File { state, .. } => {
                let keys = Arc::clone(&state.read().expect("root ring lock").keys);
                keys.unwrap(ctx, wrapped)
            }
            Holder::Token(t) => t.unwrap(ctx, wrapped),
        };
        match once() {
            Err(CryptoError::UnknownKeyVersion(_)) if !matches!(self.holder, Holder::Memory(_)) => {
                self.refresh(true);
                once()
            }
            other => other,
        }
    }

    /// For a version in a token: its label there, and whether the token reports it generated
    /// there and never extractable. None for versions held as bytes (a file, a variable).
    pub(crate) fn token_key(&self, version: u32) -> Result<Option<(String, bool)>, VaultError> {
        match &self.holder {
            Holder::Token(t) => Ok(Some((t.label_of(version), t.never_left(version)?))),
            _ => Ok(None),
        }
    }

    /// Adds version `version`, above every version held, which wraps from then on. Called
    /// under [`RootRing::lock`].
    pub(crate) fn add_version(&self, version: u32) -> Result<(), VaultError> {
        match &self.holder {
            Holder::Memory(_) => return Err(held_in_memory()),
            Holder::File { path, .. } => {
                let mut keys = read_root_keys(path)?;
                keys.add_version_as(version)?;
                replace_root_keys(path, &keys)?;
            }
            Holder::Token(t) => t.generate(version)?,
        }
        self.refresh(true);
        Ok(())
    }

    /// Removes a version below the newest; `false` when it was not held. Called under
    /// [`RootRing::lock`].
    pub(crate) fn remove_version(&self, version: u32) -> Result<bool, VaultError> {
        let removed = match &self.holder {
            Holder::Memory(_) => return Err(held_in_memory()),
            Holder::File { path, .. } => {
                let mut keys = read_root_keys(path)?;
                let removed = keys.remove_version(version);
                if removed {
                    replace_root_keys(path, &keys)?;
                }
                removed
            }
            Holder::Token(t) => t.destroy(version)?,
        };
        self.refresh(true);
        Ok(removed)
    }
}

fn held_in_memory() -> VaultError {
    VaultError::Setup(
        "this vault's root key comes from the environment variable [root_key] env names, and \
         a rotation writes the new version to a key file. Rotate with the key file (root.key), \
         then put its text in the variable"
            .into(),
    )
}

fn refresh_file(path: &Path, state: &RwLock<FileState>, force: bool) {
    {
        let st = state.read().expect("root ring lock");
        if !force && st.checked.elapsed() < ROOT_KEY_RECHECK {
            return;
        }
    }
    let now = stamp(path);
    let mut st = state.write().expect("root ring lock");
    st.checked = Instant::now();
    if now.is_none() || now == st.stamp {
        return;
    }
    match read_root_keys(path) {
        Ok(keys) => {
            if keys.versions() != st.keys.versions() {
                tracing::debug!(versions = ?keys.versions(), "root key versions read again");
            }
            st.keys = Arc::new(keys);
            st.stamp = now;
        }
        Err(e) => {
            tracing::error!(error = %e, "the root key file changed and cannot be read; keeping the versions held");
        }
    }
}
