//! Who is calling, and what each caller may do: [`Principal`], the [`Act`]s of the vault, and
//! [`authorize`], the one place that says yes or no to an act. The vault calls it at the top
//! of every use case and checks permissions nowhere else; which *fields* a permitted read
//! returns is then [`crate::access::decide`]'s to say.

use std::fmt;

use crate::ids::SubjectId;
use crate::inventory::{ADMIN_ROLE, Inventory, Permission, Purpose, Role};

/// A background job of the vault, acting as the vault itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Job {
    /// The retention sweep run by `custos serve`.
    Retention,
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
///   [`Permission`]): `read_requests` sees the queue; `handle_requests` moves requests on and
///   carries them out (it erases, records choices, exports a subject's data, as the approved
///   request asks); `read_audit`, `read_reports`, `run_retention`, `manage_holds`,
///   `manage_api_keys` and `manage_operators` do what they say. Without one, the act is
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
        },
    }
}

/// Says whether `principal`, allowed to manage operators or API keys, may give `role` to one
/// (or reset or disable an operator holding it): the command line and an administrator may
/// give any role; anyone else only a role that can do nothing they cannot do themselves, and
/// never `admin`. So `manage_operators` and `manage_api_keys` cannot be used to climb.
///
/// # Errors
/// A [`Refusal`] naming what the role would add.
pub fn may_grant(principal: &Principal, role: &str, inventory: &Inventory) -> Result<(), Refusal> {
    let mine = match principal {
        Principal::Cli => return Ok(()),
        Principal::ApiKey { role, .. } | Principal::Operator { role, .. } => {
            match holder(role, inventory)? {
                Holder::Admin => return Ok(()),
                Holder::Role(r) => r,
            }
        }
        Principal::Customer { .. } | Principal::System(_) => {
            return Err(Refusal(format!("{principal} may not give roles")));
        }
    };
    if role == ADMIN_ROLE {
        return Err(Refusal(format!(
            "role {:?} may not give the admin role: only admin may",
            mine.id
        )));
    }
    let Some(theirs) = inventory.role(role) else {
        return Ok(()); // an undeclared role is refused by the caller, naming the field
    };
    let mut more: Vec<String> = theirs
        .purposes
        .iter()
        .filter(|p| !mine.purposes.contains(p))
        .map(|p| format!("purpose {p}"))
        .collect();
    more.extend(
        theirs
            .may
            .iter()
            .filter(|p| !mine.may.contains(p))
            .map(|p| p.as_str().to_owned()),
    );
    if theirs.may_write && !mine.may_write {
        more.push("may_write".to_owned());
    }
    if more.is_empty() {
        Ok(())
    } else {
        Err(Refusal(format!(
            "role {:?} may not give role {:?}, which may do more than it: {}",
            mine.id,
            theirs.id,
            more.join(", ")
        )))
    }
}

fn role_may(r: &Role, act: &Act<'_>) -> Result<(), Refusal> {
    let needs_write = || {
        if r.may_write {
            Ok(())
        } else {
            Err(Refusal(format!("role {:?} may not write records", r.id)))
        }
    };
    match act {
        Act::Read { purpose, .. } => {
            if r.purposes.contains(&purpose.id) {
                Ok(())
            } else {
                Err(Refusal(format!(
                    "role {:?} may not use purpose {:?}",
                    r.id, purpose.id
                )))
            }
        }
        Act::WriteRecords | Act::Rectify { .. } | Act::MintSiteToken => needs_write(),
        // Carrying out a restriction, objection or opt-out records it in the ledger.
        Act::RecordChoice { .. } | Act::ReadLedger { .. } => {
            needs_write().or_else(|e| granted(r, act, &[Permission::HandleRequests]).map_err(|_| e))
        }
        // The application files requests on a customer's behalf and follows them.
        Act::FileRequest { .. } => granted_or_write(r, act, &[]),
        Act::ReadRequests { .. } => granted_or_write(
            r,
            act,
            &[Permission::ReadRequests, Permission::HandleRequests],
        ),
        Act::HandleRequests => granted(r, act, &[Permission::HandleRequests]),
        // Approving an erasure request erases, and its certificate is the answer; an
        // access request is answered with the export.
        Act::EraseSubject { .. } | Act::ExportSubject { .. } => {
            granted(r, act, &[Permission::HandleRequests])
        }
        Act::ReadErasures { .. } => granted(
            r,
            act,
            &[Permission::ReadRequests, Permission::HandleRequests],
        ),
        Act::ReadAudit => granted(r, act, &[Permission::ReadAudit]),
        Act::ReadReports => granted(r, act, &[Permission::ReadReports]),
        Act::RunRetention => granted(r, act, &[Permission::RunRetention]),
        Act::ManageHolds => granted(r, act, &[Permission::ManageHolds]),
        Act::ManageApiKeys => granted(r, act, &[Permission::ManageApiKeys]),
        Act::ManageOperators => granted(r, act, &[Permission::ManageOperators]),
    }
}

/// Allowed when the role holds any of `any`; otherwise a refusal naming what it needs.
fn granted(r: &Role, act: &Act<'_>, any: &[Permission]) -> Result<(), Refusal> {
    if any.iter().any(|p| r.may.contains(p)) {
        return Ok(());
    }
    let names: Vec<&str> = any.iter().map(|p| p.as_str()).collect();
    Err(Refusal(format!(
        "role {:?} may not {}: it needs {}",
        r.id,
        act.describe(),
        names.join(" or ")
    )))
}

/// As [`granted`], with `may_write` as one more way in.
fn granted_or_write(r: &Role, act: &Act<'_>, any: &[Permission]) -> Result<(), Refusal> {
    if r.may_write || any.iter().any(|p| r.may.contains(p)) {
        return Ok(());
    }
    let mut names: Vec<&str> = any.iter().map(|p| p.as_str()).collect();
    names.push("may_write");
    Err(Refusal(format!(
        "role {:?} may not {}: it needs {}",
        r.id,
        act.describe(),
        names.join(" or ")
    )))
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.actor())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::EXAMPLE;

    fn inv() -> Inventory {
        Inventory::from_toml(EXAMPLE).unwrap()
    }

    /// Every act, with a fixed subject where the act names one.
    fn acts<'a>(inv: &'a Inventory, subject: SubjectId) -> Vec<(&'static str, Act<'a>)> {
        let mut acts = vec![
            ("write", Act::WriteRecords),
            ("rectify", Act::Rectify { subject }),
            ("choice", Act::RecordChoice { subject }),
            (
                "ledger",
                Act::ReadLedger {
                    subject: Some(subject),
                },
            ),
            ("site_token", Act::MintSiteToken),
            ("audit", Act::ReadAudit),
            ("retention", Act::RunRetention),
            ("holds", Act::ManageHolds),
            ("apikeys", Act::ManageApiKeys),
            ("operators", Act::ManageOperators),
            ("reports", Act::ReadReports),
            ("erase", Act::EraseSubject { subject }),
            (
                "certificate",
                Act::ReadErasures {
                    subject: Some(subject),
                },
            ),
            ("erasures", Act::ReadErasures { subject: None }),
            ("file_request", Act::FileRequest { subject }),
            (
                "read_requests",
                Act::ReadRequests {
                    subject: Some(subject),
                },
            ),
            ("all_requests", Act::ReadRequests { subject: None }),
            ("handle_requests", Act::HandleRequests),
            ("export", Act::ExportSubject { subject }),
        ];
        for p in &inv.purposes {
            let name: &'static str = Box::leak(format!("read:{}", p.id).into_boxed_str());
            acts.push((
                name,
                Act::Read {
                    purpose: p,
                    subject: Some(subject),
                },
            ));
        }
        acts
    }

    fn allowed(p: &Principal, inv: &Inventory, subject: SubjectId) -> Vec<&'static str> {
        acts(inv, subject)
            .into_iter()
            .filter(|(_, a)| authorize(p, a, inv).is_ok())
            .map(|(n, _)| n)
            .collect()
    }

    fn check(p: Principal, expect: &[&str]) {
        let inv = inv();
        let s = SubjectId::random();
        assert_eq!(allowed(&p, &inv, s), expect, "{p}");
    }

    #[test]
    fn what_each_caller_may_do_in_the_example() {
        let everything = [
            "write",
            "rectify",
            "choice",
            "ledger",
            "site_token",
            "audit",
            "retention",
            "holds",
            "apikeys",
            "operators",
            "reports",
            "erase",
            "certificate",
            "erasures",
            "file_request",
            "read_requests",
            "all_requests",
            "handle_requests",
            "export",
            "read:billing",
            "read:support",
            "read:marketing",
            "read:analytics",
            "read:advertising",
        ];
        check(Principal::Cli, &everything);
        check(Principal::api_key("root", "admin"), &everything);
        check(
            Principal::api_key("helpdesk", "support_agent"),
            &["read:support"],
        );
        check(
            Principal::api_key("billing", "billing_service"),
            &["read:billing"],
        );
        check(Principal::api_key("m", "marketer"), &["read:marketing"]);
        check(
            Principal::Operator {
                id: "op".into(),
                role: "support_agent".into(),
            },
            &["read:support"],
        );
        check(Principal::System(Job::Retention), &["retention"]);
    }

    #[test]
    fn operator_roles_do_the_duties_they_are_given() {
        let op = |role: &str| Principal::Operator {
            id: "op".into(),
            role: role.into(),
        };
        check(
            op("privacy_officer"),
            &[
                "choice",
                "ledger",
                "audit",
                "retention",
                "holds",
                "operators",
                "reports",
                "erase",
                "certificate",
                "erasures",
                "read_requests",
                "all_requests",
                "handle_requests",
                "export",
            ],
        );
        check(
            op("support"),
            &[
                "certificate",
                "erasures",
                "read_requests",
                "all_requests",
                "read:support",
            ],
        );
        check(
            op("auditor"),
            &[
                "audit",
                "reports",
                "certificate",
                "erasures",
                "read_requests",
                "all_requests",
            ],
        );
        let inv = inv();
        let e = authorize(&op("support"), &Act::HandleRequests, &inv).unwrap_err();
        assert_eq!(
            e.message(),
            "role \"support\" may not handle data-subject requests: it needs handle_requests"
        );
        let e = authorize(&op("auditor"), &Act::ManageOperators, &inv).unwrap_err();
        assert_eq!(
            e.message(),
            "role \"auditor\" may not manage operators: it needs manage_operators"
        );
    }

    #[test]
    fn managing_operators_or_keys_gives_no_more_than_one_holds() {
        let inv = inv();
        let officer = Principal::Operator {
            id: "op".into(),
            role: "privacy_officer".into(),
        };
        assert!(may_grant(&officer, "auditor", &inv).is_ok());
        assert!(may_grant(&officer, "privacy_officer", &inv).is_ok());
        assert_eq!(
            may_grant(&officer, "admin", &inv).unwrap_err().message(),
            "role \"privacy_officer\" may not give the admin role: only admin may"
        );
        assert_eq!(
            may_grant(&officer, "support", &inv).unwrap_err().message(),
            "role \"privacy_officer\" may not give role \"support\", which may do more than it: purpose support"
        );
        for p in [Principal::Cli, Principal::api_key("root", "admin")] {
            assert!(may_grant(&p, "admin", &inv).is_ok());
        }
        assert!(
            may_grant(
                &Principal::Customer {
                    subject: SubjectId::random()
                },
                "auditor",
                &inv
            )
            .is_err()
        );
    }

    #[test]
    fn an_unknown_permission_is_named_with_the_known_ones() {
        let e = Inventory::from_toml(&EXAMPLE.replacen(
            "may = [\"read_requests\"]",
            "may = [\"read_requests\", \"approve_everything\"]",
            1,
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("roles[4] (support).may: unknown permission \"approve_everything\": one of read_requests, handle_requests"),
            "{e}"
        );
    }

    #[test]
    fn a_role_that_may_write_files_and_reads_requests_but_does_not_handle_them() {
        let inv = Inventory::from_toml(&EXAMPLE.replacen(
            "id = \"support_agent\"\npurposes = [\"support\"]",
            "id = \"support_agent\"\npurposes = [\"support\"]\nmay_write = true",
            1,
        ))
        .unwrap();
        let s = SubjectId::random();
        let agent = Principal::api_key("helpdesk", "support_agent");
        assert_eq!(
            allowed(&agent, &inv, s),
            [
                "write",
                "rectify",
                "choice",
                "ledger",
                "site_token",
                "file_request",
                "read_requests",
                "all_requests",
                "read:support"
            ]
        );
        let e = authorize(&agent, &Act::HandleRequests, &inv).unwrap_err();
        assert_eq!(
            e.message(),
            "role \"support_agent\" may not handle data-subject requests: it needs handle_requests"
        );
        let without = Principal::api_key("m", "marketer");
        let e = authorize(&without, &Act::FileRequest { subject: s }, &inv).unwrap_err();
        assert_eq!(
            e.message(),
            "role \"marketer\" may not file data-subject requests: it needs may_write"
        );
    }

    #[test]
    fn a_customer_acts_on_their_own_subject_only() {
        let inv = inv();
        let me = SubjectId::random();
        let other = SubjectId::random();
        let p = Principal::Customer { subject: me };
        assert_eq!(
            allowed(&p, &inv, me),
            [
                "rectify",
                "choice",
                "ledger",
                "certificate",
                "file_request",
                "read_requests",
                "export"
            ]
        );
        assert!(allowed(&p, &inv, other).is_empty());
        for act in [
            Act::RecordChoice { subject: other },
            Act::ExportSubject { subject: other },
        ] {
            let e = authorize(&p, &act, &inv).unwrap_err();
            assert_eq!(e.message(), "a customer may act on their own data only");
        }
        // Without a subject named up front, a customer is refused: nothing can be checked.
        assert!(authorize(&p, &Act::ReadLedger { subject: None }, &inv).is_err());
        assert!(authorize(&p, &Act::ReadRequests { subject: None }, &inv).is_err());
        let e = authorize(&p, &Act::FileRequest { subject: other }, &inv).unwrap_err();
        assert_eq!(e.message(), "a customer may act on their own data only");
        let e = authorize(&p, &Act::HandleRequests, &inv).unwrap_err();
        assert_eq!(
            e.message(),
            "a customer may not handle data-subject requests here"
        );
    }

    #[test]
    fn only_admin_the_cli_and_the_subject_export_a_subject() {
        let inv = Inventory::from_toml(&EXAMPLE.replacen(
            "id = \"support_agent\"\npurposes = [\"support\"]",
            "id = \"support_agent\"\npurposes = [\"support\"]\nmay_write = true",
            1,
        ))
        .unwrap();
        let s = SubjectId::random();
        let export = Act::ExportSubject { subject: s };
        // A role that writes records still may not hand a customer's whole file out.
        let writer = Principal::api_key("helpdesk", "support_agent");
        assert_eq!(
            authorize(&writer, &export, &inv).unwrap_err().message(),
            "role \"support_agent\" may not export a subject's data: it needs handle_requests"
        );
        assert!(authorize(&Principal::api_key("root", "admin"), &export, &inv).is_ok());
        assert!(authorize(&Principal::Cli, &export, &inv).is_ok());
        assert!(authorize(&Principal::Customer { subject: s }, &export, &inv).is_ok());
        assert!(authorize(&Principal::System(Job::Retention), &export, &inv).is_err());
    }

    #[test]
    fn refusals_name_the_role_and_the_act() {
        let inv = inv();
        let billing = inv.purpose("billing").unwrap();
        let agent = Principal::api_key("helpdesk", "support_agent");
        for (act, says) in [
            (
                Act::Read {
                    purpose: billing,
                    subject: None,
                },
                "role \"support_agent\" may not use purpose \"billing\"",
            ),
            (
                Act::WriteRecords,
                "role \"support_agent\" may not write records",
            ),
            (
                Act::ReadAudit,
                "role \"support_agent\" may not read audit entries: it needs read_audit",
            ),
            (
                Act::RunRetention,
                "role \"support_agent\" may not run retention: it needs run_retention",
            ),
            (
                Act::ExportSubject {
                    subject: SubjectId::random(),
                },
                "role \"support_agent\" may not export a subject's data: it needs handle_requests",
            ),
        ] {
            assert_eq!(authorize(&agent, &act, &inv).unwrap_err().message(), says);
        }
        let gone = Principal::api_key("old", "intern");
        assert_eq!(
            authorize(&gone, &Act::WriteRecords, &inv)
                .unwrap_err()
                .message(),
            "role \"intern\" is no longer declared in the inventory"
        );
    }

    #[test]
    fn actors_as_audit_entries_write_them() {
        let s = SubjectId::random();
        assert_eq!(Principal::api_key("app", "admin").actor(), "apikey:app");
        assert_eq!(Principal::Cli.actor(), "cli");
        assert_eq!(Principal::System(Job::Retention).actor(), "retention");
        assert_eq!(
            Principal::Customer { subject: s }.actor(),
            format!("customer:{s}")
        );
    }
}
