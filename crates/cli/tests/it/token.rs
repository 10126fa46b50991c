//! A root key in a PKCS#11 token, with the real binary and a real token (SoftHSM2 on its own
//! files): `init` generates version 1 inside it, `serve` wraps and unwraps there, a rotation
//! under a write and read load adds version 2 and retires version 1, a restarted server
//! serves everything, customers' data keys are replaced (the new ones wrapped in the token),
//! and a backup is made and verified. The token reports every version generated inside and never extractable;
//! the PIN is in no output or log; a wrong or missing PIN is refused naming where it is read.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::postgres::read;
use crate::{Server, client, custos_env, stderr, stdout};

/// Debian's SoftHSM2 module (package softhsm2, which .ci/run installs).
const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "4711-token-pin-3141";
const PIN_VAR: &str = "CUSTOS_TEST_TOKEN_PIN";

/// A SoftHSM2 configuration of its own, with one initialised token.
pub(crate) struct SoftHsm {
    _dir: tempfile::TempDir,
    conf: PathBuf,
}

impl SoftHsm {
    pub(crate) fn new(label: &str) -> SoftHsm {
        assert!(
            Path::new(MODULE).exists(),
            "SoftHSM2 is not installed ({MODULE} is missing): `apt-get install softhsm2`, as .ci/run does"
        );
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let o = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", "12345678", "--pin", PIN])
            .output()
            .expect("softhsm2-util runs (apt-get install softhsm2)");
        assert!(o.status.success(), "{}", stderr(&o));
        SoftHsm { _dir: dir, conf }
    }

    /// The environment a process using the token runs with, here with `pin` as its PIN.
    pub(crate) fn env(&self, pin: &str) -> Vec<(&'static str, String)> {
        vec![
            ("SOFTHSM2_CONF", self.conf.display().to_string()),
            (PIN_VAR, pin.to_owned()),
        ]
    }
}

/// The `[root_key.pkcs11]` section naming the token labelled `token`.
pub(crate) fn token_section(token: &str) -> String {
    format!(
        "\n[root_key.pkcs11]\nmodule = \"{MODULE}\"\ntoken = \"{token}\"\npin_env = \"{PIN_VAR}\"\n"
    )
}

fn run(dir: &Path, args: &[&str], env: &[(&'static str, String)]) -> Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    custos_env(dir, args, &env)
}

fn said(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// Every wrapped key in the database, subjects' and the vault's own.
fn wrapped_versions(dir: &Path) -> Vec<u32> {
    let c = rusqlite::Connection::open(dir.join("custos.db")).unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT wrapped FROM subject_keys",
        "SELECT wrapped FROM vault_keys",
    ] {
        let mut st = c.prepare(sql).unwrap();
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap();
        out.extend(rows.map(|w| {
            let w = w.unwrap();
            u32::from_be_bytes([w[1], w[2], w[3], w[4]])
        }));
    }
    out
}

fn status(dir: &Path, env: &[(&'static str, String)]) -> Value {
    let o = run(dir, &["keys", "status", "--json"], env);
    assert!(o.status.success(), "{}", said(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn version(status: &Value, v: u64) -> Value {
    status["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["version"] == v)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_root_key_in_softhsm_serves_rotates_and_restarts() {
    let hsm = SoftHsm::new("custos");
    let env = hsm.env(PIN);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("custos.toml"),
        format!(
            "{}{}",
            custos_core::inventory::EXAMPLE,
            token_section("custos")
        ),
    )
    .unwrap();

    let o = run(dir.path(), &["init"], &env);
    assert!(o.status.success(), "{}", said(&o));
    assert!(
        stderr(&o).contains("custos-root-1 in the PKCS#11 token \"custos\"")
            && stderr(&o).contains("generated now"),
        "{}",
        said(&o)
    );
    assert!(
        !dir.path().join("root.key").exists(),
        "no key file: the root key is in the token"
    );
    let s = status(dir.path(), &env);
    assert_eq!(version(&s, 1)["token_label"], "custos-root-1", "{s}");
    assert_eq!(version(&s, 1)["never_left_token"], true, "{s}");

    let o = run(
        dir.path(),
        &["apikey", "create", "--name", "admin", "--role", "admin"],
        &env,
    );
    assert!(o.status.success(), "{}", said(&o));
    let key = stdout(&o).trim().to_owned();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_env(dir.path(), &[], &envs);
    let http = client();
    let base = server.base.clone();
    let first = crate::rekey::seed(&base, &key, 30).await;
    assert!(wrapped_versions(dir.path()).iter().all(|v| *v == 1));

    // A rotation while two writers write (new customers, records of customers, updates)
    // and read back.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|w| {
            let mine = first.iter().skip(w).step_by(2).cloned().collect();
            let servers = (base.clone(), base.clone());
            tokio::spawn(crate::rekey::worker(
                w,
                servers,
                key.clone(),
                mine,
                Arc::clone(&done),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (d, e) = (dir.path().to_owned(), env.clone());
    let rotation =
        tokio::task::spawn_blocking(move || run(&d, &["keys", "rotate-root", "--batch", "5"], &e))
            .await
            .unwrap();
    assert!(rotation.status.success(), "{}", said(&rotation));
    assert!(
        said(&rotation).contains("root key version 2"),
        "{}",
        said(&rotation)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for l in load {
        acked.extend(l.await.unwrap());
    }
    assert!(acked.len() > 40, "the load wrote: {}", acked.len());
    let log = server.stop();
    assert!(!log.contains(PIN), "the PIN is in the server's log");
    assert!(
        log.contains("root key versions in the token looked up again"),
        "the server found version 2 in the token by itself"
    );

    let s = status(dir.path(), &env);
    assert_eq!(version(&s, 1)["wraps"], 0, "{s}");
    assert_eq!(version(&s, 2)["token_label"], "custos-root-2", "{s}");
    assert_eq!(version(&s, 2)["never_left_token"], true, "{s}");
    let o = run(dir.path(), &["keys", "retire", "1"], &env);
    assert!(o.status.success(), "{}", said(&o));
    let s = status(dir.path(), &env);
    assert_eq!(
        version(&s, 1)["held"],
        false,
        "version 1 is gone from the token: {s}"
    );
    assert!(wrapped_versions(dir.path()).iter().all(|v| *v == 2));

    // A restart serves every record from the token's version 2 alone.
    let server = Server::start_env(dir.path(), &[], &envs);
    for (id, _, email) in &acked {
        let r = read(&http, &server.base, &key, id).await;
        assert_eq!(r.status().as_u16(), 200, "record {id} after the restart");
        assert_eq!(
            r.json::<Value>().await.unwrap()["fields"]["email"],
            email.as_str()
        );
    }
    server.stop();
    let o = run(dir.path(), &["audit", "verify"], &env);
    assert!(o.status.success(), "{}", said(&o));

    // Customers' data keys replaced, each new key wrapped inside the token; a backup made and
    // verified with the token's key.
    let o = run(dir.path(), &["keys", "rotate-subjects"], &env);
    assert!(o.status.success(), "{}", said(&o));
    assert!(said(&o).contains("given a new key"), "{}", said(&o));
    let server = Server::start_env(dir.path(), &[], &envs);
    for (id, _, email) in acked.iter().step_by(7) {
        let r = read(&http, &server.base, &key, id).await;
        assert_eq!(
            r.status().as_u16(),
            200,
            "record {id} after its key was replaced"
        );
        assert_eq!(
            r.json::<Value>().await.unwrap()["fields"]["email"],
            email.as_str()
        );
    }
    server.stop();
    let backup = dir.path().join("t.custos-backup");
    let backup = backup.to_str().unwrap();
    let o = run(dir.path(), &["backup", "create", backup], &env);
    assert!(o.status.success(), "{}", said(&o));
    let o = run(dir.path(), &["backup", "verify", backup], &env);
    assert!(o.status.success(), "{}", said(&o));
    assert!(said(&o).contains("verifies"), "{}", said(&o));

    // Another vault on the same token, with a new database, does not adopt its keys.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(
        other.path().join("custos.toml"),
        format!(
            "{}{}",
            custos_core::inventory::EXAMPLE,
            token_section("custos")
        ),
    )
    .unwrap();
    let o = run(other.path(), &["init"], &env);
    assert!(
        !o.status.success(),
        "a new vault adopted another's token keys"
    );
    assert!(said(&o).contains("for another vault"), "{}", said(&o));

    // A wrong PIN and a missing one are refused, saying where the PIN is read, never a PIN.
    let o = run(dir.path(), &["audit", "verify"], &hsm.env("0000-wrong-pin"));
    assert!(!o.status.success());
    assert!(
        said(&o).contains(&format!(
            "refused the PIN read from the environment variable {PIN_VAR}"
        )),
        "{}",
        said(&o)
    );
    assert!(!said(&o).contains("0000-wrong-pin"));
    let o = run(dir.path(), &["audit", "verify"], &env[..1]);
    assert!(!o.status.success());
    assert!(
        said(&o).contains(&format!("{PIN_VAR} is not set")),
        "{}",
        said(&o)
    );
    assert!(!said(&rotation).contains(PIN));
}
