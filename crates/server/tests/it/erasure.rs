//! Erasure over HTTP: what goes, what a legal hold keeps, the certificate, and who is
//! refused (issue 9).

use axum::http::StatusCode;
use custos_core::verify::{Document, Signer, verify_file};
use serde_json::{Value, json};

use crate::{assert_error, spawn};

#[tokio::test]
async fn an_erased_subject_is_gone_and_the_certificate_proves_it() {
    let t = spawn().await;
    let (a, subject) = t
        .create(json!({"email": "erase.me@example.com", "name": "Erase Me"}))
        .await;
    let r = t
        .call(
            "POST",
            "/v1/collections/customers/records",
            Some(&t.admin),
            Some(json!({"subject_id": subject, "fields": {"email": "second@example.com"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let b = r.body["id"].as_str().unwrap().to_owned();
    let r = t
        .call(
            "POST",
            &format!("/v1/subjects/{subject}/consents"),
            Some(&t.admin),
            Some(json!({"purpose": "marketing", "choice": "grant", "source": "api"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let r = t
        .call(
            "POST",
            &format!("/v1/subjects/{subject}/erase"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let erasure = &r.body["certificate"]["erasure"];
    assert_eq!(erasure["records_erased"]["customers"], 2, "{}", r.text);
    assert_eq!(erasure["key_destroyed"], true);
    assert_eq!(erasure["kept"], json!([]));
    assert!(!r.text.contains("erase.me"), "{}", r.text);

    // The certificate verifies offline against the log's published key.
    let key = t
        .call("GET", "/.well-known/custos-log-key", None, None)
        .await;
    assert_eq!(key.status, StatusCode::OK);
    let key = custos_core::signed::parse_public_key(&key.text).unwrap();
    let v = verify_file(&r.text, Some(&key)).unwrap();
    assert_eq!(v.signer, Signer::Trusted);
    let Document::ErasureCertificate(c) = v.document else {
        panic!("not a certificate")
    };
    assert_eq!(c.subject_id.to_string(), subject);

    // Reads, searches, the subject's records and ledger: gone.
    for id in [&a, &b] {
        let r = t
            .call(
                "GET",
                &format!("/v1/collections/customers/records/{id}?purpose=support"),
                Some(&t.admin),
                None,
            )
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found", None);
    }
    let r = t
        .call(
            "GET",
            "/v1/collections/customers/records?purpose=support&email=erase.me@example.com",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r.body["records"], json!([]), "{}", r.text);
    for path in ["records?purpose=support", "consents"] {
        let r = t
            .call(
                "GET",
                &format!("/v1/subjects/{subject}/{path}"),
                Some(&t.admin),
                None,
            )
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found", None);
    }
    // No new record can be filed under the erased subject, and it cannot be erased twice.
    let r = t
        .call(
            "POST",
            "/v1/collections/customers/records",
            Some(&t.admin),
            Some(json!({"subject_id": subject, "fields": {"email": "back@example.com"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = t
        .call(
            "POST",
            &format!("/v1/subjects/{subject}/erase"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found", None);

    // The certificate is served again, and the erasure list names the subject.
    let again = t
        .call(
            "GET",
            &format!("/v1/subjects/{subject}/erasure-certificate"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["certificate"]["erasure"], *erasure);
    verify_file(&again.text, Some(&key)).unwrap();
    let list = t.call("GET", "/v1/erasures", Some(&t.admin), None).await;
    assert_eq!(
        list.body["erasures"][0]["subject_id"],
        subject.as_str(),
        "{}",
        list.text
    );

    // The audit log still verifies, and kept the consent event.
    assert!(
        t.vault
            .verify_audit(&custos_vault::Principal::Cli)
            .await
            .unwrap()
            .is_ok()
    );
}

#[tokio::test]
async fn a_legal_hold_keeps_its_record_and_the_certificate_says_why() {
    let t = spawn().await;
    let (held, subject) = t
        .create(json!({"email": "held@example.com", "name": "Held"}))
        .await;
    let r = t
        .call(
            "POST",
            "/v1/collections/customers/records",
            Some(&t.admin),
            Some(json!({"subject_id": subject, "fields": {"email": "gone@example.com"}})),
        )
        .await;
    let gone = r.body["id"].as_str().unwrap().to_owned();
    let r = t
        .call(
            "POST",
            &format!("/v1/collections/customers/records/{held}/legal-hold"),
            Some(&t.admin),
            Some(json!({"reason": "claim 2026-7"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = t
        .call(
            "POST",
            &format!("/v1/subjects/{subject}/erase"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let erasure = &r.body["certificate"]["erasure"];
    assert_eq!(erasure["key_destroyed"], false);
    assert_eq!(erasure["records_erased"]["customers"], 1);
    assert_eq!(erasure["kept"][0]["record_id"], held.as_str());
    assert_eq!(erasure["kept"][0]["reason"], "legal_hold");
    let statement = r.body["certificate"]["statement"].as_str().unwrap();
    assert!(
        statement.contains("a legal hold stands on it"),
        "{statement}"
    );
    // The held record is still there for whoever holds it; the other is gone.
    let read = |id: String| {
        let t = &t;
        async move {
            t.call(
                "GET",
                &format!("/v1/collections/customers/records/{id}?purpose=support"),
                Some(&t.admin),
                None,
            )
            .await
        }
    };
    let r = read(held.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["fields"]["email"], "held@example.com");
    // What was kept is kept as it was: nothing is added back to it.
    let r = t
        .call(
            "PATCH",
            &format!("/v1/collections/customers/records/{held}"),
            Some(&t.admin),
            Some(json!({"fields": {"phone": "+44 20 7946 0001"}})),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "conflict", None);
    assert!(
        read(held.clone()).await.body["fields"]
            .get("phone")
            .is_none()
    );
    // The right of access still covers what was kept.
    let r = t
        .call(
            "GET",
            &format!("/v1/subjects/{subject}/export"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.contains(&held) && r.text.contains("held@example.com"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("gone@example.com"), "{}", r.text);
    assert_error(&read(gone).await, StatusCode::NOT_FOUND, "not_found", None);
}

#[tokio::test]
async fn erasure_refuses_whoever_may_not_and_changes_nothing() {
    let t = spawn().await;
    let (id, subject) = t.create(json!({"email": "stay@example.com"})).await;
    let erase = format!("/v1/subjects/{subject}/erase");
    let cert = format!("/v1/subjects/{subject}/erasure-certificate");
    for (method, path) in [
        ("POST", erase.as_str()),
        ("GET", cert.as_str()),
        ("GET", "/v1/erasures"),
    ] {
        let r = t.call(method, path, None, None).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated", None);
        for key in [&t.support, &t.marketer, &t.billing] {
            let r = t.call(method, path, Some(key), None).await;
            assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
        }
    }
    for bad in ["not-a-uuid", "1234"] {
        let r = t
            .call(
                "POST",
                &format!("/v1/subjects/{bad}/erase"),
                Some(&t.admin),
                None,
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "malformed_request", Some("id"));
    }
    let unknown = custos_core::ids::SubjectId::random();
    let r = t
        .call(
            "POST",
            &format!("/v1/subjects/{unknown}/erase"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found", None);
    let r = t.call("GET", &cert, Some(&t.admin), None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found", None);
    // Nothing changed: the record reads, and the list is empty.
    let r = t
        .call(
            "GET",
            &format!("/v1/collections/customers/records/{id}?purpose=support"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let list = t.call("GET", "/v1/erasures", Some(&t.admin), None).await;
    assert_eq!(list.body["erasures"], Value::Array(vec![]));
}
