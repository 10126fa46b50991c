//! The erasure journal: every erasure appended, signed, to a file outside the database, so
//! that restoring a backup can erase again whoever was erased after it was made. Appended
//! after each erasure commits, and brought up to date from the database's erasure list when a
//! server starts and before each backup (an append lost to a crash between the two is
//! caught up then).

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use custos_core::audit::{SigningKey, VerifyingKey};
use custos_core::backup::journal::JournalEntry;
use custos_core::ids::SubjectId;

use crate::{Vault, VaultError};

/// The journal's file.
#[derive(Debug, Clone)]
pub(crate) struct ErasureJournal {
    path: PathBuf,
}

impl ErasureJournal {
    pub(crate) fn at(path: PathBuf) -> Self {
        Self { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends entries, each a signed line, and syncs the file. Created 0600 when absent.
    pub(crate) fn append(&self, entries: &[JournalEntry], key: &SigningKey) -> std::io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let text: String = entries.iter().map(|e| e.to_line(key)).collect();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()
    }

    /// Every entry, each line's signature checked with `key`. A missing file is an empty
    /// journal.
    ///
    /// # Errors
    /// [`VaultError::Integrity`] naming the first line that does not verify.
    pub(crate) fn read(&self, key: &VerifyingKey) -> Result<Vec<JournalEntry>, VaultError> {
        let mut out = Vec::new();
        for (n, line) in self.lines()?.iter().enumerate() {
            let e = JournalEntry::from_line(line, key).map_err(|why| {
                VaultError::Integrity(format!(
                    "the erasure journal {} line {}: {why}",
                    self.path.display(),
                    n + 1
                ))
            })?;
            out.push(e);
        }
        Ok(out)
    }

    /// The subjects the journal names, signatures unchecked: what an append skips.
    fn subjects(&self) -> Result<HashSet<SubjectId>, VaultError> {
        Ok(self
            .lines()?
            .iter()
            .filter_map(|l| l.split(' ').nth(1)?.parse().ok())
            .collect())
    }

    fn lines(&self) -> Result<Vec<String>, VaultError> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(VaultError::Setup(format!(
                    "reading the erasure journal {}: {e}",
                    self.path.display()
                )));
            }
        };
        std::io::BufReader::new(f)
            .lines()
            .filter(|l| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
            .collect::<Result<_, _>>()
            .map_err(|e| {
                VaultError::Setup(format!(
                    "reading the erasure journal {}: {e}",
                    self.path.display()
                ))
            })
    }
}

/// An erasure of the database's list, as the journal holds it.
pub(crate) fn entry_of(e: &custos_store::ErasureRow) -> JournalEntry {
    JournalEntry {
        subject_id: e.subject_id,
        erased_ms: e.erased_ms,
    }
}

impl Vault {
    /// Appends to the erasure journal every subject on the database's erasure list that it
    /// does not name yet; returns how many. Without a journal (a vault built over a bare
    /// store), nothing.
    ///
    /// # Errors
    /// When the journal cannot be read or written, or the store fails.
    pub async fn sync_erasure_journal(&self) -> Result<usize, VaultError> {
        let Some(journal) = &self.journal else {
            return Ok(0);
        };
        let known = journal.subjects()?;
        let missing: Vec<JournalEntry> = self
            .store
            .erasures()
            .await?
            .into_iter()
            .filter(|e| !known.contains(&e.subject_id))
            .map(|e| entry_of(&e))
            .collect();
        journal.append(&missing, &self.keys.signer).map_err(|e| {
            VaultError::Setup(format!(
                "writing the erasure journal {}: {e}",
                journal.path().display()
            ))
        })?;
        Ok(missing.len())
    }

    /// Journals one erasure that has committed. A failure is logged, not returned: the
    /// erasure happened, and the next [`Vault::sync_erasure_journal`] appends it.
    pub(crate) fn journal_erasure(&self, subject_id: SubjectId, erased_ms: i64) {
        let Some(journal) = &self.journal else { return };
        let entry = JournalEntry {
            subject_id,
            erased_ms,
        };
        if let Err(e) = journal.append(&[entry], &self.keys.signer) {
            tracing::warn!(
                journal = %journal.path().display(),
                error = %e,
                "the erasure was made but not journaled; it is journaled when the server next starts or a backup is made"
            );
        }
    }
}
