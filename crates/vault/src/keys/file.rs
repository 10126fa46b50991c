//! The root key versions as text: the key file `root.key` (mode 0600, replaced atomically) or
//! an environment variable holding the same text, and the lock whoever changes the versions
//! takes first.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use custos_core::crypto::{RootKey, RootKeys};

use crate::VaultError;

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
