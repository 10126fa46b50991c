//! Consent across subjects: per purpose, how many have consent usable now (or object now),
//! withdrawals per week as a chart, and Global Privacy Control opt-outs.

use axum::extract::State;
use custos_core::inventory::LegalBasis;
use custos_core::time::format_time_ms;

use super::chart::{Series, bars};
use super::frame;
use super::pages::{ConsentPage, ConsentRow};
use super::web::{Answer, Staff};
use crate::state::AppState;

/// Weeks the chart shows.
const WEEKS: usize = 12;

/// `GET /console/consent`, for `read_reports`.
pub(super) async fn page(State(state): State<AppState>, staff: Staff) -> Answer {
    let p = staff.session.principal();
    let s = match state.vault.consent_summary(&p, WEEKS).await {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    let rows = s
        .purposes
        .iter()
        .map(|c| ConsentRow {
            purpose: c.purpose.clone(),
            basis: c.legal_basis.as_str().replace('_', " "),
            what: match c.legal_basis {
                LegalBasis::Consent => "consent holds".to_owned(),
                LegalBasis::LegitimateInterests | LegalBasis::PublicTask => "object".to_owned(),
                _ => "no choice bears on it".to_owned(),
            },
            count: c.count.map_or_else(|| "-".to_owned(), |n| n.to_string()),
        })
        .collect();
    let weeks: Vec<(String, u32)> = s
        .withdrawals
        .iter()
        .map(|(w, n)| (format_time_ms(*w)[..10].to_owned(), *n))
        .collect();
    let chart = bars(
        "Withdrawals of consent per week",
        &weeks
            .iter()
            .map(|(w, _)| w[5..].to_owned())
            .collect::<Vec<_>>(),
        &[Series {
            name: "withdrawals",
            colour: "#a30000",
            values: weeks.iter().map(|(_, n)| *n).collect(),
        }],
    );
    Answer::ok(&ConsentPage {
        frame: frame(&state, &staff),
        subjects: s.subjects,
        rows,
        chart,
        weeks,
        gpc_withdrawals: s.gpc_withdrawals,
        gpc_subjects: s.gpc_subjects,
    })
}
