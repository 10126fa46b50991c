//! Legal holds over HTTP: place one on a record, release it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use custos_vault::HoldView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Expected, JsonBody, PathParts, record_id};
use crate::state::AppState;

/// The legal-hold routes, with their OpenAPI descriptions.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(place_hold, release_hold))
}

/// Why a record is held.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    /// The case, claim or request the record is kept for.
    reason: String,
}

impl Expected for HoldBody {
    const EXPECTED: &'static str = "{\"reason\": string}";
}

/// A legal hold.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
struct Hold(HoldView);

/// Place a legal hold on a record (admin): retention leaves it, and it cannot be deleted,
/// until the hold is released. Audited with its reason.
#[utoipa::path(
    post,
    path = "/v1/collections/{collection}/records/{id}/legal-hold",
    params(("collection" = String, Path), ("id" = uuid::Uuid, Path)),
    request_body = HoldBody,
    responses(
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 201, body = Hold),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "A hold already stands", body = ErrorBody),
        (status = 422, description = "No reason, or too long a one", body = ErrorBody),
    ),
    tag = "retention"
)]
async fn place_hold(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts((collection, id)): PathParts<(String, String)>,
    JsonBody(body): JsonBody<HoldBody>,
) -> Result<Response, ApiError> {
    let id = record_id(&id)?;
    let hold = s
        .vault
        .place_hold(&p, &collection, id, &body.reason)
        .await?;
    Ok((StatusCode::CREATED, Json(Hold(hold))).into_response())
}

/// Release a record's legal hold (admin). Audited.
#[utoipa::path(
    delete,
    path = "/v1/collections/{collection}/records/{id}/legal-hold",
    params(("collection" = String, Path), ("id" = uuid::Uuid, Path)),
    responses(
        (status = 204, description = "Released"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, description = "No hold stands on the record", body = ErrorBody),
    ),
    tag = "retention"
)]
async fn release_hold(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts((collection, id)): PathParts<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = record_id(&id)?;
    s.vault.release_hold(&p, &collection, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
