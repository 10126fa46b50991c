//! The blast-radius benchmark of `bench/blast_radius.sh`: in a fresh data directory, writes
//! `--subjects` customers, then makes `--entries` audited reads through the vault (a
//! `--leaked` share of them by the key whose blast radius is asked, over a tenth of the
//! subjects; the rest by nine other keys), integrates the log, and times
//! `Vault::blast_radius` for the leaked key and for the last ten minutes of everyone's reads.
//! Prints the medians of `--runs` runs, the log's size and the answer's counts.

mod args;

use std::sync::Arc;
use std::time::Instant;

use args::{arg, median};
use custos_core::personal::fields_of;
use custos_vault::{BlastQuery, Paths, Principal, Vault};
use serde_json::json;

#[tokio::main]
async fn main() {
    let subjects = arg("--subjects", 10_000);
    let entries = arg("--entries", 1_000_000);
    let leaked_per_mille = arg("--leaked", 50);
    let runs = arg("--runs", 5);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let paths = Paths::in_dir(dir.path());
    custos_vault::init(&paths).await.expect("init");
    let vault = Arc::new(Vault::open(&paths).await.expect("open"));
    let started = Instant::now();
    let mut ids = Vec::with_capacity(subjects);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..subjects {
        if set.len() >= 64 {
            ids.push(set.join_next().await.unwrap().unwrap());
        }
        let vault = Arc::clone(&vault);
        set.spawn(async move {
            let body = fields_of(
                json!({"email": format!("blast{i}@example.com"), "name": "Blast Subject", "country": if i % 3 == 0 { "DE" } else { "GB" }})
                    .as_object()
                    .unwrap()
                    .clone(),
            );
            vault
                .put_record(&Principal::Cli, "customers", None, &body)
                .await
                .expect("a record")
                .id
        });
    }
    while let Some(id) = set.join_next().await {
        ids.push(id.unwrap());
    }
    eprintln!(
        "{subjects} customers written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let ids = Arc::new(ids);
    let leaked_every = 1000 / leaked_per_mille.max(1);
    for i in 0..entries {
        if set.len() >= 64 {
            set.join_next().await;
        }
        let (v, ids) = (Arc::clone(&vault), Arc::clone(&ids));
        set.spawn(async move {
            let (name, record) = if i % leaked_every == 0 {
                (
                    "leaked".to_owned(),
                    ids[(i / leaked_every) % (ids.len() / 10).max(1)],
                )
            } else {
                (format!("app{}", i % 9), ids[i % ids.len()])
            };
            let p = Principal::ApiKey {
                name,
                role: "billing_service".into(),
            };
            v.get_record(&p, "customers", record, Some("billing"))
                .await
                .expect("a read");
            record
        });
        if i % 100_000 == 99_999 {
            while vault.sequence_audit().await.expect("sequenced") > 0 {}
            eprintln!(
                "{} reads in {:.0} s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    while set.join_next().await.is_some() {}
    while vault.sequence_audit().await.expect("sequenced") > 0 {}
    let size = vault.audit_head().await.expect("a head").size;
    eprintln!(
        "log of {size} entries ready in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let mut by_key = Vec::new();
    let mut answer = None;
    for _ in 0..runs {
        let q = BlastQuery {
            api_key: Some("leaked".into()),
            ..BlastQuery::default()
        };
        let t = Instant::now();
        let r = vault
            .blast_radius(&Principal::Cli, &q)
            .await
            .expect("a radius");
        by_key.push(t.elapsed().as_secs_f64());
        answer = Some(r);
    }
    let r = answer.expect("a run");
    let to = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut window = Vec::new();
    let mut in_window = 0;
    for _ in 0..runs {
        let q = BlastQuery {
            from_ms: Some(to - 600_000),
            to_ms: Some(to),
            ..BlastQuery::default()
        };
        let t = Instant::now();
        let w = vault
            .blast_radius(&Principal::Cli, &q)
            .await
            .expect("a radius");
        window.push(t.elapsed().as_secs_f64());
        in_window = w.reads;
    }
    println!("audit log: {size} entries; {entries} reads by 10 keys over {subjects} subjects");
    println!(
        "blast radius of the leaked key: median {:.3} s over {runs} runs ({} reads, {} subjects, {} records, jurisdictions {:?})",
        median(by_key),
        r.reads,
        r.subjects.len(),
        r.records,
        r.jurisdictions
    );
    println!(
        "blast radius of the last 10 minutes, every caller: median {:.3} s ({in_window} reads)",
        median(window)
    );
}
