//! Breach readiness end to end: `custos serve` with a webhook, a canary planted from the
//! command line, read with a support key, and the alert arriving at a real HTTP receiver
//! that checks its signature, refuses a replay, and was retried until it acknowledged.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custos_core::breach::webhook::{DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER, verify};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{Server, api, create_key, custos, initialised, stderr, stdout};

const SECRET: &str = "whsec-test-4f1c9a0e7d2b";

/// What the receiver was sent and what it answered.
#[derive(Default)]
struct Seen {
    accepted: Vec<(String, String)>,
    refused: Vec<String>,
    signatures: HashSet<String>,
    answered_503: bool,
}

/// One HTTP/1.1 request: its headers (lower-cased names) and body.
async fn read_request(s: &mut tokio::net::TcpStream) -> Option<(Vec<(String, String)>, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((
        headers,
        String::from_utf8_lossy(&buf[head_end..]).into_owned(),
    ))
}

/// A webhook receiver as a customer would write one: the first delivery is answered 503
/// (to see it retried), then each is checked (signature, age, not seen before) and answered
/// 200, or 400 with the reason.
async fn receiver(seen: Arc<Mutex<Seen>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let Some((headers, body)) = read_request(&mut s).await else {
                    return;
                };
                let sig = headers
                    .iter()
                    .find(|(k, _)| k == &SIGNATURE_HEADER.to_ascii_lowercase())
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let status = {
                    let mut seen = seen.lock().unwrap();
                    if !seen.answered_503 {
                        seen.answered_503 = true;
                        "503 Service Unavailable"
                    } else {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_secs() as i64;
                        match verify(
                            SECRET.as_bytes(),
                            &sig,
                            body.as_bytes(),
                            now,
                            DEFAULT_TOLERANCE_SECS,
                        ) {
                            Err(e) => {
                                seen.refused.push(e.to_string());
                                "400 Bad Request"
                            }
                            Ok(_) if !seen.signatures.insert(sig.clone()) => {
                                seen.refused.push("replayed".into());
                                "400 Bad Request"
                            }
                            Ok(_) => {
                                seen.accepted.push((sig, body));
                                "200 OK"
                            }
                        }
                    }
                };
                let reply =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_read_arrives_signed_at_a_webhook_once_and_a_replay_is_refused() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let port = receiver(Arc::clone(&seen)).await;
    let (dir, admin) = initialised();
    let toml = dir.path().join("custos.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(&format!(
        "\n[[webhooks]]\nurl = \"http://127.0.0.1:{port}/custos\"\nsecret_env = \"CUSTOS_TEST_WEBHOOK_SECRET\"\n"
    ));
    std::fs::write(&toml, text).unwrap();
    let support = create_key(dir.path(), "support", "support_agent");
    let server = Server::start_env(dir.path(), &[], &[("CUSTOS_TEST_WEBHOOK_SECRET", SECRET)]);
    let o = custos(dir.path(), &["canary", "plant", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ids: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 3, "{}", stdout(&o));
    // A real customer's read raises nothing; the canary's raises one alert.
    let (status, made) = api(
        "POST",
        server.url("/v1/collections/customers/records"),
        &admin,
        Some(serde_json::json!({"fields": {"email": "real@example.com", "name": "Real"}})),
    )
    .await;
    assert_eq!(status, 201);
    let real = made["id"].as_str().unwrap();
    let read = |id: &str| {
        server.url(&format!(
            "/v1/collections/customers/records/{id}?purpose=support"
        ))
    };
    assert_eq!(api("GET", read(real), &support, None).await.0, 200);
    assert_eq!(api("GET", read(&ids[1]), &support, None).await.0, 200);
    let start = Instant::now();
    while seen.lock().unwrap().accepted.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no delivery arrived: {}",
            std::fs::read_to_string(&server.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let any second delivery arrive, were there one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (sig, body) = {
        let s = seen.lock().unwrap();
        assert!(
            s.answered_503,
            "the first attempt was refused, so this one is a retry"
        );
        assert_eq!(s.accepted.len(), 1, "exactly one alert: {:?}", s.accepted);
        assert!(s.refused.is_empty(), "{:?}", s.refused);
        s.accepted[0].clone()
    };
    let alert: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(alert["kind"], "canary_touched");
    assert_eq!(alert["actor"], "apikey:support");
    assert_eq!(alert["record_id"], ids[1].as_str());
    assert!(
        !body.contains("@example"),
        "the body holds no personal value: {body}"
    );
    // The same delivery again, as an attacker who captured it would send it: refused by the
    // receiver's check (the signature was seen); a changed body fails the signature.
    let c = reqwest::Client::new();
    let again = c
        .post(format!("http://127.0.0.1:{port}/custos"))
        .header(SIGNATURE_HEADER, &sig)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 400);
    let forged = c
        .post(format!("http://127.0.0.1:{port}/custos"))
        .header(SIGNATURE_HEADER, &sig)
        .body(body.replace("apikey:support", "apikey:billing"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 400);
    assert_eq!(
        seen.lock().unwrap().refused,
        ["replayed", "the signature does not match the body"]
    );
    // The alert is listed, and every delivery attempt is in the audit log.
    let o = custos(dir.path(), &["alert", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let log = server.stop();
    assert!(log.contains("alert raised"), "{log}");
    assert!(!log.contains(SECRET), "the secret is never logged");
    let vault = custos_vault::Vault::open(&custos_vault::Paths::in_dir(dir.path()))
        .await
        .unwrap();
    let page = vault
        .audit_entries(
            &custos_vault::Principal::Cli,
            &custos_vault::AuditFilter {
                action: Some("webhook.deliver".into()),
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let outcomes: Vec<String> = page
        .entries
        .iter()
        .map(|e| {
            serde_json::to_value(e.entry.outcome)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        outcomes,
        ["ok", "failed"],
        "newest first: {:?}",
        page.entries
            .iter()
            .map(|e| &e.entry.detail)
            .collect::<Vec<_>>()
    );
}

/// `docs/breach.md`, step by step, on `custos serve --demo`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_drill_on_the_demo_runs_as_the_guide_says() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("drill");
    let server = Server::start(&dir, &["--demo", "--demo-records", "50"]);
    let run = |args: &[&str]| {
        let o = custos(&dir, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        (stdout(&o), stderr(&o))
    };
    // 2. Plant canaries.
    let (out, _) = run(&["canary", "plant", "5"]);
    let canaries: Vec<&str> = out.lines().collect();
    assert_eq!(canaries.len(), 5, "{out}");
    // 3. A support key reads one, and a real customer found by their address.
    let support = create_key(&dir, "support", "support_agent");
    let read = server.url(&format!(
        "/v1/collections/customers/records/{}?purpose=support",
        canaries[0]
    ));
    assert_eq!(api("GET", read, &support, None).await.0, 200);
    let demo = std::fs::read_to_string(&server.out).unwrap();
    let search = demo
        .split('\'')
        .find(|s| s.contains("purpose=support&email="))
        .unwrap_or_else(|| panic!("no search in {demo}"))
        .to_owned();
    let (status, found) = api("GET", search, &support, None).await;
    assert_eq!(
        (status, found["records"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{found}"
    );
    // 4. The alert arrives: listed, and mailed to the organization's contact.
    let start = Instant::now();
    let alerts = loop {
        let (out, _) = run(&["alert", "list", "--json"]);
        let list: serde_json::Value = serde_json::from_str(&out).unwrap();
        if !list.as_array().unwrap().is_empty() {
            break list;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no alert");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(alerts.as_array().unwrap().len(), 1, "{alerts}");
    assert_eq!(alerts[0]["kind"], "canary_touched");
    assert_eq!(alerts[0]["actor"], "apikey:support");
    let start = Instant::now();
    loop {
        let mailed = std::fs::read_dir(dir.join("mail"))
            .map(|d| {
                d.flatten().any(|f| {
                    std::fs::read_to_string(f.path())
                        .unwrap_or_default()
                        .contains("Custos alert")
                })
            })
            .unwrap_or(false);
        if mailed {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no alert mail");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // 5. Open the incident, and see the clock.
    let alert = alerts[0]["id"].as_str().unwrap();
    let (out, _) = run(&[
        "breach",
        "open",
        "--title",
        "Support key leaked",
        "--api-key",
        "support",
        "--facts",
        "The support key was found in a public paste.",
        "--alert",
        alert,
    ]);
    let id = out.lines().last().unwrap().trim().to_owned();
    let (out, _) = run(&["breach", "list"]);
    assert!(
        out.contains("Support key leaked") && out.contains("GDPR Art. 33(1)"),
        "{out}"
    );
    assert!(out.contains(" h ") && out.contains("min left"), "{out}");
    // 6. The blast radius: the customer found, the canary apart.
    let (out, _) = run(&["breach", "blast-radius", "--api-key", "support", "--json"]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["subjects"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["canary_reads"], 1, "{r}");
    assert!(
        r["categories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "contact"),
        "{r}"
    );
    // 7. Contain, decide, notify.
    let (_, err) = run(&["breach", "contain", &id]);
    assert!(err.contains("revoked API key support"), "{err}");
    let read = server.url(&format!(
        "/v1/collections/customers/records/{}?purpose=support",
        canaries[1]
    ));
    assert_eq!(
        api("GET", read, &support, None).await.0,
        401,
        "the key is revoked"
    );
    run(&[
        "breach",
        "update",
        &id,
        "--effects",
        "Names and addresses may be used for phishing.",
        "--remedial",
        "The key was revoked.",
    ]);
    run(&[
        "breach",
        "decide",
        &id,
        "--notify-authority",
        "yes",
        "--notify-subjects",
        "yes",
        "--reasons",
        "A customer's name and address were read by a leaked key",
    ]);
    let (out, _) = run(&["breach", "notices", &id]);
    for want in [
        "(a) Nature of the breach",
        "data subjects concerned: 1",
        "(d) Measures",
        "What happened",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let (_, err) = run(&["breach", "notify", &id]);
    assert!(err.contains("queued 1 notices"), "{err}");
    // 8. The register, and the record of processing activities.
    let (out, _) = run(&["breach", "register", "--format", "csv"]);
    assert!(
        out.contains("Support key leaked") && out.contains("\"yes\",\"yes\""),
        "{out}"
    );
    assert!(
        out.contains("contained: revoked API keys [support]"),
        "{out}"
    );
    let (out, _) = run(&["report", "ropa", "--format", "json"]);
    assert!(out.contains("\"activities\""), "{out}");
    // The accountability report counts the drill; the DPIA worksheet is prefilled.
    let (out, _) = run(&[
        "report",
        "audit",
        "--from",
        "2020-01-01",
        "--format",
        "json",
    ]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        r["reads_by_role"]["support_agent"], 1,
        "the canary's read is not counted: {r}"
    );
    assert_eq!(r["alerts"]["canary_touched"], 1, "{r}");
    assert_eq!(r["incidents_opened"], 1, "{r}");
    let (out, _) = run(&[
        "report",
        "audit",
        "--from",
        "2020-01-01",
        "--format",
        "html",
    ]);
    assert!(
        out.contains("<svg") && out.contains("CCPA Regulations § 7102"),
        "{out}"
    );
    let (out, _) = run(&["report", "dpia", "billing"]);
    assert!(
        out.contains("customers.address") && out.contains("Art. 35(7)(c)"),
        "{out}"
    );
    let o = custos(&dir, &["report", "dpia", "astrology"]);
    assert!(
        !o.status.success() && stderr(&o).contains("purpose"),
        "{}",
        stderr(&o)
    );
    let log = server.stop();
    assert!(log.contains("alert raised"), "{log}");
}
