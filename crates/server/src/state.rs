//! What every handler can reach: the vault and the request counters.

use std::sync::Arc;

use custos_vault::Vault;

use crate::metrics::Metrics;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The vault.
    pub vault: Arc<Vault>,
    /// Request counters.
    pub metrics: Arc<Metrics>,
}
