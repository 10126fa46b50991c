//! The audit log over HTTP: one subject's trail, the signed tree head, inclusion proofs, and
//! the log's public key.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, PathParts, QueryParams, subject_id};
use crate::state::AppState;

/// The audit routes, with their OpenAPI descriptions.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit_trail))
        .routes(routes!(audit_head))
        .routes(routes!(audit_proof))
        .routes(routes!(log_key))
}

/// The log's Ed25519 public key, published so that receipts and certificates can be
/// verified against a key obtained apart from them. Public: it proves nothing about anyone.
#[utoipa::path(
    get,
    path = "/.well-known/custos-log-key",
    responses((status = 200, description = "The key, 64 hex digits and a newline", content_type = "text/plain")),
    security(()),
    tag = "audit"
)]
async fn log_key(
    State(s): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        format!("{}\n", s.vault.log_public_key()),
    )
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
