//! Retention: per collection, what is overdue, due in the next 30 days and held (the report
//! `custos retention report` prints), and the legal holds with their reasons.

use axum::extract::State;

use super::frame;
use super::pages::{HoldRow, RetentionPage, RetentionRow};
use super::web::{Answer, Staff};
use crate::state::AppState;

/// `GET /console/retention`: the report as of now; nothing is deleted.
pub(super) async fn page(State(state): State<AppState>, staff: Staff) -> Answer {
    let p = staff.session.principal();
    let report = match state.vault.retention(&p, true).await {
        Ok(r) => r,
        Err(e) => return e.into(),
    };
    let inv = state.vault.inventory();
    let rows = report
        .collections
        .iter()
        .map(|(name, c)| RetentionRow {
            collection: name.clone(),
            rule: inv
                .collections
                .get(name)
                .map(|k| k.retention.to_string())
                .unwrap_or_default(),
            records: c.records,
            overdue: c.overdue,
            due_soon: c.due_soon,
            held: c.held.len(),
        })
        .collect();
    let holds = report
        .collections
        .values()
        .flat_map(|c| c.held.iter())
        .map(|h| HoldRow {
            record: h.record_id.to_string(),
            collection: h.collection.clone(),
            reason: h.reason.clone(),
            placed_by: h.placed_by.clone(),
            placed_at: h.placed_at.clone(),
            due: h.due.clone().unwrap_or_else(|| "-".to_owned()),
        })
        .collect();
    Answer::ok(&RetentionPage {
        frame: frame(&state, &staff),
        at: report.as_of,
        rows,
        holds,
    })
}
