//! Breach response in the console: an alert from a canary becomes an incident with its
//! 72-hour clock, blast radius, containment, decision and notices; and every refusal
//! (no session, a role without the permission, a form without its token).

use axum::http::StatusCode;
use custos_vault::Principal;
use serde_json::json;

use crate::console::{T0, app, operator};
use crate::visitor::Visitor;

#[tokio::test]
async fn an_officer_turns_a_canary_alert_into_a_contained_incident_with_notices() {
    let (t, clock) = app().await;
    let officer = operator(&t, "dpo@example.com", "privacy_officer").await;
    clock.set(T0 + 30_000);
    let canary = t
        .vault
        .plant_canaries(&Principal::Cli, "customers", 1)
        .await
        .unwrap();
    let (real, _) = t
        .create(json!({"email": "ada@example.com", "name": "Ada"}))
        .await;
    for id in [canary[0].record_id.to_string(), real] {
        let r = t
            .call(
                "GET",
                &format!("/v1/collections/customers/records/{id}?purpose=support"),
                Some(&t.support),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    while t.vault.sequence_audit().await.unwrap() > 0 {}
    t.vault.detect().await.unwrap();
    let mut b = Visitor::new(&t);
    b.sign_in_as(&officer, T0 + 30_000).await;
    let page = b.get("/console/breach").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains("canary touched") && page.text.contains("apikey:support"),
        "{}",
        page.text
    );
    let alert = t.vault.alerts(&Principal::Cli, true).await.unwrap()[0]
        .alert
        .id
        .to_string();
    let opened = b
        .post(
            "/console/breach/incidents",
            &[
                ("csrf", &page.csrf()),
                ("alert", &alert),
                ("title", "Canary read by support"),
            ],
        )
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.text);
    let at = opened.location().unwrap().to_owned();
    let page = b.get(&at).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    for want in [
        "GDPR Art. 33(1)",
        "72 h 0 min left",
        "API key support",
        "data subjects concerned: 1",
        "(a) Nature of the breach",
    ] {
        assert!(page.text.contains(want), "{want}: {}", page.text);
    }
    let csrf = page.csrf();
    let r = b.post(&format!("{at}/contain"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let r = t
        .call(
            "GET",
            "/v1/collections/customers/records?purpose=support&email=ada@example.com",
            Some(&t.support),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "contained: the key is revoked"
    );
    let r = b
        .post(
            &format!("{at}/decide"),
            &[
                ("csrf", &csrf),
                ("notify_authority", "yes"),
                ("notify_subjects", "yes"),
                ("reasons", "a customer's record was read by a leaked key"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let before = t.vault.outbox_counts().await.unwrap().queued;
    let r = b.post(&format!("{at}/notify"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(
        t.vault.outbox_counts().await.unwrap().queued,
        before + 1,
        "one notice, to Ada"
    );
    let page = b.get(&at).await;
    assert!(
        page.text.contains("contained") && page.text.contains("notices queued to 1 subjects"),
        "{}",
        page.text
    );
    assert!(page.text.contains("Notify the authority: yes"));
}

#[tokio::test]
async fn breach_pages_refuse_visitors_roles_without_the_permission_and_forms_without_tokens() {
    let (t, clock) = app().await;
    let support = operator(&t, "help@example.com", "support").await;
    let auditor = operator(&t, "audit@example.com", "auditor").await;
    let officer = operator(&t, "dpo@example.com", "privacy_officer").await;
    clock.set(T0 + 30_000);
    let incident = t
        .vault
        .open_incident(
            &Principal::Cli,
            custos_vault::OpenIncident {
                title: "Laptop lost".into(),
                api_key: Some("billing".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .incident
        .id;
    let at = format!("/console/breach/incidents/{incident}");
    let mut nobody = Visitor::new(&t);
    for uri in ["/console/breach".to_owned(), at.clone()] {
        assert_eq!(
            nobody.get(&uri).await.location(),
            Some("/console/signin"),
            "{uri}"
        );
    }
    for uri in [
        format!("{at}/contain"),
        "/console/breach/incidents".to_owned(),
    ] {
        let a = nobody.post(&uri, &[("csrf", "x"), ("title", "x")]).await;
        assert_eq!(a.location(), Some("/console/signin"), "{uri}");
    }
    let mut s = Visitor::new(&t);
    s.sign_in_as(&support, T0 + 30_000).await;
    let r = s.get("/console/breach").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("handle_incidents"));
    assert_eq!(s.get(&at).await.status, StatusCode::FORBIDDEN);
    let home = s.get("/console").await;
    let r = s
        .post(&format!("{at}/contain"), &[("csrf", &home.csrf())])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut a = Visitor::new(&t);
    a.sign_in_as(&auditor, T0 + 30_000).await;
    let r = a.get("/console/breach").await;
    assert_eq!(r.status, StatusCode::OK, "an auditor sees the alerts");
    assert!(
        !r.text.contains("Open an incident"),
        "but may not act: {}",
        r.text
    );
    let r = a
        .post(&format!("{at}/contain"), &[("csrf", &r.csrf())])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut o = Visitor::new(&t);
    o.sign_in_as(&officer, T0 + 30_000).await;
    let r = o
        .post(&format!("{at}/contain"), &[("csrf", "not-the-token")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = o
        .post("/console/breach/incidents", &[("title", "no token")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let i = t
        .vault
        .incident(&Principal::Cli, incident)
        .await
        .unwrap()
        .incident;
    assert_eq!(i.status.as_str(), "open", "nothing changed");
    assert!(i.steps.is_empty());
    assert_eq!(t.vault.incidents(&Principal::Cli).await.unwrap().len(), 1);
    let r = t
        .call(
            "GET",
            "/v1/collections/customers/records?purpose=billing&email=x@example.com",
            Some(&t.billing),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "the billing key still works");
}

#[tokio::test]
async fn the_record_of_processing_is_in_the_console_for_read_reports_only() {
    let (t, clock) = app().await;
    let officer = operator(&t, "dpo@example.com", "privacy_officer").await;
    let support = operator(&t, "help@example.com", "support").await;
    clock.set(T0 + 30_000);
    let mut nobody = Visitor::new(&t);
    assert_eq!(
        nobody.get("/console/ropa").await.location(),
        Some("/console/signin")
    );
    let mut o = Visitor::new(&t);
    o.sign_in_as(&officer, T0 + 30_000).await;
    let page = o.get("/console/ropa").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    for want in [
        "Record of processing activities",
        "billing",
        "Example Payments",
    ] {
        assert!(page.text.contains(want), "{want}: {}", page.text);
    }
    assert!(
        !page.text.contains("<style"),
        "the console's CSP allows no inline style"
    );
    let mut s = Visitor::new(&t);
    s.sign_in_as(&support, T0 + 30_000).await;
    let r = s.get("/console/ropa").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text.contains("read_reports"), "{}", r.text);
}
