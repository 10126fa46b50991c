//! The privacy portal (`/portal`): server-rendered pages where a customer signs in with a
//! code mailed to an address on file and sees, corrects, downloads and deletes their data,
//! and makes their choices. The pages work without JavaScript and load nothing but this
//! server's own stylesheet; every form carries a CSRF token; every answer carries a strict
//! CSP, no referrer and no caching (`web::headers`).
//!
//! As in the API, a handler parses, calls one vault method, and renders: the rules are the
//! vault's and `core`'s.

mod account;
mod choices;
mod client;
mod pages;
mod rights;
mod signin;
pub(crate) mod web;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::state::AppState;

/// The portal's routes, each answer with the portal's security headers.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal", get(account::home))
        .route("/portal/", get(account::home))
        .route(
            "/portal/signin",
            get(signin::signin_page).post(signin::ask_code),
        )
        .route(
            "/portal/signin/code",
            get(signin::code_page).post(signin::enter_code),
        )
        .route("/portal/signout", post(signin::sign_out))
        .route(
            "/portal/correct",
            get(account::correct_page).post(account::correct),
        )
        .route("/portal/choices", get(choices::page).post(choices::choose))
        .route("/portal/receipts/{event}", get(choices::receipt))
        .route("/portal/download", post(rights::download))
        .route(
            "/portal/erasure",
            get(rights::erasure_page).post(rights::ask_erasure),
        )
        .route("/portal/requests", get(rights::requests))
        .route("/portal/erasure-certificate", get(rights::certificate))
        .route("/portal/static/portal.css", get(stylesheet))
        .route("/portal/{*rest}", axum::routing::any(not_found))
        .layer(axum::middleware::from_fn(web::headers))
}

/// A portal path that is no page: an HTML answer with the portal's headers, not the API's
/// JSON.
async fn not_found() -> web::Page {
    web::Page::message(
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
        include_str!("../../static/portal.css"),
    )
}

/// The frame of a signed-in page: the business's name and contact from the inventory, and
/// the session's CSRF token.
fn frame(state: &AppState, signed: &web::Signed) -> pages::Frame {
    frame_with(state, signed.csrf(state), true)
}

/// The frame of a page before sign-in, whose forms carry the sign-in cookie's token.
fn frame_with(state: &AppState, csrf: String, signed_in: bool) -> pages::Frame {
    let org = &state.vault.inventory().organization;
    pages::Frame {
        org: org.name.clone(),
        contact: org.contact.clone(),
        csrf,
        signed_in,
    }
}
