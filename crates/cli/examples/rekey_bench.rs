//! The customers' data-key rotation benchmark of `bench/rotate_subjects.sh`: in a fresh
//! SQLite data directory, writes `--subjects` customers (each with its own data key and a
//! record of two fields), then rotates every customer's key `--runs` times and reports
//! customers rekeyed per second (each: its key unwrapped and a new one made and wrapped, its
//! fields opened and sealed again, all written back in one transaction). With `--load N`, N
//! tasks write and read records through the vault during every rotation.

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
    let batch = arg("--batch", custos_vault::REKEY_BATCH);
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
        // Every key made before this run began is replaced by it.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let tasks = vault_load::spawn(&vault, load, (run + 1) * 10_000_000, &stop, &served);
        let report = vault
            .rotate_subjects(&Principal::Cli, None, batch, |_| {})
            .await
            .expect("a rotation");
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let rate = report.rekeyed as f64 / report.seconds;
        eprintln!(
            "run {run}: {} customers rekeyed in {:.2} s = {rate:.0} customers/s{}",
            report.rekeyed,
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
        "customers' data-key rotation, SQLite, {subjects} customers, batch {batch}, load {load}: median {:.0} customers/s over {runs} runs",
        median(rates)
    );
}
