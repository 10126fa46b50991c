//! The blind-index key rotated with the real binary: under a load of new customers, records
//! of existing customers, updates, reads and searches (each of which must find what it wrote
//! last), a rotation killed with SIGKILL half-way resumes and finishes; afterwards every
//! record is found by its email, no entry and no key of the old version is left in the
//! database file, a site's publishable key is what it was, and the log verifies.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::postgres::read;
use crate::rekey::{search, seed, worker};
use crate::{Server, client, custos, initialised, kill_half_way, stderr, stdout};

async fn site_key(dir: &std::path::Path) -> String {
    let vault = custos_vault::Vault::open(&custos_vault::Paths::in_dir(dir))
        .await
        .unwrap();
    vault.site_key("shop").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_index_key_rotates_under_load_and_a_killed_rotation_resumes() {
    let (dir, key) = initialised();
    {
        let vault = Arc::new(
            custos_vault::Vault::open(&custos_vault::Paths::in_dir(dir.path()))
                .await
                .unwrap(),
        );
        vault.load_demo(600).await.unwrap();
    }
    // As in a vault made before marks had a key of their own: the next open begins it from
    // the first blind-index key, which the rotation deletes.
    let db = rusqlite::Connection::open(dir.path().join("custos.db")).unwrap();
    db.execute("DELETE FROM vault_keys WHERE name = 'marks'", [])
        .unwrap();
    drop(db);
    let publishable = site_key(dir.path()).await;
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let first = seed(&base, &key, 42).await;

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..3)
        .map(|w| {
            let mine = first.iter().skip(w).step_by(3).cloned().collect();
            let servers = (base.clone(), base.clone());
            tokio::spawn(worker(w, servers, key.clone(), mine, Arc::clone(&done)))
        })
        .collect();

    // One record per page, so the kill lands half-way.
    let killed_at = kill_half_way(
        dir.path(),
        &["keys", "rotate-index", "--batch", "1"],
        "index",
        100,
    );
    let db = rusqlite::Connection::open(dir.path().join("custos.db")).unwrap();
    let keys = |db: &rusqlite::Connection| -> Vec<String> {
        db.prepare("SELECT name FROM vault_keys WHERE name LIKE 'index%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        keys(&db),
        ["index", "index.2"],
        "killed half-way: both keys held"
    );
    // The load keeps going on both keys for a while.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = custos(dir.path(), &["keys", "status"]);
    assert!(
        stdout(&status).contains("blind-index keys 1 and 2: a rotation is under way"),
        "{}",
        stdout(&status)
    );

    let d = dir.path().to_owned();
    let o = tokio::task::spawn_blocking(move || custos(&d, &["keys", "rotate-index"]))
        .await
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("blind-index key 2: every record is indexed under it")
            && stdout(&o).contains("in all since the rotation began"),
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
    let http = client();
    for (id, _, email) in &acked {
        let r = read(&http, &base, &key, id).await;
        assert_eq!(r.status().as_u16(), 200, "record {id} after the rotation");
        assert_eq!(
            r.json::<Value>().await.unwrap()["fields"]["email"],
            email.as_str()
        );
        assert_eq!(search(&base, &key, email).await, vec![id.clone()]);
    }
    server.stop();

    assert!(killed_at > 0);
    assert_eq!(keys(&db), ["index.2"], "the old key is deleted");
    let (old, new): (i64, i64) = db
        .query_row(
            "SELECT COUNT(*) FILTER (WHERE key_version <> 2), COUNT(*) FILTER (WHERE key_version = 2) \
             FROM blind_index",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(old, 0, "entries of the old key are left");
    let records: i64 = db
        .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert!(new >= records, "{new} entries for {records} records");
    drop(db);
    assert_eq!(
        site_key(dir.path()).await,
        publishable,
        "a site's key changed"
    );
    let status = custos(dir.path(), &["keys", "status", "--json"]);
    let s: Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(s["index"]["versions"], serde_json::json!([2]), "{s}");
    assert!(s["index"]["rotation"]["finished"].is_string(), "{s}");
    let v = custos(dir.path(), &["audit", "verify"]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));

    // Killed after the new key became the only one, before the rotation was marked finished:
    // running it again marks it, and the next run is a new rotation.
    let db = rusqlite::Connection::open(dir.path().join("custos.db")).unwrap();
    db.execute(
        "UPDATE key_rotations SET finished_ms = NULL WHERE kind = 'index'",
        [],
    )
    .unwrap();
    drop(db);
    let o = custos(dir.path(), &["keys", "rotate-index"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("blind-index key 2"), "{}", stdout(&o));
    // Run again: a new key, and the index follows.
    let o = custos(dir.path(), &["keys", "rotate-index"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("blind-index key 3"), "{}", stdout(&o));
}
