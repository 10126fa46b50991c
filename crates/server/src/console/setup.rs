//! Setting up an account with its one-time link: a password, then the authenticator app
//! (a QR code drawn as SVG here, and the secret to type), then the recovery codes, once.
//! The link's token is the credential: the forms carry it, and their CSRF token is bound to
//! it.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use custos_core::operator::password::Password;
use custos_vault::{SetupStage, SetupView, VaultError};
use qrcode::QrCode;
use qrcode::render::svg;
use serde::Deserialize;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::frame_before;
use super::pages::{SetupAuthenticator, SetupDone, SetupPassword};
use super::web::Answer;
use crate::state::AppState;

#[derive(Deserialize)]
pub(super) struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The password form; what was typed is wiped when the form is dropped.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
pub(super) struct PasswordForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
    #[serde(default)]
    csrf: String,
}

/// The enrolment form.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
pub(super) struct CodeForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

fn dead_link() -> Answer {
    Answer::message(
        StatusCode::NOT_FOUND,
        "This setup link does not work",
        "It was used already, it has expired (a link lasts 24 hours), or it was never given. \
         Ask an operator who manages operators for a new one (custos operator reset-mfa).",
    )
}

/// The QR code of `uri` as an SVG element, drawn here: no script, no image from elsewhere.
fn qr_svg(uri: &str) -> String {
    match QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<svg::Color<'_>>()
            .min_dimensions(224, 224)
            .quiet_zone(true)
            .build()
            .replacen("<?xml version=\"1.0\" standalone=\"yes\"?>", "", 1)
            .replacen(
                "<svg ",
                "<svg role=\"img\" aria-label=\"QR code of the authenticator secret\" ",
                1,
            ),
        Err(_) => String::new(),
    }
}

fn stage_page(state: &AppState, token: &str, view: SetupView, error: Option<String>) -> Answer {
    let frame = frame_before(state, state.vault.csrf_token(token));
    match view.stage {
        SetupStage::Password => Answer::ok(&SetupPassword {
            frame,
            email: view.email,
            token: token.to_owned(),
            error: error.map(|e| ("password".to_owned(), e)),
        }),
        SetupStage::Authenticator { uri, secret } => {
            let status = if error.is_some() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            Answer::render(
                status,
                &SetupAuthenticator {
                    frame,
                    email: view.email,
                    token: token.to_owned(),
                    qr_svg: qr_svg(uri.expose_secret()),
                    uri: uri.expose_secret().clone(),
                    secret: secret.expose_secret().clone(),
                    error,
                },
            )
        }
    }
}

/// `GET /console/setup?token=...`: the step the account's setup is at.
pub(super) async fn page(State(state): State<AppState>, Query(q): Query<TokenQuery>) -> Answer {
    match state.vault.operator_setup(&q.token).await {
        Ok(view) => stage_page(&state, &q.token, view, None),
        Err(VaultError::Unauthenticated) => dead_link(),
        Err(e) => e.into(),
    }
}

/// `POST /console/setup/password`: chooses the password; the authenticator comes next.
pub(super) async fn password(
    State(state): State<AppState>,
    Form(mut form): Form<PasswordForm>,
) -> Answer {
    if !state.vault.csrf_ok(&form.token, &form.csrf) {
        return Answer::csrf_refused();
    }
    let pw = Password::new(std::mem::take(&mut form.password));
    let again = Password::new(std::mem::take(&mut form.password_again));
    match state.vault.choose_password(&form.token, pw, again).await {
        Ok(view) => stage_page(&state, &form.token, view, None),
        Err(VaultError::Unauthenticated) => dead_link(),
        Err(VaultError::Invalid {
            field: Some(field),
            message,
            ..
        }) => {
            let Ok(view) = state.vault.operator_setup(&form.token).await else {
                return dead_link();
            };
            let what = if field == "password_again" {
                "The second password"
            } else {
                "The password"
            };
            Answer::render(
                StatusCode::BAD_REQUEST,
                &SetupPassword {
                    frame: frame_before(&state, state.vault.csrf_token(&form.token)),
                    email: view.email,
                    token: form.token.clone(),
                    error: Some((field, format!("{what} {message}. Nothing was changed."))),
                },
            )
        }
        Err(e) => e.into(),
    }
}

/// `POST /console/setup/authenticator`: enrols the app with its first code and shows the
/// recovery codes, once.
pub(super) async fn authenticator(
    State(state): State<AppState>,
    Form(form): Form<CodeForm>,
) -> Answer {
    if !state.vault.csrf_ok(&form.token, &form.csrf) {
        return Answer::csrf_refused();
    }
    match state.vault.enrol_totp(&form.token, &form.code).await {
        Ok(codes) => Answer::ok(&SetupDone {
            frame: frame_before(&state, String::new()),
            codes: codes.iter().map(|c| c.expose_secret().to_owned()).collect(),
        }),
        Err(VaultError::Unauthenticated) => dead_link(),
        Err(VaultError::Invalid { message, .. }) => {
            match state.vault.operator_setup(&form.token).await {
                Ok(view) => stage_page(
                    &state,
                    &form.token,
                    view,
                    Some(format!("The code {message}.")),
                ),
                Err(_) => dead_link(),
            }
        }
        Err(e) => e.into(),
    }
}
