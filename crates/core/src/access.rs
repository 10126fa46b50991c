//! Access decisions: may this caller see this field for this purpose? A pure function of the
//! caller's role, the purpose, the field's declaration and what is known of the subject.

use serde::{Deserialize, Serialize};

use crate::inventory::{FieldDecl, Purpose, Role};

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// The built-in administrator: may read for any declared purpose.
    Admin,
    /// A role declared in the inventory.
    Role(&'a Role),
}

impl Caller<'_> {
    /// Whether the caller may use `purpose` at all.
    pub fn may_use(&self, purpose: &Purpose) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Role(r) => r.purposes.contains(&purpose.id),
        }
    }

    /// Whether the caller may create, change or delete records.
    pub fn may_write(&self) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Role(r) => r.may_write,
        }
    }
}

/// What the vault knows about the subject when it decides. Consent, objection and
/// restriction join here (the consent issue); the decision already takes it, so adding them
/// changes this type and [`decide`], not its callers.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SubjectState {}

/// Why a field was withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WithholdReason {
    /// The caller's role may not use the purpose.
    RoleNotAllowed,
    /// The field is not declared for the purpose.
    PurposeNotDeclared,
}

impl WithholdReason {
    /// The reason's stable name, as in responses and audit entries.
    pub fn as_str(&self) -> &'static str {
        match self {
            WithholdReason::RoleNotAllowed => "role_not_allowed",
            WithholdReason::PurposeNotDeclared => "purpose_not_declared",
        }
    }
}

/// The outcome for one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Return the value.
    Allow,
    /// Withhold the value, and say why.
    Withhold(WithholdReason),
}

/// Decides whether `caller` may see a field declared as `field` for `purpose`.
pub fn decide(
    caller: Caller<'_>,
    purpose: &Purpose,
    field: &FieldDecl,
    _subject: &SubjectState,
) -> Decision {
    if !caller.may_use(purpose) {
        return Decision::Withhold(WithholdReason::RoleNotAllowed);
    }
    if !field.serves(&purpose.id) {
        return Decision::Withhold(WithholdReason::PurposeNotDeclared);
    }
    Decision::Allow
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{EXAMPLE, Inventory};

    /// Every role x purpose in the example inventory, and the fields it sees. Every other
    /// field must be withheld: with `role_not_allowed` when the role may not use the purpose
    /// (marked `-`), else with `purpose_not_declared`.
    const TABLE: &str = "
        admin           billing    name email phone country address
        admin           support    name email phone notes vip
        admin           marketing  email vip
        admin           analytics  birth_date country
        support_agent   billing    -
        support_agent   support    name email phone notes vip
        support_agent   marketing  -
        support_agent   analytics  -
        billing_service billing    name email phone country address
        billing_service support    -
        billing_service marketing  -
        billing_service analytics  -
        marketer        billing    -
        marketer        support    -
        marketer        marketing  email vip
        marketer        analytics  -
    ";

    #[test]
    fn every_combination_in_the_example_inventory() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let fields = &inv.collections["customers"].fields;
        let mut seen = 0;
        for line in TABLE.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (role, purpose, visible) = (words[0], words[1], &words[2..]);
            let caller = match role {
                "admin" => Caller::Admin,
                r => Caller::Role(inv.role(r).unwrap()),
            };
            let purpose = inv.purpose(purpose).unwrap();
            for (name, decl) in fields {
                let want = if visible == ["-"] {
                    Decision::Withhold(WithholdReason::RoleNotAllowed)
                } else if visible.contains(&name.as_str()) {
                    Decision::Allow
                } else {
                    Decision::Withhold(WithholdReason::PurposeNotDeclared)
                };
                assert_eq!(
                    decide(caller, purpose, decl, &SubjectState::default()),
                    want,
                    "{line}: {name}"
                );
                seen += 1;
            }
        }
        assert_eq!(
            seen,
            (inv.roles.len() + 1) * inv.purposes.len() * fields.len(),
            "the table covers every combination"
        );
    }

    #[test]
    fn only_admin_writes_in_the_example() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        assert!(Caller::Admin.may_write());
        assert!(inv.roles.iter().all(|r| !Caller::Role(r).may_write()));
    }
}
