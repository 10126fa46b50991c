//! `custos subject export` against a real data directory: a 0600 file that unzips, JSON by
//! name, refusals; and the subject's audit query served by the `audit_leaves_subject` index
//! on both backends, so an export never scans the whole log.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use custos_core::inventory::EXAMPLE;
use serde_json::{Value, json};

use crate::{Server, client, create_key, custos, initialised, stderr, stdout};

const EMAIL: &str = "export.cli.canary@example.com";

/// A subject with one record, read once by a support key; the server stopped after.
async fn subject_read_once(dir: &Path, admin: &str) -> String {
    let support = create_key(dir, "helpdesk", "support_agent");
    let server = Server::start(dir, &[]);
    let http = client();
    let r: Value = http
        .post(server.url("/v1/collections/customers/records"))
        .bearer_auth(admin)
        .json(&json!({"fields": {"email": EMAIL, "name": "Cli Export"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["id"].as_str().unwrap();
    let read = http
        .get(server.url(&format!(
            "/v1/collections/customers/records/{id}?purpose=support"
        )))
        .bearer_auth(&support)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status().as_u16(), 200);
    server.stop();
    r["subject_id"].as_str().unwrap().to_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn subject_export_writes_a_private_file_that_unzips() {
    let (dir, admin) = initialised();
    let subject = subject_read_once(dir.path(), &admin).await;
    let out = dir.path().join("ada.zip");
    let o = custos(
        dir.path(),
        &[
            "subject",
            "export",
            &subject,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let said = stdout(&o);
    assert!(
        said.starts_with("wrote ") && said.contains("(zip, "),
        "{said}"
    );
    assert!(
        said.contains("1 record(s)") && said.contains("1 read(s)"),
        "{said}"
    );
    assert!(
        !said.contains(EMAIL) && !stderr(&o).contains(EMAIL),
        "{said}"
    );
    assert_eq!(mode(&out), 0o600);
    let mut z = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut names: Vec<String> = z.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["README.txt", "customers.csv", "export.json"]);
    let mut csv = String::new();
    z.by_name("customers.csv")
        .unwrap()
        .read_to_string(&mut csv)
        .unwrap();
    assert!(csv.contains(EMAIL), "{csv}");
    let mut json = String::new();
    z.by_name("export.json")
        .unwrap()
        .read_to_string(&mut json)
        .unwrap();
    let e: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(e["reads"][0]["by"]["name"], "helpdesk");
    assert_eq!(e["reads"][0]["by"]["role"], "support_agent");

    // JSON when the name says so; an existing file readable by others ends up 0600 too.
    let out = dir.path().join("ada.json");
    std::fs::write(&out, "old").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = custos(
        dir.path(),
        &[
            "subject",
            "export",
            &subject,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mode(&out), 0o600);
    let e: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        e["collections"][0]["records"][0]["fields"]["email"]["value"],
        EMAIL
    );
    // The first export is among the acts the second lists, done at the command line.
    let exported = e["activity"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "subject.export")
        .unwrap();
    assert_eq!(exported["by"]["kind"], "command_line");

    // --format wins over the name.
    let out = dir.path().join("forced.json");
    let o = custos(
        dir.path(),
        &[
            "subject",
            "export",
            &subject,
            "--out",
            out.to_str().unwrap(),
            "--format",
            "zip",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(&out).unwrap().starts_with(b"PK\x03\x04"));

    // Refusals write nothing.
    let none = dir.path().join("none.zip");
    let unknown = "0190b5a6-0000-7000-8000-000000000000";
    for (id, says) in [
        (unknown, "subject not found"),
        ("nope", "is not a subject id"),
    ] {
        let o = custos(
            dir.path(),
            &["subject", "export", id, "--out", none.to_str().unwrap()],
        );
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
        assert!(!none.exists());
    }
}

/// The statement of `subject_leaves` in `crates/store/src/{sqlite,postgres}/audit.rs`.
const SUBJECT_LEAVES: &str =
    "SELECT idx, subject_id, entry, leaf_hash FROM audit_leaves WHERE subject_id = ?1 ORDER BY idx";

#[test]
fn the_subject_trail_is_read_through_its_index_on_sqlite() {
    let (dir, _) = initialised();
    let db = rusqlite::Connection::open(dir.path().join("custos.db")).unwrap();
    let mut s = db
        .prepare(&format!("EXPLAIN QUERY PLAN {SUBJECT_LEAVES}"))
        .unwrap();
    let plan: Vec<String> = s
        .query_map(["0190b5a6-0000-7000-8000-000000000000"], |r| r.get(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        plan,
        ["SEARCH audit_leaves USING INDEX audit_leaves_subject (subject_id=?)"],
        "no scan of the log, and no sort: the index holds each subject's entries in order"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_subject_trail_is_read_through_its_index_on_postgres() {
    let Some(schema) = custos_store::testing::Schema::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("custos.toml"),
        format!("database = \"{}\"\n{EXAMPLE}", schema.url),
    )
    .unwrap();
    let o = custos(dir.path(), &["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let db = custos_store::testing::connect(&schema.url).await;
    // A log of 100,000 entries over 10,000 subjects, as the planner's statistics see it.
    db.batch_execute(
        "INSERT INTO audit_leaves (idx, subject_id, entry, leaf_hash) \
         SELECT i, md5((i % 10000)::text)::uuid, '\\x7b7d', '\\x00' \
         FROM generate_series(0, 99999) AS i; ANALYZE audit_leaves",
    )
    .await
    .unwrap();
    let sql = SUBJECT_LEAVES.replace("?1", "md5('7')::uuid");
    let plan: Vec<String> = db
        .query(&format!("EXPLAIN {sql}"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("audit_leaves_subject"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
}
