//! What a role of the inventory may do: read for its purposes, write with `may_write`, and
//! the duties of privacy staff it is given in `may`.

use super::{Act, Refusal};
use crate::inventory::{Permission, Role};

pub(super) fn role_may(r: &Role, act: &Act<'_>) -> Result<(), Refusal> {
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
        Act::ReadAlerts => granted(
            r,
            act,
            &[Permission::ReadAudit, Permission::HandleIncidents],
        ),
        // Containment revokes keys and disables operators: the incident's, whoever holds them.
        Act::HandleIncidents | Act::Suspend => granted(r, act, &[Permission::HandleIncidents]),
    }
}

/// Allowed when the role holds any of `any`; otherwise a refusal naming what it needs.
fn granted(r: &Role, act: &Act<'_>, any: &[Permission]) -> Result<(), Refusal> {
    needs(r, act, any, false)
}

/// As [`granted`], with `may_write` as one more way in.
fn granted_or_write(r: &Role, act: &Act<'_>, any: &[Permission]) -> Result<(), Refusal> {
    needs(r, act, any, true)
}

fn needs(r: &Role, act: &Act<'_>, any: &[Permission], or_write: bool) -> Result<(), Refusal> {
    if (or_write && r.may_write) || any.iter().any(|p| r.may.contains(p)) {
        return Ok(());
    }
    let mut names: Vec<&str> = any.iter().map(|p| p.as_str()).collect();
    if or_write {
        names.push("may_write");
    }
    Err(Refusal(format!(
        "role {:?} may not {}: it needs {}",
        r.id,
        act.describe(),
        names.join(" or ")
    )))
}
