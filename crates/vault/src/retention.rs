//! Retention that executes: the sweep that deletes what the inventory says must go (and the
//! records of data-subject requests closed 24 months ago), legal holds that stop it for one
//! record, and the report of what is due.

use std::collections::{BTreeMap, HashMap};

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::consent::SubjectState;
use custos_core::crypto::{DataKey, WrapContext};
use custos_core::ids::{RecordId, SubjectId};
use custos_core::inventory::OnExpiry;
use custos_core::retention::{Facts, collection_purposes, due};
use custos_core::time::format_time_ms;
use custos_store::{
    CopyRow, HoldRow, NewRecord, NewSubject, QueuedAudit, RecordChange, RecordRow, StoreError,
    Table,
};
use serde::Serialize;

use custos_core::principal::{Act, Job};

use crate::{Principal, Vault, VaultError};

/// Records read per page while sweeping.
const PAGE: usize = 500;
/// How far ahead the report looks for records coming due.
const SOON_MS: i64 = 30 * 86_400_000;
/// The longest reason a legal hold may give.
const MAX_REASON: usize = 500;

/// A legal hold, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldView {
    /// The record held.
    pub record_id: RecordId,
    /// Its collection.
    pub collection: String,
    /// Why.
    pub reason: String,
    /// Who placed it.
    pub placed_by: String,
    /// When, RFC 3339.
    pub placed_at: String,
    /// When retention would have removed something from it, if it is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
}

fn hold_view(h: &HoldRow, due_ms: Option<i64>) -> HoldView {
    HoldView {
        record_id: h.record_id,
        collection: h.collection.clone(),
        reason: h.reason.clone(),
        placed_by: h.placed_by.clone(),
        placed_at: format_time_ms(h.placed_ms),
        due: due_ms.map(format_time_ms),
    }
}

/// One collection's retention, as of one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CollectionRetention {
    /// Records looked at.
    pub records: u64,
    /// Records with something due now, held ones included: what a run removes.
    pub overdue: u64,
    /// Records with nothing due now and something due within the next 30 days.
    pub due_soon: u64,
    /// Records deleted whole (in a dry run: that would be).
    pub deleted: u64,
    /// Records anonymised (`on_expiry = "anonymise"`; in a dry run: that would be).
    pub anonymised: u64,
    /// Field values erased from records that stay (in a dry run: that would be).
    pub fields_erased: u64,
    /// Why things are due: the rule, and how many records or fields it made due.
    pub why: BTreeMap<String, u64>,
    /// Held records, with their holds and when they came due (if they did).
    pub held: Vec<HoldView>,
}

/// What a sweep found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// The instant retention was computed at, RFC 3339.
    pub as_of: String,
    /// Whether anything was deleted.
    pub dry_run: bool,
    /// Per collection.
    pub collections: BTreeMap<String, CollectionRetention>,
    /// Removals that lost a race with a concurrent change, left for the next run.
    pub retried_later: u64,
    /// Records of data-subject requests closed longer ago than they are kept (24 months),
    /// deleted (in a dry run: that would be).
    pub requests_deleted: u64,
    /// Sign-in challenges and sessions older than they are kept (a day, for the throttle),
    /// deleted; none in a dry run.
    pub signins_deleted: u64,
}

/// What is due in one record.
enum Removal {
    Record(String),
    Anonymise(String),
    Fields(Vec<(String, String)>),
}

impl Vault {
    /// Applies retention at the vault's clock: every record, and every field of it, whose rule
    /// makes it due is deleted (with its blind-index entries), each deletion its own audit
    /// entry, unless a legal hold stands on the record. With `dry_run`, only counts.
    ///
    /// # Errors
    /// `Forbidden` without `run_retention`; store failures.
    pub async fn retention(
        &self,
        p: &Principal,
        dry_run: bool,
    ) -> Result<RetentionReport, VaultError> {
        self.authorize(p, &Act::RunRetention)?;
        let now = self.now_ms();
        let holds: HashMap<RecordId, HoldRow> = self
            .store
            .holds()
            .await?
            .into_iter()
            .map(|h| (h.record_id, h))
            .collect();
        // Canaries are no one's data: retention neither counts nor removes them.
        let canaries: std::collections::HashSet<RecordId> = self
            .store
            .canaries()
            .await?
            .into_iter()
            .map(|c| c.record_id)
            .collect();
        let mut report = RetentionReport {
            as_of: format_time_ms(now),
            dry_run,
            collections: self
                .inventory
                .collections
                .keys()
                .map(|c| (c.clone(), CollectionRetention::default()))
                .collect(),
            retried_later: 0,
            requests_deleted: 0,
            signins_deleted: 0,
        };
        let mut subjects: HashMap<SubjectId, (SubjectState, i64)> = HashMap::new();
        let mut after = None;
        loop {
            let page = self.store.export(Table::Records, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.cursor());
            for row in page {
                let CopyRow::Record { record, .. } = row else {
                    continue;
                };
                if canaries.contains(&record.id) {
                    continue;
                }
                let Some(coll) = self.inventory.collection(&record.collection) else {
                    continue;
                };
                let subject = record.subject_id;
                if let std::collections::hash_map::Entry::Vacant(v) = subjects.entry(subject) {
                    v.insert(self.subject_facts(subject, now).await?);
                }
                let (state, last_activity) = &subjects[&subject];
                let facts = Facts {
                    created_ms: record.created_ms,
                    updated_ms: record.updated_ms,
                    last_activity_ms: (*last_activity).max(record.updated_ms),
                };
                let inv = &self.inventory;
                let record_due = due(
                    &coll.retention,
                    &facts,
                    &collection_purposes(coll),
                    inv,
                    state,
                    now,
                );
                let mut soonest = record_due;
                let anonymises = coll.on_expiry == OnExpiry::Anonymise;
                if anonymises
                    && record
                        .fields
                        .keys()
                        .all(|f| coll.fields.get(f).is_some_and(|d| d.keep_when_anonymised))
                {
                    // Only values that identify no one: an anonymised record, or one as good
                    // as anonymous. Retention has nothing left to take from it.
                    report
                        .collections
                        .get_mut(&record.collection)
                        .expect("every declared collection is in the report")
                        .records += 1;
                    continue;
                }
                let whole = |why: String| {
                    if anonymises {
                        Removal::Anonymise(why)
                    } else {
                        Removal::Record(why)
                    }
                };
                let removal = if record_due.is_some_and(|d| d <= now) {
                    Some(whole(format!("record: {}", coll.retention)))
                } else {
                    let mut fields = Vec::new();
                    for name in record.fields.keys() {
                        let Some(decl) = coll.fields.get(name) else {
                            // Stored before the inventory dropped it: nothing keeps it now.
                            fields.push((name.clone(), format!("{name}: no longer declared")));
                            continue;
                        };
                        let rule = decl.retention.unwrap_or(coll.retention);
                        let purposes: Vec<&str> =
                            decl.purposes.iter().map(String::as_str).collect();
                        let d = due(&rule, &facts, &purposes, inv, state, now);
                        if d.is_some_and(|d| d <= now) {
                            fields.push((name.clone(), format!("{name}: {rule}")));
                        } else if let Some(d) = d {
                            soonest = Some(soonest.map_or(d, |s| s.min(d)));
                        }
                    }
                    if fields.is_empty() {
                        None
                    } else if fields.len() == record.fields.len() {
                        // Nothing would be left of it: the record goes.
                        let why: Vec<String> = fields.into_iter().map(|(_, w)| w).collect();
                        Some(whole(why.join("; ")))
                    } else {
                        Some(Removal::Fields(fields))
                    }
                };
                let c = report
                    .collections
                    .get_mut(&record.collection)
                    .expect("every declared collection is in the report");
                c.records += 1;
                let Some(removal) = removal else {
                    if soonest.is_some_and(|d| d <= now + SOON_MS) {
                        c.due_soon += 1;
                    }
                    if let Some(h) = holds.get(&record.id) {
                        c.held.push(hold_view(h, None));
                    }
                    continue;
                };
                c.overdue += 1;
                match &removal {
                    Removal::Record(why) | Removal::Anonymise(why) => {
                        *c.why.entry(why.clone()).or_default() += 1;
                    }
                    Removal::Fields(fields) => {
                        for (_, why) in fields {
                            *c.why.entry(why.clone()).or_default() += 1;
                        }
                    }
                }
                if let Some(h) = holds.get(&record.id) {
                    c.held.push(hold_view(h, Some(now)));
                    continue;
                }
                if dry_run {
                    match &removal {
                        Removal::Record(_) => c.deleted += 1,
                        Removal::Anonymise(_) => c.anonymised += 1,
                        Removal::Fields(f) => c.fields_erased += f.len() as u64,
                    }
                    continue;
                }
                match self.remove(p, &record, removal, now).await? {
                    Some(Removed::Record) => c.deleted += 1,
                    Some(Removed::Anonymised) => c.anonymised += 1,
                    Some(Removed::Fields(n)) => c.fields_erased += n,
                    None => report.retried_later += 1,
                }
            }
        }
        report.requests_deleted = self.expire_requests(p, now, dry_run).await?;
        if !dry_run {
            report.signins_deleted = self
                .store
                .purge_signins(now - custos_core::signin::SIGNIN_KEPT_MS)
                .await?
                + self
                    .store
                    .purge_operator_sessions(now - custos_core::signin::SIGNIN_KEPT_MS)
                    .await?;
        }
        Ok(report)
    }

    /// Sweeps every `interval`, starting now, for as long as the server runs. Several servers
    /// may sweep at once: a record deleted or changed by one is skipped by the others.
    pub async fn run_retention(self: std::sync::Arc<Self>, interval: std::time::Duration) {
        let sweeper = Principal::System(Job::Retention);
        loop {
            match self.retention(&sweeper, false).await {
                Ok(r) => {
                    let (deleted, erased, held) =
                        r.collections.values().fold((0, 0, 0), |(d, e, h), c| {
                            (d + c.deleted, e + c.fields_erased, h + c.held.len())
                        });
                    tracing::info!(
                        records_deleted = deleted,
                        fields_erased = erased,
                        held,
                        requests_deleted = r.requests_deleted,
                        "retention sweep"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention sweep failed; retrying at the next interval")
                }
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// A subject's ledger state and last activity (its latest record change or ledger event).
    async fn subject_facts(
        &self,
        subject: SubjectId,
        now: i64,
    ) -> Result<(SubjectState, i64), VaultError> {
        let events = self.ledger(subject).await?;
        let last_event = events.iter().map(|e| e.at_ms).filter(|t| *t <= now).max();
        let last_change = self
            .store
            .subject_records(subject)
            .await?
            .iter()
            .map(|r| r.record.updated_ms)
            .max();
        let state = SubjectState::at(&events, now, |id| {
            self.inventory
                .purpose(id)
                .and_then(|p| p.consent_lapses_after)
        });
        Ok((state, last_event.max(last_change).unwrap_or(i64::MIN)))
    }

    /// Deletes a record, or erases some of its fields, with the audit entry that says why.
    /// `None` when a concurrent change won (the next run sees the new state).
    async fn remove(
        &self,
        p: &Principal,
        record: &RecordRow,
        removal: Removal,
        now: i64,
    ) -> Result<Option<Removed>, VaultError> {
        let erase = match removal {
            Removal::Fields(f) => f,
            Removal::Anonymise(why) => return self.anonymise(p, record, &why, now).await,
            Removal::Record(why) => {
                let mut e = AuditEntry::new(p.actor(), Action::RetentionDelete, Outcome::Ok);
                e.collection = Some(record.collection.clone());
                e.record_id = Some(record.id);
                e.subject_id = Some(record.subject_id);
                e.detail = Some(format!("{why}; as of {}", format_time_ms(now)));
                let audit = QueuedAudit {
                    subject_id: e.subject_id,
                    entry: e.to_bytes(),
                };
                return match self
                    .store
                    .delete_record(&record.collection, record.id, audit)
                    .await
                {
                    Ok(()) => Ok(Some(Removed::Record)),
                    Err(StoreError::NotFound) => Ok(None),
                    Err(e) => Err(e.into()),
                };
            }
        };
        let mut kept = record.clone();
        let names: Vec<String> = erase.iter().map(|(n, _)| n.clone()).collect();
        for n in &names {
            kept.fields.remove(n);
        }
        let mut e = AuditEntry::new(p.actor(), Action::RetentionErase, Outcome::Ok);
        e.collection = Some(record.collection.clone());
        e.record_id = Some(record.id);
        e.subject_id = Some(record.subject_id);
        e.fields = names.clone();
        e.detail = Some(format!(
            "{}; as of {}",
            erase
                .iter()
                .map(|(_, w)| w.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            format_time_ms(now)
        ));
        let change = RecordChange {
            record: kept,
            reindexed_fields: names.clone(),
            index: Vec::new(),
            audit: QueuedAudit {
                subject_id: e.subject_id,
                entry: e.to_bytes(),
            },
        };
        match self.store.update_record(change).await {
            Ok(()) => Ok(Some(Removed::Fields(names.len() as u64))),
            // Changed, gone, or its subject's key replaced by a rotation since the page was
            // read: the next sweep finds it again.
            Err(StoreError::Conflict(_) | StoreError::NotFound | StoreError::KeyChanged) => {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a record by a record of no one holding only its fields marked
    /// `keep_when_anonymised`: a new subject with a new key, random (UUIDv4) ids that carry no
    /// time, timestamps cut to the day. The original and its index entries go in the same
    /// transaction; the audit entry names the original only, so nothing links the two.
    async fn anonymise(
        &self,
        p: &Principal,
        record: &RecordRow,
        why: &str,
        now: i64,
    ) -> Result<Option<Removed>, VaultError> {
        let coll = self
            .inventory
            .collection(&record.collection)
            .ok_or_else(|| VaultError::Internal("the collection vanished".into()))?;
        // The key through the record: a subject erased but for what the law keeps is no
        // longer found as a subject, yet its kept records still expire.
        let Some(current) = self.store.record(&record.collection, record.id).await? else {
            return Ok(None);
        };
        // Changed since the page was read (or sealed again by a rotation of its subject's
        // key): the next sweep finds it as it is.
        if current.record.version != record.version || current.record.fields != record.fields {
            return Ok(None);
        }
        let wrapped = current.wrapped_key;
        let old_key = self
            .keys
            .root
            .unwrap(WrapContext::Subject(record.subject_id), &wrapped)?;
        let mut kept = custos_core::fields::Validated::new();
        for (name, ct) in &record.fields {
            let Some(decl) = coll.fields.get(name).filter(|d| d.keep_when_anonymised) else {
                continue;
            };
            let value = crate::records::open_field(&old_key, record, name, ct)?;
            let n = custos_core::fields::normalise(name, decl, &value, self.context())?;
            kept.insert(name.clone(), Some(n));
        }
        let mut e = AuditEntry::new(p.actor(), Action::RetentionAnonymise, Outcome::Ok);
        e.collection = Some(record.collection.clone());
        e.record_id = Some(record.id);
        e.subject_id = Some(record.subject_id);
        e.fields = kept.keys().cloned().collect();
        e.detail = Some(format!("{why}; as of {}", format_time_ms(now)));
        let audit = QueuedAudit {
            subject_id: e.subject_id,
            entry: e.to_bytes(),
        };
        if kept.is_empty() {
            // Nothing to keep: anonymising is deleting.
            return match self
                .store
                .delete_record(&record.collection, record.id, audit)
                .await
            {
                Ok(()) => Ok(Some(Removed::Anonymised)),
                Err(StoreError::NotFound) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        let day = now - now.rem_euclid(86_400_000);
        let nobody = SubjectId::untimed();
        let key = DataKey::generate(1)?;
        let mut copy = RecordRow {
            id: RecordId::untimed(),
            subject_id: nobody,
            collection: record.collection.clone(),
            fields: Default::default(),
            version: 1,
            created_ms: day,
            updated_ms: day,
        };
        let index = self.encrypt(&key, coll, &mut copy, &kept);
        let new = NewRecord {
            record: copy,
            new_subject: Some(NewSubject {
                id: nobody,
                wrapped_key: self.keys.root.wrap(WrapContext::Subject(nobody), &key)?,
                created_ms: day,
            }),
            index,
            audit,
        };
        match self
            .store
            .anonymise_record(&record.collection, record.id, new)
            .await
        {
            Ok(()) => Ok(Some(Removed::Anonymised)),
            Err(StoreError::NotFound) => Ok(None),
            // A blind-index rotation began or ended: the next sweep digests it again.
            Err(StoreError::IndexChanged) => {
                self.refresh_index().await?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Places a legal hold on a record: retention leaves it, and it cannot be deleted, until
    /// the hold is released. Audited, with its reason.
    ///
    /// # Errors
    /// `Forbidden` without `manage_holds`; `Invalid` for a missing or overlong reason;
    /// `NotFound`; `Conflict` when a hold already stands.
    pub async fn place_hold(
        &self,
        p: &Principal,
        collection: &str,
        id: RecordId,
        reason: &str,
    ) -> Result<HoldView, VaultError> {
        self.authorize(p, &Act::ManageHolds)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(VaultError::invalid(
                "reason",
                "required",
                "say why the record is held (a case, a claim, an authority's request)",
            ));
        }
        if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
            return Err(VaultError::invalid(
                "reason",
                "text",
                format!("is longer than {MAX_REASON} characters or holds control characters"),
            ));
        }
        let rec = self
            .store
            .record(collection, id)
            .await?
            .ok_or(VaultError::NotFound("record"))?;
        let hold = HoldRow {
            record_id: id,
            collection: collection.to_owned(),
            subject_id: rec.record.subject_id,
            reason: reason.to_owned(),
            placed_by: p.actor(),
            placed_ms: self.now_ms(),
        };
        let mut e = AuditEntry::new(p.actor(), Action::LegalHoldPlace, Outcome::Ok);
        e.collection = Some(collection.to_owned());
        e.record_id = Some(id);
        e.subject_id = Some(hold.subject_id);
        e.detail = Some(hold.reason.clone());
        let audit = QueuedAudit {
            subject_id: e.subject_id,
            entry: e.to_bytes(),
        };
        self.store
            .place_hold(hold.clone(), audit)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => VaultError::NotFound("record"),
                e => e.into(),
            })?;
        Ok(hold_view(&hold, None))
    }

    /// Releases a record's legal hold. Audited.
    ///
    /// # Errors
    /// `Forbidden` without `manage_holds`; `NotFound` when the record holds none.
    pub async fn release_hold(
        &self,
        p: &Principal,
        collection: &str,
        id: RecordId,
    ) -> Result<(), VaultError> {
        self.authorize(p, &Act::ManageHolds)?;
        let hold = self
            .hold(id)
            .await?
            .filter(|h| h.collection == collection)
            .ok_or(VaultError::NotFound("legal hold"))?;
        let mut e = AuditEntry::new(p.actor(), Action::LegalHoldRelease, Outcome::Ok);
        e.collection = Some(collection.to_owned());
        e.record_id = Some(id);
        e.subject_id = Some(hold.subject_id);
        let audit = QueuedAudit {
            subject_id: e.subject_id,
            entry: e.to_bytes(),
        };
        self.store
            .release_hold(id, audit)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => VaultError::NotFound("legal hold"),
                e => e.into(),
            })
    }

    /// The hold on a record, if one stands.
    pub(crate) async fn hold(&self, id: RecordId) -> Result<Option<HoldRow>, VaultError> {
        Ok(self
            .store
            .holds()
            .await?
            .into_iter()
            .find(|h| h.record_id == id))
    }
}

enum Removed {
    Record,
    Anonymised,
    Fields(u64),
}
