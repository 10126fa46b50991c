//! The audit trail: entries filtered by subject, actor, purpose, action and time, newest
//! first, a page at a time; the signed tree head; and a "verify now" that recomputes the tree
//! and checks every signed head.

use axum::Form;
use axum::extract::{Query, State};
use custos_core::ids::SubjectId;
use custos_core::time::format_time_ms;
use custos_vault::{AuditFilter, FixedClock, action_name};
use serde::Deserialize;

use super::frame;
use super::pages::{AuditPage, EntryRow};
use super::signin::CsrfForm;
use super::web::{Answer, Staff};
use crate::state::AppState;

/// Entries a page shows.
const PAGE: usize = 50;

/// The filter as the form sends it: every field optional, empty meaning any.
#[derive(Deserialize, Default, Clone)]
pub(super) struct Filters {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: Option<u64>,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

impl Filters {
    /// The vault's filter, or the field that cannot be read.
    fn to_filter(&self) -> Result<AuditFilter, String> {
        let subject = match some(&self.subject) {
            Some(s) => Some(
                s.parse::<SubjectId>()
                    .map_err(|_| "Subject must be a subject id (a UUID).".to_owned())?,
            ),
            None => None,
        };
        let instant = |field: &str, v: &str| -> Result<Option<i64>, String> {
            some(v)
                .map(|v| {
                    FixedClock::parse(field, &v)
                        .map(|c| c.0)
                        .map_err(|_| format!("{field} must be a date (YYYY-MM-DD)."))
                })
                .transpose()
        };
        Ok(AuditFilter {
            subject,
            actor: some(&self.actor),
            purpose: some(&self.purpose),
            action: some(&self.action),
            from_ms: instant("From", &self.from)?,
            to_ms: instant("To", &self.to)?,
            before: self.before,
            limit: PAGE,
        })
    }

    /// The query string of the page that begins at `before`.
    fn next(&self, before: u64) -> String {
        let pairs = [
            ("subject", &self.subject),
            ("actor", &self.actor),
            ("purpose", &self.purpose),
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
        ];
        let mut q: Vec<String> = pairs
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v.trim())))
            .collect();
        q.push(format!("before={before}"));
        q.join("&")
    }
}

/// Percent-encodes a query value: letters, digits and `-._~` as they are, the rest as bytes.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn render(
    state: &AppState,
    staff: &Staff,
    f: Filters,
    verified: Option<(bool, String)>,
) -> Answer {
    let p = staff.session.principal();
    let (filter, error) = match f.to_filter() {
        Ok(filter) => (filter, None),
        Err(e) => (
            AuditFilter {
                limit: PAGE,
                ..AuditFilter::default()
            },
            Some(e),
        ),
    };
    let page = match state.vault.audit_entries(&p, &filter).await {
        Ok(page) => page,
        Err(e) => return e.into(),
    };
    let head = match state.vault.audit_head().await {
        Ok(h) => h,
        Err(e) => return e.into(),
    };
    let entries = page
        .entries
        .iter()
        .map(|r| EntryRow {
            index: r.index,
            time: r.entry.time.clone(),
            actor: r.entry.actor.clone(),
            action: action_name(r.entry.action),
            outcome: serde_json::to_value(r.entry.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            subject: r
                .entry
                .subject_id
                .map(|s| s.to_string())
                .unwrap_or_default(),
            purpose: r.entry.purpose.clone().unwrap_or_default(),
            detail: r.entry.detail.clone().unwrap_or_default(),
        })
        .collect();
    Answer::ok(&AuditPage {
        frame: frame(state, staff),
        next: page.next_before.map(|b| f.next(b)),
        subject: f.subject,
        actor: f.actor,
        purpose: f.purpose,
        action: f.action,
        from: f.from,
        to: f.to,
        entries,
        size: page.size,
        head_root: head.root_hash,
        head_time: format_time_ms(i64::try_from(head.timestamp_ms).unwrap_or(i64::MAX)),
        verified,
        error,
    })
}

/// `GET /console/audit`: a page of entries under the filter.
pub(super) async fn page(
    State(state): State<AppState>,
    staff: Staff,
    Query(f): Query<Filters>,
) -> Answer {
    render(&state, &staff, f, None).await
}

/// `POST /console/audit/verify`: recomputes the tree over every entry and checks every
/// signed head, and shows the result above the newest entries.
pub(super) async fn verify(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<CsrfForm>,
) -> Answer {
    if let Err(refused) = staff.check_csrf(&state, &form.csrf) {
        return refused;
    }
    let result = match state.vault.verify_audit(&staff.session.principal()).await {
        Ok(Ok(r)) => (
            true,
            format!(
                "Verified: {} entries, root {}, {} signed heads checked.",
                r.size, r.root_hash, r.heads_checked
            ),
        ),
        Ok(Err(fault)) => (false, format!("The log FAILED verification: {fault}.")),
        Err(e) => return e.into(),
    };
    render(&state, &staff, Filters::default(), Some(result)).await
}
