//! `custos backup create`: snapshot, manifest, signature and encryption, streamed to a new
//! file that appears only once complete.

use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::backup::{HeadSummary, Manifest, PayloadHash, TableRows, header};
use custos_store::prelude::*;
use custos_store::{QueuedAudit, SqliteStore, Table};

use super::{BackupProgress, config, recipient, scratch_beside};
use crate::audit::BATCH;
use crate::{Paths, Principal, Vault, VaultError};

/// Bytes read and written at a time.
const CHUNK: usize = 1 << 20;

/// What `backup create` made.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The backup file.
    pub file: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The file's size, encrypted.
    pub bytes: u64,
    /// Seconds from the snapshot's start to the file's rename.
    pub seconds: f64,
}

/// Makes a backup of the vault at `paths` in `out`, which must not exist: brings the erasure
/// journal up to date, records the backup in the audit log, takes a consistent snapshot while
/// the servers go on, and writes it with its signed manifest encrypted to `recipient` (else
/// `[backup] recipient`). The file is written beside `out` and renamed into place complete.
///
/// # Errors
/// [`VaultError::Setup`] when `out` exists, no recipient is known or a file cannot be
/// written; store errors as they come.
pub async fn create_backup(
    paths: &Paths,
    out: &Path,
    to: Option<&str>,
    progress: impl FnMut(BackupProgress) + Send + 'static,
) -> Result<BackupReport, VaultError> {
    if out.exists() {
        return Err(VaultError::Setup(format!(
            "{} exists already: a backup never overwrites a file",
            out.display()
        )));
    }
    let (vault, _) = Vault::open_located(paths).await?;
    let recipient = match (to, &config(paths, vault.inventory()).recipient) {
        (Some(r), _) => recipient(r, "--recipient")?,
        (None, Some(r)) => recipient(r, "[backup] recipient")?,
        (None, None) => {
            return Err(VaultError::Setup(
                "no recipient to encrypt the backup to: set [backup] recipient in custos.toml \
                 (custos init writes one) or pass --recipient age1..."
                    .into(),
            ));
        }
    };
    vault.sync_erasure_journal().await?;
    let mut e = AuditEntry::new(Principal::Cli.actor(), Action::BackupCreate, Outcome::Ok);
    e.detail = Some(format!("snapshot of {}", vault.store.kind()));
    vault
        .store
        .append_audit(vec![QueuedAudit {
            subject_id: None,
            entry: e.to_bytes(),
        }])
        .await?;
    while vault.sequence_audit().await? >= BATCH {}

    let started = Instant::now();
    let scratch = scratch_beside(out)?;
    let snapshot = scratch.path().join("snapshot.db");
    vault.store.snapshot_into(&snapshot).await?;
    let manifest = manifest_of(&vault, &snapshot).await?;
    let head = header(&manifest, &vault.keys.signer)
        .map_err(|e| VaultError::Setup(format!("writing the manifest: {e}")))?;

    let partial = scratch.path().join("backup.age");
    let total = manifest.payload_bytes;
    let (from, written) = (snapshot.clone(), partial.clone());
    let bytes = tokio::task::spawn_blocking(move || {
        encrypt(&from, &written, &head, &recipient, total, progress)
    })
    .await
    .map_err(|e| VaultError::Setup(e.to_string()))?
    .map_err(|e| VaultError::Setup(format!("writing the backup: {e}")))?;
    // A link, unlike a rename, fails when a file of that name appeared meanwhile.
    std::fs::hard_link(&partial, out).map_err(|e| {
        VaultError::Setup(format!(
            "putting the backup at {}: {e} (a backup never overwrites a file)",
            out.display()
        ))
    })?;
    if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| VaultError::Setup(format!("syncing {}: {e}", dir.display())))?;
    }
    Ok(BackupReport {
        file: out.to_owned(),
        manifest,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The manifest of a snapshot file: its rows, log and head, and its bytes' digest.
async fn manifest_of(vault: &Vault, snapshot: &Path) -> Result<Manifest, VaultError> {
    let schema = SqliteStore::migrate(snapshot).await?.found;
    let store = SqliteStore::open(snapshot).await?;
    let mut tables = Vec::new();
    for t in Table::ALL {
        let (rows, second) = store.count(t).await?;
        tables.push(TableRows {
            table: t.name().to_owned(),
            rows,
            second,
        });
    }
    let audit_size = store.tree_state().await?.size;
    let signed_head = store.tree_heads().await?.last().map(|h| HeadSummary {
        size: h.head.size,
        root_hash: hex::encode(h.head.root),
        timestamp_ms: h.head.timestamp_ms,
    });
    drop(store);
    custos_store::seal_sqlite_file(snapshot).await?;
    let path = snapshot.to_owned();
    let (payload_bytes, payload_sha256) = tokio::task::spawn_blocking(move || digest(&path))
        .await
        .map_err(|e| VaultError::Setup(e.to_string()))?
        .map_err(|e| VaultError::Setup(format!("reading the snapshot: {e}")))?;
    Ok(Manifest {
        created_at: custos_core::time::format_time_ms(vault.now_ms()),
        source: vault.store.kind().to_owned(),
        schema_version: schema,
        vault: hex::encode(vault.keys.signer.verifying_key().to_bytes()),
        tables,
        audit_size,
        signed_head,
        payload_bytes,
        payload_sha256,
    })
}

fn digest(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut hash = PayloadHash::default();
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0u64;
    loop {
        let read = f.read(&mut buf)?;
        if read == 0 {
            return Ok((n, hash.finish()));
        }
        hash.update(&buf[..read]);
        n += read as u64;
    }
}

/// Writes the encrypted backup: header, then the snapshot, through age's stream; returns the
/// file's size.
fn encrypt(
    snapshot: &Path,
    out: &Path,
    head: &[u8],
    recipient: &age::x25519::Recipient,
    total: u64,
    mut progress: impl FnMut(BackupProgress),
) -> std::io::Result<u64> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)?;
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
            .map_err(std::io::Error::other)?;
    let mut w = encryptor.wrap_output(BufWriter::with_capacity(CHUNK, file))?;
    w.write_all(head)?;
    let mut from = std::fs::File::open(snapshot)?;
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    progress(BackupProgress { done, total });
    loop {
        let read = from.read(&mut buf)?;
        if read == 0 {
            break;
        }
        w.write_all(&buf[..read])?;
        done += read as u64;
        progress(BackupProgress { done, total });
    }
    let file = w.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(file.metadata()?.len())
}
