//! The blast radius of a compromised API key, operator or time window, from the audit log
//! (through its actor and time indexes) and the inventory; and containment, which stops the
//! callers an incident names.

use std::collections::{BTreeMap, HashSet};

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::breach::blast::{BlastRadius, Tally};
use custos_core::ids::{IncidentId, SubjectId};
use custos_core::principal::{Act, Principal};
use custos_core::rights::ProfileId;
use custos_core::time::format_time_ms;
use custos_store::QueuedAudit;

use super::incidents::IncidentChange;
use crate::requests::Place;
use crate::{Vault, VaultError};

/// Whose reads, and when.
#[derive(Debug, Clone, Default)]
pub struct BlastQuery {
    /// The API key's name.
    pub api_key: Option<String>,
    /// The operator's address.
    pub operator: Option<String>,
    /// From this instant, ms since the epoch.
    pub from_ms: Option<i64>,
    /// Until this instant (excluded).
    pub to_ms: Option<i64>,
}

/// What containing an incident did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Containment {
    /// API keys revoked.
    pub revoked_keys: Vec<String>,
    /// Operators disabled (by id).
    pub disabled_operators: Vec<String>,
    /// What is left to do by hand, in words.
    pub next: Vec<String>,
}

impl Vault {
    /// The blast radius: which subjects' data `q`'s caller (or anyone, in a window) read,
    /// which records, fields and categories per collection, and how many subjects fall under
    /// each profile (placed as requests place them, from their country and region fields:
    /// those reads are named in the `breach.blast_radius` entry). Canary reads are counted
    /// apart.
    ///
    /// # Errors
    /// `Forbidden` without `handle_incidents`; `Invalid` with neither a caller nor a window,
    /// or both a key and an operator; `NotFound` for an unknown operator.
    pub async fn blast_radius(
        &self,
        p: &Principal,
        q: &BlastQuery,
    ) -> Result<BlastRadius, VaultError> {
        self.authorize(p, &Act::HandleIncidents)?;
        let actor = match (&q.api_key, &q.operator) {
            (Some(_), Some(_)) => {
                return Err(VaultError::invalid(
                    "operator",
                    "one_caller",
                    "give an API key or an operator, not both",
                ));
            }
            (Some(k), None) => Some(format!("apikey:{k}")),
            (None, Some(email)) => Some(format!("operator:{}", self.operator_id_of(email).await?)),
            (None, None) if q.from_ms.is_none() && q.to_ms.is_none() => {
                return Err(VaultError::invalid(
                    "api_key",
                    "caller_or_window",
                    "name an API key or an operator, or give a window (--from, --to)",
                ));
            }
            (None, None) => None,
        };
        self.radius_of(p, actor, q.from_ms, q.to_ms).await
    }

    /// The blast radius of `actor` (anyone when `None`) in `from_ms..to_ms`, audited.
    pub(crate) async fn radius_of(
        &self,
        p: &Principal,
        actor: Option<String>,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<BlastRadius, VaultError> {
        // Reads of the past are integrated before they are counted.
        self.sequence_all().await?;
        let from = from_ms.map(format_time_ms);
        let to = to_ms.map(format_time_ms);
        let leaves = self
            .store
            .leaves_by(actor.as_deref(), from.as_deref(), to.as_deref())
            .await?;
        let canaries: HashSet<SubjectId> = self
            .store
            .canaries()
            .await?
            .into_iter()
            .map(|c| c.subject_id)
            .collect();
        let mut tally = Tally::new(&self.inventory);
        for l in &leaves {
            let e = AuditEntry::from_bytes(&l.entry).map_err(|_| {
                VaultError::Integrity(format!("audit entry {} is unreadable", l.index))
            })?;
            let canary = e.subject_id.is_some_and(|s| canaries.contains(&s));
            tally.add(&e, canary);
        }
        let mut radius = tally.finish();
        radius.profiles = self.place_all(&radius.subjects).await?;
        for p in radius.profiles.values() {
            *radius
                .jurisdictions
                .entry(p.as_str().to_owned())
                .or_insert(0) += 1;
        }
        let mut e = AuditEntry::new(p.actor(), Action::BlastRadius, Outcome::Ok);
        e.detail = Some(format!(
            "caller={} from={} to={}: {} subjects, {} records",
            actor.as_deref().unwrap_or("any"),
            from.as_deref().unwrap_or("-"),
            to.as_deref().unwrap_or("-"),
            radius.subjects.len(),
            radius.records
        ));
        let r = &self.inventory.rights;
        e.fields = [&r.country_field, &r.region_field]
            .into_iter()
            .flatten()
            .map(|f| format!("{}.{}", f.collection, f.field))
            .collect();
        self.store
            .append_audit(vec![QueuedAudit {
                subject_id: None,
                entry: e.to_bytes(),
            }])
            .await?;
        Ok(radius)
    }

    /// The profile each of `subjects` falls under.
    async fn place_all(
        &self,
        subjects: &[SubjectId],
    ) -> Result<BTreeMap<SubjectId, ProfileId>, VaultError> {
        let mut out = BTreeMap::new();
        for s in subjects {
            let profile = match self.store.subject_key(*s).await? {
                Some(_) => self.jurisdiction_of(*s, Place::default()).await?.0.id,
                // Erased since: no key, no fields; the default profile.
                None => self.inventory.rights.default_profile,
            };
            out.insert(*s, profile);
        }
        Ok(out)
    }

    /// Integrates everything queued, so what is counted is the whole log.
    async fn sequence_all(&self) -> Result<(), VaultError> {
        while self.sequence_audit().await? > 0 {}
        Ok(())
    }

    /// Contains an incident: revokes the API key and disables the operator it names, each
    /// audited and recorded as a step, and marks it contained. Rotating keys is not done here
    /// (it is `custos keys`, run beside the root key): the step says which to run.
    ///
    /// # Errors
    /// `Forbidden` without `handle_incidents`; `NotFound`.
    pub async fn contain_incident(
        &self,
        p: &Principal,
        id: IncidentId,
    ) -> Result<Containment, VaultError> {
        let view = self.incident(p, id).await?;
        let i = &view.incident;
        if i.status == custos_core::breach::IncidentStatus::Closed {
            return Err(VaultError::Conflict("the incident is closed".into()));
        }
        let mut done = Containment::default();
        let because = format!("incident {id}");
        if let Some(name) = &i.api_key {
            self.suspend(p, &format!("apikey:{name}"), &because).await?;
            done.revoked_keys.push(name.clone());
        }
        if let Some(op) = &i.operator {
            self.suspend(p, &format!("operator:{op}"), &because).await?;
            done.disabled_operators.push(op.clone());
        }
        done.next.push(
            "keys are not rotated here: if the caller could read the database or the key file, run `custos keys rotate-root`, `custos keys rotate-subjects` and `custos keys rotate-index` (sites' keys and tokens, under the marks key, do not rotate)".into(),
        );
        let step = format!(
            "contained: revoked API keys [{}], disabled operators [{}]; {}",
            done.revoked_keys.join(", "),
            done.disabled_operators.join(", "),
            done.next.join("; ")
        );
        self.update_incident(
            p,
            id,
            IncidentChange {
                status: Some(custos_core::breach::IncidentStatus::Contained),
                step: Some(step),
                ..IncidentChange::default()
            },
        )
        .await?;
        Ok(done)
    }
}
