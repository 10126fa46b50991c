//! `custos init`, `inventory check`, `apikey`, and `serve --demo` as a user meets them.

use std::os::unix::fs::PermissionsExt;

use crate::{Server, client, create_key, custos, initialised, stderr, stdout};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_writes_an_example_a_private_key_and_a_database_and_refuses_to_overwrite_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = custos(&data, &["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mode(&data.join("root.key")), 0o600);
    assert_eq!(mode(&data.join("custos.db")), 0o600);
    assert_eq!(mode(&data), 0o700);
    let toml = std::fs::read_to_string(data.join("custos.toml")).unwrap();
    assert!(toml.starts_with("# custos.toml"), "commented example");
    let key = std::fs::read(data.join("root.key")).unwrap();

    let again = custos(&data, &["init"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("refusing to overwrite the existing root key"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read(data.join("root.key")).unwrap(),
        key,
        "the key is untouched"
    );

    // CUSTOS_DATA_DIR works as --data-dir does.
    let other = dir.path().join("env");
    let o = std::process::Command::new(crate::BIN)
        .arg("init")
        .env("CUSTOS_DATA_DIR", &other)
        .output()
        .unwrap();
    assert!(o.status.success() && other.join("root.key").exists());
}

#[test]
fn inventory_check_names_every_problem_and_serve_refuses_the_same_inventory() {
    let (dir, _) = initialised();
    let path = dir.path().join("custos.toml");
    let good = custos(dir.path(), &["inventory", "check", path.to_str().unwrap()]);
    assert!(good.status.success(), "{}", stdout(&good));
    assert!(stdout(&good).contains(": ok ("), "{}", stdout(&good));

    let text = std::fs::read_to_string(&path).unwrap();
    let bad = text
        .replacen("legal_basis = \"legitimate_interests\"\n", "", 1)
        .replacen("type = \"date\"", "type = \"datum\"", 1)
        .replacen(
            "purposes = [\"support\"]\nretention = \"2y\"",
            "purposes = []\nretention = \"2 years\"",
            1,
        )
        .replacen(
            "id = \"marketer\"\npurposes = [\"marketing\"]",
            "id = \"marketer\"\npurposes = [\"adverts\"]",
            1,
        );
    std::fs::write(&path, &bad).unwrap();
    let o = custos(dir.path(), &["inventory", "check", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    for want in [
        "purposes[1] (support).legal_basis: the purpose has no legal basis",
        "collections.customers.fields.birth_date.type: \"datum\" is not a field type",
        "collections.customers.fields.notes.purposes: the field has no purpose",
        "collections.customers.fields.notes.retention: retention \"2 years\" is not understood",
        "roles[2] (marketer).purposes: unknown purpose \"adverts\"",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(
        out.lines().all(|l| l.contains("custos.toml: line ")),
        "every problem has a line: {out}"
    );

    let serve = custos(dir.path(), &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(serve.status.code(), Some(2));
    let err = stderr(&serve);
    assert!(
        err.contains("the inventory has 5 problems")
            && err.contains("\"datum\" is not a field type"),
        "{err}"
    );
}

#[test]
fn inventory_diff_says_which_changes_need_fresh_consent() {
    let (dir, _) = initialised();
    let old = dir.path().join("custos.toml");
    let text = std::fs::read_to_string(&old).unwrap();
    let same = custos(
        dir.path(),
        &[
            "inventory",
            "diff",
            old.to_str().unwrap(),
            old.to_str().unwrap(),
        ],
    );
    assert!(same.status.success());
    assert!(stdout(&same).starts_with("no change"), "{}", stdout(&same));

    let new = dir.path().join("next.toml");
    std::fs::write(
        &new,
        text.replacen(
            "# Processors:",
            "[[purposes]]\nid = \"profiling\"\ndescription = \"Recommend products you may like\"\nlegal_basis = \"consent\"\n\n# Processors:",
            1,
        )
        .replacen(
            "category = \"commercial\"\npurposes = [\"support\", \"marketing\"]",
            "category = \"commercial\"\npurposes = [\"support\", \"marketing\", \"profiling\"]",
            1,
        ),
    )
    .unwrap();
    let o = custos(
        dir.path(),
        &[
            "inventory",
            "diff",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
        ],
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    for want in [
        "needs fresh consent  purpose \"profiling\" is new, on consent",
        "needs fresh consent  customers.vip is now used for purpose \"profiling\"",
        "2 change(s) need fresh consent",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

#[test]
fn serve_refuses_a_root_key_others_can_read() {
    let (dir, _) = initialised();
    let key = dir.path().join("root.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = custos(dir.path(), &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("other users can read it: run `chmod 600"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn apikeys_are_printed_once_listed_without_secrets_and_revocable() {
    let (dir, admin) = initialised();
    let o = custos(
        dir.path(),
        &[
            "apikey",
            "create",
            "--name",
            "helpdesk",
            "--role",
            "support_agent",
        ],
    );
    assert!(o.status.success());
    let key = stdout(&o);
    assert!(
        key.starts_with("custos_") && key.ends_with('\n') && key.lines().count() == 1,
        "the key alone: {key:?}"
    );
    assert!(
        !stderr(&o).contains(key.trim()),
        "messages go to stderr, without the key"
    );

    let list = stdout(&custos(dir.path(), &["apikey", "list"]));
    assert!(
        list.contains("helpdesk") && list.contains("support_agent"),
        "{list}"
    );
    assert!(
        !list.contains(key.trim()) && !list.contains(&admin),
        "no secret listed"
    );
    let db = std::fs::read(dir.path().join("custos.db")).unwrap();
    let wal = std::fs::read(dir.path().join("custos.db-wal")).unwrap_or_default();
    let needle = key.trim().as_bytes();
    assert!(
        !db.windows(needle.len()).any(|w| w == needle)
            && !wal.windows(needle.len()).any(|w| w == needle)
    );

    let o = custos(
        dir.path(),
        &["apikey", "create", "--name", "x", "--role", "overlord"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no role \"overlord\""),
        "{}",
        stderr(&o)
    );
    let o = custos(
        dir.path(),
        &["apikey", "create", "--name", "helpdesk", "--role", "admin"],
    );
    assert!(stderr(&o).contains("exists"), "{}", stderr(&o));

    let o = custos(dir.path(), &["apikey", "revoke", "helpdesk"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = stdout(&custos(dir.path(), &["apikey", "list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("helpdesk") && !l.trim_end().ends_with('-')),
        "{list}"
    );
    assert_eq!(
        custos(dir.path(), &["apikey", "revoke", "helpdesk"])
            .status
            .code(),
        Some(2)
    );
}

/// The README's run command: the printed key and curl commands work.
#[tokio::test(flavor = "multi_thread")]
async fn serve_demo_prints_a_key_and_requests_that_work() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--demo", "--demo-records", "200"],
    );
    let out = std::fs::read_to_string(&server.out).unwrap();
    let key = out
        .split("(shown once): ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let curls: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .collect();
    assert_eq!(curls.len(), 3, "{out}");
    let http = client();
    for c in curls {
        assert!(c.contains(&key), "{c}");
        let url = c
            .split('\'')
            .find(|s| s.starts_with("http://"))
            .or_else(|| c.split(' ').find(|s| s.starts_with("http://")))
            .unwrap();
        let req = if c.contains("-X POST") {
            let body = c.split("-d '").nth(1).unwrap().trim_end_matches('\'');
            http.post(url)
                .header("content-type", "application/json")
                .body(body.to_owned())
        } else {
            http.get(url)
        };
        let r = req.bearer_auth(&key).send().await.unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(status == 200 || status == 201, "{c}: {status} {body}");
        if let Some(recs) = body.get("records") {
            assert_eq!(recs.as_array().unwrap().len(), 1, "{c}: {body}");
        }
    }
    // The demo privacy officer's setup link opens their setup, once it is pasted.
    let link = out
        .split_whitespace()
        .find(|w| w.contains("/console/setup?token="))
        .unwrap_or_else(|| panic!("no setup link in {out}"));
    let r = http.get(link).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("privacy.officer@example.com")
    );
    let support = create_key(&dir.path().join("data"), "s", "support_agent");
    let r = http
        .get(server.url("/v1/inventory"))
        .bearer_auth(&support)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    server.stop();
    let v = custos(&dir.path().join("data"), &["audit", "verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
}

/// `custos report ropa`: the record of processing activities, in each format, from a new
/// data directory; an unknown format is refused, naming the flag.
#[test]
fn report_ropa_prints_the_record_in_each_format() {
    let dir = tempfile::tempdir().unwrap();
    let o = custos(dir.path(), &["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let inv =
        custos_core::inventory::Inventory::from_toml(custos_core::inventory::EXAMPLE).unwrap();
    let o = custos(dir.path(), &["report", "ropa"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        json["activities"].as_array().unwrap().len(),
        inv.purposes.len()
    );
    let o = custos(dir.path(), &["report", "ropa", "--format", "csv"]);
    let csv = stdout(&o);
    for p in &inv.purposes {
        assert!(csv.contains(&format!("\"{}\"", p.id)), "{}", p.id);
    }
    for p in &inv.processors {
        assert!(csv.contains(&p.name), "{}", p.name);
    }
    let file = dir.path().join("ropa.html");
    let o = custos(
        dir.path(),
        &[
            "report",
            "ropa",
            "--format",
            "html",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("Record of processing activities")
    );
    let o = custos(dir.path(), &["report", "ropa", "--format", "pdf"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--format"), "{}", stderr(&o));
}
