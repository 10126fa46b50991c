//! Signing in and out: one form of address, password and code, refused alike whatever was
//! wrong (unless the account is locked, which the operator needs to know).

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use custos_core::operator::password::Password;
use custos_vault::VaultError;
use serde::Deserialize;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::frame_before;
use super::pages::SigninPage;
use super::web::{Answer, LOGIN_COOKIE, SESSION_COOKIE, Staff, cookie, with_cookies};
use crate::portal::client::ClientAddr;
use crate::portal::web::read_cookie;
use crate::state::AppState;

/// How long the login form's cookie lives.
const LOGIN_COOKIE_AGE_S: i64 = 30 * 60;

/// The login form; what was typed is wiped when the form is dropped.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
pub(super) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

fn login_form(state: &AppState, status: StatusCode, error: Option<String>) -> Response {
    let flow = match state.vault.new_signin_flow() {
        Ok(f) => f,
        Err(e) => return Answer::from(e).into_response(),
    };
    let token = flow.token.expose_secret();
    let page = SigninPage {
        frame: frame_before(state, state.vault.csrf_token(token)),
        error,
    };
    with_cookies(
        Answer::render(status, &page),
        &[cookie(state, LOGIN_COOKIE, token, Some(LOGIN_COOKIE_AGE_S))],
    )
}

/// `GET /console/signin`: the login form, with a new cookie its CSRF token is bound to.
pub(super) async fn signin_page(State(state): State<AppState>) -> Response {
    login_form(&state, StatusCode::OK, None)
}

/// `POST /console/signin`: address, password and code; a session cookie on success.
pub(super) async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(mut form): Form<LoginForm>,
) -> Response {
    let bound = read_cookie(state.scheme, &headers, LOGIN_COOKIE);
    if !bound.is_some_and(|t| state.vault.csrf_ok(&t, &form.csrf)) {
        return Answer::csrf_refused().into_response();
    }
    let password = Password::new(std::mem::take(&mut form.password));
    match state
        .vault
        .operator_login(&form.email, password, &form.code, client)
        .await
    {
        Ok(s) => with_cookies(
            Answer::SeeOther("/console".into()),
            &[
                cookie(&state, SESSION_COOKIE, s.token.expose_secret(), None),
                cookie(&state, LOGIN_COOKIE, "", Some(0)),
            ],
        ),
        Err(VaultError::LoginRefused(_)) => login_form(
            &state,
            StatusCode::UNAUTHORIZED,
            // The same words whatever was wrong, a locked account included: they must not
            // tell which addresses have accounts.
            Some(
                "The address, password or code is wrong, or the account is locked for a few \
                 minutes after repeated failures."
                    .into(),
            ),
        ),
        Err(e) => Answer::from(e).into_response(),
    }
}

/// `POST /console/signout`: ends the session, on every server.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = staff.check_csrf(&state, &form.csrf) {
        return refused.into_response();
    }
    if let Err(e) = state.vault.operator_sign_out(&staff.token).await {
        return Answer::from(e).into_response();
    }
    with_cookies(
        Answer::SeeOther("/console/signin".into()),
        &[cookie(&state, SESSION_COOKIE, "", Some(0))],
    )
}
