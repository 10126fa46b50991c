//! The customer's requests: download everything, ask for erasure (confirmed twice), follow
//! their requests and download the erasure certificate.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_core::rights::{RequestKind, RequestStatus};
use custos_vault::{ExportFormat, RequestFilter, VaultError};
use serde::Deserialize;

use super::account::{Done, day, done_message, words};
use super::frame;
use super::pages::{ErasurePage, RequestLine, RequestsPage};
use super::web::{Page, Signed};
use crate::state::AppState;

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub(super) struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /portal/download`: the zip of everything held, as an access request answered at
/// once.
pub(super) async fn download(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(p) = signed.check_csrf(&state, &form.csrf) {
        return p.into_response();
    }
    let s = &signed.session;
    match state
        .vault
        .download_own(&s.principal(), ExportFormat::Zip)
        .await
    {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/zip".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"my-data-{}.zip\"", s.subject),
                ),
            ],
            bytes.expose_secret().to_vec(),
        )
            .into_response(),
        Err(e) => Page::from(e).into_response(),
    }
}

fn erasure_form(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    error: Option<String>,
) -> Page {
    Page::render(
        status,
        &ErasurePage {
            frame: frame(state, signed),
            error,
        },
    )
}

/// `GET /portal/erasure`: what erasure means, and the second confirmation.
pub(super) async fn erasure_page(State(state): State<AppState>, signed: Signed) -> Page {
    erasure_form(&state, &signed, StatusCode::OK, None)
}

/// `POST /portal/erasure`: files the erasure request once the box is ticked.
pub(super) async fn ask_erasure(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<ConfirmForm>,
) -> Page {
    if let Err(p) = signed.check_csrf(&state, &form.csrf) {
        return p;
    }
    if form.confirm != "yes" {
        return erasure_form(
            &state,
            &signed,
            StatusCode::BAD_REQUEST,
            Some("Tick the box to confirm that your data should be erased.".into()),
        );
    }
    match state.vault.ask_erasure(&signed.session.principal()).await {
        Ok(_) => Page::SeeOther("/portal/requests?done=erasure".into()),
        Err(e) => e.into(),
    }
}

/// `GET /portal/requests`: the customer's requests with their status and due date.
pub(super) async fn requests(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<Done>,
) -> Page {
    let s = &signed.session;
    let filter = RequestFilter {
        subject: Some(s.subject),
        ..RequestFilter::default()
    };
    let list = match state.vault.requests(&s.principal(), filter).await {
        Ok(l) => l,
        Err(e) => return e.into(),
    };
    let rows = list
        .iter()
        .map(|r| {
            let date = |ms| day(&custos_core::time::format_time_ms(ms));
            let due = match (r.status, r.closed_at) {
                (RequestStatus::Completed, Some(at)) => format!("answered {}", date(at)),
                (RequestStatus::Rejected, Some(at)) => format!("refused {}", date(at)),
                _ => format!("by {}", date(r.extended_to.unwrap_or(r.due_at))),
            };
            RequestLine {
                kind: words(r.kind.as_str()),
                status: words(r.status.as_str()),
                received: date(r.received_at),
                due,
                certificate: r.kind == RequestKind::Erasure && r.status == RequestStatus::Completed,
            }
        })
        .collect();
    Page::ok(&RequestsPage {
        frame: frame(&state, &signed),
        done: done_message(q.done.as_deref()),
        requests: rows,
    })
}

/// `GET /portal/erasure-certificate`: the signed certificate of the customer's erasure.
pub(super) async fn certificate(State(state): State<AppState>, signed: Signed) -> Response {
    let s = &signed.session;
    match state
        .vault
        .erasure_certificate(&s.principal(), s.subject)
        .await
    {
        Ok(cert) => (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"erasure-certificate-{}.json\"",
                        s.subject
                    ),
                ),
            ],
            serde_json::to_vec_pretty(&cert).unwrap_or_default(),
        )
            .into_response(),
        Err(VaultError::NotFound(_)) => Page::message(
            StatusCode::NOT_FOUND,
            "No certificate yet",
            "Your data has not been erased yet: the certificate is here once it is.",
        )
        .into_response(),
        Err(e) => Page::from(e).into_response(),
    }
}
