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
