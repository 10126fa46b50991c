//! A subject's audit trail as the subject reads it: who read their data (when, which key and
//! role, for which purpose, which fields), what else was done with it, and where each value
//! came from (the entry that stored it and the last that changed it).

use std::collections::HashMap;

use custos_core::audit::{Action, AuditEntry, Outcome, Withheld};
use custos_core::consent::Choice;
use custos_core::ids::{RecordId, SubjectId};
use custos_core::time::format_time_ms;
use custos_store::{LeafRow, RecordRow};
use serde::Serialize;

use crate::{Vault, VaultError};

/// Who acted, as the log names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActorKind {
    /// An application's API key.
    ApiKey,
    /// The subject, signed in.
    You,
    /// Another customer, signed in to the portal (their id is not shown).
    OtherCustomer,
    /// A member of staff signed in to the console.
    Operator,
    /// An administrator at the vault's command line.
    CommandLine,
    /// The automatic retention sweep.
    Retention,
    /// Someone the log names in a way this version does not know.
    Other,
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// What kind of caller.
    pub kind: ActorKind,
    /// The API key's name, or the operator's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The role an API key holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The same in words.
    pub in_words: String,
}

/// When something was done, and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Happened {
    /// When, RFC 3339 UTC.
    pub at: String,
    /// Who.
    pub by: Actor,
}

/// Where a value came from, as the audit log tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Source {
    /// When it was stored, and by whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<Happened>,
    /// When it was last changed after that, and by whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_changed: Option<Happened>,
    /// The same in words.
    pub in_words: String,
}

/// One read or search of the subject's records.
#[derive(Debug, Clone, Serialize)]
pub struct Read {
    /// The entry's index in the audit log: ask for its inclusion proof to check it.
    pub audit_index: u64,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// Who read.
    pub by: Actor,
    /// `record.read` or `record.search`.
    pub action: Action,
    /// `ok`, or `denied` when the read was refused.
    pub outcome: Outcome,
    /// The purpose named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// What the purpose means, as the privacy notice says it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose_description: Option<String>,
    /// The collection read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// The record read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_id: Option<RecordId>,
    /// The fields returned.
    pub fields: Vec<String>,
    /// The fields withheld, and why.
    pub withheld: Vec<Withheld>,
}

/// Any other act on the subject's data.
#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    /// The entry's index in the audit log.
    pub audit_index: u64,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// Who.
    pub by: Actor,
    /// What, as the log names it (`record.update`, `consent.record`, ...).
    pub action: Action,
    /// `ok` or `denied`.
    pub outcome: Outcome,
    /// What was done, in words.
    pub in_words: String,
    /// The collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// The record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_id: Option<RecordId>,
    /// The purpose named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The fields written, erased or exported (names only).
    pub fields: Vec<String>,
}

/// A subject's entries, read once, and what naming their actors needs.
pub(crate) struct Trail {
    subject: SubjectId,
    entries: Vec<(u64, AuditEntry)>,
    /// API key names to their roles.
    roles: HashMap<String, String>,
    /// Purpose ids to their descriptions.
    purposes: HashMap<String, String>,
    organization: String,
    contact: String,
}

impl Trail {
    /// Reads the subject's leaves, and the roles of the API keys they name (the key rows hold
    /// them; a key's role never changes).
    pub(crate) async fn read(
        vault: &Vault,
        subject: SubjectId,
        leaves: &[LeafRow],
    ) -> Result<Trail, VaultError> {
        let entries = leaves
            .iter()
            .map(|l| {
                AuditEntry::from_bytes(&l.entry)
                    .map(|e| (l.index, e))
                    .map_err(|_| {
                        VaultError::Integrity(format!("audit entry {} is unreadable", l.index))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let roles = if entries.iter().any(|(_, e)| e.actor.starts_with("apikey:")) {
            vault
                .store
                .api_keys()
                .await?
                .into_iter()
                .map(|k| (k.name, k.role))
                .collect()
        } else {
            HashMap::new()
        };
        let inv = vault.inventory();
        Ok(Trail {
            subject,
            entries,
            roles,
            purposes: inv
                .purposes
                .iter()
                .map(|p| (p.id.clone(), p.description.clone()))
                .collect(),
            organization: inv.organization.name.clone(),
            contact: inv.organization.contact.clone(),
        })
    }

    /// Who `actor` (as an entry writes it) is.
    fn actor(&self, actor: &str) -> Actor {
        let (kind, name) = match actor.split_once(':') {
            Some(("apikey", n)) => (ActorKind::ApiKey, Some(n)),
            Some(("operator", n)) => (ActorKind::Operator, Some(n)),
            Some(("customer", s)) if s == self.subject.to_string() => (ActorKind::You, None),
            // Another customer's id is theirs: it is not shown.
            Some(("customer", _)) => (ActorKind::OtherCustomer, None),
            None if actor == "cli" => (ActorKind::CommandLine, None),
            None if actor == "retention" => (ActorKind::Retention, None),
            _ => (ActorKind::Other, Some(actor)),
        };
        let role = match kind {
            ActorKind::ApiKey => name.and_then(|n| self.roles.get(n)).cloned(),
            _ => None,
        };
        let org = &self.organization;
        let in_words = match (kind, name, role.as_deref()) {
            (ActorKind::ApiKey, Some(n), Some(r)) => {
                format!("{org}'s application key \"{n}\" (role {r})")
            }
            (ActorKind::ApiKey, Some(n), None) => format!("{org}'s application key \"{n}\""),
            (ActorKind::Operator, Some(n), _) => format!("{org}'s staff member \"{n}\""),
            (ActorKind::You, ..) => "you".to_owned(),
            (ActorKind::OtherCustomer, ..) => "another customer, signed in".to_owned(),
            (ActorKind::CommandLine, ..) => {
                format!("an administrator of {org} at the vault's command line")
            }
            (ActorKind::Retention, ..) => "the automatic retention sweep".to_owned(),
            _ => format!("\"{actor}\""),
        };
        Actor {
            kind,
            name: name.map(str::to_owned),
            role,
            in_words,
        }
    }

    fn happened(&self, e: &AuditEntry) -> Happened {
        Happened {
            at: e.time.clone(),
            by: self.actor(&e.actor),
        }
    }

    /// Where one value of `record` came from: the first entry that wrote the field and the
    /// last that changed it.
    pub(crate) fn source(&self, record: &RecordRow, field: &str) -> Source {
        let mut writes = self.entries.iter().filter(|(_, e)| {
            e.record_id == Some(record.id)
                && e.outcome == Outcome::Ok
                && matches!(e.action, Action::RecordCreate | Action::RecordUpdate)
                && e.fields.iter().any(|f| f == field)
        });
        let first = writes.next().map(|(_, e)| self.happened(e));
        let last = writes.next_back().map(|(_, e)| self.happened(e));
        let day = |at: &str| at.get(..10).unwrap_or(at).to_owned();
        let (org, contact) = (&self.organization, &self.contact);
        let mut in_words = match &first {
            Some(h) => format!("Stored by {org} on {}, by {}.", day(&h.at), h.by.in_words),
            None => format!(
                "Stored by {org} on {} (the audit log holds no entry of it).",
                day(&format_time_ms(record.created_ms))
            ),
        };
        if let Some(h) = &last {
            in_words.push_str(&format!(
                " Last changed on {}, by {}.",
                day(&h.at),
                h.by.in_words
            ));
        }
        in_words.push_str(&format!(
            " Custos records who stored a value, not where they had it from: whether you gave \
             it or {org} received it from someone else, ask {contact}."
        ));
        Source {
            stored: first,
            last_changed: last,
            in_words,
        }
    }

    /// The reads and searches, and every other act, each oldest first.
    pub(crate) fn into_entries(self) -> (Vec<Read>, Vec<Activity>) {
        let mut reads = Vec::new();
        let mut activity = Vec::new();
        for (index, e) in &self.entries {
            let by = self.actor(&e.actor);
            if matches!(e.action, Action::RecordRead | Action::RecordSearch) {
                reads.push(Read {
                    audit_index: *index,
                    at: e.time.clone(),
                    by,
                    action: e.action,
                    outcome: e.outcome,
                    purpose_description: e
                        .purpose
                        .as_ref()
                        .and_then(|p| self.purposes.get(p))
                        .cloned(),
                    purpose: e.purpose.clone(),
                    collection: e.collection.clone(),
                    record_id: e.record_id,
                    fields: e.fields.clone(),
                    withheld: e.withheld.clone(),
                });
            } else {
                activity.push(Activity {
                    audit_index: *index,
                    at: e.time.clone(),
                    by,
                    action: e.action,
                    outcome: e.outcome,
                    in_words: in_words(e),
                    collection: e.collection.clone(),
                    record_id: e.record_id,
                    purpose: e.purpose.clone(),
                    fields: e.fields.clone(),
                });
            }
        }
        (reads, activity)
    }
}

/// What an entry did, in words. Free text an entry may carry (a hold's reason) is left out:
/// it is written for the business, about a case, and may name others.
fn in_words(e: &AuditEntry) -> String {
    let coll = e.collection.as_deref().unwrap_or("a collection");
    let fields = e.fields.join(", ");
    let purpose = e.purpose.as_deref().unwrap_or("every purpose");
    let done = match e.action {
        Action::RecordCreate => format!("stored a new record in {coll} with {fields}"),
        Action::RecordUpdate => format!("changed {fields} in a record of {coll}"),
        Action::RecordRectify => format!("corrected {fields} in a record of {coll}, as you asked"),
        Action::Signin => "you signed in to the privacy portal".to_owned(),
        Action::SigninFailed => "a sign-in to the privacy portal failed".to_owned(),
        Action::SigninCode => "a sign-in code was asked for your address".to_owned(),
        Action::Signout => "you signed out of the privacy portal".to_owned(),
        Action::RecordDelete => format!("deleted a record of {coll}"),
        Action::ConsentRecord => {
            let choice = e.consent.as_ref().map(|c| c.choice);
            let what = match choice {
                Some(Choice::Grant) => format!("you gave consent to {purpose}"),
                Some(Choice::Withdraw) => format!("you withdrew consent to {purpose}"),
                Some(Choice::Object) => format!("you object to {purpose}"),
                Some(Choice::WithdrawObjection) => {
                    format!("you withdrew your objection to {purpose}")
                }
                Some(Choice::Restrict) => {
                    "you asked to restrict the processing of your data".into()
                }
                Some(Choice::LiftRestriction) => "the restriction of processing was lifted".into(),
                _ => "a choice of yours".to_owned(),
            };
            format!("recorded that {what}")
        }
        Action::ConsentRead => "read your consent history".to_owned(),
        Action::AuditRead => "read the audit trail of your data".to_owned(),
        Action::SubjectExport => "exported all the data held about you".to_owned(),
        Action::SubjectView => "you viewed your data in the privacy portal".to_owned(),
        Action::RetentionDelete => {
            format!("deleted a record of {coll}: its retention period was over")
        }
        Action::RetentionAnonymise => format!(
            "anonymised a record of {coll}: its retention period was over, what could identify \
             you was deleted"
        ),
        Action::RetentionErase => format!("erased {fields}: their retention period was over"),
        Action::LegalHoldPlace => format!(
            "placed a legal hold on a record of {coll}: it is kept until the hold is released"
        ),
        Action::LegalHoldRelease => format!("released the legal hold on a record of {coll}"),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "acted".to_owned()),
    };
    match (e.outcome, e.action) {
        (Outcome::Denied, Action::SubjectExport) => {
            "asked to export the data held about you, and was refused".to_owned()
        }
        (Outcome::Denied, _) => format!("was refused: {done}"),
        _ => done,
    }
}
