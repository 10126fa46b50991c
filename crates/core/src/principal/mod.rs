//! Who is calling, and what each caller may do: [`Principal`], the [`Act`]s of the vault, and
//! [`authorize`], the one place that says yes or no to an act. The vault calls it at the top
//! of every use case and checks permissions nowhere else; which *fields* a permitted read
//! returns is then [`crate::access::decide`]'s to say.

mod grant;
mod roles;
#[cfg(test)]
mod tests;

use std::fmt;

use crate::ids::SubjectId;
use crate::inventory::{ADMIN_ROLE, Inventory, Purpose, Role};

pub use grant::may_grant;
use roles::role_may;

/// A background job of the vault, acting as the vault itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Job {
    /// The retention sweep run by `custos serve`.
    Retention,
    /// The breach detector run by `custos serve`: it may suspend the caller an alert is
    /// about, when `[breach] suspend_on_alert` says so.
    Detector,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Principal {
    /// An application's API key, holding one role (`admin` or a role of the inventory).
    ApiKey {
        /// The key's name.
        name: String,
        /// The role it holds.
        role: String,
    },
    /// A customer signed in to the portal: acts on their own subject only.
    Customer {
        /// The subject they proved to be.
        subject: SubjectId,
    },
    /// A member of staff signed in to the console, holding a role of the inventory.
    Operator {
        /// The operator's id.
        id: String,
        /// The role they hold.
        role: String,
    },
    /// The person running `custos` on the vault's own machine: they hold the root key file,
    /// so they hold every right an administrator has.
    Cli,
    /// The vault itself, running a background job.
    System(Job),
}

impl Principal {
    /// The principal of an API key.
    pub fn api_key(name: impl Into<String>, role: impl Into<String>) -> Self {
        Principal::ApiKey {
            name: name.into(),
            role: role.into(),
        }
    }

    /// Who, as written in audit entries: `apikey:NAME`, `customer:SUBJECT`, `operator:ID`,
    /// `cli`, or the job's name (`retention`).
    pub fn actor(&self) -> String {
        match self {
            Principal::ApiKey { name, .. } => format!("apikey:{name}"),
            Principal::Customer { subject } => format!("customer:{subject}"),
            Principal::Operator { id, .. } => format!("operator:{id}"),
            Principal::Cli => "cli".to_owned(),
            Principal::System(Job::Retention) => "retention".to_owned(),
            Principal::System(Job::Detector) => "detector".to_owned(),
        }
    }

    /// The one subject a caller is bound to: a customer's own; none for any other caller.
    pub fn own_subject(&self) -> Option<SubjectId> {
        match self {
            Principal::Customer { subject } => Some(*subject),
            _ => None,
        }
    }

    /// The role held, for a caller that holds one.
    pub fn role(&self) -> Option<&str> {
        match self {
            Principal::ApiKey { role, .. } | Principal::Operator { role, .. } => Some(role),
            Principal::Customer { .. } | Principal::Cli | Principal::System(_) => None,
        }
    }
}

/// What a caller asks to do.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Act<'a> {
    /// Create, change or delete records.
    WriteRecords,
    /// Correct a value of a subject's record at the subject's request (GDPR Art. 16): what a
    /// customer does in the portal, validated as any write.
    Rectify {
        /// Whose record.
        subject: SubjectId,
    },
    /// Read personal data for a purpose; which fields are returned is then decided field by
    /// field by [`crate::access::decide`].
    Read {
        /// The purpose named.
        purpose: &'a Purpose,
        /// The subject read, when one is named before the read.
        subject: Option<SubjectId>,
    },
    /// Record a choice in a subject's consent ledger.
    RecordChoice {
        /// Whose.
        subject: SubjectId,
    },
    /// Read a subject's consent ledger, or a receipt of one of its events.
    ReadLedger {
        /// Whose, when known before the read.
        subject: Option<SubjectId>,
    },
    /// Mint a token with which a website records a subject's choices.
    MintSiteToken,
    /// Read audit entries: a subject's trail or an entry's inclusion proof.
    ReadAudit,
    /// Run or report on retention.
    RunRetention,
    /// Place or release legal holds.
    ManageHolds,
    /// Create, list or revoke API keys.
    ManageApiKeys,
    /// Add, list or disable operators, or reset their second factor.
    ManageOperators,
    /// See counts across subjects: consent per purpose, requests per week.
    ReadReports,
    /// See the alerts raised.
    ReadAlerts,
    /// Respond to breaches: canaries, alerts, incidents, blast radius, containment.
    HandleIncidents,
    /// Suspend the API key or operator an alert is about.
    Suspend,
    /// Erase a subject (crypto-shredding).
    EraseSubject {
        /// Whom.
        subject: SubjectId,
    },
    /// Read a subject's erasure certificate, or (with no subject) the erasure list.
    ReadErasures {
        /// Whose certificate; none for the whole list.
        subject: Option<SubjectId>,
    },
    /// File a data-subject request on a subject's behalf.
    FileRequest {
        /// Whose request it is.
        subject: SubjectId,
    },
    /// Read data-subject requests: one, or a list.
    ReadRequests {
        /// Whose, when the requests read are one subject's; `None` for any subject's.
        subject: Option<SubjectId>,
    },
    /// Move data-subject requests on: acknowledge, verify, approve, extend, reject, complete.
    HandleRequests,
    /// Export everything held about a subject, decrypted, with why it is held and who read
    /// it: the subject's right of access and to portability (GDPR Art. 15 and 20, CCPA's
    /// right to know). Not a processing purpose, so no purpose is named.
    ExportSubject {
        /// Whose.
        subject: SubjectId,
    },
}

impl Act<'_> {
    /// The act in words, for refusals: "role R may not {this}".
    fn describe(&self) -> &'static str {
        match self {
            Act::WriteRecords => "write records",
            Act::Rectify { .. } => "correct records",
            Act::Read { .. } => "read personal data",
            Act::RecordChoice { .. } => "record choices in the consent ledger",
            Act::ReadLedger { .. } => "read the consent ledger",
            Act::MintSiteToken => "mint site tokens",
            Act::ReadAudit => "read audit entries",
            Act::RunRetention => "run retention",
            Act::ManageHolds => "place or release legal holds",
            Act::ManageApiKeys => "manage API keys",
            Act::ManageOperators => "manage operators",
            Act::ReadReports => "read reports",
            Act::ReadAlerts => "read alerts",
            Act::HandleIncidents => "handle incidents",
            Act::Suspend => "suspend keys or operators",
            Act::EraseSubject { .. } => "erase subjects",
            Act::ReadErasures { .. } => "read erasures",
            Act::FileRequest { .. } => "file data-subject requests",
            Act::ReadRequests { .. } => "read data-subject requests",
            Act::HandleRequests => "handle data-subject requests",
            Act::ExportSubject { .. } => "export a subject's data",
        }
    }

    /// The subject the act is about, when it names one.
    fn subject(&self) -> Option<SubjectId> {
        match self {
            Act::Read { subject, .. }
            | Act::ReadLedger { subject }
            | Act::ReadErasures { subject }
            | Act::ReadRequests { subject } => *subject,
            Act::RecordChoice { subject }
            | Act::Rectify { subject }
            | Act::EraseSubject { subject }
            | Act::FileRequest { subject }
            | Act::ExportSubject { subject } => Some(*subject),
            _ => None,
        }
    }
}

/// Why an act was refused: a sentence for the caller, naming their role and the act, never a
/// personal value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(String);

impl Refusal {
    /// The sentence.
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// What an administrator may do: everything.
enum Holder<'a> {
    Admin,
    Role(&'a Role),
}

fn holder<'a>(role: &str, inventory: &'a Inventory) -> Result<Holder<'a>, Refusal> {
    if role == ADMIN_ROLE {
        return Ok(Holder::Admin);
    }
    inventory.role(role).map(Holder::Role).ok_or_else(|| {
        Refusal(format!(
            "role {role:?} is no longer declared in the inventory"
        ))
    })
}

/// Says whether `principal` may do `act` under `inventory`'s roles. Pure: the same question
/// always gets the same answer.
///
/// - The administrator role, and the person at the vault's own command line, may do anything.
/// - A role of the inventory reads for its own purposes; with `may_write` it also writes
///   records, records and reads consent choices, mints site tokens, and files and reads
///   data-subject requests (the application files them on a customer's behalf).
/// - The duties of privacy staff are the permissions a role is given (`may`, see
///   [`Permission`](crate::inventory::Permission)): `read_requests` sees the queue;
///   `handle_requests` moves requests on and carries them out (it erases, records choices,
///   exports a subject's data, as the approved request asks); `read_audit`,
///   `read_reports`, `run_retention`, `manage_holds`, `manage_api_keys` and
///   `manage_operators` do what they say. Without one, the act is
///   refused, naming the permission it needs.
/// - A signed-in customer corrects their own records, records and reads their own consent
///   choices, files and reads their own data-subject requests, reads their own erasure
///   certificate and exports their own data, and nothing else.
/// - A background job does its own job only.
///
/// # Errors
/// A [`Refusal`] saying who may not do what.
pub fn authorize(
    principal: &Principal,
    act: &Act<'_>,
    inventory: &Inventory,
) -> Result<(), Refusal> {
    match principal {
        Principal::Cli => Ok(()),
        Principal::ApiKey { role, .. } | Principal::Operator { role, .. } => {
            match holder(role, inventory)? {
                Holder::Admin => Ok(()),
                Holder::Role(r) => role_may(r, act),
            }
        }
        Principal::Customer { subject } => match act {
            Act::RecordChoice { .. }
            | Act::Rectify { .. }
            | Act::ReadLedger { .. }
            | Act::ReadErasures { .. }
            | Act::FileRequest { .. }
            | Act::ReadRequests { .. }
            | Act::ExportSubject { .. }
                if act.subject() == Some(*subject) =>
            {
                Ok(())
            }
            _ if act.subject().is_some_and(|s| s != *subject) => Err(Refusal(
                "a customer may act on their own data only".to_owned(),
            )),
            _ => Err(Refusal(format!(
                "a customer may not {} here",
                act.describe()
            ))),
        },
        Principal::System(job) => match (job, act) {
            (Job::Retention, Act::RunRetention) => Ok(()),
            (Job::Retention, _) => Err(Refusal(format!(
                "the retention sweep may not {}",
                act.describe()
            ))),
            (Job::Detector, Act::Suspend) => Ok(()),
            (Job::Detector, _) => Err(Refusal(format!(
                "the breach detector may not {}",
                act.describe()
            ))),
        },
    }
}
impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.actor())
    }
}
