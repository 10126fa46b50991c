//! `custos audit verify` against a log altered behind the vault's back, and ciphertexts moved
//! between records in the database.

use serde_json::json;

use crate::{Server, client, custos, initialised, stdout};

/// A data directory with some records and reads in its log, server stopped.
async fn populated() -> (tempfile::TempDir, String, Vec<String>) {
    let (dir, key) = initialised();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let mut ids = Vec::new();
    let mut subjects = Vec::new();
    for i in 0..12 {
        let r = http
            .post(server.url("/v1/collections/customers/records"))
            .bearer_auth(&key)
            .json(&json!({"fields": {"email": format!("tamper{i}@example.com")}}))
            .send()
            .await
            .unwrap();
        let created = r.json::<serde_json::Value>().await.unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
        subjects.push(created["subject_id"].as_str().unwrap().to_owned());
    }
    // A ledger to tamper with, after the records: a grant each for three subjects, and for
    // the first its withdrawal.
    for (i, subject) in subjects.iter().take(3).enumerate() {
        let choices: &[&str] = if i == 0 {
            &["grant", "withdraw"]
        } else {
            &["grant"]
        };
        for choice in choices {
            let r = http
                .post(server.url(&format!("/v1/subjects/{subject}/consents")))
                .bearer_auth(&key)
                .json(&json!({"choice": choice, "purpose": "marketing"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201);
        }
    }
    let r = http
        .get(server.url("/v1/audit/head"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    server.stop();
    let v = custos(dir.path(), &["audit", "verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
    (dir, key, ids)
}

fn db(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("custos.db")).unwrap()
}

fn verify_fails_at(dir: &std::path::Path, want: &str) {
    let v = custos(dir, &["audit", "verify"]);
    let out = stdout(&v);
    assert_eq!(v.status.code(), Some(1), "{out}");
    assert!(out.contains(want), "expected {want:?} in {out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_entry_is_named() {
    let (dir, _, _) = populated().await;
    db(dir.path())
        .execute("UPDATE audit_leaves SET entry = CAST(replace(CAST(entry AS TEXT), 'record.create', 'record.delete') AS BLOB) WHERE idx = 5", [])
        .unwrap();
    verify_fails_at(dir.path(), "entry 5: changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_entry_with_a_recomputed_hash_breaks_the_signed_head() {
    let (dir, _, _) = populated().await;
    let c = db(dir.path());
    let entry: Vec<u8> = c
        .query_row("SELECT entry FROM audit_leaves WHERE idx = 6", [], |r| {
            r.get(0)
        })
        .unwrap();
    let forged = String::from_utf8(entry)
        .unwrap()
        .replace("record.create", "record.delete")
        .into_bytes();
    let hash = custos_core::merkle::leaf_hash(&forged).to_vec();
    c.execute(
        "UPDATE audit_leaves SET entry = ?1, leaf_hash = ?2 WHERE idx = 6",
        rusqlite::params![forged, hash],
    )
    .unwrap();
    let v = custos(dir.path(), &["audit", "verify"]);
    let out = stdout(&v);
    assert_eq!(v.status.code(), Some(1), "{out}");
    assert!(out.contains("does not match the stored entries"), "{out}");
    // The named range holds the changed entry.
    let range = out.split("one of entries ").nth(1).unwrap();
    let (a, b) = range.split_once("..").unwrap();
    let (a, b): (u64, u64) = (
        a.trim().parse().unwrap(),
        b.trim()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap(),
    );
    assert!(a <= 6 && 6 < b, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consent_event_changed_in_the_ledger_is_named() {
    let (dir, _, _) = populated().await;
    // Turn the withdrawal into a grant, in the ledger's own table.
    let n = db(dir.path())
        .execute(
            "UPDATE consent_events SET entry = CAST(replace(CAST(entry AS TEXT), '\"choice\":\"withdraw\"', '\"choice\":\"grant\"') AS BLOB) \
             WHERE CAST(entry AS TEXT) LIKE '%\"choice\":\"withdraw\"%'",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    verify_fails_at(
        dir.path(),
        "was changed: it no longer matches its audit entry",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consent_event_deleted_from_the_ledger_is_named() {
    let (dir, _, _) = populated().await;
    db(dir.path())
        .execute(
            "DELETE FROM consent_events WHERE seq = (SELECT max(seq) FROM consent_events)",
            [],
        )
        .unwrap();
    verify_fails_at(dir.path(), "was deleted from the ledger");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consent_event_slipped_into_the_ledger_is_named() {
    let (dir, _, _) = populated().await;
    // A copy of a real grant under a new id: it has no audit entry of its own.
    db(dir.path())
        .execute(
            "INSERT INTO consent_events (id, subject_id, entry) \
             SELECT '0190b5a6-0000-7000-8000-000000000001', subject_id, entry FROM consent_events \
             WHERE seq = (SELECT min(seq) FROM consent_events)",
            [],
        )
        .unwrap();
    verify_fails_at(dir.path(), "has no audit entry");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_entry_is_named() {
    let (dir, _, _) = populated().await;
    db(dir.path())
        .execute("DELETE FROM audit_leaves WHERE idx = 7", [])
        .unwrap();
    verify_fails_at(dir.path(), "entry 7: missing");
}

#[tokio::test(flavor = "multi_thread")]
async fn reordered_entries_are_named() {
    let (dir, _, _) = populated().await;
    let c = db(dir.path());
    c.execute_batch(
        "UPDATE audit_leaves SET idx = -1 WHERE idx = 3; UPDATE audit_leaves SET idx = 3 WHERE idx = 4; \
         UPDATE audit_leaves SET idx = 4 WHERE idx = -1;",
    )
    .unwrap();
    verify_fails_at(dir.path(), "entry 3: out of place");
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_log_is_named() {
    let (dir, _, _) = populated().await;
    let c = db(dir.path());
    let size: i64 = c
        .query_row("SELECT max(idx) + 1 FROM audit_leaves", [], |r| r.get(0))
        .unwrap();
    c.execute("DELETE FROM audit_leaves WHERE idx >= ?1", [size - 2])
        .unwrap();
    verify_fails_at(dir.path(), &format!("entry {}: missing", size - 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ciphertext_moved_to_another_record_does_not_decrypt() {
    let (dir, key, _) = populated().await;
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let create = |body: serde_json::Value| {
        let (http, url, key) = (
            http.clone(),
            server.url("/v1/collections/customers/records"),
            key.clone(),
        );
        async move {
            http.post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let a = create(json!({"fields": {"email": "first@example.com", "notes": "secret-a"}})).await;
    let b = create(json!({"subject_id": a["subject_id"], "fields": {"email": "second@example.com", "notes": "secret-b"}})).await;
    server.stop();
    // Same subject, same key: only the binding to record id and field name stands in the way.
    let c = db(dir.path());
    c.execute(
        "UPDATE records SET fields = (SELECT fields FROM records WHERE id = ?1) WHERE id = ?2",
        rusqlite::params![a["id"].as_str().unwrap(), b["id"].as_str().unwrap()],
    )
    .unwrap();
    drop(c);
    let server = Server::start(dir.path(), &[]);
    let r = http
        .get(server.url(&format!(
            "/v1/collections/customers/records/{}?purpose=support",
            b["id"].as_str().unwrap()
        )))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("\"internal\"") && !text.contains("secret") && !text.contains("first@"),
        "{text}"
    );
    let log = server.stop();
    assert!(
        log.contains("ciphertext failed authentication"),
        "the integrity failure is logged: {log}"
    );
}
