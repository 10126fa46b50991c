//! The whole API as one router: the OpenAPI document's frame and its bearer security scheme,
//! every resource's routes, `/openapi.json`, and the answer for a path that matches none.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, ErrorCode};
use crate::routes::{
    audit, consents, erasures, holds, notice, public, records, reports, requests, subjects, system,
};
use crate::state::AppState;

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

/// Every route of the API, each resource's registered with its OpenAPI description.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(records::routes())
        .merge(reports::routes())
        .merge(consents::routes())
        .merge(subjects::routes())
        .merge(holds::routes())
        .merge(erasures::routes())
        .merge(requests::routes())
        .merge(public::routes())
        .merge(notice::routes())
        .merge(audit::routes())
        .merge(system::routes())
        .route("/openapi.json", axum::routing::get(openapi_json))
        .fallback(not_found)
}

/// The OpenAPI 3.1 document of [`router`].
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = router().split_for_parts().1;
    document_server_errors(&mut doc);
    doc
}

/// Every operation can answer 500 (an internal fault, said in no detail) and 503 (the
/// storage is unavailable, or the request outlived `REQUEST_TIMEOUT`): the document says so
/// once here rather than in every handler's annotation.
fn document_server_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{RefOr, ResponseBuilder};
    let answer = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            "ErrorBody",
                        ))))
                        .build(),
                )
                .build(),
        )
    };
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            let r = &mut op.responses.responses;
            r.entry("500".into())
                .or_insert_with(|| answer("An internal error; the body says nothing of it"));
            r.entry("503".into()).or_insert_with(|| {
                answer("The storage is unavailable, or the request took too long; try again")
            });
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint")
}

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi().to_pretty_json().unwrap_or_default(),
    )
        .into_response()
}
