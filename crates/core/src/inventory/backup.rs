//! `[backup]`: whom backups are encrypted to, where the identity that opens them is, and
//! where the erasure journal is kept. Only a public recipient and paths: the identity file's
//! contents are never in the inventory.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::checker::Checker;

/// The identity file `custos init` writes, beside the root key.
pub const BACKUP_IDENTITY_FILE: &str = "backup.identity";
/// The erasure journal's file, beside the root key unless `[backup] erasure_journal` says.
pub const ERASURE_JOURNAL_FILE: &str = "erasures.journal";

/// `[backup]` as the file says it.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackup {
    recipient: Option<Spanned<String>>,
    identity: Option<Spanned<String>>,
    erasure_journal: Option<Spanned<String>>,
}

/// `[backup]`, or its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupConfig {
    /// The age recipient (`age1...`) backups are encrypted to; `custos init` writes one.
    /// None: `backup create` needs `--recipient`.
    pub recipient: Option<String>,
    /// The age identity file that opens backups, read by `backup verify` and `backup
    /// restore` when no `--identity` is given. A relative path is read from the data
    /// directory.
    pub identity: PathBuf,
    /// The erasure journal: every erasure, signed, kept outside the database so that a
    /// restore can erase again whoever was erased after the backup was made.
    pub erasure_journal: PathBuf,
}

impl BackupConfig {
    /// The same with relative paths read from `dir` (the data directory).
    pub fn in_dir(&self, dir: &Path) -> BackupConfig {
        BackupConfig {
            recipient: self.recipient.clone(),
            identity: dir.join(&self.identity),
            erasure_journal: dir.join(&self.erasure_journal),
        }
    }
}

/// Reads `[backup]`: a recipient in age's form, and paths that are not empty.
pub(super) fn backup(c: &mut Checker<'_>, raw: Option<Spanned<RawBackup>>) -> BackupConfig {
    let b = raw.map(Spanned::into_inner).unwrap_or_default();
    let recipient = b.recipient.and_then(|r| {
        let value = r.get_ref().trim();
        let ok = value.len() == 62
            && value.starts_with("age1")
            && value[4..]
                .chars()
                .all(|ch| "qpzry9x8gf2tvdw0s3jn54khce6mua7l".contains(ch));
        if ok {
            Some(value.to_owned())
        } else {
            c.report(
                c.line(&r),
                "backup.recipient",
                "is not an age X25519 recipient (age1 and 58 lower-case Bech32 characters, as `custos init` writes)",
            );
            None
        }
    });
    let mut path = |v: Option<Spanned<String>>, name: &str, default: &str| match v {
        None => PathBuf::from(default),
        Some(p) if !p.get_ref().trim().is_empty() => PathBuf::from(p.into_inner()),
        Some(p) => {
            c.report(c.line(&p), format!("backup.{name}"), "the path is empty");
            PathBuf::from(default)
        }
    };
    BackupConfig {
        recipient,
        identity: path(b.identity, "identity", BACKUP_IDENTITY_FILE),
        erasure_journal: path(b.erasure_journal, "erasure_journal", ERASURE_JOURNAL_FILE),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::inventory::{EXAMPLE, Inventory};

    const RECIPIENT: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    fn problems(section: &str) -> Vec<String> {
        Inventory::from_toml(&format!("{EXAMPLE}\n[backup]\n{section}\n"))
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| p.path)
            .collect()
    }

    #[test]
    fn defaults_name_the_files_beside_the_root_key() {
        let b = Inventory::from_toml(EXAMPLE).unwrap().backup;
        assert_eq!(b.recipient, None);
        let b = b.in_dir(Path::new("/data"));
        assert_eq!(b.identity, PathBuf::from("/data/backup.identity"));
        assert_eq!(b.erasure_journal, PathBuf::from("/data/erasures.journal"));
    }

    #[test]
    fn a_recipient_and_paths_are_read() {
        let inv = Inventory::from_toml(&format!(
            "{EXAMPLE}\n[backup]\nrecipient = \"{RECIPIENT}\"\nidentity = \"/safe/id\"\n\
             erasure_journal = \"/other/disk/erasures\"\n"
        ))
        .unwrap();
        assert_eq!(inv.backup.recipient.as_deref(), Some(RECIPIENT));
        let b = inv.backup.in_dir(Path::new("/data"));
        assert_eq!(b.identity, PathBuf::from("/safe/id"));
        assert_eq!(b.erasure_journal, PathBuf::from("/other/disk/erasures"));
    }

    #[test]
    fn a_bad_recipient_or_empty_path_is_named() {
        assert_eq!(
            problems("recipient = \"AGE-SECRET-KEY-1QQQ\"\nidentity = \" \""),
            ["backup.recipient", "backup.identity"]
        );
        assert_eq!(problems("recipient = \"age1short\""), ["backup.recipient"]);
        assert_eq!(problems("passphrase = \"x\""), ["custos.toml"]);
    }
}
