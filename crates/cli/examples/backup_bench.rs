//! The backup benchmark of `bench/backup.sh`: in a fresh SQLite data directory, writes
//! `--subjects` customers, then `--runs` times makes a backup, verifies it and restores it
//! into an emptied database, and reports each step's rate in MB of snapshot per second
//! (median of the runs). The goal is at least 50 MB/s for `backup create`.

mod args;

use std::time::Instant;

use args::{arg, median};
use custos_vault::{Paths, Vault};

#[tokio::main]
async fn main() {
    let subjects = arg("--subjects", 200_000);
    let runs = arg("--runs", 5);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let paths = Paths::in_dir(dir.path());
    custos_vault::init(&paths).await.expect("init");
    {
        let vault = std::sync::Arc::new(Vault::open(&paths).await.expect("open"));
        let started = Instant::now();
        vault.load_demo(subjects).await.expect("customers");
        eprintln!(
            "{subjects} customers written in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let (mut create, mut verify, mut restore) = (Vec::new(), Vec::new(), Vec::new());
    let mut size = 0u64;
    for run in 0..runs {
        let file = dir.path().join(format!("run{run}.custos-backup"));
        let t = Instant::now();
        let r = custos_vault::create_backup(&paths, &file, None, |_| {})
            .await
            .expect("backup create");
        let made = t.elapsed().as_secs_f64();
        size = r.manifest.payload_bytes;
        let mb = size as f64 / 1e6;

        let t = Instant::now();
        custos_vault::verify_backup(&paths, &file, None, |_| {})
            .await
            .expect("backup verify");
        let checked = t.elapsed().as_secs_f64();

        for f in ["custos.db", "custos.db-wal", "custos.db-shm"] {
            let _ = std::fs::remove_file(dir.path().join(f));
        }
        let t = Instant::now();
        custos_vault::restore_backup(&paths, &file, None, false, false, |_| {}, |_| {})
            .await
            .expect("backup restore");
        let restored = t.elapsed().as_secs_f64();
        std::fs::remove_file(&file).expect("remove the backup");
        eprintln!(
            "run {run}: {mb:.1} MB snapshot; create {made:.2} s ({:.0} MB/s), verify {checked:.2} s ({:.0} MB/s), restore {restored:.2} s ({:.0} MB/s)",
            mb / made,
            mb / checked,
            mb / restored
        );
        create.push(mb / made);
        verify.push(mb / checked);
        restore.push(mb / restored);
    }
    println!(
        "backup of {subjects} customers ({:.1} MB snapshot), median of {runs}: create {:.0} MB/s, verify {:.0} MB/s, restore {:.0} MB/s",
        size as f64 / 1e6,
        median(create),
        median(verify),
        median(restore)
    );
}
