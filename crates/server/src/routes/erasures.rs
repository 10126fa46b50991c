//! Erasure over HTTP: erase a subject (admin), fetch the signed certificate again, read the
//! erasure list.

use axum::Json;
use axum::extract::State;
use custos_vault::{ErasureView, SignedCertificate};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, PathParts, subject_id};
use crate::state::AppState;

/// The erasure routes, with their OpenAPI descriptions.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(erase_subject))
        .routes(routes!(erasure_certificate))
        .routes(routes!(erasures))
}

/// An erasure certificate: readable, and as a JWS (EdDSA, the log's key) that
/// `custos receipt verify` checks offline.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
struct CertificateBody(SignedCertificate);

/// The erasure list.
#[derive(Debug, Serialize, ToSchema)]
struct Erasures {
    #[schema(value_type = Vec<Object>)]
    erasures: Vec<ErasureView>,
}

/// Erase a subject (admin): records and blind-index entries deleted and the data key
/// destroyed in one transaction, except what a legal hold or a legal obligation keeps; the
/// answer is the signed certificate, saying what was erased and what kept and why.
#[utoipa::path(
    post,
    path = "/v1/subjects/{id}/erase",
    params(("id" = uuid::Uuid, Path, description = "The subject id (a UUID)")),
    responses(
        (status = 200, body = CertificateBody),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, description = "No such subject, or erased already", body = ErrorBody),
        (status = 409, description = "The subject's records changed meanwhile; try again", body = ErrorBody),
        (status = 503, description = "Erased, but not yet in a signed head: fetch the certificate shortly", body = ErrorBody),
    ),
    tag = "subjects"
)]
async fn erase_subject(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts(id): PathParts<String>,
) -> Result<Json<CertificateBody>, ApiError> {
    let id = subject_id(&id, "id")?;
    Ok(Json(CertificateBody(s.vault.erase_subject(&p, id).await?)))
}

/// The certificate of a subject's erasure, signed again.
#[utoipa::path(
    get,
    path = "/v1/subjects/{id}/erasure-certificate",
    params(("id" = uuid::Uuid, Path, description = "The subject id (a UUID)")),
    responses(
        (status = 200, body = CertificateBody),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Neither admin nor the subject themself", body = ErrorBody),
        (status = 404, description = "The subject was not erased", body = ErrorBody),
        (status = 503, description = "Not yet in a signed head: retry shortly", body = ErrorBody),
    ),
    tag = "subjects"
)]
async fn erasure_certificate(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts(id): PathParts<String>,
) -> Result<Json<CertificateBody>, ApiError> {
    let id = subject_id(&id, "id")?;
    Ok(Json(CertificateBody(
        s.vault.erasure_certificate(&p, id).await?,
    )))
}

/// The erasure list (admin): every subject erased and when, oldest first. A restore
/// must re-apply it (backups and restore come with the key-management work); it holds no
/// personal value.
#[utoipa::path(
    get,
    path = "/v1/erasures",
    responses(
        (status = 200, body = Erasures),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
    ),
    tag = "subjects"
)]
async fn erasures(State(s): State<AppState>, Auth(p): Auth) -> Result<Json<Erasures>, ApiError> {
    Ok(Json(Erasures {
        erasures: s.vault.erasures(&p).await?,
    }))
}
