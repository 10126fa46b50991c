//! Access decisions, field by field: once [`crate::principal::authorize`] has let a caller read
//! for a purpose, may this field be returned for it? A pure function of the purpose, the
//! field's declaration and what is known of the subject.

use serde::{Deserialize, Serialize};

use crate::inventory::{FieldDecl, Purpose};

use crate::consent::ConsentStatus;
pub use crate::consent::SubjectState;
use crate::inventory::LegalBasis;

/// Why a field was withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WithholdReason {
    /// The caller's role may not use the purpose. Reads are now refused whole for this
    /// reason, before any field is decided; the name stays for entries written before.
    RoleNotAllowed,
    /// The field is not declared for the purpose.
    PurposeNotDeclared,
    /// The subject's processing is restricted (GDPR Art. 18): stored, not used.
    Restricted,
    /// The purpose rests on consent, and none holds: never given, or lapsed.
    NoConsent,
    /// The purpose rests on consent, and the subject withdrew it.
    ConsentWithdrawn,
    /// The purpose rests on legitimate interests (or a public task), and the subject objects.
    Objection,
}

impl WithholdReason {
    /// The reason's stable name, as in responses and audit entries.
    pub fn as_str(&self) -> &'static str {
        match self {
            WithholdReason::RoleNotAllowed => "role_not_allowed",
            WithholdReason::PurposeNotDeclared => "purpose_not_declared",
            WithholdReason::Restricted => "restricted",
            WithholdReason::NoConsent => "no_consent",
            WithholdReason::ConsentWithdrawn => "consent_withdrawn",
            WithholdReason::Objection => "objection",
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

/// Decides whether a field declared as `field` may be returned for `purpose`, given what the
/// subject chose, to a caller [`crate::principal::authorize`] let read for that purpose (it
/// checked the role; this is not checked again here). Checked in this order, and the first
/// that fails is the reason: the field is declared for the purpose; the subject is not
/// restricted; the purpose's legal basis holds (active consent for `consent`, no objection
/// for `legitimate_interests` and `public_task`, the two bases GDPR Art. 21 lets a subject
/// object to). The administrator is bound by all three like any role.
pub fn decide(purpose: &Purpose, field: &FieldDecl, subject: &SubjectState) -> Decision {
    if !field.serves(&purpose.id) {
        return Decision::Withhold(WithholdReason::PurposeNotDeclared);
    }
    match basis_holds(purpose, subject) {
        Some(reason) => Decision::Withhold(reason),
        None => Decision::Allow,
    }
}

/// Why the purpose cannot be used for this subject now, if it cannot: the part of the decision
/// that depends on the subject alone.
pub fn basis_holds(purpose: &Purpose, subject: &SubjectState) -> Option<WithholdReason> {
    if subject.restricted {
        return Some(WithholdReason::Restricted);
    }
    let state = subject.purpose(&purpose.id);
    match purpose.legal_basis {
        LegalBasis::Consent => match state.consent {
            ConsentStatus::Granted { .. } => None,
            ConsentStatus::Withdrawn => Some(WithholdReason::ConsentWithdrawn),
            ConsentStatus::NotGiven | ConsentStatus::Lapsed => Some(WithholdReason::NoConsent),
        },
        LegalBasis::LegitimateInterests | LegalBasis::PublicTask if state.objected => {
            Some(WithholdReason::Objection)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::consent::{Choice, ConsentEvent, Evidence, Source};
    use crate::ids::{EventId, SubjectId};
    use crate::inventory::{ADMIN_ROLE, EXAMPLE, Inventory, Period};
    use crate::principal::{Act, Principal, authorize};

    fn event(
        subject: SubjectId,
        choice: Choice,
        purpose: Option<&str>,
        at_ms: i64,
    ) -> ConsentEvent {
        ConsentEvent {
            id: EventId::random(),
            subject_id: subject,
            choice,
            purpose: purpose.map(str::to_owned),
            at_ms,
            expires_ms: None,
            source: Source::Api,
            notice_version: None,
            evidence: Evidence::default(),
            reason: None,
        }
    }

    /// Every role x purpose in the example inventory, and the fields it sees. A read by a role
    /// that may not use the purpose (marked `-`) is refused whole by `authorize`; otherwise
    /// every other field is withheld with `purpose_not_declared`.
    const TABLE: &str = "
        admin           billing    name email phone country address
        admin           support    name email phone notes vip
        admin           marketing  email vip
        admin           analytics  birth_date country
        admin           advertising email
        support_agent   billing    -
        support_agent   support    name email phone notes vip
        support_agent   marketing  -
        support_agent   analytics  -
        support_agent   advertising -
        billing_service billing    name email phone country address
        billing_service support    -
        billing_service marketing  -
        billing_service analytics  -
        billing_service advertising -
        marketer        billing    -
        marketer        support    -
        marketer        marketing  email vip
        marketer        analytics  -
        marketer        advertising -
        privacy_officer billing    -
        privacy_officer support    -
        privacy_officer marketing  -
        privacy_officer analytics  -
        privacy_officer advertising -
        support         billing    -
        support         support    name email phone notes vip
        support         marketing  -
        support         analytics  -
        support         advertising -
        auditor         billing    -
        auditor         support    -
        auditor         marketing  -
        auditor         analytics  -
        auditor         advertising -
    ";

    /// A subject who consented to every purpose that asks for it, and objects to nothing.
    fn consented_to_all(inv: &Inventory) -> SubjectState {
        let subject = SubjectId::random();
        let events: Vec<ConsentEvent> = inv
            .purposes
            .iter()
            .filter(|p| p.legal_basis == LegalBasis::Consent)
            .map(|p| event(subject, Choice::Grant, Some(&p.id), 0))
            .collect();
        SubjectState::at(&events, 0, |_| None)
    }

    #[test]
    fn every_combination_in_the_example_inventory() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let fields = &inv.collections["customers"].fields;
        let consented = consented_to_all(&inv);
        let mut seen = 0;
        for line in TABLE.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (role, purpose, visible) = (words[0], words[1], &words[2..]);
            let caller = Principal::api_key("k", role);
            let purpose = inv.purpose(purpose).unwrap();
            let act = Act::Read {
                purpose,
                subject: None,
            };
            let authorized = authorize(&caller, &act, &inv);
            assert_eq!(authorized.is_ok(), visible != ["-"], "{line}");
            for (name, decl) in fields {
                if authorized.is_ok() {
                    let want = if visible.contains(&name.as_str()) {
                        Decision::Allow
                    } else {
                        Decision::Withhold(WithholdReason::PurposeNotDeclared)
                    };
                    assert_eq!(decide(purpose, decl, &consented), want, "{line}: {name}");
                }
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
        let writes = |role: &str| {
            authorize(&Principal::api_key("k", role), &Act::WriteRecords, &inv).is_ok()
        };
        assert!(writes(ADMIN_ROLE));
        assert!(inv.roles.iter().all(|r| !writes(&r.id)));
    }

    /// Every legal basis against every consent state, objection and restriction. Columns:
    /// restricted, objected, consent, then the outcome for a purpose of each basis in the
    /// order consent, contract, legal_obligation, vital_interests, public_task,
    /// legitimate_interests (`ok` = returned, else the reason).
    const BASES: &str = "
        no  no  not_given  no_consent        ok ok ok ok        ok
        no  no  granted    ok                ok ok ok ok        ok
        no  no  lapsed     no_consent        ok ok ok ok        ok
        no  no  withdrawn  consent_withdrawn ok ok ok ok        ok
        no  yes not_given  no_consent        ok ok ok objection objection
        no  yes granted    ok                ok ok ok objection objection
        no  yes lapsed     no_consent        ok ok ok objection objection
        no  yes withdrawn  consent_withdrawn ok ok ok objection objection
        yes no  not_given  restricted restricted restricted restricted restricted restricted
        yes no  granted    restricted restricted restricted restricted restricted restricted
        yes no  lapsed     restricted restricted restricted restricted restricted restricted
        yes no  withdrawn  restricted restricted restricted restricted restricted restricted
        yes yes not_given  restricted restricted restricted restricted restricted restricted
        yes yes granted    restricted restricted restricted restricted restricted restricted
        yes yes lapsed     restricted restricted restricted restricted restricted restricted
        yes yes withdrawn  restricted restricted restricted restricted restricted restricted
    ";

    #[test]
    fn every_basis_consent_objection_and_restriction() {
        const ORDER: [&str; 6] = [
            "consent",
            "contract",
            "legal_obligation",
            "vital_interests",
            "public_task",
            "legitimate_interests",
        ];
        let mut seen = std::collections::BTreeSet::new();
        for line in BASES.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let w: Vec<&str> = line.split_whitespace().collect();
            let (restricted, objected, consent, outcomes) = (w[0], w[1], w[2], &w[3..]);
            assert_eq!(outcomes.len(), ORDER.len(), "{line}");
            for (basis, want) in ORDER.iter().zip(outcomes) {
                // The state is built the way the vault builds it: from ledger events.
                let subject = SubjectId::random();
                let p = Some("p");
                let mut events = Vec::new();
                match consent {
                    "not_given" => {}
                    "granted" => events.push(event(subject, Choice::Grant, p, 0)),
                    "lapsed" => {
                        let mut e = event(subject, Choice::Grant, p, 0);
                        e.expires_ms = Some(5);
                        events.push(e);
                    }
                    "withdrawn" => {
                        events.push(event(subject, Choice::Grant, p, 0));
                        events.push(event(subject, Choice::Withdraw, p, 1));
                    }
                    other => panic!("{other}"),
                }
                if objected == "yes" {
                    events.push(event(subject, Choice::Object, p, 2));
                }
                if restricted == "yes" {
                    events.push(event(subject, Choice::Restrict, None, 3));
                }
                let state = SubjectState::at(&events, 10, |_| None);
                let purpose = Purpose {
                    id: "p".into(),
                    description: "a purpose".into(),
                    legal_basis: basis.parse().unwrap(),
                    recipients: vec![],
                    consent_lapses_after: None,
                    sale_or_sharing: false,
                };
                let got = match basis_holds(&purpose, &state) {
                    None => "ok",
                    Some(r) => r.as_str(),
                };
                assert_eq!(got, *want, "{line}: {basis}");
                seen.insert((restricted, objected, consent, *basis));
            }
        }
        assert_eq!(
            seen.len(),
            2 * 2 * 4 * 6,
            "the table covers every combination"
        );
    }

    #[test]
    fn a_field_needs_every_check_to_pass() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let email = &inv.collections["customers"].fields["email"];
        let marketing = inv.purpose("marketing").unwrap();
        let subject = SubjectId::random();
        let granted = SubjectState::at(
            &[event(subject, Choice::Grant, Some("marketing"), 0)],
            0,
            |_| None,
        );
        let read = Act::Read {
            purpose: marketing,
            subject: Some(subject),
        };
        assert!(authorize(&Principal::api_key("m", "marketer"), &read, &inv).is_ok());
        assert_eq!(decide(marketing, email, &granted), Decision::Allow);
        // The role check comes first, for the whole read: a support agent learns nothing of
        // the subject's choices.
        let agent = Principal::api_key("helpdesk", "support_agent");
        assert!(authorize(&agent, &read, &inv).is_err());
        // The administrator is bound by the subject's choices like anyone.
        assert!(authorize(&Principal::api_key("root", ADMIN_ROLE), &read, &inv).is_ok());
        assert_eq!(
            decide(marketing, email, &SubjectState::default()),
            Decision::Withhold(WithholdReason::NoConsent)
        );
    }

    proptest! {
        /// Whatever the sequence of grants and withdrawals, and whenever the read: the email
        /// is returned for marketing only if the last event recorded by then is a grant that
        /// has not lapsed. In particular nothing is returned after the last withdrawal.
        #[test]
        fn no_read_after_the_last_withdrawal(
            ops in proptest::collection::vec((any::<bool>(), 0i64..40_000_000_000), 1..24),
            probe in 0i64..1_000_000_000_000,
            lapses in any::<bool>(),
        ) {
            let inv = Inventory::from_toml(EXAMPLE).unwrap();
            let email = &inv.collections["customers"].fields["email"];
            let marketing = inv.purpose("marketing").unwrap();
            let lapse: Option<Period> = lapses.then(|| "13m".parse().unwrap());
            let subject = SubjectId::random();
            let base = 1_700_000_000_000i64;
            let mut at = base;
            let mut events = Vec::new();
            for (grant, gap) in &ops {
                at += gap;
                let choice = if *grant { Choice::Grant } else { Choice::Withdraw };
                events.push(event(subject, choice, Some("marketing"), at));
            }
            // Probe at every event's instant and at one more anywhere in the range.
            let mut probes: Vec<i64> = events.iter().map(|e| e.at_ms).collect();
            probes.push(base + probe);
            for now in probes {
                let state = SubjectState::at(&events, now, |_| lapse);
                let allowed = decide(marketing, email, &state) == Decision::Allow;
                let last = events.iter().rfind(|e| e.at_ms <= now);
                let should = match last {
                    Some(e) if e.choice == Choice::Grant => {
                        lapse.is_none_or(|l| now < l.after(e.at_ms).unwrap())
                    }
                    _ => false,
                };
                prop_assert_eq!(allowed, should, "at {}", now);
                if let Some(w) = events.iter().rposition(|e| e.choice == Choice::Withdraw)
                    && !events[w..].iter().any(|e| e.choice == Choice::Grant)
                    && now >= events[w].at_ms
                {
                    prop_assert!(!allowed, "a read after the last withdrawal");
                }
            }
        }
    }
}
