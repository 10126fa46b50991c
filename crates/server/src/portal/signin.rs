//! Signing in and out: the address form, the code form, and the sign-out button.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use custos_core::personal::PersonalValue;
use custos_core::signin::{CODE_VALID_MS, LOCKOUT_MS, MAX_WRONG_CODES};
use custos_vault::VaultError;
use serde::Deserialize;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::client::ClientAddr;
use super::frame_with;
use super::pages::{CodePage, SigninPage};
use super::web::{Page, SESSION_COOKIE, SIGNIN_COOKIE, Signed, cookie, read_cookie};
use crate::state::AppState;

/// How long the sign-in cookie lives: as long as a code.
const SIGNIN_COOKIE_AGE_S: i64 = CODE_VALID_MS / 1000;

/// The address form; what the visitor typed is wiped when the form is dropped.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
pub(super) struct AddressForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    csrf: String,
}

/// The code form; the code typed is wiped when the form is dropped.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
pub(super) struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

fn with_cookies(page: Page, cookies: &[axum::http::HeaderValue]) -> Response {
    let mut res = page.into_response();
    for c in cookies {
        res.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    res
}

fn signin_form(state: &AppState, status: StatusCode, error: Option<String>) -> Response {
    let flow = match state.vault.new_signin_flow() {
        Ok(f) => f,
        Err(e) => return Page::from(e).into_response(),
    };
    let token = flow.token.expose_secret();
    let page = SigninPage {
        frame: frame_with(state, state.vault.csrf_token(token), false),
        error,
    };
    with_cookies(
        Page::render(status, &page),
        &[cookie(
            state.scheme,
            SIGNIN_COOKIE,
            token,
            Some(SIGNIN_COOKIE_AGE_S),
        )],
    )
}

/// `GET /portal/signin`: the address form, with a new sign-in cookie its token is bound to.
pub(super) async fn signin_page(State(state): State<AppState>) -> Response {
    signin_form(&state, StatusCode::OK, None)
}

/// `POST /portal/signin`: asks for a code. The answer is the same code page whether or not
/// the address is on file, and takes as long either way.
pub(super) async fn ask_code(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(mut form): Form<AddressForm>,
) -> Response {
    let Some(flow) = read_cookie(state.scheme, &headers, SIGNIN_COOKIE) else {
        return Page::csrf_refused().into_response();
    };
    if !state.vault.csrf_ok(&flow, &form.csrf) {
        return Page::csrf_refused().into_response();
    }
    let address = PersonalValue::text(std::mem::take(&mut form.email));
    match state.vault.request_signin_code(&address, client).await {
        Ok(next) => {
            let token = next.token.expose_secret();
            let mut res = Redirect::to("/portal/signin/code").into_response();
            res.headers_mut().append(
                header::SET_COOKIE,
                cookie(
                    state.scheme,
                    SIGNIN_COOKIE,
                    token,
                    Some(SIGNIN_COOKIE_AGE_S),
                ),
            );
            res
        }
        Err(VaultError::Invalid { message, .. }) => signin_form(
            &state,
            StatusCode::BAD_REQUEST,
            Some(format!(
                "The email address {message}. Enter it as name@example.com."
            )),
        ),
        Err(e) => Page::from(e).into_response(),
    }
}

fn code_form(state: &AppState, flow: &str, status: StatusCode, error: Option<String>) -> Page {
    Page::render(
        status,
        &CodePage {
            frame: frame_with(state, state.vault.csrf_token(flow), false),
            minutes: CODE_VALID_MS / 60_000,
            error,
        },
    )
}

/// `GET /portal/signin/code`: the code form of the sign-in under way.
pub(super) async fn code_page(State(state): State<AppState>, headers: HeaderMap) -> Page {
    match read_cookie(state.scheme, &headers, SIGNIN_COOKIE) {
        Some(flow) => code_form(&state, &flow, StatusCode::OK, None),
        None => Page::SeeOther("/portal/signin".into()),
    }
}

/// `POST /portal/signin/code`: signs in with the code. Any refusal gets the same words.
pub(super) async fn enter_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let Some(flow) = read_cookie(state.scheme, &headers, SIGNIN_COOKIE) else {
        return Page::csrf_refused().into_response();
    };
    if !state.vault.csrf_ok(&flow, &form.csrf) {
        return Page::csrf_refused().into_response();
    }
    match state.vault.verify_signin_code(&flow, &form.code).await {
        Ok(session) => {
            let mut res = Redirect::to("/portal").into_response();
            let h = res.headers_mut();
            h.append(
                header::SET_COOKIE,
                cookie(
                    state.scheme,
                    SESSION_COOKIE,
                    session.token.expose_secret(),
                    None,
                ),
            );
            h.append(
                header::SET_COOKIE,
                cookie(state.scheme, SIGNIN_COOKIE, "", Some(0)),
            );
            res
        }
        Err(VaultError::SigninRefused(_)) => code_form(
            &state,
            &flow,
            StatusCode::UNAUTHORIZED,
            Some(format!(
                "That code did not work. A code works once, within {} minutes; after \
                 {MAX_WRONG_CODES} wrong codes, signing in with the address pauses for {} \
                 minutes. Check the code, or ask for a new one.",
                CODE_VALID_MS / 60_000,
                LOCKOUT_MS / 60_000
            )),
        )
        .into_response(),
        Err(e) => Page::from(e).into_response(),
    }
}

/// `POST /portal/signout`: ends the session on every server, and forgets its cookie.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(p) = signed.check_csrf(&state, &form.csrf) {
        return p.into_response();
    }
    if let Err(e) = state.vault.sign_out(&signed.token).await {
        return Page::from(e).into_response();
    }
    with_cookies(
        Page::SeeOther("/portal/signin".into()),
        &[cookie(state.scheme, SESSION_COOKIE, "", Some(0))],
    )
}
