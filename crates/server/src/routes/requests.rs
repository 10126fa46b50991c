//! The request desk over HTTP: file a data-subject request, list and read requests, and move
//! one on (acknowledge, verify, approve, extend, reject, complete).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_core::inventory::Period;
use custos_core::rights::{Channel, Reason, RequestKind, RequestStatus, Transition};
use custos_vault::{NewRequest, Place, RequestFilter, RequestView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Expected, JsonBody, PathParts, QueryParams, request_id, subject_id};
use crate::state::AppState;

/// The request-desk routes, with their OpenAPI descriptions.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(file_request, list_requests))
        .routes(routes!(get_request))
        .routes(routes!(acknowledge))
        .routes(routes!(verify))
        .routes(routes!(approve))
        .routes(routes!(extend))
        .routes(routes!(reject))
        .routes(routes!(complete))
}

/// Where the subject is, when the request says: each part, when given, wins over what the
/// subject's record holds, and the inventory's jurisdiction rules pick the profile.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct JurisdictionBody {
    /// ISO 3166-1 alpha-2, such as `DE`.
    country: Option<String>,
    /// ISO 3166-2, such as `US-CA`.
    region: Option<String>,
}

/// A data-subject request to file.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FileBody {
    /// Whose request it is.
    #[schema(format = "uuid")]
    subject_id: Option<String>,
    /// `access`, `portability`, `rectification`, `erasure`, `restriction`, `objection` or
    /// `opt_out_sale_sharing`.
    kind: Option<String>,
    /// `portal`, `email`, `phone`, `letter` or `api`.
    channel: Option<String>,
    /// When it was received, RFC 3339; now when absent. Never later than now.
    received_at: Option<String>,
    /// Where the subject is, when the request says.
    jurisdiction: Option<JurisdictionBody>,
    /// For an objection: the purposes objected to (absent: every purpose on legitimate
    /// interests or a public task).
    #[serde(default)]
    purposes: Vec<String>,
}

impl Expected for FileBody {
    const EXPECTED: &'static str = "{\"subject_id\": string, \"kind\": string, \"channel\": string, \
        \"received_at\"?: string, \"jurisdiction\"?: {\"country\"?: string, \"region\"?: string}, \
        \"purposes\"?: [string]}";
}

/// Why a request is extended or rejected, in words the subject is told. Staff's words may name
/// a person, so the body has no `Debug`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    /// At most 2,000 characters. Sealed under the subject's data key: erasing the subject
    /// shreds it.
    reason: Option<String>,
}

impl Expected for ReasonBody {
    const EXPECTED: &'static str = "{\"reason\": string}";
}

/// A data-subject request with its deadlines, days left at the vault's clock, reasons (or
/// `{"erased": true}` once the subject's key is gone) and history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
struct Request(RequestView);

/// Requests, in deadline order.
#[derive(Debug, Serialize, ToSchema)]
struct Requests {
    requests: Vec<Request>,
}

/// A required part of a body, or 400 naming it.
fn required(v: Option<String>, field: &str) -> Result<String, ApiError> {
    v.ok_or_else(|| ApiError::bad_request(field, format!("{field} is required")))
}

/// A closed set's name, or 422 naming the field and the names allowed.
fn one_of<T>(s: &str, field: &str) -> Result<T, ApiError>
where
    T: std::str::FromStr<Err = custos_core::rights::ParseNameError>,
{
    s.parse().map_err(|e: custos_core::rights::ParseNameError| {
        ApiError::invalid_field(field, "one_of", &e.to_string())
    })
}

impl FileBody {
    fn into_new(self) -> Result<NewRequest, ApiError> {
        let subject = subject_id(&required(self.subject_id, "subject_id")?, "subject_id")?;
        let kind: RequestKind = one_of(&required(self.kind, "kind")?, "kind")?;
        let channel: Channel = one_of(&required(self.channel, "channel")?, "channel")?;
        let j = self.jurisdiction.unwrap_or_default();
        Ok(NewRequest {
            subject,
            kind,
            channel,
            received_at: self.received_at,
            place: Place {
                country: j.country,
                region: j.region,
            },
            purposes: self.purposes,
        })
    }
}

impl ReasonBody {
    fn into_reason(self) -> Result<Reason, ApiError> {
        let reason = required(self.reason, "reason")?;
        Reason::parse(&reason).map_err(|e| {
            let rule = match e {
                custos_core::rights::ParseReasonError::Empty => "required",
                _ => "too_long",
            };
            ApiError::invalid_field("reason", rule, &e.to_string())
        })
    }
}

/// File a data-subject request (admin, a role with `may_write`): its profile from the
/// subject's jurisdiction, its deadlines from the profile (`due_at`; `acknowledge_by` under
/// CCPA). The request and its audit entry commit together.
#[utoipa::path(
    post,
    path = "/v1/requests",
    request_body = FileBody,
    responses(
        (status = 201, description = "Filed", body = Request),
        (status = 400, description = "Malformed body, or a missing or malformed field: named", body = ErrorBody),
        (status = 401, description = "No or bad API key", body = ErrorBody),
        (status = 403, description = "The role may not file requests", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, description = "The body is not sent as JSON", body = ErrorBody),
        (status = 422, description = "Field and rule named: unknown kind, channel or subject, a kind the profile does not offer, a future received_at, a bad country or region", body = ErrorBody),
    ),
    tag = "requests"
)]
async fn file_request(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(body): JsonBody<FileBody>,
) -> Result<Response, ApiError> {
    let new = body.into_new()?;
    let v = s.vault.file_request(&p, new).await?;
    let location = format!("/v1/requests/{}", v.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(Request(v)),
    )
        .into_response())
}

/// The list's filters, read from the query string, each refused naming the parameter; a
/// filter left empty (`?status=`) filters nothing.
fn filter(mut q: std::collections::BTreeMap<String, String>) -> Result<RequestFilter, ApiError> {
    for name in ["subject_id", "status", "kind", "due_within", "overdue"] {
        if q.get(name).is_some_and(|v| v.is_empty()) {
            q.remove(name);
        }
    }
    let mut f = RequestFilter {
        subject: q
            .remove("subject_id")
            .map(|s| subject_id(&s, "subject_id"))
            .transpose()?,
        status: q
            .remove("status")
            .map(|s| one_of::<RequestStatus>(&s, "status"))
            .transpose()?,
        kind: q
            .remove("kind")
            .map(|s| one_of::<RequestKind>(&s, "kind"))
            .transpose()?,
        ..RequestFilter::default()
    };
    if let Some(d) = q.remove("due_within") {
        let period = d.parse::<Period>().map_err(|_| {
            ApiError::invalid_field(
                "due_within",
                "period",
                "is not a period: write a number and d, w, m or y, such as 7d",
            )
        })?;
        f.due_within = Some(period);
    }
    if let Some(o) = q.remove("overdue") {
        f.overdue = match o.as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(ApiError::invalid_field(
                    "overdue",
                    "bool",
                    "is true or false",
                ));
            }
        };
    }
    if let Some((name, _)) = q.into_iter().next() {
        let field = custos_core::fields::echoable(&name).unwrap_or("query");
        return Err(ApiError::bad_request(
            field,
            "unknown query parameter: filter by subject_id, status, kind, due_within or overdue",
        ));
    }
    Ok(f)
}

/// List data-subject requests in deadline order (at most 1,000), each with its days left and
/// whether it is overdue. `due_within` (`7d`, `2w`, `1m`) and `overdue=true` keep open
/// requests only; `due_within` counts the overdue ones in.
#[utoipa::path(
    get,
    path = "/v1/requests",
    params(
        ("subject_id" = Option<String>, Query, format = "uuid", description = "One subject's requests"),
        ("status" = Option<String>, Query, description = "received, verifying, in_progress, extended, completed or rejected"),
        ("kind" = Option<String>, Query, description = "A request kind"),
        ("due_within" = Option<String>, Query, description = "Open requests due within this period: 7d, 2w, 1m"),
        ("overdue" = Option<bool>, Query, description = "true: open requests past their deadline"),
    ),
    responses(
        (status = 200, body = Requests),
        (status = 400, description = "A malformed subject id, or an unknown parameter: named", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The role may not read requests", body = ErrorBody),
        (status = 422, description = "A bad status, kind, period or overdue: named", body = ErrorBody),
    ),
    tag = "requests"
)]
async fn list_requests(
    State(s): State<AppState>,
    Auth(p): Auth,
    QueryParams(q): QueryParams,
) -> Result<Json<Requests>, ApiError> {
    let views = s.vault.requests(&p, filter(q)?).await?;
    Ok(Json(Requests {
        requests: views.into_iter().map(Request).collect(),
    }))
}

/// One data-subject request, with its history.
#[utoipa::path(
    get,
    path = "/v1/requests/{id}",
    params(("id" = String, Path, format = "uuid", description = "The request id")),
    responses(
        (status = 200, body = Request),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The caller may not read this subject's requests", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    tag = "requests"
)]
async fn get_request(
    State(s): State<AppState>,
    Auth(p): Auth,
    PathParts(id): PathParts<String>,
) -> Result<Json<Request>, ApiError> {
    let id = request_id(&id)?;
    Ok(Json(Request(s.vault.request(&p, id).await?)))
}

/// Applies one transition: the answer every transition route gives.
async fn move_on(
    s: &AppState,
    auth: Auth,
    id: &str,
    t: Transition,
) -> Result<Json<Request>, ApiError> {
    let id = request_id(id)?;
    Ok(Json(Request(s.vault.transition(&auth.0, id, t).await?)))
}

/// Confirm receipt of a request to its subject (admin; CCPA Regulations § 7021(a)).
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/acknowledge",
    params(("id" = String, Path, format = "uuid", description = "The request id")),
    responses(
        (status = 200, body = Request),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The state machine refuses it: `rule` names the rule", body = ErrorBody),
    ),
    tag = "requests"
)]
async fn acknowledge(
    State(s): State<AppState>,
    auth: Auth,
    PathParts(id): PathParts<String>,
) -> Result<Json<Request>, ApiError> {
    move_on(&s, auth, &id, Transition::Acknowledge).await
}

/// Start checking the subject's identity (admin).
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/verify",
    params(("id" = String, Path, format = "uuid", description = "The request id")),
    responses(
        (status = 200, body = Request),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The state machine refuses it: `rule` names the rule", body = ErrorBody),
    ),
    tag = "requests"
)]
async fn verify(
    State(s): State<AppState>,
    auth: Auth,
    PathParts(id): PathParts<String>,
) -> Result<Json<Request>, ApiError> {
    move_on(&s, auth, &id, Transition::Verify).await
}

/// Approve a request (admin): the subject is verified and the work starts. A restriction, an
/// objection or an opt-out of sale or sharing is carried out at once through the consent
/// ledger, each choice audited, and completed; the other kinds stay `in_progress` until
/// completed.
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/approve",
    params(("id" = String, Path, format = "uuid", description = "The request id")),
    responses(
        (status = 200, body = Request),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The state machine refuses it (`not_verified`, `already_approved`, `request_closed`): `rule` names the rule", body = ErrorBody),
    ),
    tag = "requests"
)]
async fn approve(
    State(s): State<AppState>,
    auth: Auth,
    PathParts(id): PathParts<String>,
) -> Result<Json<Request>, ApiError> {
    move_on(&s, auth, &id, Transition::Approve).await
}

/// Extend an approved request's deadline as its profile allows, once, with the reason told to
/// the subject (admin).
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/extend",
    params(("id" = String, Path, format = "uuid", description = "The request id")),
    request_body = ReasonBody,
    responses(
        (status = 200, body = Request),
        (status = 400, description = "A malformed id or body, or no reason", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The state machine refuses it (`already_extended`, `extension_not_allowed`, `extension_too_late`, `not_approved`): `rule` names the rule", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "An empty or overlong reason", body = ErrorBody),
    ),
    tag = "requests"
)]
async fn extend(
    State(s): State<AppState>,
    auth: Auth,
    PathParts(id): PathParts<String>,
    JsonBody(body): JsonBody<ReasonBody>,
) -> Result<Json<Request>, ApiError> {
    request_id(&id)?;
    let reason = body.into_reason()?;
    move_on(&s, auth, &id, Transition::Extend(reason)).await
}

/// Reject an open request, with the reason told to the subject (admin).
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/reject",
    params(("id" = String, Path, format = "uuid", description = "The request id")),
    request_body = ReasonBody,
    responses(
        (status = 200, body = Request),
        (status = 400, description = "A malformed id or body, or no reason", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The state machine refuses it (`request_closed`): `rule` names the rule", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "An empty or overlong reason", body = ErrorBody),
    ),
    tag = "requests"
)]
async fn reject(
    State(s): State<AppState>,
    auth: Auth,
    PathParts(id): PathParts<String>,
    JsonBody(body): JsonBody<ReasonBody>,
) -> Result<Json<Request>, ApiError> {
    request_id(&id)?;
    let reason = body.into_reason()?;
    move_on(&s, auth, &id, Transition::Reject(reason)).await
}

/// Complete an approved request: it is answered (admin).
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/complete",
    params(("id" = String, Path, format = "uuid", description = "The request id")),
    responses(
        (status = 200, body = Request),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The state machine refuses it (`not_approved`, `request_closed`): `rule` names the rule", body = ErrorBody),
    ),
    tag = "requests"
)]
async fn complete(
    State(s): State<AppState>,
    auth: Auth,
    PathParts(id): PathParts<String>,
) -> Result<Json<Request>, ApiError> {
    move_on(&s, auth, &id, Transition::Complete).await
}
