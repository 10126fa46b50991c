//! Root key rotation with the real binary: under a write and read load nothing is lost and
//! every read succeeds; a rotation killed with SIGKILL half-way resumes and finishes; the
//! retired version's wrapped keys are nowhere in the database's files; the log verifies.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::postgres::{create, read};
use crate::{Server, client, custos, initialised, kill_half_way, stderr, stdout};

/// Every wrapped key in the database (subjects' data keys and the vault's named keys).
fn wrapped_keys(dir: &Path) -> Vec<Vec<u8>> {
    let c = rusqlite::Connection::open(dir.join("custos.db")).unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT wrapped FROM subject_keys",
        "SELECT wrapped FROM vault_keys",
    ] {
        let mut st = c.prepare(sql).unwrap();
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

fn status(dir: &Path) -> Value {
    let o = custos(dir, &["keys", "status", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn wraps(status: &Value, version: u64) -> u64 {
    status["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == version)
        .map_or(0, |v| v["wraps"].as_u64().unwrap())
}

/// Retires version 1 and finds none of `old` (its wrapped keys) in the database file or its
/// write-ahead log, and the log verifies.
fn retire_and_search(dir: &Path, old: &[Vec<u8>]) {
    let o = custos(dir, &["keys", "retire", "1"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let key_file = std::fs::read_to_string(dir.join("root.key")).unwrap();
    assert!(
        !key_file.contains("custos-root-key-v1 1 "),
        "version 1 is gone from the key file"
    );
    let mut bytes = std::fs::read(dir.join("custos.db")).unwrap();
    if let Ok(wal) = std::fs::read(dir.join("custos.db-wal")) {
        bytes.extend(wal);
    }
    for w in old {
        assert_eq!(w[1..5], [0, 0, 0, 1], "read before the rotation: version 1");
        assert!(
            !bytes.windows(w.len()).any(|win| win == w.as_slice()),
            "a key wrapped by the retired version is still in the database's files"
        );
    }
    for w in wrapped_keys(dir) {
        assert_eq!(w[1..5], [0, 0, 0, 2], "every key is wrapped by version 2");
    }
    let v = custos(dir, &["audit", "verify"]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_under_load_loses_nothing_and_every_read_succeeds() {
    let (dir, key) = initialised();
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let http = client();
    let mut first = Vec::new();
    for i in 0..60 {
        let (s, body) = crate::api(
            "POST",
            format!("{base}/v1/collections/customers/records"),
            &key,
            Some(json!({"fields": {"email": format!("before-{i}@rotate.example")}})),
        )
        .await;
        assert_eq!(s, 201, "{body}");
        first.push((
            body["id"].as_str().unwrap().to_owned(),
            format!("before-{i}@rotate.example"),
        ));
    }
    let old = wrapped_keys(dir.path());

    let acked = Arc::new(Mutex::new(first));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for w in 0..4 {
        let (acked, done, key, base, http) = (
            Arc::clone(&acked),
            Arc::clone(&done),
            key.clone(),
            base.clone(),
            http.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let email = format!("w{w}-{i}@rotate.example");
                let r = create(&http, &base, &key, &email).await;
                assert_eq!(r.status().as_u16(), 201);
                let id = r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                acked.lock().await.push((id, email));
                // Read back an earlier record: its key may be under either version.
                let (id, email) = {
                    let a = acked.lock().await;
                    a[(i * 7 + w) % a.len()].clone()
                };
                let r = read(&http, &base, &key, &id).await;
                assert_eq!(r.status().as_u16(), 200, "read of {id} during the rotation");
                assert_eq!(r.json::<Value>().await.unwrap()["fields"]["email"], email);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = dir.path().to_owned();
    let rotation =
        tokio::task::spawn_blocking(move || custos(&d, &["keys", "rotate-root", "--batch", "5"]))
            .await
            .unwrap();
    assert!(
        rotation.status.success(),
        "{}{}",
        stdout(&rotation),
        stderr(&rotation)
    );
    assert!(
        stdout(&rotation).contains("root key version 2"),
        "{}",
        stdout(&rotation)
    );
    // Writes go on under the new version.
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert!(
        acked.len() > 80,
        "the load wrote during the rotation: {}",
        acked.len()
    );
    for (id, email) in &acked {
        let r = read(&http, &base, &key, id).await;
        assert_eq!(r.status().as_u16(), 200, "record {id} after the rotation");
        assert_eq!(
            r.json::<Value>().await.unwrap()["fields"]["email"],
            email.as_str()
        );
    }
    server.stop();
    let s = status(dir.path());
    assert_eq!(wraps(&s, 1), 0, "{s}");
    assert!(wraps(&s, 2) as usize > acked.len(), "{s}");
    retire_and_search(dir.path(), &old);

    // The server starts on the new key file alone and serves everything.
    let server = Server::start(dir.path(), &[]);
    for (id, _) in acked.iter().step_by(17) {
        let r = http
            .get(server.url(&format!(
                "/v1/collections/customers/records/{id}?purpose=support"
            )))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_killed_half_way_resumes_and_finishes() {
    let (dir, _key) = initialised();
    {
        let vault = Arc::new(
            custos_vault::Vault::open(&custos_vault::Paths::in_dir(dir.path()))
                .await
                .unwrap(),
        );
        vault.load_demo(400).await.unwrap();
    }
    let old = wrapped_keys(dir.path());
    assert!(old.len() > 400);

    // One key per transaction, so the kill lands half-way.
    kill_half_way(
        dir.path(),
        &["keys", "rotate-root", "--batch", "1"],
        "root",
        50,
    );

    let s = status(dir.path());
    let rotation = &s["rotation"];
    assert!(rotation["finished"].is_null(), "{s}");
    let done = rotation["done"].as_u64().unwrap();
    assert!(done >= 50 && done < old.len() as u64, "{s}");
    assert!(wraps(&s, 1) > 0 && wraps(&s, 2) > 0, "{s}");
    let o = custos(dir.path(), &["keys", "retire", "1"]);
    assert!(
        !o.status.success(),
        "retiring a version that still wraps keys"
    );
    assert!(stderr(&o).contains("not finished"), "{}", stderr(&o));

    let o = custos(dir.path(), &["keys", "rotate-root"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("{} in all since the rotation began", old.len())),
        "{}",
        stdout(&o)
    );
    let s = status(dir.path());
    assert_eq!(wraps(&s, 1), 0, "{s}");
    assert_eq!(wraps(&s, 2), old.len() as u64, "{s}");
    assert!(!s["rotation"]["finished"].is_null(), "{s}");
    for (version, says) in [("2", "not below the newest"), ("7", "not below the newest")] {
        let o = custos(dir.path(), &["keys", "retire", version]);
        assert!(!o.status.success(), "retire {version}");
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }
    retire_and_search(dir.path(), &old);
    // Retired already: asked again, it only drops what the database kept.
    let o = custos(dir.path(), &["keys", "retire", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = status(dir.path());
    assert_eq!(s["versions"].as_array().unwrap().len(), 2, "{s}");
    assert!(!s["versions"][0]["retired"].is_null(), "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_postgres_serve_throughout_a_rotation() {
    let Some(schema) = custos_store::testing::Schema::create().await else {
        return;
    };
    let (dir, key) = crate::postgres::initialised_on(&schema.url);
    let servers = [
        Server::start(dir.path(), &[]),
        Server::start(dir.path(), &[]),
    ];
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let acked = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for w in 0..4 {
        let (acked, done, key) = (Arc::clone(&acked), Arc::clone(&done), key.clone());
        // Each writer writes through one server and reads through the other.
        let (writer, reader) = (bases[w % 2].clone(), bases[(w + 1) % 2].clone());
        load.push(tokio::spawn(async move {
            let http = client();
            let mut i = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || i < 20 {
                i += 1;
                let email = format!("pg{w}-{i}@rotate.example");
                let r = create(&http, &writer, &key, &email).await;
                assert_eq!(r.status().as_u16(), 201);
                let id = r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let r = read(&http, &reader, &key, &id).await;
                assert_eq!(r.status().as_u16(), 200, "read of {id} on the other server");
                acked.lock().await.push((id, email));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = dir.path().to_owned();
    let o =
        tokio::task::spawn_blocking(move || custos(&d, &["keys", "rotate-root", "--batch", "10"]))
            .await
            .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    let http = client();
    for (n, (id, email)) in acked.iter().enumerate() {
        let r = read(&http, &bases[n % 2], &key, id).await;
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap()["fields"]["email"],
            email.as_str()
        );
    }
    for s in servers {
        s.stop();
    }
    let s = status(dir.path());
    assert_eq!(wraps(&s, 1), 0, "{s}");
    let o = custos(dir.path(), &["keys", "retire", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("VACUUM"), "{}", stdout(&o));
    let v = custos(dir.path(), &["audit", "verify"]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));
}

/// `[root_key] env`: the key file's text in an environment variable serves as the file did;
/// without the variable every command says which one is missing; the key is in no output or
/// log; a rotation, which writes a key file, is refused with the way to do it.
#[tokio::test(flavor = "multi_thread")]
async fn a_root_key_from_the_environment_serves_and_is_never_printed() {
    let (dir, key) = initialised();
    let root = std::fs::read_to_string(dir.path().join("root.key")).unwrap();
    let secret = root.split_whitespace().nth(2).unwrap().to_owned();
    std::fs::remove_file(dir.path().join("root.key")).unwrap();
    let mut toml = std::fs::read_to_string(dir.path().join("custos.toml")).unwrap();
    toml.push_str("\n[root_key]\nenv = \"CUSTOS_TEST_ROOT_KEY\"\n");
    std::fs::write(dir.path().join("custos.toml"), toml).unwrap();

    let o = custos(dir.path(), &["audit", "verify"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("CUSTOS_TEST_ROOT_KEY is not set"),
        "{}",
        stderr(&o)
    );
    let env = [("CUSTOS_TEST_ROOT_KEY", root.as_str())];
    let o = crate::custos_env(dir.path(), &["audit", "verify"], &env);
    assert!(o.status.success(), "{}", stderr(&o));

    let server = Server::start_env(dir.path(), &[], &env);
    let r = create(&client(), &server.base, &key, "env.root@example.com").await;
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(read(&client(), &server.base, &key, &id).await.status(), 200);
    let log = server.stop();
    assert!(
        !log.contains(&secret),
        "the root key is in the server's log"
    );

    let o = crate::custos_env(dir.path(), &["keys", "rotate-root"], &env);
    assert!(!o.status.success());
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(said.contains("Rotate with the key file"), "{said}");
    assert!(!said.contains(&secret));
    assert!(
        !dir.path().join("root.key").exists(),
        "nothing writes the key to a file"
    );
}

/// `[root_key] file`: the key file where custos.toml names it, made there by `init` (mode
/// 0600), read and rotated there; none in the data directory.
#[tokio::test(flavor = "multi_thread")]
async fn a_root_key_file_named_in_the_inventory_is_made_and_rotated_there() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let file = keys.path().join("custos-root.key");
    std::fs::write(
        dir.path().join("custos.toml"),
        format!(
            "{}\n[root_key]\nfile = \"{}\"\n",
            custos_core::inventory::EXAMPLE,
            file.display()
        ),
    )
    .unwrap();
    let o = custos(dir.path(), &["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&file.display().to_string()),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("root.key").exists());
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key = crate::create_key(dir.path(), "admin", "admin");
    let server = Server::start(dir.path(), &[]);
    let r = create(&client(), &server.base, &key, "file.root@example.com").await;
    assert_eq!(r.status().as_u16(), 201);
    server.stop();
    let o = custos(dir.path(), &["keys", "rotate-root"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("custos-root-key-v1 2 "),
        "version 2 is in the named file"
    );
    let s = status(dir.path());
    assert!(
        s["held_in"].as_str().unwrap().contains("custos-root.key"),
        "{s}"
    );
    let v = custos(dir.path(), &["audit", "verify"]);
    assert!(v.status.success(), "{}", stderr(&v));
}
