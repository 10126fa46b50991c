//! The privacy portal through `oneshot`, as a browser without JavaScript meets it: sign-in
//! with a code mailed as a file, sessions, and every refusal the portal owes (another
//! customer's session, replayed, expired and wrong codes, the lockout, forms without their
//! CSRF token, an unknown address answered like a known one).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use custos_core::rights::{Channel, RequestKind, RequestStatus};
use custos_vault::{Principal, RequestFilter, Transport};
use serde_json::json;
use tower::ServiceExt;

use crate::visitor::{Answer, Visitor};
use crate::{ManualClock, TestApp, spawn_with_clock};

const T0: i64 = 1_796_000_000_000;

impl Visitor<'_> {
    /// Asks for a code for `email`: the code page it leads to.
    async fn ask_code(&mut self, email: &str) -> Answer {
        let form = self.get("/portal/signin").await;
        let a = self
            .post(
                "/portal/signin",
                &[("csrf", &form.csrf()), ("email", email)],
            )
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
        assert_eq!(a.location(), Some("/portal/signin/code"));
        self.get("/portal/signin/code").await
    }

    async fn enter_code(&mut self, page: &Answer, code: &str) -> Answer {
        self.post(
            "/portal/signin/code",
            &[("csrf", &page.csrf()), ("code", code)],
        )
        .await
    }

    /// Signs in as `email` with the code mailed to it.
    async fn sign_in(&mut self, email: &str) -> Answer {
        let page = self.ask_code(email).await;
        let code = mailed_code(self.t, email).await.expect("a code was mailed");
        let a = self.enter_code(&page, &code).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
        assert_eq!(a.location(), Some("/portal"));
        self.get("/portal").await
    }
}

/// Delivers the outbox to the data directory's `mail/` and returns the newest code mailed
/// to `email`, if any.
async fn mailed_code(t: &TestApp, email: &str) -> Option<String> {
    let dir = t.dir.path().join("mail");
    deliver(t).await;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .ok()?
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.into_iter().rev().find_map(|f| {
        let text = std::fs::read_to_string(f).unwrap();
        if !text.contains(&format!("To: {email}")) {
            return None;
        }
        text.lines()
            .map(str::trim)
            .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
    })
}

/// One delivery round to the files `[mail]` names by default (`mail/` in the data
/// directory).
async fn deliver(t: &TestApp) {
    let transport = Transport::from_config(&t.vault.inventory().mail, t.dir.path()).unwrap();
    while t
        .vault
        .deliver_mail(&transport, "test")
        .await
        .unwrap()
        .claimed
        > 0
    {}
}

fn mail_count(t: &TestApp) -> usize {
    std::fs::read_dir(t.dir.path().join("mail")).map_or(0, |d| d.count())
}

async fn app_with_customers() -> (TestApp, Arc<ManualClock>, [(String, String); 2]) {
    let clock = ManualClock::at(T0);
    let t = spawn_with_clock(clock.clone()).await;
    let mut out = Vec::new();
    for (name, email, phone) in [
        ("Ada Lovelace", "ada@example.com", "+44 20 7946 0001"),
        ("Alan Turing", "alan@example.com", "+44 20 7946 0002"),
    ] {
        out.push(
            t.create(json!({"name": name, "email": email, "phone": phone, "country": "GB"}))
                .await,
        );
    }
    let [a, b] = <[(String, String); 2]>::try_from(out).unwrap();
    (t, clock, [a, b])
}

#[tokio::test]
async fn a_customer_signs_in_with_the_mailed_code_and_sees_their_data() {
    let (t, _clock, [(record, _), _]) = app_with_customers().await;
    let mut v = Visitor::new(&t);
    let first = v.get("/portal").await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(first.location(), Some("/portal/signin"));
    let home = v.sign_in("ada@example.com").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.text);
    for shown in [
        "Ada Lovelace",
        "ada@example.com",
        "+442079460001",
        "Example Shop Ltd",
    ] {
        assert!(home.text.contains(shown), "{shown} in {}", home.text);
    }
    assert!(!home.text.contains("Alan"), "another customer's data shown");
    assert!(home.text.contains(&format!("record={record}")));
    // The sign-in cookie is gone; the session cookie is HttpOnly and SameSite=Strict.
    assert!(v.cookies.contains_key("custos_session"));
    assert!(!v.cookies.contains_key("custos_signin"));
    // The page is a look at the data, audited as one, not as an export handed out.
    let subject = subject_of(&t, "ada@example.com").await;
    let trail = t.vault.audit_trail(&Principal::Cli, subject).await.unwrap();
    let actions: Vec<_> = trail.iter().map(|e| e.entry.action).collect();
    assert!(actions.contains(&custos_core::audit::Action::SubjectView));
    assert!(!actions.contains(&custos_core::audit::Action::SubjectExport));
}

#[tokio::test]
async fn cookies_are_http_only_strict_and_scoped_to_the_portal() {
    let (t, _clock, _) = app_with_customers().await;
    let mut v = Visitor::new(&t);
    let form = v.get("/portal/signin").await;
    let signin = form.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let a = v
        .post(
            "/portal/signin",
            &[("csrf", &form.csrf()), ("email", "ada@example.com")],
        )
        .await;
    let page = v.get("/portal/signin/code").await;
    let code = mailed_code(&t, "ada@example.com").await.unwrap();
    let done = v.enter_code(&page, &code).await;
    let session = done
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|h| h.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("custos_session="))
        .unwrap();
    for c in [&signin, &session] {
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/portal"] {
            assert!(c.contains(attr), "{attr} missing from {c}");
        }
        // Over plain HTTP a browser refuses a Secure cookie; nor is there HSTS.
        assert!(!c.contains("Secure"), "{c}");
    }
    assert!(!form.headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    assert!(
        a.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=600")
    );
    // A session cookie ends with the browser, and with the session in the database.
    assert!(!session.contains("Max-Age") && !session.contains("Expires"));
}

/// Over HTTPS (issue 11) the cookies are `__Host-`, `Secure` and `Path=/`, only those names
/// are read, and every answer carries HSTS.
#[tokio::test]
async fn over_https_cookies_are_host_prefixed_and_secure_and_answers_carry_hsts() {
    let (mut t, _clock, _) = app_with_customers().await;
    t.app = custos_server::app(custos_server::AppState {
        vault: Arc::clone(&t.vault),
        metrics: Arc::new(custos_server::Metrics::default()),
        scheme: custos_server::Scheme::Https,
    });
    let mut v = Visitor::new(&t);
    let form = v.get("/portal/signin").await;
    let hsts = |a: &Answer| a.headers[header::STRICT_TRANSPORT_SECURITY].clone();
    assert_eq!(hsts(&form), custos_server::HSTS);
    let signin = form.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    v.post(
        "/portal/signin",
        &[("csrf", &form.csrf()), ("email", "ada@example.com")],
    )
    .await;
    let page = v.get("/portal/signin/code").await;
    let code = mailed_code(&t, "ada@example.com").await.unwrap();
    let done = v.enter_code(&page, &code).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert_eq!(hsts(&done), custos_server::HSTS);
    let session = done
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|h| h.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-custos_session="))
        .unwrap();
    assert!(signin.starts_with("__Host-custos_signin="), "{signin}");
    for c in [&signin, &session] {
        for attr in ["; Path=/;", "; Secure", "; HttpOnly", "; SameSite=Strict"] {
            assert!(c.contains(attr), "{attr} missing from {c}");
        }
        assert!(!c.contains("Domain"), "{c}");
    }
    let home = v.get("/portal").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.text);
    // The same token under the unprefixed name, as anyone on plain HTTP or a sibling domain
    // could set it, is no session.
    let token = v.cookies["__Host-custos_session"].clone();
    let mut planted = Visitor::new(&t);
    planted.cookies.insert("custos_session".into(), token);
    let a = planted.get("/portal").await;
    assert_eq!(a.location(), Some("/portal/signin"));
    assert_eq!(hsts(&a), custos_server::HSTS);
    // An API answer, a refusal, carries it too.
    let r = t
        .app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/v1/inventory")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()[header::STRICT_TRANSPORT_SECURITY],
        custos_server::HSTS
    );
}

#[tokio::test]
async fn the_code_goes_to_the_address_on_file_not_the_address_as_typed() {
    let (t, _clock, _) = app_with_customers().await;
    t.create(json!({"name": "Kate", "email": "Kate@corp.example"}))
        .await;
    let mut v = Visitor::new(&t);
    v.ask_code("KATE@CORP.EXAMPLE").await;
    assert!(mailed_code(&t, "KATE@corp.example").await.is_none());
    assert!(mailed_code(&t, "Kate@corp.example").await.is_some());
}

#[tokio::test]
async fn wrong_codes_sent_at_once_are_compared_five_times_at_most() {
    let (t, _clock, _) = app_with_customers().await;
    let mut v = Visitor::new(&t);
    v.ask_code("ada@example.com").await;
    let code = mailed_code(&t, "ada@example.com").await.unwrap();
    let flow = v.cookies["custos_signin"].clone();
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..30 {
        let (vault, flow) = (Arc::clone(&t.vault), flow.clone());
        let guess = format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
        guesses.spawn(async move { vault.verify_signin_code(&flow, &guess).await });
    }
    let mut wrong = 0;
    let mut locked = 0;
    while let Some(r) = guesses.join_next().await {
        match r.unwrap() {
            Err(custos_vault::VaultError::SigninRefused(why)) => match why.as_str() {
                "wrong_code" => wrong += 1,
                "locked" => locked += 1,
                other => panic!("{other}"),
            },
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((wrong, locked), (5, 25));
    // And the right code, now: locked.
    let r = t.vault.verify_signin_code(&flow, &code).await;
    assert!(
        matches!(r, Err(custos_vault::VaultError::SigninRefused(_))),
        "{r:?}"
    );
}

#[tokio::test]
async fn the_address_one_signs_in_with_is_not_changed_in_the_portal() {
    let (t, _clock, [(record, _), _]) = app_with_customers().await;
    let mut v = Visitor::new(&t);
    let home = v.sign_in("ada@example.com").await;
    assert!(
        !home.text.contains("field=email"),
        "a Correct link for the email"
    );
    let a = v
        .post(
            "/portal/correct",
            &[
                ("csrf", &home.csrf()),
                ("collection", "customers"),
                ("record", &record),
                ("field", "email"),
                ("value", "mallory@example.com"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // Nor through the vault's use case, whatever a page would send.
    let p = Principal::Customer {
        subject: subject_of(&t, "ada@example.com").await,
    };
    let e = t
        .vault
        .rectify(
            &p,
            custos_vault::Correction {
                collection: "customers".into(),
                record: record.parse().unwrap(),
                field: "email".into(),
                value: custos_core::personal::PersonalValue::text("mallory@example.com"),
            },
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("the address you sign in with"),
        "{e}"
    );
    assert!(
        Visitor::new(&t)
            .sign_in("ada@example.com")
            .await
            .text
            .contains("Ada")
    );
}

#[tokio::test]
async fn every_portal_page_sends_a_strict_csp_no_referrer_and_no_store() {
    let (t, _clock, [(record, _), _]) = app_with_customers().await;
    let mut v = Visitor::new(&t);
    v.sign_in("ada@example.com").await;
    let correct = format!("/portal/correct?collection=customers&record={record}&field=phone");
    for path in [
        "/portal/signin",
        "/portal/signin/code",
        "/portal",
        "/portal/choices",
        "/portal/requests",
        "/portal/erasure",
        correct.as_str(),
        "/portal/nothing-here",
    ] {
        let a = v.get(path).await;
        let h = |n: header::HeaderName| {
            a.headers
                .get(n)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let csp = h(header::CONTENT_SECURITY_POLICY);
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(
            !csp.contains("script-src"),
            "{path}: no script is allowed: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h(header::REFERRER_POLICY), "no-referrer", "{path}");
        assert_eq!(h(header::CACHE_CONTROL), "no-store", "{path}");
        assert_eq!(h(header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{path}");
        if a.status == StatusCode::OK {
            assert!(!a.text.contains("<script"), "{path}");
            assert!(!a.text.contains("style="), "{path}: an inline style");
            let posts = a.text.matches("method=\"post\"").count();
            let tokens = a.text.matches("name=\"csrf\"").count();
            assert_eq!(posts, tokens, "{path}: a form without its CSRF token");
        }
    }
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_pages_and_no_mail() {
    let (t, _clock, _) = app_with_customers().await;
    let mut known = Visitor::new(&t);
    let mut unknown = Visitor::new(&t);
    let k = known.ask_code("ada@example.com").await;
    let before = mail_count(&t);
    let u = unknown.ask_code("nobody@example.com").await;
    assert_eq!(k.status, u.status);
    assert_eq!(
        k.text.replace(&k.csrf(), "TOKEN"),
        u.text.replace(&u.csrf(), "TOKEN"),
        "the code page says whether the address is known"
    );
    assert!(mailed_code(&t, "nobody@example.com").await.is_none());
    assert_eq!(
        mail_count(&t),
        before + 1,
        "only the known address got mail"
    );
    // A code typed for an unknown address fails as a wrong one does.
    let a = unknown.enter_code(&u, "123456").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let wrong = known.enter_code(&k, "000000").await;
    assert_eq!(
        a.text.replace(&u.csrf(), "TOKEN"),
        wrong.text.replace(&k.csrf(), "TOKEN")
    );
}

#[tokio::test]
async fn a_code_signs_in_once_a_replay_and_an_expired_code_fail() {
    let (t, clock, _) = app_with_customers().await;
    let mut v = Visitor::new(&t);
    let page = v.ask_code("ada@example.com").await;
    let code = mailed_code(&t, "ada@example.com").await.unwrap();
    let flow = v.cookies["custos_signin"].clone();
    let ok = v.enter_code(&page, &code).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    // The same code again, from the same sign-in: refused.
    let mut replay = Visitor::new(&t);
    replay.cookies.insert("custos_signin".into(), flow);
    let again = replay.enter_code(&page, &code).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.text);
    assert!(!replay.cookies.contains_key("custos_session"));

    // A code typed eleven minutes after it was sent: refused.
    let mut late = Visitor::new(&t);
    let page = late.ask_code("alan@example.com").await;
    let code = mailed_code(&t, "alan@example.com").await.unwrap();
    clock.set(T0 + 11 * 60_000);
    let a = late.enter_code(&page, &code).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.text.contains("That code did not work"), "{}", a.text);
    assert!(!late.cookies.contains_key("custos_session"));
}

#[tokio::test]
async fn five_wrong_codes_lock_the_address_for_fifteen_minutes() {
    let (t, clock, _) = app_with_customers().await;
    let mut v = Visitor::new(&t);
    let page = v.ask_code("ada@example.com").await;
    let code = mailed_code(&t, "ada@example.com").await.unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let a = v.enter_code(&page, wrong).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    // The sixth try fails even with the right code.
    let a = v.enter_code(&page, &code).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // While locked, a new code is not even sent (and the page says the same as ever).
    let before = mail_count(&t);
    let mut other = Visitor::new(&t);
    other.ask_code("ada@example.com").await;
    deliver(&t).await;
    assert_eq!(
        mail_count(&t),
        before,
        "a code was sent to a locked address"
    );
    // Fifteen minutes after the last wrong code, signing in works again.
    clock.set(T0 + 16 * 60_000);
    let home = Visitor::new(&t).sign_in("ada@example.com").await;
    assert_eq!(home.status, StatusCode::OK);
    // Each failure is in the audit log, under the address's keyed digest only.
    t.vault.sequence_audit().await.unwrap();
    let trail = t
        .vault
        .audit_trail(&Principal::Cli, subject_of(&t, "ada@example.com").await)
        .await
        .unwrap();
    let failed = trail
        .iter()
        .filter(|e| e.entry.action == custos_core::audit::Action::SigninFailed)
        .count();
    assert_eq!(failed, 6, "five wrong codes and the locked sixth");
    let text = serde_json::to_string(&trail.iter().map(|e| &e.entry).collect::<Vec<_>>()).unwrap();
    assert!(
        !text.contains("ada@example.com"),
        "an address in the audit log"
    );
    assert!(text.contains("\"signin\""), "the sign-in is audited");
}

async fn subject_of(t: &TestApp, email: &str) -> custos_core::ids::SubjectId {
    let found = t
        .vault
        .search(
            &Principal::Cli,
            "customers",
            Some("support"),
            "email",
            &custos_core::personal::PersonalValue::text(email),
        )
        .await
        .unwrap();
    found[0].subject_id
}

#[tokio::test]
async fn a_throttled_address_gets_no_more_codes() {
    let (t, _clock, _) = app_with_customers().await;
    for _ in 0..7 {
        Visitor::new(&t).ask_code("alan@example.com").await;
    }
    mailed_code(&t, "alan@example.com").await;
    assert_eq!(mail_count(&t), 5, "five codes per address per 15 minutes");
}

#[tokio::test]
async fn a_form_without_its_csrf_token_changes_nothing() {
    let (t, _clock, [(record, _), _]) = app_with_customers().await;
    let mut v = Visitor::new(&t);
    // Before a session: the address and code forms.
    v.get("/portal/signin").await;
    for token in ["", "00"] {
        let a = v
            .post(
                "/portal/signin",
                &[("csrf", token), ("email", "ada@example.com")],
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    }
    assert_eq!(mail_count(&t), 0);
    let page = v.ask_code("ada@example.com").await;
    let code = mailed_code(&t, "ada@example.com").await.unwrap();
    let a = v.post("/portal/signin/code", &[("code", &code)]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let ok = v.enter_code(&page, &code).await;
    assert_eq!(
        ok.status,
        StatusCode::SEE_OTHER,
        "the code still works once"
    );
    // Signed in: every form.
    let home = v.get("/portal").await;
    let good = home.csrf();
    let bad = "0".repeat(good.len());
    let forms: [(&str, Vec<(&str, &str)>); 6] = [
        (
            "/portal/correct",
            vec![
                ("collection", "customers"),
                ("record", &record),
                ("field", "phone"),
                ("value", "+44 20 7946 0999"),
            ],
        ),
        ("/portal/choices", vec![("action", "restrict")]),
        ("/portal/download", vec![]),
        ("/portal/erasure", vec![("confirm", "yes")]),
        ("/portal/signout", vec![]),
        (
            "/portal/choices",
            vec![("action", "grant"), ("purpose", "marketing")],
        ),
    ];
    for (path, fields) in &forms {
        for token in [None, Some(bad.as_str())] {
            let mut f = fields.clone();
            if let Some(tk) = token {
                f.push(("csrf", tk));
            }
            let a = v.post(path, &f).await;
            assert_eq!(
                a.status,
                StatusCode::FORBIDDEN,
                "{path} {token:?}: {}",
                a.text
            );
        }
    }
    // Nothing happened: no request, no choice, same phone, still signed in.
    let subject = subject_of(&t, "ada@example.com").await;
    let requests = t
        .vault
        .requests(&Principal::Cli, RequestFilter::default())
        .await
        .unwrap();
    assert!(requests.is_empty(), "{requests:?}");
    let ledger = t.vault.consents(&Principal::Cli, subject).await.unwrap();
    assert!(ledger.history.is_empty());
    assert!(v.get("/portal").await.text.contains("+442079460001"));
}

#[tokio::test]
async fn another_customers_session_cannot_see_or_change_this_customers_data() {
    let (t, _clock, [(ada_record, ada), _]) = app_with_customers().await;
    // Ada makes a choice, so she has a receipt to steal.
    let mut ada_browser = Visitor::new(&t);
    let home = ada_browser.sign_in("ada@example.com").await;
    let r = ada_browser
        .post(
            "/portal/choices",
            &[
                ("csrf", &home.csrf()),
                ("action", "grant"),
                ("purpose", "marketing"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    t.vault.sequence_audit().await.unwrap();
    let choices = ada_browser.get("/portal/choices").await;
    let at = choices.text.find("/portal/receipts/").unwrap();
    let receipt = choices.text[at..at + 17 + 36].to_owned();
    assert_eq!(ada_browser.get(&receipt).await.status, StatusCode::OK);

    let mut alan = Visitor::new(&t);
    let home = alan.sign_in("alan@example.com").await;
    assert!(!home.text.contains("Ada"));
    let csrf = home.csrf();
    // Ada's record in the correction form's URL and in its fields: not found, unchanged.
    let page = alan
        .get(&format!(
            "/portal/correct?collection=customers&record={ada_record}&field=phone"
        ))
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.text.contains("+442079460001"));
    let a = alan
        .post(
            "/portal/correct",
            &[
                ("csrf", &csrf),
                ("collection", "customers"),
                ("record", &ada_record),
                ("field", "phone"),
                ("value", "+44 20 7946 0666"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    // Ada's receipt: not found for Alan.
    let a = alan.get(&receipt).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert!(!a.text.contains(&ada));
    // A subject id slipped into forms that take none changes nothing of Ada's.
    let a = alan
        .post(
            "/portal/erasure",
            &[("csrf", &csrf), ("confirm", "yes"), ("subject_id", &ada)],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let ada_id: custos_core::ids::SubjectId = ada.parse().unwrap();
    let hers = t
        .vault
        .requests(
            &Principal::Cli,
            RequestFilter {
                subject: Some(ada_id),
                kind: Some(RequestKind::Erasure),
                ..RequestFilter::default()
            },
        )
        .await
        .unwrap();
    assert!(hers.is_empty(), "an erasure filed for Ada by Alan");
    let r = t
        .call(
            "GET",
            &format!("/v1/collections/customers/records/{ada_record}?purpose=billing"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r.body["fields"]["phone"], "+442079460001");
    // Her own session still sees her own data, and only hers.
    let mine = ada_browser.get("/portal").await;
    assert!(mine.text.contains("Ada Lovelace") && !mine.text.contains("Alan"));
}

#[tokio::test]
async fn sessions_end_at_sign_out_when_idle_and_after_two_hours() {
    let (t, clock, _) = app_with_customers().await;
    let mut v = Visitor::new(&t);
    let home = v.sign_in("ada@example.com").await;
    let token = v.cookies["custos_session"].clone();
    let a = v.post("/portal/signout", &[("csrf", &home.csrf())]).await;
    assert_eq!(a.location(), Some("/portal/signin"));
    let mut stolen = Visitor::new(&t);
    stolen.cookies.insert("custos_session".into(), token);
    assert_eq!(
        stolen.get("/portal").await.location(),
        Some("/portal/signin")
    );

    // Idle for 15 minutes: ended.
    let mut idle = Visitor::new(&t);
    idle.sign_in("ada@example.com").await;
    clock.set(T0 + 14 * 60_000);
    assert_eq!(idle.get("/portal").await.status, StatusCode::OK);
    clock.set(T0 + 29 * 60_000 + 1);
    assert_eq!(idle.get("/portal").await.location(), Some("/portal/signin"));

    // Used every ten minutes, a session still ends two hours after it began.
    let start = T0 + 30 * 60_000;
    clock.set(start);
    let mut busy = Visitor::new(&t);
    busy.sign_in("alan@example.com").await;
    let mut now = start;
    while now + 10 * 60_000 < start + 2 * 3_600_000 {
        now += 10 * 60_000;
        clock.set(now);
        assert_eq!(busy.get("/portal").await.status, StatusCode::OK, "at {now}");
    }
    clock.set(start + 2 * 3_600_000);
    assert_eq!(busy.get("/portal").await.location(), Some("/portal/signin"));
}

#[tokio::test]
async fn a_bad_correction_names_the_rule_and_changes_nothing() {
    let (t, _clock, [(record, _), _]) = app_with_customers().await;
    let mut v = Visitor::new(&t);
    let home = v.sign_in("ada@example.com").await;
    let canary = "call-me-CANARY-7431";
    let a = v
        .post(
            "/portal/correct",
            &[
                ("csrf", &home.csrf()),
                ("collection", "customers"),
                ("record", &record),
                ("field", "phone"),
                ("value", canary),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert!(a.text.contains("phone"), "{}", a.text);
    assert!(a.text.contains("not a valid phone number"), "{}", a.text);
    assert!(!a.text.contains(canary), "the bad value is echoed");
    let requests = t
        .vault
        .requests(&Principal::Cli, RequestFilter::default())
        .await
        .unwrap();
    assert!(
        requests.is_empty(),
        "a request was filed for a refused value"
    );
    // A good one is saved, audited as a rectification, and completes its request.
    let a = v
        .post(
            "/portal/correct",
            &[
                ("csrf", &home.csrf()),
                ("collection", "customers"),
                ("record", &record),
                ("field", "phone"),
                ("value", "020 7946 0123"),
            ],
        )
        .await;
    assert_eq!(a.location(), Some("/portal?done=corrected"), "{}", a.text);
    let home = v.get("/portal?done=corrected").await;
    assert!(home.text.contains("+442079460123"));
    assert!(home.text.contains("Your correction is saved"));
    let subject = subject_of(&t, "ada@example.com").await;
    t.vault.sequence_audit().await.unwrap();
    let trail = t.vault.audit_trail(&Principal::Cli, subject).await.unwrap();
    let fixed = trail
        .iter()
        .find(|e| e.entry.action == custos_core::audit::Action::RecordRectify)
        .expect("a record.rectify entry");
    assert_eq!(fixed.entry.fields, ["phone"]);
    assert!(fixed.entry.request_id.is_some());
}

#[tokio::test]
async fn what_the_portal_does_is_on_the_request_desk() {
    let (t, _clock, [(record, _), _]) = app_with_customers().await;
    let mut v = Visitor::new(&t);
    let home = v.sign_in("ada@example.com").await;
    let csrf = home.csrf();
    v.post(
        "/portal/correct",
        &[
            ("csrf", &csrf),
            ("collection", "customers"),
            ("record", &record),
            ("field", "name"),
            ("value", "Augusta Ada King"),
        ],
    )
    .await;
    let zip = v.post("/portal/download", &[("csrf", &csrf)]).await;
    assert_eq!(zip.status, StatusCode::OK);
    assert_eq!(zip.headers[header::CONTENT_TYPE], "application/zip");
    v.post(
        "/portal/choices",
        &[("csrf", &csrf), ("action", "restrict")],
    )
    .await;
    v.post(
        "/portal/choices",
        &[
            ("csrf", &csrf),
            ("action", "object"),
            ("purpose", "support"),
        ],
    )
    .await;
    let refused = v.post("/portal/erasure", &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "unconfirmed");
    let e = v
        .post("/portal/erasure", &[("csrf", &csrf), ("confirm", "yes")])
        .await;
    assert_eq!(e.location(), Some("/portal/requests?done=erasure"));
    // Asking twice files one request.
    v.post("/portal/erasure", &[("csrf", &csrf), ("confirm", "yes")])
        .await;
    let desk = t
        .vault
        .requests(&Principal::Cli, RequestFilter::default())
        .await
        .unwrap();
    let mut seen: Vec<(RequestKind, RequestStatus)> =
        desk.iter().map(|r| (r.kind, r.status)).collect();
    seen.sort_by_key(|(k, _)| k.as_str());
    assert_eq!(
        seen,
        [
            (RequestKind::Access, RequestStatus::Completed),
            (RequestKind::Erasure, RequestStatus::Verifying),
            (RequestKind::Objection, RequestStatus::Completed),
            (RequestKind::Rectification, RequestStatus::Completed),
            (RequestKind::Restriction, RequestStatus::Completed),
        ]
    );
    assert!(desk.iter().all(|r| r.channel == Channel::Portal));
    // The customer sees them with their due dates.
    let page = v.get("/portal/requests").await;
    for kind in ["Erasure", "Rectification", "Access"] {
        assert!(page.text.contains(kind), "{kind}: {}", page.text);
    }
    // An open request shows when it is due; one answered, when it was.
    let due = custos_core::time::format_time_ms(erasure_due(&desk));
    assert!(
        page.text.contains(&format!("by {}", &due[..10])),
        "{}",
        page.text
    );
    assert!(page.text.contains("answered "), "{}", page.text);
    // Staff approve the erasure: the still-signed-in customer gets the certificate, and
    // nothing is held any more.
    let erasure = desk
        .iter()
        .find(|r| r.kind == RequestKind::Erasure)
        .unwrap();
    let r = t
        .call(
            "POST",
            &format!("/v1/requests/{}/approve", erasure.id),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let page = v.get("/portal/requests").await;
    assert!(page.text.contains("/portal/erasure-certificate"));
    let cert = v.get("/portal/erasure-certificate").await;
    assert_eq!(cert.status, StatusCode::OK, "{}", cert.text);
    assert!(cert.text.contains("\"jws\""));
    let home = v.get("/portal").await;
    assert!(
        home.text.contains("We hold no data about you"),
        "{}",
        home.text
    );
    // A new sign-in finds nothing: no code is sent.
    let before = mail_count(&t);
    Visitor::new(&t).ask_code("ada@example.com").await;
    deliver(&t).await;
    assert_eq!(
        mail_count(&t),
        before,
        "a code was sent to an erased address"
    );
}

#[tokio::test]
async fn no_address_or_code_is_stored_in_clear() {
    let (t, _clock, _) = app_with_customers().await;
    let email = "canary.7c1d@example.com";
    t.create(json!({"name": "Canary", "email": email})).await;
    let mut v = Visitor::new(&t);
    let page = v.ask_code(email).await;
    let code = mailed_code(&t, email).await.unwrap();
    v.enter_code(&page, "999999").await;
    v.enter_code(&page, &code).await;
    // Unknown addresses are not kept either.
    Visitor::new(&t).ask_code("stranger.9f2e@example.com").await;
    t.vault.sequence_audit().await.unwrap();
    let mut bytes = Vec::new();
    for f in std::fs::read_dir(t.dir.path()).unwrap() {
        let f = f.unwrap().path();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("custos.db") {
            bytes.extend(std::fs::read(&f).unwrap());
        }
    }
    assert!(!bytes.is_empty());
    let found = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    // The scan sees what is stored in clear: names of tables and actions.
    assert!(found("signin_challenges") && found("signin.failed"));
    for needle in [email, "canary.7c1d", "stranger.9f2e", &code] {
        assert!(!found(needle), "{needle} is in the database file");
    }
}

#[tokio::test]
async fn without_a_session_every_page_and_form_sends_to_sign_in() {
    let (t, _clock, [(record, _), _]) = app_with_customers().await;
    let mut v = Visitor::new(&t);
    // A cookie that was never a session is no better than none.
    v.cookies.insert("custos_session".into(), "ab".repeat(32));
    let correct = format!("/portal/correct?collection=customers&record={record}&field=phone");
    let receipt = format!("/portal/receipts/{}", custos_core::ids::EventId::random());
    for path in [
        "/portal",
        "/portal/choices",
        "/portal/requests",
        "/portal/erasure",
        "/portal/erasure-certificate",
        correct.as_str(),
        receipt.as_str(),
    ] {
        let a = v.get(path).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(a.location(), Some("/portal/signin"), "{path}");
    }
    for path in [
        "/portal/correct",
        "/portal/choices",
        "/portal/download",
        "/portal/erasure",
        "/portal/signout",
    ] {
        let a = v
            .post(
                path,
                &[("csrf", "00"), ("action", "restrict"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(a.location(), Some("/portal/signin"), "{path}");
    }
    // Without a sign-in under way, the code form sends back to the start.
    assert_eq!(
        Visitor::new(&t).get("/portal/signin/code").await.location(),
        Some("/portal/signin")
    );
    let requests = t
        .vault
        .requests(&Principal::Cli, RequestFilter::default())
        .await
        .unwrap();
    assert!(requests.is_empty());
}

#[tokio::test]
async fn the_per_client_limit_counts_customers_behind_a_trusted_proxy() {
    let t = crate::spawn_with_inventory(ManualClock::at(T0), |s| {
        format!("{s}\n[portal]\ntrusted_proxies = [\"127.0.0.1\"]\n")
    })
    .await;
    for i in 0..10 {
        t.create(json!({"name": format!("C {i}"), "email": format!("c{i}@example.com")}))
            .await;
    }
    let ask = |peer: &str, xff: String, email: String| {
        let peer = (peer.parse().unwrap(), xff);
        let t = &t;
        async move {
            let mut v = Visitor::new(t);
            v.peer = Some(peer);
            v.ask_code(&email).await;
        }
    };
    // From a client that is not a proxy, its X-Forwarded-For is ignored: twenty codes, and
    // the twenty-first is not sent.
    for i in 0..21 {
        ask(
            "203.0.113.5:4000",
            format!("198.51.100.{i}"),
            format!("c{}@example.com", i % 5),
        )
        .await;
    }
    deliver(&t).await;
    assert_eq!(mail_count(&t), 20);
    // Through the trusted proxy, each customer behind it is a client of their own.
    for i in 0..21 {
        ask(
            "127.0.0.1:4000",
            format!("198.51.100.{i}"),
            format!("c{}@example.com", 5 + i % 5),
        )
        .await;
    }
    deliver(&t).await;
    assert_eq!(mail_count(&t), 41);
}

#[tokio::test]
async fn a_choice_the_ledger_refuses_is_said_in_words_and_changes_nothing() {
    let (t, _clock, _) = app_with_customers().await;
    let mut v = Visitor::new(&t);
    let home = v.sign_in("ada@example.com").await;
    let csrf = home.csrf();
    // Consent to a purpose that rests on legitimate interests, an objection to one that
    // rests on consent, a purpose no one declared, a choice no one offers.
    for (action, purpose) in [
        ("grant", "support"),
        ("object", "marketing"),
        ("grant", "astrology"),
        ("dance", "marketing"),
    ] {
        let a = v
            .post(
                "/portal/choices",
                &[("csrf", &csrf), ("action", action), ("purpose", purpose)],
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{action} {purpose}: {}",
            a.text
        );
        assert!(a.text.contains("Nothing was changed"), "{}", a.text);
    }
    let subject = subject_of(&t, "ada@example.com").await;
    let ledger = t.vault.consents(&Principal::Cli, subject).await.unwrap();
    assert!(ledger.history.is_empty(), "{:?}", ledger.history);
    let requests = t
        .vault
        .requests(&Principal::Cli, RequestFilter::default())
        .await
        .unwrap();
    assert!(requests.is_empty(), "{requests:?}");
}

fn erasure_due(desk: &[custos_vault::RequestView]) -> i64 {
    let e = desk
        .iter()
        .find(|r| r.kind == RequestKind::Erasure)
        .unwrap();
    e.extended_to.unwrap_or(e.due_at)
}
