//! Opening a backup: decrypted in a stream into a scratch file, checked against its manifest,
//! its keys unwrapped by this vault's root key, the manifest's signature and the audit log in
//! the snapshot verified. `backup verify` stops there; `backup restore` goes on.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use custos_core::backup::{Header, MAX_MANIFEST, Manifest, PayloadHash};
use custos_store::prelude::*;
use custos_store::{SqliteStore, Table};

use super::{BackupProgress, config, read_identity, scratch_beside};
use crate::keys::root_ring;
use crate::{Paths, Principal, SystemClock, Vault, VaultError, VerifyReport};

/// What `backup verify` checked.
#[derive(Debug, Clone)]
pub struct BackupCheck {
    /// The manifest, its signature verified.
    pub manifest: Manifest,
    /// The snapshot's audit log, verified against its signed heads.
    pub audit: VerifyReport,
}

/// A backup opened and checked, over its snapshot in a scratch directory.
pub(crate) struct Opened {
    pub(crate) manifest: Manifest,
    pub(crate) vault: Vault,
    pub(crate) audit: VerifyReport,
    _scratch: tempfile::TempDir,
}

/// Checks a backup without restoring it: decrypts it with `identity` (else `[backup]
/// identity`) in a stream, and checks the snapshot against the manifest, the keys against
/// the root key, the signature, and the audit log against its signed heads.
///
/// # Errors
/// [`VaultError::Integrity`] saying what does not hold; [`VaultError::Setup`] when the
/// identity or the file cannot be read.
pub async fn verify_backup(
    paths: &Paths,
    file: &Path,
    identity: Option<&Path>,
    progress: impl FnMut(BackupProgress) + Send + 'static,
) -> Result<BackupCheck, VaultError> {
    let opened = open_backup(paths, file, identity, progress).await?;
    Ok(BackupCheck {
        manifest: opened.manifest,
        audit: opened.audit,
    })
}

pub(crate) async fn open_backup(
    paths: &Paths,
    file: &Path,
    identity: Option<&Path>,
    progress: impl FnMut(BackupProgress) + Send + 'static,
) -> Result<Opened, VaultError> {
    let inventory = paths.read_inventory()?;
    let identity_file = identity
        .map(Path::to_owned)
        .unwrap_or_else(|| config(paths, &inventory).identity);
    let identity = read_identity(&identity_file)?;
    let scratch = scratch_beside(file)?;
    let snapshot = scratch.path().join("snapshot.db");
    let (from, to) = (file.to_owned(), snapshot.clone());
    let (header, bytes, sha) =
        tokio::task::spawn_blocking(move || decrypt(&from, &to, &identity, progress))
            .await
            .map_err(|e| VaultError::Setup(e.to_string()))??;
    let manifest = header.manifest.clone();
    let bad = |what: String| VaultError::Integrity(format!("{}: {what}", file.display()));
    if (bytes, sha.as_str()) != (manifest.payload_bytes, manifest.payload_sha256.as_str()) {
        return Err(bad(
            "the snapshot does not match its manifest (length or SHA-256): damaged or changed"
                .into(),
        ));
    }

    SqliteStore::migrate(&snapshot).await?;
    let store = Arc::new(SqliteStore::open(&snapshot).await?);
    for t in Table::ALL {
        let (rows, second) = store.count(t).await?;
        let listed = manifest.tables.iter().find(|r| r.table == t.name());
        if listed.map(|r| (r.rows, r.second)) != Some((rows, second)) {
            return Err(bad(format!(
                "the snapshot holds {rows} {} and its manifest says {:?}",
                t.name(),
                listed.map(|r| r.rows)
            )));
        }
    }
    let root = root_ring(paths, &inventory)?;
    let vault = Vault::with_ring(store, inventory, root, Arc::new(SystemClock))
        .await
        .map_err(|e| {
            bad(format!(
                "its keys do not open with this vault's root key. A backup opens only with the \
                 root key of the vault that made it, holding every version that wrapped its keys \
                 ({e})"
            ))
        })?;
    header
        .check(&vault.keys.signer.verifying_key())
        .map_err(&bad)?;
    let audit = vault
        .verify_audit(&Principal::Cli)
        .await?
        .map_err(|fault| {
            bad(format!(
                "the audit log in the snapshot does not verify: {fault}"
            ))
        })?;
    if let Some(h) = &manifest.signed_head {
        let heads = vault.store.tree_heads().await?;
        let found = heads
            .iter()
            .any(|s| s.head.size == h.size && hex::encode(s.head.root) == h.root_hash);
        if !found {
            return Err(bad(format!(
                "the snapshot holds no signed head of {} entries with root {}",
                h.size, h.root_hash
            )));
        }
    }
    Ok(Opened {
        manifest,
        vault,
        audit,
        _scratch: scratch,
    })
}

/// Decrypts `file` with `identity`: reads the header and writes the snapshot to `to`,
/// hashing it; returns the header, the snapshot's length and its SHA-256.
fn decrypt(
    file: &Path,
    to: &Path,
    identity: &age::x25519::Identity,
    mut progress: impl FnMut(BackupProgress),
) -> Result<(Header, u64, String), VaultError> {
    let shown = file.display();
    let damaged = |e: std::io::Error| {
        VaultError::Integrity(format!(
            "{shown} cannot be decrypted to its end: {e} (damaged, cut short or changed)"
        ))
    };
    let f = std::fs::File::open(file)
        .map_err(|e| VaultError::Setup(format!("reading {shown}: {e}")))?;
    let decryptor = age::Decryptor::new(BufReader::new(f))
        .map_err(|e| VaultError::Integrity(format!("{shown} is not an age file: {e}")))?;
    let reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => VaultError::Integrity(format!(
                "{shown} is not encrypted to this backup identity: it is another vault's, or \
                 give the identity it was made for with --identity"
            )),
            e => VaultError::Integrity(format!("{shown} cannot be decrypted: {e}")),
        })?;
    let mut r = BufReader::with_capacity(1 << 20, reader);
    let mut line = |name: &str| -> Result<String, VaultError> {
        let mut buf = Vec::new();
        (&mut r)
            .take(MAX_MANIFEST as u64)
            .read_until(b'\n', &mut buf)
            .map_err(damaged)?;
        if buf.pop() != Some(b'\n') {
            return Err(VaultError::Integrity(format!(
                "{shown}: its {name} line is missing or too long: not a Custos backup"
            )));
        }
        String::from_utf8(buf)
            .map_err(|_| VaultError::Integrity(format!("{shown}: its {name} line is not UTF-8")))
    };
    let (magic, manifest, signature) = (line("first")?, line("manifest")?, line("signature")?);
    let header = Header::parse(&magic, &manifest, &signature)
        .map_err(|why| VaultError::Integrity(format!("{shown}: {why}")))?;

    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| VaultError::Setup(format!("writing {}: {e}", to.display())))?;
    let mut hash = PayloadHash::default();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    let expected = header.manifest.payload_bytes.max(1);
    progress(BackupProgress {
        done: 0,
        total: expected,
    });
    loop {
        let read = r.read(&mut buf).map_err(damaged)?;
        if read == 0 {
            break;
        }
        if n + read as u64 > header.manifest.payload_bytes {
            return Err(VaultError::Integrity(format!(
                "{shown}: the snapshot is longer than its manifest says: damaged or changed"
            )));
        }
        hash.update(&buf[..read]);
        out.write_all(&buf[..read])
            .map_err(|e| VaultError::Setup(format!("writing {}: {e}", to.display())))?;
        n += read as u64;
        progress(BackupProgress {
            done: n.min(expected),
            total: expected,
        });
    }
    out.sync_all()
        .map_err(|e| VaultError::Setup(format!("writing {}: {e}", to.display())))?;
    Ok((header, n, hash.finish()))
}
