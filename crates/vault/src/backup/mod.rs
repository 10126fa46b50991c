//! `custos backup`: a consistent snapshot of the vault, encrypted to an age recipient and
//! signed by the vault ([`create`]); checked without restoring ([`open`]); restored into an
//! empty database with every erasure made since erased again ([`restore`]), from the erasure
//! journal ([`journal`]) kept outside the database.
//!
//! The format is `core::backup`'s: age's encryption around a signed manifest and an SQLite
//! snapshot. The server needs only the recipient (a public key) to make backups; opening one
//! takes the identity and the root key that wraps the snapshot's keys.

mod create;
pub(crate) mod journal;
mod open;
mod restore;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use create::{BackupReport, create_backup};
pub use open::{BackupCheck, verify_backup};
pub use restore::{RestoreReport, restore_backup};

use crate::{Paths, VaultError};

/// Bytes of a backup written or read so far, of how many (the snapshot's size).
#[derive(Debug, Clone, Copy)]
pub struct BackupProgress {
    /// Done.
    pub done: u64,
    /// In all.
    pub total: u64,
}

/// Where the backup files are for a data directory: `[backup]` with relative paths read from
/// it.
fn config(
    paths: &Paths,
    inventory: &custos_core::inventory::Inventory,
) -> custos_core::inventory::BackupConfig {
    inventory.backup.in_dir(&paths.dir)
}

/// Parses an age recipient.
fn recipient(text: &str, from: &str) -> Result<age::x25519::Recipient, VaultError> {
    // The value is not repeated: a secret key pasted by mistake must not reach a terminal.
    text.trim().parse().map_err(|e| {
        VaultError::Setup(format!(
            "{from} is not an age recipient (age1...; the identity's public key): {e}"
        ))
    })
}

/// Reads an age identity file: its `AGE-SECRET-KEY-1` line, comments skipped. Like the root
/// key, it must be readable by its owner alone.
pub(crate) fn read_identity(path: &Path) -> Result<age::x25519::Identity, VaultError> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        VaultError::Setup(format!(
            "reading the backup identity {shown}: {e} (give --identity, or [backup] identity in custos.toml)"
        ))
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(VaultError::Setup(format!(
            "the backup identity {shown} is readable by others: chmod 600 {shown}"
        )));
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| VaultError::Setup(format!("reading the backup identity {shown}: {e}")))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .ok_or_else(|| {
            VaultError::Setup(format!(
                "the backup identity {shown} holds no AGE-SECRET-KEY-1 line"
            ))
        })?;
    line.parse()
        .map_err(|e| VaultError::Setup(format!("the backup identity {shown} cannot be read: {e}")))
}

/// A new identity file's text: the secret key, with its public recipient as a comment (as
/// age-keygen writes one).
pub(crate) fn new_identity() -> (zeroize::Zeroizing<String>, String) {
    use age::secrecy::ExposeSecret;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let text = zeroize::Zeroizing::new(format!(
        "# custos backup identity: it opens this vault's backups. Keep it away from the\n\
         # servers (see docs/keys-and-backups.md).\n\
         # public key: {recipient}\n{}\n",
        identity.to_string().expose_secret()
    ));
    (text, recipient)
}

/// A temporary directory beside `file`, on its file system, readable by its owner alone.
fn scratch_beside(file: &Path) -> Result<tempfile::TempDir, VaultError> {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    tempfile::Builder::new()
        .prefix(".custos-backup-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&parent)
        .map_err(|e| {
            VaultError::Setup(format!(
                "making a scratch directory in {}: {e}",
                parent.display()
            ))
        })
}
