//! `custos backup restore`: a checked backup, with every subject erased after it was made
//! erased again in its snapshot, copied into an empty database: no row of an erased subject
//! ever reaches the database, so nothing a server could serve.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::backup::Manifest;
use custos_core::backup::journal::JournalEntry;
use custos_core::ids::SubjectId;
use custos_store::{CopyProgress, Location, QueuedAudit, Table};

use super::journal::{ErasureJournal, entry_of};
use super::open::open_backup;
use super::{BackupProgress, config};
use crate::audit::BATCH;
use crate::keys::root_ring;
use crate::{Paths, Principal, SystemClock, Vault, VaultError, VerifyReport};

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// The database restored into.
    pub database: Location,
    /// Rows per table restored (records count their index entries second).
    pub tables: Vec<(Table, (u64, u64))>,
    /// Subjects the erasure journal names.
    pub journaled: usize,
    /// Subjects on the erasure list of the database a `--force` restore replaced.
    pub carried_forward: usize,
    /// Subjects erased again: erased after the backup was made.
    pub erased_again: usize,
    /// Subjects on the list that the backup holds as erased already.
    pub already_erased: usize,
    /// Subjects on the list that the backup does not hold (made after it).
    pub not_in_backup: usize,
    /// The restored audit log, verified.
    pub audit: VerifyReport,
}

/// Restores the backup `file` into the vault's database, which must be empty unless `force`
/// (then it is emptied, its erasure list kept and journaled first). The backup is checked
/// whole, and every subject the erasure journal (or the replaced database) lists is erased
/// again in the snapshot where it still holds them, before any row is written; the restore is
/// an entry of the restored audit log.
///
/// # Errors
/// [`VaultError::Setup`] when the database holds a vault and `force` is not given; as
/// [`super::verify_backup`] when the backup does not check; [`VaultError::Integrity`] when a
/// journal line does not verify.
pub async fn restore_backup(
    paths: &Paths,
    file: &Path,
    identity: Option<&Path>,
    force: bool,
    without_journal: bool,
    progress: impl FnMut(BackupProgress) + Send + 'static,
    tables: impl FnMut(CopyProgress),
) -> Result<RestoreReport, VaultError> {
    let inventory = paths.read_inventory()?;
    let location = paths.location(&inventory)?;
    custos_store::migrate(&location).await?;
    let target = custos_store::open(&location).await?;
    let empty = target.is_empty().await?;
    if !empty && !force {
        return Err(VaultError::Setup(format!(
            "{location} holds a vault: restore into an empty database, or pass --force to \
             replace what it holds (its erasure list is kept and applied to the backup)"
        )));
    }
    let opened = open_backup(paths, file, identity, progress).await?;
    let journal = ErasureJournal::at(config(paths, &inventory).erasure_journal);
    if !journal.path().exists() && !without_journal {
        return Err(VaultError::Setup(format!(
            "the erasure journal {} is missing: it lists who was erased after the backup was \
             made, so restore with it in place ([backup] erasure_journal), or pass \
             --without-journal to restore knowing that those erasures must be made again",
            journal.path().display()
        )));
    }
    let journaled = journal.read(&opened.vault.keys.signer.verifying_key())?;
    // Every backup is made after the journal was caught up: an erasure in the backup that
    // the journal lacks means a journal cut short, or another vault's.
    let in_journal: BTreeSet<SubjectId> = journaled.iter().map(|e| e.subject_id).collect();
    let missing = opened
        .vault
        .store
        .erasures()
        .await?
        .iter()
        .filter(|e| !in_journal.contains(&e.subject_id))
        .count();
    if missing > 0 && !without_journal {
        return Err(VaultError::Integrity(format!(
            "the erasure journal {} lacks {missing} erasures the backup itself holds: it was cut \
             short, or is not the journal of the vault that made the backup; restore with the \
             right one, or pass --without-journal",
            journal.path().display()
        )));
    }
    let carried: Vec<JournalEntry> = if empty {
        Vec::new()
    } else {
        target.erasures().await?.iter().map(entry_of).collect()
    };

    // The replaced database's erasures are journaled first, so that they outlive it.
    let known = &in_journal;
    let unjournaled: Vec<JournalEntry> = carried
        .iter()
        .filter(|e| !known.contains(&e.subject_id))
        .copied()
        .collect();
    journal
        .append(&unjournaled, &opened.vault.keys.signer)
        .map_err(|e| {
            VaultError::Setup(format!(
                "writing the erasure journal {}: {e}",
                journal.path().display()
            ))
        })?;

    // The erasures are made in the snapshot, before a row reaches the database: a restore
    // stopped at any point never leaves an erased subject there for a server to serve.
    let snapshot = &opened.vault;
    let listed: BTreeSet<SubjectId> = journaled
        .iter()
        .chain(&carried)
        .map(|e| e.subject_id)
        .collect();
    let (erased_again, already_erased, not_in_backup) = erase_again(snapshot, listed).await?;
    let mut e = AuditEntry::new(Principal::Cli.actor(), Action::BackupRestore, Outcome::Ok);
    e.detail = Some(format!(
        "backup of {} ({} entries); {erased_again} subjects erased since were erased again",
        opened.manifest.created_at, opened.manifest.audit_size
    ));
    snapshot
        .store
        .append_audit(vec![QueuedAudit {
            subject_id: None,
            entry: e.to_bytes(),
        }])
        .await?;
    while snapshot.sequence_audit().await? >= BATCH {}

    if !empty {
        target.wipe().await?;
    }
    custos_store::copy_tables(snapshot.store.as_ref(), target.as_ref(), tables).await?;
    let mut restored = Vec::new();
    for t in Table::ALL {
        let (mine, theirs) = (snapshot.store.count(t).await?, target.count(t).await?);
        if mine != theirs {
            return Err(VaultError::Integrity(format!(
                "after the restore the backup has {mine:?} {} and {location} {theirs:?}: was \
                 the database written to meanwhile?",
                t.name()
            )));
        }
        restored.push((t, mine));
    }
    let root = root_ring(paths, &inventory)?;
    let vault =
        Vault::with_ring(Arc::clone(&target), inventory, root, Arc::new(SystemClock)).await?;
    let audit = vault
        .verify_audit(&Principal::Cli)
        .await?
        .map_err(|fault| {
            VaultError::Integrity(format!("the restored audit log does not verify: {fault}"))
        })?;
    Ok(RestoreReport {
        manifest: opened.manifest,
        database: location,
        tables: restored,
        journaled: journaled.len(),
        carried_forward: carried.len(),
        erased_again,
        already_erased,
        not_in_backup,
        audit,
    })
}

/// Erases in `snapshot` every listed subject it still holds; says how many were erased
/// again, how many it held as erased already, and how many it never held.
async fn erase_again(
    snapshot: &Vault,
    listed: BTreeSet<SubjectId>,
) -> Result<(usize, usize, usize), VaultError> {
    let (mut erased_again, mut already_erased, mut not_in_backup) = (0, 0, 0);
    for subject in listed {
        if snapshot.store.erasure(subject).await?.is_some() {
            already_erased += 1;
            continue;
        }
        match snapshot.erase_subject(&Principal::Cli, subject).await {
            Ok(_) => erased_again += 1,
            Err(VaultError::NotFound(_)) => not_in_backup += 1,
            Err(e) => return Err(e),
        }
    }
    Ok((erased_again, already_erased, not_in_backup))
}
