//! Records over HTTP: create, read for a purpose, change, delete and search a collection's
//! records, and read all of one subject's.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_core::personal::{PersonalFields, PersonalValue};
use custos_vault::RecordView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Expected, JsonBody, PathParts, QueryParams, record_id, subject_id};
use crate::state::AppState;

/// The record routes, with their OpenAPI descriptions.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_record, search_records))
        .routes(routes!(get_record, update_record, delete_record))
        .routes(routes!(subject_records))
}

/// A new record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateRecord {
    /// The subject the record belongs to; a new subject is created when absent.
    subject_id: Option<String>,
    /// The record's fields, each declared in the inventory.
    #[schema(value_type = Object)]
    fields: PersonalFields,
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
    fields: PersonalFields,
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
    fields: PersonalFields,
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
        (status = 415, description = "The body is not application/json", body = ErrorBody),
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
        ("id" = uuid::Uuid, Path, description = "The record id"),
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
    params(("collection" = String, Path), ("id" = uuid::Uuid, Path)),
    request_body = UpdateRecord,
    responses(
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
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
    params(("collection" = String, Path), ("id" = uuid::Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The record is under a legal hold", body = ErrorBody),
        (status = 422, description = "Unknown collection", body = ErrorBody),
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
        .search(
            &p,
            &collection,
            purpose.as_deref(),
            &field,
            &PersonalValue::text(value),
        )
        .await?;
    Ok(records(v))
}

/// All of one subject's records, for a purpose.
#[utoipa::path(
    get,
    path = "/v1/subjects/{id}/records",
    params(("id" = uuid::Uuid, Path, description = "The subject id"), ("purpose" = String, Query)),
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
