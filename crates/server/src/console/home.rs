//! The console's home: the open requests by due date, overdue first, with days left; the
//! acknowledgement and opt-out clocks; and a chart of requests per week.

use axum::extract::State;
use custos_core::rights::{RequestKind, RequestStatus};
use custos_core::time::format_time_ms;
use custos_vault::{RequestFilter, RequestView, VaultError};

use super::chart::{Series, bars};
use super::frame;
use super::pages::{Home, QueueRow};
use super::web::{Answer, Staff};
use crate::state::AppState;

/// Weeks the chart shows.
const WEEKS: usize = 12;

fn queue_row(r: &RequestView) -> QueueRow {
    QueueRow {
        id: r.id.to_string(),
        kind: r.kind.as_str().replace('_', " "),
        status: r.status.as_str().replace('_', " "),
        jurisdiction: r.profile.profile().name.to_owned(),
        due: r.due_date.clone(),
        days_left: r
            .days_left
            .map_or_else(|| "-".to_owned(), |d| format!("{d} days")),
        overdue: r.overdue,
    }
}

/// `GET /console`: the queue (for `read_requests`) and the chart (for `read_reports`).
pub(super) async fn page(State(state): State<AppState>, staff: Staff) -> Answer {
    let p = staff.session.principal();
    let filter = RequestFilter {
        open: true,
        ..RequestFilter::default()
    };
    let all = match state.vault.requests(&p, filter).await {
        Ok(all) => all,
        Err(e) => return e.into(),
    };
    let mut open: Vec<&RequestView> = all.iter().collect();
    // Overdue first, then by deadline.
    open.sort_by_key(|r| (!r.overdue, r.deadline));
    let (chart, chart_table, chart_refused) = match state.vault.requests_per_week(&p, WEEKS).await {
        Ok(weeks) => {
            let labels: Vec<String> = weeks
                .iter()
                .map(|w| format_time_ms(w.week_start_ms)[..10].to_owned())
                .collect();
            let svg = bars(
                "Requests per week",
                &labels.iter().map(|l| l[5..].to_owned()).collect::<Vec<_>>(),
                &[
                    Series {
                        name: "received",
                        colour: "#0b5394",
                        values: weeks.iter().map(|w| w.received).collect(),
                    },
                    Series {
                        name: "completed",
                        colour: "#1d5e20",
                        values: weeks.iter().map(|w| w.completed).collect(),
                    },
                    Series {
                        name: "overdue",
                        colour: "#a30000",
                        values: weeks.iter().map(|w| w.overdue).collect(),
                    },
                ],
            );
            let table = labels
                .into_iter()
                .zip(&weeks)
                .map(|(l, w)| (l, w.received, w.completed, w.overdue))
                .collect();
            (Some(svg), table, None)
        }
        Err(VaultError::Forbidden(why)) => (
            None,
            Vec::new(),
            Some(format!("The weekly chart is not shown: {why}.")),
        ),
        Err(e) => return e.into(),
    };
    Answer::ok(&Home {
        frame: frame(&state, &staff),
        overdue: open.iter().filter(|r| r.overdue).count(),
        acknowledgements_overdue: open.iter().filter(|r| r.acknowledgement_overdue).count(),
        opt_outs_open: open
            .iter()
            .filter(|r| r.kind == RequestKind::OptOutSaleSharing)
            .filter(|r| r.status != RequestStatus::Completed)
            .count(),
        queue: open.into_iter().map(queue_row).collect(),
        chart,
        chart_table,
        chart_refused,
    })
}
