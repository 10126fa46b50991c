//! End-to-end tests: the real `custos` binary, a fresh data directory, real HTTP.

mod architecture;
mod audit;
mod backup;
mod breach;
mod browser;
mod commands;
mod console_browser;
mod durability;
mod erasure;
mod export;
mod keys;
mod loops;
mod mail;
mod portal_browser;
mod postgres;
mod reindex;
mod rekey;
mod requests;
mod rights;
mod secrecy;
mod tls;
mod token;
mod walkthrough;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_custos");

/// Runs `custos --data-dir DIR ARGS...` to completion.
pub(crate) fn custos(dir: &Path, args: &[&str]) -> Output {
    custos_env(dir, args, &[])
}

/// [`custos`] with extra environment variables.
pub(crate) fn custos_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("CUSTOS_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A running `custos serve`, its output captured to files.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    pub(crate) log: PathBuf,
    pub(crate) out: PathBuf,
}

impl Server {
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> Server {
        Server::start_env(dir, extra, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub(crate) fn start_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let tag = format!("{}-{}", std::process::id(), rand_suffix());
        let log = std::env::temp_dir().join(format!("custos-test-{tag}.log"));
        let out = std::env::temp_dir().join(format!("custos-test-{tag}.out"));
        let child = Command::new(BIN)
            .arg("--data-dir")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("CUSTOS_LOG", "debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Server {
            child,
            base: String::new(),
            log,
            out,
        };
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&s.log).unwrap_or_default();
            if let Some(rest) = text.split("custos listening on ").nth(1) {
                s.base = rest.lines().next().unwrap().trim().to_owned();
                return s;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("custos serve exited with {status}: {text}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "custos serve did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server as an operator would (SIGTERM) and waits for it.
    pub(crate) fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the server with SIGKILL: no chance to flush or clean up.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }

    /// The server's process id, to signal it.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        N.fetch_add(1, Ordering::Relaxed),
        Instant::now().elapsed().subsec_nanos()
    )
}

/// Runs `custos ARGS` (a rotation, one item per transaction) on the SQLite vault in `dir`
/// and kills it with SIGKILL once the `kind` rotation in `key_rotations` has done `at_least`;
/// returns how many it had done.
pub(crate) fn kill_half_way(dir: &Path, args: &[&str], kind: &str, at_least: i64) -> i64 {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("CUSTOS_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db = rusqlite::Connection::open(dir.join("custos.db")).unwrap();
    let done = || -> i64 {
        db.query_row(
            "SELECT COALESCE(MAX(done), 0) FROM key_rotations WHERE kind = ?1",
            [kind],
            |r| r.get(0),
        )
        .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while done() < at_least {
        assert!(Instant::now() < deadline, "the rotation made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    done()
}

/// A data directory initialised by `custos init`, with an admin key.
pub(crate) fn initialised() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let o = custos(dir.path(), &["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let key = create_key(dir.path(), "admin", "admin");
    (dir, key)
}

pub(crate) fn create_key(dir: &Path, name: &str, role: &str) -> String {
    let o = custos(dir, &["apikey", "create", "--name", name, "--role", role]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).trim().to_owned()
}

/// One API call with a bearer key: the status and the JSON body (null when there is none).
pub(crate) async fn api(
    method: &str,
    url: String,
    key: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut r = client()
        .request(method.parse().unwrap(), url)
        .bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    (
        r.status().as_u16(),
        r.json().await.unwrap_or(serde_json::Value::Null),
    )
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}
