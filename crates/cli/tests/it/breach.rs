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
