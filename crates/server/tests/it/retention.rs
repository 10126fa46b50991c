//! Retention with a clock the test moves: what is due goes, with its index entries and an
//! audit entry each; a legal hold stops it.

use axum::http::StatusCode;
use custos_vault::Principal;
use serde_json::json;

use crate::{ManualClock, TestApp, assert_error, spawn, spawn_with_clock, spawn_with_inventory};

const DAY: i64 = 86_400_000;
const JAN_2026: i64 = 1_767_225_600_000;

impl TestApp {
    async fn read(&self, id: &str) -> crate::Reply {
        self.call(
            "GET",
            &format!("/v1/collections/customers/records/{id}?purpose=support"),
            Some(&self.admin),
            None,
        )
        .await
    }
}

#[tokio::test]
async fn the_sweep_erases_expired_fields_then_records_and_a_hold_stops_it() {
    let clock = ManualClock::at(JAN_2026);
    let t = spawn_with_clock(clock.clone()).await;
    let cli = Principal::Cli;
    // Notes are kept 2 years; a customer record 3 years after the customer's last activity.
    let (a, a_subject) = t
        .create(json!({"email": "a@example.com", "name": "A", "notes": "called about an order"}))
        .await;
    let (b, _) = t
        .create(json!({"email": "b@example.com", "notes": "prefers post"}))
        .await;
    let (c, _) = t.create(json!({"email": "c@example.com"})).await;

    clock.set(JAN_2026 + 365 * DAY);
    let r = t.vault.retention(&cli, true).await.unwrap();
    let customers = &r.collections["customers"];
    assert_eq!(
        (customers.records, customers.overdue, customers.due_soon),
        (3, 0, 0)
    );

    // Ten days before the notes run out, the report sees them coming.
    let two_years = 1_830_297_600_000; // 2028-01-01
    clock.set(two_years - 10 * DAY);
    let r = t.vault.retention(&cli, true).await.unwrap();
    assert_eq!(r.collections["customers"].due_soon, 2);

    // B is held before its notes are due.
    let r = t
        .call(
            "POST",
            &format!("/v1/collections/customers/records/{b}/legal-hold"),
            Some(&t.admin),
            Some(json!({"reason": "claim 2026-113: keep until settled"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    clock.set(two_years);
    let dry = t.vault.retention(&cli, true).await.unwrap();
    assert_eq!(dry.collections["customers"].fields_erased, 1, "{dry:?}");
    assert!(
        t.read(&a).await.body["fields"].get("notes").is_some(),
        "a dry run deletes nothing"
    );
    let r = t.vault.retention(&cli, false).await.unwrap();
    let customers = &r.collections["customers"];
    assert_eq!(customers.fields_erased, 1, "{r:?}");
    assert_eq!(customers.deleted, 0);
    assert_eq!(customers.why["notes: 2y after created"], 2);
    assert_eq!(customers.held.len(), 1);
    assert_eq!(
        customers.held[0].reason,
        "claim 2026-113: keep until settled"
    );
    let after = t.read(&a).await;
    assert!(
        after.body["fields"].get("notes").is_none(),
        "{}",
        after.text
    );
    assert_eq!(after.body["fields"]["email"], "a@example.com");
    assert!(
        t.read(&b).await.body["fields"].get("notes").is_some(),
        "held"
    );

    // A's customer is active later (a consent choice): A's record outlives C's.
    clock.set(JAN_2026 + 400 * DAY);
    let r = t
        .call(
            "POST",
            &format!("/v1/subjects/{a_subject}/consents"),
            Some(&t.admin),
            Some(json!({"choice": "grant", "purpose": "marketing"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let three_years = 1_861_920_000_000; // 2029-01-01
    clock.set(three_years);
    let r = t.vault.retention(&cli, false).await.unwrap();
    let customers = &r.collections["customers"];
    assert_eq!(customers.deleted, 1, "{r:?}");
    assert_eq!(customers.why["record: 3y after last_activity"], 2);
    assert_eq!(t.read(&c).await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.read(&a).await.status, StatusCode::OK);
    assert_eq!(t.read(&b).await.status, StatusCode::OK, "held");
    let r = t
        .call(
            "GET",
            "/v1/collections/customers/records?purpose=support&email=c@example.com",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r.body["records"], json!([]), "the index entry went with it");

    // A held record cannot be deleted by hand either; released, the next sweep takes it.
    let r = t
        .call(
            "DELETE",
            &format!("/v1/collections/customers/records/{b}"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "conflict", None);
    let r = t
        .call(
            "DELETE",
            &format!("/v1/collections/customers/records/{b}/legal-hold"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = t.vault.retention(&cli, false).await.unwrap();
    assert_eq!(r.collections["customers"].deleted, 1);
    assert_eq!(t.read(&b).await.status, StatusCode::NOT_FOUND);

    // Every act is in the log, and the log verifies.
    t.vault.sequence_audit().await.unwrap();
    let report = t
        .vault
        .verify_audit(&Principal::Cli)
        .await
        .unwrap()
        .unwrap();
    let mut actions = Vec::new();
    for i in 0..report.size {
        let p = t.vault.audit_proof(&cli, i).await.unwrap();
        let e: serde_json::Value = serde_json::from_str(&p.entry).unwrap();
        let action = e["action"].as_str().unwrap().to_owned();
        if action.starts_with("retention") || action.starts_with("legal_hold") {
            actions.push((action, e["fields"].clone()));
        }
    }
    assert_eq!(
        actions,
        [
            ("legal_hold.place".to_owned(), serde_json::Value::Null),
            ("retention.erase".to_owned(), json!(["notes"])),
            ("retention.delete".to_owned(), serde_json::Value::Null),
            ("legal_hold.release".to_owned(), serde_json::Value::Null),
            ("retention.delete".to_owned(), serde_json::Value::Null),
        ]
    );
}

#[tokio::test]
async fn legal_holds_need_a_reason_a_record_and_the_admin() {
    let t = spawn().await;
    let (id, _) = t.create(json!({"email": "hold@example.com"})).await;
    let uri = format!("/v1/collections/customers/records/{id}/legal-hold");
    for key in [&t.marketer, &t.support, &t.billing] {
        let r = t
            .call("POST", &uri, Some(key), Some(json!({"reason": "x"})))
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
        let r = t.call("DELETE", &uri, Some(key), None).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden", None);
    }
    let r = t
        .call("POST", &uri, Some(&t.admin), Some(json!({"reason": "  "})))
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
            "/v1/collections/customers/records/0190b5a6-0000-7000-8000-000000000000/legal-hold",
            Some(&t.admin),
            Some(json!({"reason": "case 1"})),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found", None);
    let r = t.call("DELETE", &uri, Some(&t.admin), None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found", None);
    let r = t
        .call(
            "POST",
            &uri,
            Some(&t.admin),
            Some(json!({"reason": "case 1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["reason"], "case 1");
    let r = t
        .call(
            "POST",
            &uri,
            Some(&t.admin),
            Some(json!({"reason": "case 2"})),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "conflict", None);
    // Only the admin may run retention.
    let p = Principal::api_key("support", "support_agent");
    assert!(matches!(
        t.vault.retention(&p, true).await,
        Err(custos_vault::VaultError::Forbidden(_))
    ));
}

#[tokio::test]
async fn an_anonymising_collection_keeps_only_what_identifies_no_one_in_a_record_of_no_one() {
    let clock = ManualClock::at(JAN_2026);
    let t = spawn_with_inventory(clock.clone(), |inv| {
        inv.replacen(
            "retention = \"3y after last_activity\"",
            "retention = \"3y after last_activity\"\non_expiry = \"anonymise\"",
            1,
        )
        .replacen(
            "type = \"country\"\ncategory = \"demographic\"",
            "type = \"country\"\ncategory = \"demographic\"\nkeep_when_anonymised = true",
            1,
        )
        .replacen(
            "type = \"bool\"\ncategory = \"commercial\"",
            "type = \"bool\"\ncategory = \"commercial\"\nkeep_when_anonymised = true",
            1,
        )
    })
    .await;
    let cli = Principal::Cli;
    let (id, subject) = t
        .create(json!({"email": "anon@example.com", "name": "Anon", "country": "FR", "vip": true}))
        .await;
    let (plain, _) = t.create(json!({"email": "plain@example.com"})).await;

    clock.set(1_861_920_000_000); // 2029-01-01
    let dry = t.vault.retention(&cli, true).await.unwrap();
    assert_eq!(dry.collections["customers"].anonymised, 2, "{dry:?}");
    let r = t.vault.retention(&cli, false).await.unwrap();
    let customers = &r.collections["customers"];
    assert_eq!((customers.anonymised, customers.deleted), (2, 0), "{r:?}");

    // The originals are gone, with their subject's records and index entries.
    assert_eq!(t.read(&id).await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.read(&plain).await.status, StatusCode::NOT_FOUND);
    let r = t
        .call(
            "GET",
            &format!("/v1/subjects/{subject}/records?purpose=billing"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r.body["records"], json!([]), "{}", r.text);
    let r = t
        .call(
            "GET",
            "/v1/collections/customers/records?purpose=support&email=anon@example.com",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r.body["records"], json!([]));
    // One record of no one remains, with the country and the flag only; the next sweep
    // leaves it be.
    assert_eq!(t.count().await, 1);
    let again = t.vault.retention(&cli, false).await.unwrap();
    assert_eq!(again.collections["customers"].anonymised, 0);
    assert_eq!(t.count().await, 1);
    t.vault.sequence_audit().await.unwrap();
    assert!(t.vault.verify_audit(&Principal::Cli).await.unwrap().is_ok());
    let trail = t
        .vault
        .audit_trail(&cli, subject.parse().unwrap())
        .await
        .unwrap();
    let last = trail
        .iter()
        .rev()
        .find(|r| r.entry.action == custos_core::audit::Action::RetentionAnonymise)
        .unwrap();
    assert_eq!(last.entry.fields, ["country", "vip"]);
    let text = serde_json::to_string(&last.entry).unwrap();
    assert!(
        !text.contains("FR"),
        "the audit entry carries no value: {text}"
    );
}
