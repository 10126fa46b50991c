//! Incidents and the register (GDPR Art. 33(5)): opened by staff (from alerts, or with what
//! they know), with the clocks of every profile the inventory can place a subject under,
//! changed step by step, each change audited, and sealed under the vault's `incidents` key
//! since staff's words may name people.

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::breach::clock::deadlines;
use custos_core::breach::incident::{check_text, check_title};
use custos_core::breach::{Addressee, Deadline, Decision, Incident, IncidentStatus, Step};
use custos_core::crypto::{DataKey, IncidentBinding};
use custos_core::ids::{AlertId, IncidentId};
use custos_core::principal::{Act, Principal};
use custos_core::rights::ProfileId;
use custos_store::{IncidentRow, QueuedAudit, StoreError};

use crate::{Vault, VaultError};

/// The key incidents are sealed under.
pub(crate) const INCIDENTS_KEY: &str = "incidents";

/// What opening an incident needs.
#[derive(Debug, Clone, Default)]
pub struct OpenIncident {
    /// A short title.
    pub title: String,
    /// When the controller became aware, ms since the epoch; now when `None`.
    pub aware_at_ms: Option<i64>,
    /// The facts as known.
    pub facts: String,
    /// The API key it is about, when one.
    pub api_key: Option<String>,
    /// The operator it is about (their address), when one.
    pub operator: Option<String>,
    /// The start of the window its blast radius covers, ms since the epoch.
    pub from_ms: Option<i64>,
    /// The end of that window (excluded).
    pub to_ms: Option<i64>,
    /// The alerts it is opened from.
    pub alerts: Vec<AlertId>,
}

/// A change to an incident: each part given replaces what it names; `step` adds one.
#[derive(Debug, Clone, Default)]
pub struct IncidentChange {
    /// New facts.
    pub facts: Option<String>,
    /// Effects and likely consequences.
    pub effects: Option<String>,
    /// Remedial action taken or proposed.
    pub remedial: Option<String>,
    /// A new status.
    pub status: Option<IncidentStatus>,
    /// The decision whether to notify, with reasons.
    pub decision: Option<(bool, bool, String)>,
    /// A step taken, in words.
    pub step: Option<String>,
    /// Subjects whose notice was queued, added to those before.
    pub notified: Vec<custos_core::ids::SubjectId>,
}

/// One clock of an incident, as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClockView {
    /// The deadline.
    #[serde(flatten)]
    pub deadline: Deadline,
    /// Time left at the vault's clock, ms (negative once passed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_ms: Option<i64>,
    /// Whether it has passed (and the incident is not closed).
    pub overdue: bool,
}

/// An incident with its clocks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IncidentView {
    /// The incident.
    #[serde(flatten)]
    pub incident: Incident,
    /// When the controller became aware, RFC 3339.
    pub aware_at: String,
    /// The clocks it started.
    pub clocks: Vec<ClockView>,
}

impl IncidentView {
    /// The authority's clock under GDPR or UK GDPR, when the inventory has either: the one
    /// a list shows first.
    pub fn authority_clock(&self) -> Option<&ClockView> {
        self.clocks
            .iter()
            .find(|c| c.deadline.duty.to == Addressee::Authority)
    }
}

impl Vault {
    /// Every profile a subject can be placed under by the inventory: the default and each
    /// jurisdiction rule's.
    pub(crate) fn profiles_in_play(&self) -> Vec<ProfileId> {
        let r = &self.inventory.rights;
        let mut out = vec![r.default_profile];
        for j in &r.jurisdictions {
            if !out.contains(&j.profile) {
                out.push(j.profile);
            }
        }
        out
    }

    pub(crate) fn incident_view(&self, incident: Incident) -> IncidentView {
        let now = self.now_ms();
        let closed = incident.status == IncidentStatus::Closed;
        let clocks = deadlines(
            incident.aware_at_ms,
            &self.profiles_in_play(),
            self.inventory.breach.time_zone,
        )
        .into_iter()
        .map(|d| ClockView {
            left_ms: d.left_ms(now),
            overdue: !closed && d.left_ms(now).is_some_and(|l| l < 0),
            deadline: d,
        })
        .collect();
        IncidentView {
            aware_at: custos_core::breach::clock::local(
                incident.aware_at_ms,
                self.inventory.breach.time_zone,
            ),
            incident,
            clocks,
        }
    }

    async fn incidents_key(&self) -> Result<&DataKey, VaultError> {
        self.incidents_key
            .get_or_try_init(|| {
                crate::keys::named_key(self.store.as_ref(), &self.keys.root, INCIDENTS_KEY)
            })
            .await
    }

    async fn seal(&self, i: &Incident) -> Result<IncidentRow, VaultError> {
        let sealed = self
            .incidents_key()
            .await?
            .encrypt_incident(IncidentBinding { id: i.id }, &i.to_bytes());
        Ok(IncidentRow {
            id: i.id,
            status: i.status.as_str().to_owned(),
            aware_ms: i.aware_at_ms,
            opened_ms: i.opened_at_ms,
            changed_ms: i.steps.last().map_or(i.opened_at_ms, |s| s.at_ms),
            sealed,
        })
    }

    async fn unseal(&self, row: &IncidentRow) -> Result<Incident, VaultError> {
        let plain = self
            .incidents_key()
            .await?
            .decrypt_incident(IncidentBinding { id: row.id }, &row.sealed)?;
        Incident::from_bytes(plain.expose_secret())
            .map_err(|_| VaultError::Integrity(format!("incident {} is unreadable", row.id)))
    }

    /// Opens an incident; its clocks run from `aware_at_ms`. Audited as `incident.open`.
    ///
    /// # Errors
    /// `Forbidden` without `handle_incidents`; `Invalid` naming the field and rule (an empty
    /// title, an awareness in the future, an unknown operator).
    pub async fn open_incident(
        &self,
        p: &Principal,
        o: OpenIncident,
    ) -> Result<IncidentView, VaultError> {
        self.authorize(p, &Act::HandleIncidents)?;
        check_title(&o.title)
            .map_err(|e| VaultError::invalid(e.field, "incident_title", e.to_string()))?;
        check_text("facts", &o.facts)
            .map_err(|e| VaultError::invalid(e.field, "incident_text", e.to_string()))?;
        let now = self.now_ms();
        let aware = o.aware_at_ms.unwrap_or(now);
        if aware > now + 60_000 {
            return Err(VaultError::invalid(
                "aware_at",
                "not_in_future",
                "the time of awareness is in the future",
            ));
        }
        let operator = match &o.operator {
            Some(email) => Some(self.operator_id_of(email).await?.to_string()),
            None => None,
        };
        let id = IncidentId::random();
        let incident = Incident {
            id,
            title: o.title.trim().to_owned(),
            aware_at_ms: aware,
            opened_at_ms: now,
            opened_by: p.actor(),
            status: IncidentStatus::Open,
            facts: o.facts,
            effects: String::new(),
            remedial: String::new(),
            api_key: o.api_key,
            operator,
            from_ms: o.from_ms,
            to_ms: o.to_ms,
            alerts: o.alerts,
            decision: None,
            steps: Vec::new(),
            notified: Vec::new(),
        };
        let row = self.seal(&incident).await?;
        let audit = incident_entry(p, Action::IncidentOpen, id, "opened");
        self.store.insert_incident(row, audit).await?;
        Ok(self.incident_view(incident))
    }

    /// The register: every incident, notified or not, newest awareness first.
    ///
    /// # Errors
    /// `Forbidden` without `handle_incidents`.
    pub async fn incidents(&self, p: &Principal) -> Result<Vec<IncidentView>, VaultError> {
        self.authorize(p, &Act::HandleIncidents)?;
        let mut out = Vec::new();
        for row in self.store.incidents().await? {
            out.push(self.incident_view(self.unseal(&row).await?));
        }
        Ok(out)
    }

    /// One incident.
    ///
    /// # Errors
    /// `Forbidden` without `handle_incidents`; `NotFound`.
    pub async fn incident(
        &self,
        p: &Principal,
        id: IncidentId,
    ) -> Result<IncidentView, VaultError> {
        self.authorize(p, &Act::HandleIncidents)?;
        let row = self
            .store
            .incident(id)
            .await?
            .ok_or(VaultError::NotFound("incident"))?;
        Ok(self.incident_view(self.unseal(&row).await?))
    }

    /// Changes an incident as `change` says, recording a step in words; audited as
    /// `incident.update` naming what changed (never the words). Retried once when another
    /// change won the race.
    ///
    /// # Errors
    /// `Forbidden` without `handle_incidents`; `NotFound`; `Invalid` naming the field and
    /// rule; `Conflict` when the incident is closed.
    pub async fn update_incident(
        &self,
        p: &Principal,
        id: IncidentId,
        change: IncidentChange,
    ) -> Result<IncidentView, VaultError> {
        self.authorize(p, &Act::HandleIncidents)?;
        for (field, text) in [
            ("facts", &change.facts),
            ("effects", &change.effects),
            ("remedial", &change.remedial),
            ("step", &change.step),
        ] {
            if let Some(t) = text {
                check_text(field, t)
                    .map_err(|e| VaultError::invalid(e.field, "incident_text", e.to_string()))?;
            }
        }
        if let Some((_, _, reasons)) = &change.decision {
            check_text("reasons", reasons)
                .map_err(|e| VaultError::invalid(e.field, "incident_text", e.to_string()))?;
            if reasons.trim().is_empty() {
                return Err(VaultError::invalid(
                    "reasons",
                    "reasons_required",
                    "a decision whether to notify needs its reasons (GDPR Art. 33(5))",
                ));
            }
        }
        let mut retried = false;
        loop {
            let row = self
                .store
                .incident(id)
                .await?
                .ok_or(VaultError::NotFound("incident"))?;
            let mut i = self.unseal(&row).await?;
            if i.status == IncidentStatus::Closed {
                return Err(VaultError::Conflict("the incident is closed".into()));
            }
            let now = self.now_ms().max(row.changed_ms + 1);
            let what = apply(&mut i, &change, &p.actor(), now);
            let new = self.seal(&i).await?;
            let audit = incident_entry(p, Action::IncidentUpdate, id, &what);
            match self.store.update_incident(new, row.changed_ms, audit).await {
                Ok(()) => return Ok(self.incident_view(i)),
                // Another change won: apply this one to what it left.
                Err(StoreError::Conflict(_)) if !retried => retried = true,
                Err(StoreError::Conflict(m)) => return Err(VaultError::Conflict(m)),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Applies `change` to `i` at `now` by `by`, recording it as a step; says what changed.
fn apply(i: &mut Incident, change: &IncidentChange, by: &str, now: i64) -> String {
    let mut what = Vec::new();
    for (given, field, name) in [
        (&change.facts, &mut i.facts, "facts"),
        (&change.effects, &mut i.effects, "effects"),
        (&change.remedial, &mut i.remedial, "remedial action"),
    ] {
        if let Some(t) = given {
            field.clone_from(t);
            what.push(name);
        }
    }
    if let Some((authority, subjects, reasons)) = &change.decision {
        i.decision = Some(Decision {
            notify_authority: *authority,
            notify_subjects: *subjects,
            reasons: reasons.clone(),
            at_ms: now,
            by: by.to_owned(),
        });
        what.push("decision");
    }
    if let Some(s) = change.status {
        i.status = s;
        what.push(match s {
            IncidentStatus::Open => "reopened",
            IncidentStatus::Contained => "contained",
            IncidentStatus::Closed => "closed",
        });
    }
    for s in &change.notified {
        if !i.notified.contains(s) {
            i.notified.push(*s);
        }
    }
    let words = change
        .step
        .clone()
        .unwrap_or_else(|| format!("changed: {}", what.join(", ")));
    if change.step.is_some() {
        what.push("step");
    }
    i.steps.push(Step {
        at_ms: now,
        by: by.to_owned(),
        what: words,
    });
    what.join(", ")
}

fn incident_entry(p: &Principal, action: Action, id: IncidentId, what: &str) -> QueuedAudit {
    let mut e = AuditEntry::new(p.actor(), action, Outcome::Ok);
    e.detail = Some(format!("incident {id}: {what}"));
    QueuedAudit {
        subject_id: None,
        entry: e.to_bytes(),
    }
}
