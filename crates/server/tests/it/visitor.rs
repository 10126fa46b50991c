//! A browser without JavaScript over the router, for the portal's and the console's tests:
//! a cookie jar, forms posted url-encoded, and the CSRF token read from the page.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use tower::ServiceExt;

use crate::TestApp;

/// A browser's view of one answer.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl Answer {
    pub(crate) fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|h| h.to_str().ok())
    }

    /// The value of the first hidden `csrf` input.
    pub(crate) fn csrf(&self) -> String {
        let at = self
            .text
            .find("name=\"csrf\" value=\"")
            .expect("a csrf input");
        let rest = &self.text[at + 19..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

/// A browser: a cookie jar over the router.
pub(crate) struct Visitor<'a> {
    pub(crate) t: &'a TestApp,
    pub(crate) cookies: BTreeMap<String, String>,
    /// The peer the server sees, and the `X-Forwarded-For` it is sent, if any.
    pub(crate) peer: Option<(std::net::SocketAddr, String)>,
}

impl<'a> Visitor<'a> {
    pub(crate) fn new(t: &'a TestApp) -> Self {
        Visitor {
            t,
            cookies: BTreeMap::new(),
            peer: None,
        }
    }

    pub(crate) async fn send(&mut self, req: axum::http::request::Builder, body: Body) -> Answer {
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut req = req.header(header::COOKIE, jar.join("; "));
        if let Some((peer, xff)) = &self.peer {
            req = req
                .extension(axum::extract::ConnectInfo(*peer))
                .header("x-forwarded-for", xff.as_str());
        }
        let req = req.body(body).unwrap();
        let resp = self.t.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        for c in headers.get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub(crate) async fn get(&mut self, uri: &str) -> Answer {
        self.send(Request::builder().uri(uri), Body::empty()).await
    }

    pub(crate) async fn post(&mut self, uri: &str, form: &[(&str, &str)]) -> Answer {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            Request::builder()
                .method("POST")
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            Body::from(body),
        )
        .await
    }
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
