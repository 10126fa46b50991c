//! The load generator of `bench/load.sh`: drives a running `custos serve` over HTTP from its
//! own process, first with writes, then with audited reads of the records it wrote, and prints
//! throughput and latency percentiles of each phase.

use std::time::{Duration, Instant};

use serde_json::json;

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

struct Phase {
    name: &'static str,
    ok: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Phase {
    fn print(&mut self) {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| {
            let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
            self.latencies_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
        };
        println!(
            "{:<7} {:>8} ok {:>5} errors  {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
            self.name,
            self.ok,
            self.errors,
            self.ok as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99)
        );
    }
}

/// A per-task xorshift generator: which record to read next.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::main]
async fn main() {
    let a = args();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .unwrap();
    let duration = Duration::from_secs(a.seconds);

    // Writes: new customers with the seven personal fields, each a new subject.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..a.concurrency {
        let (http, base, key) = (http.clone(), a.base.clone(), a.key.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ids, mut lat, mut errors) = (Vec::new(), Vec::new(), 0);
            let mut i = 0u64;
            while start.elapsed() < duration {
                i += 1;
                let body = json!({"fields": {
                    "name": format!("Load Tester {t}-{i}"),
                    "email": format!("load{t}-{i}@bench.example"),
                    "phone": format!("020 7946 {:04}", i % 10_000),
                    "birth_date": "1980-02-29",
                    "country": "GB",
                    "address": {"lines": [format!("{i} Bench Road")], "locality": "London", "country": "GB"},
                    "notes": "Created by the load benchmark."
                }});
                let t0 = Instant::now();
                let r = http.post(format!("{base}/v1/collections/customers/records")).bearer_auth(&key).json(&body).send().await;
                match r {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let v: serde_json::Value = r.json().await.unwrap();
                        lat.push(t0.elapsed().as_micros() as u64);
                        ids.push(v["id"].as_str().unwrap().to_owned());
                    }
                    _ => errors += 1,
                }
            }
            (ids, lat, errors)
        }));
    }
    let mut ids = Vec::new();
    let mut w = Phase {
        name: "writes",
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        let (i, l, e) = t.await.unwrap();
        w.ok += i.len();
        ids.extend(i);
        w.latencies_us.extend(l);
        w.errors += e;
    }
    w.elapsed = start.elapsed();
    w.print();

    // Audited reads: random records among those written, for a purpose the key may use.
    assert!(!ids.is_empty(), "the write phase wrote nothing to read");
    let ids = std::sync::Arc::new(ids);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..a.concurrency {
        let (http, base, key, ids) = (http.clone(), a.base.clone(), a.key.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut lat, mut errors) = (0, Vec::new(), 0);
            let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 + 1);
            while start.elapsed() < duration {
                let id = &ids[(next(&mut seed) % ids.len() as u64) as usize];
                let t0 = Instant::now();
                let r = http
                    .get(format!(
                        "{base}/v1/collections/customers/records/{id}?purpose=billing"
                    ))
                    .bearer_auth(&key)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 200 => {
                        let _ = r.bytes().await;
                        lat.push(t0.elapsed().as_micros() as u64);
                        ok += 1;
                    }
                    _ => errors += 1,
                }
            }
            (ok, lat, errors)
        }));
    }
    let mut r = Phase {
        name: "reads",
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        let (o, l, e) = t.await.unwrap();
        r.ok += o;
        r.latencies_us.extend(l);
        r.errors += e;
    }
    r.elapsed = start.elapsed();
    r.print();
}
