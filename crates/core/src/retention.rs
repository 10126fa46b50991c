//! Retention arithmetic: when a value or a record is due for deletion under its rule.

use crate::consent::{ConsentStatus, SubjectState};
use crate::inventory::{Anchor, Collection, Inventory, LegalBasis, Retention};

/// What retention is counted from, for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// When the record was created, ms since the epoch.
    pub created_ms: i64,
    /// When it was last changed.
    pub updated_ms: i64,
    /// The subject's last activity: the latest change to any of its records or to its
    /// consent ledger.
    pub last_activity_ms: i64,
}

/// When data held under `rule`, used for `purposes`, is due for deletion: `Some(instant)`, or
/// `None` while nothing makes it due (consent that holds with no end). Consent-bound data is due
/// as soon as none of its consent-based purposes has consent that holds and one of them had
/// it (withdrawn or lapsed: due at `now_ms`); while consent holds until a known lapse, it is
/// due at that lapse.
pub fn due(
    rule: &Retention,
    facts: &Facts,
    purposes: &[&str],
    inventory: &Inventory,
    subject: &SubjectState,
    now_ms: i64,
) -> Option<i64> {
    match rule {
        Retention::Period { period, anchor } => {
            let from = match anchor {
                Anchor::Created => facts.created_ms,
                Anchor::Updated => facts.updated_ms,
                Anchor::LastActivity => facts.last_activity_ms,
            };
            // Past the calendar's end, never: nothing is deleted by an overflow.
            period.after(from)
        }
        Retention::UntilConsentWithdrawn => {
            let mut latest: Option<i64> = None;
            let mut ended = false;
            for p in purposes {
                let Some(purpose) = inventory.purpose(p) else {
                    continue;
                };
                if purpose.legal_basis != LegalBasis::Consent {
                    continue;
                }
                match subject.purpose(p).consent {
                    ConsentStatus::Granted { until_ms: None } => return None,
                    ConsentStatus::Granted {
                        until_ms: Some(until),
                    } => latest = Some(latest.map_or(until, |l| l.max(until))),
                    ConsentStatus::Withdrawn | ConsentStatus::Lapsed => ended = true,
                    ConsentStatus::NotGiven => {}
                }
            }
            match latest {
                Some(until) => Some(until),
                None if ended => Some(now_ms),
                None => None,
            }
        }
    }
}

/// The purposes any field of a collection is used for: what a record as a whole serves.
pub fn collection_purposes(c: &Collection) -> Vec<&str> {
    let mut out: Vec<&str> = c
        .fields
        .values()
        .flat_map(|f| f.purposes.iter().map(String::as_str))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{Choice, ConsentEvent, Evidence, Source};
    use crate::ids::{EventId, SubjectId};
    use crate::inventory::EXAMPLE;

    const DAY: i64 = 86_400_000;
    const JAN_2026: i64 = 1_767_225_600_000;

    fn facts() -> Facts {
        Facts {
            created_ms: JAN_2026,
            updated_ms: JAN_2026 + 10 * DAY,
            last_activity_ms: JAN_2026 + 100 * DAY,
        }
    }

    fn ev(choice: Choice, purpose: &str, at_ms: i64) -> ConsentEvent {
        ConsentEvent {
            id: EventId::random(),
            subject_id: SubjectId::random(),
            choice,
            purpose: Some(purpose.into()),
            at_ms,
            expires_ms: None,
            source: Source::Api,
            notice_version: None,
            evidence: Evidence::default(),
            reason: None,
        }
    }

    #[test]
    fn periods_run_from_their_anchor() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let s = SubjectState::default();
        let at = |r: &str| {
            due(&r.parse().unwrap(), &facts(), &[], &inv, &s, 0).map(crate::time::format_time_ms)
        };
        assert_eq!(at("30d").as_deref(), Some("2026-01-31T00:00:00.000Z"));
        assert_eq!(
            at("7y after created").as_deref(),
            Some("2033-01-01T00:00:00.000Z")
        );
        assert_eq!(
            at("1m after updated").as_deref(),
            Some("2026-02-11T00:00:00.000Z")
        );
        assert_eq!(
            at("3y after last_activity").as_deref(),
            Some("2029-04-11T00:00:00.000Z")
        );
    }

    #[test]
    fn consent_bound_data_is_due_once_no_consent_holds() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let rule = Retention::UntilConsentWithdrawn;
        let now = JAN_2026 + 50 * DAY;
        let at = |events: &[ConsentEvent], purposes: &[&str]| {
            let s = SubjectState::at(events, now, |_| None);
            due(&rule, &facts(), purposes, &inv, &s, now)
        };
        let both = ["support", "marketing", "analytics"];
        assert_eq!(at(&[], &both), None, "never asked: nothing ended");
        let granted = [ev(Choice::Grant, "marketing", JAN_2026)];
        assert_eq!(at(&granted, &both), None, "consent holds");
        let withdrawn = [
            ev(Choice::Grant, "marketing", JAN_2026),
            ev(Choice::Withdraw, "marketing", JAN_2026 + DAY),
        ];
        assert_eq!(at(&withdrawn, &both), Some(now));
        let mut other = withdrawn.to_vec();
        other.push(ev(Choice::Grant, "analytics", JAN_2026 + DAY));
        assert_eq!(at(&other, &both), None, "another consent still holds");
        // A grant with an end is due at that end.
        let mut ending = ev(Choice::Grant, "marketing", JAN_2026);
        ending.expires_ms = Some(now + 5 * DAY);
        assert_eq!(at(&[ending], &both), Some(now + 5 * DAY));
        // Purposes on other bases do not keep consent-bound data.
        assert_eq!(at(&withdrawn, &["support", "marketing"]), Some(now));
    }
}
