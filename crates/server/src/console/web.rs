//! What every console page shares: its cookies, the signed-in operator ([`Staff`]), and how
//! an answer is made from a page or a refusal ([`Answer`]). The security headers and the CSP
//! are the portal's (`portal::web::headers`).

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use custos_vault::{OperatorSession, VaultError};

use crate::portal::web::{Cookie, read_cookie};
use crate::state::AppState;

/// The console's session cookie (`__Host-custos_console` over HTTPS).
pub(super) const SESSION_COOKIE: Cookie = Cookie::new("custos_console", "/console");
/// The cookie of the login form, whose token the form's CSRF token is bound to.
pub(super) const LOGIN_COOKIE: Cookie = Cookie::new("custos_console_login", "/console");

/// A `Set-Cookie` value for `c` under the server's scheme (see `portal::web::Cookie`);
/// `max_age` 0 removes it.
pub(super) fn cookie(
    state: &AppState,
    c: Cookie,
    value: &str,
    max_age: Option<i64>,
) -> HeaderValue {
    crate::portal::web::cookie(state.scheme, c, value, max_age)
}

/// A signed-in operator and the cookie their session came from; a request without a live
/// session is sent to the login page.
pub(super) struct Staff {
    pub(super) session: OperatorSession,
    pub(super) token: String,
}

impl Staff {
    /// The CSRF token of this session's forms.
    pub(super) fn csrf(&self, state: &AppState) -> String {
        state.vault.csrf_token(&self.token)
    }

    /// Whether a form's CSRF token is this session's.
    pub(super) fn check_csrf(&self, state: &AppState, given: &str) -> Result<(), Answer> {
        if state.vault.csrf_ok(&self.token, given) {
            Ok(())
        } else {
            Err(Answer::csrf_refused())
        }
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = Answer;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Answer> {
        let Some(token) = read_cookie(state.scheme, &parts.headers, SESSION_COOKIE) else {
            return Err(Answer::Login);
        };
        match state.vault.operator_session(&token).await {
            Ok(session) => Ok(Staff { session, token }),
            Err(VaultError::Unauthenticated) => Err(Answer::Login),
            Err(e) => Err(Answer::from(e)),
        }
    }
}

/// An answer of the console: a rendered page with its status, a redirect, or the way to the
/// login page.
pub(super) enum Answer {
    /// HTML with a status.
    Html(StatusCode, String),
    /// 303 See Other.
    SeeOther(String),
    /// To the login page (no live session).
    Login,
}

impl Answer {
    pub(super) fn ok(t: &impl Template) -> Answer {
        Answer::render(StatusCode::OK, t)
    }

    pub(super) fn render(status: StatusCode, t: &impl Template) -> Answer {
        match t.render() {
            Ok(html) => Answer::Html(status, html),
            Err(e) => {
                tracing::error!(error = %e, "rendering a console page failed");
                Answer::message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The page could not be shown.",
                )
            }
        }
    }

    /// A page of a heading and a sentence.
    pub(super) fn message(status: StatusCode, title: &str, text: &str) -> Answer {
        let t = super::pages::Message {
            title: title.to_owned(),
            text: text.to_owned(),
        };
        match t.render() {
            Ok(html) => Answer::Html(status, html),
            Err(_) => Answer::Html(status, String::new()),
        }
    }

    pub(super) fn csrf_refused() -> Answer {
        Answer::message(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form was sent without the token this page gave it, so nothing was done. \
             Go back, reload the page and try again.",
        )
    }
}

impl From<VaultError> for Answer {
    fn from(e: VaultError) -> Answer {
        match e {
            VaultError::Unauthenticated | VaultError::LoginRefused(_) => Answer::Login,
            // The refusal names the role and the permission it lacks.
            VaultError::Forbidden(why) => Answer::message(
                StatusCode::FORBIDDEN,
                "Not for your role",
                &format!(
                    "This is not open to you: {why}. Ask an operator who manages operators for another role."
                ),
            ),
            VaultError::NotFound(what) => Answer::message(
                StatusCode::NOT_FOUND,
                "Not found",
                &format!("There is no such {what}."),
            ),
            VaultError::Unavailable(_) => Answer::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again shortly",
                "The database is busy or briefly unavailable. Nothing was changed.",
            ),
            e @ (VaultError::Invalid { .. } | VaultError::BadRequest { .. }) => Answer::message(
                StatusCode::BAD_REQUEST,
                "That could not be done",
                &format!("Nothing was changed: {e}."),
            ),
            e @ VaultError::TransitionRefused { .. } => Answer::message(
                StatusCode::CONFLICT,
                "That step is not open now",
                &format!("Nothing was changed: {e}."),
            ),
            VaultError::Conflict(why) => Answer::message(
                StatusCode::CONFLICT,
                "That could not be done now",
                &format!("Nothing was changed: {why}. Reload the page and try again."),
            ),
            e => {
                tracing::error!(error = %e, "a console request failed");
                Answer::message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Nothing was changed. The server's log says more.",
                )
            }
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Answer::Html(status, html) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Answer::SeeOther(to) => Redirect::to(&to).into_response(),
            Answer::Login => Redirect::to("/console/signin").into_response(),
        }
    }
}

/// An answer with cookies set.
pub(super) fn with_cookies(answer: Answer, cookies: &[HeaderValue]) -> Response {
    let mut res = answer.into_response();
    for c in cookies {
        res.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    res
}
