//! The load generator of `bench/load.sh`: drives running `custos serve` instances over HTTP
//! from its own process, first with writes, then with audited reads by id of the records it
//! wrote, then with audited lookups by email, and prints throughput and latency percentiles
//! of each phase. `--base` takes a comma-separated list to spread the load over instances.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{next, phase};

use serde_json::json;

mod common;

struct Args {
    base: String,
    key: String,
    seconds: u64,
    concurrency: usize,
}

fn args() -> Args {
    let mut a = Args {
        base: String::new(),
        key: String::new(),
        seconds: 20,
        concurrency: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--base" => a.base = v,
            "--key" => a.key = v,
            "--seconds" => a.seconds = v.parse().expect("--seconds is a number"),
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency is a number"),
            _ => panic!(
                "unknown flag {flag}; use --base URL --key KEY [--seconds N] [--concurrency N]"
            ),
        }
    }
    assert!(
        !a.base.is_empty() && !a.key.is_empty(),
        "--base and --key are required"
    );
    a
}

#[tokio::main]
async fn main() {
    let a = args();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .unwrap();
    let duration = Duration::from_secs(a.seconds);
    // Several instances: task t talks to instance t % n.
    let bases: Arc<Vec<String>> = Arc::new(a.base.split(',').map(str::to_owned).collect());
    let key: Arc<str> = a.key.into();
    let written: Arc<Mutex<Vec<(String, String)>>> = Arc::default();

    // Writes: new customers with the seven personal fields, each a new subject.
    let (h, b, k, w) = (http.clone(), bases.clone(), key.clone(), written.clone());
    let mut writes = phase("writes", a.concurrency, duration, move |t, i| {
        let (http, base, key, written) = (h.clone(), b[t % b.len()].clone(), k.clone(), w.clone());
        async move {
            let email = format!("load{t}-{i}@bench.example");
            let body = json!({"fields": {
                "name": format!("Load Tester {t}-{i}"),
                "email": email,
                "phone": format!("020 7946 {:04}", i % 10_000),
                "birth_date": "1980-02-29",
                "country": "GB",
                "address": {"lines": [format!("{i} Bench Road")], "locality": "London", "country": "GB"},
                "notes": "Created by the load benchmark."
            }});
            let r = http
                .post(format!("{base}/v1/collections/customers/records"))
                .bearer_auth(&*key)
                .json(&body)
                .send()
                .await;
            let Ok(r) = r else { return false };
            if r.status().as_u16() != 201 {
                return false;
            }
            let Ok(v) = r.json::<serde_json::Value>().await else {
                return false;
            };
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            written.lock().unwrap().push((id, email));
            true
        }
    })
    .await;
    writes.print();
    let written = Arc::new(std::mem::take(&mut *written.lock().unwrap()));
    assert!(!written.is_empty(), "the write phase wrote nothing to read");

    // Audited reads by id: random records among those written, for a purpose the key may use.
    let (h, b, k, w) = (http.clone(), bases.clone(), key.clone(), written.clone());
    phase("reads", a.concurrency, duration, move |t, i| {
        let (http, base, key) = (h.clone(), b[t % b.len()].clone(), k.clone());
        let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ ((t as u64 + 1) << 32 | i);
        let id = w[(next(&mut seed) % w.len() as u64) as usize].0.clone();
        async move {
            let url = format!("{base}/v1/collections/customers/records/{id}?purpose=billing");
            match http.get(url).bearer_auth(&*key).send().await {
                Ok(r) if r.status().as_u16() == 200 => r.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await
    .print();

    // Audited lookups by email through the blind index.
    let (h, b, k, w) = (http.clone(), bases.clone(), key.clone(), written.clone());
    phase("lookups", a.concurrency, duration, move |t, i| {
        let (http, base, key) = (h.clone(), b[t % b.len()].clone(), k.clone());
        let mut seed = 0xD1B5_4A32_D192_ED03u64 ^ ((t as u64 + 1) << 32 | i);
        let email = w[(next(&mut seed) % w.len() as u64) as usize].1.clone();
        async move {
            let url =
                format!("{base}/v1/collections/customers/records?purpose=support&email={email}");
            match http.get(url).bearer_auth(&*key).send().await {
                Ok(r) if r.status().as_u16() == 200 => r.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await
    .print();
}
