//! The extractors every handler reads its request through (the bearer API key, path, query
//! string and JSON body), each rejecting in the API's error format, and the parsers of the ids
//! a path or query names.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::http::header::{self, AUTHORIZATION};
use axum::http::request::Parts;
use custos_core::ids::{RecordId, RequestId, SubjectId};
use custos_vault::{Principal, VaultError};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The authenticated caller, from `Authorization: Bearer KEY`: a handler that takes [`Auth`]
/// cannot run for an unauthenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Auth(pub(crate) Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .ok_or(VaultError::Unauthenticated)?;
        let (scheme, token) = header.split_once(' ').ok_or(VaultError::Unauthenticated)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(VaultError::Unauthenticated.into());
        }
        Ok(Auth(state.vault.authenticate(token.trim()).await?))
    }
}

/// Path segments, with rejections in our error format.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct PathParts<T>(pub(crate) T);

/// The query string, with rejections in our error format.
pub(crate) struct QueryParams(pub(crate) BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
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
                ErrorCode::UnsupportedMediaType,
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

/// A record id named in the path.
pub(crate) fn record_id(s: &str) -> Result<RecordId, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request("id", "the record id is not a UUID"))
}

/// A request id named in the path.
pub(crate) fn request_id(s: &str) -> Result<RequestId, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request("id", "the request id is not a UUID"))
}

/// A subject id named in the path or query as `field`.
pub(crate) fn subject_id(s: &str, field: &str) -> Result<SubjectId, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request(field, "the subject id is not a UUID"))
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::new(ErrorCode::MalformedRequest, "the body could not be read")
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        ApiError::new(ErrorCode::MalformedRequest, "the path could not be read")
    }
}

impl From<QueryRejection> for ApiError {
    fn from(_: QueryRejection) -> Self {
        ApiError::new(
            ErrorCode::MalformedRequest,
            "the query string could not be read",
        )
    }
}
