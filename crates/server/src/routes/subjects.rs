//! Subjects over HTTP: the subject export (GDPR Art. 15 access and Art. 20 portability, CCPA's
//! right to know), as one JSON document or as a zip for the customer.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use custos_vault::ExportFormat;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, PathParts, QueryParams, subject_id};
use crate::state::AppState;

/// The subject routes, with their OpenAPI descriptions.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export_subject))
}

/// Which rendering of the export.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Only its schema is used: the handler reads the parameter as text.
enum Format {
    /// One JSON document (the default).
    Json,
    /// A zip: `README.txt`, `export.json`, one `<collection>.csv` per collection.
    Zip,
}

/// Everything held about the subject: per collection, each record with every field decrypted
/// and, beside each value, its purposes with their legal basis in plain words, its retention
/// and the date it is kept until, its recipients with their countries, and who stored and
/// last changed it; the consent history, oldest first; every read of the subject's data
/// (when, by which key and role, for which purpose, which fields returned and withheld, with
/// its audit index); every other act on it; and the subject's rights.
#[derive(ToSchema)]
#[schema(value_type = Object)]
#[allow(dead_code)] // Only its schema is used: the body is rendered by the vault.
struct SubjectExport(String);

/// A zip archive, for the customer.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Only its schema is used.
struct ExportZip(String);

/// Export everything held about one subject, decrypted, with why each value is held, how
/// long, who receives it and where it came from; the consent history; and who read the
/// subject's data, from the audit log.
///
/// Admin only (a customer signed in to the portal will export their own). Every field is
/// returned whatever its purposes: this is the subject's right of access, not processing for
/// a purpose. The export is audited (`subject.export`) before it is answered; the answer is
/// personal data and is never cached (`Cache-Control: no-store`).
#[utoipa::path(
    get,
    path = "/v1/subjects/{id}/export",
    params(
        ("id" = String, Path, format = Uuid, description = "The subject id"),
        ("format" = inline(Option<Format>), Query, description = "`json` (the default) or `zip`"),
    ),
    responses(
        (status = 200, description = "The export: JSON, or with `?format=zip` a zip sent as an attachment (`custos-export-<id>.zip`)",
            headers(
                ("Cache-Control" = String, description = "`no-store`: the answer is personal data"),
                ("Content-Disposition" = String, description = "For the zip: `attachment; filename=\"custos-export-<id>.zip\"`"),
            ),
            content(
                (SubjectExport = "application/json"),
                (ExportZip = "application/zip"),
            )
        ),
        (status = 400, description = "A malformed subject id (field `id`) or an unknown format (field `format`); nothing is done", body = ErrorBody),
        (status = 401, description = "No API key, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, description = "No such subject", body = ErrorBody),
        (status = 500, description = "An internal error; the body says nothing more", body = ErrorBody),
        (status = 503, description = "Storage is unavailable, or the request took too long: retry", body = ErrorBody),
    ),
    tag = "subjects"
)]
async fn export_subject(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts(id): PathParts<String>,
    QueryParams(q): QueryParams,
) -> Result<Response, ApiError> {
    let id = subject_id(&id, "id")?;
    let format = match q.get("format").map(String::as_str) {
        None => ExportFormat::Json,
        Some(f) => ExportFormat::parse("format", f)?,
    };
    let export = s.vault.export_subject(&p, id).await?;
    let bytes = export.render(format)?;
    let mut resp = Response::new(Body::from(bytes.expose_secret().to_vec()));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if format == ExportFormat::Zip {
        let disposition = format!("attachment; filename=\"custos-export-{id}.zip\"");
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}
