//! `custos db copy`: a whole vault moved to another database (SQLite to PostgreSQL and back)
//! as ciphertext, never decrypted, with its audit log and root hash intact.

use std::sync::Arc;

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_store::{CopyProgress, Location, QueuedAudit, Table};

use crate::audit::BATCH;
use crate::{Paths, Principal, SystemClock, Vault, VaultError, keys};

/// What a finished copy checked.
#[derive(Debug, Clone)]
pub struct CopyReport {
    /// Rows per table, equal in source and target (records count their index entries second).
    pub tables: Vec<(Table, (u64, u64))>,
    /// Audit entries, verified in the target.
    pub audit_size: u64,
    /// The audit root hash, hex, equal in source and target.
    pub root_hash: String,
}

/// Copies the vault at `paths` into the database at `to`, which is migrated first. Rows are
/// written as they are stored (ciphertext, digests, wrapped keys) and a row already present is
/// left alone, so a copy interrupted and run again finishes without duplicates. The copy is
/// itself an entry of the audit log, written before the log is copied. At the end, row counts,
/// the tree's right edge and the verified audit root of both sides must agree.
///
/// Stop the servers of the source first: a write during the copy makes the final check fail
/// (run the copy again once they are stopped).
///
/// # Errors
/// [`VaultError::Setup`] when the target holds another vault (other keys) or the final check
/// finds a difference; store errors as they come.
pub async fn copy_database(
    paths: &Paths,
    to: &Location,
    progress: impl FnMut(CopyProgress),
) -> Result<CopyReport, VaultError> {
    let (source, from) = Vault::open_located(paths).await?;
    if from == *to {
        return Err(VaultError::Setup(format!(
            "the source and the target are both {to}"
        )));
    }
    custos_store::migrate(to).await?;
    let target = custos_store::open(to).await?;

    // The same vault or an empty one: never merge two vaults' rows.
    let mut after = None;
    loop {
        let page = source
            .store
            .export(Table::VaultKeys, after, custos_store::COPY_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        for row in &page {
            let custos_store::CopyRow::VaultKey { name, wrapped } = row else {
                continue;
            };
            match target.vault_key(name).await? {
                Some(theirs) if theirs != *wrapped => {
                    return Err(VaultError::Setup(format!(
                        "{to} holds another vault (its {name} key differs): copy into an empty database"
                    )));
                }
                _ => {}
            }
        }
    }

    let mut e = AuditEntry::new(Principal::Cli.actor(), Action::DatabaseCopy, Outcome::Ok);
    e.detail = Some(format!("from {from} to {to}"));
    source
        .store
        .append_audit(vec![QueuedAudit {
            subject_id: None,
            entry: e.to_bytes(),
        }])
        .await?;
    while source.sequence_audit().await? >= BATCH {}

    let index_keys = source.store.index_versions().await?;
    custos_store::copy_tables(source.store.as_ref(), target.as_ref(), progress).await?;
    let (now, copied) = (
        source.store.index_versions().await?,
        target.index_versions().await?,
    );
    if now != index_keys || copied != now {
        return Err(VaultError::Setup(format!(
            "the source's blind-index keys changed during the copy (from {index_keys:?} to \
             {now:?}; the target has {copied:?}): a `custos keys rotate-index` ran meanwhile; \
             copy again into an empty database once it has finished"
        )));
    }

    let mut tables = Vec::new();
    for table in Table::ALL {
        let (mine, theirs) = (source.store.count(table).await?, target.count(table).await?);
        if mine != theirs {
            return Err(VaultError::Setup(format!(
                "after the copy the source has {mine:?} {} and the target {theirs:?}: \
                 was the source written to during the copy, or the target not empty?",
                table.name()
            )));
        }
        tables.push((table, mine));
    }
    let mine = check_log(&source, &from).await?;
    let target = Vault::with_ring(
        Arc::clone(&target),
        (*source.inventory).clone(),
        keys::root_ring(paths, &source.inventory)?,
        Arc::new(SystemClock),
    )
    .await?;
    let theirs = check_log(&target, to).await?;
    if (mine.size, &mine.root_hash) != (theirs.size, &theirs.root_hash) {
        return Err(VaultError::Setup(format!(
            "the audit logs differ after the copy: source {} entries with root {}, target {} with root {}",
            mine.size, mine.root_hash, theirs.size, theirs.root_hash
        )));
    }
    Ok(CopyReport {
        tables,
        audit_size: theirs.size,
        root_hash: theirs.root_hash,
    })
}

async fn check_log(v: &Vault, at: &Location) -> Result<crate::VerifyReport, VaultError> {
    v.verify_audit(&Principal::Cli).await?.map_err(|fault| {
        VaultError::Integrity(format!("the audit log in {at} does not verify: {fault}"))
    })
}
