//! The routes, each registered together with its OpenAPI description so the two cannot drift.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_core::ids::{RecordId, SubjectId};
use custos_vault::RecordView;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};

#[derive(OpenApi)]
#[openapi(
    info(title = "Custos", description = "Customer-data protection: a privacy vault with purpose-bound access and a verifiable audit log."),
    modifiers(&BearerAuth),
    security(("api_key" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("custos_...")
                    .build(),
            ),
        );
    }
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(create_record, search_records))
        .routes(routes!(get_record, update_record, delete_record))
        .routes(routes!(subject_records))
        .routes(routes!(
            crate::consents::record_consent,
            crate::consents::consents
        ))
        .routes(routes!(crate::consents::receipt))
        .routes(routes!(
            crate::holds::place_hold,
            crate::holds::release_hold
        ))
        .routes(routes!(crate::public::site_token))
        .routes(routes!(crate::public::public_consent))
        .route(
            "/v1/public/consents",
            axum::routing::options(crate::public::public_preflight),
        )
        .route(
            "/.well-known/gpc.json",
            axum::routing::get(crate::public::gpc_json),
        )
        .routes(routes!(crate::notice::privacy_notice))
        .route("/privacy", axum::routing::get(crate::notice::privacy_page))
        .routes(routes!(audit_trail))
        .routes(routes!(audit_head))
        .routes(routes!(audit_proof))
        .routes(routes!(inventory))
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .route("/openapi.json", axum::routing::get(openapi_json))
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi().to_pretty_json().unwrap_or_default(),
    )
        .into_response()
}

/// Path segments, with rejections in our error format.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct PathParts<T>(pub(crate) T);

/// The query string, with rejections in our error format.
pub(crate) struct QueryParams(pub(crate) BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let axum::extract::Query(q) =
            axum::extract::Query::from_request_parts(parts, state).await?;
        Ok(QueryParams(q))
    }
}

/// A JSON body read from bytes: size-limited, and with errors that never quote the body.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned + Expected, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::from_json(&e, T::EXPECTED))
    }
}

/// What a body should look like, for error messages.
pub(crate) trait Expected {
    const EXPECTED: &'static str;
}

pub(crate) fn record_id(s: &str) -> Result<RecordId, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request("id", "the record id is not a UUID"))
}

pub(crate) fn subject_id(s: &str, field: &str) -> Result<SubjectId, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request(field, "the subject id is not a UUID"))
}

/// A new record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateRecord {
    /// The subject the record belongs to; a new subject is created when absent.
    subject_id: Option<String>,
    /// The record's fields, each declared in the inventory.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
}

impl Expected for CreateRecord {
    const EXPECTED: &'static str = "{\"subject_id\"?: string, \"fields\": object}";
}

/// A change to some fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateRecord {
    /// The fields to change; `null` removes an optional field.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
}

impl Expected for UpdateRecord {
    const EXPECTED: &'static str = "{\"fields\": object}";
}

/// A record just created.
#[derive(Debug, Serialize, ToSchema)]
struct Created {
    /// The record's id.
    id: String,
    /// Its subject's id.
    subject_id: String,
}

/// A field withheld from a read.
#[derive(Debug, Serialize, ToSchema)]
struct WithheldField {
    /// The field.
    field: String,
    /// Why: `role_not_allowed`, `purpose_not_declared`, `restricted`, `no_consent`,
    /// `consent_withdrawn` or `objection`.
    reason: String,
}

/// A record as the caller may see it for the purpose asked.
#[derive(Debug, Serialize, ToSchema)]
struct Record {
    id: String,
    subject_id: String,
    collection: String,
    purpose: String,
    /// The fields returned.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    /// The fields held but not returned, with reasons.
    withheld: Vec<WithheldField>,
}

impl From<RecordView> for Record {
    fn from(v: RecordView) -> Self {
        Record {
            id: v.id.to_string(),
            subject_id: v.subject_id.to_string(),
            collection: v.collection,
            purpose: v.purpose,
            fields: v.fields,
            withheld: v
                .withheld
                .into_iter()
                .map(|w| WithheldField {
                    field: w.field,
                    reason: w.reason.to_owned(),
                })
                .collect(),
        }
    }
}

/// Records found.
#[derive(Debug, Serialize, ToSchema)]
struct Records {
    records: Vec<Record>,
}

fn records(views: Vec<RecordView>) -> Json<Records> {
    Json(Records {
        records: views.into_iter().map(Record::from).collect(),
    })
}

/// Create a record.
#[utoipa::path(
    post,
    path = "/v1/collections/{collection}/records",
    params(("collection" = String, Path, description = "A collection declared in the inventory")),
    request_body = CreateRecord,
    responses(
        (status = 201, description = "Created", body = Created),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or bad API key", body = ErrorBody),
        (status = 403, description = "The role may not write", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "The inventory says no: field and rule named", body = ErrorBody),
    ),
    tag = "records"
)]
async fn create_record(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts(collection): PathParts<String>,
    JsonBody(body): JsonBody<CreateRecord>,
) -> Result<Response, ApiError> {
    let subject = body
        .subject_id
        .as_deref()
        .map(|s| subject_id(s, "subject_id"))
        .transpose()?;
    let c = s
        .vault
        .put_record(&p, &collection, subject, &body.fields)
        .await?;
    let location = format!("/v1/collections/{collection}/records/{}", c.id);
    let body = Created {
        id: c.id.to_string(),
        subject_id: c.subject_id.to_string(),
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

/// Read a record for a purpose.
#[utoipa::path(
    get,
    path = "/v1/collections/{collection}/records/{id}",
    params(
        ("collection" = String, Path),
        ("id" = String, Path, description = "The record id"),
        ("purpose" = String, Query, description = "Why the data is read; a purpose declared in the inventory"),
    ),
    responses(
        (status = 200, description = "The fields the caller may see, and the withheld ones with reasons", body = Record),
        (status = 400, description = "No purpose, or a malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The role may not use the purpose", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "Unknown collection or purpose", body = ErrorBody),
    ),
    tag = "records"
)]
async fn get_record(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts((collection, id)): PathParts<(String, String)>,
    QueryParams(q): QueryParams,
) -> Result<Json<Record>, ApiError> {
    let id = record_id(&id)?;
    let v = s
        .vault
        .get_record(&p, &collection, id, q.get("purpose").map(String::as_str))
        .await?;
    Ok(Json(v.into()))
}

/// Change some fields of a record.
#[utoipa::path(
    patch,
    path = "/v1/collections/{collection}/records/{id}",
    params(("collection" = String, Path), ("id" = String, Path)),
    request_body = UpdateRecord,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    tag = "records"
)]
async fn update_record(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts((collection, id)): PathParts<(String, String)>,
    JsonBody(body): JsonBody<UpdateRecord>,
) -> Result<StatusCode, ApiError> {
    let id = record_id(&id)?;
    s.vault
        .update_record(&p, &collection, id, &body.fields)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a record.
#[utoipa::path(
    delete,
    path = "/v1/collections/{collection}/records/{id}",
    params(("collection" = String, Path), ("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    tag = "records"
)]
async fn delete_record(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts((collection, id)): PathParts<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = record_id(&id)?;
    s.vault.delete_record(&p, &collection, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Find records by exact match on one searchable field.
///
/// Give `purpose` and exactly one searchable field as query parameters, for example
/// `?purpose=support&email=ada@example.com`. The value is normalised as stored values are
/// (email case, phone numbers to E.164) and looked up through the field's blind index.
#[utoipa::path(
    get,
    path = "/v1/collections/{collection}/records",
    params(
        ("collection" = String, Path),
        ("purpose" = String, Query),
    ),
    responses(
        (status = 200, body = Records),
        (status = 400, description = "No purpose, or not exactly one field to match", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The role may not use the purpose, or the field is not declared for it", body = ErrorBody),
        (status = 422, description = "Unknown collection or purpose, a field that is not searchable, or an invalid value", body = ErrorBody),
    ),
    tag = "records"
)]
async fn search_records(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts(collection): PathParts<String>,
    QueryParams(mut q): QueryParams,
) -> Result<Json<Records>, ApiError> {
    let purpose = q.remove("purpose");
    let mut terms = q.into_iter();
    let (field, value) = match (terms.next(), terms.next()) {
        (Some(t), None) => t,
        _ => {
            return Err(ApiError::bad_request(
                "query",
                "name exactly one searchable field to match, as in ?purpose=support&email=ada@example.com",
            ));
        }
    };
    let v = s
        .vault
        .search(&p, &collection, purpose.as_deref(), &field, &value)
        .await?;
    Ok(records(v))
}

/// All of one subject's records, for a purpose.
#[utoipa::path(
    get,
    path = "/v1/subjects/{id}/records",
    params(("id" = String, Path, description = "The subject id"), ("purpose" = String, Query)),
    responses(
        (status = 200, body = Records),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    tag = "subjects"
)]
async fn subject_records(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts(id): PathParts<String>,
    QueryParams(q): QueryParams,
) -> Result<Json<Records>, ApiError> {
    let id = subject_id(&id, "id")?;
    let v = s
        .vault
        .subject_records(&p, id, q.get("purpose").map(String::as_str))
        .await?;
    Ok(records(v))
}

/// An audit entry.
#[derive(Debug, Serialize, ToSchema)]
struct AuditItem {
    index: u64,
    /// Who, what, which record and subject, which purpose and fields, and the outcome.
    #[schema(value_type = Object)]
    entry: Value,
}

/// A subject's audit trail.
#[derive(Debug, Serialize, ToSchema)]
struct AuditTrail {
    entries: Vec<AuditItem>,
}

/// The audit trail of one subject (admin only).
#[utoipa::path(
    get,
    path = "/v1/audit",
    params(("subject_id" = String, Query)),
    responses(
        (status = 200, body = AuditTrail),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
    ),
    tag = "audit"
)]
async fn audit_trail(
    State(s): State<AppState>,
    Auth(p): Auth,
    QueryParams(q): QueryParams,
) -> Result<Json<AuditTrail>, ApiError> {
    let id = q
        .get("subject_id")
        .ok_or_else(|| ApiError::bad_request("subject_id", "name the subject: ?subject_id=..."))?;
    let id = subject_id(id, "subject_id")?;
    let entries = s.vault.audit_trail(&p, id).await?;
    let entries = entries
        .into_iter()
        .map(|r| AuditItem {
            index: r.index,
            entry: serde_json::to_value(r.entry).unwrap_or(Value::Null),
        })
        .collect();
    Ok(Json(AuditTrail { entries }))
}

/// A signed tree head.
#[derive(Debug, Serialize, ToSchema)]
struct Head {
    size: u64,
    /// RFC 6962 root hash, hex.
    root_hash: String,
    timestamp_ms: u64,
    /// Ed25519 signature, hex, over `custos-tree-head-v1\n` || size (u64 BE) || timestamp (u64 BE) || root.
    signature: String,
    /// The log's Ed25519 public key, hex.
    public_key: String,
}

/// The newest signed tree head of the audit log.
#[utoipa::path(
    get,
    path = "/v1/audit/head",
    responses((status = 200, body = Head), (status = 401, body = ErrorBody)),
    tag = "audit"
)]
async fn audit_head(State(s): State<AppState>, Auth(_): Auth) -> Result<Json<Head>, ApiError> {
    let h = s.vault.audit_head().await?;
    Ok(Json(Head {
        size: h.size,
        root_hash: h.root_hash,
        timestamp_ms: h.timestamp_ms,
        signature: h.signature,
        public_key: h.public_key,
    }))
}

/// An inclusion proof.
#[derive(Debug, Serialize, ToSchema)]
struct Proof {
    index: u64,
    tree_size: u64,
    root_hash: String,
    /// The entry (the leaf input), as JSON text.
    entry: String,
    leaf_hash: String,
    /// The RFC 6962 audit path, hex, from the leaf up.
    proof: Vec<String>,
}

/// An inclusion proof of one entry against the current signed head (admin only).
#[utoipa::path(
    get,
    path = "/v1/audit/proof/{index}",
    params(("index" = u64, Path)),
    responses(
        (status = 200, body = Proof),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    tag = "audit"
)]
async fn audit_proof(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts(index): PathParts<String>,
) -> Result<Json<Proof>, ApiError> {
    let index: u64 = index
        .parse()
        .map_err(|_| ApiError::bad_request("index", "the index is not a whole number"))?;
    let pr = s.vault.audit_proof(&p, index).await?;
    Ok(Json(Proof {
        index: pr.index,
        tree_size: pr.tree_size,
        root_hash: pr.root_hash,
        entry: pr.entry,
        leaf_hash: pr.leaf_hash,
        proof: pr.proof,
    }))
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
