//! The erasure benchmark of `bench/erase.sh`: in a fresh data directory, gives each of
//! `--subjects` subjects `--records` records (plus `--others` subjects of one record, so the
//! tables are not the subject's alone), then erases the subjects one by one through the vault,
//! as `POST /v1/subjects/{id}/erase` does, and prints the median and the spread of the time
//! each erasure took: the shredding transaction, and the whole call with its certificate.

mod args;

use std::sync::Arc;
use std::time::Instant;

use args::arg;
use custos_core::personal::fields_of;
use custos_vault::{Paths, Principal, Vault};
use serde_json::json;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let subjects = arg("--subjects", 7);
    let records = arg("--records", 1000);
    let others = arg("--others", 10_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let paths = Paths::in_dir(dir.path());
    custos_vault::init(&paths).await.expect("init");
    let vault = Arc::new(Vault::open(&paths).await.expect("open"));
    let write = |subject, i: usize| {
        let vault = Arc::clone(&vault);
        async move {
            let body = fields_of(
                json!({"email": format!("bench{i}@example.com"), "name": "Bench Subject"})
                    .as_object()
                    .expect("an object")
                    .clone(),
            );
            vault
                .put_record(&Principal::Cli, "customers", subject, &body)
                .await
                .expect("a record")
        }
    };
    // Many writes in flight at once, so that group commit carries them.
    let load = |subject, n: usize, from: usize| {
        let write = &write;
        async move {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..n {
                if set.len() >= 64 {
                    set.join_next().await;
                }
                set.spawn(write(subject, from + i));
            }
            while set.join_next().await.is_some() {}
        }
    };
    load(None, others, 0).await;
    let mut times = Vec::new();
    let mut certs = Vec::new();
    for s in 0..subjects {
        let first = write(None, 1_000_000 + s * records).await;
        load(Some(first.subject_id), records - 1, 1_000_001 + s * records).await;
        // A server's sequencer keeps the queue short; so does the bench before it times.
        while vault.sequence_audit().await.expect("sequenced") > 0 {}
        let t = Instant::now();
        let c = vault
            .erase_subject(&Principal::Cli, first.subject_id)
            .await
            .expect("erased");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        // The certificate alone, signed again: what of the call is the proof, not the shredding.
        let t = Instant::now();
        vault
            .erasure_certificate(&Principal::Cli, first.subject_id)
            .await
            .expect("a certificate");
        certs.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(
            c.certificate.erasure.records_erased["customers"],
            records as u64
        );
    }
    times.sort_by(f64::total_cmp);
    certs.sort_by(f64::total_cmp);
    let entries = vault.audit_size().await.expect("the log's size");
    println!(
        "the certificate alone (an inclusion proof over {entries} entries, signed): median {:.1} ms",
        percentile(&certs, 0.5)
    );
    println!(
        "erase a subject of {records} records ({subjects} subjects, {others} others in the vault): \
         median {:.1} ms, min {:.1} ms, max {:.1} ms (with its signed certificate)",
        percentile(&times, 0.5),
        times[0],
        times[times.len() - 1]
    );
}
