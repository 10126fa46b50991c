//! What every portal page shares: its cookies, the client's address, the security headers,
//! and how an answer is made from a page or a refusal.

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use custos_vault::{InvalidKind, PortalSession, VaultError};

use crate::state::AppState;
use crate::tls::Scheme;

/// A cookie this server sets: its name, and the path it is scoped to over plain HTTP.
///
/// Over HTTPS ([`Scheme::Https`], which handlers find in `AppState::scheme`) the name takes
/// the `__Host-` prefix and the cookie is `Secure` with `Path=/`, as a `__Host-` cookie must
/// be: a browser then keeps it from plain HTTP and from sibling domains, so no one there can
/// plant or overwrite it. Over plain HTTP a browser would refuse both, so neither is set
/// (a deployment behind a TLS proxy runs without them: docs/portal.md). [`cookie`] and
/// [`read_cookie`] take the scheme, so one constant serves both; another area (such as a
/// console) declares its own `Cookie` with its own name and path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cookie {
    name: &'static str,
    path: &'static str,
}

impl Cookie {
    /// A cookie named `name` (lower snake_case, no prefix), scoped to `path` over plain HTTP.
    pub(crate) const fn new(name: &'static str, path: &'static str) -> Cookie {
        Cookie { name, path }
    }

    /// Its name as the browser holds it under `scheme`.
    pub(crate) fn name(self, scheme: Scheme) -> String {
        match scheme {
            Scheme::Http => self.name.to_owned(),
            Scheme::Https => format!("__Host-{}", self.name),
        }
    }
}

/// The portal's session cookie.
pub(super) const SESSION_COOKIE: Cookie = Cookie::new("custos_session", "/portal");
/// The cookie of a sign-in under way (before a session exists).
pub(super) const SIGNIN_COOKIE: Cookie = Cookie::new("custos_signin", "/portal");

/// The Content-Security-Policy of every portal answer: nothing but this server's own
/// stylesheet and images, no script at all, no framing, forms posted here only.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                              form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A cookie's value from the request's `Cookie` headers, under its name for `scheme` (over
/// HTTPS only the `__Host-` one counts). Only hex tokens of at most 128 digits are read.
pub(crate) fn read_cookie(scheme: Scheme, headers: &HeaderMap, cookie: Cookie) -> Option<String> {
    let name = cookie.name(scheme);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name.as_str())
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict; its path over plain HTTP, or `Secure`,
/// `Path=/` and the `__Host-` name over HTTPS; `max_age` 0 removes it, none makes it end
/// with the browser.
pub(crate) fn cookie(
    scheme: Scheme,
    cookie: Cookie,
    value: &str,
    max_age: Option<i64>,
) -> HeaderValue {
    let name = cookie.name(scheme);
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    let scope = match scheme {
        Scheme::Http => format!("Path={}", cookie.path),
        Scheme::Https => "Path=/; Secure".to_owned(),
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; {scope}; HttpOnly; SameSite=Strict{age}"
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
        let Some(token) = read_cookie(state.scheme, &parts.headers, SESSION_COOKIE) else {
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
