//! What every handler can reach: the vault, the request counters, and how browsers reach
//! this server.

use std::sync::Arc;

use custos_vault::Vault;

use crate::metrics::Metrics;
use crate::tls::Scheme;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The vault.
    pub vault: Arc<Vault>,
    /// Request counters.
    pub metrics: Arc<Metrics>,
    /// Plain HTTP or HTTPS: whether answers carry HSTS and cookies are `__Host-` and
    /// `Secure` (`portal::web::cookie`).
    pub scheme: Scheme,
}

impl AppState {
    /// The oldest TLS version this server accepts, when it serves TLS itself.
    pub(crate) fn tls_version(&self) -> Option<&'static str> {
        match self.scheme {
            Scheme::Https => Some(
                self.vault
                    .inventory()
                    .tls
                    .as_ref()
                    .map_or("1.3", |t| t.min_version.as_str()),
            ),
            Scheme::Http => None,
        }
    }
}
