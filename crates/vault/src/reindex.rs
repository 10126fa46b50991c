//! A new blind-index key: `custos keys rotate-index` adds the next key, indexes every
//! record's searchable fields again under it while servers serve, makes it the only key, then
//! deletes the old key's entries.
//!
//! Searches work throughout: while both keys are held a write stores its entries under both,
//! a search looks up both digests, and the store refuses a write or search made under other
//! keys than those it holds (see `custos_store::IndexKeyStore`), which the vault then reads
//! again. Progress lives in the database: what is left is exactly the records with a field
//! indexed under the old key and not the new, so a rotation stopped or killed is resumed by
//! running it again.

use std::time::Instant;

use custos_core::audit::Action;
use custos_core::crypto::{DataKey, WrapContext};
use custos_core::fields;
use custos_store::{
    IndexEntry, RecordWithKey, Reindexed, RotationKind, RotationRow, StoreError, index_key_name,
};

use crate::records::open_field;
use crate::rotation::{entry, only_cli};
use crate::{Principal, Vault, VaultError};

/// Records read and indexed again per transaction unless told otherwise.
pub const REINDEX_BATCH: usize = 500;

/// Old entries deleted per transaction once the new key is the only one.
const DROP_BATCH: usize = 5_000;

/// Passes over what is left before the finish gives up: each pass picks up records a server
/// wrote under the old key alone before it knew of the new one.
const PASSES: usize = 5;

/// Where a blind-index rotation stands, reported after every page.
#[derive(Debug, Clone, Copy)]
pub struct ReindexProgress {
    /// The new key's version.
    pub version: u32,
    /// Records indexed under it so far (by this run and any before it).
    pub done: u64,
    /// Records to do, as counted when the rotation began.
    pub total: u64,
}

/// A finished blind-index rotation.
#[derive(Debug, Clone, Copy)]
pub struct ReindexReport {
    /// The blind-index key version now the only one.
    pub version: u32,
    /// Records indexed again by this run.
    pub reindexed: u64,
    /// Fields whose stored value no longer passes its field's rules: not indexed again, so
    /// no longer found by a search (each logged by record and field).
    pub unindexable: u64,
    /// Records indexed again by the whole rotation.
    pub done: u64,
    /// Entries of old keys deleted by this run.
    pub dropped: u64,
    /// Whether this run resumed a rotation begun before.
    pub resumed: bool,
    /// Seconds this run took.
    pub seconds: f64,
    /// Whether what the database kept of the deleted entries was dropped (as after a
    /// subjects rotation).
    pub flushed: bool,
}

/// The blind index's keys, as `custos keys status` shows them.
#[derive(Debug, Clone)]
pub struct IndexStatus {
    /// The key versions stored: the current one, and the next while a rotation runs.
    pub versions: Vec<u32>,
    /// The entries made under each key version, ascending.
    pub entries: Vec<(u32, u64)>,
    /// The latest blind-index rotation, finished or not.
    pub rotation: Option<RotationRow>,
}

/// What a rotation has done so far.
#[derive(Default)]
struct Tally {
    /// Records indexed under the new key by the whole rotation.
    done: u64,
    /// By this run.
    reindexed: u64,
    /// Fields not indexed again (their values no longer pass their rules).
    unindexable: u64,
}

impl Vault {
    /// The blind index's keys, their entries and the latest rotation.
    pub(crate) async fn index_status(&self) -> Result<IndexStatus, VaultError> {
        Ok(IndexStatus {
            versions: self.store.index_versions().await?,
            entries: self.store.index_entries_per_version().await?,
            rotation: self.store.last_rotation(RotationKind::Index).await?,
        })
    }

    /// Gives the blind index a new key and indexes every record again under it, or finishes
    /// the rotation begun before. Servers keep serving, and searches find every record,
    /// throughout.
    ///
    /// # Errors
    /// `Forbidden` for any caller but the command line; `Integrity` naming a record whose
    /// fields do not open with its subject's key, or whose collection the inventory no longer
    /// declares; store errors as they come (run it again to resume).
    pub async fn rotate_index(
        &self,
        p: &Principal,
        batch: usize,
        mut progress: impl FnMut(ReindexProgress),
    ) -> Result<ReindexReport, VaultError> {
        only_cli(p)?;
        let started = Instant::now();
        self.refresh_index().await?;
        if let Some(report) = self.finish_dropping(p, started).await? {
            return Ok(report);
        }
        let (current, next, mut resumed) = self.begin_index_rotation().await?;
        let rotation = self.index_rotation(current, next).await?;
        resumed |= rotation.done > 0;
        let mut tally = Tally {
            done: rotation.done,
            ..Tally::default()
        };
        let total = |done: u64| rotation.total.max(done);
        let mut report = |done| {
            progress(ReindexProgress {
                version: next,
                done,
                total: total(done),
            })
        };
        report(tally.done);
        let mut finished = false;
        for _ in 0..PASSES {
            self.reindex_pass(&rotation, (current, next), batch, &mut tally, &mut report)
                .await?;
            if self.try_finish(current, next).await? {
                finished = true;
                break;
            }
        }
        if !finished {
            return Err(VaultError::Conflict(format!(
                "after {PASSES} passes, records still lacked entries under blind-index key \
                 {next} (changed while they were indexed, or written by a server that had not \
                 read the new key yet); run it again"
            )));
        }
        self.close_rotation(p, &rotation, tally.done).await?;
        self.refresh_index().await?;
        let (dropped, flushed) = self.drop_old_entries(next).await?;
        Ok(ReindexReport {
            version: next,
            reindexed: tally.reindexed,
            unindexable: tally.unindexable,
            done: tally.done,
            dropped,
            resumed,
            seconds: started.elapsed().as_secs_f64(),
            flushed,
        })
    }

    /// One pass over what is left: every record with a field not yet indexed under `next`,
    /// page by page, each page written in one transaction.
    async fn reindex_pass(
        &self,
        rotation: &RotationRow,
        (current, next): (u32, u32),
        batch: usize,
        tally: &mut Tally,
        report: &mut impl FnMut(u64),
    ) -> Result<(), VaultError> {
        let mut after = None;
        loop {
            let page = self
                .store
                .unindexed_records(current, next, after, batch.max(1))
                .await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.record.id);
            let mut work = Vec::with_capacity(page.len());
            for r in &page {
                let (w, n) = self.reindexed(r, next)?;
                work.push(w);
                tally.unindexable += n;
            }
            let n = match self.store.reindex(rotation.id, current, next, work).await {
                // Another run finished the rotation: the finish says so.
                Err(StoreError::IndexChanged) => return Ok(()),
                other => other?,
            };
            tally.done += n;
            tally.reindexed += n;
            report(tally.done);
        }
    }

    /// Makes `next` the only key if nothing is missing under it: `false` when a pass left
    /// something (a server wrote under the old key alone before it knew of the new one).
    async fn try_finish(&self, current: u32, next: u32) -> Result<bool, VaultError> {
        match self.store.finish_index_rotation(current, next).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(why)) => {
                tracing::info!(%why, "another pass");
                Ok(false)
            }
            // Another run finished it.
            Err(StoreError::IndexChanged) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// Marks the rotation finished, with its audit entry; another run may have done so.
    async fn close_rotation(
        &self,
        p: &Principal,
        rotation: &RotationRow,
        done: u64,
    ) -> Result<(), VaultError> {
        let audit = entry(
            p,
            Action::IndexKeysRotate,
            format!("version={} reindexed={done}", rotation.target),
        );
        match self
            .store
            .finish_rotation(rotation.id, self.now_ms(), audit)
            .await
        {
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// When the last rotation made its key the only one but was stopped before it was
    /// marked finished or its old entries were all deleted: does what was left, and says so.
    async fn finish_dropping(
        &self,
        p: &Principal,
        started: Instant,
    ) -> Result<Option<ReindexReport>, VaultError> {
        let keys = self.keys.index.get();
        if keys.next().is_some() {
            return Ok(None);
        }
        let current = keys.current();
        let open = self.store.open_rotation(RotationKind::Index).await?;
        // Stopped after its key became the only one (or an older one never marked).
        let open = open.filter(|r| r.target <= current);
        let per_version = self.store.index_entries_per_version().await?;
        let stale = per_version.iter().any(|(v, n)| *v < current && *n > 0);
        if open.is_none() && !stale {
            return Ok(None);
        }
        if let Some(r) = &open {
            self.close_rotation(p, r, r.done).await?;
        }
        let done = match self.store.last_rotation(RotationKind::Index).await? {
            Some(r) => r.done,
            None => 0,
        };
        let (dropped, flushed) = self.drop_old_entries(current).await?;
        Ok(Some(ReindexReport {
            version: current,
            reindexed: 0,
            unindexable: 0,
            done,
            dropped,
            resumed: true,
            seconds: started.elapsed().as_secs_f64(),
            flushed,
        }))
    }

    /// The rotation's keys, current and next: the rotation under way, or a new next key.
    async fn begin_index_rotation(&self) -> Result<(u32, u32, bool), VaultError> {
        let keys = self.keys.index.get();
        if let Some((next, _)) = keys.next() {
            return Ok((keys.current(), next, true));
        }
        let (current, next) = (keys.current(), keys.current() + 1);
        let name = index_key_name(next);
        let key = DataKey::generate(1)?;
        let wrapped = self.keys.root.wrap(WrapContext::Named(&name), &key)?;
        let resumed = match self.store.insert_vault_key(&name, wrapped).await {
            Ok(()) => false,
            // Another run added it first: join it.
            Err(StoreError::Conflict(_)) => true,
            Err(e) => return Err(e.into()),
        };
        self.refresh_index().await?;
        let keys = self.keys.index.get();
        match keys.next() {
            Some((n, _)) if keys.current() == current && n == next => Ok((current, next, resumed)),
            _ => Err(VaultError::Conflict(format!(
                "the blind-index keys changed while key {next} was added: they are now {:?}; \
                 run it again",
                keys.versions()
            ))),
        }
    }

    /// The rotation's row: the unfinished one, or one started now counting what is to do.
    async fn index_rotation(&self, current: u32, next: u32) -> Result<RotationRow, VaultError> {
        if let Some(r) = self.store.open_rotation(RotationKind::Index).await? {
            if r.target == next {
                return Ok(r);
            }
            return Err(VaultError::Integrity(format!(
                "an unfinished blind-index rotation is to key {}, but the keys held are {current} \
                 and {next}",
                r.target
            )));
        }
        let total = self.store.count_unindexed(current, next).await?;
        match self
            .store
            .start_rotation(RotationKind::Index, next, self.now_ms(), total)
            .await
        {
            Ok(r) => Ok(r),
            Err(StoreError::Conflict(_)) => self
                .store
                .open_rotation(RotationKind::Index)
                .await?
                .ok_or_else(|| VaultError::Conflict("a rotation began and ended meanwhile".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// A record's entries under the next key, from its fields as stored. A field the
    /// inventory no longer marks searchable gets none (and loses its old one).
    fn reindexed(&self, rec: &RecordWithKey, next: u32) -> Result<(Reindexed, u64), VaultError> {
        let r = &rec.record;
        let coll = self
            .inventory
            .collections
            .get(&r.collection)
            .ok_or_else(|| {
                VaultError::Integrity(format!(
                    "record {} is of collection {:?}, which the inventory no longer declares: \
                 its index cannot be made again",
                    r.id, r.collection
                ))
            })?;
        let keys = self.keys.index.get();
        let key_of_next = match keys.next() {
            Some((v, k)) if v == next => k,
            _ => return Err(StoreError::IndexChanged.into()),
        };
        let subject = self
            .keys
            .root
            .unwrap(WrapContext::Subject(r.subject_id), &rec.wrapped_key)?;
        let (mut entries, mut unindexable) = (Vec::new(), 0);
        for (name, ct) in &r.fields {
            let Some(decl) = coll.fields.get(name).filter(|d| d.searchable) else {
                continue;
            };
            let value = open_field(&subject, r, name, ct).map_err(|_| {
                VaultError::Integrity(format!(
                    "record {}'s field {name} does not open with its subject's key",
                    r.id
                ))
            })?;
            match fields::normalise(name, decl, &value, self.context()) {
                Ok(n) => entries.push(IndexEntry {
                    field: name.clone(),
                    key_version: next,
                    digest: key_of_next
                        .digest(&r.collection, name, n.index_form.expose_secret())
                        .to_vec(),
                }),
                // Stored under rules since changed: no longer found by a search either.
                Err(e) => {
                    unindexable += 1;
                    tracing::warn!(
                        record = %r.id, field = %name, rule = e.rule,
                        "a stored value no longer passes its field's rules: not indexed again"
                    );
                }
            }
        }
        let work = Reindexed {
            id: r.id,
            version: r.version,
            entries,
        };
        Ok((work, unindexable))
    }

    /// Deletes every entry made under a key before `version`, in batches; how many, and
    /// whether the database's old copies were dropped.
    async fn drop_old_entries(&self, version: u32) -> Result<(u64, bool), VaultError> {
        let mut dropped = 0;
        loop {
            let n = self.store.drop_index_entries(version, DROP_BATCH).await?;
            if n == 0 {
                break;
            }
            dropped += n;
        }
        let flushed = self.store.flush_replaced().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "dropping old copies of the deleted entries failed");
            false
        });
        Ok((dropped, flushed))
    }
}
