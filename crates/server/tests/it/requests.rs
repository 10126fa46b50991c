//! The request desk over HTTP, with a clock the test moves: requests filed under the profile
//! of the subject's jurisdiction, moved through their state machine (each step audited, a
//! forbidden one a 409 naming its rule), and carried out through the consent ledger.

use std::sync::Arc;

use axum::http::StatusCode;
use custos_vault::Principal;
use serde_json::{Value, json};

use crate::{ManualClock, Reply, TestApp, assert_error, spawn_with_inventory};

const DAY: i64 = 86_400_000;
/// Monday 1 March 2027, 10:00 UTC.
pub(crate) const MARCH_2027: i64 = 1_803_895_200_000;

/// The example inventory with a role that may write (the application's, filing requests for
/// customers), and a region field the jurisdiction can be read from.
pub(crate) fn desk_inventory(text: String) -> String {
    text.replacen(
        "[[roles]]\nid = \"marketer\"",
        "[[roles]]\nid = \"desk\"\npurposes = []\nmay_write = true\n\n[[roles]]\nid = \"marketer\"",
        1,
    )
    .replacen(
        "[rights]\n",
        "[collections.customers.fields.state]\ntype = \"text\"\ncategory = \"demographic\"\n\
         purposes = [\"billing\"]\nmax_length = 10\n\n[rights]\n",
        1,
    )
    .replacen(
        "# region_field = \"customers.state\"",
        "region_field = \"customers.state\"",
        1,
    )
}

/// A desk at 1 March 2027, with its clock, and a key for the `desk` role.
pub(crate) async fn desk() -> (TestApp, Arc<ManualClock>, String) {
    let clock = ManualClock::at(MARCH_2027);
    let t = spawn_with_inventory(clock.clone(), desk_inventory).await;
    let key = t
        .vault
        .create_api_key(&Principal::Cli, "desk", "desk")
        .await
        .unwrap()
        .secret
        .expose_secret()
        .clone();
    (t, clock, key)
}

impl TestApp {
    /// Files a request as admin; asserts it was filed.
    pub(crate) async fn file(&self, body: Value) -> Value {
        let r = self
            .call("POST", "/v1/requests", Some(&self.admin), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body
    }

    /// Moves request `id` on as admin.
    pub(crate) async fn transit(&self, id: &str, transition: &str, body: Option<Value>) -> Reply {
        let uri = format!("/v1/requests/{id}/{transition}");
        self.call("POST", &uri, Some(&self.admin), body).await
    }
}

/// The date part of an RFC 3339 instant in `v`.
pub(crate) fn date(v: &Value) -> &str {
    &v.as_str().unwrap()[..10]
}

pub(crate) fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

/// Why `field` was withheld from a read, as its body says.
fn withheld<'a>(read: &'a Value, field: &str) -> &'a str {
    read["withheld"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["field"] == field)
        .and_then(|w| w["reason"].as_str())
        .unwrap_or_else(|| panic!("{field} is not withheld: {read}"))
}

#[tokio::test]
async fn requests_are_filed_under_the_profile_of_the_subjects_jurisdiction() {
    let (t, _, _) = desk().await;
    let (_, de) = t
        .create(json!({"email": "de@example.com", "country": "DE"}))
        .await;
    let (_, ca) = t
        .create(json!({"email": "ca@example.com", "country": "US", "state": "US-CA"}))
        .await;
    let (_, ny) = t
        .create(json!({"email": "ny@example.com", "country": "US"}))
        .await;

    // Germany: GDPR, a month from receipt; no acknowledgement.
    let r = t
        .file(json!({"subject_id": de, "kind": "access", "channel": "email"}))
        .await;
    assert_eq!(r["profile"], "gdpr", "{r}");
    assert_eq!(date(&r["due_at"]), "2027-04-01");
    assert_eq!(r["due_date"], "2027-04-01");
    assert!(r.get("acknowledge_by").is_none(), "{r}");
    assert_eq!(
        (r["status"].as_str(), r["days_left"].as_i64()),
        (Some("received"), Some(31))
    );
    assert_eq!(r["history"][0]["transition"], "file");
    assert_eq!(r["history"][0]["by"], "apikey:admin");

    // California, from the record's region field: CCPA, 45 days, receipt confirmed within
    // 10 business days; an opt-out within 15 business days.
    let r = t
        .file(json!({"subject_id": ca, "kind": "erasure", "channel": "portal"}))
        .await;
    assert_eq!(r["profile"], "ccpa", "{r}");
    assert_eq!(date(&r["due_at"]), "2027-04-15");
    assert_eq!(date(&r["acknowledge_by"]), "2027-03-15");
    let r = t
        .file(json!({"subject_id": ca, "kind": "opt_out_sale_sharing", "channel": "api"}))
        .await;
    assert_eq!(date(&r["due_at"]), "2027-03-22");

    // No rule for New York: the default profile, unless the request places the subject.
    let r = t
        .file(json!({"subject_id": ny, "kind": "access", "channel": "phone"}))
        .await;
    assert_eq!(r["profile"], "gdpr");
    let r = t
        .file(
            json!({"subject_id": ny, "kind": "access", "channel": "letter",
            "jurisdiction": {"region": "us-ca"},
            "received_at": "2027-02-27T09:00:00Z"}),
        )
        .await;
    assert_eq!(r["profile"], "ccpa", "{r}");
    assert_eq!(date(&r["received_at"]), "2027-02-27");
    assert_eq!(date(&r["due_at"]), "2027-04-13");
    // A country given wins over the record's: a German customer who moved to the UK.
    let r = t
        .file(
            json!({"subject_id": de, "kind": "objection", "channel": "email",
            "jurisdiction": {"country": "GB"}}),
        )
        .await;
    assert_eq!(r["profile"], "uk_gdpr");

    // The filing's audit entry names the request and the fields read to place the subject,
    // never their values.
    let trail = t
        .vault
        .audit_trail(&Principal::Cli, ca.parse().unwrap())
        .await
        .unwrap();
    let filed = trail
        .iter()
        .find(|r| r.entry.action == custos_core::audit::Action::RequestFile)
        .unwrap();
    assert_eq!(filed.entry.fields, ["country", "state"]);
    assert_eq!(filed.entry.collection.as_deref(), Some("customers"));
    assert!(filed.entry.request_id.is_some());
    let bytes = String::from_utf8(filed.entry.to_bytes()).unwrap();
    assert!(
        !bytes.contains("US-CA") && !bytes.contains("\"US\""),
        "{bytes}"
    );
}

#[tokio::test]
async fn every_transition_is_audited_and_a_forbidden_one_is_a_409_naming_its_rule() {
    let (t, clock, _) = desk().await;
    let (_, de) = t
        .create(json!({"email": "de@example.com", "country": "DE"}))
        .await;
    let r = t
        .file(json!({"subject_id": de, "kind": "access", "channel": "email"}))
        .await;
    let rid = id(&r).to_owned();

    // Access is approved only once its subject is verified.
    let refused = t.transit(&rid, "approve", None).await;
    assert_error(&refused, StatusCode::CONFLICT, "transition_refused", None);
    assert_eq!(
        refused.body["error"]["rule"], "not_verified",
        "{}",
        refused.text
    );
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("(rule: not_verified)")
    );

    let steps = [
        ("acknowledge", None, "received"),
        ("verify", None, "verifying"),
        ("approve", None, "in_progress"),
        (
            "extend",
            Some(json!({"reason": "ten years of orders to gather"})),
            "extended",
        ),
        ("complete", None, "completed"),
    ];
    for (i, (step, body, status)) in steps.into_iter().enumerate() {
        clock.set(MARCH_2027 + (i as i64 + 1) * DAY);
        let r = t.transit(&rid, step, body).await;
        assert_eq!(r.status, StatusCode::OK, "{step}: {}", r.text);
        assert_eq!(r.body["status"], status, "{step}");
    }
    let done = t
        .call("GET", &format!("/v1/requests/{rid}"), Some(&t.admin), None)
        .await;
    let v = &done.body;
    assert_eq!(date(&v["acknowledged_at"]), "2027-03-02");
    assert_eq!(date(&v["verified_at"]), "2027-03-04");
    // Two further months from the first due date.
    assert_eq!(date(&v["extended_to"]), "2027-06-01");
    assert_eq!(
        v["extension_reason"],
        json!({"text": "ten years of orders to gather"})
    );
    assert_eq!(
        (v["days_left"].clone(), v["overdue"].clone()),
        (Value::Null, json!(false))
    );
    assert_eq!(date(&v["kept_until"]), "2029-03-06");
    let history: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["transition"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "file",
            "acknowledge",
            "verify",
            "approve",
            "extend",
            "complete"
        ]
    );

    // A closed request changes no more.
    for (step, body) in [
        ("complete", None),
        ("reject", Some(json!({"reason": "too late"}))),
        ("extend", Some(json!({"reason": "again"}))),
    ] {
        let r = t.transit(&rid, step, body).await;
        assert_error(&r, StatusCode::CONFLICT, "transition_refused", None);
        assert_eq!(r.body["error"]["rule"], "request_closed", "{step}");
    }

    // Every transition is an audit entry naming the request, and never the reason.
    let trail = t
        .vault
        .audit_trail(&Principal::Cli, de.parse().unwrap())
        .await
        .unwrap();
    let moves: Vec<&str> = trail
        .iter()
        .filter(|r| r.entry.action == custos_core::audit::Action::RequestTransition)
        .map(|r| r.entry.detail.as_deref().unwrap())
        .collect();
    assert_eq!(
        moves,
        [
            "acknowledge: received",
            "verify: verifying",
            "approve: in_progress",
            "extend: extended",
            "complete: completed"
        ]
    );
    assert!(trail.iter().all(|r| r.entry.request_id.is_none()
        || r.entry.request_id.unwrap().to_string() == rid));
    let all = serde_json::to_string(&trail.iter().map(|r| &r.entry).collect::<Vec<_>>()).unwrap();
    assert!(
        !all.contains("ten years of orders"),
        "reasons stay out of the log"
    );
    // The reason was read back (by the GET): that read is accounted for.
    assert!(trail.iter().any(
        |r| r.entry.action == custos_core::audit::Action::RequestRead
            && r.entry.fields == ["extension_reason"]
    ));
}

#[tokio::test]
async fn a_ccpa_request_is_extended_once() {
    let (t, _, _) = desk().await;
    let (_, ca) = t
        .create(json!({"email": "ca@example.com", "country": "US", "state": "US-CA"}))
        .await;
    let r = t
        .file(json!({"subject_id": ca, "kind": "access", "channel": "portal"}))
        .await;
    let rid = id(&r).to_owned();
    let why = json!({"reason": "records in two systems"});
    let r = t.transit(&rid, "extend", Some(why.clone())).await;
    assert_eq!(r.body["error"]["rule"], "not_approved", "{}", r.text);
    t.transit(&rid, "verify", None).await;
    t.transit(&rid, "approve", None).await;
    let r = t.transit(&rid, "extend", Some(why.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(date(&r.body["extended_to"]), "2027-05-30");
    let r = t.transit(&rid, "extend", Some(why)).await;
    assert_error(&r, StatusCode::CONFLICT, "transition_refused", None);
    assert_eq!(r.body["error"]["rule"], "already_extended");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ccpa profile allows one extension"),
        "{}",
        r.text
    );
    // An opt-out under CCPA cannot be extended at all.
    let r = t
        .file(json!({"subject_id": ca, "kind": "opt_out_sale_sharing", "channel": "api"}))
        .await;
    let r = t
        .transit(id(&r), "extend", Some(json!({"reason": "x"})))
        .await;
    assert_eq!(r.body["error"]["rule"], "not_approved", "{}", r.text);
}

#[tokio::test]
async fn an_approved_restriction_or_objection_is_carried_out_through_the_consent_ledger() {
    let (t, _, _) = desk().await;
    let (rec, de) = t
        .create(json!({"email": "de@example.com", "country": "DE", "notes": "prefers post"}))
        .await;
    let t = &t;
    let rec = &rec;
    let read = |purpose: &'static str| {
        let uri = format!("/v1/collections/customers/records/{rec}?purpose={purpose}");
        async move { t.call("GET", &uri, Some(&t.admin), None).await }
    };
    assert_eq!(
        read("support").await.body["fields"]["notes"],
        "prefers post"
    );

    let r = t
        .file(
            json!({"subject_id": de, "kind": "objection", "channel": "email",
            "purposes": ["support"]}),
        )
        .await;
    t.transit(id(&r), "verify", None).await;
    let r = t.transit(id(&r), "approve", None).await;
    assert_eq!(r.body["status"], "completed", "{}", r.text);
    assert_eq!(
        r.body["history"][3]["detail"],
        "recorded in the consent ledger: object support"
    );
    let support = read("support").await.body;
    assert_eq!(withheld(&support, "notes"), "objection");
    assert_eq!(withheld(&support, "email"), "objection");

    let r = t
        .file(json!({"subject_id": de, "kind": "restriction", "channel": "letter"}))
        .await;
    t.transit(id(&r), "verify", None).await;
    let r = t.transit(id(&r), "approve", None).await;
    assert_eq!(r.body["status"], "completed", "{}", r.text);
    let billing = read("billing").await.body;
    assert!(
        billing["fields"].as_object().unwrap().is_empty(),
        "{billing}"
    );
    assert_eq!(withheld(&billing, "email"), "restricted");
    assert_eq!(withheld(&billing, "country"), "restricted");
    let ledger = t
        .call(
            "GET",
            &format!("/v1/subjects/{de}/consents"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(ledger.body["restricted"], true);
    let history = ledger.body["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{}", ledger.text);
    assert!(
        history[1]["evidence"]["collection_point"]
            .as_str()
            .unwrap()
            .starts_with("data-subject request ")
    );
}

#[tokio::test]
async fn an_approved_opt_out_withdraws_every_sale_or_sharing_purpose() {
    let (t, _, _) = desk().await;
    let (_, ca) = t
        .create(json!({"email": "ca@example.com", "country": "US", "state": "US-CA"}))
        .await;
    for purpose in ["advertising", "marketing"] {
        let r = t
            .call(
                "POST",
                &format!("/v1/subjects/{ca}/consents"),
                Some(&t.admin),
                Some(json!({"choice": "grant", "purpose": purpose})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = t
        .file(json!({"subject_id": ca, "kind": "opt_out_sale_sharing", "channel": "portal"}))
        .await;
    // An opt-out needs no verification: approved as received, and completed.
    let r = t.transit(id(&r), "approve", None).await;
    assert_eq!(r.body["status"], "completed", "{}", r.text);
    let ledger = t
        .call(
            "GET",
            &format!("/v1/subjects/{ca}/consents"),
            Some(&t.admin),
            None,
        )
        .await
        .body;
    let state = |purpose: &str| {
        ledger["purposes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["purpose"] == purpose)
            .unwrap()["consent"]
            .clone()
    };
    assert_eq!(state("advertising"), "withdrawn", "{ledger}");
    assert_eq!(
        state("marketing"),
        "granted",
        "not sold or shared: untouched"
    );
    // A second opt-out finds nothing left to withdraw, and records nothing.
    let r = t
        .file(json!({"subject_id": ca, "kind": "opt_out_sale_sharing", "channel": "email"}))
        .await;
    let r = t.transit(id(&r), "approve", None).await;
    assert_eq!(
        r.body["history"][2]["detail"],
        "the consent ledger already held every choice asked for"
    );
    let after = t
        .call(
            "GET",
            &format!("/v1/subjects/{ca}/consents"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(after.body["history"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn access_stays_in_progress_and_an_approved_erasure_erases() {
    let (t, _, _) = desk().await;
    let (_, de) = t
        .create(json!({"email": "de@example.com", "country": "DE"}))
        .await;
    for kind in ["access", "portability", "rectification"] {
        let r = t
            .file(json!({"subject_id": de, "kind": kind, "channel": "email"}))
            .await;
        t.transit(id(&r), "verify", None).await;
        let r = t.transit(id(&r), "approve", None).await;
        assert_eq!(r.body["status"], "in_progress", "{kind}: {}", r.text);
        let r = t.transit(id(&r.body), "complete", None).await;
        assert_eq!(r.body["status"], "completed", "{kind}: {}", r.text);
    }
    assert_eq!(t.count().await, 1, "nothing erased by those");
    // Approving an erasure carries it out: the subject is erased, the request completed
    // with what was done, and the certificate is served.
    let r = t
        .file(json!({"subject_id": de, "kind": "erasure", "channel": "email"}))
        .await;
    t.transit(id(&r), "verify", None).await;
    let r = t.transit(id(&r), "approve", None).await;
    assert_eq!(r.body["status"], "completed", "{}", r.text);
    let said = r.text.clone();
    assert!(said.contains("erased 1 records, kept 0"), "{said}");
    assert_eq!(t.count().await, 0, "the subject's record is gone");
    let c = t
        .call(
            "GET",
            &format!("/v1/subjects/{de}/erasure-certificate"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(c.status, axum::http::StatusCode::OK, "{}", c.text);
    // The request's record outlives its subject.
    let again = t
        .call(
            "GET",
            &format!("/v1/requests/{}", id(&r.body)),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(again.body["status"], "completed", "{}", again.text);
}
