//! The consent ledger over HTTP, and the reads it decides.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{ManualClock, TestApp, assert_error, spawn, spawn_with_clock};

const DAY: i64 = 86_400_000;

impl TestApp {
    async fn choose(&self, subject: &str, body: Value) -> crate::Reply {
        self.call(
            "POST",
            &format!("/v1/subjects/{subject}/consents"),
            Some(&self.admin),
            Some(body),
        )
        .await
    }

    async fn ledger(&self, subject: &str) -> Value {
        let r = self
            .call(
                "GET",
                &format!("/v1/subjects/{subject}/consents"),
                Some(&self.admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body
    }

    /// The reason each field was withheld from `key` reading record `id` for `purpose`, or
    /// "returned".
    async fn outcome(&self, id: &str, purpose: &str, key: &str, field: &str) -> String {
        let r = self
            .call(
                "GET",
                &format!("/v1/collections/customers/records/{id}?purpose={purpose}"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.body["fields"].get(field).is_some() {
            return "returned".into();
        }
        r.body["withheld"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["field"] == field)
            .map(|w| w["reason"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{field} neither returned nor withheld: {}", r.text))
    }
}

fn purpose<'a>(ledger: &'a Value, id: &str) -> &'a Value {
    ledger["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["purpose"] == id)
        .unwrap()
}

#[tokio::test]
async fn grant_read_withdraw_and_the_read_is_withheld_and_audited() {
    let t = spawn().await;
    let (id, subject) = t.create(json!({"email": "grace@example.com"})).await;
    assert_eq!(
        t.outcome(&id, "marketing", &t.marketer, "email").await,
        "no_consent"
    );

    let r = t
        .choose(
            &subject,
            json!({
                "choice": "grant", "purpose": "marketing", "source": "web_form",
                "notice_version": "n-1",
                "evidence": {"collection_point": "https://shop.example/signup", "user_agent": "Firefox/140", "ip_address": "203.0.113.7"}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["choice"], "grant");
    assert_eq!(r.body["source"], "web_form");
    let hash = r.body["evidence"]["ip_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 64, "{}", r.text);
    assert!(!r.text.contains("203.0.113.7"), "{}", r.text);
    assert_eq!(
        t.outcome(&id, "marketing", &t.marketer, "email").await,
        "returned"
    );

    let r = t
        .choose(
            &subject,
            json!({"choice": "withdraw", "purpose": "marketing"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        t.outcome(&id, "marketing", &t.marketer, "email").await,
        "consent_withdrawn"
    );
    // The administrator is bound by the withdrawal too.
    assert_eq!(
        t.outcome(&id, "marketing", &t.admin, "email").await,
        "consent_withdrawn"
    );

    let ledger = t.ledger(&subject).await;
    let history = ledger["history"].as_array().unwrap();
    assert_eq!(
        history.iter().map(|e| &e["choice"]).collect::<Vec<_>>(),
        ["grant", "withdraw"],
        "oldest first"
    );
    assert_eq!(history[0]["evidence"]["ip_hash"], hash);
    assert_eq!(history[0]["notice_version"], "n-1");
    let m = purpose(&ledger, "marketing");
    assert_eq!(m["consent"], "withdrawn");
    assert_eq!(m["usable"], false);
    assert_eq!(m["reason"], "consent_withdrawn");
    assert_eq!(purpose(&ledger, "analytics")["consent"], "not_given");
    assert_eq!(purpose(&ledger, "billing")["usable"], true);
    assert!(purpose(&ledger, "billing").get("consent").is_none());

    // Both events are audit entries carrying the event whole; the withheld read says why.
    t.vault.sequence_audit().await.unwrap();
    let trail = t
        .vault
        .audit_trail(&custos_vault::Principal::Cli, subject.parse().unwrap())
        .await
        .unwrap();
    let recorded: Vec<_> = trail
        .iter()
        .filter_map(|r| r.entry.consent.as_ref())
        .collect();
    assert_eq!(recorded.len(), 2);
    assert_eq!(
        serde_json::to_value(recorded[0]).unwrap(),
        history[0],
        "the ledger's event is the audit entry's"
    );
    let last_read = trail
        .iter()
        .rev()
        .find(|r| r.entry.purpose.as_deref() == Some("marketing") && r.entry.consent.is_none())
        .unwrap();
    let withheld = serde_json::to_value(&last_read.entry.withheld).unwrap();
    assert!(
        withheld
            .as_array()
            .unwrap()
            .contains(&json!({"field": "email", "reason": "consent_withdrawn"})),
        "{withheld}"
    );
}

#[tokio::test]
async fn objection_and_restriction_withhold_until_taken_back() {
    let t = spawn().await;
    let (id, subject) = t
        .create(json!({"email": "alan@example.com", "name": "Alan"}))
        .await;
    assert_eq!(
        t.outcome(&id, "support", &t.support, "name").await,
        "returned"
    );
    let r = t
        .choose(
            &subject,
            json!({"choice": "object", "purpose": "support", "reason": "no more calls"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        t.outcome(&id, "support", &t.support, "name").await,
        "objection"
    );
    // An objection to one purpose leaves the others alone.
    assert_eq!(
        t.outcome(&id, "billing", &t.billing, "email").await,
        "returned"
    );
    t.choose(
        &subject,
        json!({"choice": "withdraw_objection", "purpose": "support"}),
    )
    .await;
    assert_eq!(
        t.outcome(&id, "support", &t.support, "name").await,
        "returned"
    );

    let r = t
        .choose(
            &subject,
            json!({"choice": "restrict", "reason": "accuracy contested"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        t.outcome(&id, "billing", &t.billing, "email").await,
        "restricted"
    );
    assert_eq!(
        t.outcome(&id, "support", &t.support, "name").await,
        "restricted"
    );
    assert_eq!(t.ledger(&subject).await["restricted"], true);
    t.choose(&subject, json!({"choice": "lift_restriction"}))
        .await;
    assert_eq!(
        t.outcome(&id, "billing", &t.billing, "email").await,
        "returned"
    );
}

#[tokio::test]
async fn consent_lapses_when_the_clock_passes_its_term() {
    let start = 1_767_225_600_000; // 2026-01-01
    let clock = ManualClock::at(start);
    let t = spawn_with_clock(clock.clone()).await;
    let (id, subject) = t.create(json!({"email": "lin@example.com"})).await;
    let r = t
        .choose(&subject, json!({"choice": "grant", "purpose": "marketing"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The example inventory lets marketing consent lapse after 13 months: 2027-02-01.
    let ledger = t.ledger(&subject).await;
    assert_eq!(
        purpose(&ledger, "marketing")["consent_until"],
        "2027-02-01T00:00:00.000Z"
    );
    clock.set(start + 396 * DAY - 1);
    assert_eq!(
        t.outcome(&id, "marketing", &t.marketer, "email").await,
        "returned"
    );
    clock.set(start + 396 * DAY);
    assert_eq!(
        t.outcome(&id, "marketing", &t.marketer, "email").await,
        "no_consent"
    );
    assert_eq!(
        purpose(&t.ledger(&subject).await, "marketing")["consent"],
        "lapsed"
    );

    // A grant with its own, shorter, expiry lapses at that expiry.
    let r = t
        .choose(
            &subject,
            json!({"choice": "grant", "purpose": "marketing", "expires_at": "2027-03-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["expires"], "2027-03-01T00:00:00.000Z");
    assert_eq!(
        t.outcome(&id, "marketing", &t.marketer, "email").await,
        "returned"
    );
    clock.set(1_803_859_200_000); // 2027-03-01
    assert_eq!(
        t.outcome(&id, "marketing", &t.marketer, "email").await,
        "no_consent"
    );
}

#[tokio::test]
async fn bad_choices_name_the_field_and_rule_and_record_nothing() {
    let t = spawn().await;
    let (_, subject) = t.create(json!({"email": "eve@example.com"})).await;
    let cases: &[(Value, StatusCode, &str, &str)] = &[
        (
            json!({"choice": "maybe", "purpose": "marketing"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "choice",
        ),
        (
            json!({"choice": "grant"}),
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "purpose",
        ),
        (
            json!({"choice": "grant", "purpose": "newsletter"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_purpose",
            "purpose",
        ),
        (
            json!({"choice": "grant", "purpose": "billing"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "purpose",
        ),
        (
            json!({"choice": "object", "purpose": "marketing"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "purpose",
        ),
        (
            json!({"choice": "restrict", "purpose": "billing"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "purpose",
        ),
        (
            json!({"choice": "grant", "purpose": "marketing", "source": "fax"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "source",
        ),
        (
            json!({"choice": "grant", "purpose": "marketing", "expires_at": "2001-01-01T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "expires_at",
        ),
        (
            json!({"choice": "grant", "purpose": "marketing", "expires_at": "next year"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "expires_at",
        ),
        (
            json!({"choice": "withdraw", "purpose": "marketing", "expires_at": "2999-01-01T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "expires_at",
        ),
        (
            json!({"choice": "grant", "purpose": "marketing", "evidence": {"ip_address": "203.0.113.999"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "evidence.ip_address",
        ),
        (
            json!({"choice": "grant", "purpose": "marketing", "evidence": {"user_agent": "x".repeat(600)}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "evidence.user_agent",
        ),
    ];
    for (body, status, code, field) in cases {
        let r = t.choose(&subject, body.clone()).await;
        assert_error(&r, *status, code, Some(field));
        assert!(!r.text.contains("203.0.113.999"), "{}", r.text);
    }
    let r = t
        .choose(
            &subject,
            json!({"choice": "grant", "purpose": "marketing", "colour": "red"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = t
        .choose(
            "0190b5a6-0000-7000-8000-000000000000",
            json!({"choice": "grant", "purpose": "marketing"}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found", None);
    let r = t
        .choose(
            "not-a-uuid",
            json!({"choice": "grant", "purpose": "marketing"}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "malformed_request", Some("id"));
    assert_eq!(
        t.ledger(&subject).await["history"],
        json!([]),
        "nothing was recorded"
    );
}

#[tokio::test]
async fn the_ip_address_reaches_no_byte_on_disk() {
    let t = spawn().await;
    let (_, subject) = t.create(json!({"email": "ip@example.com"})).await;
    let ip = "198.51.100.73";
    let r = t
        .choose(
            &subject,
            json!({"choice": "grant", "purpose": "marketing", "evidence": {"ip_address": ip}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The same address written differently hashes alike: the hash can confirm a claim.
    let again = t
        .choose(
            &subject,
            json!({"choice": "grant", "purpose": "analytics", "evidence": {"ip_address": format!("::ffff:{ip}")}}),
        )
        .await;
    assert_eq!(
        again.body["evidence"]["ip_hash"],
        r.body["evidence"]["ip_hash"]
    );
    t.vault.sequence_audit().await.unwrap();
    for entry in std::fs::read_dir(t.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(ip.len()).any(|w| w == ip.as_bytes()),
            "the plain address reached the disk"
        );
    }
}

#[tokio::test]
async fn a_receipt_carries_the_event_and_its_proof_and_unknown_events_are_not_found() {
    let t = spawn().await;
    let (_, subject) = t.create(json!({"email": "rc@example.com"})).await;
    let r = t
        .choose(
            &subject,
            json!({"choice": "grant", "purpose": "marketing", "notice_version": "n-7"}),
        )
        .await;
    let event = r.body["id"].as_str().unwrap().to_owned();
    let r = t
        .call(
            "GET",
            &format!("/v1/consents/{event}/receipt"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let receipt = &r.body["receipt"];
    assert_eq!(receipt["receipt_id"], event.as_str());
    assert_eq!(receipt["pii_principal_id"], subject.as_str());
    assert_eq!(receipt["pii_controller"]["name"], "Example Shop Ltd");
    assert_eq!(receipt["notice_version"], "n-7");
    assert_eq!(receipt["purposes"][0]["purpose"], "marketing");
    assert_eq!(
        receipt["purposes"][0]["pii_categories"],
        json!(["commercial", "contact"])
    );
    assert_eq!(
        receipt["purposes"][0]["termination"],
        "when withdrawn, or 13m after it was given, whichever is first"
    );
    let head = t.vault.audit_head().await.unwrap();
    let key = custos_core::receipt::parse_public_key(&head.public_key).unwrap();
    let checked =
        custos_core::receipt::verify(r.body["jws"].as_str().unwrap(), Some(&key)).unwrap();
    assert_eq!(serde_json::to_value(&checked).unwrap(), *receipt);

    for (uri, status, code) in [
        (
            "/v1/consents/0190b5a6-0000-7000-8000-000000000000/receipt",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/v1/consents/nope/receipt",
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
    ] {
        let r = t.call("GET", uri, Some(&t.admin), None).await;
        assert_eq!(r.status, status, "{}", r.text);
        assert_eq!(r.body["error"]["code"], code, "{}", r.text);
    }
}

#[tokio::test]
async fn the_privacy_notice_lists_what_the_inventory_declares_and_consents_name_its_version() {
    let t = spawn().await;
    let r = t.call("GET", "/v1/privacy-notice", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let version = r.body["version"].as_str().unwrap().to_owned();
    assert_eq!(r.body["controller"]["contact"], "privacy@shop.example");

    let req = axum::http::Request::builder()
        .uri("/privacy")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(t.app.clone(), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    let html = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    let inv = t.vault.inventory();
    for p in &inv.purposes {
        assert!(html.contains(&format!("<h3>{}</h3>", p.id)), "{}", p.id);
        assert!(html.contains(&p.description), "{}", p.description);
    }
    for needle in [
        "Example Payments Ltd (in IE)",
        "privacy@shop.example",
        "2y after created",
        "3y after last_activity",
        "We ask for your consent again after 13m",
        "withdraw consent",
        &version,
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
    for external in ["http://", "https://", "<script", "<link", "src=", "url("] {
        assert!(!html.contains(external), "the page loads {external}");
    }

    // A consent recorded without a notice version names the one published now.
    let (_, subject) = t.create(json!({"email": "notice@example.com"})).await;
    let r = t
        .choose(&subject, json!({"choice": "grant", "purpose": "analytics"}))
        .await;
    assert_eq!(r.body["notice_version"], version.as_str());
}
