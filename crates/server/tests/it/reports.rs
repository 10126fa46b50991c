//! The record of processing activities over HTTP: JSON, printable HTML and CSV for a caller
//! with `read_reports`, refused to one without.

use axum::http::StatusCode;

use crate::{assert_error, spawn};

#[tokio::test]
async fn the_ropa_comes_as_json_html_and_csv_to_read_reports_only() {
    let t = spawn().await;
    let r = t
        .call("GET", "/v1/reports/ropa", Some(&t.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let purposes = t.vault.inventory().purposes.len();
    assert_eq!(r.body["activities"].as_array().unwrap().len(), purposes);
    assert_eq!(r.body["controller"], "Example Shop Ltd");
    let ads = r.body["activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["transfers"].as_array().is_some_and(|t| !t.is_empty()))
        .expect("a transfer outside the EEA");
    assert_eq!(ads["transfers"][0]["country"], "US");
    assert!(
        r.body["security_measures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains("plain HTTP")),
        "this server serves no TLS itself, and the record says so"
    );
    let html = t
        .call("GET", "/v1/reports/ropa?format=html", Some(&t.admin), None)
        .await;
    assert_eq!(html.status, StatusCode::OK);
    assert!(html.text.starts_with("<!doctype html>"));
    assert!(
        html.text
            .contains("(g) Technical and organisational security measures")
    );
    let csv = t
        .call("GET", "/v1/reports/ropa?format=csv", Some(&t.admin), None)
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.text.starts_with("controller,contact,purpose,"),
        "{}",
        csv.text
    );
    let bad = t
        .call("GET", "/v1/reports/ropa?format=pdf", Some(&t.admin), None)
        .await;
    assert_error(
        &bad,
        StatusCode::BAD_REQUEST,
        "malformed_request",
        Some("format"),
    );
    for key in [&t.support, &t.marketer] {
        let r = t.call("GET", "/v1/reports/ropa", Some(key), None).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
        assert!(r.text.contains("it needs read_reports"), "{}", r.text);
    }
    let r = t.call("GET", "/v1/reports/ropa", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
