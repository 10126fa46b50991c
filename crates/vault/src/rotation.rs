//! Root key rotation that finishes: `custos keys rotate-root` adds a version to the key file
//! and wraps every key again under it, in batches, while servers serve; `keys status` counts
//! what each version still wraps; `keys retire` removes a version that wraps nothing.
//!
//! Progress lives in the database: a rotation's row, and above all the keys themselves, each
//! carrying the version that wraps it. A rotation stopped or killed is resumed by running it
//! again; it ends only when a last look, after every server has read the key file again,
//! finds nothing under an older version.

use std::time::Instant;

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::crypto::{WrapContext, ciphertext_key_version};
use custos_store::{
    KeyOwner, QueuedAudit, Rewrap, RotationKind, RotationRow, StoreError, WrappedKey,
};

use crate::keys::{ROOT_KEY_RECHECK, RootRing};
use crate::{Principal, Vault, VaultError};

/// Keys wrapped again per transaction unless told otherwise.
pub const ROTATION_BATCH: usize = 1_000;

/// Where a rotation stands, reported after every batch.
#[derive(Debug, Clone, Copy)]
pub struct RotationProgress {
    /// The version every key is being wrapped under.
    pub target: u32,
    /// Keys wrapped again so far (by this run and any before it).
    pub done: u64,
    /// Keys to wrap again, as counted when the rotation began (keys written since count too).
    pub total: u64,
}

/// A finished rotation.
#[derive(Debug, Clone, Copy)]
pub struct RotationReport {
    /// The version that now wraps every key.
    pub target: u32,
    /// Keys wrapped again by this run.
    pub rewrapped: u64,
    /// Keys wrapped again by the whole rotation.
    pub done: u64,
    /// Whether this run resumed a rotation begun before.
    pub resumed: bool,
    /// Seconds this run took.
    pub seconds: f64,
}

/// One root key version as `keys status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootVersionStatus {
    /// The version.
    pub version: u32,
    /// Whether the key file (or the token) holds it.
    pub held: bool,
    /// For a version held in a PKCS#11 token: its label there, and whether the token reports
    /// it generated inside and never extractable.
    pub token_key: Option<(String, bool)>,
    /// Whether it is the newest, the one that wraps new keys.
    pub newest: bool,
    /// Keys it still wraps.
    pub wraps: u64,
    /// Created (none for version 1, made with the vault), ms since the epoch.
    pub created_ms: Option<i64>,
    /// Retired, ms since the epoch.
    pub retired_ms: Option<i64>,
}

/// The root key versions, and the last rotation.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    /// Where the versions are held: the key file, or the token.
    pub holder: String,
    /// Every version known to the file or the database, oldest first.
    pub versions: Vec<RootVersionStatus>,
    /// The latest rotation, finished or not.
    pub rotation: Option<RotationRow>,
    /// The blind index's keys.
    pub index: crate::reindex::IndexStatus,
}

pub(crate) fn only_cli(p: &Principal) -> Result<(), VaultError> {
    if matches!(p, Principal::Cli) {
        Ok(())
    } else {
        Err(VaultError::Forbidden(
            "only the command line, beside the root key, manages root key versions".into(),
        ))
    }
}

pub(crate) fn entry(p: &Principal, action: Action, detail: String) -> QueuedAudit {
    let mut e = AuditEntry::new(p.actor(), action, Outcome::Ok);
    e.detail = Some(detail);
    QueuedAudit {
        subject_id: None,
        entry: e.to_bytes(),
    }
}

fn context(owner: &KeyOwner) -> WrapContext<'_> {
    match owner {
        KeyOwner::Subject { id, .. } => WrapContext::Subject(*id),
        KeyOwner::Named(name) => WrapContext::Named(name),
    }
}

/// Each key unwrapped under the version that wrapped it and wrapped under `target`, the
/// ring's newest.
fn wrapped_again(
    ring: &RootRing,
    found: Vec<WrappedKey>,
    target: u32,
) -> Result<Vec<Rewrap>, VaultError> {
    found
        .into_iter()
        .map(|old| {
            let ctx = context(&old.owner);
            let key = ring.unwrap(ctx, &old.wrapped).map_err(|e| {
                let whose = match &old.owner {
                    KeyOwner::Subject { id, version } => {
                        format!("subject {id}'s data key (version {version})")
                    }
                    KeyOwner::Named(name) => format!("the vault's {name} key"),
                };
                VaultError::Integrity(format!("{whose} cannot be unwrapped: {e}"))
            })?;
            let new = ring.wrap(ctx, &key)?;
            if ciphertext_key_version(&new)? != target {
                return Err(VaultError::Conflict(format!(
                    "root key version {target} is no longer the newest in {}: another rotation added one",
                    ring.describe()
                )));
            }
            Ok(Rewrap {
                old,
                new,
                new_version: target,
            })
        })
        .collect()
}

impl Vault {
    /// Wraps every key the root key wraps under a new root key version, or finishes the
    /// rotation begun before. Servers keep serving: they read the key file again within
    /// [`ROOT_KEY_RECHECK`] and wrap new keys under the new version from then on.
    ///
    /// # Errors
    /// `Forbidden` for any caller but the command line; `Setup` when the key file cannot be
    /// written or lacks the version a resumed rotation needs; store errors as they come (run
    /// it again to resume).
    pub async fn rotate_root(
        &self,
        p: &Principal,
        batch: usize,
        mut progress: impl FnMut(RotationProgress),
    ) -> Result<RotationReport, VaultError> {
        only_cli(p)?;
        let started = Instant::now();
        let _lock = self.keys.root.lock()?;
        let (rotation, resumed) = match self.store.open_rotation(RotationKind::Root).await? {
            Some(r) => (r, true),
            None => (self.begin_root_rotation(p).await?, false),
        };
        let target = rotation.target;
        let held = self.keys.root.versions();
        if held.last() != Some(&target) {
            return Err(VaultError::Setup(format!(
                "the rotation to root key version {target} needs that version as the newest in {}, which holds {held:?}",
                self.keys.root.describe(),
            )));
        }
        let (mut done, mut rewrapped) = (rotation.done, 0);
        progress(RotationProgress {
            target,
            done,
            total: rotation.total.max(done),
        });
        let mut looked_again = false;
        loop {
            let found = self.store.wrapped_below(target, batch.max(1)).await?;
            if found.is_empty() {
                if looked_again {
                    break;
                }
                // A server that has not yet read the file again may still wrap a key under
                // an older version: look once more after every server has.
                tokio::time::sleep(ROOT_KEY_RECHECK * 2).await;
                looked_again = true;
                continue;
            }
            looked_again = false;
            let rewraps = wrapped_again(&self.keys.root, found, target)?;
            let n = self.store.rewrap(rotation.id, rewraps).await?;
            done += n;
            rewrapped += n;
            progress(RotationProgress {
                target,
                done,
                total: rotation.total.max(done),
            });
        }
        let audit = entry(
            p,
            Action::RootKeyRotate,
            format!("version={target} rewrapped={done}"),
        );
        self.store
            .finish_rotation(rotation.id, self.now_ms(), audit)
            .await?;
        Ok(RotationReport {
            target,
            rewrapped,
            done,
            resumed,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Claims the next version in the database, then adds it where the versions are held (the
    /// key file or the token); or, when a run stopped after adding it and before starting the
    /// rotation, takes that version. Called under the key file's lock.
    async fn begin_root_rotation(&self, p: &Principal) -> Result<RotationRow, VaultError> {
        let recorded = self.store.root_versions().await?;
        let last = self.store.last_rotation(RotationKind::Root).await?;
        let newest = self.keys.root.versions().last().copied().unwrap_or(0);
        let begun = recorded
            .iter()
            .any(|r| r.version == newest && r.retired_ms.is_none())
            && last.as_ref().is_none_or(|r| r.target < newest);
        let target = if begun {
            newest
        } else {
            // Above every version the file or the database knows: a version claimed by a
            // run that died before writing the file is never made again with another key.
            let target = recorded
                .iter()
                .map(|r| r.version)
                .chain([newest])
                .max()
                .unwrap_or(newest)
                + 1;
            let audit = entry(p, Action::RootKeyAdd, format!("version={target}"));
            if !self
                .store
                .add_root_version(target, self.now_ms(), audit)
                .await?
            {
                return Err(VaultError::Conflict(format!(
                    "root key version {target} was claimed by another rotation: run it again where that one ran"
                )));
            }
            self.keys.root.add_version(target)?;
            target
        };
        let now = self.now_ms();
        let total = self
            .store
            .wrapped_per_version()
            .await?
            .iter()
            .filter(|(v, _)| *v < target)
            .map(|(_, n)| n)
            .sum();
        match self
            .store
            .start_rotation(RotationKind::Root, target, now, total)
            .await
        {
            Ok(r) => Ok(r),
            // A run elsewhere started one meanwhile: resume that (it needs its version here).
            Err(StoreError::Conflict(_)) => self
                .store
                .open_rotation(RotationKind::Root)
                .await?
                .ok_or_else(|| VaultError::Conflict("a rotation began and ended meanwhile".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Where the root key versions are held: the key file, or the token and its module.
    pub fn root_key_holder(&self) -> String {
        self.keys.root.describe()
    }

    /// Each root key version, what it still wraps, and the last rotation.
    ///
    /// # Errors
    /// `Forbidden` for any caller but the command line; store errors.
    pub async fn key_status(&self, p: &Principal) -> Result<KeyStatus, VaultError> {
        only_cli(p)?;
        let held = self.keys.root.versions();
        let counts = self.store.wrapped_per_version().await?;
        let recorded = self.store.root_versions().await?;
        let mut versions: Vec<u32> = held.clone();
        versions.extend(counts.iter().map(|(v, _)| *v));
        versions.extend(recorded.iter().map(|r| r.version));
        versions.sort_unstable();
        versions.dedup();
        let mut statuses = Vec::with_capacity(versions.len());
        for v in versions {
            let row = recorded.iter().find(|r| r.version == v);
            let token_key = match held.contains(&v) {
                true => self.keys.root.token_key(v)?,
                false => None,
            };
            statuses.push(RootVersionStatus {
                version: v,
                token_key,
                held: held.contains(&v),
                newest: held.last() == Some(&v),
                wraps: counts.iter().find(|(c, _)| *c == v).map_or(0, |(_, n)| *n),
                created_ms: row.map(|r| r.created_ms).filter(|ms| *ms > 0),
                retired_ms: row.and_then(|r| r.retired_ms),
            });
        }
        Ok(KeyStatus {
            holder: self.keys.root.describe(),
            versions: statuses,
            rotation: self.store.last_rotation(RotationKind::Root).await?,
            index: self.index_status().await?,
        })
    }

    /// Retires a root key version: refused while it wraps any key, while a rotation runs, or
    /// when it is the newest; then it is recorded retired, removed from the key file (or
    /// destroyed in the token), and what the database kept of the keys it wrapped is dropped
    /// where the backend can.
    ///
    /// # Errors
    /// `Forbidden` for any caller but the command line; `Conflict` saying why it is refused;
    /// `Setup` when the key file cannot be written.
    pub async fn retire_root(&self, p: &Principal, version: u32) -> Result<bool, VaultError> {
        only_cli(p)?;
        let _lock = self.keys.root.lock()?;
        let held = self.keys.root.versions();
        let newest = held.last().copied().unwrap_or(0);
        if version >= newest {
            return Err(VaultError::Conflict(format!(
                "root key version {version} is not below the newest ({newest}), which wraps new \
                 keys: only an older version is retired, after `custos keys rotate-root`"
            )));
        }
        let recorded = self.store.root_versions().await?;
        let row = recorded.iter().find(|r| r.version == version);
        if row.is_some_and(|r| r.retired_ms.is_some()) && !held.contains(&version) {
            // Retired before: only what the database keeps is dropped again.
            return Ok(self.store.flush_replaced().await.unwrap_or(false));
        }
        if !held.contains(&version) && row.is_none() {
            return Err(VaultError::Conflict(format!(
                "there is no root key version {version}: `custos keys status` lists them"
            )));
        }
        if let Some(r) = self.store.open_rotation(RotationKind::Root).await? {
            return Err(VaultError::Conflict(format!(
                "a rotation to version {} is not finished: run `custos keys rotate-root` to finish it",
                r.target
            )));
        }
        let audit = entry(p, Action::RootKeyRetire, format!("version={version}"));
        self.store
            .retire_root_version(version, self.now_ms(), audit)
            .await?;
        self.keys.root.remove_version(version)?;
        // Retired and gone from the file already: a failure here only leaves old copies.
        Ok(self.store.flush_replaced().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "dropping old copies of the retired version's keys failed");
            false
        }))
    }
}
