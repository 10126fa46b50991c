//! The consent ledger over HTTP: record a subject's choice, read the ledger.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use custos_core::consent::{Choice, ConsentEvent, Source};
use custos_core::ids::EventId;
use custos_core::receipt::Receipt;
use custos_vault::{LedgerView, NewChoice};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Expected, JsonBody, PathParts, subject_id};
use crate::state::AppState;

/// The consent routes, with their OpenAPI descriptions.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(record_consent, consents))
        .routes(routes!(receipt))
}

/// What shows the choice was made.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EvidenceBody {
    /// The page, form or campaign the choice was collected on.
    collection_point: Option<String>,
    /// The customer's browser user agent.
    user_agent: Option<String>,
    /// The customer's IP address: kept only as a keyed hash.
    ip_address: Option<String>,
}

/// A choice to record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    /// `grant`, `withdraw`, `object`, `withdraw_objection`, `restrict` or `lift_restriction`.
    choice: String,
    /// The purpose it is about; none for `restrict` and `lift_restriction`.
    purpose: Option<String>,
    /// `web_form`, `api` (the default), `import`, `email_link` or `gpc`.
    source: Option<String>,
    /// The version of the privacy notice the customer was shown.
    notice_version: Option<String>,
    #[serde(default)]
    evidence: EvidenceBody,
    /// For a grant: when it ends by itself, RFC 3339.
    expires_at: Option<String>,
    /// For an objection or a restriction: why.
    reason: Option<String>,
}

impl Expected for ConsentBody {
    const EXPECTED: &'static str = "{\"choice\": string, \"purpose\"?: string, \"source\"?: string, \
        \"notice_version\"?: string, \"evidence\"?: {\"collection_point\"?, \"user_agent\"?, \"ip_address\"?}, \
        \"expires_at\"?: string, \"reason\"?: string}";
}

const CHOICES: [(&str, Choice); 6] = [
    ("grant", Choice::Grant),
    ("withdraw", Choice::Withdraw),
    ("object", Choice::Object),
    ("withdraw_objection", Choice::WithdrawObjection),
    ("restrict", Choice::Restrict),
    ("lift_restriction", Choice::LiftRestriction),
];

impl ConsentBody {
    fn into_choice(self) -> Result<NewChoice, ApiError> {
        let choice = CHOICES
            .iter()
            .find(|(n, _)| *n == self.choice)
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "choice",
                    "one_of",
                    "choose grant, withdraw, object, withdraw_objection, restrict or lift_restriction",
                )
            })?;
        let source = match self.source.as_deref() {
            None => Source::Api,
            Some(s) => Source::ALL
                .iter()
                .find(|(n, _)| *n == s)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "source",
                        "one_of",
                        "choose web_form, api, import, email_link or gpc",
                    )
                })?,
        };
        Ok(NewChoice {
            choice,
            purpose: self.purpose,
            source,
            notice_version: self.notice_version,
            collection_point: self.evidence.collection_point,
            user_agent: self.evidence.user_agent,
            ip: self.evidence.ip_address,
            expires_at: self.expires_at,
            reason: self.reason,
        })
    }
}

/// One event of the consent ledger, as recorded: also the payload of its audit entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
struct Event(ConsentEvent);

/// A subject's consent ledger: each declared purpose's state now, and every event, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
struct Ledger(LedgerView);

/// Record a subject's choice: grant or withdraw consent, object or withdraw an objection, or
/// restrict processing or lift the restriction.
///
/// Withdrawing is one call, as easy as granting. The event is appended to the ledger and to the
/// audit log in one transaction, and is never changed after.
#[utoipa::path(
    post,
    path = "/v1/subjects/{id}/consents",
    params(("id" = uuid::Uuid, Path, description = "The subject id")),
    request_body = ConsentBody,
    responses(
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 201, description = "Recorded", body = Event),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The role may not write", body = ErrorBody),
        (status = 404, description = "No such subject", body = ErrorBody),
        (status = 422, description = "Field and rule named: an unknown purpose, a purpose whose basis is not consent, an expiry in the past", body = ErrorBody),
    ),
    tag = "consent"
)]
async fn record_consent(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts(id): PathParts<String>,
    JsonBody(body): JsonBody<ConsentBody>,
) -> Result<Response, ApiError> {
    let id = subject_id(&id, "id")?;
    let choice = body.into_choice()?;
    let event = s.vault.record_choice(&p, id, choice).await?;
    let receipt = format!("/v1/consents/{}/receipt", event.id);
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, receipt)],
        Json(Event(event)),
    )
        .into_response())
}

/// A subject's consent ledger: the state of every declared purpose now (usable or not, and
/// why), and the full history of choices, oldest first.
#[utoipa::path(
    get,
    path = "/v1/subjects/{id}/consents",
    params(("id" = uuid::Uuid, Path, description = "The subject id")),
    responses(
        (status = 200, body = Ledger),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    tag = "consent"
)]
async fn consents(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts(id): PathParts<String>,
) -> Result<Json<Ledger>, ApiError> {
    let id = subject_id(&id, "id")?;
    Ok(Json(Ledger(s.vault.consents(&p, id).await?)))
}

/// A signed consent receipt.
#[derive(Debug, Serialize, ToSchema)]
struct ReceiptBody {
    /// The receipt: ISO/IEC TS 27560-shaped fields, the event, and the audit inclusion proof of
    /// its entry against a signed tree head.
    #[schema(value_type = Object)]
    receipt: Receipt,
    /// The same receipt as a JWS (compact serialisation, EdDSA with the log's Ed25519 key):
    /// what `custos consent verify-receipt` checks offline.
    jws: String,
}

/// The signed receipt of one consent event, with the audit inclusion proof of its entry.
///
/// Save the response and check it anywhere, without the server:
/// `custos consent verify-receipt receipt.json --public-key KEY`, with the log's key from
/// `GET /v1/audit/head`.
#[utoipa::path(
    get,
    path = "/v1/consents/{event_id}/receipt",
    params(("event_id" = uuid::Uuid, Path, description = "The event id, as returned when it was recorded")),
    responses(
        (status = 200, body = ReceiptBody),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 503, description = "The event is not in a signed tree head yet: retry", body = ErrorBody),
    ),
    tag = "consent"
)]
async fn receipt(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts(id): PathParts<String>,
) -> Result<Json<ReceiptBody>, ApiError> {
    let id: EventId = id
        .parse()
        .map_err(|_| ApiError::bad_request("event_id", "the event id is not a UUID"))?;
    let (receipt, jws) = s.vault.consent_receipt(&p, id).await?;
    Ok(Json(ReceiptBody { receipt, jws }))
}
