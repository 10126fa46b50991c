//! Custos on PostgreSQL, end to end: two servers on one database are one vault, a server
//! killed mid-load loses nothing and leaves one verifiable tree, and a database outage is a
//! 503 the server recovers from by itself. Skipped (loudly) only without
//! `CUSTOS_TEST_POSTGRES_URL`, which `.ci/run` sets.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custos_core::inventory::EXAMPLE;
use custos_store::testing::Schema;
use serde_json::{Value, json};

use crate::{Server, client, create_key, custos, stderr, stdout};

/// A data directory whose custos.toml names the database, initialised by `custos init`,
/// with an admin key.
pub(crate) fn initialised_on(url: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("custos.toml"),
        // The loads here read far more subjects in an hour than a new caller's floor; the
        // detector (tested elsewhere) would add an alert entry to the exact counts below
        // whenever its round happens to run before the servers stop.
        format!("database = \"{url}\"\n{EXAMPLE}\n[breach]\nread_floor = 1000000\n"),
    )
    .unwrap();
    let o = custos(dir.path(), &["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("database   postgres://"),
        "{}",
        stderr(&o)
    );
    let key = create_key(dir.path(), "admin", "admin");
    (dir, key)
}

pub(crate) async fn create(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    email: &str,
) -> reqwest::Response {
    http.post(format!("{base}/v1/collections/customers/records"))
        .bearer_auth(key)
        .json(&json!({"fields": {"email": email, "notes": "on postgres"}}))
        .send()
        .await
        .unwrap()
}

pub(crate) async fn read(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
) -> reqwest::Response {
    http.get(format!(
        "{base}/v1/collections/customers/records/{id}?purpose=support"
    ))
    .bearer_auth(key)
    .send()
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_one_database_are_one_vault() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let (dir, admin) = initialised_on(&schema.url);
    let a = Server::start(dir.path(), &[]);
    let b = Server::start(dir.path(), &[]);
    let http = client();

    // Written through one, read through the other.
    let r = create(&http, &a.base, &admin, "ada@one-vault.example").await;
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = read(&http, &b.base, &admin, &id).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"]["email"],
        "ada@one-vault.example"
    );

    // A key works on both, and once revoked is refused by both at once.
    let temp = create_key(dir.path(), "temp", "support_agent");
    for s in [&a, &b] {
        assert_eq!(
            read(&http, &s.base, &temp, &id).await.status().as_u16(),
            200
        );
    }
    let o = custos(dir.path(), &["apikey", "revoke", "temp"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for s in [&a, &b] {
        assert_eq!(
            read(&http, &s.base, &temp, &id).await.status().as_u16(),
            401
        );
    }

    // Both write and read at once; the log stays one tree that verifies.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (http, admin) = (http.clone(), admin.clone());
        let base = if w % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        tasks.push(tokio::spawn(async move {
            for i in 0..15 {
                let r = create(&http, &base, &admin, &format!("w{w}-{i}@one-vault.example")).await;
                assert_eq!(r.status().as_u16(), 201);
                let id = r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                assert_eq!(read(&http, &base, &admin, &id).await.status().as_u16(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    a.stop();
    b.stop();
    let v = custos(dir.path(), &["audit", "verify"]);
    let out = stdout(&v);
    assert!(v.status.success(), "{out}{}", stderr(&v));
    let size: usize = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    // Three key acts (admin created, temp created and revoked), 1 + 120 creates, 1 + 120
    // reads by admin, 2 by temp: each exactly once. Requests with a revoked key are refused
    // before there is an actor to audit.
    assert_eq!(size, 3 + 121 + 121 + 2, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_mid_load_loses_no_acknowledged_entry() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let (dir, admin) = initialised_on(&schema.url);
    let a = Server::start(dir.path(), &[]);
    let b = Server::start(dir.path(), &[]);
    let (base_a, base_b) = (a.base.clone(), b.base.clone());
    let acked = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let kill_at = Instant::now() + Duration::from_millis(1500);
    let stop_at = kill_at + Duration::from_millis(1500);
    let mut writers = Vec::new();
    for w in 0..12 {
        let (acked, admin) = (Arc::clone(&acked), admin.clone());
        let base = if w % 2 == 0 {
            base_a.clone()
        } else {
            base_b.clone()
        };
        writers.push(tokio::spawn(async move {
            let http = client();
            let mut i = 0;
            while Instant::now() < stop_at {
                i += 1;
                let sent = http
                    .post(format!("{base}/v1/collections/customers/records"))
                    .bearer_auth(&admin)
                    .json(&json!({"fields": {"email": format!("w{w}-{i}@kill.example")}}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let Ok(v) = r.json::<Value>().await else {
                            continue;
                        };
                        acked.lock().unwrap().push((
                            v["id"].as_str().unwrap().to_owned(),
                            v["subject_id"].as_str().unwrap().to_owned(),
                        ));
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    // The killed server's writers find nobody listening.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }));
    }
    tokio::time::sleep_until(kill_at.into()).await;
    // Which server holds the sequencer lease is a race; either way one of them dies mid-load.
    a.kill();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 50, "the load wrote: {}", acked.len());

    // The survivor serves everything, and its trail holds each acknowledged create once.
    let http = client();
    let mut creates_per_record = BTreeMap::<String, usize>::new();
    for (id, subject) in &acked {
        assert_eq!(
            read(&http, &base_b, &admin, id).await.status().as_u16(),
            200
        );
        let trail: Value = http
            .get(format!("{base_b}/v1/audit?subject_id={subject}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for e in trail["entries"].as_array().unwrap() {
            if e["entry"]["action"] == "record.create" {
                *creates_per_record
                    .entry(e["entry"]["record_id"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
    }
    for (id, _) in &acked {
        assert_eq!(
            creates_per_record.get(id),
            Some(&1),
            "the create of acknowledged record {id} is in the log exactly once"
        );
    }
    b.stop();
    let v = custos(dir.path(), &["audit", "verify"]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));
}

/// A TCP proxy to the database that the test can cut and restore.
struct Proxy {
    addr: String,
    target: String,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(target: &str, addr: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let p = Proxy {
            addr: listener.local_addr().unwrap().to_string(),
            target: target.to_owned(),
            tasks: Arc::default(),
        };
        let (target, tasks) = (p.target.clone(), Arc::clone(&p.tasks));
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(conn.abort_handle());
            }
        });
        p.tasks.lock().unwrap().push(accept.abort_handle());
        p
    }

    /// Closes the listener and every connection through it.
    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

async fn status_and_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_is_a_503_and_the_server_recovers_by_itself() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let proxy = Proxy::start(&schema.server_addr(), "127.0.0.1:0").await;
    let (dir, admin) = initialised_on(&schema.url_via(&proxy.addr));
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let r = create(&http, &server.base, &admin, "grace@outage.example").await;
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, code) = status_and_code(read(&http, &server.base, &admin, &id).await).await;
    assert_eq!((status, code.as_str()), (503, "unavailable"));
    let (status, code) =
        status_and_code(create(&http, &server.base, &admin, "lost@outage.example").await).await;
    assert_eq!((status, code.as_str()), (503, "unavailable"));
    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(
        health.status().as_u16(),
        503,
        "health says the database is gone"
    );

    // The database comes back on the same address; no restart of custos.
    let _back = Proxy::start(&proxy.target, &proxy.addr).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = read(&http, &server.base, &admin, &id).await;
        if r.status().as_u16() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = create(&http, &server.base, &admin, "back@outage.example").await;
    assert_eq!(r.status().as_u16(), 201);
    let log = server.stop();
    assert!(!log.contains("grace@outage.example"), "no value in the log");
    let v = custos(dir.path(), &["audit", "verify"]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));
}

/// `serve` on a PostgreSQL database older than the binary refuses and says what to run.
#[tokio::test(flavor = "multi_thread")]
async fn serve_asks_for_migrate_on_an_unmigrated_database() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let o = custos(dir.path(), &["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = custos_with_database(dir.path(), &schema.url, &["apikey", "list"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("older than this binary's") && stderr(&o).contains("custos migrate"),
        "{}",
        stderr(&o)
    );
    let o = custos_with_database(dir.path(), &schema.url, &["migrate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("migrated from version 0 to"),
        "{}",
        stdout(&o)
    );
    let o = custos_with_database(dir.path(), &schema.url, &["migrate"]);
    assert!(stdout(&o).contains("nothing to do"), "{}", stdout(&o));
    let o = custos_with_database(dir.path(), &schema.url, &["apikey", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn custos_with_database(dir: &Path, url: &str, args: &[&str]) -> std::process::Output {
    crate::custos_env(dir, args, &[("CUSTOS_DATABASE_URL", url)])
}

fn last_line(o: &std::process::Output) -> String {
    stdout(o).lines().last().unwrap_or_default().to_owned()
}

/// The root a `db copy` or `audit verify` printed.
fn root_of(line: &str) -> String {
    line.split("root ")
        .nth(1)
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn db_copy_moves_a_vault_to_postgres_and_back_and_survives_an_interruption() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--demo", "--demo-records", "3000"]);
    let out = std::fs::read_to_string(&server.out).unwrap();
    let key = out
        .split("Demo admin API key (shown once): ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    server.stop();

    // Interrupted: killed once the first records have landed in the target.
    let mut copy = std::process::Command::new(crate::BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["db", "copy", "--to", &schema.url])
        .env("CUSTOS_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pg = custos_store::testing::connect(&schema.url).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let landed = match pg.query_one("SELECT count(*) FROM records", &[]).await {
            Ok(r) => r.get::<_, i64>(0),
            Err(_) => 0, // not migrated yet
        };
        if landed > 0 || copy.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the copy wrote nothing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let interrupted = copy.try_wait().unwrap().is_none();
    let _ = copy.kill();
    let _ = copy.wait();
    eprintln!("the first copy was interrupted: {interrupted}");

    // Run again: it finishes, with every row once and the same root on both sides.
    let o = custos(dir.path(), &["db", "copy", "--to", &schema.url]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("records              3000 ("),
        "{}",
        stdout(&o)
    );
    let copied_root = root_of(&last_line(&o));
    assert_eq!(copied_root.len(), 64, "{}", stdout(&o));
    let v = custos(dir.path(), &["audit", "verify"]);
    assert_eq!(root_of(&last_line(&v)), copied_root, "the source's root");
    let v = custos_with_database(dir.path(), &schema.url, &["audit", "verify"]);
    assert!(v.status.success(), "{}", stderr(&v));
    assert_eq!(root_of(&last_line(&v)), copied_root, "the target's root");
    // The demo's operator came along, their address opening under the copied key.
    assert!(
        stdout(&o).contains("operators               1"),
        "{}",
        stdout(&o)
    );
    let ops = custos_with_database(dir.path(), &schema.url, &["operator", "list"]);
    assert!(ops.status.success(), "{}", stderr(&ops));
    assert!(
        stdout(&ops).contains("privacy.officer@example.com"),
        "{}",
        stdout(&ops)
    );

    // The vault works on PostgreSQL: same keys, same records, searchable.
    std::fs::write(
        dir.path().join("custos.toml"),
        format!("database = \"{}\"\n{EXAMPLE}", schema.url),
    )
    .unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let email = custos_vault_demo_email();
    let found: Value = http
        .get(server.url(&format!(
            "/v1/collections/customers/records?purpose=support&email={email}"
        )))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        found["records"].as_array().map(Vec::len),
        Some(1),
        "{found}"
    );
    server.stop();

    // And back to a new SQLite file.
    let back = dir.path().join("back.db");
    let o = custos(
        dir.path(),
        &[
            "db",
            "copy",
            "--to",
            &format!("sqlite://{}", back.display()),
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let root = root_of(&last_line(&o));
    let v = custos_with_database(
        dir.path(),
        &format!("sqlite://{}", back.display()),
        &["audit", "verify"],
    );
    assert_eq!(root_of(&last_line(&v)), root);

    // A different vault is never merged into this one.
    let other = tempfile::tempdir().unwrap();
    assert!(custos(other.path(), &["init"]).status.success());
    let o = custos(other.path(), &["db", "copy", "--to", &schema.url]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("holds another vault"), "{}", stderr(&o));
}

fn custos_vault_demo_email() -> String {
    custos_vault::demo_customer(0)["email"]
        .expose_secret()
        .as_str()
        .unwrap()
        .to_owned()
}

/// Canary values stored through the API appear nowhere in the PostgreSQL tables, neither as
/// text nor as the hex that `bytea` columns print as.
#[tokio::test(flavor = "multi_thread")]
async fn no_personal_value_reaches_postgres_in_plaintext() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let (dir, admin) = initialised_on(&schema.url);
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let canaries = [
        "canarypgname7731",
        "canary.pg.7731@example.org",
        "canary pg note 7731 with words",
    ];
    let r = http
        .post(server.url("/v1/collections/customers/records"))
        .bearer_auth(&admin)
        .json(&json!({"fields": {"name": canaries[0], "email": canaries[1], "notes": canaries[2]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = read(&http, &server.base, &admin, &id).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"]["notes"],
        canaries[2]
    );
    let log = server.stop();

    let pg = custos_store::testing::connect(&schema.url).await;
    let tables: Vec<String> = pg
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.contains(&"records".to_owned()), "{tables:?}");
    let mut scanned = 0;
    for t in &tables {
        for row in pg
            .query(&format!("SELECT t::text FROM {t} t"), &[])
            .await
            .unwrap()
        {
            let text: String = row.get(0);
            scanned += text.len();
            for c in canaries {
                for form in [c.to_owned(), hex::encode(c), hex::encode(&c[..12])] {
                    assert!(!text.contains(&form), "{form:?} found in table {t}");
                }
            }
        }
    }
    assert!(scanned > 1_000, "the tables were scanned: {scanned} bytes");
    for c in canaries {
        assert!(!log.contains(c), "{c:?} in the server's log");
    }
}
