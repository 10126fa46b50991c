//! The API's behaviour: records, purposes, search, errors, limits, documents.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::{assert_error, spawn};

#[tokio::test]
async fn create_read_patch_delete() {
    let t = spawn().await;
    let (id, subject) = t
        .create(json!({
            "name": "Ada Lovelace", "email": "Ada@Example.COM", "phone": "020 7946 0958",
            "birth_date": "1815-12-10", "country": "gb", "notes": "Prefers email",
            "address": {"lines": ["12 St James's Square"], "locality": "London", "postal_code": "SW1Y 4JH", "country": "GB"}
        }))
        .await;
    let rec = format!("/v1/collections/customers/records/{id}");

    let r = t
        .call(
            "GET",
            &format!("{rec}?purpose=billing"),
            Some(&t.billing),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["subject_id"], subject.as_str());
    assert_eq!(
        r.body["fields"]["email"], "Ada@example.com",
        "domain lower-cased, local part kept"
    );
    assert_eq!(r.body["fields"]["phone"], "+442079460958", "E.164");
    assert_eq!(r.body["fields"]["country"], "GB");
    assert_eq!(r.body["fields"]["address"]["locality"], "London");
    let withheld: Vec<(&str, &str)> = r.body["withheld"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["field"].as_str().unwrap(), w["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        withheld,
        [
            ("birth_date", "purpose_not_declared"),
            ("notes", "purpose_not_declared")
        ]
    );

    // Marketing rests on consent: nothing until it is given.
    let r = t
        .call(
            "GET",
            &format!("{rec}?purpose=marketing"),
            Some(&t.marketer),
            None,
        )
        .await;
    assert_eq!(r.body["fields"], json!({}), "{}", r.text);
    assert!(
        r.body["withheld"]
            .as_array()
            .unwrap()
            .contains(&json!({"field": "email", "reason": "no_consent"})),
        "{}",
        r.text
    );
    let r = t
        .call(
            "POST",
            &format!("/v1/subjects/{subject}/consents"),
            Some(&t.admin),
            Some(json!({"choice": "grant", "purpose": "marketing"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = t
        .call(
            "GET",
            &format!("{rec}?purpose=marketing"),
            Some(&t.marketer),
            None,
        )
        .await;
    assert_eq!(
        r.body["fields"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["email"],
        "{}",
        r.text
    );

    let r = t
        .call(
            "PATCH",
            &rec,
            Some(&t.admin),
            Some(json!({"fields": {"notes": null, "phone": "+44 20 7946 0000"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = t
        .call(
            "GET",
            &format!("{rec}?purpose=support"),
            Some(&t.support),
            None,
        )
        .await;
    assert_eq!(r.body["fields"]["phone"], "+442079460000");
    assert!(r.body["fields"].get("notes").is_none(), "{}", r.text);
    // The old phone is no longer found; the new one is.
    let old = t
        .call(
            "GET",
            "/v1/collections/customers/records?purpose=support&phone=020%207946%200958",
            Some(&t.support),
            None,
        )
        .await;
    assert_eq!(
        old.body["records"].as_array().unwrap().len(),
        0,
        "{}",
        old.text
    );
    let new = t
        .call(
            "GET",
            "/v1/collections/customers/records?purpose=support&phone=02079460000",
            Some(&t.support),
            None,
        )
        .await;
    assert_eq!(
        new.body["records"].as_array().unwrap().len(),
        1,
        "{}",
        new.text
    );

    let r = t
        .call(
            "GET",
            &format!("/v1/subjects/{subject}/records?purpose=support"),
            Some(&t.support),
            None,
        )
        .await;
    assert_eq!(r.body["records"][0]["id"], id.as_str(), "{}", r.text);

    assert_eq!(
        t.call("DELETE", &rec, Some(&t.admin), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &t.call(
            "GET",
            &format!("{rec}?purpose=support"),
            Some(&t.admin),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert_error(
        &t.call("DELETE", &rec, Some(&t.admin), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    let gone = t
        .call(
            "GET",
            "/v1/collections/customers/records?purpose=support&email=ada@example.com",
            Some(&t.support),
            None,
        )
        .await;
    assert_eq!(
        gone.body["records"].as_array().unwrap().len(),
        0,
        "blind-index entries go with the record"
    );
}

#[tokio::test]
async fn search_normalises_like_storage() {
    let t = spawn().await;
    let (ada, _) = t
        .create(json!({"email": "ada@example.com", "phone": "+44 20 7946 0958"}))
        .await;
    t.create(json!({"email": "grace@example.com"})).await;
    for q in [
        "email=Ada@Example.COM",
        "email=ada%40example.com",
        "phone=020%207946%200958",
        "phone=%2B44%2020%207946%200958",
    ] {
        let r = t
            .call(
                "GET",
                &format!("/v1/collections/customers/records?purpose=support&{q}"),
                Some(&t.support),
                None,
            )
            .await;
        let recs = r.body["records"].as_array().unwrap();
        assert_eq!(recs.len(), 1, "{q}: {}", r.text);
        assert_eq!(recs[0]["id"], ada.as_str());
    }
    // (query, status, error code, field at fault)
    let refused = [
        (
            "name=Ada",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "name",
        ),
        ("", StatusCode::BAD_REQUEST, "malformed_request", "query"),
        (
            "email=a@b.example&phone=1",
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "query",
        ),
        (
            "email=nobody",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "email",
        ),
    ];
    for (q, status, code, field) in refused {
        let uri = format!("/v1/collections/customers/records?purpose=support&{q}");
        let r = t.call("GET", &uri, Some(&t.support), None).await;
        assert_error(&r, status, code, Some(field));
    }
}

#[tokio::test]
async fn purposes_are_required_and_declared() {
    let t = spawn().await;
    let (id, _) = t.create(json!({"email": "p@example.com"})).await;
    let rec = format!("/v1/collections/customers/records/{id}");
    assert_error(
        &t.call("GET", &rec, Some(&t.admin), None).await,
        StatusCode::BAD_REQUEST,
        "malformed_request",
        Some("purpose"),
    );
    assert_error(
        &t.call("GET", &format!("{rec}?purpose="), Some(&t.admin), None)
            .await,
        StatusCode::BAD_REQUEST,
        "malformed_request",
        Some("purpose"),
    );
    assert_error(
        &t.call(
            "GET",
            &format!("{rec}?purpose=profiling"),
            Some(&t.admin),
            None,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_purpose",
        Some("purpose"),
    );
    let r = t
        .call(
            "GET",
            &format!("/v1/collections/orders/records/{id}?purpose=billing"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_collection",
        Some("collection"),
    );
    assert_error(
        &t.call(
            "GET",
            "/v1/collections/customers/records/not-a-uuid?purpose=billing",
            Some(&t.admin),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "malformed_request",
        Some("id"),
    );
}

/// A hostile or malformed body gets a 4xx with a clear error, and changes nothing.
#[tokio::test]
async fn bad_bodies_change_nothing() {
    let t = spawn().await;
    let (id, _) = t
        .create(json!({"email": "keep@example.com", "name": "Keep Me"}))
        .await;
    let before = t.count().await;
    let post = "/v1/collections/customers/records";
    let patch = format!("/v1/collections/customers/records/{id}");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let huge = json!({"fields": {"email": "a@example.com", "notes": "x".repeat(2 * 1024 * 1024)}})
        .to_string();
    let long = json!({"fields": {"email": "a@example.com", "notes": "x".repeat(4001)}}).to_string();
    // (method, uri, body, status, error code, field at fault)
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<u8>,
        StatusCode,
        &'a str,
        Option<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        ("POST", post, b"{\"fields\": {".to_vec(), StatusCode::BAD_REQUEST, "malformed_json", None),
        ("POST", post, b"not json".to_vec(), StatusCode::BAD_REQUEST, "malformed_json", None),
        ("POST", post, deep.into_bytes(), StatusCode::BAD_REQUEST, "malformed_json", None),
        ("POST", post, b"{\"fields\": {\"email\": \"\xff\xfe@example.com\"}}".to_vec(), StatusCode::BAD_REQUEST, "malformed_json", None),
        ("POST", post, b"{\"fields\": []}".to_vec(), StatusCode::BAD_REQUEST, "malformed_json", None),
        ("POST", post, b"{\"fields\": {}, \"extra\": 1}".to_vec(), StatusCode::BAD_REQUEST, "malformed_json", None),
        ("POST", post, b"{\"subject_id\": 7, \"fields\": {}}".to_vec(), StatusCode::BAD_REQUEST, "malformed_json", None),
        ("POST", post, b"{\"subject_id\": \"nope\", \"fields\": {\"email\": \"a@example.com\"}}".to_vec(), StatusCode::BAD_REQUEST, "malformed_request", Some("subject_id")),
        ("POST", post, huge.into_bytes(), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None),
        ("POST", post, long.into_bytes(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("notes")),
        ("POST", post, br#"{"fields": {"email": "a@example.com", "ssn": "078-05-1120"}}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "undeclared_field", Some("ssn")),
        ("POST", post, br#"{"fields": {"email": ["a@example.com"]}}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("email")),
        ("POST", post, br#"{"fields": {"name": "No Email"}}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("email")),
        ("POST", post, br#"{"subject_id": "00000000-0000-4000-8000-000000000000", "fields": {"email": "a@example.com"}}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "unknown_subject", Some("subject_id")),
        ("POST", "/v1/collections/orders/records", br#"{"fields": {"email": "a@example.com"}}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "unknown_collection", Some("collection")),
        ("PATCH", &patch, br#"{"fields": {"email": null}}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("email")),
        ("PATCH", &patch, br#"{"fields": {"name": "Changed", "phone": "12"}}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("phone")),
        ("PATCH", &patch, br#"{"fields": {}}"#.to_vec(), StatusCode::BAD_REQUEST, "malformed_request", Some("fields")),
    ];
    for (method, uri, body, status, code, field) in cases {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", t.admin))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let r = t.raw(req).await;
        assert_error(&r, status, code, field);
    }
    let req = Request::builder()
        .method("POST")
        .uri(post)
        .header("authorization", format!("Bearer {}", t.admin))
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"fields": {"email": "a@example.com"}}"#))
        .unwrap();
    assert_error(
        &t.raw(req).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        None,
    );

    assert_eq!(t.count().await, before, "no bad body created a record");
    let r = t
        .call(
            "GET",
            &format!("{patch}?purpose=support"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(
        r.body["fields"],
        json!({"email": "keep@example.com", "name": "Keep Me"}),
        "no bad patch changed the record"
    );
}

#[tokio::test]
async fn errors_never_echo_a_personal_value() {
    let t = spawn().await;
    let canary = "zq-canary-5c1e";
    let bodies = [
        json!({"fields": {"email": format!("{canary}@localhost")}}),
        json!({"fields": {"email": "a@example.com", "phone": canary}}),
        json!({"fields": {"email": "a@example.com", "birth_date": canary}}),
        json!({"fields": {"email": "a@example.com", "ssn": canary}}),
        json!({"fields": {"email": "a@example.com", canary: "1"}}),
        json!({"fields": {"email": "a@example.com", "address": {"lines": [canary], "country": canary}}}),
        json!({"fields": {"email": "a@example.com", "vip": canary}}),
        json!({"fields": {"email": {"nested": canary}}}),
        json!({"fields": canary}),
    ];
    for b in bodies {
        let r = t
            .call(
                "POST",
                "/v1/collections/customers/records",
                Some(&t.admin),
                Some(b.clone()),
            )
            .await;
        assert!(r.status.is_client_error(), "{b}: {}", r.text);
        assert!(
            !r.text.contains(canary),
            "error body echoes the value: {}",
            r.text
        );
    }
    let r = t
        .call(
            "GET",
            &format!("/v1/collections/customers/records?purpose=support&email={canary}"),
            Some(&t.support),
            None,
        )
        .await;
    assert!(
        r.status.is_client_error() && !r.text.contains(canary),
        "{}",
        r.text
    );
    for uri in [
        format!("/v1/collections/customers/records?purpose=support&{canary}=1"),
        format!("/v1/collections/customers/records?purpose={canary}&email=a@example.com"),
        format!("/v1/collections/{canary}/records?purpose=support&email=a@example.com"),
    ] {
        let r = t.call("GET", &uri, Some(&t.support), None).await;
        assert!(
            r.status.is_client_error() && !r.text.contains(canary),
            "{uri}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn audit_head_and_proofs_verify() {
    let t = spawn().await;
    let (_, subject) = t.create(json!({"email": "audit@example.com"})).await;
    t.call(
        "GET",
        &format!("/v1/subjects/{subject}/records?purpose=support"),
        Some(&t.support),
        None,
    )
    .await;
    let head = t
        .call("GET", "/v1/audit/head", Some(&t.support), None)
        .await;
    assert_eq!(head.status, StatusCode::OK, "{}", head.text);
    let size = head.body["size"].as_u64().unwrap();
    assert!(
        size >= 6,
        "4 key creations, a write and a read: {}",
        head.text
    );
    let root = hex32(&head.body["root_hash"]);
    for i in 0..size {
        let p = t
            .call("GET", &format!("/v1/audit/proof/{i}"), Some(&t.admin), None)
            .await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text);
        let leaf = custos_core::merkle::leaf_hash(p.body["entry"].as_str().unwrap().as_bytes());
        assert_eq!(hex::encode(leaf), p.body["leaf_hash"].as_str().unwrap());
        let path: Vec<[u8; 32]> = p.body["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(hex32)
            .collect();
        custos_core::merkle::verify_inclusion(i, size, &leaf, &path, &root).unwrap();
    }
    assert_error(
        &t.call(
            "GET",
            &format!("/v1/audit/proof/{size}"),
            Some(&t.admin),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert_error(
        &t.call("GET", "/v1/audit/proof/x", Some(&t.admin), None)
            .await,
        StatusCode::BAD_REQUEST,
        "malformed_request",
        Some("index"),
    );

    let trail = t
        .call(
            "GET",
            &format!("/v1/audit?subject_id={subject}"),
            Some(&t.admin),
            None,
        )
        .await;
    let actions: Vec<&str> = trail.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["record.create", "record.read"], "{}", trail.text);
    let read = &trail.body["entries"][1]["entry"];
    assert_eq!(read["purpose"], "support");
    assert_eq!(read["actor"], "apikey:support");
    assert!(
        !trail.text.contains("audit@example.com"),
        "entries hold no personal value"
    );
}

fn hex32(v: &Value) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(v.as_str().unwrap(), &mut out).unwrap();
    out
}

#[tokio::test]
async fn documents_and_operations() {
    let t = spawn().await;
    let doc = t.call("GET", "/openapi.json", None, None).await;
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths: Vec<&String> = doc.body["paths"].as_object().unwrap().keys().collect();
    for p in [
        "/v1/collections/{collection}/records",
        "/v1/collections/{collection}/records/{id}",
        "/v1/subjects/{id}/records",
        "/v1/audit",
        "/v1/audit/head",
        "/v1/audit/proof/{index}",
        "/v1/inventory",
        "/healthz",
        "/metrics",
    ] {
        assert!(
            paths.iter().any(|x| x.as_str() == p),
            "{p} missing from {paths:?}"
        );
    }
    let methods = doc.body["paths"]["/v1/collections/{collection}/records/{id}"]
        .as_object()
        .unwrap();
    assert!(
        methods.contains_key("get")
            && methods.contains_key("patch")
            && methods.contains_key("delete")
    );
    assert_eq!(
        t.call("GET", "/healthz", None, None).await.body["status"],
        "ok"
    );
    let inv = t.call("GET", "/v1/inventory", Some(&t.support), None).await;
    assert_eq!(
        inv.body["collections"]["customers"]["fields"]["email"]["type"],
        "email"
    );
    assert_error(
        &t.call("GET", "/v2/nothing", None, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );

    let (id, _) = t.create(json!({"email": "metrics@example.com"})).await;
    t.call(
        "GET",
        &format!("/v1/collections/customers/records/{id}?purpose=support"),
        Some(&t.support),
        None,
    )
    .await;
    let m = t.call("GET", "/metrics", None, None).await;
    assert!(m.text.contains(r#"custos_http_requests_total{method="GET",route="/v1/collections/{collection}/records/{id}",status="200"} 1"#), "{}", m.text);
    assert!(
        !m.text.contains(&id) && !m.text.contains("metrics@example.com"),
        "labels carry templates only"
    );
}

/// A personal value cannot reach `Debug`, so it cannot reach a log line by accident: not the
/// body a record is written from, nor the record as it is read back or found (issue 9).
#[tokio::test]
async fn personal_values_never_print_in_debug() {
    use custos_core::personal::{PersonalValue, fields_of};
    use custos_vault::Principal;
    let t = spawn().await;
    const CANARY: &str = "debug.canary.5e1c@example.org";
    let body = fields_of(
        serde_json::json!({"name": "Canary Debugtest", "email": CANARY})
            .as_object()
            .unwrap()
            .clone(),
    );
    let created = t
        .vault
        .put_record(&Principal::Cli, "customers", None, &body)
        .await
        .unwrap();
    let read = t
        .vault
        .get_record(&Principal::Cli, "customers", created.id, Some("support"))
        .await
        .unwrap();
    assert_eq!(read.fields["email"].expose_secret(), CANARY);
    let found = t
        .vault
        .search(
            &Principal::Cli,
            "customers",
            Some("support"),
            "email",
            &PersonalValue::text(CANARY.to_uppercase()),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let normalised = custos_core::fields::normalise(
        "email",
        &t.vault.inventory().collections["customers"].fields["email"],
        &PersonalValue::text(CANARY),
        custos_core::fields::Context {
            default_region: "GB",
        },
    )
    .unwrap();
    for shown in [
        format!("{body:?}"),
        format!("{read:?}"),
        format!("{read:#?}"),
        format!("{found:?}"),
        format!("{normalised:?}"),
    ] {
        assert!(!shown.to_lowercase().contains("canary"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
