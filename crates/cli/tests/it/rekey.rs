//! Customers' data keys rotated with the real binary: under a load of new records, records of
//! existing customers and updates, every write, read and search succeeds and nothing is lost; a
//! rotation killed with SIGKILL half-way resumes and finishes; afterwards every key older than
//! the rotation is replaced, every ciphertext is under its subject's new key (record fields
//! and a request's reason), nothing is readable only by an old key, and the log verifies.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::postgres::{create, read};
use crate::{Server, api, client, custos, initialised, kill_half_way, stderr, stdout};

/// Each subject key's data-key version and creation time.
type Keys = Vec<(i64, i64)>;
/// Every field ciphertext's data-key version, with its subject's key version.
type Sealed = Vec<(u32, i64)>;

fn key_rows(dir: &Path) -> (Keys, Sealed) {
    let c = rusqlite::Connection::open(dir.join("custos.db")).unwrap();
    let keys = c
        .prepare("SELECT version, created_ms FROM subject_keys")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut fields = Vec::new();
    let mut st = c
        .prepare("SELECT r.fields, k.version FROM records r JOIN subject_keys k ON k.subject_id = r.subject_id")
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
        .unwrap();
    for row in rows {
        let (blob, key_version) = row.unwrap();
        for ct in custos_store::decode_fields(&blob).unwrap().values() {
            fields.push((
                u32::from_be_bytes([ct[1], ct[2], ct[3], ct[4]]),
                key_version,
            ));
        }
    }
    (keys, fields)
}

/// A record this test wrote: its id, its subject, and the email it holds now.
pub(crate) type Written = (String, String, String);

/// Writes through `servers.0` and reads back through `servers.1` until `done`: a new
/// customer, a record of one of its customers, or an update, then a read of one of its
/// records, each of which must succeed with what it wrote last. Returns its records.
pub(crate) async fn worker(
    w: usize,
    servers: (String, String),
    key: String,
    mut mine: Vec<Written>,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<Written> {
    let http = client();
    let (writer, reader) = servers;
    let mut i = 0;
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        i += 1;
        let at = (i * 7) % mine.len();
        let (id, subject, _) = mine[at].clone();
        let email = format!("w{w}-{i}@rekey.example");
        match i % 3 {
            0 => {
                let r = create(&http, &writer, &key, &email).await;
                assert_eq!(
                    r.status().as_u16(),
                    201,
                    "a new customer during the rotation"
                );
                let b: Value = r.json().await.unwrap();
                let (id, subject) = (b["id"].as_str(), b["subject_id"].as_str());
                mine.push((id.unwrap().into(), subject.unwrap().into(), email));
            }
            1 => {
                let (s, b) = api(
                    "POST",
                    format!("{writer}/v1/collections/customers/records"),
                    &key,
                    Some(json!({"subject_id": subject, "fields": {"email": email}})),
                )
                .await;
                assert_eq!(s, 201, "a record of a customer during the rotation: {b}");
                mine.push((b["id"].as_str().unwrap().into(), subject, email));
            }
            _ => {
                let (s, b) = api(
                    "PATCH",
                    format!("{writer}/v1/collections/customers/records/{id}"),
                    &key,
                    Some(json!({"fields": {"email": email}})),
                )
                .await;
                assert!(
                    s == 200 || s == 204,
                    "an update during the rotation: {s} {b}"
                );
                mine[at].2 = email;
            }
        }
        let (id, _, email) = mine[(i * 11) % mine.len()].clone();
        let r = read(&http, &reader, &key, &id).await;
        assert_eq!(r.status().as_u16(), 200, "a read during the rotation");
        assert_eq!(r.json::<Value>().await.unwrap()["fields"]["email"], email);
        assert!(
            search(&reader, &key, &email).await.contains(&id),
            "a search during the rotation did not find {id}"
        );
    }
    mine
}

/// The ids of the customers records a search by email finds.
pub(crate) async fn search(base: &str, key: &str, email: &str) -> Vec<String> {
    let (s, body) = api(
        "GET",
        format!("{base}/v1/collections/customers/records?purpose=support&email={email}"),
        key,
        None,
    )
    .await;
    assert_eq!(s, 200, "a search: {body}");
    body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Customers written through the API before a rotation: id, subject and email of each.
pub(crate) async fn seed(base: &str, key: &str, n: usize) -> Vec<Written> {
    let http = client();
    let mut out = Vec::new();
    for i in 0..n {
        let email = format!("before-{i}@rekey.example");
        let r = create(&http, base, key, &email).await;
        assert_eq!(r.status().as_u16(), 201);
        let b: Value = r.json().await.unwrap();
        out.push((
            b["id"].as_str().unwrap().to_owned(),
            b["subject_id"].as_str().unwrap().to_owned(),
            email,
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn customer_keys_rotate_under_load_and_a_killed_rotation_resumes() {
    let (dir, key) = initialised();
    {
        let vault = Arc::new(
            custos_vault::Vault::open(&custos_vault::Paths::in_dir(dir.path()))
                .await
                .unwrap(),
        );
        vault.load_demo(600).await.unwrap();
    }
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let http = client();

    // A customer with a request whose reason is sealed under their key.
    let r = create(&http, &base, &key, "reasoned@rekey.example").await;
    let subject = r.json::<Value>().await.unwrap()["subject_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, req) = api(
        "POST",
        format!("{base}/v1/requests"),
        &key,
        Some(json!({"subject_id": subject, "kind": "access", "channel": "email"})),
    )
    .await;
    assert_eq!(s, 201, "{req}");
    let req = req["id"].as_str().unwrap().to_owned();
    let reason = "rekey-canary-reason asked twice by letter";
    let (s, body) = api(
        "POST",
        format!("{base}/v1/requests/{req}/reject"),
        &key,
        Some(json!({"reason": reason})),
    )
    .await;
    assert_eq!(s, 200, "{body}");

    let first = seed(&base, &key, 42).await;
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;

    // The load: new customers, records of existing customers, updates, and reads. Each
    // worker writes and reads its own records, so what it reads back is what it wrote last.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..3)
        .map(|w| {
            let mine = first.iter().skip(w).step_by(3).cloned().collect();
            let servers = (base.clone(), base.clone());
            tokio::spawn(worker(w, servers, key.clone(), mine, Arc::clone(&done)))
        })
        .collect();

    // One customer per page, so the kill lands half-way.
    let killed_at = kill_half_way(
        dir.path(),
        &["keys", "rotate-subjects", "--batch", "1"],
        "subjects",
        100,
    );

    let d = dir.path().to_owned();
    let o = tokio::task::spawn_blocking(move || custos(&d, &["keys", "rotate-subjects"]))
        .await
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("in all since the rotation began"),
        "{}",
        stdout(&o)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for l in load {
        acked.extend(l.await.unwrap());
    }

    assert!(acked.len() > 60, "the load wrote: {}", acked.len());
    for (id, _, email) in &acked {
        let r = read(&http, &base, &key, id).await;
        assert_eq!(r.status().as_u16(), 200, "record {id} after the rotation");
        assert_eq!(
            r.json::<Value>().await.unwrap()["fields"]["email"],
            email.as_str()
        );
    }
    let (s, body) = api("GET", format!("{base}/v1/requests/{req}"), &key, None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["rejection_reason"]["text"], reason, "{body}");
    server.stop();

    let (keys, fields) = key_rows(dir.path());
    assert!(killed_at > 0 && (killed_at as usize) < keys.len());
    for (version, created_ms) in &keys {
        assert!(
            *version >= 2 || *created_ms >= started_ms,
            "a key made before the rotation is left: version {version}, made {created_ms}"
        );
    }
    assert!(
        keys.iter().filter(|(v, _)| *v >= 2).count() >= 640,
        "{}",
        keys.len()
    );
    for (ct, key) in &fields {
        assert_eq!(
            i64::from(*ct),
            *key,
            "a field sealed under another key than its subject's"
        );
    }
    let c = rusqlite::Connection::open(dir.path().join("custos.db")).unwrap();
    let reasons: Vec<u8> = c
        .query_row("SELECT reasons FROM requests WHERE id = ?1", [&req], |r| {
            r.get(0)
        })
        .unwrap();
    for ct in custos_store::decode_fields(&reasons).unwrap().values() {
        assert_eq!(ct[1..5], [0, 0, 0, 2], "the reason is sealed again");
    }
    let finished: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM key_rotations WHERE kind = 'subjects' AND finished_ms IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(finished, 1);
    let v = custos(dir.path(), &["audit", "verify"]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));
}

/// Two servers on one PostgreSQL database serve throughout a customers' key rotation, then a
/// blind-index key rotation: each writer writes through one and reads and searches through
/// the other, and every write, read and search succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_postgres_serve_throughout_customer_key_and_index_rotations() {
    let Some(schema) = custos_store::testing::Schema::create().await else {
        return;
    };
    let (dir, key) = crate::postgres::initialised_on(&schema.url);
    let servers = [
        Server::start(dir.path(), &[]),
        Server::start(dir.path(), &[]),
    ];
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let first = seed(&bases[0], &key, 200).await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|w| {
            let mine = first.iter().skip(w).step_by(4).cloned().collect();
            let servers = (bases[w % 2].clone(), bases[(w + 1) % 2].clone());
            tokio::spawn(worker(w, servers, key.clone(), mine, Arc::clone(&done)))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = dir.path().to_owned();
    let o = tokio::task::spawn_blocking(move || {
        custos(&d, &["keys", "rotate-subjects", "--batch", "5"])
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let d = dir.path().to_owned();
    let o =
        tokio::task::spawn_blocking(move || custos(&d, &["keys", "rotate-index", "--batch", "5"]))
            .await
            .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for l in load {
        acked.extend(l.await.unwrap());
    }
    let http = client();
    for (n, (id, _, email)) in acked.iter().enumerate() {
        let r = read(&http, &bases[n % 2], &key, id).await;
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap()["fields"]["email"],
            email.as_str()
        );
        assert!(search(&bases[n % 2], &key, email).await.contains(id));
    }
    for s in servers {
        s.stop();
    }
    let (pg, conn) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let started: i64 = pg
        .query_one(
            "SELECT started_ms FROM key_rotations WHERE kind = 'subjects' AND finished_ms IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let left: i64 = pg
        .query_one(
            "SELECT COUNT(*) FROM subject_keys WHERE version = 1 AND created_ms < $1",
            &[&started],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "keys made before the rotation are left");
    let index_keys: Vec<String> = pg
        .query("SELECT name FROM vault_keys WHERE name LIKE 'index%'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(index_keys, ["index.2"]);
    let old: i64 = pg
        .query_one(
            "SELECT COUNT(*) FROM blind_index WHERE key_version <> 2",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(old, 0, "entries of the old blind-index key are left");
    for row in pg
        .query(
            "SELECT r.fields, k.version FROM records r JOIN subject_keys k ON k.subject_id = r.subject_id",
            &[],
        )
        .await
        .unwrap()
    {
        let key_version: i32 = row.get(1);
        for ct in custos_store::decode_fields(&row.get::<_, Vec<u8>>(0)).unwrap().values() {
            assert_eq!(
                u32::from_be_bytes([ct[1], ct[2], ct[3], ct[4]]),
                key_version as u32,
                "a field sealed under another key than its subject's"
            );
        }
    }
    let v = custos(dir.path(), &["audit", "verify"]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));
}
