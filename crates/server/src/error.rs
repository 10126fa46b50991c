//! One error type for every response: a stable machine code, a message for people, the field
//! at fault, and an exhaustive mapping from code to HTTP status.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_vault::{InvalidKind, VaultError};
use serde::Serialize;
use utoipa::ToSchema;

/// Every machine code the API answers with. Each says its HTTP status; no two codes share a
/// meaning, and a code is never spelled outside [`ErrorCode::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    /// No API key, or one that is unknown or revoked.
    Unauthenticated,
    /// The caller may not do this.
    Forbidden,
    /// No such thing, or no such endpoint.
    NotFound,
    /// A parameter, path or body that is missing or cannot be read.
    MalformedRequest,
    /// A body that is not JSON, or not of the expected shape.
    MalformedJson,
    /// A body that is not sent as JSON.
    UnsupportedMediaType,
    /// A body larger than the endpoint reads.
    PayloadTooLarge,
    /// The collection named is not declared.
    UnknownCollection,
    /// The purpose named is not declared.
    UnknownPurpose,
    /// A field named is not declared for the collection.
    UndeclaredField,
    /// The subject named does not exist.
    UnknownSubject,
    /// A value breaks a rule of its field or parameter.
    InvalidField,
    /// A conflicting change, or a name already taken.
    Conflict,
    /// A data-subject request's state machine refuses the transition; `rule` names the rule.
    TransitionRefused,
    /// Storage is unreachable for now.
    Unavailable,
    /// The request took longer than it may.
    Timeout,
    /// Anything else; the body says nothing more.
    Internal,
}

impl ErrorCode {
    /// The code as it is sent.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MalformedRequest => "malformed_request",
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnknownCollection => "unknown_collection",
            ErrorCode::UnknownPurpose => "unknown_purpose",
            ErrorCode::UndeclaredField => "undeclared_field",
            ErrorCode::UnknownSubject => "unknown_subject",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TransitionRefused => "transition_refused",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status answered with the code.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MalformedRequest | ErrorCode::MalformedJson => StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnknownCollection
            | ErrorCode::UnknownPurpose
            | ErrorCode::UndeclaredField
            | ErrorCode::UnknownSubject
            | ErrorCode::InvalidField => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Conflict | ErrorCode::TransitionRefused => StatusCode::CONFLICT,
            ErrorCode::Unavailable | ErrorCode::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    field: Option<String>,
    rule: Option<&'static str>,
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
    /// For `transition_refused`: the rule the transition would break, such as
    /// `already_extended` or `request_closed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'static str>,
}

impl ApiError {
    /// An answer with `code` (which says the status) and no field named.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            rule: None,
        }
    }

    /// `malformed_request`, naming the parameter at fault.
    pub(crate) fn bad_request(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(ErrorCode::MalformedRequest, message)
        }
    }

    /// `invalid_field`, naming the field and the rule its value breaks.
    pub(crate) fn invalid_field(field: &str, rule: &str, message: &str) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(ErrorCode::InvalidField, with_rule(message, rule))
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.code.status()
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
        Self::new(ErrorCode::MalformedJson, message)
    }
}

/// A refusal's message, naming the rule broken.
fn with_rule(message: &str, rule: &str) -> String {
    format!("{message} (rule: {rule})")
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Unauthenticated => ApiError::new(
                ErrorCode::Unauthenticated,
                "a valid API key is required: Authorization: Bearer KEY",
            ),
            // The same words whatever the reason, as the portal says them.
            VaultError::SigninRefused(_) => ApiError::new(
                ErrorCode::Unauthenticated,
                "the sign-in code did not work: ask for a new one",
            ),
            VaultError::LoginRefused(_) => ApiError::new(
                ErrorCode::Unauthenticated,
                "the address, password or code is wrong",
            ),
            VaultError::Forbidden(m) => ApiError::new(ErrorCode::Forbidden, m),
            VaultError::NotFound(what) => {
                ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
            }
            VaultError::BadRequest { field, message } => ApiError {
                field,
                ..ApiError::new(ErrorCode::MalformedRequest, message)
            },
            VaultError::Invalid {
                field,
                kind,
                rule,
                message,
            } => {
                let code = match kind {
                    InvalidKind::UnknownCollection => ErrorCode::UnknownCollection,
                    InvalidKind::UnknownPurpose => ErrorCode::UnknownPurpose,
                    InvalidKind::UndeclaredField => ErrorCode::UndeclaredField,
                    InvalidKind::UnknownSubject => ErrorCode::UnknownSubject,
                    InvalidKind::Field => ErrorCode::InvalidField,
                };
                ApiError {
                    field,
                    ..ApiError::new(code, with_rule(&message, &rule))
                }
            }
            VaultError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            VaultError::TransitionRefused { rule, message } => ApiError {
                rule: Some(rule),
                ..ApiError::new(ErrorCode::TransitionRefused, with_rule(&message, rule))
            },
            VaultError::Unavailable(m) => {
                tracing::warn!(error = %m, "storage unavailable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the vault's storage is unavailable; try again shortly",
                )
            }
            e @ (VaultError::Setup(_) | VaultError::Integrity(_) | VaultError::Internal(_)) => {
                // The detail goes to the log; the body says nothing of internals.
                tracing::error!(error = %e, "request failed");
                ApiError::new(ErrorCode::Internal, "an internal error occurred")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message,
                field: self.field,
                rule: self.rule,
            },
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"custos\""),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use custos_vault::{InvalidKind, VaultError};

    use super::ApiError;

    fn check(e: VaultError, status: StatusCode, code: &str, message: &str) {
        let e = ApiError::from(e);
        assert_eq!(
            (e.status(), e.code.as_str(), e.message.as_str()),
            (status, code, message)
        );
    }

    fn invalid(kind: InvalidKind, rule: &str) -> VaultError {
        VaultError::Invalid {
            field: Some("f".into()),
            kind,
            rule: rule.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn every_vault_error_has_its_status_and_code() {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        let internal = "an internal error occurred";
        check(
            VaultError::Unauthenticated,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid API key is required: Authorization: Bearer KEY",
        );
        check(
            VaultError::Forbidden("no".into()),
            StatusCode::FORBIDDEN,
            "forbidden",
            "no",
        );
        check(
            VaultError::NotFound("record"),
            StatusCode::NOT_FOUND,
            "not_found",
            "record not found",
        );
        check(
            VaultError::BadRequest {
                field: None,
                message: "m".into(),
            },
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "m",
        );
        for (kind, rule, code) in [
            (
                InvalidKind::UnknownCollection,
                "unknown_collection",
                "unknown_collection",
            ),
            (
                InvalidKind::UnknownPurpose,
                "unknown_purpose",
                "unknown_purpose",
            ),
            (
                InvalidKind::UndeclaredField,
                "undeclared_field",
                "undeclared_field",
            ),
            (
                InvalidKind::UnknownSubject,
                "unknown_subject",
                "unknown_subject",
            ),
            (InvalidKind::Field, "one_of", "invalid_field"),
        ] {
            check(
                invalid(kind, rule),
                unprocessable,
                code,
                &format!("m (rule: {rule})"),
            );
        }
        check(
            VaultError::Conflict("taken".into()),
            StatusCode::CONFLICT,
            "conflict",
            "taken",
        );
        check(
            VaultError::TransitionRefused {
                rule: "already_extended",
                message: "extended already".into(),
            },
            StatusCode::CONFLICT,
            "transition_refused",
            "extended already (rule: already_extended)",
        );
        check(
            VaultError::Unavailable("db at 10.0.0.7 refused".into()),
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the vault's storage is unavailable; try again shortly",
        );
        for e in [
            VaultError::Setup("key file /secret".into()),
            VaultError::Integrity("row 7".into()),
            VaultError::Internal("panic at x.rs".into()),
        ] {
            check(e, StatusCode::INTERNAL_SERVER_ERROR, "internal", internal);
        }
    }
}
