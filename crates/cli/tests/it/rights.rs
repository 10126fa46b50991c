//! docs/rights.md, step by step against `custos serve --demo`: an erasure request filed, seen
//! in `custos requests list` with its due date, approved, its certificate verified offline with
//! the server stopped, and the customer's records gone; an access request answered with the
//! zip (issue 9).

use serde_json::{Value, json};

use crate::{Server, client, custos, stdout};

fn demo_key(server: &Server) -> String {
    let out = std::fs::read_to_string(&server.out).unwrap();
    out.split("(shown once): ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_owned()
}

async fn call(method: &str, url: String, key: &str, body: Option<Value>) -> (u16, String) {
    let mut r = client()
        .request(method.parse().unwrap(), url)
        .bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The subject and record of the demo customer with this email.
async fn customer(server: &Server, key: &str, email: &str) -> (String, String) {
    let (status, text) = call(
        "GET",
        server.url(&format!(
            "/v1/collections/customers/records?purpose=support&email={email}"
        )),
        key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let r = &v["records"][0];
    (
        r["subject_id"].as_str().unwrap().to_owned(),
        r["id"].as_str().unwrap().to_owned(),
    )
}

fn email(i: usize) -> String {
    custos_vault::demo_customer(i)["email"]
        .expose_secret()
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erasure_and_an_access_request_answered_as_the_docs_say() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--demo", "--demo-records", "200"]);
    let key = demo_key(&server);

    // File an erasure request for a demo customer.
    let (subject, record) = customer(&server, &key, &email(0)).await;
    let (status, text) = call(
        "POST",
        server.url("/v1/requests"),
        &key,
        Some(json!({"subject_id": subject, "kind": "erasure", "channel": "email"})),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let request: Value = serde_json::from_str(&text).unwrap();
    let id = request["id"].as_str().unwrap().to_owned();
    // The demo's customers live in GB: UK GDPR, one calendar month.
    assert_eq!(request["profile"], "uk_gdpr", "{text}");
    let due = request["due_date"].as_str().unwrap().to_owned();

    // It is in the list, with its due date.
    let list = custos(&data, &["requests", "list"]);
    assert!(list.status.success());
    let line = stdout(&list)
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_default()
        .to_owned();
    assert!(
        line.contains("erasure") && line.contains(&due),
        "{}",
        stdout(&list)
    );

    // Verify the customer, approve: the customer is erased.
    for step in ["verify", "approve"] {
        let o = custos(&data, &["requests", step, &id]);
        assert!(o.status.success(), "{step}: {}", crate::stderr(&o));
    }
    let (_, text) = call("GET", server.url(&format!("/v1/requests/{id}")), &key, None).await;
    assert!(text.contains("\"status\":\"completed\""), "{text}");
    let (status, certificate) = call(
        "GET",
        server.url(&format!("/v1/subjects/{subject}/erasure-certificate")),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{certificate}");
    let log_key = client()
        .get(server.url("/.well-known/custos-log-key"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The records are gone.
    let (status, _) = call(
        "GET",
        server.url(&format!(
            "/v1/collections/customers/records/{record}?purpose=support"
        )),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, text) = call(
        "GET",
        server.url(&format!(
            "/v1/collections/customers/records?purpose=support&email={}",
            email(0)
        )),
        &key,
        None,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["records"],
        json!([])
    );

    // An access request for another customer, answered with the zip.
    let (other, _) = customer(&server, &key, &email(1)).await;
    let (status, text) = call(
        "POST",
        server.url("/v1/requests"),
        &key,
        Some(json!({"subject_id": other, "kind": "access", "channel": "email"})),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let access: Value = serde_json::from_str(&text).unwrap();
    let access = access["id"].as_str().unwrap();
    for step in ["verify", "approve"] {
        assert!(custos(&data, &["requests", step, access]).status.success());
    }
    let zip = client()
        .get(server.url(&format!("/v1/subjects/{other}/export?format=zip")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(zip.status().as_u16(), 200);
    let bytes = zip.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK"), "a zip");
    server.stop();

    // With the server stopped, the certificate verifies offline against the published key.
    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("certificate.json");
    std::fs::write(&file, &certificate).unwrap();
    let pinned = elsewhere.path().join("log.pub");
    std::fs::write(&pinned, &log_key).unwrap();
    let v = custos(
        elsewhere.path(),
        &[
            "receipt",
            "verify",
            file.to_str().unwrap(),
            "--public-key",
            pinned.to_str().unwrap(),
        ],
    );
    let out = stdout(&v);
    assert!(v.status.success(), "{out}");
    assert!(
        out.starts_with(&format!("ok: erasure certificate: subject {subject}")),
        "{out}"
    );
    assert!(out.contains("destroyed the key"), "{out}");
    // The readable copy edited to claim something was kept: the verifier says where.
    let mut edited: Value = serde_json::from_str(&certificate).unwrap();
    edited["certificate"]["erasure"]["key_destroyed"] = false.into();
    std::fs::write(&file, edited.to_string()).unwrap();
    let v = custos(
        elsewhere.path(),
        &[
            "receipt",
            "verify",
            file.to_str().unwrap(),
            "--public-key",
            pinned.to_str().unwrap(),
        ],
    );
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    assert!(
        stdout(&v).contains("differ at certificate/erasure/key_destroyed"),
        "{}",
        stdout(&v)
    );
    let v = custos(&data, &["audit", "verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
}
