//! The access and accountability report for a period: reads per purpose and role, requests by
//! kind with the days they took and whether their deadlines were met, consents given and
//! withdrawn, what retention removed, alerts and incidents; and the metrics the CCPA
//! Regulations § 7102 ask a business to disclose (requests to know, delete, correct and opt
//! out received, complied with in whole or in part, and denied, and the mean and median days
//! to respond). Counts only, never a subject or a value.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::audit::{Action, AuditEntry, Outcome};
use crate::breach::AlertKind;
use crate::consent::Choice;
use crate::rights::{ProfileId, RequestKind, RequestStatus};

const DAY_MS: f64 = 86_400_000.0;

/// One kind of request over the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestStats {
    /// Received in the period.
    pub received: u64,
    /// Of those, completed (in whole or in part).
    pub completed: u64,
    /// Of those, rejected (denied).
    pub denied: u64,
    /// Of those, still open at the report's end.
    pub open: u64,
    /// Closed by their deadline.
    pub on_time: u64,
    /// Closed after it, or open past it.
    pub late: u64,
    /// Mean days from receipt to closing, over those closed.
    pub mean_days: Option<f64>,
    /// Median days, over those closed.
    pub median_days: Option<f64>,
}

/// One request, as the report counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts {
    /// Its kind.
    pub kind: RequestKind,
    /// Its profile.
    pub profile: ProfileId,
    /// Where it stands.
    pub status: RequestStatus,
    /// Received, ms since the epoch.
    pub received_ms: i64,
    /// Due, ms.
    pub due_ms: i64,
    /// Closed, ms.
    pub closed_ms: Option<i64>,
}

/// Consents over the period, for one purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ConsentCounts {
    /// Grants recorded.
    pub given: u64,
    /// Withdrawals recorded.
    pub withdrawn: u64,
}

/// What retention removed in the period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionCounts {
    /// Records deleted.
    pub records_deleted: u64,
    /// Records anonymised.
    pub records_anonymised: u64,
    /// Records some fields of which were erased.
    pub fields_erased: u64,
    /// Closed requests deleted after their keeping time.
    pub requests_deleted: u64,
}

/// The report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AccountabilityReport {
    /// The period's start, RFC 3339.
    pub from: String,
    /// Its end (excluded).
    pub to: String,
    /// Reads that returned data (record reads, search hits), per purpose.
    pub reads_by_purpose: BTreeMap<String, u64>,
    /// The same, per role of the caller (`cli`, `customer` for the portal).
    pub reads_by_role: BTreeMap<String, u64>,
    /// Reads and searches refused.
    pub reads_refused: u64,
    /// Subject exports (access and portability answered).
    pub exports: u64,
    /// Subjects erased.
    pub erasures: u64,
    /// Requests by kind.
    pub requests: BTreeMap<String, RequestStats>,
    /// CCPA § 7102: requests under the CCPA profile, by kind.
    pub ccpa: BTreeMap<String, RequestStats>,
    /// Consents per purpose.
    pub consents: BTreeMap<String, ConsentCounts>,
    /// Retention.
    pub retention: RetentionCounts,
    /// Alerts raised, by kind.
    pub alerts: BTreeMap<String, u64>,
    /// Incidents opened.
    pub incidents_opened: u64,
}

fn stats(list: &[RequestFacts], end_ms: i64) -> RequestStats {
    let mut s = RequestStats::default();
    let mut days: Vec<f64> = Vec::new();
    for r in list {
        s.received += 1;
        match r.status {
            RequestStatus::Completed => s.completed += 1,
            RequestStatus::Rejected => s.denied += 1,
            _ => s.open += 1,
        }
        match r.closed_ms {
            Some(c) => {
                days.push((c - r.received_ms) as f64 / DAY_MS);
                if c <= r.due_ms {
                    s.on_time += 1;
                } else {
                    s.late += 1;
                }
            }
            None if r.due_ms < end_ms => s.late += 1,
            None => {}
        }
    }
    if !days.is_empty() {
        days.sort_by(f64::total_cmp);
        let round = |x: f64| (x * 10.0).round() / 10.0;
        s.mean_days = Some(round(days.iter().sum::<f64>() / days.len() as f64));
        let mid = days.len() / 2;
        s.median_days = Some(round(if days.len().is_multiple_of(2) {
            (days[mid - 1] + days[mid]) / 2.0
        } else {
            days[mid]
        }));
    }
    s
}

/// Adds a period's audit entries and requests up into the report.
pub struct Tally<'a> {
    out: AccountabilityReport,
    role_of: &'a dyn Fn(&str) -> String,
}

impl std::fmt::Debug for Tally<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally")
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

impl<'a> Tally<'a> {
    /// A tally for `from..to`; `role_of` names the role of an entry's actor.
    pub fn new(from: String, to: String, role_of: &'a dyn Fn(&str) -> String) -> Self {
        Tally {
            out: AccountabilityReport {
                from,
                to,
                ..AccountabilityReport::default()
            },
            role_of,
        }
    }

    /// Counts one audit entry.
    pub fn entry(&mut self, e: &AuditEntry) {
        let o = &mut self.out;
        match (e.action, e.outcome) {
            (Action::RecordRead | Action::RecordSearch, Outcome::Ok) => {
                if let Some(p) = &e.purpose {
                    *o.reads_by_purpose.entry(p.clone()).or_insert(0) += 1;
                }
                *o.reads_by_role.entry((self.role_of)(&e.actor)).or_insert(0) += 1;
            }
            (Action::RecordRead | Action::RecordSearch, Outcome::Denied) => o.reads_refused += 1,
            (Action::SubjectExport, Outcome::Ok) => o.exports += 1,
            (Action::SubjectErase, Outcome::Ok) => o.erasures += 1,
            (Action::ConsentRecord, Outcome::Ok) => {
                if let Some(c) = &e.consent {
                    let purpose = c.purpose.clone().unwrap_or_else(|| "(all)".into());
                    let n = o.consents.entry(purpose).or_default();
                    match c.choice {
                        Choice::Grant => n.given += 1,
                        Choice::Withdraw => n.withdrawn += 1,
                        _ => {}
                    }
                }
            }
            (Action::RetentionDelete, _) => o.retention.records_deleted += 1,
            (Action::RetentionAnonymise, _) => o.retention.records_anonymised += 1,
            (Action::RetentionErase, _) => o.retention.fields_erased += 1,
            (Action::RetentionRequestDelete, _) => o.retention.requests_deleted += 1,
            (Action::AlertRaise, _) => {
                let kind = e
                    .detail
                    .as_deref()
                    .and_then(AlertKind::in_raise_detail)
                    .map_or("unknown", AlertKind::as_str);
                *o.alerts.entry(kind.to_owned()).or_insert(0) += 1;
            }
            (Action::IncidentOpen, _) => o.incidents_opened += 1,
            _ => {}
        }
    }

    /// The report, with the requests received in the period; `end_ms` is when open ones
    /// are judged late.
    pub fn finish(mut self, requests: &[RequestFacts], end_ms: i64) -> AccountabilityReport {
        let mut by_kind: BTreeMap<String, Vec<RequestFacts>> = BTreeMap::new();
        let mut ccpa: BTreeMap<String, Vec<RequestFacts>> = BTreeMap::new();
        for r in requests {
            by_kind
                .entry(r.kind.as_str().to_owned())
                .or_default()
                .push(*r);
            if r.profile == ProfileId::Ccpa {
                ccpa.entry(r.kind.as_str().to_owned()).or_default().push(*r);
            }
        }
        self.out.requests = by_kind
            .iter()
            .map(|(k, v)| (k.clone(), stats(v, end_ms)))
            .collect();
        self.out.ccpa = ccpa
            .iter()
            .map(|(k, v)| (k.clone(), stats(v, end_ms)))
            .collect();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = 86_400_000;

    fn req(
        kind: RequestKind,
        profile: ProfileId,
        status: RequestStatus,
        days: Option<i64>,
        due_days: i64,
    ) -> RequestFacts {
        RequestFacts {
            kind,
            profile,
            status,
            received_ms: 0,
            due_ms: due_days * D,
            closed_ms: days.map(|d| d * D),
        }
    }

    #[test]
    fn requests_are_counted_with_days_taken_and_deadlines_met() {
        let role = |a: &str| {
            if a == "apikey:s" {
                "support_agent".to_owned()
            } else {
                a.to_owned()
            }
        };
        let mut t = Tally::new("a".into(), "b".into(), &role);
        let mut e = AuditEntry::new("apikey:s", Action::RecordRead, Outcome::Ok);
        e.purpose = Some("support".into());
        t.entry(&e);
        t.entry(&e);
        e.outcome = Outcome::Denied;
        t.entry(&e);
        let r = t.finish(
            &[
                req(
                    RequestKind::Erasure,
                    ProfileId::Ccpa,
                    RequestStatus::Completed,
                    Some(10),
                    45,
                ),
                req(
                    RequestKind::Erasure,
                    ProfileId::Ccpa,
                    RequestStatus::Completed,
                    Some(50),
                    45,
                ),
                req(
                    RequestKind::Erasure,
                    ProfileId::Gdpr,
                    RequestStatus::Rejected,
                    Some(3),
                    30,
                ),
                req(
                    RequestKind::Access,
                    ProfileId::Gdpr,
                    RequestStatus::Received,
                    None,
                    30,
                ),
            ],
            40 * D,
        );
        assert_eq!(r.reads_by_purpose["support"], 2);
        assert_eq!(r.reads_by_role["support_agent"], 2);
        assert_eq!(r.reads_refused, 1);
        let e = &r.requests["erasure"];
        assert_eq!(
            (e.received, e.completed, e.denied, e.on_time, e.late),
            (3, 2, 1, 2, 1)
        );
        assert_eq!((e.mean_days, e.median_days), (Some(21.0), Some(10.0)));
        let c = &r.ccpa["erasure"];
        assert_eq!((c.received, c.completed, c.denied), (2, 2, 0));
        assert_eq!(c.median_days, Some(30.0));
        let a = &r.requests["access"];
        assert_eq!(
            (a.open, a.late),
            (1, 1),
            "open past its deadline at the report's end"
        );
        assert!(!r.ccpa.contains_key("access"));
    }
}
