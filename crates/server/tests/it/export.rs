//! The subject export over HTTP: everything held about a customer, decrypted and explained,
//! their consent history and who read their data; as JSON and as a zip; and who is refused.

use std::io::Read as _;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use custos_core::ids::SubjectId;
use custos_vault::{Principal, VaultError};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{TestApp, assert_error, spawn};

/// An answer's status, headers and bytes.
struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl TestApp {
    async fn get_raw(&self, uri: &str, key: Option<&str>) -> Raw {
        let mut b = Request::builder().uri(uri);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        let resp = self
            .app
            .clone()
            .oneshot(b.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Raw {
            status,
            headers,
            bytes,
        }
    }

    async fn read_as(&self, id: &str, purpose: &str, key: &str) {
        let uri = format!("/v1/collections/customers/records/{id}?purpose={purpose}");
        let r = self.call("GET", &uri, Some(key), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    async fn make_choice(&self, subject: &str, choice: &str, purpose: &str) {
        let uri = format!("/v1/subjects/{subject}/consents");
        let body = json!({"choice": choice, "purpose": purpose});
        let r = self.call("POST", &uri, Some(&self.admin), Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }

    async fn export_json(&self, subject: &str) -> Value {
        let r = self
            .get_raw(&format!("/v1/subjects/{subject}/export"), Some(&self.admin))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["cache-control"], "no-store");
        serde_json::from_slice(&r.bytes).unwrap()
    }
}

const ADA: &str = "ada.export@example.com";
const CANARY: &str = "other.canary.91f2@example.org";

/// A customer with two records, a consent granted then withdrawn, read by two keys for two
/// purposes; and a second customer, read too, who must never show in the first's export.
async fn customer(t: &TestApp) -> (String, String, String) {
    let (first, subject) = t
        .create(json!({
            "name": "Ada Lovelace", "email": ADA, "phone": "020 7946 0001",
            "birth_date": "1815-12-10", "notes": "Prefers letters.",
            "address": {"lines": ["12 St James's Square"], "locality": "London",
                        "postal_code": "SW1Y 4JH", "country": "GB"}
        }))
        .await;
    let r = t
        .call(
            "POST",
            "/v1/collections/customers/records",
            Some(&t.admin),
            Some(json!({"subject_id": subject, "fields": {"email": "ada.work@example.com", "vip": true}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let second = r.body["id"].as_str().unwrap().to_owned();
    t.make_choice(&subject, "grant", "marketing").await;
    t.make_choice(&subject, "withdraw", "marketing").await;
    t.read_as(&first, "support", &t.support).await;
    t.read_as(&first, "billing", &t.billing).await;
    let (other, _) = t
        .create(json!({"email": CANARY, "name": "Other Canary"}))
        .await;
    t.read_as(&other, "support", &t.support).await;
    (subject, first, second)
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_export_holds_every_record_why_it_is_held_the_ledger_and_who_read_it() {
    let t = spawn().await;
    let (subject, first, second) = customer(&t).await;
    let e = t.export_json(&subject).await;
    let text = e.to_string();
    assert_eq!(e["format"], "custos.subject-export.v1");
    assert_eq!(e["subject_id"], subject.as_str());
    assert_eq!(e["controller"]["name"], "Example Shop Ltd");
    assert_eq!(e["controller"]["contact"], "privacy@shop.example");
    assert_eq!(e["notice_version"], t.vault.notice().version);

    let customers = &e["collections"][0];
    assert_eq!(customers["collection"], "customers");
    let records = customers["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{text}");
    let (one, two) = (&records[0], &records[1]);
    assert_eq!(
        (one["record_id"].as_str(), two["record_id"].as_str()),
        (Some(first.as_str()), Some(second.as_str()))
    );
    // Every field decrypted, whatever its purposes: birth_date is for analytics only.
    assert_eq!(one["fields"]["email"]["value"], ADA);
    assert_eq!(one["fields"]["birth_date"]["value"], "1815-12-10");
    assert_eq!(one["fields"]["phone"]["value"], "+442079460001");
    assert_eq!(one["fields"]["address"]["value"]["locality"], "London");
    assert_eq!(two["fields"]["email"]["value"], "ada.work@example.com");
    assert_eq!(two["fields"]["vip"]["value"], true);
    assert_eq!(one["legal_hold"], false);

    // Beside each value: purposes and bases in the notice's words, retention, recipients.
    let email = &one["fields"]["email"];
    assert_eq!(email["category"], "contact");
    assert_eq!(
        ids(&email["purposes"]),
        ["billing", "support", "marketing", "advertising"]
    );
    let marketing = &email["purposes"][2];
    assert_eq!(
        marketing["description"],
        "Send you our newsletter and offers"
    );
    assert_eq!(marketing["legal_basis"], "consent");
    let notice = t.call("GET", "/v1/privacy-notice", None, None).await.body;
    let explained = notice["purposes"][2]["legal_basis_explained"].clone();
    assert_eq!(
        marketing["legal_basis_explained"], explained,
        "the notice's words, reused"
    );
    assert!(
        explained.as_str().unwrap().contains("withdraw"),
        "{explained}"
    );
    assert_eq!(email["retention"]["rule"], "3y after last_activity");
    assert!(
        email["retention"]["kept_until"]
            .as_str()
            .unwrap()
            .starts_with('2')
    );
    assert_eq!(
        one["fields"]["notes"]["retention"]["rule"],
        "2y after created"
    );
    assert_eq!(
        email["recipients"],
        json!([
            {"name": "Example Payments Ltd", "country": "IE", "purpose": "billing"},
            {"name": "Example Ads Inc", "country": "US", "purpose": "advertising"}
        ])
    );
    assert_eq!(one["fields"]["notes"]["recipients"], json!([]));
    // Where it came from: the entry that stored it, naming the key and its role.
    let stored = &email["source"]["stored"];
    assert_eq!(
        stored["by"],
        json!({"kind": "api_key", "name": "admin", "role": "admin",
        "in_words": "Example Shop Ltd's application key \"admin\" (role admin)"})
    );
    assert!(
        email["source"]["in_words"]
            .as_str()
            .unwrap()
            .contains("ask privacy@shop.example")
    );

    // The consent history, oldest first.
    let history = e["consent_history"].as_array().unwrap();
    let choices: Vec<&str> = history
        .iter()
        .map(|c| c["choice"].as_str().unwrap())
        .collect();
    assert_eq!(choices, ["grant", "withdraw"]);
    assert!(history.iter().all(|c| c["purpose"] == "marketing"));

    // Both reads: who, with which role, for which purpose, which fields.
    let reads = e["reads"].as_array().unwrap();
    assert_eq!(reads.len(), 2, "{}", e["reads"]);
    let support = &reads[0];
    assert_eq!(support["by"]["name"], "support");
    assert_eq!(support["by"]["role"], "support_agent");
    assert_eq!(support["purpose"], "support");
    assert_eq!(
        support["purpose_description"],
        "Answer your questions and complaints"
    );
    assert_eq!(support["record_id"], first.as_str());
    assert_eq!(
        support["fields"],
        json!(["email", "name", "notes", "phone"])
    );
    assert!(
        support["withheld"]
            .as_array()
            .unwrap()
            .contains(&json!({"field": "address", "reason": "purpose_not_declared"}))
    );
    let billing = &reads[1];
    assert_eq!(
        (
            billing["by"]["name"].as_str(),
            billing["by"]["role"].as_str()
        ),
        (Some("billing"), Some("billing_service"))
    );
    assert_eq!(billing["purpose"], "billing");
    assert_eq!(
        billing["fields"],
        json!(["address", "email", "name", "phone"])
    );
    assert!(billing["audit_index"].as_u64() > support["audit_index"].as_u64());

    // Everything else done with the data, in words.
    let acts: Vec<&str> = e["activity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        acts,
        [
            "record.create",
            "record.create",
            "consent.record",
            "consent.record"
        ]
    );
    assert_eq!(
        e["activity"][2]["in_words"],
        "recorded that you gave consent to marketing"
    );
    assert!(
        e["your_rights"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["right"] == "portability")
    );

    // The other customer's data never shows.
    let other = t
        .vault
        .search(
            &Principal::Cli,
            "customers",
            Some("support"),
            "email",
            &custos_core::personal::PersonalValue::text(CANARY),
        )
        .await
        .unwrap();
    assert!(
        !text.contains(CANARY) && !text.contains("Other Canary"),
        "{text}"
    );
    assert!(
        !text.contains(&other[0].subject_id.to_string())
            && !text.contains(&other[0].id.to_string())
    );

    // The export is in the log, once, naming what it exported; reading the trail for it was
    // not a separate audit.read.
    let trail = t
        .call(
            "GET",
            &format!("/v1/audit?subject_id={subject}"),
            Some(&t.admin),
            None,
        )
        .await;
    let entries: Vec<&Value> = trail.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["entry"])
        .collect();
    let exports: Vec<&&Value> = entries
        .iter()
        .filter(|x| x["action"] == "subject.export")
        .collect();
    assert_eq!(exports.len(), 1, "{}", trail.text);
    assert_eq!(exports[0]["actor"], "apikey:admin");
    assert_eq!(exports[0]["outcome"], "ok");
    assert!(
        exports[0]["fields"]
            .as_array()
            .unwrap()
            .contains(&json!("customers.birth_date"))
    );
    assert!(
        !entries.iter().any(|x| x["action"] == "audit.read"),
        "{}",
        trail.text
    );
    assert!(
        !trail.text.contains(ADA),
        "the entry holds names, never values"
    );
    // A later export lists the first among the acts on the data.
    let again = t.export_json(&subject).await;
    let last = again["activity"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|a| a["action"] == "subject.export")
        .unwrap()
        .clone();
    assert_eq!(last["in_words"], "exported all the data held about you");
    assert_eq!(last["by"]["name"], "admin");
}

fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            (f.name().unwrap().into_owned(), b)
        })
        .collect()
}

#[tokio::test]
async fn the_zip_holds_a_readme_the_json_and_a_csv_per_collection_with_formulas_made_inert() {
    let t = spawn().await;
    let (_, subject) = t
        .create(json!({
            "name": "=HYPERLINK(\"http://evil.example\",\"click\")", "email": ADA,
            "phone": "+44 20 7946 0123", "notes": "@SUM(1+1)\nsecond line",
            "address": {"lines": ["1 Example Street", "Flat 2"], "locality": "London", "country": "GB"}
        }))
        .await;
    let r = t
        .get_raw(
            &format!("/v1/subjects/{subject}/export?format=zip"),
            Some(&t.admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/zip");
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(
        r.headers["content-disposition"],
        format!("attachment; filename=\"custos-export-{subject}.zip\"").as_str()
    );
    let files = unzip(&r.bytes);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["README.txt", "export.json", "customers.csv"]);
    let readme = String::from_utf8(files[0].1.clone()).unwrap();
    for says in [
        "privacy@shop.example",
        "customers.csv",
        "export.json",
        "apostrophe",
        "GDPR Art. 20",
        &subject,
    ] {
        assert!(readme.contains(says), "README lacks {says:?}:\n{readme}");
    }
    let json: Value = serde_json::from_slice(&files[1].1).unwrap();
    assert_eq!(json["subject_id"], subject.as_str());
    assert_eq!(
        json["collections"][0]["records"][0]["fields"]["email"]["value"],
        ADA
    );

    let csv = String::from_utf8(files[2].1.clone()).unwrap();
    let csv = csv
        .strip_prefix('\u{feff}')
        .expect("a byte-order mark for spreadsheets");
    let (header, rest) = csv.split_once("\r\n").unwrap();
    assert_eq!(
        header,
        "record_id,created,updated,address,birth_date,country,email,name,notes,phone,vip"
    );
    let row = rest.strip_suffix("\r\n").unwrap();
    assert!(row.contains(&format!(",{ADA},")), "{row}");
    assert!(
        row.contains("\"1 Example Street, Flat 2, London, GB\""),
        "{row}"
    );
    // Formula canaries start with an apostrophe, inside their quotes where they need them.
    assert!(
        row.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\","),
        "{row}"
    );
    assert!(row.contains(",\"'@SUM(1+1)\nsecond line\","), "{row}");
    assert!(row.contains(",'+442079460123,"), "{row}");
    for bad in [",=", ",\"=", ",@", ",\"@", ",+", ",-"] {
        assert!(!row.contains(bad), "{bad} in {row}");
    }
}

#[tokio::test]
async fn the_export_is_refused_to_who_must_be_refused_and_bad_input_changes_nothing() {
    let t = spawn().await;
    let (_, subject) = t.create(json!({"email": ADA})).await;
    let uri = format!("/v1/subjects/{subject}/export");
    let wrong = format!("custos_{}", "0".repeat(64));
    for key in [None, Some(wrong.as_str())] {
        let r = t.call("GET", &uri, key, None).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated", None);
    }
    for key in [&t.support, &t.billing, &t.marketer] {
        for u in [uri.clone(), format!("{uri}?format=zip")] {
            let r = t.call("GET", &u, Some(key), None).await;
            assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
            assert!(!r.text.contains(ADA));
        }
    }
    t.vault.sequence_audit().await.unwrap();
    let before = t.vault.audit_size().await.unwrap();
    let r = t
        .call(
            "GET",
            "/v1/subjects/not-a-uuid/export",
            Some(&t.admin),
            None,
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "malformed_request", Some("id"));
    for f in ["xml", "", "ZIP"] {
        let r = t
            .call("GET", &format!("{uri}?format={f}"), Some(&t.admin), None)
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "malformed_request",
            Some("format"),
        );
    }
    let unknown = SubjectId::random();
    let r = t
        .call(
            "GET",
            &format!("/v1/subjects/{unknown}/export"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found", None);
    t.vault.sequence_audit().await.unwrap();
    assert_eq!(
        t.vault.audit_size().await.unwrap(),
        before,
        "bad input is not an export"
    );

    // A customer signed in exports their own data and no one else's.
    let me: SubjectId = subject.parse().unwrap();
    let other = t.create(json!({"email": CANARY})).await.1.parse().unwrap();
    let customer = Principal::Customer { subject: me };
    let mine = t.vault.export_subject(&customer, me).await.unwrap();
    assert_eq!(mine.subject_id, me);
    match t.vault.export_subject(&customer, other).await {
        Err(VaultError::Forbidden(m)) => assert!(m.contains("their own data only"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Every refusal is in the log as a denied export of the subject it named.
    let trail = t.vault.audit_trail(&Principal::Cli, me).await.unwrap();
    let denied = trail
        .iter()
        .filter(|r| r.entry.action == custos_core::audit::Action::SubjectExport)
        .filter(|r| r.entry.outcome == custos_core::audit::Outcome::Denied)
        .count();
    assert_eq!(denied, 6, "three roles, two formats");
    // The other subject's export names the refused attempt without naming who tried.
    let text = serde_json::to_string(
        &t.vault
            .export_subject(&Principal::Cli, other)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        text.contains("\"other_customer\"") && !text.contains(&me.to_string()),
        "{text}"
    );
    let theirs = t.vault.audit_trail(&Principal::Cli, other).await.unwrap();
    assert!(
        theirs
            .iter()
            .any(|r| r.entry.actor == format!("customer:{me}")
                && r.entry.outcome == custos_core::audit::Outcome::Denied)
    );
}

/// Every `$ref` in the document names a schema it defines.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_says_exactly_what_the_export_answers() {
    let t = spawn().await;
    let doc = t.call("GET", "/openapi.json", None, None).await.body;
    let op = &doc["paths"]["/v1/subjects/{id}/export"]["get"];
    let id = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "id")
        .unwrap();
    assert_eq!(
        (id["in"].as_str(), id["schema"]["format"].as_str()),
        (Some("path"), Some("uuid"))
    );
    let format = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "format")
        .unwrap();
    assert_eq!(format["schema"]["enum"], json!(["json", "zip"]));
    let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
    assert_eq!(statuses, ["200", "400", "401", "403", "404", "500", "503"]);
    let ok = op["responses"]["200"]["content"].as_object().unwrap();
    assert!(ok.contains_key("application/json") && ok.contains_key("application/zip"));
    assert_eq!(
        doc["components"]["schemas"]["ExportZip"]["format"],
        "binary"
    );
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} is not defined"
        );
    }
}
