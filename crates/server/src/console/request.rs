//! A request's page: its facts, deadline and history, and the desk's buttons (verify,
//! approve, extend or reject with a reason, complete) for a role that may handle requests.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use custos_core::ids::RequestId;
use custos_core::principal::{Act, authorize};
use custos_core::rights::{Reason, RequestStatus, Transition};
use custos_core::time::format_time_ms;
use custos_vault::{ReasonView, RequestView};
use serde::Deserialize;

use super::frame;
use super::pages::{RequestPage, StepRow};
use super::web::{Answer, Staff};
use crate::state::AppState;

#[derive(Deserialize)]
pub(super) struct Done {
    done: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ActForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

fn parse_id(id: &str) -> Result<RequestId, Answer> {
    id.parse().map_err(|_| {
        Answer::message(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such request.",
        )
    })
}

/// The buttons a request in `status` offers: (path, label, needs a reason).
fn actions(r: &RequestView) -> Vec<(String, String, bool)> {
    let a = |p: &str, l: &str, reason: bool| (p.to_owned(), l.to_owned(), reason);
    let mut out = Vec::new();
    if r.acknowledge_by.is_some() && r.acknowledged_at.is_none() && !r.status.is_closed() {
        out.push(a("acknowledge", "Acknowledge receipt", false));
    }
    match r.status {
        RequestStatus::Received => {
            out.push(a("verify", "Start verifying identity", false));
            if !r.kind.needs_verification() {
                out.push(a("approve", "Approve", false));
            }
        }
        RequestStatus::Verifying => out.push(a("approve", "Approve (identity verified)", false)),
        RequestStatus::InProgress | RequestStatus::Extended => {
            out.push(a("complete", "Mark completed", false));
        }
        _ => {}
    }
    if !r.status.is_closed() {
        if r.extended_to.is_none() {
            out.push(a("extend", "Extend the deadline", true));
        }
        out.push(a("reject", "Reject", true));
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn reason_text(v: &ReasonView) -> String {
    match v {
        ReasonView::Given(r) => r.as_str().to_owned(),
        ReasonView::Erased => "(erased with the subject)".to_owned(),
    }
}

fn done_message(done: Option<&str>) -> Option<String> {
    done.map(|d| match d {
        "approve" => {
            "Approved and carried out where it can be at once; the history says what was done."
                .to_owned()
        }
        "reject" => "Rejected; the subject is told the reason.".to_owned(),
        "extend" => "Deadline extended; the subject is told the reason.".to_owned(),
        other => format!("Done: {}.", other.replace('_', " ")),
    })
}

/// `GET /console/requests/{id}`.
pub(super) async fn page(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Answer {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(a) => return a,
    };
    let p = staff.session.principal();
    let r = match state.vault.request(&p, id).await {
        Ok(r) => r,
        Err(e) => return e.into(),
    };
    let may_handle = authorize(&p, &Act::HandleRequests, state.vault.inventory()).is_ok();
    let mut reasons = Vec::new();
    if let Some(v) = &r.extension_reason {
        reasons.push(("Why extended".to_owned(), reason_text(v)));
    }
    if let Some(v) = &r.rejection_reason {
        reasons.push(("Why rejected".to_owned(), reason_text(v)));
    }
    Answer::ok(&RequestPage {
        frame: frame(&state, &staff),
        id: r.id.to_string(),
        kind: capitalised(&r.kind.as_str().replace('_', " ")),
        status: r.status.as_str().replace('_', " "),
        subject: r.subject_id.to_string(),
        jurisdiction: r.profile.profile().name.to_owned(),
        received: format_time_ms(r.received_at),
        due: r.due_date.clone(),
        days_left: match (r.closed_at, r.days_left) {
            (Some(at), _) => format!("closed {}", &format_time_ms(at)[..10]),
            (None, Some(d)) => format!("{d} days left"),
            (None, None) => "-".to_owned(),
        },
        overdue: r.overdue,
        reasons,
        history: r
            .history
            .iter()
            .map(|s| StepRow {
                at: format_time_ms(s.at_ms),
                by: s.by.clone(),
                what: match &s.detail {
                    Some(d) => format!("{} ({}): {d}", s.transition, s.status.as_str()),
                    None => format!("{} ({})", s.transition, s.status.as_str()),
                },
            })
            .collect(),
        actions: if may_handle { actions(&r) } else { Vec::new() },
        done: done_message(q.done.as_deref()),
    })
}

/// `POST /console/requests/{id}/{action}`: one step of the desk, as the operator.
pub(super) async fn act(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActForm>,
) -> Answer {
    if let Err(refused) = staff.check_csrf(&state, &form.csrf) {
        return refused;
    }
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(a) => return a,
    };
    let reason = || {
        Reason::parse(&form.reason).map_err(|e| {
            Answer::message(
                StatusCode::BAD_REQUEST,
                "A reason is needed",
                &format!("Nothing was changed: {e}."),
            )
        })
    };
    let t = match action.as_str() {
        "acknowledge" => Transition::Acknowledge,
        "verify" => Transition::Verify,
        "approve" => Transition::Approve,
        "complete" => Transition::Complete,
        "extend" => match reason() {
            Ok(r) => Transition::Extend(r),
            Err(a) => return a,
        },
        "reject" => match reason() {
            Ok(r) => Transition::Reject(r),
            Err(a) => return a,
        },
        _ => {
            return Answer::message(
                StatusCode::NOT_FOUND,
                "No such action",
                "A request is acknowledged, verified, approved, extended, rejected or completed.",
            );
        }
    };
    match state
        .vault
        .transition(&staff.session.principal(), id, t)
        .await
    {
        Ok(_) => Answer::SeeOther(format!("/console/requests/{id}?done={action}")),
        Err(e) => e.into(),
    }
}
