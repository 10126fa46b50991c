//! What websites call: the public consent endpoint (a publishable site key and a subject
//! token, CORS limited to the sites' declared origins, Global Privacy Control honoured), the
//! subject tokens the business's backend mints for its pages, and `/.well-known/gpc.json`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_vault::{PublicChoice, PublicOutcome, SiteToken};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{Auth, PathParts, QueryParams, subject_id};
use crate::state::AppState;

/// The largest body the public endpoint reads.
const PUBLIC_BODY_BYTES: usize = 16 * 1024;

/// The routes websites call, and the site-token route their backends call. The preflight and
/// the GPC resource are not in the OpenAPI document.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(site_token))
        .routes(routes!(public_consent))
        .route(
            "/v1/public/consents",
            axum::routing::options(public_preflight),
        )
        .route("/.well-known/gpc.json", axum::routing::get(gpc_json))
}

/// A choice sent by a site's page.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PublicBody {
    /// The site's publishable key.
    site_key: String,
    /// The token the site's backend was given for this customer.
    subject_token: String,
    /// `grant` or `withdraw`; may be left out when the request only carries `Sec-GPC: 1`.
    choice: Option<String>,
    /// The purpose the choice is about.
    purpose: Option<String>,
    /// The notice version the banner showed.
    notice_version: Option<String>,
}

/// What was recorded.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
struct Outcome(PublicOutcome);

/// A subject token for a site.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
struct Token(SiteToken);

fn header_str(h: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Record a consent choice from a website's page (no API key: a publishable site key and a
/// subject token). A request with `Sec-GPC: 1` opts the customer out of every purpose marked
/// `sale_or_sharing`, whatever else it asks; GPC wins over any grant.
#[utoipa::path(
    post,
    path = "/v1/public/consents",
    security(()),
    request_body = PublicBody,
    params(("Sec-GPC" = Option<String>, Header, description = "1 when the browser sends Global Privacy Control")),
    responses(
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 201, description = "Recorded", body = Outcome),
        (status = 400, body = ErrorBody),
        (status = 403, description = "Not a site's key, an origin the site does not declare, or a token that is not valid", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    tag = "consent"
)]
async fn public_consent(State(s): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let origin = header_str(&parts.headers, header::ORIGIN);
    let cors = origin.clone().filter(|o| s.vault.allowed_origin(o));
    let result = async {
        let bytes = axum::body::to_bytes(body, PUBLIC_BODY_BYTES)
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the body is larger than {PUBLIC_BODY_BYTES} bytes"),
                )
            })?;
        let b: PublicBody = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::from_json(
                &e,
                "{\"site_key\": string, \"subject_token\": string, \"choice\"?: \"grant\"|\"withdraw\", \"purpose\"?: string, \"notice_version\"?: string}",
            )
        })?;
        let gpc = parts
            .headers
            .get("sec-gpc")
            .is_some_and(|v| v.as_bytes().trim_ascii() == b"1");
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let outcome = s
            .vault
            .public_choice(PublicChoice {
                site_key: b.site_key,
                subject_token: b.subject_token,
                choice: b.choice,
                purpose: b.purpose,
                notice_version: b.notice_version,
                origin,
                gpc,
                user_agent: header_str(&parts.headers, header::USER_AGENT),
                ip,
            })
            .await?;
        Ok::<_, ApiError>((StatusCode::CREATED, Json(Outcome(outcome))))
    }
    .await;
    let mut resp = result.into_response();
    if let Some(o) = cors.and_then(|o| HeaderValue::from_str(&o).ok()) {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

/// The CORS preflight of the public endpoint: allowed only for the sites' declared origins.
async fn public_preflight(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(origin) = header_str(&headers, header::ORIGIN).filter(|o| s.vault.allowed_origin(o))
    else {
        return (
            StatusCode::FORBIDDEN,
            [(header::VARY, HeaderValue::from_static("Origin"))],
        )
            .into_response();
    };
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    if let Ok(o) = HeaderValue::from_str(&origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, sec-gpc"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

/// Mint a subject token for one of the inventory's sites: the site's pages embed it, with the
/// site's publishable key, to record this customer's choices for 30 days.
#[utoipa::path(
    post,
    path = "/v1/subjects/{id}/site-token",
    params(("id" = uuid::Uuid, Path), ("site" = String, Query, description = "A site declared under [[sites]]")),
    responses(
        (status = 201, body = Token),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The role may not write", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "Unknown site", body = ErrorBody),
    ),
    tag = "consent"
)]
async fn site_token(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts(id): PathParts<String>,
    QueryParams(q): QueryParams,
) -> Result<Response, ApiError> {
    let id = subject_id(&id, "id")?;
    let site = q
        .get("site")
        .ok_or_else(|| ApiError::bad_request("site", "name the site: ?site=..."))?;
    let token = s.vault.site_token(&p, site, id).await?;
    Ok((StatusCode::CREATED, Json(Token(token))).into_response())
}

/// The Global Privacy Control support resource (GPC specification, section 3.5): this service
/// honours the signal.
async fn gpc_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"gpc\": true}\n",
    )
        .into_response()
}
