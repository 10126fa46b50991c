//! The peer of `bench/load.sh`: what a team builds by hand without a vault. Customers with the
//! same seven personal fields go straight into PostgreSQL, each field encrypted with pgcrypto's
//! `pgp_sym_encrypt`, the email also stored as an HMAC for lookups. The same phases as the
//! load generator (writes, reads by id, lookups by email) at the same concurrency, printed in
//! the same form. Nothing is audited, no purpose is checked, no field is withheld.
//!
//!   pgcrypto_peer --url postgres://postgres@127.0.0.1:5432/custos_peer [--records N]
//!                 [--seconds N] [--concurrency N]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{next, phase};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

mod common;

/// The application's keys, as a hand-rolled system keeps them: in its configuration.
const DATA_KEY: &str = "peer-data-key-0123456789abcdef0123456789abcdef";
const HMAC_KEY: &str = "peer-hmac-key-0123456789abcdef0123456789abcdef";
/// Connections, as many as one Custos instance keeps.
const POOL: usize = 16;

const SCHEMA: &str = "
CREATE EXTENSION IF NOT EXISTS pgcrypto;
DROP TABLE IF EXISTS customers;
CREATE TABLE customers (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name BYTEA, email BYTEA, email_hmac BYTEA NOT NULL, phone BYTEA, birth_date BYTEA,
    country BYTEA, address BYTEA, notes BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX customers_email_hmac ON customers (email_hmac);
";

const INSERT: &str = "INSERT INTO customers (name, email, email_hmac, phone, birth_date, country, address, notes) \
     VALUES (pgp_sym_encrypt($1, $8), pgp_sym_encrypt($2, $8), hmac(lower($2), $9, 'sha256'), \
     pgp_sym_encrypt($3, $8), pgp_sym_encrypt($4, $8), pgp_sym_encrypt($5, $8), \
     pgp_sym_encrypt($6, $8), pgp_sym_encrypt($7, $8)) RETURNING id::text";

const COLUMNS: &str = "id::text, pgp_sym_decrypt(name, $2), pgp_sym_decrypt(email, $2), \
     pgp_sym_decrypt(phone, $2), pgp_sym_decrypt(birth_date, $2), pgp_sym_decrypt(country, $2), \
     pgp_sym_decrypt(address, $2), pgp_sym_decrypt(notes, $2)";

struct Args {
    url: String,
    records: usize,
    seconds: u64,
    concurrency: usize,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        records: 0,
        seconds: 20,
        concurrency: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = v,
            "--records" => a.records = v.parse().expect("--records is a number"),
            "--seconds" => a.seconds = v.parse().expect("--seconds is a number"),
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency is a number"),
            _ => panic!(
                "unknown flag {flag}; use --url URL [--records N] [--seconds N] [--concurrency N]"
            ),
        }
    }
    assert!(!a.url.is_empty(), "--url is required");
    a
}

/// The seven fields of customer `t-i`, as the load generator sends them.
fn customer(t: usize, i: u64) -> [String; 7] {
    [
        format!("Load Tester {t}-{i}"),
        format!("load{t}-{i}@bench.example"),
        format!("+4420794{:05}", i % 100_000),
        "1980-02-29".into(),
        "GB".into(),
        format!("{{\"lines\":[\"{i} Bench Road\"],\"locality\":\"London\",\"country\":\"GB\"}}"),
        "Created by the load benchmark.".into(),
    ]
}

async fn insert(pool: &Pool, t: usize, i: u64) -> Option<(String, String)> {
    let c = pool.get().await.ok()?;
    let st = c.prepare_cached(INSERT).await.ok()?;
    let f = customer(t, i);
    let row = c
        .query_one(
            &st,
            &[
                &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &DATA_KEY, &HMAC_KEY,
            ],
        )
        .await
        .map_err(|e| eprintln!("insert: {e}"))
        .ok()?;
    Some((row.get(0), f[1].clone()))
}

#[tokio::main]
async fn main() {
    let a = args();
    let config: tokio_postgres::Config = a.url.parse().expect("a postgres:// URL");
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(POOL)
        .runtime(Runtime::Tokio1)
        .build()
        .unwrap();
    pool.get()
        .await
        .unwrap()
        .batch_execute(SCHEMA)
        .await
        .unwrap();

    if a.records > 0 {
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        let per = a.records.div_ceil(a.concurrency);
        for t in 0..a.concurrency {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..per as u64 {
                    insert(&pool, 1_000_000 + t, i)
                        .await
                        .expect("preload insert");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        println!(
            "loaded {} customers in {:.0} s",
            per * a.concurrency,
            t0.elapsed().as_secs_f64()
        );
    }

    let duration = Duration::from_secs(a.seconds);
    let written: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (p, w) = (pool.clone(), written.clone());
    phase("writes", a.concurrency, duration, move |t, i| {
        let (pool, written) = (p.clone(), w.clone());
        async move {
            match insert(&pool, t, i).await {
                Some(row) => {
                    written.lock().unwrap().push(row);
                    true
                }
                None => false,
            }
        }
    })
    .await
    .print();
    let written = Arc::new(std::mem::take(&mut *written.lock().unwrap()));
    assert!(!written.is_empty(), "the write phase wrote nothing to read");

    let (p, w) = (pool.clone(), written.clone());
    phase("reads", a.concurrency, duration, move |t, i| {
        let pool = p.clone();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ ((t as u64 + 1) << 32 | i);
        let id = w[(next(&mut seed) % w.len() as u64) as usize].0.clone();
        async move {
            let Ok(c) = pool.get().await else {
                return false;
            };
            let sql = format!("SELECT {COLUMNS} FROM customers WHERE id = CAST($1::text AS uuid)");
            let Ok(st) = c.prepare_cached(&sql).await else {
                return false;
            };
            matches!(c.query(&st, &[&id, &DATA_KEY]).await, Ok(rows) if rows.len() == 1)
        }
    })
    .await
    .print();

    let (p, w) = (pool.clone(), written.clone());
    phase("lookups", a.concurrency, duration, move |t, i| {
        let pool = p.clone();
        let mut seed = 0xD1B5_4A32_D192_ED03u64 ^ ((t as u64 + 1) << 32 | i);
        let email = w[(next(&mut seed) % w.len() as u64) as usize].1.clone();
        async move {
            let Ok(c) = pool.get().await else { return false };
            let sql = format!(
                "SELECT {COLUMNS} FROM customers WHERE email_hmac = hmac(lower($1), $3, 'sha256')"
            );
            let Ok(st) = c.prepare_cached(&sql).await else { return false };
            matches!(c.query(&st, &[&email, &DATA_KEY, &HMAC_KEY]).await, Ok(rows) if rows.len() == 1)
        }
    })
    .await
    .print();
}
