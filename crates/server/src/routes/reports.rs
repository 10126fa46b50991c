//! Records a regulator asks for: the record of processing activities (GDPR Art. 30(1)) as
//! JSON, printable HTML or CSV, generated from the inventory and the configuration.

use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use custos_core::accountability::AccountabilityReport;
use custos_core::ropa::Ropa;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, QueryParams};
use crate::state::AppState;

/// The report routes, with their OpenAPI descriptions.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ropa))
}

#[derive(Template)]
#[template(path = "reports/ropa.html")]
struct RopaPage<'a> {
    r: &'a Ropa,
}

#[derive(Template)]
#[template(path = "reports/accountability.html")]
struct AccountabilityPage<'a> {
    r: &'a AccountabilityReport,
    org: &'a str,
    /// (purpose, reads, bar width out of 380).
    purposes: Vec<(String, u64, u64)>,
}

/// The access and accountability report as a self-contained, printable HTML page, its
/// reads per purpose drawn as bars.
pub fn accountability_html(r: &AccountabilityReport, org: &str) -> String {
    let max = r
        .reads_by_purpose
        .values()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let purposes = r
        .reads_by_purpose
        .iter()
        .map(|(p, n)| (p.clone(), *n, n * 380 / max))
        .collect();
    AccountabilityPage { r, org, purposes }
        .render()
        .unwrap_or_default()
}

/// The record of processing activities as a self-contained, printable HTML page.
pub fn ropa_html(r: &Ropa) -> String {
    RopaPage { r }.render().unwrap_or_default()
}

/// The record of processing activities (GDPR Art. 30(1)): per purpose, the categories of
/// subjects and data, recipients and their countries, transfers outside the EEA with their
/// safeguard, the time limits for erasure; and the security measures Custos applies, from
/// its configuration. For keys and operators with `read_reports`.
#[utoipa::path(
    get,
    path = "/v1/reports/ropa",
    params(("format" = Option<String>, Query, description = "json (the default), html or csv")),
    responses(
        (status = 200, description = "The record", body = Object),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Without read_reports", body = ErrorBody),
    ),
    tag = "reports"
)]
async fn ropa(
    State(s): State<AppState>,
    Auth(p): Auth,
    QueryParams(q): QueryParams,
) -> Result<Response, ApiError> {
    let r = s.vault.ropa(&p, s.tls_version())?;
    let ok = |ty: &'static str, body: String| ([(header::CONTENT_TYPE, ty)], body).into_response();
    match q.get("format").map(String::as_str).unwrap_or("json") {
        "json" => Ok(axum::Json(r).into_response()),
        "html" => Ok((
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'",
                ),
            ],
            ropa_html(&r),
        )
            .into_response()),
        "csv" => Ok(ok("text/csv; charset=utf-8", r.to_csv())),
        _ => Err(ApiError::bad_request(
            "format",
            "format is json, html or csv",
        )),
    }
}
