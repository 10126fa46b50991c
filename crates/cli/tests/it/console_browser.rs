//! The console in a real browser (`crate::browser`), as a new privacy officer goes through
//! it, against the real `custos serve`: added with `custos operator add`, they open the setup
//! link, are refused a common password, choose a good one, enrol TOTP (the test computes the
//! code from the secret the page shows, as an authenticator app would), keep their recovery
//! codes, sign in (a replayed code is refused), find a customer's erasure request in the
//! queue, verify and approve it, and find it completed with what was erased; they read the
//! audit trail, verify the log, see retention; then `custos operator disable` ends their live
//! session.
//!
//! Every page is screenshotted, checked with axe-core and for the console's promises (its
//! CSP, nothing from elsewhere, a CSRF token in every form that posts).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use custos_core::operator::totp::TotpSecret;
use serde_json::json;

use crate::browser::{Browser, Chromedriver, require_browser};
use crate::{Server, api, create_key, custos, stderr, stdout};

const OFFICER: &str = "dana.officer@example.com";
const PASSWORD: &str = "amber kettle rowing north";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Fills in and posts the login form.
async fn sign_in(b: &Browser, code: &str) {
    b.goto("/console/signin").await;
    b.page("Sign in to the console").await;
    b.type_into("Email address", OFFICER).await;
    b.type_into("Password", PASSWORD).await;
    b.type_into("Code from your authenticator app, or a recovery code", code)
        .await;
    b.press("Sign in").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_officer_sets_up_and_handles_an_erasure_in_a_real_browser() {
    let began = Instant::now();
    require_browser();
    let dir = tempfile::tempdir().unwrap();
    let o = custos(dir.path(), &["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let admin = create_key(dir.path(), "admin", "admin");
    let server = Server::start(dir.path(), &[]);

    // A customer and their erasure request, as the shop's backend files it.
    let (status, created) = api(
        "POST",
        server.url("/v1/collections/customers/records"),
        &admin,
        Some(json!({"fields": {"name": "Ada Byron", "email": "ada.byron@example.com", "country": "GB"}})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let subject = created["subject_id"].as_str().unwrap().to_owned();
    let (status, filed) = api(
        "POST",
        server.url("/v1/requests"),
        &admin,
        Some(json!({"subject_id": subject, "kind": "erasure", "channel": "email"})),
    )
    .await;
    assert_eq!(status, 201, "{filed}");
    let request = filed["id"].as_str().unwrap().to_owned();

    // The operator, added at the command line: the link is the only thing on stdout.
    let o = custos(
        dir.path(),
        &[
            "operator",
            "add",
            OFFICER,
            "--role",
            "privacy_officer",
            "--url",
            &server.base,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let link = stdout(&o).trim().to_owned();
    assert!(
        link.starts_with(&format!("{}/console/setup?token=", server.base)),
        "{link}"
    );

    let chromedriver = Chromedriver::start().await;
    let mut b = Browser::start(&chromedriver, &server.base, "console-screenshots").await;

    b.goto(link.strip_prefix(&server.base).unwrap()).await;
    b.page("Set up your account").await;
    b.check("setup-password").await;
    b.type_into("Password", "password12345").await;
    b.type_into("The same password again", "password12345")
        .await;
    b.press("Choose this password").await;
    let error = b.by_text_in("[role=alert]").await;
    assert!(error.contains("commonly used password"), "{error}");
    b.check("setup-password-refused").await;
    b.type_into("Password", PASSWORD).await;
    b.type_into("The same password again", PASSWORD).await;
    b.press("Choose this password").await;

    b.page("Enrol your authenticator app").await;
    let svg = b.driver.find(thirtyfour::By::Css(".qr svg")).await;
    assert!(svg.is_ok(), "the QR code is drawn in the page");
    b.check("setup-authenticator").await;
    // As an app that cannot scan: the secret under "Cannot scan it?".
    b.by_text("summary", "Cannot scan it? Type the secret instead")
        .await
        .click()
        .await
        .unwrap();
    let secret = b.by_text_in("#totp-secret").await;
    let totp = TotpSecret::from_base32(&secret).expect("a base32 secret");
    b.type_into("Code from the app", "000000").await;
    b.press("Enrol").await;
    if totp.code_at(now_ms()).as_deref() != Some("000000") {
        let error = b.by_text_in("[role=alert]").await;
        assert!(error.contains("is not the authenticator's code"), "{error}");
    }
    b.type_into("Code from the app", &totp.code_at(now_ms()).unwrap())
        .await;
    b.press("Enrol").await;
    b.page("You are set up").await;
    let codes = b.by_text_in("#recovery-codes").await;
    assert_eq!(
        codes.lines().filter(|l| l.len() == 19).count(),
        10,
        "{codes}"
    );
    b.check("setup-recovery-codes").await;
    // The link is spent.
    b.goto(link.strip_prefix(&server.base).unwrap()).await;
    b.page("This setup link does not work").await;

    // Signing in: the enrolment's code was used; the next step's code is fresh.
    let code = totp.code_at(now_ms() + 30_000).unwrap();
    sign_in(&b, &code).await;
    b.page("Requests").await;
    b.check("home").await;
    let cookies = b.driver.get_all_cookies().await.unwrap();
    let session = cookies.iter().find(|c| c.name == "custos_console").unwrap();
    assert_eq!(session.http_only, Some(true));

    // The request from the queue: verify, then approve, which erases.
    b.follow(&request).await;
    b.page("Erasure request").await;
    b.check("request").await;
    b.press("Start verifying identity").await;
    b.page("Erasure request").await;
    b.press("Approve (identity verified)").await;
    b.page("Erasure request").await;
    b.text_becomes("#status", "completed").await;
    let history = b.by_text_in("#history").await;
    assert!(history.contains("erased 1 records"), "{history}");
    assert!(history.contains("operator:"), "{history}");
    b.check("request-completed").await;

    b.follow("Audit").await;
    b.page("Audit trail").await;
    b.check("audit").await;
    b.press("Verify the log now").await;
    let verified = b.by_text_in("#verify-result").await;
    assert!(verified.starts_with("Verified:"), "{verified}");
    b.type_into("Action", "subject.erase").await;
    b.press("Filter").await;
    let entries = b.by_text_in("#entries").await;
    assert!(entries.contains(&subject), "{entries}");
    b.check("audit-filtered").await;
    b.follow("Consent").await;
    b.page("Consent").await;
    b.check("consent").await;
    b.follow("Retention").await;
    b.page("Retention").await;
    b.check("retention").await;
    b.follow("Records").await;
    b.page("Record of processing activities").await;
    b.check("ropa").await;
    // Breach response: open an incident, and see its clocks.
    b.follow("Breach").await;
    b.page("Breach response").await;
    b.check("breach").await;
    b.type_into("Title", "Laptop with an export lost").await;
    b.type_into("The API key it is about (its name), if any", "support")
        .await;
    b.press("Open the incident").await;
    b.page("Laptop with an export lost").await;
    let clocks = b.by_text_in("#clocks").await;
    assert!(
        clocks.contains("GDPR Art. 33(1)") && clocks.contains("min left"),
        "{clocks}"
    );
    b.check("incident").await;

    // A replayed code, in another browser session: refused.
    b.driver.delete_all_cookies().await.unwrap();
    sign_in(&b, &code).await;
    let error = b.by_text_in("[role=alert]").await;
    assert!(
        error.contains("The address, password or code is wrong"),
        "{error}"
    );
    b.check("signin-refused").await;

    // Signed in again (a recovery code), then disabled from the command line: the live
    // session is refused at the next page.
    let first = codes.lines().find(|l| l.len() == 19).unwrap().to_owned();
    sign_in(&b, &first).await;
    b.page("Requests").await;
    let o = custos(dir.path(), &["operator", "disable", OFFICER]);
    assert!(o.status.success(), "{}", stderr(&o));
    b.goto("/console/audit").await;
    b.page("Sign in to the console").await;

    println!(
        "console screenshots in {} ({} pages checked)",
        b.shots.display(),
        b.checked.len()
    );
    let violations = std::mem::take(&mut b.violations);
    b.driver.clone().quit().await.unwrap();
    drop(chromedriver);
    server.stop();
    assert!(
        violations.is_empty(),
        "axe-core found {} accessibility violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    println!("the console's journey took {:?}", began.elapsed());
}
