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
mod tls;

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
pub use routes::reports::{accountability_html, ropa_html};
pub use state::AppState;
pub use tls::{HSTS, Scheme, Tls, TlsError};

/// The whole application as a router, ready for `axum::serve` or for `oneshot` in tests.
/// With [`Scheme::Https`] in the state every answer carries [`HSTS`].
pub fn app(state: AppState) -> Router {
    let (router, _) = router::router().split_for_parts();
    let router = router
        .merge(portal::routes())
        .merge(console::routes())
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let router = match state.scheme {
        Scheme::Https => router.layer(axum::middleware::map_response(tls::hsts)),
        Scheme::Http => router,
    };
    router.with_state(state)
}

/// Where [`serve`] answers: plain HTTP, or HTTPS with a certificate (that a clone of the
/// [`Tls`] can reload while the server runs).
#[derive(Debug)]
pub enum Listener {
    /// Plain HTTP on this socket.
    Http(TcpListener),
    /// HTTPS on this socket.
    Https(TcpListener, Tls),
}

impl Listener {
    /// The address it listens on.
    ///
    /// # Errors
    /// When the socket cannot say.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Listener::Http(l) | Listener::Https(l, _) => l.local_addr(),
        }
    }

    /// How browsers reach it.
    pub fn scheme(&self) -> Scheme {
        match self {
            Listener::Http(_) => Scheme::Http,
            Listener::Https(..) => Scheme::Https,
        }
    }
}

/// The OpenAPI 3.1 document, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    router::openapi()
}

/// How long connections still open at shutdown get to finish, over HTTPS.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often the outbox is looked at for mail that is due.
pub const OUTBOX_INTERVAL: Duration = Duration::from_millis(250);

/// Serves the API on `listener` (HTTP or HTTPS) until `shutdown` resolves, running the audit
/// sequencer and the outbox's delivery through `mail` alongside, and the retention sweep
/// every `retention` (none: not in this process). Over HTTPS, connections still open when
/// `shutdown` resolves get [`SHUTDOWN_GRACE`] to finish.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    vault: Arc<Vault>,
    listener: Listener,
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
        scheme: listener.scheme(),
    };
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = match listener {
        Listener::Http(listener) => {
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Listener::Https(listener, tls) => {
            let handle = axum_server::Handle::new();
            let stop = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stop.graceful_shutdown(Some(SHUTDOWN_GRACE));
            });
            axum_server::from_tcp_rustls(listener.into_std()?, tls.rustls())?
                .handle(handle)
                .serve(service)
                .await
        }
    };
    sequencer.abort();
    outbox.abort();
    if let Some(s) = sweeper {
        s.abort();
    }
    result
}
