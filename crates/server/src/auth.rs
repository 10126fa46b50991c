//! Bearer API-key authentication as an extractor: a handler that takes [`Auth`] cannot run
//! for an unauthenticated caller.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use custos_vault::{Principal, VaultError};

use crate::{ApiError, AppState};

/// The authenticated caller.
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
