//! The customer's choices: consent given or withdrawn per purpose, objections, restriction,
//! the opt-out of sale or sharing, the history of every choice and its signed receipt.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use custos_core::consent::{Choice, ConsentEvent, Source};
use custos_core::ids::EventId;
use custos_core::inventory::LegalBasis;
use custos_core::rights::RequestKind;
use custos_core::time::format_time_ms;
use custos_vault::{NewChoice, VaultError};
use serde::Deserialize;

use super::account::{Done, done_message};
use super::frame;
use super::pages::{ChoicesPage, ConsentLine, EventLine, ObjectionLine};
use super::web::{Page, Signed};
use crate::state::AppState;

fn described(state: &AppState, purpose: &str) -> String {
    state
        .vault
        .notice()
        .purposes
        .iter()
        .find(|p| p.id == purpose)
        .map_or_else(|| purpose.to_owned(), |p| p.description.clone())
}

fn in_words(state: &AppState, e: &ConsentEvent) -> String {
    let what = e
        .purpose
        .as_deref()
        .map(|p| described(state, p))
        .unwrap_or_default();
    match e.choice {
        Choice::Grant => format!("You gave consent: {what}"),
        Choice::Withdraw => format!("You withdrew consent: {what}"),
        Choice::Object => format!("You objected: {what}"),
        Choice::WithdrawObjection => format!("You withdrew your objection: {what}"),
        Choice::Restrict => "You restricted the processing of your data".to_owned(),
        Choice::LiftRestriction => "The restriction of processing was lifted".to_owned(),
    }
}

fn status_words(consent: Option<&str>) -> String {
    match consent {
        Some("granted") => "you have given consent",
        Some("withdrawn") => "you withdrew consent",
        Some("lapsed") => "your consent has lapsed",
        _ => "you have not given consent",
    }
    .to_owned()
}

/// `GET /portal/choices`.
pub(super) async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<Done>,
) -> Page {
    let s = &signed.session;
    let ledger = match state.vault.consents(&s.principal(), s.subject).await {
        Ok(l) => l,
        Err(e) => return e.into(),
    };
    let inv = state.vault.inventory();
    let consents = ledger
        .purposes
        .iter()
        .filter(|p| p.legal_basis == LegalBasis::Consent)
        .map(|p| ConsentLine {
            id: p.purpose.clone(),
            description: described(&state, &p.purpose),
            status: status_words(p.consent),
            given: p.consent == Some("granted"),
        })
        .collect();
    let objections = ledger
        .purposes
        .iter()
        .filter(|p| {
            matches!(
                p.legal_basis,
                LegalBasis::LegitimateInterests | LegalBasis::PublicTask
            )
        })
        .map(|p| ObjectionLine {
            id: p.purpose.clone(),
            description: described(&state, &p.purpose),
            objected: p.objected,
        })
        .collect();
    let history = ledger
        .history
        .iter()
        .map(|e| EventLine {
            at: format_time_ms(e.at_ms).replace('T', " "),
            what: in_words(&state, e),
            receipt_url: format!("/portal/receipts/{}", e.id),
        })
        .collect();
    Page::ok(&ChoicesPage {
        frame: frame(&state, &signed),
        done: done_message(q.done.as_deref()),
        restricted: ledger.restricted,
        consents,
        objections,
        sale_or_sharing: inv.purposes.iter().any(|p| p.sale_or_sharing),
        history,
    })
}

#[derive(Deserialize)]
pub(super) struct ChoiceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    purpose: String,
}

/// `POST /portal/choices`: `action` is `grant` or `withdraw` (a consent-based purpose),
/// `object` (a purpose on legitimate interests), `restrict`, or `opt_out` (of sale and
/// sharing). Objections, restriction and the opt-out are requests of the desk, carried out
/// at once.
pub(super) async fn choose(
    State(state): State<AppState>,
    signed: Signed,
    headers: axum::http::HeaderMap,
    Form(form): Form<ChoiceForm>,
) -> Page {
    if let Err(p) = signed.check_csrf(&state, &form.csrf) {
        return p;
    }
    let s = &signed.session;
    let v = &state.vault;
    let done = match form.action.as_str() {
        "grant" | "withdraw" => {
            let choice = match form.action.as_str() {
                "grant" => Choice::Grant,
                _ => Choice::Withdraw,
            };
            let new = NewChoice {
                choice,
                purpose: Some(form.purpose),
                source: Source::Portal,
                notice_version: None,
                collection_point: Some("privacy portal: your choices".into()),
                user_agent: headers
                    .get(header::USER_AGENT)
                    .and_then(|h| h.to_str().ok())
                    .map(|s| s.chars().take(200).collect()),
                ip: None,
                expires_at: None,
                reason: None,
            };
            v.record_choice(&s.principal(), s.subject, new)
                .await
                .map(drop)
        }
        "object" => v
            .exercise_choice(&s.principal(), RequestKind::Objection, vec![form.purpose])
            .await
            .map(drop),
        "restrict" => v
            .exercise_choice(&s.principal(), RequestKind::Restriction, Vec::new())
            .await
            .map(drop),
        "opt_out" => v
            .exercise_choice(&s.principal(), RequestKind::OptOutSaleSharing, Vec::new())
            .await
            .map(drop),
        _ => Err(VaultError::BadRequest {
            field: Some("action".into()),
            message: "no such choice".into(),
        }),
    };
    match done {
        Ok(()) => Page::SeeOther("/portal/choices?done=choice".into()),
        Err(e) => e.into(),
    }
}

/// `GET /portal/receipts/{event}`: the signed receipt of one of the customer's own choices,
/// as the API serves it (`{"receipt": ..., "jws": ...}`), to keep and check offline.
pub(super) async fn receipt(
    State(state): State<AppState>,
    signed: Signed,
    Path(event): Path<String>,
) -> Response {
    let Ok(id) = event.parse::<EventId>() else {
        return Page::from(VaultError::NotFound("consent event")).into_response();
    };
    match state
        .vault
        .consent_receipt(&signed.session.principal(), id)
        .await
    {
        Ok((receipt, jws)) => {
            let body = serde_json::json!({ "receipt": receipt, "jws": jws });
            (
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"consent-receipt-{id}.json\""),
                    ),
                ],
                serde_json::to_vec_pretty(&body).unwrap_or_default(),
            )
                .into_response()
        }
        Err(e) => Page::from(e).into_response(),
    }
}
