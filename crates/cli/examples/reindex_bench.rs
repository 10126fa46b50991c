//! The blind-index key rotation benchmark of `bench/rotate_index.sh`: in a fresh SQLite data
//! directory, writes `--subjects` customers (each a record with one searchable field, its
//! email), then rotates the blind-index key `--runs` times and reports records indexed again
//! per second (each: its subject's key unwrapped, its searchable fields opened, normalised
//! and digested under the new key, the entries written in one transaction per page), and how
//! long deleting the old key's entries took. With `--load N`, N tasks write and read records
//! through the vault during every rotation.

mod args;
mod vault_load;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use args::{arg, median};
use custos_vault::{Paths, Principal, Vault};

#[tokio::main]
async fn main() {
    let subjects = arg("--subjects", 20_000);
    let runs = arg("--runs", 3);
    let batch = arg("--batch", custos_vault::REINDEX_BATCH);
    let load = arg("--load", 0);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let paths = Paths::in_dir(dir.path());
    custos_vault::init(&paths).await.expect("init");
    let vault = Arc::new(Vault::open(&paths).await.expect("open"));
    let started = Instant::now();
    vault.load_demo(subjects).await.expect("customers");
    eprintln!(
        "{subjects} customers written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut rates = Vec::new();
    for run in 0..runs {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let tasks = vault_load::spawn(&vault, load, (run + 1) * 10_000_000, &stop, &served);
        let report = vault
            .rotate_index(&Principal::Cli, batch, |_| {})
            .await
            .expect("a rotation");
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let rate = report.reindexed as f64 / report.seconds;
        eprintln!(
            "run {run}: key {}, {} records indexed again and {} old entries deleted in {:.2} s = {rate:.0} records/s{}",
            report.version,
            report.reindexed,
            report.dropped,
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
        "blind-index key rotation, SQLite, {subjects} customers, batch {batch}, load {load}: median {:.0} records/s over {runs} runs (whole command: re-index, finish, old entries deleted)",
        median(rates)
    );
}
