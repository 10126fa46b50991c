//! The Custos HTTP API: axum routers over a [`custos_vault::Vault`], with authentication,
//! limits, metrics and an OpenAPI 3.1 document generated from the handlers themselves.
//!
//! Handlers parse, call one vault method, and serialise. No SQL, no crypto and no policy
//! lives here.

mod console;
mod error;
mod extract;
mod metrics;
mod portal;
mod router;
mod routes;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use custos_vault::{Transport, Vault};
use tokio::net::TcpListener;

pub use error::ApiError;
pub use extract::MAX_BODY_BYTES;
pub use metrics::{Metrics, REQUEST_TIMEOUT};
pub use state::AppState;

/// The whole application as a router, ready for `axum::serve` or for `oneshot` in tests.
pub fn app(state: AppState) -> Router {
    let (router, _) = router::router().split_for_parts();
    router
        .merge(portal::routes())
        .merge(console::routes())
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The OpenAPI 3.1 document, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    router::openapi()
}

/// How often the outbox is looked at for mail that is due.
pub const OUTBOX_INTERVAL: Duration = Duration::from_millis(250);

/// Serves the API on `listener` until `shutdown` resolves, running the audit sequencer and
/// the outbox's delivery through `mail` alongside, and the retention sweep every `retention`
/// (none: not in this process).
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    vault: Arc<Vault>,
    listener: TcpListener,
    retention: Option<Duration>,
    mail: Transport,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sequencer = tokio::spawn(Arc::clone(&vault).run_sequencer(Duration::from_millis(50)));
    let outbox = tokio::spawn(Arc::clone(&vault).run_outbox(mail, OUTBOX_INTERVAL));
    let sweeper = retention.map(|every| tokio::spawn(Arc::clone(&vault).run_retention(every)));
    let state = AppState {
        vault,
        metrics: Arc::new(Metrics::default()),
    };
    let result = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    sequencer.abort();
    outbox.abort();
    if let Some(s) = sweeper {
        s.abort();
    }
    result
}
