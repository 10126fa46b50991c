//! The load generator of `bench/export.sh`: against a running `custos serve` holding the demo
//! customers, first reads every subject a few times (a lookup by email and two reads by id,
//! by two keys for two purposes) so the audit log holds entries for each, then times subject
//! exports of random subjects, one at a time, as JSON and as zip, and prints p50, p90 and p99.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A xorshift generator: which subject to export next.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

struct Args {
    base: String,
    admin: String,
    support: String,
    billing: String,
    subjects: usize,
    exports: usize,
    concurrency: usize,
}

fn args() -> Args {
    let mut a = Args {
        base: String::new(),
        admin: String::new(),
        support: String::new(),
        billing: String::new(),
        subjects: 100_000,
        exports: 1000,
        concurrency: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--base" => a.base = v,
            "--admin" => a.admin = v,
            "--support" => a.support = v,
            "--billing" => a.billing = v,
            "--subjects" => a.subjects = v.parse().expect("--subjects is a number"),
            "--exports" => a.exports = v.parse().expect("--exports is a number"),
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency is a number"),
            _ => panic!(
                "unknown flag {flag}; use --base URL --admin KEY --support KEY --billing KEY \
                 [--subjects N] [--exports N] [--concurrency N]"
            ),
        }
    }
    assert!(
        !a.base.is_empty() && !a.admin.is_empty() && !a.support.is_empty(),
        "--base, --admin, --support and --billing are required"
    );
    a
}

/// Reads demo customer `i` three times; returns its subject id.
async fn prime(http: &reqwest::Client, a: &Args, i: usize) -> Option<String> {
    let email = custos_vault::demo_customer(i)["email"]
        .expose_secret()
        .as_str()?
        .to_owned();
    let url = format!(
        "{}/v1/collections/customers/records?purpose=support&email={email}",
        a.base
    );
    let found: Value = http
        .get(url)
        .bearer_auth(&a.support)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let rec = found["records"].get(0)?;
    let (id, subject) = (rec["id"].as_str()?, rec["subject_id"].as_str()?.to_owned());
    for (key, purpose) in [(&a.billing, "billing"), (&a.support, "support")] {
        let url = format!(
            "{}/v1/collections/customers/records/{id}?purpose={purpose}",
            a.base
        );
        let r = http.get(url).bearer_auth(key).send().await.ok()?;
        if r.status().as_u16() != 200 {
            return None;
        }
    }
    Some(subject)
}

fn print(name: &str, lat: &mut [u64], bytes: usize) {
    lat.sort_unstable();
    let pct = |p: f64| {
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    println!(
        "{name:<12} {:>6} exports  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms  ({} bytes on average)",
        lat.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        bytes / lat.len().max(1)
    );
}

/// `n` exports of random subjects, one at a time; each must list the three reads primed.
async fn exports(http: &reqwest::Client, a: &Args, subjects: &[String], zip: bool, n: usize) {
    let mut seed = if zip {
        0xD1B5_4A32_D192_ED03
    } else {
        0x9E37_79B9_7F4A_7C15
    };
    let (mut lat, mut bytes) = (Vec::with_capacity(n), 0);
    for _ in 0..n {
        let s = &subjects[(next(&mut seed) % subjects.len() as u64) as usize];
        let q = if zip { "?format=zip" } else { "" };
        let t0 = Instant::now();
        let r = http
            .get(format!("{}/v1/subjects/{s}/export{q}", a.base))
            .bearer_auth(&a.admin)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(r.status().as_u16(), 200, "export of {s}");
        let body = r.bytes().await.expect("a body");
        lat.push(t0.elapsed().as_micros() as u64);
        bytes += body.len();
        if !zip {
            let v: Value = serde_json::from_slice(&body).expect("JSON");
            assert!(v["reads"].as_array().is_some_and(|r| r.len() >= 3), "{s}");
        }
    }
    print(
        if zip { "export zip" } else { "export json" },
        &mut lat,
        bytes,
    );
}

#[tokio::main]
async fn main() {
    let a = Arc::new(args());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let t0 = Instant::now();
    let next_i = Arc::new(Mutex::new(0usize));
    let found = Arc::new(Mutex::new(Vec::with_capacity(a.subjects)));
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (http, a, next_i, found) = (http.clone(), a.clone(), next_i.clone(), found.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = {
                    let mut n = next_i.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                if i >= a.subjects {
                    break;
                }
                let s = prime(&http, &a, i)
                    .await
                    .unwrap_or_else(|| panic!("priming {i}"));
                found.lock().unwrap().push(s);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let subjects = std::mem::take(&mut *found.lock().unwrap());
    let took = t0.elapsed().as_secs_f64();
    println!(
        "primed {} subjects with 3 audited reads each in {took:.1} s ({:.0} reads/s)",
        subjects.len(),
        3.0 * subjects.len() as f64 / took
    );
    // Let the sequencer integrate the reads' entries, so exports time their usual path.
    tokio::time::sleep(Duration::from_secs(2)).await;
    exports(&http, &a, &subjects, false, a.exports).await;
    exports(&http, &a, &subjects, true, a.exports / 4).await;
}
