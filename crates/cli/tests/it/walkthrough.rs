//! The walkthrough in docs/walkthrough.md, step by step against a real server: consent given,
//! used, withdrawn, and proven offline.

use serde_json::{Value, json};

use crate::{Server, client, create_key, custos, initialised, stdout};

async fn get(url: String, key: &str) -> (u16, Value) {
    let r = client().get(url).bearer_auth(key).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn post(url: String, key: &str, body: Value) -> (u16, Value) {
    let r = client()
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn withheld_reason(record: &Value, field: &str) -> Option<String> {
    record["withheld"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["field"] == field)
        .map(|w| w["reason"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_given_used_withdrawn_and_proven_offline() {
    let (dir, admin) = initialised();
    let marketer = create_key(dir.path(), "newsletter", "marketer");
    let server = Server::start(dir.path(), &[]);

    // A customer.
    let (status, created) = post(
        server.url("/v1/collections/customers/records"),
        &admin,
        json!({"fields": {"name": "Ada Lovelace", "email": "ada@example.com"}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (id, subject) = (
        created["id"].as_str().unwrap(),
        created["subject_id"].as_str().unwrap(),
    );
    let record = server.url(&format!(
        "/v1/collections/customers/records/{id}?purpose=marketing"
    ));

    // 1. Grant marketing consent, as the signup form collected it.
    let (status, grant) = post(
        server.url(&format!("/v1/subjects/{subject}/consents")),
        &admin,
        json!({"choice": "grant", "purpose": "marketing", "source": "web_form",
               "evidence": {"collection_point": "https://shop.example/signup", "ip_address": "203.0.113.7"}}),
    )
    .await;
    assert_eq!(status, 201, "{grant}");

    // 2. The marketer reads the email for marketing.
    let (status, r) = get(record.clone(), &marketer).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["fields"]["email"], "ada@example.com", "{r}");

    // 3. The customer withdraws; 4. the same read is withheld, and says why.
    let (status, _) = post(
        server.url(&format!("/v1/subjects/{subject}/consents")),
        &admin,
        json!({"choice": "withdraw", "purpose": "marketing", "source": "email_link"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, r) = get(record, &marketer).await;
    assert_eq!(status, 200, "{r}");
    assert!(r["fields"].get("email").is_none(), "{r}");
    assert_eq!(
        withheld_reason(&r, "email").as_deref(),
        Some("consent_withdrawn")
    );

    // 5. Fetch the grant's receipt and verify it offline, with the server stopped, against
    // the log's published key.
    let event = grant["id"].as_str().unwrap();
    let (status, receipt) = get(server.url(&format!("/v1/consents/{event}/receipt")), &admin).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["receipt"]["state"], "given");
    let (_, head) = get(server.url("/v1/audit/head"), &admin).await;
    let public_key = head["public_key"].as_str().unwrap().to_owned();

    // 6. The privacy notice lists every purpose, with no key.
    let page = client()
        .get(server.url("/privacy"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for purpose in [
        "billing",
        "support",
        "marketing",
        "analytics",
        "advertising",
    ] {
        assert!(page.contains(&format!("<h3>{purpose}</h3>")), "{purpose}");
    }
    server.stop();

    let file = dir.path().join("receipt.json");
    std::fs::write(&file, receipt.to_string()).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let v = custos(
        elsewhere.path(),
        &[
            "consent",
            "verify-receipt",
            file.to_str().unwrap(),
            "--public-key",
            &public_key,
        ],
    );
    let out = stdout(&v);
    assert!(v.status.success(), "{out}");
    assert!(
        out.contains(&format!("receipt {event}: consent given for marketing")),
        "{out}"
    );

    // The key can be pinned from a file, as `custos audit public-key` writes it, and the
    // command `receipt verify` is the same check.
    let printed = custos(dir.path(), &["audit", "public-key"]);
    assert_eq!(stdout(&printed).trim(), public_key);
    let key_file = dir.path().join("log.pub");
    std::fs::write(&key_file, stdout(&printed)).unwrap();
    let v = custos(
        elsewhere.path(),
        &[
            "receipt",
            "verify",
            file.to_str().unwrap(),
            "--public-key",
            key_file.to_str().unwrap(),
        ],
    );
    assert!(v.status.success(), "{}", stdout(&v));
    assert!(stdout(&v).starts_with("ok: receipt"), "{}", stdout(&v));

    // Without a trusted key the signature is checked against the key the receipt carries,
    // which proves nothing of who signed it: not "ok", and a non-zero exit (issue 9).
    let v = custos(
        elsewhere.path(),
        &["receipt", "verify", file.to_str().unwrap()],
    );
    assert_eq!(v.status.code(), Some(3), "{}", stdout(&v));
    assert!(
        stdout(&v).starts_with("signature valid, signer not verified"),
        "{}",
        stdout(&v)
    );

    // The readable copy edited (marketing made analytics) while the JWS is untouched: the
    // file no longer says what is signed, and the verifier names where (issue 9).
    let mut misleading = receipt.clone();
    misleading["receipt"]["purposes"][0]["purpose"] = "analytics".into();
    std::fs::write(&file, misleading.to_string()).unwrap();
    let v = custos(
        elsewhere.path(),
        &[
            "receipt",
            "verify",
            file.to_str().unwrap(),
            "--public-key",
            &public_key,
        ],
    );
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    assert!(
        stdout(&v).contains("differ at receipt/purposes/0/purpose"),
        "{}",
        stdout(&v)
    );

    // A receipt whose payload was edited, or checked against another key, fails.
    let jws = receipt["jws"].as_str().unwrap();
    let parts: Vec<&str> = jws.split('.').collect();
    let payload =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1])
            .unwrap();
    let edited = String::from_utf8(payload)
        .unwrap()
        .replace("\"given\"", "\"withdrawn\"");
    let edited = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, edited);
    std::fs::write(&file, format!("{}.{edited}.{}", parts[0], parts[2])).unwrap();
    let v = custos(
        elsewhere.path(),
        &[
            "consent",
            "verify-receipt",
            file.to_str().unwrap(),
            "--public-key",
            &public_key,
        ],
    );
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    assert!(
        stdout(&v).contains("signature does not verify"),
        "{}",
        stdout(&v)
    );

    std::fs::write(&file, jws).unwrap();
    let other = custos_core::crypto::DataKey::generate(1)
        .unwrap()
        .to_signing_key()
        .verifying_key();
    let v = custos(
        elsewhere.path(),
        &[
            "consent",
            "verify-receipt",
            file.to_str().unwrap(),
            "--public-key",
            &hex::encode(other.to_bytes()),
        ],
    );
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    assert!(
        stdout(&v).contains("does not verify with key"),
        "{}",
        stdout(&v)
    );
}
