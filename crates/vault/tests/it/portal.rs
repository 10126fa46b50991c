//! Portal sessions on several servers: two vaults on one PostgreSQL database, as two
//! `custos serve` behind a load balancer. A code signs in once whichever server sees it; a
//! session begun on one is accepted by the other, and ended on one is refused by both.

use std::net::{IpAddr, Ipv4Addr};

use custos_core::personal::{PersonalValue, fields_of};
use custos_vault::testing::SmtpSink;
use custos_vault::{Principal, VaultError};
use serde_json::json;

use crate::support::{smtp, two_on_postgres};

#[tokio::test(flavor = "multi_thread")]
async fn a_session_is_one_on_every_server_and_a_code_signs_in_once() {
    let Some((_schema, a, b)) = two_on_postgres().await else {
        return;
    };
    let email = "grace@example.com";
    let fields = fields_of(
        json!({"name": "Grace Hopper", "email": email})
            .as_object()
            .unwrap()
            .clone(),
    );
    a.vault
        .put_record(&Principal::Cli, "customers", None, &fields)
        .await
        .unwrap();

    let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let flow = a
        .vault
        .request_signin_code(&PersonalValue::text(email), client)
        .await
        .unwrap();
    let sink = SmtpSink::start();
    b.vault.deliver_mail(&smtp(sink.port()), "b").await.unwrap();
    let got = sink.wait_for(1, std::time::Duration::from_secs(10)).await;
    let code = got[0]
        .body
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|c| c.is_ascii_digit()))
        .unwrap()
        .to_owned();

    // The same code on both servers at once: one session, one refusal.
    let token = flow.token.expose_secret().clone();
    let (ra, rb) = tokio::join!(
        a.vault.verify_signin_code(&token, &code),
        b.vault.verify_signin_code(&token, &code)
    );
    let (session, refused) = match (ra, rb) {
        (Ok(s), Err(e)) | (Err(e), Ok(s)) => (s, e),
        (ra, rb) => panic!("one sign-in should win: {ra:?} {rb:?}"),
    };
    assert!(
        matches!(refused, VaultError::SigninRefused(_)),
        "{refused:?}"
    );

    let cookie = session.token.expose_secret().clone();
    for v in [&a.vault, &b.vault] {
        let s = v.portal_session(&cookie).await.unwrap();
        assert_eq!(s.subject, session.subject);
    }
    b.vault.sign_out(&cookie).await.unwrap();
    for v in [&a.vault, &b.vault] {
        assert!(matches!(
            v.portal_session(&cookie).await,
            Err(VaultError::Unauthenticated)
        ));
    }
}
