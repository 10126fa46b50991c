//! What every portal page shares: its cookies, the client's address, the security headers,
//! and how an answer is made from a page or a refusal.

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use custos_vault::{InvalidKind, PortalSession, VaultError};

use crate::state::AppState;

/// The session cookie. This server does not serve TLS yet, and a browser refuses a
/// `__Host-` or `Secure` cookie over plain HTTP, so neither is set: once the server serves
/// TLS itself (the operators' issue), [`cookie`] is to add both. Until then a deployment
/// behind a TLS proxy runs without them (docs/portal.md says so).
pub(super) const SESSION_COOKIE: &str = "custos_session";
/// The cookie of a sign-in under way (before a session exists).
pub(super) const SIGNIN_COOKIE: &str = "custos_signin";

/// The Content-Security-Policy of every portal answer: nothing but this server's own
/// stylesheet and images, no script at all, no framing, forms posted here only.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                              form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, the portal's path; `max_age` 0 removes
/// it.
pub(super) fn cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/portal; HttpOnly; SameSite=Strict{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A signed-in customer's session and the cookie it came from; a request without a live
/// one is sent to the sign-in page.
pub(super) struct Signed {
    pub(super) session: PortalSession,
    pub(super) token: String,
}

impl Signed {
    /// The CSRF token of this session's forms.
    pub(super) fn csrf(&self, state: &AppState) -> String {
        state.vault.csrf_token(&self.token)
    }

    /// Whether a form's CSRF token is this session's.
    pub(super) fn check_csrf(&self, state: &AppState, given: &str) -> Result<(), Page> {
        if state.vault.csrf_ok(&self.token, given) {
            Ok(())
        } else {
            Err(Page::csrf_refused())
        }
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Page;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Page> {
        let Some(token) = read_cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(Page::SignIn);
        };
        match state.vault.portal_session(&token).await {
            Ok(session) => Ok(Signed { session, token }),
            Err(VaultError::Unauthenticated) => Err(Page::SignIn),
            Err(e) => Err(Page::from(e)),
        }
    }
}

/// An answer of the portal: a rendered page with its status, a redirect, or the way to the
/// sign-in page.
pub(super) enum Page {
    /// HTML with a status.
    Html(StatusCode, String),
    /// 303 See Other.
    SeeOther(String),
    /// To the sign-in page (no live session).
    SignIn,
}

impl Page {
    pub(super) fn ok(t: &impl Template) -> Page {
        Page::render(StatusCode::OK, t)
    }

    pub(super) fn render(status: StatusCode, t: &impl Template) -> Page {
        match t.render() {
            Ok(html) => Page::Html(status, html),
            Err(e) => {
                tracing::error!(error = %e, "rendering a portal page failed");
                Page::message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The page could not be shown. Please try again later.",
                )
            }
        }
    }

    /// A page of a heading and a sentence.
    pub(super) fn message(status: StatusCode, title: &str, text: &str) -> Page {
        let t = super::pages::Message {
            title: title.to_owned(),
            text: text.to_owned(),
        };
        match t.render() {
            Ok(html) => Page::Html(status, html),
            Err(_) => Page::Html(status, String::new()),
        }
    }

    pub(super) fn csrf_refused() -> Page {
        Page::message(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form was sent without the token this page gave it, so nothing was done. \
             Go back, reload the page and try again.",
        )
    }
}

impl From<VaultError> for Page {
    fn from(e: VaultError) -> Page {
        match e {
            VaultError::Unauthenticated => Page::SignIn,
            // Another customer's record or request is answered as one that does not exist.
            VaultError::Forbidden(_) | VaultError::NotFound(_) => Page::message(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing of yours here.",
            ),
            VaultError::Unavailable(_) => Page::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again shortly",
                "The service is busy or briefly unavailable. Nothing was changed.",
            ),
            // Erased while signed in: the session outlives the data, so the certificate can
            // still be fetched.
            VaultError::Invalid {
                kind: InvalidKind::UnknownSubject,
                ..
            } => Page::message(
                StatusCode::NOT_FOUND,
                "Your data is erased",
                "Nothing is held about you any more, so there is nothing to do here. Your \
                 requests and the erasure certificate are under Your requests.",
            ),
            // What the customer sent broke a rule: the rule's words name the field, never
            // the value.
            e @ (VaultError::Invalid { .. } | VaultError::BadRequest { .. }) => Page::message(
                StatusCode::BAD_REQUEST,
                "That could not be done",
                &format!("Nothing was changed: {e}."),
            ),
            VaultError::Conflict(_) | VaultError::TransitionRefused { .. } => Page::message(
                StatusCode::CONFLICT,
                "That could not be done now",
                "Your data changed while you asked, or your request is already being handled. \
                 Nothing was changed: go back, reload the page and try again.",
            ),
            VaultError::SigninRefused(_) => Page::SignIn,
            e => {
                tracing::error!(error = %e, "a portal request failed");
                Page::message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Nothing was changed. Please try again later.",
                )
            }
        }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        match self {
            Page::Html(status, html) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Page::SeeOther(to) => Redirect::to(&to).into_response(),
            Page::SignIn => Redirect::to("/portal/signin").into_response(),
        }
    }
}

/// Adds the portal's security headers to every answer: the CSP, no referrer, no sniffing,
/// no framing, and no caching (every portal page may show personal data).
pub(crate) async fn headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}
