//! Every request-desk endpoint refuses the caller who must be refused, and malformed ids and
//! bodies get a 400 or 422 naming the field, with nothing changed.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::requests::desk;
use crate::{TestApp, assert_error};

/// Every endpoint of the desk on request `id`, with a body each would accept.
fn endpoints(id: &str, subject: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let reason = Some(json!({"reason": "a reason"}));
    let mut out = vec![
        (
            "POST",
            "/v1/requests".to_owned(),
            Some(json!({"subject_id": subject, "kind": "access", "channel": "email"})),
        ),
        ("GET", "/v1/requests".to_owned(), None),
        ("GET", format!("/v1/requests/{id}"), None),
    ];
    for (step, body) in [
        ("acknowledge", None),
        ("verify", None),
        ("approve", None),
        ("extend", reason.clone()),
        ("reject", reason.clone()),
        ("complete", None),
    ] {
        out.push(("POST", format!("/v1/requests/{id}/{step}"), body));
    }
    out
}

/// What the desk holds, as admin sees it: every request's id and status.
async fn state(t: &TestApp) -> Vec<(String, String)> {
    let r = t.call("GET", "/v1/requests", Some(&t.admin), None).await;
    r.body["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn no_key_a_role_that_may_not_write_and_a_role_that_may_not_handle_are_refused() {
    let (t, _, desk_key) = desk().await;
    let (_, subject) = t
        .create(json!({"email": "r@example.com", "country": "DE"}))
        .await;
    let filed = t
        .file(json!({"subject_id": subject, "kind": "access", "channel": "email"}))
        .await;
    let id = filed["id"].as_str().unwrap();
    let before = state(&t).await;
    let wrong = format!("custos_{}", "0".repeat(64));
    for (method, uri, body) in endpoints(id, &subject) {
        for key in [None, Some(wrong.as_str())] {
            let r = t.call(method, &uri, key, body.clone()).await;
            assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated", None);
        }
        // The marketer's role may not write: it neither files nor reads requests.
        let r = t.call(method, &uri, Some(&t.marketer), body.clone()).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
    }
    assert_eq!(state(&t).await, before, "nothing changed");

    // The desk's role may write: it files and reads requests, and handles none.
    let r = t
        .call(
            "POST",
            "/v1/requests",
            Some(&desk_key),
            Some(json!({"subject_id": subject, "kind": "erasure", "channel": "api"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["history"][0]["by"], "apikey:desk");
    let r = t
        .call("GET", &format!("/v1/requests/{id}"), Some(&desk_key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let before = state(&t).await;
    for (method, uri, body) in endpoints(id, &subject).into_iter().skip(3) {
        let r = t.call(method, &uri, Some(&desk_key), body).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("may not handle data-subject requests: it needs handle_requests")
        );
    }
    assert_eq!(state(&t).await, before, "nothing changed");
    // A caller refused every request is refused alike for one that does not exist.
    let missing = "0190b5a6-0000-7000-8000-000000000000";
    let r = t
        .call(
            "GET",
            &format!("/v1/requests/{missing}"),
            Some(&t.marketer),
            None,
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
    let r = t
        .call(
            "GET",
            &format!("/v1/requests/{missing}"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found", None);
}

#[tokio::test]
async fn malformed_ids_and_bodies_name_the_field_and_change_nothing() {
    let (t, _, _) = desk().await;
    let (_, de) = t
        .create(json!({"email": "m@example.com", "country": "DE"}))
        .await;
    let (_, ca) = t
        .create(json!({"email": "c@example.com", "country": "US", "state": "US-CA"}))
        .await;
    let filed = t
        .file(json!({"subject_id": de, "kind": "access", "channel": "email"}))
        .await;
    let id = filed["id"].as_str().unwrap().to_owned();
    let before = state(&t).await;
    let admin = Some(t.admin.as_str());

    // Malformed ids, in the path and in the body.
    for uri in [
        "/v1/requests/not-a-uuid".to_owned(),
        "/v1/requests/not-a-uuid/approve".to_owned(),
        "/v1/requests/42/complete".to_owned(),
    ] {
        let method = if uri.ends_with("-uuid") {
            "GET"
        } else {
            "POST"
        };
        let r = t.call(method, &uri, admin, None).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "malformed_request", Some("id"));
    }
    let r = t
        .call(
            "POST",
            "/v1/requests/nope/reject",
            admin,
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "malformed_request", Some("id"));

    let base = json!({"subject_id": de, "kind": "access", "channel": "email"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases: Vec<(Value, StatusCode, &str, Option<&str>)> = vec![
        (
            without("subject_id"),
            StatusCode::BAD_REQUEST,
            "malformed_request",
            Some("subject_id"),
        ),
        (
            without("kind"),
            StatusCode::BAD_REQUEST,
            "malformed_request",
            Some("kind"),
        ),
        (
            without("channel"),
            StatusCode::BAD_REQUEST,
            "malformed_request",
            Some("channel"),
        ),
        (
            with("subject_id", json!("123")),
            StatusCode::BAD_REQUEST,
            "malformed_request",
            Some("subject_id"),
        ),
        (
            with("subject_id", json!("0190b5a6-0000-7000-8000-000000000000")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_subject",
            Some("subject_id"),
        ),
        (
            with("kind", json!("forget_me")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("kind"),
        ),
        (
            with("channel", json!("pigeon")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("channel"),
        ),
        (
            with("received_at", json!("yesterday")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("received_at"),
        ),
        (
            with("received_at", json!("2030-01-01T00:00:00Z")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("received_at"),
        ),
        (
            with("jurisdiction", json!({"country": "XX"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("jurisdiction.country"),
        ),
        (
            with("jurisdiction", json!({"region": "California"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("jurisdiction.region"),
        ),
        (
            with("purposes", json!(["support"])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("purposes"),
        ),
        (
            json!({"subject_id": de, "kind": "objection", "channel": "email", "purposes": ["marketing"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("purposes"),
        ),
        (
            json!({"subject_id": de, "kind": "objection", "channel": "email", "purposes": ["nope"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_purpose",
            Some("purposes"),
        ),
        // CCPA knows no restriction: the kind is refused under the subject's profile.
        (
            json!({"subject_id": ca, "kind": "restriction", "channel": "email"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("kind"),
        ),
        (
            with("colour", json!("blue")),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            json!([1, 2]),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
    ];
    for (body, status, code, field) in cases {
        let r = t
            .call("POST", "/v1/requests", admin, Some(body.clone()))
            .await;
        assert_error(&r, status, code, field);
        if code == "invalid_field" {
            assert!(
                r.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("(rule: "),
                "{body}"
            );
        }
    }
    let r = t
        .call(
            "POST",
            "/v1/requests",
            admin,
            Some(json!({"subject_id": ca, "kind": "restriction", "channel": "email"})),
        )
        .await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("kind_not_offered"),
        "{}",
        r.text
    );

    // Reasons: required, not empty, not too long; the body must be JSON.
    let reject = format!("/v1/requests/{id}/reject");
    let extend = format!("/v1/requests/{id}/extend");
    for uri in [&reject, &extend] {
        let r = t.call("POST", uri, admin, Some(json!({}))).await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "malformed_request",
            Some("reason"),
        );
        let r = t
            .call("POST", uri, admin, Some(json!({"reason": "   "})))
            .await;
        assert_error(
            &r,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("reason"),
        );
        let r = t
            .call(
                "POST",
                uri,
                admin,
                Some(json!({"reason": "x".repeat(2001)})),
            )
            .await;
        assert_error(
            &r,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("reason"),
        );
        let r = t.call("POST", uri, admin, Some(json!({"reason": 7}))).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "malformed_json", None);
        let r = t.call("POST", uri, admin, None).await;
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
        );
    }
    let req = Request::builder()
        .method("POST")
        .uri("/v1/requests")
        .header("authorization", format!("Bearer {}", t.admin))
        .header("content-type", "text/plain")
        .body(Body::from(format!("subject_id={de}&kind=access")))
        .unwrap();
    assert_error(
        &t.raw(req).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        None,
    );

    // The list's parameters.
    for (q, status, code, field) in [
        (
            "?status=open",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "status",
        ),
        (
            "?kind=forget_me",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "kind",
        ),
        (
            "?due_within=7x",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "due_within",
        ),
        (
            "?overdue=yes",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "overdue",
        ),
        (
            "?subject_id=me",
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "subject_id",
        ),
        (
            "?sort=due",
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "sort",
        ),
    ] {
        let r = t
            .call("GET", &format!("/v1/requests{q}"), admin, None)
            .await;
        assert_error(&r, status, code, Some(field));
    }
    assert_eq!(state(&t).await, before, "nothing changed");
}

#[tokio::test]
async fn request_ids_are_typed_in_the_api_document() {
    let doc = serde_json::to_value(custos_server::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let desk: Vec<&String> = paths
        .keys()
        .filter(|p| p.starts_with("/v1/requests"))
        .collect();
    assert_eq!(desk.len(), 8, "{desk:?}");
    for (path, item) in paths
        .iter()
        .filter(|(p, _)| p.contains("{id}") && p.starts_with("/v1/requests"))
    {
        let op = &item["post"]
            .as_object()
            .or(item["get"].as_object())
            .unwrap();
        let id = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "id")
            .unwrap();
        assert_eq!(id["schema"]["format"], "uuid", "{path}");
        let codes: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        for code in ["400", "401", "403", "404"] {
            assert!(
                codes.iter().any(|c| *c == code),
                "{path} documents {code}: {codes:?}"
            );
        }
        if path.ends_with("/extend") || path.ends_with("/reject") {
            assert!(
                codes.iter().any(|c| *c == "415") && codes.iter().any(|c| *c == "422"),
                "{path}"
            );
        }
        if path != "/v1/requests/{id}" {
            assert!(codes.iter().any(|c| *c == "409"), "{path}");
        }
    }
}
