//! The OpenAPI document is exact: walking every operation it lists, every status the server
//! answers (without a key, with a malformed id, with a wrong content type or a broken body,
//! and with a well-formed call) is one the document gives for that operation, and every path id
//! the server parses as a UUID is typed `format: uuid` (issue 9).

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;

use crate::{TestApp, spawn};

/// One call: what it is, the URI, the key, and the body with its content type.
type Try<'a> = (&'a str, String, Option<&'a str>, Option<(&'a str, &'a str)>);

/// The path with each parameter filled in: ids with `id`, the rest with a declared name.
fn fill(path: &str, id: &str) -> String {
    path.replace("{collection}", "customers")
        .replace("{index}", "0")
        .replace("{id}", id)
        .replace("{event_id}", id)
}

async fn send(
    t: &TestApp,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<(&str, &str)>,
) -> u16 {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    let req = match body {
        Some((ty, text)) => b
            .header("content-type", ty)
            .body(Body::from(text.to_owned()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    t.raw(req).await.status.as_u16()
}

#[tokio::test]
async fn every_status_the_server_sends_is_documented() {
    let t = spawn().await;
    let doc = serde_json::to_value(custos_server::openapi()).unwrap();
    let mut wrong = Vec::new();
    let mut walked = 0;
    let huge = format!(
        "{{\"fields\": {{\"notes\": \"{}\"}}}}",
        "x".repeat(2 * 1024 * 1024)
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            let documented: Vec<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|k| k.parse().ok())
                .collect();
            for status in [500, 503] {
                if !documented.contains(&status) {
                    wrong.push(format!("{method} {path}: {status} is not documented"));
                }
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for p in params.iter().filter(|p| p["in"] == "path") {
                let name = p["name"].as_str().unwrap();
                if (name == "id" || name == "event_id") && p["schema"]["format"] != "uuid" {
                    wrong.push(format!("{method} {path}: {name} is not typed format: uuid"));
                }
            }
            let query: Vec<String> = params
                .iter()
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .map(|p| format!("{}=support", p["name"].as_str().unwrap()))
                .collect();
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", query.join("&"))
            };
            let has_body = op.get("requestBody").is_some();
            let good = format!(
                "{}{query}",
                fill(path, &custos_core::ids::SubjectId::random().to_string())
            );
            let mut tries: Vec<Try<'_>> = vec![
                (
                    "without a key",
                    good.clone(),
                    None,
                    has_body.then_some(("application/json", "{}")),
                ),
                (
                    "well formed",
                    good.clone(),
                    Some(&t.admin),
                    has_body.then_some(("application/json", "{}")),
                ),
            ];
            if path.contains("{id}") || path.contains("{event_id}") || path.contains("{index}") {
                tries.push((
                    "a malformed id",
                    format!(
                        "{}{query}",
                        fill(path, "not-a-uuid").replace("/proof/0", "/proof/x")
                    ),
                    Some(&t.admin),
                    has_body.then_some(("application/json", "{}")),
                ));
            }
            if has_body {
                tries.push((
                    "a wrong content type",
                    good.clone(),
                    Some(&t.admin),
                    Some(("text/plain", "{}")),
                ));
                tries.push((
                    "a broken body",
                    good.clone(),
                    Some(&t.admin),
                    Some(("application/json", "{\"a\":")),
                ));
                tries.push((
                    "too large a body",
                    good.clone(),
                    Some(&t.admin),
                    Some(("application/json", huge.as_str())),
                ));
            }
            for (what, uri, key, body) in tries {
                let status = send(&t, &method, &uri, key, body).await;
                walked += 1;
                if !documented.contains(&status) {
                    wrong.push(format!(
                        "{method} {path} with {what}: {status}, documented {documented:?}"
                    ));
                }
            }
        }
    }
    assert!(walked > 50, "walked {walked} calls");
    assert!(
        wrong.is_empty(),
        "{} undocumented:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_document_is_valid_json_with_every_route() {
    let doc: Value = serde_json::to_value(custos_server::openapi()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"].as_object().unwrap().len() >= 15);
}
