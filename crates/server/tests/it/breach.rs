//! Breach readiness through the API: canaries read by any role raise exactly one alert each,
//! a canary's value in a search or a write raises one, a burst of reads raises one and (with
//! `suspend_on_alert`) suspends the key, and the blast radius of a key is exactly what it
//! read.

use std::sync::Arc;

use axum::http::StatusCode;
use custos_core::breach::AlertKind;
use custos_core::breach::notice::Variant;
use custos_vault::{AlertView, BlastQuery, OpenIncident, Principal, SystemClock};
use serde_json::json;

use super::{TestApp, spawn, spawn_with_inventory};

async fn settle(t: &TestApp) -> Vec<AlertView> {
    while t.vault.sequence_audit().await.unwrap() > 0 {}
    while t.vault.detect().await.unwrap() > 0 {}
    t.vault.alerts(&Principal::Cli, false).await.unwrap()
}

fn record(id: &str) -> String {
    format!("/v1/collections/customers/records/{id}")
}

#[tokio::test]
async fn a_canary_read_by_any_role_raises_exactly_one_alert_naming_the_reader() {
    let t = spawn().await;
    let planted = t
        .vault
        .plant_canaries(&Principal::Cli, "customers", 2)
        .await
        .unwrap();
    let (real, _) = t
        .create(json!({"email": "real@example.com", "name": "Real Person"}))
        .await;
    assert_eq!(t.count().await, 1, "canaries are not counted as customers");
    assert!(settle(&t).await.is_empty(), "planting raises nothing");
    let canary = planted[0].record_id.to_string();
    for (key, purpose) in [
        (&t.support, "support"),
        (&t.billing, "billing"),
        (&t.admin, "support"),
    ] {
        let r = t
            .call(
                "GET",
                &format!("{}?purpose={purpose}", record(&canary)),
                Some(key),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    t.call(
        "GET",
        &format!("{}?purpose=support", record(&real)),
        Some(&t.support),
        None,
    )
    .await;
    let alerts = settle(&t).await;
    assert_eq!(alerts.len(), 3, "{alerts:#?}");
    let mut readers: Vec<&str> = alerts.iter().map(|a| a.alert.actor.as_str()).collect();
    readers.sort();
    assert_eq!(
        readers,
        ["apikey:admin", "apikey:billing", "apikey:support"]
    );
    for a in &alerts {
        assert_eq!(a.alert.kind, AlertKind::CanaryTouched);
        assert_eq!(a.alert.record_id, Some(planted[0].record_id));
        assert!(!a.alert.suspended, "suspend_on_alert is off by default");
    }
    // Judged once: another round raises nothing more.
    assert_eq!(settle(&t).await.len(), 3);
    // The alerts are in the log, and no key was revoked.
    let r = t
        .call(
            "GET",
            &format!("{}?purpose=support", record(&real)),
            Some(&t.support),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_canary_value_in_a_search_or_a_write_raises_an_alert() {
    let t = spawn().await;
    let planted = t
        .vault
        .plant_canaries(&Principal::Cli, "customers", 1)
        .await
        .unwrap();
    let r = t
        .call(
            "GET",
            &format!(
                "{}?purpose=billing",
                record(&planted[0].record_id.to_string())
            ),
            Some(&t.admin),
            None,
        )
        .await;
    let email = r.body["fields"]["email"].as_str().unwrap().to_owned();
    assert!(email.ends_with("@example.net"), "{email}");
    settle(&t).await;
    let before = t.vault.alerts(&Principal::Cli, false).await.unwrap().len();
    // Someone tries a leaked list against the API...
    let r = t
        .call(
            "GET",
            &format!("/v1/collections/customers/records?purpose=support&email={email}"),
            Some(&t.support),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // ... or signs up with a leaked address.
    t.create(json!({"email": email.to_uppercase(), "name": "Someone"}))
        .await;
    let alerts = settle(&t).await;
    let new: Vec<_> = alerts
        .iter()
        .filter(|a| a.alert.kind == AlertKind::CanaryValue)
        .collect();
    assert_eq!(alerts.len(), before + 2, "{alerts:#?}");
    assert_eq!(new.len(), 2, "{alerts:#?}");
    assert!(new.iter().any(|a| a.alert.actor == "apikey:support"));
    assert!(new.iter().any(|a| a.alert.actor == "apikey:admin"));
    assert!(
        new.iter()
            .all(|a| a.alert.record_id == Some(planted[0].record_id))
    );
}

#[tokio::test]
async fn a_burst_of_reads_raises_an_alert_and_suspends_the_key() {
    let t = spawn_with_inventory(Arc::new(SystemClock), |s| {
        format!("{s}\n[breach]\nsuspend_on_alert = true\nread_floor = 5\n")
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            t.create(json!({"email": format!("c{i}@example.com"), "name": "C"}))
                .await
                .0,
        );
    }
    for id in &ids[..5] {
        t.call(
            "GET",
            &format!("{}?purpose=support", record(id)),
            Some(&t.support),
            None,
        )
        .await;
    }
    assert!(
        settle(&t).await.is_empty(),
        "five reads are at the floor, not above it"
    );
    let r = t
        .call(
            "GET",
            &format!("{}?purpose=support", record(&ids[5])),
            Some(&t.support),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let alerts = settle(&t).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0].alert;
    assert_eq!(
        (a.kind, a.actor.as_str(), a.reads),
        (AlertKind::ReadVolume, "apikey:support", Some(6))
    );
    assert!(a.suspended);
    let r = t
        .call(
            "GET",
            &format!("{}?purpose=support", record(&ids[0])),
            Some(&t.support),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the key is suspended: {}",
        r.text
    );
    let r = t
        .call(
            "GET",
            &format!("{}?purpose=billing", record(&ids[0])),
            Some(&t.billing),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "other keys go on");
}

#[tokio::test]
async fn the_blast_radius_of_a_key_is_exactly_what_it_read() {
    let t = spawn().await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(
            t.create(json!({"email": format!("b{i}@example.com"), "name": "B", "phone": "+44 20 7946 0000"}))
                .await,
        );
    }
    let canary = t
        .vault
        .plant_canaries(&Principal::Cli, "customers", 1)
        .await
        .unwrap();
    // billing reads subjects 0 and 1 (1 twice) and the canary; support reads 2.
    for (i, key, purpose) in [
        (0, &t.billing, "billing"),
        (1, &t.billing, "billing"),
        (1, &t.billing, "billing"),
        (2, &t.support, "support"),
    ] {
        let r = t
            .call(
                "GET",
                &format!("{}?purpose={purpose}", record(&made[i].0)),
                Some(key),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    t.call(
        "GET",
        &format!(
            "{}?purpose=billing",
            record(&canary[0].record_id.to_string())
        ),
        Some(&t.billing),
        None,
    )
    .await;
    // A refused read returns nothing and is not counted.
    let r = t
        .call(
            "GET",
            &format!("{}?purpose=support", record(&made[3].0)),
            Some(&t.billing),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let q = BlastQuery {
        api_key: Some("billing".into()),
        ..BlastQuery::default()
    };
    let r = t.vault.blast_radius(&Principal::Cli, &q).await.unwrap();
    let mut want: Vec<_> = [&made[0].1, &made[1].1]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    want.sort();
    assert_eq!(r.subjects, want);
    assert_eq!((r.reads, r.records, r.canary_reads), (3, 2, 1));
    let c = &r.collections["customers"];
    assert_eq!((c.subjects, c.records), (2, 2));
    assert!(
        c.fields.contains("email") && c.fields.contains("phone"),
        "{c:?}"
    );
    assert!(
        !c.fields.contains("notes"),
        "billing cannot read notes: {c:?}"
    );
    assert!(c.categories.contains("contact"));
    assert_eq!(
        r.jurisdictions.values().sum::<u64>(),
        2,
        "{:?}",
        r.jurisdictions
    );
    // A window before any read holds nothing.
    let early = BlastQuery {
        api_key: Some("billing".into()),
        to_ms: Some(1_000),
        ..BlastQuery::default()
    };
    assert!(
        t.vault
            .blast_radius(&Principal::Cli, &early)
            .await
            .unwrap()
            .subjects
            .is_empty()
    );
    // Neither a caller nor a window: refused, naming the rule.
    let e = t
        .vault
        .blast_radius(&Principal::Cli, &BlastQuery::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("name an API key"), "{e}");
}

#[tokio::test]
async fn an_incident_runs_its_clocks_and_containment_revokes_its_key() {
    let t = spawn().await;
    let p = Principal::Cli;
    let view = t
        .vault
        .open_incident(
            &p,
            OpenIncident {
                title: "Support key posted on a forum".into(),
                facts: "A support key was found in a public paste.".into(),
                api_key: Some("support".into()),
                ..OpenIncident::default()
            },
        )
        .await
        .unwrap();
    let authority = view.authority_clock().expect("GDPR's 72 hours");
    let left = authority.left_ms.unwrap();
    assert!((71 * 3_600_000..=72 * 3_600_000).contains(&left), "{left}");
    assert!(!authority.overdue);
    let id = view.incident.id;
    let e = t
        .vault
        .update_incident(
            &p,
            id,
            custos_vault::IncidentChange {
                decision: Some((true, false, "  ".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("reasons"), "{e}");
    let done = t.vault.contain_incident(&p, id).await.unwrap();
    assert_eq!(done.revoked_keys, ["support"]);
    let (rec, _) = t
        .create(json!({"email": "x@example.com", "name": "X"}))
        .await;
    let r = t
        .call(
            "GET",
            &format!("{}?purpose=support", record(&rec)),
            Some(&t.support),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let list = t.vault.incidents(&p).await.unwrap();
    assert_eq!(list.len(), 1);
    let i = &list[0].incident;
    assert_eq!(i.status.as_str(), "contained");
    assert!(
        i.steps
            .iter()
            .any(|s| s.what.contains("revoked API keys [support]")),
        "{:?}",
        i.steps
    );
    assert!(i.steps.iter().any(|s| s.what.contains("not rotated here")));
}

#[tokio::test]
async fn breach_acts_are_refused_to_roles_without_handle_incidents() {
    let t = spawn().await;
    let support = t.vault.authenticate(&t.support).await.unwrap();
    for e in [
        t.vault
            .plant_canaries(&support, "customers", 1)
            .await
            .map(drop),
        t.vault.alerts(&support, false).await.map(drop),
        t.vault.incidents(&support).await.map(drop),
        t.vault
            .open_incident(
                &support,
                OpenIncident {
                    title: "x".into(),
                    ..Default::default()
                },
            )
            .await
            .map(drop),
        t.vault
            .blast_radius(
                &support,
                &BlastQuery {
                    api_key: Some("billing".into()),
                    ..Default::default()
                },
            )
            .await
            .map(drop),
    ] {
        let e = e.unwrap_err();
        assert!(matches!(e, custos_vault::VaultError::Forbidden(_)), "{e}");
    }
    assert!(t.vault.canaries(&Principal::Cli).await.unwrap().is_empty());
}

/// The example with a `state` field the region is read from, so Californians are placed.
fn with_regions(s: String) -> String {
    s.replace(
        "# region_field = \"customers.state\"",
        "region_field = \"customers.state\"",
    )
    .replace(
        "[collections.customers.fields.vip]",
        "[collections.customers.fields.state]\ntype = \"text\"\ncategory = \"contact\"\npurposes = [\"billing\"]\nmax_length = 10\n\n[collections.customers.fields.vip]",
    )
}

#[tokio::test]
async fn notices_are_drafted_from_the_blast_radius_and_sent_once_decided() {
    let t = spawn_with_inventory(Arc::new(SystemClock), with_regions).await;
    let p = Principal::Cli;
    let (uk, _) = t
        .create(json!({"email": "uk@example.com", "name": "In London", "country": "GB"}))
        .await;
    let (ca, _) = t
        .create(
            json!({"email": "ca@example.com", "name": "In LA", "country": "US", "state": "US-CA"}),
        )
        .await;
    let (untouched, _) = t
        .create(json!({"email": "no@example.com", "name": "Not Read"}))
        .await;
    for id in [&uk, &ca] {
        let r = t
            .call(
                "GET",
                &format!("{}?purpose=billing", record(id)),
                Some(&t.billing),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let _ = untouched;
    let view = t
        .vault
        .open_incident(
            &p,
            OpenIncident {
                title: "Billing key leaked".into(),
                facts: "The billing service's key was committed to a public repository.".into(),
                api_key: Some("billing".into()),
                ..OpenIncident::default()
            },
        )
        .await
        .unwrap();
    let id = view.incident.id;
    let n = t.vault.notices(&p, id).await.unwrap();
    for item in [
        "(a) Nature",
        "committed to a public repository",
        "data subjects concerned: 2",
        "(b) Contact point",
        "(c) Likely consequences",
        "(d) Measures",
    ] {
        assert!(
            n.authority.text.contains(item),
            "{item}: {}",
            n.authority.text
        );
    }
    assert_eq!(n.authority.missing, ["consequences", "measures"]);
    assert_eq!(
        n.subjects.get(&Variant::Art34),
        Some(&1),
        "{:?}",
        n.subjects
    );
    assert_eq!(
        n.subjects.get(&Variant::California),
        Some(&1),
        "{:?}",
        n.subjects
    );
    assert!(
        n.samples
            .iter()
            .any(|s| s.text.contains("NOTICE OF DATA BREACH"))
    );
    assert!(
        !n.authority.text.contains("@example.com"),
        "no address in the draft"
    );
    // Nothing is sent before the decision says so.
    let e = t.vault.send_notices(&p, id).await.unwrap_err();
    assert!(matches!(e, custos_vault::VaultError::Conflict(_)), "{e}");
    let before = t.vault.outbox_counts().await.unwrap().queued;
    t.vault
        .update_incident(
            &p,
            id,
            custos_vault::IncidentChange {
                decision: Some((
                    true,
                    true,
                    "names and addresses of two customers were exposed".into(),
                )),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let sent = t.vault.send_notices(&p, id).await.unwrap();
    assert_eq!((sent.queued, sent.without_address), (2, 0));
    assert_eq!(t.vault.outbox_counts().await.unwrap().queued, before + 2);
    // Approved again (a second click, a retry): nobody is mailed twice.
    let again = t.vault.send_notices(&p, id).await.unwrap();
    assert_eq!((again.queued, again.already), (0, 2));
    assert_eq!(t.vault.outbox_counts().await.unwrap().queued, before + 2);
    let i = t.vault.incident(&p, id).await.unwrap().incident;
    assert!(
        i.steps
            .iter()
            .any(|s| s.what.contains("notices queued to 2 subjects")),
        "{:?}",
        i.steps
    );
}

#[tokio::test]
async fn containment_by_a_role_never_stops_an_administrator() {
    let t = spawn().await;
    let officer = Principal::Operator {
        id: custos_core::ids::OperatorId::random().to_string(),
        role: "privacy_officer".into(),
    };
    let id = t
        .vault
        .open_incident(
            &officer,
            OpenIncident {
                title: "Admin key in a log file".into(),
                api_key: Some("admin".into()),
                ..OpenIncident::default()
            },
        )
        .await
        .unwrap()
        .incident
        .id;
    let e = t.vault.contain_incident(&officer, id).await.unwrap_err();
    assert!(matches!(e, custos_vault::VaultError::Forbidden(_)), "{e}");
    let (rec, _) = t
        .create(json!({"email": "y@example.com", "name": "Y"}))
        .await;
    let r = t
        .call(
            "GET",
            &format!("{}?purpose=support", record(&rec)),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "the admin key still works");
    // The command line holds the root key: it may contain anything.
    let done = t.vault.contain_incident(&Principal::Cli, id).await.unwrap();
    assert_eq!(done.revoked_keys, ["admin"]);
}

#[tokio::test]
async fn many_canaries_are_planted_each_with_values_no_record_holds() {
    let t = spawn().await;
    let planted = t
        .vault
        .plant_canaries(&Principal::Cli, "customers", 300)
        .await
        .unwrap();
    assert_eq!(planted.len(), 300);
    assert_eq!(t.count().await, 0);
    let e = t
        .vault
        .plant_canaries(&Principal::Cli, "customers", 1001)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("1 to 1000"), "{e}");
    // The log says how many were planted, not which.
    while t.vault.sequence_audit().await.unwrap() > 0 {}
    let page = t
        .vault
        .audit_entries(
            &Principal::Cli,
            &custos_vault::AuditFilter {
                action: Some("record.create".into()),
                limit: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        page.entries.iter().all(|e| e.entry.detail.is_none()),
        "no entry names a canary"
    );
}
