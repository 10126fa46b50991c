//! The privacy portal in a real browser (`crate::browser`), as a customer goes through it,
//! against the real `custos serve` sending its codes over SMTP to a real receiver. Sign in
//! with the mailed code, correct a phone number (and fail to with a bad one), withdraw the
//! newsletter consent and download its receipt, download everything, ask for erasure
//! (refused until the box is ticked), see staff's approval and the certificate, sign out,
//! and find that the erased address gets no code and the same page as any other.
//!
//! Every page is screenshotted (two at a phone's width), checked with axe-core (vendored in
//! `tests/fixtures/axe-core`), and checked for the portal's promises: its CSP header, no
//! asset from elsewhere, a CSRF token in every form that posts.

use std::io::Read as _;
use std::time::{Duration, Instant};

use custos_vault::testing::SmtpSink;
use serde_json::{Value, json};
use thirtyfour::prelude::*;

use crate::browser::{Browser, Chromedriver, DESKTOP, PHONE, require_browser};
use crate::{Server, api, client, create_key, custos, stderr, stdout};

const NAME: &str = "Grace Hopper";
const EMAIL: &str = "grace.hopper@example.com";
const PHONE_GIVEN: &str = "020 7946 0123";
const PHONE_STORED: &str = "+442079460123";
const PHONE_CORRECTED: &str = "020 7946 0456";
const PHONE_CORRECTED_STORED: &str = "+442079460456";
const NEWSLETTER: &str = "Send you our newsletter and offers";

/// The six digits of the code in a sign-in mail.
fn code_in(body: &str) -> String {
    body.split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no six-digit code in {body:?}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_uses_the_portal_in_a_real_browser() {
    let began = Instant::now();
    require_browser();
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let o = custos(dir.path(), &["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let toml = dir.path().join("custos.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(&format!(
        "\n[mail]\nfrom = \"Example Shop <privacy@shop.example>\"\ntransport = \"smtp\"\n\
         host = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n",
        sink.port()
    ));
    std::fs::write(&toml, text).unwrap();
    let admin = create_key(dir.path(), "admin", "admin");
    let server = Server::start(dir.path(), &[]);

    // The customer, as the shop's backend stores them, with the newsletter consent their
    // sign-up form collected.
    let (status, created) = api(
        "POST",
        server.url("/v1/collections/customers/records"),
        &admin,
        Some(json!({"fields": {"name": NAME, "email": EMAIL, "phone": PHONE_GIVEN, "country": "GB"}})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let record = created["id"].as_str().unwrap().to_owned();
    let subject = created["subject_id"].as_str().unwrap().to_owned();
    let (status, grant) = api(
        "POST",
        server.url(&format!("/v1/subjects/{subject}/consents")),
        &admin,
        Some(json!({"choice": "grant", "purpose": "marketing", "source": "web_form"})),
    )
    .await;
    assert_eq!(status, 201, "{grant}");
    let read_record = server.url(&format!(
        "/v1/collections/customers/records/{record}?purpose=support"
    ));

    let chromedriver = Chromedriver::start().await;
    let mut b = Browser::start(&chromedriver, &server.base, "portal-screenshots").await;

    // Signing in: sent from the portal to the sign-in page; the code comes by mail.
    b.goto("/portal").await;
    b.page("Sign in to see your data").await;
    assert_eq!(b.path().await, "/portal/signin");
    b.check("signin").await;
    // The accessibility check is alive: a picture without a text alternative is found.
    b.driver
        .execute(
            "document.querySelector('main').append(document.createElement('img'));",
            Vec::new(),
        )
        .await
        .unwrap();
    let planted = b.axe_run("signin with a planted fault").await;
    assert!(
        planted.iter().any(|v| v["id"] == "image-alt"),
        "axe missed an image without alt: {planted:?}"
    );
    b.driver.refresh().await.unwrap();
    // From the keyboard, the first stop is the link past the header, and it shows.
    b.page("Sign in to see your data").await;
    b.driver
        .action_chain()
        .send_keys(Key::Tab)
        .perform()
        .await
        .unwrap();
    let focused = b.driver.active_element().await.unwrap();
    assert_eq!(focused.text().await.unwrap(), "Skip to the content");
    assert!(focused.is_displayed().await.unwrap());
    b.screenshot("signin-keyboard").await;
    // An address the browser accepts and the vault does not.
    b.type_into("Email address", "grace@localhost").await;
    b.press("Send me a code").await;
    let error = b.by_text_in("[role=alert]").await;
    assert!(error.contains("Enter it as name@example.com"), "{error}");
    b.check("signin-refused").await;
    b.type_into("Email address", EMAIL).await;
    b.press("Send me a code").await;
    b.page("Enter your code").await;
    b.check("code").await;
    let mail = sink.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(mail.len(), 1, "one sign-in mail");
    assert_eq!(mail[0].rcpt_tos, [EMAIL]);
    assert!(
        mail[0].subject.contains("sign-in code"),
        "{}",
        mail[0].subject
    );
    let code = code_in(&mail[0].body);
    // A wrong code first (it counts against the address: one of five).
    let wrong = if code == "000000" { "111111" } else { "000000" };
    b.type_into("Six-digit code", wrong).await;
    b.press("Sign in").await;
    let error = b.by_text_in("[role=alert]").await;
    assert!(error.starts_with("That code did not work."), "{error}");
    b.check("code-refused").await;
    b.type_into("Six-digit code", &code).await;
    b.press("Sign in").await;

    // Your data: every field with why it is held.
    b.page("Your data").await;
    let cookies = b.driver.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name == "custos_session")
        .expect("a session cookie");
    assert_eq!(session.http_only, Some(true), "{session:?}");
    assert_eq!(session.same_site, Some(SameSite::Strict), "{session:?}");
    let phone_field = b.by_text("dt", "Phone").await.parent().await.unwrap();
    let phone_text = phone_field.text().await.unwrap();
    for want in [
        PHONE_STORED,
        "Send invoices and take payment for your orders",
        "Answer your questions and complaints",
    ] {
        assert!(phone_text.contains(want), "{want:?} not in {phone_text:?}");
    }
    let main = b.main_text().await;
    for want in [NAME, EMAIL, PHONE_STORED, NEWSLETTER] {
        assert!(main.contains(want), "{want:?} not on Your data: {main}");
    }
    b.check("your-data").await;
    b.window(PHONE).await;
    b.screenshot("your-data-phone").await;
    b.axe("your-data-phone").await;
    b.window(DESKTOP).await;

    // Correcting the phone number.
    b.follow("Correct Phone").await;
    b.page("Correct Phone").await;
    b.check("correct").await;
    b.type_into("Phone", PHONE_CORRECTED).await;
    b.press("Save the correction").await;
    b.by_text("p", "Your correction is saved.").await;
    assert_eq!(b.path().await, "/portal?done=corrected");
    assert!(b.main_text().await.contains(PHONE_CORRECTED_STORED));
    let (status, r) = api("GET", read_record.clone(), &admin, None).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["fields"]["phone"], PHONE_CORRECTED_STORED, "{r}");

    // A bad number is refused with the rule it breaks, and changes nothing.
    b.follow("Correct Phone").await;
    b.page("Correct Phone").await;
    b.type_into("Phone", "12").await;
    b.press("Save the correction").await;
    let error = b.by_text_in("[role=alert]").await;
    assert!(
        error.starts_with("Nothing was changed:") && error.contains("phone"),
        "{error}"
    );
    let input = b.input("Phone").await;
    assert_eq!(
        input.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    b.check("correct-refused").await;
    let (_, r) = api("GET", read_record.clone(), &admin, None).await;
    assert_eq!(r["fields"]["phone"], PHONE_CORRECTED_STORED, "{r}");

    // Your choices: the newsletter consent withdrawn, in the history and in the ledger.
    b.follow("Your choices").await;
    b.page("Your choices").await;
    let main = b.main_text().await;
    assert!(
        main.contains(&format!("{NEWSLETTER}: you have given consent")),
        "{main}"
    );
    b.press(&format!("Withdraw consent: {NEWSLETTER}")).await;
    b.by_text("p", "Your choice is recorded.").await;
    let main = b.main_text().await;
    assert!(
        main.contains(&format!("{NEWSLETTER}: you withdrew consent"))
            && main.contains(&format!("You withdrew consent: {NEWSLETTER}"))
            && main.contains(&format!("You gave consent: {NEWSLETTER}")),
        "{main}"
    );
    b.check("choices").await;
    let (status, ledger) = api(
        "GET",
        server.url(&format!("/v1/subjects/{subject}/consents")),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{ledger}");
    let marketing = ledger["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["purpose"] == "marketing")
        .unwrap();
    assert_eq!(marketing["consent"], "withdrawn", "{ledger}");
    let withdrawal = ledger["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["choice"] == "withdraw")
        .unwrap_or_else(|| panic!("no withdrawal in {ledger}"));
    assert_eq!(withdrawal["source"], "portal", "{withdrawal}");
    let withdrawn_row = b
        .wait("the withdrawal's row", || {
            let d = b.driver.clone();
            async move {
                for row in d.find_all(By::Tag("tr")).await.ok()? {
                    if row.text().await.ok()?.contains("You withdrew consent") {
                        return Some(row);
                    }
                }
                None
            }
        })
        .await;
    withdrawn_row
        .find(By::Tag("a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let (name, bytes) = b.download("consent-receipt-").await;
    assert_eq!(
        name,
        format!(
            "consent-receipt-{}.json",
            withdrawal["id"].as_str().unwrap()
        )
    );
    let receipt: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(receipt["receipt"]["state"], "withdrawn", "{receipt}");
    assert!(receipt["jws"].is_string(), "{receipt}");

    // Download my data: the zip, with the corrected number.
    b.follow("Your data").await;
    b.page("Your data").await;
    b.press("Download my data").await;
    let (name, bytes) = b.download("my-data-").await;
    assert_eq!(name, format!("my-data-{subject}.zip"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["README.txt", "customers.csv", "export.json"]);
    let mut csv = String::new();
    zip.by_name("customers.csv")
        .unwrap()
        .read_to_string(&mut csv)
        .unwrap();
    assert!(csv.contains(PHONE_CORRECTED_STORED), "{csv}");
    assert!(!csv.contains(PHONE_STORED), "{csv}");

    // Asking for erasure: refused until the box is ticked.
    b.follow("Ask us to erase your data").await;
    b.page("Erase your data").await;
    b.check("erasure").await;
    b.press("Yes, erase my data").await;
    let error = b
        .by_text(
            "p",
            "Tick the box to confirm that your data should be erased.",
        )
        .await;
    assert_eq!(error.attr("role").await.unwrap().as_deref(), Some("alert"));
    b.check("erasure-refused").await;
    b.input("I understand that my data will be erased for good")
        .await
        .click()
        .await
        .unwrap();
    b.press("Yes, erase my data").await;
    b.page("Your requests").await;
    assert_eq!(b.path().await, "/portal/requests?done=erasure");
    let main = b.main_text().await;
    for kind in ["Erasure", "Rectification", "Access"] {
        assert!(main.contains(kind), "{kind} not in {main}");
    }
    b.check("requests").await;
    b.window(PHONE).await;
    b.screenshot("requests-phone").await;
    b.axe("requests-phone").await;
    b.window(DESKTOP).await;

    // Staff see the portal's requests, each with its due date.
    let list = custos(dir.path(), &["requests", "list", "--json"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let list: Value = serde_json::from_str(&stdout(&list)).unwrap();
    let list = list.as_array().unwrap();
    let mut kinds: Vec<&str> = list.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["access", "erasure", "rectification"], "{list:?}");
    for r in list {
        assert_eq!(r["channel"], "portal", "{r}");
        assert_eq!(r["subject_id"], subject.as_str(), "{r}");
        assert_eq!(r["profile"], "uk_gdpr", "{r}");
    }
    let table = stdout(&custos(dir.path(), &["requests", "list"]));
    let erasure = list.iter().find(|r| r["kind"] == "erasure").unwrap();
    for r in list {
        let (id, due) = (r["id"].as_str().unwrap(), r["due_date"].as_str().unwrap());
        let line = table.lines().find(|l| l.contains(id)).unwrap_or_default();
        assert!(
            line.contains(r["kind"].as_str().unwrap()) && line.contains(due),
            "{r}\n{table}"
        );
    }
    // The customer's page shows the same due date as the desk.
    let row = b
        .wait("the erasure's row", || {
            let d = b.driver.clone();
            async move {
                for row in d.find_all(By::Tag("tr")).await.ok()? {
                    if row.text().await.ok()?.starts_with("Erasure") {
                        return Some(row);
                    }
                }
                None
            }
        })
        .await;
    let row = row.text().await.unwrap();
    assert!(
        row.contains("Verifying") && row.contains(erasure["due_date"].as_str().unwrap()),
        "{row}"
    );

    // Staff approve the erasure; the still signed-in customer is offered the certificate.
    let (status, approved) = api(
        "POST",
        server.url(&format!(
            "/v1/requests/{}/approve",
            erasure["id"].as_str().unwrap()
        )),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "completed", "{approved}");
    b.follow("Your requests").await;
    b.page("Your requests").await;
    b.follow("Download the erasure certificate").await;
    let (name, bytes) = b.download("erasure-certificate-").await;
    assert_eq!(name, format!("erasure-certificate-{subject}.json"));
    let certificate: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(certificate.to_string().contains(&subject), "{certificate}");
    b.check("requests-erased").await;
    let (status, r) = api("GET", read_record.clone(), &admin, None).await;
    assert_eq!(status, 404, "{r}");

    // A page of a heading and a sentence, as a stale link meets it.
    b.goto("/portal/receipts/not-an-event").await;
    b.page("Not found").await;
    b.check("not-found").await;
    b.follow("Back to the privacy portal").await;
    b.page("Your data").await;
    let main = b.main_text().await;
    assert!(main.contains("We hold no data about you."), "{main}");
    assert!(!main.contains(NAME), "{main}");

    // Signing out, and in again: the erased address gets no code, and the same page as an
    // address never on file.
    b.press("Sign out").await;
    b.page("Sign in to see your data").await;
    b.goto("/portal").await;
    b.page("Sign in to see your data").await;
    b.type_into("Email address", EMAIL).await;
    b.press("Send me a code").await;
    b.page("Enter your code").await;
    let erased_page = b.main_text().await;
    b.goto("/portal/signin").await;
    b.type_into("Email address", "nobody.at.all@example.com")
        .await;
    b.press("Send me a code").await;
    b.page("Enter your code").await;
    assert_eq!(b.main_text().await, erased_page);
    // Waiting for something not to happen: a few seconds, the outbox running every 250 ms.
    let later = sink.wait_for(2, Duration::from_secs(3)).await;
    assert_eq!(later.len(), 1, "a message after erasure: {later:?}");

    // The one stylesheet brings in nothing either.
    let css = client()
        .get(server.url("/portal/static/portal.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!css.contains("@import") && !css.contains("url("), "{css}");

    println!(
        "portal screenshots in {} ({} pages checked: {})",
        b.shots.display(),
        b.checked.len(),
        b.checked
            .iter()
            .map(|c| format!("{} {}", c.page, c.url))
            .collect::<Vec<_>>()
            .join(", ")
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
    println!("the portal's journey took {:?}", began.elapsed());
}
