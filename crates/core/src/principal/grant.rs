//! Who may give which role: managing operators or API keys never gives more than its holder
//! has.

use super::{Holder, Principal, Refusal, holder};
use crate::inventory::{ADMIN_ROLE, Inventory};

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
