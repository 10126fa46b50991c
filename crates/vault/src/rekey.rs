//! Customers' data keys replaced: `custos keys rotate-subjects [--older-than AGE]` gives every
//! subject whose data key is older than the age a new one (the next version), and seals again
//! under it, bound to the same record, collection and field, everything the old one sealed:
//! record fields, request reasons, queued messages. Subject by subject, each in one store
//! transaction, while servers serve.
//!
//! Progress lives in the database: each key carries when it was made, so what is left is
//! exactly the keys older than the cutoff (the rotation's start less the age), and a rotation
//! stopped or killed is resumed by running it again. Writes racing a subject's rekey are
//! refused by the store as sealed under the replaced key, and sealed again by the vault.

use std::sync::Arc;
use std::time::{Duration, Instant};

use custos_core::audit::Action;
use custos_core::crypto::{DataKey, FieldBinding, MessageBinding, WrapContext};
use custos_core::inventory::Period;
use custos_store::{
    EncryptedFields, Rekeyed, Reseal, RotationKind, RotationRow, StoreError, SubjectSecrets,
};
use futures_util::StreamExt;

use crate::error::{KEY_ATTEMPTS, KEY_CHANGED_AGAIN};
use crate::rotation::{entry, only_cli};
use crate::{Principal, Vault, VaultError};

/// Subjects read per page of a rotation unless told otherwise.
pub const REKEY_BATCH: usize = 500;

/// Subjects rekeyed at once within a page.
const REKEY_AT_ONCE: usize = 16;

const DAY_MS: i64 = 86_400_000;

/// Where a subjects rotation stands, reported after every page.
#[derive(Debug, Clone, Copy)]
pub struct RekeyProgress {
    /// Subjects given a new key so far (by this run and any before it).
    pub done: u64,
    /// Subjects to do, as counted when the rotation began.
    pub total: u64,
}

/// A finished subjects rotation.
#[derive(Debug, Clone, Copy)]
pub struct RekeyReport {
    /// The age in days a key had reached to be replaced.
    pub older_than_days: u32,
    /// Subjects given a new key by this run.
    pub rekeyed: u64,
    /// Subjects given a new key by the whole rotation.
    pub done: u64,
    /// Whether this run resumed a rotation begun before (whose age it kept).
    pub resumed: bool,
    /// Seconds this run took.
    pub seconds: f64,
    /// Whether what the database kept of the old ciphertexts was dropped (as after a root key
    /// retirement: SQLite's write-ahead log moved into the zeroed file and truncated).
    pub flushed: bool,
}

/// The cutoff of a rotation begun at `started_ms` for keys older than `days`.
fn cutoff(started_ms: i64, days: u32) -> i64 {
    started_ms.saturating_sub(i64::from(days) * DAY_MS)
}

/// Opens everything in `old` with `key` and seals it again with `new`, under the same
/// bindings; refused as [`StoreError::KeyChanged`] when the stored key is no longer the one
/// `key` was unwrapped from.
fn reseal_with(expected: Vec<u8>, key: DataKey, new: DataKey, new_wrapped: Vec<u8>) -> Reseal {
    Arc::new(move |old: SubjectSecrets| {
        if old.wrapped_key != expected {
            return Err(StoreError::KeyChanged);
        }
        let unopened = |what: String| {
            StoreError::Corrupt(format!(
                "subject {}: {what} does not open with its data key",
                old.subject
            ))
        };
        let mut records = Vec::with_capacity(old.records.len());
        for (id, collection, fields) in &old.records {
            let mut out = EncryptedFields::new();
            for (name, ct) in fields {
                let at = FieldBinding {
                    record: *id,
                    collection,
                    field: name,
                };
                let plain = key
                    .decrypt_field(at, ct)
                    .map_err(|_| unopened(format!("record {id}'s {name}")))?;
                out.insert(name.clone(), new.encrypt_field(at, plain.expose_secret()));
            }
            records.push((*id, collection.clone(), out));
        }
        let mut requests = Vec::with_capacity(old.requests.len());
        for (id, reasons) in &old.requests {
            let mut out = EncryptedFields::new();
            for (name, ct) in reasons {
                let at = crate::requests::stored::binding(*id, name);
                let plain = key
                    .decrypt_field(at, ct)
                    .map_err(|_| unopened(format!("request {id}'s {name}")))?;
                out.insert(name.clone(), new.encrypt_field(at, plain.expose_secret()));
            }
            requests.push((*id, out));
        }
        let mut mail = Vec::with_capacity(old.mail.len());
        for (id, sealed) in &old.mail {
            let at = MessageBinding { id: *id };
            let plain = key
                .decrypt_message(at, sealed)
                .map_err(|_| unopened(format!("message {id}")))?;
            mail.push((*id, new.encrypt_message(at, plain.expose_secret())));
        }
        Ok(SubjectSecrets {
            subject: old.subject,
            key_version: new.version(),
            wrapped_key: new_wrapped.clone(),
            records,
            requests,
            mail,
        })
    })
}

impl Vault {
    /// Gives every subject whose data key is older than `older_than` (every subject, without
    /// it) a new one and seals again what the old one sealed, or finishes the rotation begun
    /// before (with that rotation's age). Servers keep serving throughout.
    ///
    /// # Errors
    /// `Forbidden` for any caller but the command line; `Integrity` naming a subject whose
    /// ciphertexts do not open with its key; store errors as they come (run it again to
    /// resume).
    pub async fn rotate_subjects(
        &self,
        p: &Principal,
        older_than: Option<Period>,
        batch: usize,
        mut progress: impl FnMut(RekeyProgress),
    ) -> Result<RekeyReport, VaultError> {
        only_cli(p)?;
        let started = Instant::now();
        let now = self.now_ms();
        let days = match older_than {
            None => 0,
            Some(age) => age
                .after(now)
                .and_then(|later| u32::try_from((later - now) / DAY_MS).ok())
                .ok_or_else(|| {
                    VaultError::bad_request("older_than", "the age is past the calendar's range")
                })?,
        };
        let (rotation, resumed) = self.subjects_rotation(days).await?;
        let before = cutoff(rotation.started_ms, rotation.target);
        let (mut done, mut rekeyed) = (rotation.done, 0);
        let total = |done: u64| rotation.total.max(done);
        progress(RekeyProgress {
            done,
            total: total(done),
        });
        loop {
            let (mut after, mut busy) = (None, false);
            loop {
                let page = self.store.keyed_before(before, after, batch.max(1)).await?;
                let Some(last) = page.last() else { break };
                after = Some(*last);
                // Several subjects at once, each its own transaction: SQLite's writer commits
                // them together, PostgreSQL's pool runs them side by side.
                let mut outcomes = futures_util::stream::iter(page)
                    .map(|(_, subject)| self.rekey_subject(rotation.id, subject, before))
                    .buffer_unordered(REKEY_AT_ONCE);
                while let Some(outcome) = outcomes.next().await {
                    match outcome? {
                        Rekeyed::Done => (done, rekeyed) = (done + 1, rekeyed + 1),
                        Rekeyed::Busy => busy = true,
                        Rekeyed::Skipped => {}
                    }
                }
                progress(RekeyProgress {
                    done,
                    total: total(done),
                });
            }
            if !busy {
                break;
            }
            // A message to a subject was being delivered: once its lease is over, again.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let audit = entry(
            p,
            Action::SubjectKeysRotate,
            format!("older_than_days={} rekeyed={done}", rotation.target),
        );
        self.store
            .finish_rotation(rotation.id, self.now_ms(), audit)
            .await?;
        let flushed = self.store.flush_replaced().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "dropping old copies of the replaced ciphertexts failed");
            false
        });
        Ok(RekeyReport {
            flushed,
            older_than_days: rotation.target,
            rekeyed,
            done,
            resumed,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The unfinished subjects rotation, or a new one counting the keys older than the age.
    async fn subjects_rotation(&self, days: u32) -> Result<(RotationRow, bool), VaultError> {
        if let Some(r) = self.store.open_rotation(RotationKind::Subjects).await? {
            return Ok((r, true));
        }
        let now = self.now_ms();
        let total = self.store.count_keyed_before(cutoff(now, days)).await?;
        match self
            .store
            .start_rotation(RotationKind::Subjects, days, now, total)
            .await
        {
            Ok(r) => Ok((r, false)),
            // Another run started one meanwhile: join it.
            Err(StoreError::Conflict(_)) => self
                .store
                .open_rotation(RotationKind::Subjects)
                .await?
                .map(|r| (r, true))
                .ok_or_else(|| VaultError::Conflict("a rotation began and ended meanwhile".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// One subject given a new key, its key read again when it changed meanwhile.
    async fn rekey_subject(
        &self,
        rotation: i64,
        subject: custos_core::ids::SubjectId,
        before: i64,
    ) -> Result<Rekeyed, VaultError> {
        let ctx = WrapContext::Subject(subject);
        for _ in 0..KEY_ATTEMPTS {
            let Some(wrapped) = self.store.subject_key(subject).await? else {
                return Ok(Rekeyed::Skipped);
            };
            let key = self.keys.root.unwrap(ctx, &wrapped)?;
            let new = DataKey::generate(key.version() + 1)?;
            let new_wrapped = self.keys.root.wrap(ctx, &new)?;
            let reseal = reseal_with(wrapped, key, new, new_wrapped);
            match self
                .store
                .rekey_subject(rotation, subject, before, self.now_ms(), reseal)
                .await
            {
                Err(StoreError::KeyChanged) => continue,
                other => return Ok(other?),
            }
        }
        Err(VaultError::Conflict(KEY_CHANGED_AGAIN.into()))
    }
}
