//! The public consent endpoint: site keys, subject tokens, origins, CORS and Global Privacy
//! Control.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::{ManualClock, Reply, TestApp, assert_error, spawn_with_clock};

const ORIGIN: &str = "https://shop.example";
const DAY: i64 = 86_400_000;

impl TestApp {
    async fn token(&self, subject: &str) -> (String, String) {
        let r = self
            .call(
                "POST",
                &format!("/v1/subjects/{subject}/site-token?site=shop"),
                Some(&self.admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        (
            r.body["site_key"].as_str().unwrap().to_owned(),
            r.body["token"].as_str().unwrap().to_owned(),
        )
    }

    async fn public(
        &self,
        origin: Option<&str>,
        gpc: bool,
        body: Value,
    ) -> (Reply, Option<String>) {
        let mut b = Request::builder()
            .method("POST")
            .uri("/v1/public/consents")
            .header("content-type", "application/json")
            .header("user-agent", "Firefox/140");
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        if gpc {
            b = b.header("sec-gpc", "1");
        }
        let req = b.body(Body::from(body.to_string())).unwrap();
        let resp = tower::ServiceExt::oneshot(self.app.clone(), req)
            .await
            .unwrap();
        let acao = resp
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned());
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (Reply { status, body, text }, acao)
    }

    async fn history(&self, subject: &str) -> Vec<Value> {
        let r = self
            .call(
                "GET",
                &format!("/v1/subjects/{subject}/consents"),
                Some(&self.admin),
                None,
            )
            .await;
        r.body["history"].as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn a_site_records_consent_for_its_subject_from_its_origin_only() {
    let clock = ManualClock::at(1_767_225_600_000);
    let t = spawn_with_clock(clock.clone()).await;
    let (_, subject) = t.create(json!({"email": "web@example.com"})).await;
    let (other_id, other) = t.create(json!({"email": "other@example.com"})).await;
    let _ = other_id;
    let (key, token) = t.token(&subject).await;
    assert!(key.starts_with("custos_pk_shop_"), "{key}");

    let grant =
        json!({"site_key": key, "subject_token": token, "choice": "grant", "purpose": "marketing"});
    let (r, acao) = t.public(Some(ORIGIN), false, grant.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(acao.as_deref(), Some(ORIGIN));
    let e = &r.body["recorded"][0];
    assert_eq!(e["choice"], "grant");
    assert_eq!(e["source"], "web_form");
    assert_eq!(e["evidence"]["collection_point"], ORIGIN);
    assert_eq!(e["evidence"]["user_agent"], "Firefox/140");
    assert_eq!(r.body["gpc_applied"], false);
    assert_eq!(t.history(&subject).await.len(), 1);

    // Refused: another origin, no origin, a key that is no site's, a token changed to name
    // another subject, a purpose the site does not ask about. Nothing is recorded.
    let (r, acao) = t
        .public(Some("https://evil.example"), false, grant.clone())
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
    assert_eq!(acao, None, "no CORS grant for an undeclared origin");
    let (r, _) = t.public(None, false, grant.clone()).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
    let mut forged = grant.clone();
    forged["site_key"] = json!("custos_pk_shop_0000000000000000");
    let (r, _) = t.public(Some(ORIGIN), false, forged).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
    let mut stolen = grant.clone();
    stolen["subject_token"] = json!(token.replace(&subject, &other));
    let (r, _) = t.public(Some(ORIGIN), false, stolen).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
    let mut billing = grant.clone();
    billing["purpose"] = json!("billing");
    let (r, _) = t.public(Some(ORIGIN), false, billing).await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("purpose"),
    );
    let (r, _) = t
        .public(
            Some(ORIGIN),
            false,
            json!({"site_key": key, "subject_token": token}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "malformed_request",
        Some("choice"),
    );
    // Larger than the public endpoint reads: the same 413 code as every other endpoint's.
    let mut huge = grant.clone();
    huge["notice_version"] = json!("v".repeat(17 * 1024));
    let (r, _) = t.public(Some(ORIGIN), false, huge).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None);
    assert_eq!(t.history(&subject).await.len(), 1);
    assert!(t.history(&other).await.is_empty());

    // A token expires after 30 days.
    clock.set(1_767_225_600_000 + 30 * DAY);
    let (r, _) = t.public(Some(ORIGIN), false, grant).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
}

#[tokio::test]
async fn global_privacy_control_opts_out_of_sale_and_sharing_and_wins() {
    let t = spawn_with_clock(ManualClock::at(1_767_225_600_000)).await;
    let (id, subject) = t.create(json!({"email": "gpc@example.com"})).await;
    // An earlier opt-in, through the API.
    let r = t
        .call(
            "POST",
            &format!("/v1/subjects/{subject}/consents"),
            Some(&t.admin),
            Some(json!({"choice": "grant", "purpose": "advertising"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let uri = format!("/v1/collections/customers/records/{id}?purpose=advertising");
    let r = t.call("GET", &uri, Some(&t.admin), None).await;
    assert!(r.body["fields"].get("email").is_some(), "{}", r.text);

    // The page asks to grant advertising again, but the browser sends GPC: GPC wins.
    let (key, token) = t.token(&subject).await;
    let (r, _) = t
        .public(
            Some(ORIGIN),
            true,
            json!({"site_key": key, "subject_token": token, "choice": "grant", "purpose": "advertising"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["gpc_applied"], true);
    assert_eq!(r.body["gpc_purposes"], json!(["advertising"]));
    assert_eq!(r.body["overridden"], "advertising");
    let recorded = r.body["recorded"].as_array().unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["choice"], "withdraw");
    assert_eq!(recorded[0]["source"], "gpc");
    assert_eq!(recorded[0]["purpose"], "advertising");
    let r = t.call("GET", &uri, Some(&t.admin), None).await;
    assert!(
        r.body["withheld"]
            .as_array()
            .unwrap()
            .contains(&json!({"field": "email", "reason": "consent_withdrawn"})),
        "{}",
        r.text
    );

    // The signal on the next page view changes nothing and adds nothing; a choice about a
    // purpose that is not sold or shared still counts.
    let before = t.history(&subject).await.len();
    let (r, _) = t
        .public(
            Some(ORIGIN),
            true,
            json!({"site_key": key, "subject_token": token, "choice": "grant", "purpose": "marketing"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let recorded = r.body["recorded"].as_array().unwrap();
    assert_eq!(recorded.len(), 1, "{}", r.text);
    assert_eq!(recorded[0]["purpose"], "marketing");
    assert_eq!(t.history(&subject).await.len(), before + 1);
    // The signal alone is enough to send.
    let (r, _) = t
        .public(
            Some(ORIGIN),
            true,
            json!({"site_key": key, "subject_token": token}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["recorded"], json!([]));
}

#[tokio::test]
async fn preflight_and_the_gpc_resource() {
    let t = spawn_with_clock(ManualClock::at(1_767_225_600_000)).await;
    for (origin, status, allowed) in [
        (ORIGIN, StatusCode::NO_CONTENT, true),
        ("http://localhost:8000", StatusCode::NO_CONTENT, true),
        ("https://evil.example", StatusCode::FORBIDDEN, false),
    ] {
        let req = Request::builder()
            .method("OPTIONS")
            .uri("/v1/public/consents")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap();
        let resp = tower::ServiceExt::oneshot(t.app.clone(), req)
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{origin}");
        let h = resp.headers();
        assert_eq!(
            h.get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            allowed.then_some(origin),
            "{origin}"
        );
        if allowed {
            assert!(
                h["access-control-allow-headers"]
                    .to_str()
                    .unwrap()
                    .contains("sec-gpc")
            );
        }
    }
    let r = t.call("GET", "/.well-known/gpc.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"gpc": true}));
}
