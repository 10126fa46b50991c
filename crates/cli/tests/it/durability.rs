//! Nothing acknowledged is lost: writes under load, SIGKILL, restart, every 201 readable,
//! and the audit log verifies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;

use crate::{Server, client, custos, initialised, stdout};

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_sigkill() {
    let (dir, key) = initialised();
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let acked = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let mut writers = Vec::new();
    for w in 0..16 {
        let (acked, key, base) = (Arc::clone(&acked), key.clone(), base.clone());
        writers.push(tokio::spawn(async move {
            let http = client();
            let mut i = 0;
            // Keep writing past the kill: requests then fail, and only 201s count.
            while Instant::now() < stop_at + Duration::from_millis(1500) {
                let email = format!("w{w}-{i}@durable.example");
                i += 1;
                let body = json!({"fields": {"email": email, "notes": format!("note {i}")}});
                let sent = http
                    .post(format!("{base}/v1/collections/customers/records"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let v: serde_json::Value = match r.json().await {
                            Ok(v) => v,
                            Err(_) => continue,
                        };
                        acked
                            .lock()
                            .await
                            .push((v["id"].as_str().unwrap().to_owned(), email));
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    tokio::time::sleep_until(stop_at.into()).await;
    server.kill();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert!(
        acked.len() > 50,
        "the load wrote something before the kill: {}",
        acked.len()
    );

    let server = Server::start(dir.path(), &[]);
    let http = client();
    for (id, email) in &acked {
        let r = http
            .get(server.url(&format!(
                "/v1/collections/customers/records/{id}?purpose=support"
            )))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            200,
            "acknowledged record {id} is readable after SIGKILL"
        );
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["fields"]["email"], email.as_str());
    }
    server.stop();
    let v = custos(dir.path(), &["audit", "verify"]);
    let out = stdout(&v);
    assert!(v.status.success(), "{out}");
    let size: usize = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        size > 2 * acked.len(),
        "every acknowledged write and its read are in the log: {out} for {} writes",
        acked.len()
    );
}
