//! The console (`/console`): server-rendered pages where privacy staff sign in with a
//! password and a second factor and work the request queue, read the audit trail, and see
//! consent and retention. Pages work without JavaScript and load nothing but this server's
//! own stylesheet; charts are SVG drawn here (`chart`); every form carries a CSRF token; every
//! answer carries the portal's security headers (`portal::web::headers`).
//!
//! As in the API and the portal, a handler parses, calls one vault method as the operator,
//! and renders: whether the operator's role may is `core::principal::authorize`'s to say.

mod audit;
mod breach;
mod chart;
mod consent;
mod home;
mod pages;
mod request;
mod retention;
mod ropa;
mod setup;
mod signin;
mod web;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::state::AppState;

/// The console's routes, each answer with the security headers.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(home::page))
        .route("/console/", get(home::page))
        .route(
            "/console/signin",
            get(signin::signin_page).post(signin::sign_in),
        )
        .route("/console/signout", post(signin::sign_out))
        .route("/console/setup", get(setup::page))
        .route("/console/setup/password", post(setup::password))
        .route("/console/setup/authenticator", post(setup::authenticator))
        .route("/console/requests/{id}", get(request::page))
        .route("/console/requests/{id}/{action}", post(request::act))
        .route("/console/consent", get(consent::page))
        .route("/console/audit", get(audit::page))
        .route("/console/audit/verify", post(audit::verify))
        .route("/console/retention", get(retention::page))
        .route("/console/ropa", get(ropa::page))
        .route("/console/breach", get(breach::page))
        .route(
            "/console/breach/alerts/{id}/acknowledge",
            post(breach::acknowledge),
        )
        .route("/console/breach/incidents", post(breach::open))
        .route("/console/breach/incidents/{id}", get(breach::incident))
        .route("/console/breach/incidents/{id}/{action}", post(breach::act))
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/{*rest}", axum::routing::any(not_found))
        .layer(axum::middleware::from_fn(crate::portal::web::headers))
}

async fn not_found() -> web::Answer {
    web::Answer::message(
        axum::http::StatusCode::NOT_FOUND,
        "No such page",
        "There is no page at this address.",
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        concat!(
            include_str!("../../static/portal.css"),
            include_str!("../../static/console.css")
        ),
    )
}

/// The frame of a page for a signed-in operator.
fn frame(state: &AppState, staff: &web::Staff) -> pages::Frame {
    pages::Frame {
        org: state.vault.inventory().organization.name.clone(),
        operator: Some(staff.session.email.clone()),
        role: staff.session.role.clone(),
        csrf: staff.csrf(state),
    }
}

/// The frame of a page before sign-in, whose forms carry `csrf`.
fn frame_before(state: &AppState, csrf: String) -> pages::Frame {
    pages::Frame {
        org: state.vault.inventory().organization.name.clone(),
        operator: None,
        role: String::new(),
        csrf,
    }
}
