//! The subject export: everything the vault holds about one subject, decrypted, with why each
//! value is held, how long, who receives it and where it came from; the subject's consent
//! history; and who read their data, from the audit log (GDPR Art. 15 access and Art. 20
//! portability, CCPA's right to know).
//!
//! `trail` turns the subject's audit entries into reads, other acts and the origin of each
//! value; `package` renders an export as JSON or as a zip of CSV files with a README.

mod package;
mod trail;

use std::collections::BTreeMap;

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::consent::{ConsentEvent, SubjectState};
use custos_core::crypto::WrapContext;
use custos_core::ids::{RecordId, SubjectId};
use custos_core::inventory::{Collection, LegalBasis};
use custos_core::notice::{NoticeController, NoticePurpose, NoticeRight};
use custos_core::personal::PersonalValue;
use custos_core::principal::Act;
use custos_core::retention::{Facts, collection_purposes, due};
use custos_core::time::format_time_ms;
use custos_store::{QueuedAudit, RecordWithKey};
use serde::Serialize;

pub use package::{ExportBytes, ExportFormat};
pub use trail::{Activity, Actor, ActorKind, Happened, Read, Source};

use crate::{Principal, Vault, VaultError};

/// What an export says it is, so a program reading one knows its shape.
pub const EXPORT_FORMAT: &str = "custos.subject-export.v1";

/// Everything held about one subject, as the subject is entitled to see it.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectExport {
    /// [`EXPORT_FORMAT`].
    pub format: &'static str,
    /// The subject (a pseudonymous id).
    pub subject_id: SubjectId,
    /// When the export was made, RFC 3339 UTC.
    pub generated_at: String,
    /// Who holds the data and answers for it.
    pub controller: NoticeController,
    /// The version of the privacy notice in force when the export was made.
    pub notice_version: String,
    /// Every declared collection, in inventory order, with the subject's records in it (a
    /// collection no longer declared that still holds some comes after).
    pub collections: Vec<CollectionExport>,
    /// Every choice recorded in the subject's consent ledger, oldest first.
    pub consent_history: Vec<ConsentEvent>,
    /// Every read and search of the subject's records, oldest first: who, when, for which
    /// purpose, which fields were returned and which withheld.
    pub reads: Vec<Read>,
    /// Every other act on the subject's data the log holds, oldest first: records created,
    /// changed and deleted, choices recorded, the ledger or the trail read, earlier exports,
    /// retention and legal holds. This export is logged after it is made, so it is not here.
    pub activity: Vec<Activity>,
    /// The subject's rights and how to use them, as the privacy notice states them.
    pub your_rights: Vec<NoticeRight>,
}

/// One collection and the subject's records in it.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionExport {
    /// The collection.
    pub collection: String,
    /// The declared fields, in the order the CSV file lists them.
    pub fields: Vec<String>,
    /// The subject's records, oldest first.
    pub records: Vec<RecordExport>,
}

/// One record, every field decrypted.
#[derive(Debug, Clone, Serialize)]
pub struct RecordExport {
    /// The record.
    pub record_id: RecordId,
    /// When it was created, RFC 3339 UTC.
    pub created: String,
    /// When it was last changed.
    pub updated: String,
    /// Whether a legal hold keeps it past its retention until the hold is released.
    pub legal_hold: bool,
    /// Its fields by name.
    pub fields: BTreeMap<String, FieldExport>,
}

/// One value, and everything the subject is owed about it.
#[derive(Debug, Clone, Serialize)]
pub struct FieldExport {
    /// The value.
    pub value: PersonalValue,
    /// The category of personal data (contact, identity, ...); none for a field the
    /// inventory no longer declares.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Why it is held: every purpose it is declared for.
    pub purposes: Vec<PurposeExport>,
    /// How long it is kept.
    pub retention: RetentionExport,
    /// Who receives it, for which purpose, and where they process it.
    pub recipients: Vec<RecipientExport>,
    /// Where it came from.
    pub source: Source,
}

/// A purpose a value is held for.
#[derive(Debug, Clone, Serialize)]
pub struct PurposeExport {
    /// The purpose's identifier.
    pub id: String,
    /// What it means, as the privacy notice says it.
    pub description: String,
    /// Its legal basis (GDPR Art. 6).
    pub legal_basis: LegalBasis,
    /// The basis in plain words, as the privacy notice says it.
    pub legal_basis_explained: String,
}

/// How long a value is kept.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionExport {
    /// The rule, as the privacy notice states it (`3y after last_activity`).
    pub rule: String,
    /// When the value is due to go under the rules as they stand now, RFC 3339 UTC: deleted,
    /// or, in a collection that anonymises, kept only in a record of no one. Absent while
    /// nothing makes it due (consent that holds with no end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_until: Option<String>,
}

/// A processor that receives a value.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientExport {
    /// Its legal name.
    pub name: String,
    /// Where it processes the data (ISO 3166-1 alpha-2).
    pub country: String,
    /// The purpose it receives the value for.
    pub purpose: String,
}

/// What every record of the subject is decided against: their ledger and last activity.
struct Standing {
    state: SubjectState,
    last_activity_ms: i64,
    now_ms: i64,
}

/// What retention of one record's fields is counted from.
struct RecordContext<'a> {
    collection: &'a str,
    coll: Option<&'a Collection>,
    facts: Facts,
    record_due: Option<i64>,
    standing: &'a Standing,
}

impl Vault {
    /// Everything held about `subject`, decrypted, with why each value is held, how long it
    /// is kept, who receives it and where it came from; the consent history; and who read
    /// the subject's data (every `record.read` and `record.search` of the log) and what else
    /// was done with it.
    ///
    /// Every field is decrypted whatever the purposes it is declared for, and whatever the
    /// subject's consent: this is the subject's own right of access (GDPR Art. 15, 20; CCPA
    /// § 1798.110), not processing for a purpose, so `core::access::decide` is not asked. That
    /// is why only the administrator, the command line and the subject may export.
    ///
    /// The export is audited (`subject.export`, naming every field exported) before it is
    /// returned; reading the subject's trail for it is part of the export and is not audited
    /// again as `audit.read`. A refused export is audited as denied.
    ///
    /// # Errors
    /// `Forbidden` without `handle_requests` (but for the CLI or the subject); `NotFound` for an
    /// unknown (or erased) subject; `Integrity` when a ciphertext or an audit entry fails its
    /// check.
    pub async fn export_subject(
        &self,
        p: &Principal,
        subject: SubjectId,
    ) -> Result<SubjectExport, VaultError> {
        self.export_as(p, subject, Action::SubjectExport).await
    }

    /// [`Vault::export_subject`], audited as `action`: `subject.export` for an export,
    /// `subject.view` for the portal's page of what is held.
    pub(crate) async fn export_as(
        &self,
        p: &Principal,
        subject: SubjectId,
        action: Action,
    ) -> Result<SubjectExport, VaultError> {
        if let Err(refused) = self.authorize(p, &Act::ExportSubject { subject }) {
            let mut e = AuditEntry::new(p.actor(), action, Outcome::Denied);
            e.subject_id = Some(subject);
            self.store.append_audit(vec![queued(&e)]).await?;
            return Err(refused);
        }
        let records = self.store.subject_records(subject).await?;
        // The key read with the records, when there are any: a rotation of the subject's key
        // between two reads never pairs the records with another key. Erased but for what the
        // law keeps: what is kept is still theirs to see.
        let wrapped = match (records.first(), self.store.subject_key(subject).await?) {
            (Some(r), _) => r.wrapped_key.clone(),
            (None, Some(w)) => w,
            (None, None) => return Err(VaultError::NotFound("subject")),
        };
        // Reads answered a moment ago may still be queued: integrate them, so the export
        // names every read made before it.
        while self.sequence_audit().await? >= crate::audit::BATCH {}
        let now = self.now_ms();
        let history = self.ledger(subject).await?;
        let leaves = self.store.subject_leaves(subject).await?;
        let trail = trail::Trail::read(self, subject, &leaves).await?;
        let standing = Standing {
            state: self.state_of(&history, now),
            last_activity_ms: records
                .iter()
                .map(|r| r.record.updated_ms)
                .chain(history.iter().map(|e| e.at_ms).filter(|t| *t <= now))
                .max()
                .unwrap_or(i64::MIN),
            now_ms: now,
        };
        let key = self
            .keys
            .root
            .unwrap(WrapContext::Subject(subject), &wrapped)?;
        let collections = self
            .collections_of(&records, &key, &standing, &trail)
            .await?;
        let mut exported: Vec<String> = collections
            .iter()
            .flat_map(|c| {
                c.records
                    .iter()
                    .flat_map(|r| r.fields.keys().map(|f| format!("{}.{f}", c.collection)))
            })
            .collect();
        exported.sort();
        exported.dedup();
        let mut e = AuditEntry::new(p.actor(), action, Outcome::Ok);
        e.subject_id = Some(subject);
        e.fields = exported;
        e.detail = Some(format!("{} records", records.len()));
        // The export is accounted for before anything is returned.
        self.store.append_audit(vec![queued(&e)]).await?;
        let (reads, activity) = trail.into_entries();
        Ok(SubjectExport {
            format: EXPORT_FORMAT,
            subject_id: subject,
            generated_at: format_time_ms(now),
            controller: self.notice.controller.clone(),
            notice_version: self.notice.version.clone(),
            collections,
            consent_history: history,
            reads,
            activity,
            your_rights: self.notice.rights.clone(),
        })
    }

    /// The subject's records grouped by collection: every declared collection in inventory
    /// order, then any no longer declared that still holds some of them.
    async fn collections_of(
        &self,
        records: &[RecordWithKey],
        key: &custos_core::crypto::DataKey,
        standing: &Standing,
        trail: &trail::Trail,
    ) -> Result<Vec<CollectionExport>, VaultError> {
        let mut collections: Vec<CollectionExport> = self
            .inventory
            .collections
            .iter()
            .map(|(name, c)| CollectionExport {
                collection: name.clone(),
                fields: c.fields.keys().cloned().collect(),
                records: Vec::new(),
            })
            .collect();
        for rec in records {
            let r = self.export_record(rec, key, standing, trail).await?;
            let name = &rec.record.collection;
            let at = match collections.iter().position(|c| c.collection == *name) {
                Some(i) => i,
                None => {
                    collections.push(CollectionExport {
                        collection: name.clone(),
                        fields: Vec::new(),
                        records: Vec::new(),
                    });
                    collections.len() - 1
                }
            };
            // Fields held but no longer declared still get a column.
            let c = &mut collections[at];
            for f in r.fields.keys() {
                if !c.fields.contains(f) {
                    c.fields.push(f.clone());
                }
            }
            c.records.push(r);
        }
        Ok(collections)
    }

    /// One record with every field decrypted and explained.
    async fn export_record(
        &self,
        rec: &RecordWithKey,
        key: &custos_core::crypto::DataKey,
        standing: &Standing,
        trail: &trail::Trail,
    ) -> Result<RecordExport, VaultError> {
        let r = &rec.record;
        let coll = self.inventory.collection(&r.collection);
        let facts = Facts {
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            last_activity_ms: standing.last_activity_ms.max(r.updated_ms),
        };
        let ctx = RecordContext {
            collection: &r.collection,
            coll,
            record_due: coll.and_then(|c| {
                due(
                    &c.retention,
                    &facts,
                    &collection_purposes(c),
                    &self.inventory,
                    &standing.state,
                    standing.now_ms,
                )
            }),
            facts,
            standing,
        };
        let mut fields = BTreeMap::new();
        for (name, ct) in &r.fields {
            let value = crate::records::open_field(key, r, name, ct)?;
            let field = self.explain(&ctx, name, value, trail.source(r, name));
            fields.insert(name.clone(), field);
        }
        Ok(RecordExport {
            record_id: r.id,
            created: format_time_ms(r.created_ms),
            updated: format_time_ms(r.updated_ms),
            legal_hold: self.hold(r.id).await?.is_some(),
            fields,
        })
    }

    /// What the inventory and the privacy notice say about one field of a record, in the
    /// notice's own words, beside its value.
    fn explain(
        &self,
        ctx: &RecordContext<'_>,
        name: &str,
        value: PersonalValue,
        source: Source,
    ) -> FieldExport {
        let mut out = FieldExport {
            value,
            category: None,
            purposes: Vec::new(),
            retention: RetentionExport {
                rule: "no longer declared: deleted at the next retention run".to_owned(),
                kept_until: Some(format_time_ms(ctx.standing.now_ms)),
            },
            recipients: Vec::new(),
            source,
        };
        let Some((coll, decl)) = ctx.coll.and_then(|c| c.fields.get(name).map(|d| (c, d))) else {
            return out;
        };
        out.category = Some(decl.category.clone());
        for id in &decl.purposes {
            let Some(np) = self.notice_purpose(id) else {
                continue;
            };
            out.purposes.push(PurposeExport {
                id: np.id.clone(),
                description: np.description.clone(),
                legal_basis: np.legal_basis,
                legal_basis_explained: np.legal_basis_explained.clone(),
            });
            out.recipients
                .extend(np.recipients.iter().map(|r| RecipientExport {
                    name: r.name.clone(),
                    country: r.country.clone(),
                    purpose: np.id.clone(),
                }));
        }
        let rule = decl.retention.unwrap_or(coll.retention);
        let purposes: Vec<&str> = decl.purposes.iter().map(String::as_str).collect();
        let s = ctx.standing;
        let own = due(
            &rule,
            &ctx.facts,
            &purposes,
            &self.inventory,
            &s.state,
            s.now_ms,
        );
        // The record going takes the field with it.
        let until = match (own, ctx.record_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        out.retention = RetentionExport {
            rule: self
                .notice
                .collections
                .iter()
                .find(|c| c.collection == ctx.collection)
                .and_then(|c| c.fields.iter().find(|f| f.field == name))
                .map_or_else(|| rule.to_string(), |f| f.retention.clone()),
            kept_until: until.map(format_time_ms),
        };
        out
    }

    fn notice_purpose(&self, id: &str) -> Option<&NoticePurpose> {
        self.notice.purposes.iter().find(|p| p.id == id)
    }
}

fn queued(e: &AuditEntry) -> QueuedAudit {
    QueuedAudit {
        subject_id: e.subject_id,
        entry: e.to_bytes(),
    }
}
