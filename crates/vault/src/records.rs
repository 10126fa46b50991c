//! Records: create, read for a purpose, search through a blind index, change and delete.

use std::collections::BTreeMap;

use custos_core::access::{Decision, SubjectState, WithholdReason, decide};
use custos_core::audit::{Action, AuditEntry, Outcome, Withheld};
use custos_core::crypto::{DataKey, FieldBinding, WrapContext};
use custos_core::fields::{self, Context, Mode, Validated};
use custos_core::ids::{RecordId, RequestId, SubjectId};
use custos_core::inventory::{Collection, Purpose};
use custos_core::personal::{PersonalFields, PersonalValue};
use custos_core::principal::Act;
use custos_store::{
    IndexEntry, NewRecord, NewSubject, QueuedAudit, RecordChange, RecordRow, RecordWithKey,
    StoreError,
};
use serde::Serialize;

use crate::error::KEY_ATTEMPTS;
use crate::{InvalidKind, Principal, Vault, VaultError};

/// How often a change is retried when a concurrent change to the same record won.
const UPDATE_ATTEMPTS: usize = 5;

/// A record just created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Created {
    /// The record.
    pub id: RecordId,
    /// Its subject (created with it when none was given).
    pub subject_id: SubjectId,
}

/// A field withheld from a read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WithheldView {
    /// The field.
    pub field: String,
    /// Why: `purpose_not_declared`, `role_not_allowed`, ...
    pub reason: &'static str,
}

/// A record as one caller may see it for one purpose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordView {
    /// The record.
    pub id: RecordId,
    /// Its subject.
    pub subject_id: SubjectId,
    /// Its collection.
    pub collection: String,
    /// The purpose it was read for.
    pub purpose: String,
    /// The fields returned.
    pub fields: PersonalFields,
    /// The fields the record holds that were not returned, with reasons.
    pub withheld: Vec<WithheldView>,
}

fn audit_for(
    p: &Principal,
    action: Action,
    collection: &str,
    id: RecordId,
    subject: SubjectId,
) -> AuditEntry {
    let mut e = AuditEntry::new(p.actor(), action, Outcome::Ok);
    e.collection = Some(collection.to_owned());
    e.record_id = Some(id);
    e.subject_id = Some(subject);
    e
}

/// Decrypts one field of a record, as the field it was encrypted for, into a personal value.
pub(crate) fn open_field(
    key: &DataKey,
    record: &RecordRow,
    field: &str,
    ct: &[u8],
) -> Result<PersonalValue, VaultError> {
    let at = FieldBinding {
        record: record.id,
        collection: &record.collection,
        field,
    };
    let plain = key.decrypt_field(at, ct)?;
    serde_json::from_slice(plain.expose_secret())
        .map_err(|_| VaultError::Integrity("a decrypted field is not JSON".into()))
}

fn queued(e: &AuditEntry) -> QueuedAudit {
    QueuedAudit {
        subject_id: e.subject_id,
        entry: e.to_bytes(),
    }
}

impl Vault {
    pub(crate) fn collection(&self, name: &str) -> Result<&Collection, VaultError> {
        self.inventory.collection(name).ok_or_else(|| {
            let named = fields::echoable(name).map_or_else(String::new, |n| format!(" {n:?}"));
            VaultError::invalid_as(
                InvalidKind::UnknownCollection,
                "collection",
                "unknown_collection",
                format!("no collection{named} is declared in the inventory"),
            )
        })
    }

    pub(crate) fn context(&self) -> Context<'_> {
        Context {
            default_region: &self.inventory.organization.default_region,
        }
    }

    /// The purpose a read names, declared in the inventory, and the read authorized for it. A
    /// refusal is audited, so attempts are accounted for as well as reads.
    async fn authorize_read<'a>(
        &'a self,
        p: &Principal,
        purpose: Option<&str>,
        collection: Option<&str>,
        subject: Option<SubjectId>,
    ) -> Result<&'a Purpose, VaultError> {
        let id = purpose.filter(|s| !s.is_empty()).ok_or_else(|| {
            VaultError::bad_request(
                "purpose",
                "every read of personal data names a purpose: add ?purpose=...",
            )
        })?;
        let purpose = self.inventory.purpose(id).ok_or_else(|| {
            let named = fields::echoable(id).map_or_else(String::new, |n| format!(" {n:?}"));
            VaultError::invalid_as(
                InvalidKind::UnknownPurpose,
                "purpose",
                "unknown_purpose",
                format!("no purpose{named} is declared in the inventory"),
            )
        })?;
        if let Err(refused) = self.authorize(p, &Act::Read { purpose, subject }) {
            let mut e = AuditEntry::new(p.actor(), Action::RecordRead, Outcome::Denied);
            e.collection = collection.map(str::to_owned);
            return Err(self.refuse(e, purpose, refused).await);
        }
        Ok(purpose)
    }

    /// Audits a refused read of personal data, then returns the refusal: attempts are
    /// accounted for as well as reads.
    async fn refuse(
        &self,
        mut denied: AuditEntry,
        purpose: &Purpose,
        refusal: VaultError,
    ) -> VaultError {
        denied.purpose = Some(purpose.id.clone());
        match self.store.append_audit(vec![queued(&denied)]).await {
            Ok(()) => refusal,
            Err(e) => e.into(),
        }
    }

    /// Sets (encrypting under `key`, bound to the record) or removes each validated field of
    /// `record`, and returns the blind-index entries of the searchable fields set.
    pub(crate) fn encrypt(
        &self,
        key: &DataKey,
        coll: &Collection,
        record: &mut RecordRow,
        values: &Validated,
    ) -> Vec<IndexEntry> {
        let mut index = Vec::new();
        let keys = self.keys.index.get();
        for (name, v) in values {
            let Some(n) = v else {
                record.fields.remove(name);
                continue;
            };
            let plain = zeroize::Zeroizing::new(
                serde_json::to_vec(n.value.expose_secret()).expect("JSON values serialise"),
            );
            let at = FieldBinding {
                record: record.id,
                collection: &record.collection,
                field: name,
            };
            let ct = key.encrypt_field(at, &plain);
            record.fields.insert(name.clone(), ct);
            if coll.fields[name].searchable {
                index.extend(crate::blind_index::index_entries(
                    &keys,
                    &record.collection,
                    name,
                    n.index_form.expose_secret(),
                ));
            }
        }
        index
    }

    /// Creates a record: validates every field against the inventory, encrypts each with the
    /// subject's key, indexes the searchable ones, and commits all with the audit entry.
    ///
    /// # Errors
    /// `Forbidden` for a role that may not write; `Invalid` naming the field and the rule for
    /// an unknown collection or subject, an undeclared field or a bad value.
    pub async fn put_record(
        &self,
        p: &Principal,
        collection: &str,
        subject: Option<SubjectId>,
        body: &PersonalFields,
    ) -> Result<Created, VaultError> {
        self.authorize(p, &Act::WriteRecords)?;
        let coll = self.collection(collection)?;
        let values = fields::validate_record(coll, body, Mode::Create, self.context())?;
        let now = self.now_ms();
        let unknown = || {
            VaultError::invalid_as(
                InvalidKind::UnknownSubject,
                "subject_id",
                "unknown_subject",
                "no subject with this id exists",
            )
        };
        let id = RecordId::random();
        // Sealed again and retried when a rotation replaces the subject's key meanwhile, or
        // digested again when a blind-index rotation begins or ends.
        let mut last = StoreError::KeyChanged;
        for _ in 0..KEY_ATTEMPTS {
            let (subject_id, key, new_subject) = match subject {
                Some(s) => {
                    let wrapped = self.store.subject_key(s).await?.ok_or_else(unknown)?;
                    (
                        s,
                        self.keys.root.unwrap(WrapContext::Subject(s), &wrapped)?,
                        None,
                    )
                }
                None => {
                    let s = SubjectId::random();
                    let key = DataKey::generate(1)?;
                    let wrapped_key = self.keys.root.wrap(WrapContext::Subject(s), &key)?;
                    (
                        s,
                        key,
                        Some(NewSubject {
                            id: s,
                            wrapped_key,
                            created_ms: now,
                        }),
                    )
                }
            };
            let mut record = RecordRow {
                id,
                subject_id,
                collection: collection.to_owned(),
                fields: BTreeMap::new(),
                version: 1,
                created_ms: now,
                updated_ms: now,
            };
            let index = self.encrypt(&key, coll, &mut record, &values);
            let mut audit = audit_for(p, Action::RecordCreate, collection, id, subject_id);
            audit.fields = values.keys().cloned().collect();
            let digests = index.clone();
            let inserted = self
                .store
                .insert_record(NewRecord {
                    record,
                    new_subject,
                    index,
                    audit: queued(&audit),
                })
                .await;
            match inserted {
                Err(e @ StoreError::KeyChanged) => last = e,
                Err(e @ StoreError::IndexChanged) => {
                    self.refresh_index().await?;
                    last = e;
                }
                // Erased since its key was read.
                Err(StoreError::NotFound) => return Err(unknown()),
                Err(e) => return Err(e.into()),
                Ok(()) => {
                    self.check_canary_values(p, collection, id, &digests).await;
                    return Ok(Created { id, subject_id });
                }
            }
        }
        Err(last.into())
    }

    /// Decides field by field what `caller` may see of a record for `purpose`, decrypting only
    /// what is allowed. Returns the view and its audit entry.
    fn view(
        &self,
        p: &Principal,
        purpose: &Purpose,
        action: Action,
        rec: &RecordWithKey,
        subject: &SubjectState,
    ) -> Result<(RecordView, AuditEntry), VaultError> {
        let r = &rec.record;
        let coll = self.collection(&r.collection)?;
        let key = self
            .keys
            .root
            .unwrap(WrapContext::Subject(r.subject_id), &rec.wrapped_key)?;
        let mut fields = PersonalFields::new();
        let mut withheld = Vec::new();
        let mut audit = audit_for(p, action, &r.collection, r.id, r.subject_id);
        audit.purpose = Some(purpose.id.clone());
        for (name, ct) in &r.fields {
            let decision = match coll.fields.get(name) {
                Some(decl) => decide(purpose, decl, subject),
                // A field dropped from the inventory since it was written is never returned.
                None => Decision::Withhold(WithholdReason::PurposeNotDeclared),
            };
            match decision {
                Decision::Allow => {
                    fields.insert(name.clone(), open_field(&key, r, name, ct)?);
                    audit.fields.push(name.clone());
                }
                Decision::Withhold(reason) => {
                    withheld.push(WithheldView {
                        field: name.clone(),
                        reason: reason.as_str(),
                    });
                    audit.withheld.push(Withheld {
                        field: name.clone(),
                        reason,
                    });
                }
            }
        }
        let view = RecordView {
            id: r.id,
            subject_id: r.subject_id,
            collection: r.collection.clone(),
            purpose: purpose.id.clone(),
            fields,
            withheld,
        };
        Ok((view, audit))
    }

    async fn views(
        &self,
        p: &Principal,
        purpose: &Purpose,
        action: Action,
        recs: &[RecordWithKey],
    ) -> Result<Vec<RecordView>, VaultError> {
        let mut views = Vec::with_capacity(recs.len());
        let mut audits = Vec::with_capacity(recs.len());
        // Each subject's choices, read once however many of its records are returned.
        let mut states: Vec<(SubjectId, SubjectState)> = Vec::new();
        for rec in recs {
            let subject = rec.record.subject_id;
            let at = match states.iter().position(|(s, _)| *s == subject) {
                Some(i) => i,
                None => {
                    // A subject who never chose anything needs no second query.
                    let state = if rec.has_ledger {
                        self.subject_state(subject).await?
                    } else {
                        SubjectState::default()
                    };
                    states.push((subject, state));
                    states.len() - 1
                }
            };
            let (v, a) = self.view(p, purpose, action, rec, &states[at].1)?;
            views.push(v);
            audits.push(queued(&a));
        }
        if !audits.is_empty() {
            // The read is accounted for before anything is returned.
            self.store.append_audit(audits).await?;
        }
        Ok(views)
    }

    /// Reads a record for a purpose: the fields the caller may see, and the withheld ones
    /// with reasons. The read is audited before it is returned.
    ///
    /// # Errors
    /// `BadRequest` without a purpose; `Invalid` for an unknown collection or purpose;
    /// `Forbidden` when the role may not use the purpose; `NotFound`.
    pub async fn get_record(
        &self,
        p: &Principal,
        collection: &str,
        id: RecordId,
        purpose: Option<&str>,
    ) -> Result<RecordView, VaultError> {
        self.collection(collection)?;
        let purpose = self
            .authorize_read(p, purpose, Some(collection), None)
            .await?;
        let rec = self
            .store
            .record(collection, id)
            .await?
            .ok_or(VaultError::NotFound("record"))?;
        let mut v = self
            .views(p, purpose, Action::RecordRead, std::slice::from_ref(&rec))
            .await?;
        Ok(v.remove(0))
    }

    /// Finds records by exact match on a searchable field through its blind index, after
    /// normalising the value as it was normalised when stored.
    ///
    /// # Errors
    /// As [`Vault::get_record`]; `Invalid` when the field is not searchable or the value is
    /// not valid for its type; `Forbidden` when the field is not declared for the purpose.
    pub async fn search(
        &self,
        p: &Principal,
        collection: &str,
        purpose: Option<&str>,
        field: &str,
        value: &PersonalValue,
    ) -> Result<Vec<RecordView>, VaultError> {
        let coll = self.collection(collection)?;
        let purpose = self
            .authorize_read(p, purpose, Some(collection), None)
            .await?;
        let decl = coll
            .fields
            .get(field)
            .ok_or_else(|| fields::undeclared_field(field, "query"))?;
        if !decl.searchable {
            return Err(VaultError::invalid(
                field,
                "not_searchable",
                "is not declared searchable in the inventory",
            ));
        }
        if !decl.serves(&purpose.id) {
            let why = format!(
                "field {field:?} is not declared for purpose {:?}, so it cannot be searched for it",
                purpose.id
            );
            let mut e = AuditEntry::new(p.actor(), Action::RecordSearch, Outcome::Denied);
            e.collection = Some(collection.to_owned());
            e.fields = vec![field.to_owned()];
            return Err(self.refuse(e, purpose, VaultError::Forbidden(why)).await);
        }
        let n = fields::normalise(field, decl, value, self.context())?;
        let recs = self
            .find_by_value(collection, field, n.index_form.expose_secret())
            .await?;
        self.views(p, purpose, Action::RecordSearch, &recs).await
    }

    /// Every record of one subject, as the caller may see it for a purpose.
    ///
    /// # Errors
    /// As [`Vault::get_record`]; `NotFound` for an unknown subject.
    pub async fn subject_records(
        &self,
        p: &Principal,
        subject: SubjectId,
        purpose: Option<&str>,
    ) -> Result<Vec<RecordView>, VaultError> {
        let purpose = self.authorize_read(p, purpose, None, Some(subject)).await?;
        let recs = self.store.subject_records(subject).await?;
        if recs.is_empty() && self.store.subject_key(subject).await?.is_none() {
            return Err(VaultError::NotFound("subject"));
        }
        self.views(p, purpose, Action::RecordRead, &recs).await
    }

    /// Changes some fields of a record; `null` removes an optional field. Retried when a
    /// concurrent change to the same record commits first, so neither change is lost.
    ///
    /// # Errors
    /// As [`Vault::put_record`]; `NotFound`; `BadRequest` for an empty change.
    pub async fn update_record(
        &self,
        p: &Principal,
        collection: &str,
        id: RecordId,
        body: &PersonalFields,
    ) -> Result<(), VaultError> {
        self.authorize(p, &Act::WriteRecords)?;
        let coll = self.collection(collection)?;
        if body.is_empty() {
            return Err(VaultError::bad_request(
                "fields",
                "name at least one field to change",
            ));
        }
        let values = fields::validate_record(coll, body, Mode::Patch, self.context())?;
        self.change_fields(p, collection, id, &values, Action::RecordUpdate, None)
            .await
    }

    /// Writes validated values into a record, audited as `action` (naming the request it
    /// carries out, if any). Retried when a concurrent change to the same record commits
    /// first, so neither change is lost. The caller has authorized the change.
    pub(crate) async fn change_fields(
        &self,
        p: &Principal,
        collection: &str,
        id: RecordId,
        values: &Validated,
        action: Action,
        request: Option<RequestId>,
    ) -> Result<(), VaultError> {
        let coll = self.collection(collection)?;
        for _ in 0..UPDATE_ATTEMPTS {
            let rec = self
                .store
                .record(collection, id)
                .await?
                .ok_or(VaultError::NotFound("record"))?;
            if self.store.erasure(rec.record.subject_id).await?.is_some() {
                // What an erasure kept, the law keeps as it was: nothing is added back.
                return Err(VaultError::Conflict(
                    "the record's subject was erased; what was kept for the law is not changed"
                        .into(),
                ));
            }
            let key = self.keys.root.unwrap(
                WrapContext::Subject(rec.record.subject_id),
                &rec.wrapped_key,
            )?;
            let mut record = rec.record;
            let index = self.encrypt(&key, coll, &mut record, values);
            record.updated_ms = self.now_ms();
            let reindexed_fields = values
                .keys()
                .filter(|n| coll.fields[*n].searchable)
                .cloned()
                .collect();
            let mut audit = audit_for(p, action, collection, id, record.subject_id);
            audit.fields = values.keys().cloned().collect();
            audit.request_id = request;
            let change = RecordChange {
                record,
                reindexed_fields,
                index,
                audit: queued(&audit),
            };
            match self.store.update_record(change).await {
                // Changed by another, or its subject's key replaced by a rotation: read again.
                Err(StoreError::Conflict(_) | StoreError::KeyChanged) => continue,
                // A blind-index rotation began or ended: digest under the keys held now.
                Err(StoreError::IndexChanged) => self.refresh_index().await?,
                other => return Ok(other?),
            }
        }
        Err(VaultError::Conflict(
            "the record is being changed by others; try again".into(),
        ))
    }

    /// Deletes a record and its blind-index entries.
    ///
    /// # Errors
    /// `Forbidden` for a role that may not write; `NotFound`.
    pub async fn delete_record(
        &self,
        p: &Principal,
        collection: &str,
        id: RecordId,
    ) -> Result<(), VaultError> {
        self.authorize(p, &Act::WriteRecords)?;
        self.collection(collection)?;
        let rec = self
            .store
            .record(collection, id)
            .await?
            .ok_or(VaultError::NotFound("record"))?;
        if let Some(h) = self.hold(id).await? {
            return Err(VaultError::Conflict(format!(
                "the record is under a legal hold ({}); release it first",
                h.reason
            )));
        }
        let audit = audit_for(
            p,
            Action::RecordDelete,
            collection,
            id,
            rec.record.subject_id,
        );
        self.store
            .delete_record(collection, id, queued(&audit))
            .await
            .map_err(|e| match e {
                StoreError::NotFound => VaultError::NotFound("record"),
                e => e.into(),
            })
    }

    /// The number of records in a collection, canaries left out: they are no one's data.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn count_records(&self, collection: &str) -> Result<u64, VaultError> {
        let all = self.store.count_records(collection).await?;
        let canaries = self
            .store
            .canaries()
            .await?
            .iter()
            .filter(|c| c.collection == collection)
            .count() as u64;
        Ok(all.saturating_sub(canaries))
    }
}
