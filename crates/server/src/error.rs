//! One error type for every response: a stable machine code, a message for people, the field
//! at fault, and an exhaustive mapping to HTTP status.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_vault::VaultError;
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable machine-readable code, such as `invalid_field` or `forbidden`.
    code: String,
    /// A sentence for people.
    message: String,
    /// The field or parameter at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub(crate) fn bad_request(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::BAD_REQUEST, "malformed_request", message)
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Reads a JSON body, with errors that say where the body is wrong but never quote it.
    pub(crate) fn from_json(e: &serde_json::Error, expected: &str) -> Self {
        let at = format!("line {} column {}", e.line(), e.column());
        let message = match e.classify() {
            serde_json::error::Category::Data => {
                format!("the body does not have the expected shape at {at}: {expected}")
            }
            serde_json::error::Category::Eof => {
                "the body ends before the JSON value does".to_owned()
            }
            _ => format!("the body is not valid JSON (at {at})"),
        };
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        use StatusCode as S;
        let (status, code, field, message) = match e {
            VaultError::Unauthenticated => (
                S::UNAUTHORIZED,
                "unauthenticated",
                None,
                "a valid API key is required: Authorization: Bearer KEY".to_owned(),
            ),
            VaultError::Forbidden(m) => (S::FORBIDDEN, "forbidden", None, m),
            VaultError::NotFound(what) => {
                (S::NOT_FOUND, "not_found", None, format!("{what} not found"))
            }
            VaultError::BadRequest { field, message } => {
                (S::BAD_REQUEST, "malformed_request", field, message)
            }
            VaultError::Invalid {
                field,
                rule,
                message,
            } => {
                let code = match rule.as_str() {
                    "unknown_collection" => "unknown_collection",
                    "unknown_purpose" => "unknown_purpose",
                    "undeclared_field" => "undeclared_field",
                    "unknown_subject" => "unknown_subject",
                    _ => "invalid_field",
                };
                let message = format!("{message} (rule: {rule})");
                (S::UNPROCESSABLE_ENTITY, code, field, message)
            }
            VaultError::Conflict(m) => (S::CONFLICT, "conflict", None, m),
            VaultError::Unavailable(m) => {
                tracing::warn!(error = %m, "storage unavailable");
                (
                    S::SERVICE_UNAVAILABLE,
                    "unavailable",
                    None,
                    "the vault's storage is unavailable; try again shortly".to_owned(),
                )
            }
            other => {
                // The detail goes to the log; the body says nothing of internals.
                tracing::error!(error = %other, "request failed");
                (
                    S::INTERNAL_SERVER_ERROR,
                    "internal",
                    None,
                    "an internal error occurred".to_owned(),
                )
            }
        };
        Self {
            status,
            code,
            message,
            field,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthenticated = self.status == StatusCode::UNAUTHORIZED;
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if unauthenticated {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"custos\""),
            );
        }
        resp
    }
}
