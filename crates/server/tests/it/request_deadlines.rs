//! Deadlines at a clock the test moves: the request list in deadline order with days left and
//! its filters, and the records of closed requests kept 24 months, then deleted by the sweep.

use axum::http::StatusCode;
use custos_vault::Principal;
use serde_json::{Value, json};

use crate::TestApp;
use crate::requests::{MARCH_2027, desk, id};

const DAY: i64 = 86_400_000;

impl TestApp {
    /// The requests a list with query `q` returns to `key`.
    async fn list(&self, key: &str, q: &str) -> Vec<Value> {
        let r = self
            .call("GET", &format!("/v1/requests{q}"), Some(key), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text);
        r.body["requests"].as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn the_list_is_in_deadline_order_with_days_left_and_filters() {
    let (t, clock, desk_key) = desk().await;
    let (_, de) = t
        .create(json!({"email": "de@example.com", "country": "DE"}))
        .await;
    let (_, ca) = t
        .create(json!({"email": "ca@example.com", "country": "US", "state": "US-CA"}))
        .await;
    // Due 1 April (GDPR), 15 April (CCPA), 22 March (CCPA opt-out), and 1 March (GDPR,
    // received 1 February: overdue).
    let gdpr = t
        .file(json!({"subject_id": de, "kind": "access", "channel": "email"}))
        .await;
    let ccpa = t
        .file(json!({"subject_id": ca, "kind": "erasure", "channel": "email"}))
        .await;
    let opt = t
        .file(json!({"subject_id": ca, "kind": "opt_out_sale_sharing", "channel": "api"}))
        .await;
    let late = t
        .file(
            json!({"subject_id": de, "kind": "erasure", "channel": "letter",
            "received_at": "2027-01-31T12:00:00Z"}),
        )
        .await;
    clock.set(MARCH_2027 + DAY);
    let ids = |v: &[Value]| v.iter().map(|r| id(r).to_owned()).collect::<Vec<_>>();
    let all = t.list(&desk_key, "").await;
    assert_eq!(
        t.list(&desk_key, "?status=&kind=&due_within=&overdue=")
            .await,
        all,
        "empty filters filter nothing"
    );
    assert_eq!(ids(&all), [id(&late), id(&opt), id(&gdpr), id(&ccpa)]);
    let days: Vec<i64> = all
        .iter()
        .map(|r| r["days_left"].as_i64().unwrap())
        .collect();
    assert_eq!(days, [-2, 20, 30, 44]);
    assert_eq!(all[0]["overdue"], true);
    assert_eq!(ids(&t.list(&desk_key, "?overdue=true").await), [id(&late)]);
    assert_eq!(
        ids(&t.list(&desk_key, "?due_within=3w").await),
        [id(&late), id(&opt)]
    );
    assert_eq!(
        ids(&t.list(&desk_key, "?kind=erasure").await),
        [id(&late), id(&ccpa)]
    );
    assert_eq!(
        ids(&t.list(&desk_key, &format!("?subject_id={ca}")).await),
        [id(&opt), id(&ccpa)]
    );
    t.transit(id(&opt), "approve", None).await;
    assert_eq!(
        ids(&t.list(&desk_key, "?status=completed").await),
        [id(&opt)]
    );
    assert!(
        t.list(&desk_key, "?status=completed&overdue=true")
            .await
            .is_empty()
    );
    assert_eq!(
        ids(&t.list(&desk_key, "?due_within=3w").await),
        [id(&late)],
        "closed: no longer due"
    );
    assert_eq!(
        t.list(&desk_key, "?status=completed").await[0]["days_left"],
        Value::Null
    );
}

#[tokio::test]
async fn a_closed_request_is_kept_24_months_then_deleted_by_the_sweep() {
    let (t, clock, _) = desk().await;
    let (_, de) = t
        .create(json!({"email": "de@example.com", "country": "DE"}))
        .await;
    let done = t
        .file(json!({"subject_id": de, "kind": "access", "channel": "email"}))
        .await;
    let rejected = t
        .file(json!({"subject_id": de, "kind": "erasure", "channel": "email"}))
        .await;
    let open = t
        .file(json!({"subject_id": de, "kind": "access", "channel": "phone"}))
        .await;
    t.transit(id(&done), "verify", None).await;
    t.transit(id(&done), "approve", None).await;
    t.transit(id(&done), "complete", None).await;
    t.transit(
        id(&rejected),
        "reject",
        Some(json!({"reason": "a duplicate of another"})),
    )
    .await;
    let get = |rid: String| {
        let t = &t;
        async move {
            t.call("GET", &format!("/v1/requests/{rid}"), Some(&t.admin), None)
                .await
        }
    };

    // The notes and customers of the example are kept 2 and 3 years: nothing else goes.
    let cli = Principal::Cli;
    clock.set(1_866_967_200_000); // 2029-02-28T10:00:00Z
    let r = t.vault.retention(&cli, false).await.unwrap();
    assert_eq!(r.requests_deleted, 0, "a day short of 24 months: kept");
    clock.set(1_867_053_600_000); // 2029-03-01T10:00:00Z, 24 months after they closed
    let dry = t.vault.retention(&cli, true).await.unwrap();
    assert_eq!(dry.requests_deleted, 2);
    assert_eq!(
        get(id(&done).to_owned()).await.status,
        StatusCode::OK,
        "a dry run deletes nothing"
    );
    let r = t.vault.retention(&cli, false).await.unwrap();
    assert_eq!(r.requests_deleted, 2);
    for gone in [&done, &rejected] {
        assert_eq!(get(id(gone).to_owned()).await.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        get(id(&open).to_owned()).await.status,
        StatusCode::OK,
        "an open request stays"
    );
    let trail = t
        .vault
        .audit_trail(&cli, de.parse().unwrap())
        .await
        .unwrap();
    let deletions = trail
        .iter()
        .filter(|r| r.entry.action == custos_core::audit::Action::RetentionRequestDelete)
        .count();
    assert_eq!(deletions, 2, "each deletion an audit entry");
    let again = t.vault.retention(&cli, false).await.unwrap();
    assert_eq!(again.requests_deleted, 0);
}
