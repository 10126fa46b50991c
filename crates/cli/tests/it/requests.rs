//! `custos requests` end to end: requests filed through the real server, then listed, shown
//! and moved on from the command line against the same data directory; and a request's
//! reasons, which never reach the disk or the logs in plaintext, shredded with the subject's
//! key while the request's record stays until retention takes it.

use serde_json::{Value, json};

use crate::secrecy::{files_under, forms};
use crate::{Server, client, custos, initialised, stderr, stdout};

/// Posts `body` to `path` as `key`; the status and the JSON answer.
async fn post(server: &Server, key: &str, path: &str, body: Value) -> (u16, Value) {
    let r = client()
        .post(server.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Creates a customer; their subject id.
async fn customer(server: &Server, key: &str, fields: Value) -> String {
    let (status, body) = post(
        server,
        key,
        "/v1/collections/customers/records",
        json!({ "fields": fields }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["subject_id"].as_str().unwrap().to_owned()
}

/// Files a request; its id.
async fn file(server: &Server, key: &str, body: Value) -> String {
    let (status, r) = post(server, key, "/v1/requests", body).await;
    assert_eq!(status, 201, "{r}");
    r["id"].as_str().unwrap().to_owned()
}

/// `custos requests ARGS...`, which must succeed; its standard output.
fn desk(dir: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["requests"];
    all.extend_from_slice(args);
    let o = custos(dir, &all);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

/// The first column of a table's rows (its ids), header left out.
fn ids(table: &str) -> Vec<&str> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_desk_lists_shows_and_moves_requests_from_the_command_line() {
    let (dir, key) = initialised();
    let server = Server::start(dir.path(), &[]);
    let de = customer(
        &server,
        &key,
        json!({"email": "de@example.com", "country": "DE"}),
    )
    .await;
    let us = customer(
        &server,
        &key,
        json!({"email": "us@example.com", "country": "US"}),
    )
    .await;
    let access = file(
        &server,
        &key,
        json!({"subject_id": de, "kind": "access", "channel": "email"}),
    )
    .await;
    // A request to know under CCPA: approval starts the work, which staff complete.
    let to_know = file(
        &server,
        &key,
        json!({"subject_id": us, "kind": "access", "channel": "portal",
        "jurisdiction": {"region": "US-CA"}}),
    )
    .await;
    // Received in 2020: long overdue.
    let late = file(
        &server,
        &key,
        json!({"subject_id": de, "kind": "erasure", "channel": "letter",
        "received_at": "2020-01-15T09:00:00Z"}),
    )
    .await;
    let opt_out = file(
        &server,
        &key,
        json!({"subject_id": us, "kind": "opt_out_sale_sharing",
        "channel": "api", "jurisdiction": {"region": "US-CA"}}),
    )
    .await;
    server.stop();

    // The table, in deadline order: the overdue one first, the 15 business days of the
    // opt-out before the month of GDPR and the 45 days of CCPA.
    let table = desk(dir.path(), &["list"]);
    assert_eq!(
        ids(&table),
        [&*late, &opt_out, &access, &to_know],
        "{table}"
    );
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["id", "kind", "status", "subject", "due", "days", "left"]
    );
    let late_row = table.lines().nth(1).unwrap();
    assert!(
        late_row.contains("2020-02-15") && late_row.ends_with("overdue"),
        "{table}"
    );
    assert!(
        late_row.contains(&de) && late_row.contains("received"),
        "{late_row}"
    );
    let json: Value = serde_json::from_str(&desk(dir.path(), &["list", "--json"])).unwrap();
    let list = json.as_array().unwrap();
    let days: Vec<i64> = list
        .iter()
        .map(|r| r["days_left"].as_i64().unwrap())
        .collect();
    assert!(
        days[0] < 0 && days.windows(2).all(|w| w[0] <= w[1]),
        "{days:?}"
    );
    for (row, line) in list.iter().zip(table.lines().skip(1)) {
        assert!(line.contains(row["due_date"].as_str().unwrap()), "{line}");
        assert!(line.contains(&format!(" {}", row["days_left"])), "{line}");
    }
    assert_eq!(list[3]["profile"], "ccpa");
    let overdue = desk(dir.path(), &["list", "--overdue"]);
    assert_eq!(ids(&overdue), [&*late]);
    let within = desk(dir.path(), &["list", "--due-within", "1y"]);
    assert_eq!(ids(&within), [&*late, &opt_out, &access, &to_know]);

    // Approve, extend and reject from the command line.
    let out = desk(dir.path(), &["approve", &opt_out]);
    assert!(
        out.starts_with(&format!("approve: request {opt_out} is completed")),
        "{out}"
    );
    desk(dir.path(), &["verify", &to_know]);
    let out = desk(dir.path(), &["approve", &to_know]);
    assert!(out.contains("is in_progress"), "{out}");
    let out = desk(
        dir.path(),
        &["extend", &to_know, "--reason", "two systems to search"],
    );
    assert!(out.contains("is extended"), "{out}");
    let again = custos(
        dir.path(),
        &["requests", "extend", &to_know, "--reason", "more"],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("(rule: already_extended)"),
        "{}",
        stderr(&again)
    );
    let out = desk(
        dir.path(),
        &["reject", &late, "--reason", "sent to the wrong company"],
    );
    assert!(out.contains("is rejected (closed)"), "{out}");
    let closed = custos(dir.path(), &["requests", "approve", &late]);
    assert!(
        stderr(&closed).contains("(rule: request_closed)"),
        "{}",
        stderr(&closed)
    );
    let empty = custos(
        dir.path(),
        &["requests", "reject", &access, "--reason", "  "],
    );
    assert_eq!(empty.status.code(), Some(2));
    assert!(stderr(&empty).contains("--reason"), "{}", stderr(&empty));

    let show = desk(dir.path(), &["show", &to_know]);
    for says in [
        "status       extended",
        "under ccpa",
        "extended     because two systems to search",
        "history",
        "approve      in_progress  by cli",
        "extend       extended     by cli",
    ] {
        assert!(show.contains(says), "{says}: {show}");
    }
    let show = desk(dir.path(), &["show", &opt_out]);
    assert!(
        show.contains("recorded in the consent ledger: withdraw advertising"),
        "{show}"
    );
    let overdue = desk(dir.path(), &["list", "--overdue"]);
    assert_eq!(
        overdue,
        "id  kind  status  subject  due  days left\n(no requests)\n"
    );
    let bad = custos(dir.path(), &["requests", "show", "not-a-uuid"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("is not a UUID"), "{}", stderr(&bad));
    let v = custos(dir.path(), &["audit", "verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
}

#[tokio::test(flavor = "multi_thread")]
async fn reasons_are_never_plaintext_at_rest_and_are_shredded_with_the_subjects_key() {
    let (dir, key) = initialised();
    let server = Server::start(dir.path(), &[]);
    let tag = format!("{:08x}", std::process::id() ^ 0x0dd_ba11);
    let rejection = format!("canary-reason-{tag} Mrs Canaryperson called twice");
    let extension = format!("canary-extension-{tag} her file is in the basement");
    let subject = customer(
        &server,
        &key,
        json!({"email": "r@example.com", "country": "DE"}),
    )
    .await;
    let rejected = file(
        &server,
        &key,
        json!({"subject_id": subject, "kind": "access", "channel": "phone"}),
    )
    .await;
    let extended = file(
        &server,
        &key,
        json!({"subject_id": subject, "kind": "portability", "channel": "email"}),
    )
    .await;
    let path = |id: &str, step: &str| format!("/v1/requests/{id}/{step}");
    let (status, r) = post(
        &server,
        &key,
        &path(&rejected, "reject"),
        json!({"reason": rejection}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["rejection_reason"]["text"], rejection.as_str());
    for step in ["verify", "approve"] {
        post(&server, &key, &path(&extended, step), json!({})).await;
    }
    let (status, r) = post(
        &server,
        &key,
        &path(&extended, "extend"),
        json!({"reason": extension}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let listed = client()
        .get(server.url("/v1/requests"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listed.contains(&rejection), "staff read the reasons back");
    let log = server.stop();

    let mut haystacks: Vec<(String, Vec<u8>)> = files_under(dir.path())
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    haystacks.push(("server log".into(), log.into_bytes()));
    for canary in [
        &rejection,
        &extension,
        &format!("canary-reason-{tag}"),
        &"Canaryperson".to_owned(),
    ] {
        for form in forms(canary) {
            for (at, bytes) in &haystacks {
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_slice()),
                    "{at} holds a form of a reason ({})",
                    String::from_utf8_lossy(&form)
                );
            }
        }
    }

    // The subject asks to be erased, and approving the request erases them: their data key
    // is destroyed, and the request completes saying what was erased.
    let server = Server::start(dir.path(), &[]);
    let erase = file(
        &server,
        &key,
        json!({"subject_id": subject, "kind": "erasure", "channel": "email"}),
    )
    .await;
    server.stop();
    desk(dir.path(), &["verify", &erase]);
    let out = desk(dir.path(), &["approve", &erase]);
    assert!(out.contains("is completed"), "{out}");
    let db = rusqlite::Connection::open(dir.path().join("custos.db")).unwrap();
    let keys: i64 = db
        .query_row(
            "SELECT count(*) FROM subject_keys WHERE subject_id = ?1",
            [&subject],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(keys, 0, "the subject's key is gone");
    drop(db);
    let list = custos(dir.path(), &["erasures", "list", "--json"]);
    assert!(stdout(&list).contains(&subject), "{}", stdout(&list));
    let show = desk(dir.path(), &["show", &rejected]);
    assert!(
        show.contains("rejected     because (erased with the subject's key)"),
        "{show}"
    );
    assert!(
        show.contains("status       rejected"),
        "the request's record stays: {show}"
    );
    let json: Value =
        serde_json::from_str(&desk(dir.path(), &["show", &rejected, "--json"])).unwrap();
    assert_eq!(json["rejection_reason"], json!({"erased": true}));
    let json: Value =
        serde_json::from_str(&desk(dir.path(), &["show", &extended, "--json"])).unwrap();
    assert_eq!(json["extension_reason"], json!({"erased": true}));
    // Completing it needs no key: its record holds nothing personal.
    desk(dir.path(), &["complete", &extended]);

    // Kept 24 months after it closed, then deleted by retention, erased subject or not.
    let json: Value =
        serde_json::from_str(&desk(dir.path(), &["show", &rejected, "--json"])).unwrap();
    let until = json["kept_until"].as_str().unwrap().to_owned();
    let o = custos(dir.path(), &["retention", "run", "--as-of", &until[..10]]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("requests: deleted 0 records"),
        "{}",
        stdout(&o)
    );
    desk(dir.path(), &["show", &rejected]);
    let o = custos(dir.path(), &["retention", "run", "--as-of", &until]);
    assert!(
        stdout(&o).contains("requests: deleted 1 records"),
        "{}",
        stdout(&o)
    );
    let gone = custos(dir.path(), &["requests", "show", &rejected]);
    assert_eq!(gone.status.code(), Some(2));
    assert!(
        stderr(&gone).contains("request not found"),
        "{}",
        stderr(&gone)
    );
    desk(dir.path(), &["show", &extended]);
}
