//! Every endpoint refuses the caller who must be refused.

use axum::http::StatusCode;
use serde_json::json;

use crate::{assert_error, spawn};

#[tokio::test]
async fn every_v1_endpoint_refuses_a_missing_wrong_or_revoked_key() {
    let t = spawn().await;
    let (id, subject) = t.create(json!({"email": "refuse@example.com"})).await;
    let endpoints = [
        ("POST", "/v1/collections/customers/records".to_owned()),
        (
            "GET",
            "/v1/collections/customers/records?purpose=support&email=refuse@example.com".to_owned(),
        ),
        (
            "GET",
            format!("/v1/collections/customers/records/{id}?purpose=support"),
        ),
        ("PATCH", format!("/v1/collections/customers/records/{id}")),
        ("DELETE", format!("/v1/collections/customers/records/{id}")),
        (
            "GET",
            format!("/v1/subjects/{subject}/records?purpose=support"),
        ),
        ("GET", format!("/v1/audit?subject_id={subject}")),
        ("GET", "/v1/audit/head".to_owned()),
        ("GET", "/v1/audit/proof/0".to_owned()),
        ("GET", "/v1/inventory".to_owned()),
        ("POST", format!("/v1/subjects/{subject}/consents")),
        ("GET", format!("/v1/subjects/{subject}/consents")),
        (
            "GET",
            "/v1/consents/0190b5a6-0000-7000-8000-000000000000/receipt".to_owned(),
        ),
        (
            "POST",
            format!("/v1/collections/customers/records/{id}/legal-hold"),
        ),
        (
            "POST",
            format!("/v1/subjects/{subject}/site-token?site=shop"),
        ),
        (
            "DELETE",
            format!("/v1/collections/customers/records/{id}/legal-hold"),
        ),
    ];
    t.vault
        .revoke_api_key(&custos_vault::Principal::Cli, "billing")
        .await
        .unwrap();
    let wrong = format!("custos_{}", "0".repeat(64));
    for (method, uri) in &endpoints {
        let body = matches!(*method, "POST" | "PATCH")
            .then(|| json!({"fields": {"email": "x@example.com"}}));
        for key in [
            None,
            Some(wrong.as_str()),
            Some("not-even-a-custos-key"),
            Some(t.billing.as_str()),
        ] {
            let r = t.call(method, uri, key, body.clone()).await;
            assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated", None);
        }
    }
    // A key in another scheme is refused too.
    let req = axum::http::Request::builder()
        .uri("/v1/inventory")
        .header("authorization", format!("Basic {}", t.admin))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(t.raw(req).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.count().await, 1, "nothing was written");
}

#[tokio::test]
async fn roles_are_refused_what_the_inventory_does_not_give_them() {
    let t = spawn().await;
    let (id, subject) = t
        .create(json!({"email": "roles@example.com", "birth_date": "1990-01-01"}))
        .await;
    let rec = format!("/v1/collections/customers/records/{id}");
    let cases = [
        // Only admin writes in the example inventory.
        (
            "POST",
            "/v1/collections/customers/records".to_owned(),
            t.support.clone(),
            Some(json!({"fields": {"email": "a@example.com"}})),
        ),
        (
            "PATCH",
            rec.clone(),
            t.marketer.clone(),
            Some(json!({"fields": {"notes": "x"}})),
        ),
        ("DELETE", rec.clone(), t.billing.clone(), None),
        // A role may read only for its own purposes.
        (
            "GET",
            format!("{rec}?purpose=billing"),
            t.support.clone(),
            None,
        ),
        (
            "GET",
            format!("{rec}?purpose=analytics"),
            t.marketer.clone(),
            None,
        ),
        (
            "GET",
            format!("/v1/subjects/{subject}/records?purpose=marketing"),
            t.billing.clone(),
            None,
        ),
        (
            "GET",
            "/v1/collections/customers/records?purpose=support&email=roles@example.com".to_owned(),
            t.marketer.clone(),
            None,
        ),
        // A role may search only a field declared for the purpose.
        (
            "GET",
            "/v1/collections/customers/records?purpose=marketing&phone=020%207946%200000"
                .to_owned(),
            t.marketer.clone(),
            None,
        ),
        // Only admin reads the audit trail and its entries.
        (
            "GET",
            format!("/v1/audit?subject_id={subject}"),
            t.support.clone(),
            None,
        ),
        (
            "GET",
            "/v1/audit/proof/0".to_owned(),
            t.marketer.clone(),
            None,
        ),
    ];
    for (method, uri, key, body) in cases {
        let r = t.call(method, &uri, Some(&key), body).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
    }
    assert_eq!(t.count().await, 1);
    let r = t
        .call(
            "GET",
            &format!("{rec}?purpose=support"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(
        r.body["fields"]["email"], "roles@example.com",
        "the record is unchanged: {}",
        r.text
    );
}

#[tokio::test]
async fn refused_reads_are_audited() {
    let t = spawn().await;
    let (id, _) = t.create(json!({"email": "denied@example.com"})).await;
    let r = t
        .call(
            "GET",
            &format!("/v1/collections/customers/records/{id}?purpose=billing"),
            Some(&t.support),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    t.vault.sequence_audit().await.unwrap();
    let head = t.vault.audit_head().await.unwrap();
    let last = t
        .vault
        .audit_proof(&custos_vault::Principal::Cli, head.size - 1)
        .await
        .unwrap();
    let entry: serde_json::Value = serde_json::from_str(&last.entry).unwrap();
    assert_eq!(entry["outcome"], "denied");
    assert_eq!(entry["actor"], "apikey:support");
    assert_eq!(entry["purpose"], "billing");

    // A search on a field not declared for the purpose is refused and audited too.
    let r = t
        .call(
            "GET",
            "/v1/collections/customers/records?purpose=marketing&phone=02079460000",
            Some(&t.marketer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let head = t.vault.audit_head().await.unwrap();
    let last = t
        .vault
        .audit_proof(&custos_vault::Principal::Cli, head.size - 1)
        .await
        .unwrap();
    let entry: serde_json::Value = serde_json::from_str(&last.entry).unwrap();
    assert_eq!(
        (entry["action"].as_str(), entry["outcome"].as_str()),
        (Some("record.search"), Some("denied"))
    );
    assert_eq!(entry["fields"], serde_json::json!(["phone"]));
    assert!(
        !last.entry.contains("02079460000"),
        "the searched value is not in the entry"
    );
}

#[tokio::test]
async fn the_consent_ledger_is_refused_to_roles_that_may_not_write() {
    let t = spawn().await;
    let (_, subject) = t.create(json!({"email": "ledger@example.com"})).await;
    let uri = format!("/v1/subjects/{subject}/consents");
    for key in [&t.marketer, &t.support, &t.billing] {
        let r = t
            .call(
                "POST",
                &uri,
                Some(key),
                Some(json!({"choice": "grant", "purpose": "marketing"})),
            )
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
        let r = t.call("GET", &uri, Some(key), None).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
    }
    let r = t.call("GET", &uri, Some(&t.admin), None).await;
    assert_eq!(r.body["history"], json!([]), "nothing was recorded");
    // Receipts too: the refusal comes before the event is looked for.
    let r = t
        .call(
            "POST",
            &uri,
            Some(&t.admin),
            Some(json!({"choice": "grant", "purpose": "marketing"})),
        )
        .await;
    let receipt = format!("/v1/consents/{}/receipt", r.body["id"].as_str().unwrap());
    for key in [&t.marketer, &t.support, &t.billing] {
        let r = t.call("GET", &receipt, Some(key), None).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
    }
    let r = t.call("GET", &receipt, Some(&t.admin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Site tokens too.
    let token = format!("/v1/subjects/{subject}/site-token?site=shop");
    for key in [&t.marketer, &t.support, &t.billing] {
        let r = t.call("POST", &token, Some(key), None).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
    }
}
