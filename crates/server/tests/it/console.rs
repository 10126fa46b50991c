//! The console through `oneshot`, as a browser without JavaScript meets it: setup with the
//! one-time link, sign-in with password and TOTP, the desk handling an erasure request, and
//! every refusal the console owes (no session, no second factor, a replayed code, the wrong
//! role for each page and action, forms without their CSRF token, a disabled operator's live
//! session).

use std::sync::Arc;

use axum::http::{StatusCode, header};
use custos_core::operator::password::Password;
use custos_core::operator::totp::TotpSecret;
use custos_core::rights::{Channel, RequestKind, RequestStatus};
use custos_vault::{NewRequest, Principal, SetupStage};
use serde_json::json;

use crate::visitor::{Answer, Visitor};
use crate::{ManualClock, TestApp, spawn_with_clock};

pub(crate) const T0: i64 = 1_796_000_000_000;
pub(crate) const PASSWORD: &str = "a long passphrase nobody uses";

/// An operator set up through the vault, with the authenticator's secret.
pub(crate) struct Operator {
    email: String,
    secret: TotpSecret,
}

pub(crate) async fn operator(t: &TestApp, email: &str, role: &str) -> Operator {
    let v = &t.vault;
    let new = v.add_operator(&Principal::Cli, email, role).await.unwrap();
    let token = new.setup_token.expose_secret().clone();
    let pw = || Password::new(PASSWORD.to_owned());
    let view = v.choose_password(&token, pw(), pw()).await.unwrap();
    let SetupStage::Authenticator { secret, .. } = view.stage else {
        panic!("the authenticator comes next");
    };
    let secret = TotpSecret::from_base32(secret.expose_secret()).unwrap();
    // Set up while the clock stands at T0.
    let code = secret.code_at(T0).unwrap();
    v.enrol_totp(&token, &code).await.unwrap();
    Operator {
        email: email.to_owned(),
        secret,
    }
}

impl Visitor<'_> {
    /// Posts the login form with `code`.
    async fn log_in(&mut self, email: &str, password: &str, code: &str) -> Answer {
        let form = self.get("/console/signin").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.text);
        self.post(
            "/console/signin",
            &[
                ("csrf", &form.csrf()),
                ("email", email),
                ("password", password),
                ("code", code),
            ],
        )
        .await
    }

    /// Signs `op` in with the code of the step `at` falls in.
    pub(crate) async fn sign_in_as(&mut self, op: &Operator, at: i64) {
        let code = op.secret.code_at(at).unwrap();
        let a = self.log_in(&op.email, PASSWORD, &code).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
        assert_eq!(a.location(), Some("/console"));
    }
}

pub(crate) async fn app() -> (TestApp, Arc<ManualClock>) {
    let clock = ManualClock::at(T0);
    let t = spawn_with_clock(clock.clone()).await;
    (t, clock)
}

/// An erasure request for a customer of the vault, filed by the application.
async fn erasure_request(t: &TestApp) -> String {
    let (_, subject) = t
        .create(json!({"name": "Ada Byron", "email": "ada@example.com"}))
        .await;
    let r = t
        .vault
        .file_request(
            &Principal::Cli,
            NewRequest {
                subject: subject.parse().unwrap(),
                kind: RequestKind::Erasure,
                channel: Channel::Api,
                received_at: None,
                place: Default::default(),
                purposes: Vec::new(),
            },
        )
        .await
        .unwrap();
    r.id.to_string()
}

#[tokio::test]
async fn an_officer_signs_in_and_handles_an_erasure_request_from_the_queue() {
    let (t, clock) = app().await;
    let id = erasure_request(&t).await;
    let officer = operator(&t, "officer@example.com", "privacy_officer").await;
    clock.set(T0 + 30_000);
    let mut b = Visitor::new(&t);
    b.sign_in_as(&officer, T0 + 30_000).await;
    let home = b.get("/console").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.text);
    assert!(home.text.contains(&id), "the request is in the queue");
    assert!(home.text.contains("<svg"), "the weekly chart");
    let page = b.get(&format!("/console/requests/{id}")).await;
    assert!(page.text.contains("Erasure") || page.text.contains("erasure"));
    assert!(
        !page.text.contains("/approve"),
        "an erasure is verified first"
    );
    let a = b
        .post(
            &format!("/console/requests/{id}/verify"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    let page = b.get(a.location().unwrap()).await;
    assert!(page.text.contains("/approve"), "{}", page.text);
    let a = b
        .post(
            &format!("/console/requests/{id}/approve"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    let done = b.get(a.location().unwrap()).await;
    assert!(done.text.contains("completed"), "{}", done.text);
    assert!(done.text.contains("erased 1 records"), "{}", done.text);
    let r = t
        .vault
        .request(&Principal::Cli, id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(r.status, RequestStatus::Completed);
    assert!(r.history.iter().any(|s| s.by.starts_with("operator:")));
    // Consent across subjects: one grant, then a withdrawal by GPC for another subject.
    let (_, grace) = t
        .create(json!({"name": "Grace Hopper", "email": "grace@example.com"}))
        .await;
    for (subject, body) in [
        (&grace, json!({"choice": "grant", "purpose": "marketing"})),
        (&grace, json!({"choice": "grant", "purpose": "analytics"})),
        (
            &grace,
            json!({"choice": "withdraw", "purpose": "analytics", "source": "gpc"}),
        ),
    ] {
        let r = t
            .call(
                "POST",
                &format!("/v1/subjects/{subject}/consents"),
                Some(&t.admin),
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let consent = b.get("/console/consent").await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text);
    let row = |purpose: &str| {
        let at = consent.text.find(&format!(">{purpose}<")).unwrap();
        consent.text[at..at + 300].to_owned()
    };
    assert!(row("marketing").contains(">1<"), "{}", row("marketing"));
    assert!(row("analytics").contains(">0<"), "{}", row("analytics"));
    assert!(
        consent.text.contains("1 opt-outs of sale or sharing"),
        "{}",
        consent.text
    );
    // Signed out, the session is refused.
    let home = b.get("/console").await;
    let out = b.post("/console/signout", &[("csrf", &home.csrf())]).await;
    assert_eq!(out.location(), Some("/console/signin"));
    assert_eq!(b.get("/console").await.location(), Some("/console/signin"));
}

#[tokio::test]
async fn every_console_page_and_action_refuses_a_visitor_without_a_session() {
    let (t, _) = app().await;
    let id = erasure_request(&t).await;
    let mut b = Visitor::new(&t);
    for uri in [
        "/console".to_owned(),
        format!("/console/requests/{id}"),
        "/console/audit".to_owned(),
        "/console/retention".to_owned(),
        "/console/consent".to_owned(),
    ] {
        let a = b.get(&uri).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(a.location(), Some("/console/signin"), "{uri}");
    }
    for uri in [
        format!("/console/requests/{id}/approve"),
        format!("/console/requests/{id}/reject"),
        "/console/audit/verify".to_owned(),
        "/console/signout".to_owned(),
    ] {
        let a = b.post(&uri, &[("csrf", "x"), ("reason", "x")]).await;
        assert_eq!(a.location(), Some("/console/signin"), "{uri}");
    }
    let r = t
        .vault
        .request(&Principal::Cli, id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(r.status, RequestStatus::Received, "nothing moved");
    // A setup page without a live link.
    let a = b.get("/console/setup?token=00").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn each_role_is_refused_the_pages_and_actions_it_may_not_use() {
    let (t, clock) = app().await;
    let id = erasure_request(&t).await;
    let support = operator(&t, "help@example.com", "support").await;
    let auditor = operator(&t, "audit@example.com", "auditor").await;
    clock.set(T0 + 30_000);
    let mut s = Visitor::new(&t);
    s.sign_in_as(&support, T0 + 30_000).await;
    let mut a = Visitor::new(&t);
    a.sign_in_as(&auditor, T0 + 30_000).await;

    // support: the queue and a request, but no buttons, no audit, no retention, no chart.
    let home = s.get("/console").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text.contains("needs read_reports"), "{}", home.text);
    let page = s.get(&format!("/console/requests/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.text.contains("/approve"),
        "no desk buttons for support"
    );
    for uri in ["/console/audit", "/console/retention", "/console/consent"] {
        let r = s.get(uri).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}: {}", r.text);
        assert!(r.text.contains("Not for your role"));
    }
    let csrf = home.csrf();
    for action in ["verify", "approve", "complete", "acknowledge"] {
        let r = s
            .post(
                &format!("/console/requests/{id}/{action}"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{action}: {}", r.text);
        assert!(r.text.contains("it needs handle_requests"), "{}", r.text);
    }
    for action in ["extend", "reject"] {
        let r = s
            .post(
                &format!("/console/requests/{id}/{action}"),
                &[("csrf", &csrf), ("reason", "because")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{action}");
    }
    let r = s.post("/console/audit/verify", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // auditor: the trail and its verification, the chart; no desk, no retention.
    let r = a.get("/console/audit").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains("operator.login"),
        "the logins are in the trail"
    );
    let r = a
        .post("/console/audit/verify", &[("csrf", &r.csrf())])
        .await;
    assert!(r.text.contains("Verified:"), "{}", r.text);
    assert_eq!(
        a.get("/console/retention").await.status,
        StatusCode::FORBIDDEN
    );
    let home = a.get("/console").await;
    assert!(home.text.contains("<svg"));
    let r = a
        .post(
            &format!("/console/requests/{id}/approve"),
            &[("csrf", &home.csrf())],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .vault
        .request(&Principal::Cli, id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(r.status, RequestStatus::Received, "no role moved it");
}

#[tokio::test]
async fn no_second_factor_a_replayed_code_and_a_wrong_password_are_refused_alike() {
    let (t, clock) = app().await;
    let op = operator(&t, "officer@example.com", "privacy_officer").await;
    let mut b = Visitor::new(&t);
    // The enrolment's own code is spent.
    let code = op.secret.code_at(T0).unwrap();
    let refused = |a: &Answer| {
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
        assert!(a.text.contains("The address, password or code is wrong"));
    };
    refused(&b.log_in(&op.email, PASSWORD, &code).await);
    refused(&b.log_in(&op.email, PASSWORD, "").await);
    clock.set(T0 + 30_000);
    let code = op.secret.code_at(T0 + 30_000).unwrap();
    refused(&b.log_in(&op.email, "not the password at all", &code).await);
    let a = b.log_in(&op.email, PASSWORD, &code).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    // The same code once more, by anyone: a replay.
    let mut other = Visitor::new(&t);
    refused(&other.log_in(&op.email, PASSWORD, &code).await);
    assert_eq!(
        other.get("/console").await.location(),
        Some("/console/signin")
    );
}

#[tokio::test]
async fn forms_without_their_csrf_token_change_nothing() {
    let (t, clock) = app().await;
    let id = erasure_request(&t).await;
    let op = operator(&t, "officer@example.com", "privacy_officer").await;
    clock.set(T0 + 30_000);
    let mut b = Visitor::new(&t);
    // The login form, posted without its token or with another's.
    let code = op.secret.code_at(T0 + 30_000).unwrap();
    b.get("/console/signin").await;
    let a = b
        .post(
            "/console/signin",
            &[
                ("csrf", "0000"),
                ("email", &op.email),
                ("password", PASSWORD),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    b.sign_in_as(&op, T0 + 30_000).await;
    for (uri, form) in [
        (format!("/console/requests/{id}/approve"), vec![]),
        (
            format!("/console/requests/{id}/approve"),
            vec![("csrf", "abcd")],
        ),
        ("/console/audit/verify".to_owned(), vec![]),
        ("/console/signout".to_owned(), vec![]),
    ] {
        let a = b.post(&uri, &form).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{uri}");
    }
    let r = t
        .vault
        .request(&Principal::Cli, id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(r.status, RequestStatus::Received);
    assert_eq!(
        b.get("/console").await.status,
        StatusCode::OK,
        "still signed in"
    );
    // A setup form with another link's token.
    let new = t
        .vault
        .add_operator(&Principal::Cli, "new@example.com", "support")
        .await
        .unwrap();
    let token = new.setup_token.expose_secret().clone();
    let a = b
        .post(
            "/console/setup/password",
            &[
                ("csrf", &t.vault.csrf_token("another")),
                ("token", &token),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let view = t.vault.operator_setup(&token).await.unwrap();
    assert!(
        matches!(view.stage, SetupStage::Password),
        "no password was set"
    );
}

#[tokio::test]
async fn a_disabled_operators_live_session_is_refused_at_once() {
    let (t, clock) = app().await;
    let op = operator(&t, "officer@example.com", "privacy_officer").await;
    clock.set(T0 + 30_000);
    let mut b = Visitor::new(&t);
    b.sign_in_as(&op, T0 + 30_000).await;
    assert_eq!(b.get("/console").await.status, StatusCode::OK);
    t.vault
        .disable_operator(&Principal::Cli, &op.email)
        .await
        .unwrap();
    assert_eq!(b.get("/console").await.location(), Some("/console/signin"));
    assert_eq!(
        b.get("/console/audit").await.location(),
        Some("/console/signin")
    );
}

#[tokio::test]
async fn console_answers_carry_the_security_headers_and_strict_cookies() {
    let (t, clock) = app().await;
    let op = operator(&t, "officer@example.com", "privacy_officer").await;
    clock.set(T0 + 30_000);
    let mut b = Visitor::new(&t);
    let form = b.get("/console/signin").await;
    let code = op.secret.code_at(T0 + 30_000).unwrap();
    let a = b
        .post(
            "/console/signin",
            &[
                ("csrf", &form.csrf()),
                ("email", &op.email),
                ("password", PASSWORD),
                ("code", &code),
            ],
        )
        .await;
    let cookies: Vec<&str> = a
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("custos_console="))
        .expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(session.contains(attr), "{session}");
    }
    for uri in [
        "/console",
        "/console/signin",
        "/console/audit",
        "/console/nowhere",
    ] {
        let a = b.get(uri).await;
        let csp = a.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{uri}: {csp}");
        assert!(!csp.contains("script-src"), "no script at all");
        assert_eq!(a.headers[header::CACHE_CONTROL], "no-store", "{uri}");
        assert_eq!(a.headers[header::REFERRER_POLICY], "no-referrer", "{uri}");
    }
    // No password, code or address in any page or error body the visitor was shown.
    assert!(!a.text.contains(PASSWORD));
}

#[tokio::test]
async fn over_https_the_consoles_cookies_are_host_prefixed_and_secure() {
    let (mut t, clock) = app().await;
    t.app = custos_server::app(custos_server::AppState {
        vault: Arc::clone(&t.vault),
        metrics: Arc::new(custos_server::Metrics::default()),
        scheme: custos_server::Scheme::Https,
    });
    let op = operator(&t, "officer@example.com", "privacy_officer").await;
    clock.set(T0 + 30_000);
    let mut b = Visitor::new(&t);
    let form = b.get("/console/signin").await;
    assert_eq!(
        form.headers[header::STRICT_TRANSPORT_SECURITY],
        custos_server::HSTS
    );
    let code = op.secret.code_at(T0 + 30_000).unwrap();
    let a = b
        .post(
            "/console/signin",
            &[
                ("csrf", &form.csrf()),
                ("email", &op.email),
                ("password", PASSWORD),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    let session = a
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|h| h.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-custos_console="))
        .expect("a __Host- session cookie");
    for attr in ["; Path=/;", "; Secure", "; HttpOnly", "; SameSite=Strict"] {
        assert!(session.contains(attr), "{attr} missing from {session}");
    }
    assert_eq!(b.get("/console").await.status, StatusCode::OK);
    // The token under the plain name is no session over HTTPS.
    let token = b.cookies["__Host-custos_console"].clone();
    let mut planted = Visitor::new(&t);
    planted.cookies.insert("custos_console".into(), token);
    assert_eq!(
        planted.get("/console").await.location(),
        Some("/console/signin")
    );
}
