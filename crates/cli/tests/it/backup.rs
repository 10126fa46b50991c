//! Backups with the real binary: a backup made while the server serves, a customer erased
//! after it, the database lost and the backup restored: the customer stays erased (404, no
//! search hit, no export, no key). A changed or cut backup fails verify; one vault's backup
//! does not open in another.

use std::path::Path;

use serde_json::{Value, json};

use crate::{Server, api, custos, initialised, stderr, stdout};

async fn create(base: &str, key: &str, email: &str) -> (String, String) {
    let (s, body) = api(
        "POST",
        format!("{base}/v1/collections/customers/records"),
        key,
        Some(json!({"fields": {"email": email, "name": "Backup Canary"}})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["subject_id"].as_str().unwrap().to_owned(),
    )
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = custos(dir, args);
    assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let o = custos(dir, args);
    assert!(!o.status.success(), "{args:?} succeeded: {}", stdout(&o));
    stderr(&o)
}

fn lose_database(dir: &Path) {
    for f in ["custos.db", "custos.db-wal", "custos.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_erases_again_whoever_was_erased_after_the_backup() {
    let (dir, key) = initialised();
    let inventory = std::fs::read_to_string(dir.path().join("custos.toml")).unwrap();
    assert!(
        inventory.contains("[backup]\nrecipient = \"age1"),
        "{inventory}"
    );
    let identity = dir.path().join("backup.identity");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&identity).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let (ada, _) = create(&base, &key, "ada.backup@example.com").await;
    let (bob, bob_subject) = create(&base, &key, "bob.backup@example.com").await;
    let file = dir.path().join("nightly.custos-backup");
    let made = ok(dir.path(), &["backup", "create", file.to_str().unwrap()]);
    assert!(made.contains("2 records"), "{made}");
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    for canary in ["ada.backup@example.com", "Backup Canary", "backup@example"] {
        assert!(
            !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "{canary} in the backup file"
        );
    }
    assert!(
        fails(dir.path(), &["backup", "create", file.to_str().unwrap()]).contains("exists"),
        "a backup never overwrites a file"
    );

    // Bob is erased after the backup was made.
    let (s, body) = api(
        "POST",
        format!("{base}/v1/subjects/{bob_subject}/erase"),
        &key,
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    drop(server);
    let journal = std::fs::read_to_string(dir.path().join("erasures.journal")).unwrap();
    assert!(journal.contains(&bob_subject), "{journal}");

    let verified = ok(dir.path(), &["backup", "verify", file.to_str().unwrap()]);
    assert!(verified.contains("verifies"), "{verified}");

    // The database is lost; the data directory (root key, identity, journal) is not.
    lose_database(dir.path());
    // Without its journal a restore would bring Bob back: it is refused, and changes nothing.
    let journal = dir.path().join("erasures.journal");
    let aside = dir.path().join("journal.aside");
    std::fs::rename(&journal, &aside).unwrap();
    let why = fails(dir.path(), &["backup", "restore", file.to_str().unwrap()]);
    assert!(
        why.contains("erasure journal") && why.contains("missing"),
        "{why}"
    );
    std::fs::rename(&aside, &journal).unwrap();
    let restored = ok(dir.path(), &["backup", "restore", file.to_str().unwrap()]);
    assert!(restored.contains("1 subjects erased again"), "{restored}");
    assert!(
        fails(dir.path(), &["backup", "restore", file.to_str().unwrap()]).contains("holds a vault"),
        "a restore into a database that holds a vault needs --force"
    );

    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let read = |id: &str| {
        api(
            "GET",
            format!("{base}/v1/collections/customers/records/{id}?purpose=support"),
            &key,
            None,
        )
    };
    assert_eq!(read(&ada).await.0, 200, "the rest of the backup is back");
    assert_eq!(read(&bob).await.0, 404, "the erased customer stays erased");
    let (s, found) = api(
        "GET",
        format!(
            "{base}/v1/collections/customers/records?purpose=support&email=bob.backup@example.com"
        ),
        &key,
        None,
    )
    .await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["records"], json!([]), "{found}");
    let (s, export) = api(
        "GET",
        format!("{base}/v1/subjects/{bob_subject}/export"),
        &key,
        None,
    )
    .await;
    assert!(!export.to_string().contains("bob.backup"), "{s}: {export}");
    drop(server);

    let db = rusqlite::Connection::open(dir.path().join("custos.db")).unwrap();
    let keys: i64 = db
        .query_row(
            "SELECT count(*) FROM subject_keys WHERE subject_id = ?1",
            [&bob_subject],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        keys, 0,
        "no key is left for the erased customer's ciphertexts"
    );
    drop(db);
    ok(dir.path(), &["audit", "verify"]);

    // --force replaces the vault and keeps its erasure list.
    let again = ok(
        dir.path(),
        &[
            "backup",
            "restore",
            file.to_str().unwrap(),
            "--force",
            "--yes",
        ],
    );
    assert!(again.contains("1 subjects erased again"), "{again}");
    let list: Value = serde_json::from_str(&ok(dir.path(), &["erasures", "list", "--json"]))
        .unwrap_or(Value::Null);
    assert!(list.to_string().contains(&bob_subject), "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_backup_or_another_vaults_is_refused() {
    let (dir, key) = initialised();
    let server = Server::start(dir.path(), &[]);
    create(&server.base, &key, "tamper@example.com").await;
    drop(server);
    let file = dir.path().join("b.age");
    ok(dir.path(), &["backup", "create", file.to_str().unwrap()]);
    let bytes = std::fs::read(&file).unwrap();

    let changed = dir.path().join("changed.age");
    let mut c = bytes.clone();
    let middle = c.len() / 2;
    c[middle] ^= 1;
    std::fs::write(&changed, &c).unwrap();
    let why = fails(dir.path(), &["backup", "verify", changed.to_str().unwrap()]);
    assert!(why.contains("cannot be decrypted"), "{why}");

    let cut = dir.path().join("cut.age");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let why = fails(dir.path(), &["backup", "verify", cut.to_str().unwrap()]);
    assert!(why.contains("cannot be decrypted"), "{why}");

    // Another vault: its identity does not open the backup, and with ours its root key
    // does not open the snapshot's keys. Nothing is restored.
    let (other, _) = initialised();
    let why = fails(other.path(), &["backup", "verify", file.to_str().unwrap()]);
    assert!(
        why.contains("not encrypted to this backup identity"),
        "{why}"
    );
    lose_database(other.path());
    let ours = dir.path().join("backup.identity");
    let why = fails(
        other.path(),
        &[
            "backup",
            "restore",
            file.to_str().unwrap(),
            "--identity",
            ours.to_str().unwrap(),
        ],
    );
    assert!(
        why.contains("do not open with this vault's root key"),
        "{why}"
    );
    let db = rusqlite::Connection::open(other.path().join("custos.db")).unwrap();
    let n: i64 = db
        .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0, "a refused restore writes nothing");
}

/// On PostgreSQL: a backup taken while customers are written holds one instant (every record
/// with its subject), and restores into another database with the erasure made since
/// applied; the same file restores into SQLite too.
#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_backup_under_load_restores_elsewhere_with_its_erasures() {
    let (Some(from), Some(to)) = (
        custos_store::testing::Schema::create().await,
        custos_store::testing::Schema::create().await,
    ) else {
        return;
    };
    let (dir, key) = crate::postgres::initialised_on(&from.url);
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let (gone, gone_subject) = create(&base, &key, "gone.pg@example.com").await;
    let (kept, _) = create(&base, &key, "kept.pg@example.com").await;

    let writer = {
        let (base, key) = (base.clone(), key.clone());
        tokio::spawn(async move {
            for i in 0..40 {
                create(&base, &key, &format!("load{i}.pg@example.com")).await;
            }
        })
    };
    let file = dir.path().join("pg.custos-backup");
    let made = ok(dir.path(), &["backup", "create", file.to_str().unwrap()]);
    writer.await.unwrap();
    assert!(made.contains("from") || made.contains("written"), "{made}");
    let (s, _) = api(
        "POST",
        format!("{base}/v1/subjects/{gone_subject}/erase"),
        &key,
        None,
    )
    .await;
    assert_eq!(s, 200);
    drop(server);

    let checked = ok(dir.path(), &["backup", "verify", file.to_str().unwrap()]);
    assert!(checked.contains("from PostgreSQL"), "{checked}");
    let count = |what: &str| -> u64 {
        let before = checked.split(&format!(" {what},")).next().unwrap();
        before.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(
        count("records"),
        count("subjects"),
        "one instant: {checked}"
    );
    assert!(count("records") >= 2, "{checked}");
    let o = crate::custos_env(
        dir.path(),
        &["backup", "restore", file.to_str().unwrap()],
        &[("CUSTOS_DATABASE_URL", to.url.as_str())],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("1 subjects erased again"),
        "{}",
        stdout(&o)
    );

    let server = Server::start_env(dir.path(), &[], &[("CUSTOS_DATABASE_URL", to.url.as_str())]);
    let read = |id: String| {
        api(
            "GET",
            format!(
                "{}/v1/collections/customers/records/{id}?purpose=support",
                server.base
            ),
            &key,
            None,
        )
    };
    assert_eq!(read(kept).await.0, 200);
    assert_eq!(read(gone).await.0, 404);
    drop(server);

    // The same backup restores into SQLite: the format is the store's rows, not PostgreSQL's.
    let sqlite = dir.path().join("elsewhere.db");
    let url = format!("sqlite://{}", sqlite.display());
    let o = crate::custos_env(
        dir.path(),
        &["backup", "restore", file.to_str().unwrap()],
        &[("CUSTOS_DATABASE_URL", url.as_str())],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let db = rusqlite::Connection::open(&sqlite).unwrap();
    let (records, subjects): (i64, i64) = db
        .query_row(
            "SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM subjects)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        records + 1,
        subjects,
        "every record but the erased one, with its subject"
    );
}
