//! The record of processing activities (GDPR Art. 30(1)) in the console, for roles with
//! `read_reports`: the same record `custos report ropa` and `/v1/reports/ropa` give.

use askama::Template;
use axum::extract::State;
use custos_core::ropa::Ropa;

use super::frame;
use super::pages::Frame;
use super::web::{Answer, Staff};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/ropa.html")]
pub(super) struct RopaPage {
    pub(super) frame: Frame,
    pub(super) r: Ropa,
}

/// `GET /console/ropa`.
pub(super) async fn page(State(state): State<AppState>, staff: Staff) -> Answer {
    match state
        .vault
        .ropa(&staff.session.principal(), state.tls_version())
    {
        Ok(r) => Answer::ok(&RopaPage {
            frame: frame(&state, &staff),
            r,
        }),
        Err(e) => e.into(),
    }
}
