//! The root key rotation benchmark of `bench/rotate_root.sh`: in a fresh SQLite data
//! directory, writes `--subjects` customers (each with its own data key), then rotates the
//! root key `--runs` times, each to a new version, and reports the re-wrap rate (keys wrapped
//! again per second, from the rotation's first batch to its last, without the final look that
//! waits for servers to read the key file again). With `--load N`, N tasks write and read
//! records through the vault during every rotation. With `--token`, the root key is in the
//! PKCS#11 token `bench/rotate_root.sh --token` made (SoftHSM2): every unwrap and wrap is
//! done inside it.

mod args;
mod vault_load;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use args::{arg, median};
use custos_vault::{Paths, Principal, Vault};

#[tokio::main]
async fn main() {
    let subjects = arg("--subjects", 100_000);
    let runs = arg("--runs", 5);
    let batch = arg("--batch", custos_vault::ROTATION_BATCH);
    let load = arg("--load", 0);
    let token = std::env::args().any(|a| a == "--token");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let paths = Paths::in_dir(dir.path());
    if token {
        // The token, its configuration (SOFTHSM2_CONF) and its PIN are the script's.
        std::fs::write(
            &paths.inventory,
            format!(
                "{}\n[root_key.pkcs11]\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\n\
                 token = \"bench\"\npin_env = \"CUSTOS_BENCH_TOKEN_PIN\"\n",
                custos_core::inventory::EXAMPLE
            ),
        )
        .expect("custos.toml");
    }
    custos_vault::init(&paths).await.expect("init");
    let vault = Arc::new(Vault::open(&paths).await.expect("open"));
    let started = Instant::now();
    vault.load_demo(subjects).await.expect("customers");
    eprintln!(
        "{subjects} customers written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut rates = Vec::new();
    let mut next = subjects;
    for run in 0..runs {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let tasks = vault_load::spawn(&vault, load, next, &stop, &served);
        let mut first: Option<(Instant, u64)> = None;
        let mut last = (Instant::now(), 0u64);
        let report = vault
            .rotate_root(&Principal::Cli, batch, |p| {
                let now = Instant::now();
                if first.is_none() {
                    first = Some((now, p.done));
                }
                last = (now, p.done);
            })
            .await
            .expect("a rotation");
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        next += load * 1_000_000 + 1;
        let (t0, d0) = first.expect("progress was reported");
        let secs = last.0.duration_since(t0).as_secs_f64();
        let rate = (last.1 - d0) as f64 / secs;
        eprintln!(
            "run {run}: to version {}: {} keys in {secs:.2} s = {rate:.0} keys/s ({:.1} s with the final look){}",
            report.target,
            report.rewrapped,
            report.seconds,
            if load > 0 {
                format!(
                    ", {} writes+reads served meanwhile",
                    served.load(Ordering::Relaxed)
                )
            } else {
                String::new()
            }
        );
        rates.push(rate);
    }
    println!(
        "root key rotation, SQLite, root key in {}, {subjects} subjects, batch {batch}, load {load}: median {:.0} keys/s over {runs} runs",
        if token {
            "a PKCS#11 token (SoftHSM2)"
        } else {
            "root.key"
        },
        median(rates)
    );
}
