//! Operations: the inventory the vault enforces, health, and Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::Auth;
use crate::state::AppState;

/// The operations routes, with their OpenAPI descriptions.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inventory))
        .routes(routes!(healthz))
        .routes(routes!(metrics))
}

/// The inventory the vault enforces.
#[utoipa::path(
    get,
    path = "/v1/inventory",
    responses((status = 200, description = "The inventory as JSON", body = Object), (status = 401, body = ErrorBody)),
    tag = "inventory"
)]
async fn inventory(State(s): State<AppState>, Auth(_): Auth) -> Json<Value> {
    Json(serde_json::to_value(s.vault.inventory()).unwrap_or(Value::Null))
}

/// Health.
#[derive(Debug, Serialize, ToSchema)]
struct Health {
    status: String,
}

/// Whether the server and its storage answer.
#[utoipa::path(
    get,
    path = "/healthz",
    security(()),
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)),
    tag = "operations"
)]
async fn healthz(State(s): State<AppState>) -> Result<Json<Health>, ApiError> {
    s.vault.ping().await?;
    Ok(Json(Health {
        status: "ok".into(),
    }))
}

/// Metrics in the Prometheus text format. Counts by route template and status; no personal
/// value, id or query string.
#[utoipa::path(
    get,
    path = "/metrics",
    security(()),
    responses((status = 200, description = "Prometheus text", content_type = "text/plain")),
    tag = "operations"
)]
async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let size = s.vault.audit_size().await?;
    let body = s.metrics.render(size);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}
