//! Notices of an incident: the draft to the supervisory authority, and the subjects' notices,
//! drafted from the incident's blast radius and sent through the outbox (each sealed under
//! its subject's key) once staff decided to notify subjects and approve.

use std::collections::{BTreeMap, BTreeSet};

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::breach::Incident;
use custos_core::breach::blast::BlastRadius;
use custos_core::breach::notice::{
    self, AuthorityNotice, Controller, Exposure, SubjectNotice, Variant,
};
use custos_core::ids::{IncidentId, SubjectId};
use custos_core::inventory::FieldType;
use custos_core::mail::Mail;
use custos_core::principal::{Act, Principal};
use custos_store::QueuedAudit;

use super::incidents::IncidentChange;
use crate::{Vault, VaultError};

/// How long a subject's notice is tried before it is given up: a week.
pub const NOTICE_EXPIRY_MS: i64 = 7 * 24 * 3_600_000;

/// The drafts of an incident's notices.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Notices {
    /// The draft to the supervisory authority (Art. 33(3)).
    pub authority: AuthorityNotice,
    /// Subjects whose data was exposed.
    pub subjects_exposed: u64,
    /// Records exposed.
    pub records_exposed: u64,
    /// Subjects who would get a notice, per variant.
    pub subjects: BTreeMap<Variant, u64>,
    /// One draft per variant, for the first subject of each (their fields named).
    pub samples: Vec<SubjectNotice>,
}

/// What sending the subjects' notices did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sent {
    /// Notices queued.
    pub queued: u64,
    /// Subjects with no address on file (or erased since): not notified by mail.
    pub without_address: u64,
    /// Subjects whose notice an earlier approval queued: skipped.
    pub already: u64,
}

/// The notice a subject of `r` gets, from the profile the blast radius placed them under.
fn variant(r: &BlastRadius, s: SubjectId) -> Variant {
    r.profiles
        .get(&s)
        .copied()
        .map_or(Variant::Art34, Variant::for_profile)
}

fn exposure(
    fields: &BTreeSet<(String, String)>,
    inv: &custos_core::inventory::Inventory,
) -> Exposure {
    let mut x = Exposure {
        categories: BTreeSet::new(),
        fields: BTreeSet::new(),
    };
    for (c, f) in fields {
        x.fields.insert(f.clone());
        if let Some(d) = inv.collections.get(c).and_then(|c| c.fields.get(f)) {
            x.categories.insert(d.category.clone());
        }
    }
    x
}

impl Vault {
    fn controller(&self) -> Controller {
        Controller {
            name: self.inventory.organization.name.clone(),
            contact: self.inventory.organization.contact.clone(),
        }
    }

    /// The blast radius an incident names: its key's or operator's reads in its window.
    async fn incident_radius(
        &self,
        p: &Principal,
        i: &Incident,
    ) -> Result<BlastRadius, VaultError> {
        let actor = match (&i.api_key, &i.operator) {
            (Some(k), _) => Some(format!("apikey:{k}")),
            (None, Some(o)) => Some(format!("operator:{o}")),
            (None, None) if i.from_ms.is_some() || i.to_ms.is_some() => None,
            (None, None) => {
                return Err(VaultError::invalid(
                    "api_key",
                    "caller_or_window",
                    "the incident names no API key, operator or window, so its blast radius is unknown",
                ));
            }
        };
        self.radius_of(p, actor, i.from_ms, i.to_ms).await
    }

    /// The drafts: to the authority, and one per variant to the subjects.
    ///
    /// # Errors
    /// `Forbidden` without `handle_incidents`; `NotFound`; `Invalid` when the incident names
    /// no caller or window.
    pub async fn notices(&self, p: &Principal, id: IncidentId) -> Result<Notices, VaultError> {
        let view = self.incident(p, id).await?;
        let i = &view.incident;
        let r = self.incident_radius(p, i).await?;
        let authority = notice::authority(&self.controller(), i, &r, &view.aware_at, self.now_ms());
        let mut subjects = BTreeMap::new();
        let mut samples: Vec<SubjectNotice> = Vec::new();
        for (s, fields) in &r.per_subject {
            let variant = variant(&r, *s);
            *subjects.entry(variant).or_insert(0) += 1;
            if !samples.iter().any(|n| n.variant == variant) {
                let x = exposure(fields, &self.inventory);
                samples.push(notice::subject(
                    &self.controller(),
                    i,
                    &x,
                    variant,
                    self.now_ms(),
                ));
            }
        }
        Ok(Notices {
            authority,
            subjects_exposed: r.subjects.len() as u64,
            records_exposed: r.records,
            subjects,
            samples,
        })
    }

    /// Sends each affected subject their notice through the outbox, to the address in
    /// their record's email field: allowed once the incident's decision says to notify
    /// subjects. Each address read is a `breach.notify` entry on the subject's trail; the
    /// incident records a step.
    ///
    /// # Errors
    /// `Forbidden` without `handle_incidents`; `NotFound`; `Conflict` without a decision to
    /// notify subjects.
    pub async fn send_notices(&self, p: &Principal, id: IncidentId) -> Result<Sent, VaultError> {
        let view = self.incident(p, id).await?;
        let i = &view.incident;
        if i.status == custos_core::breach::IncidentStatus::Closed {
            return Err(VaultError::Conflict("the incident is closed".into()));
        }
        if !i.decision.as_ref().is_some_and(|d| d.notify_subjects) {
            return Err(VaultError::Conflict(
                "the incident's decision does not say to notify subjects: record it first (custos breach decide)".into(),
            ));
        }
        self.authorize(p, &Act::HandleIncidents)?;
        let r = self.incident_radius(p, i).await?;
        let mut sent = Sent::default();
        let mut notified = Vec::new();
        for (s, fields) in &r.per_subject {
            if i.notified.contains(s) {
                sent.already += 1;
                continue;
            }
            let Some(to) = self.address_of(*s).await? else {
                sent.without_address += 1;
                continue;
            };
            let variant = variant(&r, *s);
            let n = notice::subject(
                &self.controller(),
                i,
                &exposure(fields, &self.inventory),
                variant,
                self.now_ms(),
            );
            let mail = Mail::new(&to.1, n.subject, n.text)?;
            let mut e = AuditEntry::new(p.actor(), Action::BreachNotify, Outcome::Ok);
            e.subject_id = Some(*s);
            e.collection = Some(to.0.clone());
            e.fields = vec![to.2.clone()];
            e.detail = Some(format!("incident {id}: notice queued"));
            self.store
                .append_audit(vec![QueuedAudit {
                    subject_id: Some(*s),
                    entry: e.to_bytes(),
                }])
                .await?;
            match self
                .enqueue_mail(Some(*s), mail, self.now_ms() + NOTICE_EXPIRY_MS)
                .await
            {
                Ok(_) => {
                    sent.queued += 1;
                    notified.push(*s);
                }
                Err(VaultError::NotFound(_)) => sent.without_address += 1,
                Err(e) => return Err(e),
            }
        }
        self.update_incident(
            p,
            id,
            IncidentChange {
                step: Some(format!(
                    "notices queued to {} subjects ({} without an address, {} notified before)",
                    sent.queued, sent.without_address, sent.already
                )),
                notified,
                ..IncidentChange::default()
            },
        )
        .await?;
        Ok(sent)
    }

    /// A subject's address: the newest value of an email field among their records, with
    /// the collection and field it came from.
    async fn address_of(
        &self,
        s: SubjectId,
    ) -> Result<Option<(String, custos_core::personal::PersonalValue, String)>, VaultError> {
        if self.store.subject_key(s).await?.is_none() {
            return Ok(None);
        }
        let mut records = self.store.subject_records(s).await?;
        records.sort_by_key(|r| std::cmp::Reverse(r.record.updated_ms));
        for rec in &records {
            let r = &rec.record;
            let Some(coll) = self.inventory.collections.get(&r.collection) else {
                continue;
            };
            for (name, decl) in &coll.fields {
                let Some(ct) = r.fields.get(name).filter(|_| decl.ty == FieldType::Email) else {
                    continue;
                };
                // The key read with the record: a rotation between reads never mismatches them.
                let key = self.keys.root.unwrap(
                    custos_core::crypto::WrapContext::Subject(s),
                    &rec.wrapped_key,
                )?;
                let v = crate::records::open_field(&key, r, name, ct)?;
                return Ok(Some((r.collection.clone(), v, name.clone())));
            }
        }
        Ok(None)
    }
}
