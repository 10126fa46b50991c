//! Test support: a real SMTP receiver on loopback (Python's `aiosmtpd`) whose messages tests
//! read back, for the vault's delivery tests and the end-to-end tests of the crates above it.
//! Behind the `test-support` feature.
//!
//! A test that needs the sink fails, never skips, when Python 3 or aiosmtpd is missing: the
//! panic says how to install it (`.ci/run` does).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// The receiver: every message accepted is written, parsed, as one JSON file. A recipient
/// whose local part starts with `bounce` is refused for good (550), quoting the address as
/// real relays do; one starting with `later` is refused for now (451).
const SINK: &str = r#"
import asyncio, email, email.policy, json, os, sys, uuid
from aiosmtpd.controller import Controller

out, port = sys.argv[1], int(sys.argv[2])

class Sink:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            return "550 5.1.1 <%s>: no such user here" % address
        if address.startswith("later"):
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        doc = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg.get("From", "")),
            "to": str(msg.get("To", "")),
            "subject": str(msg.get("Subject", "")),
            "message_id": str(msg.get("Message-ID", "")),
            "body": body.get_content() if body is not None else "",
            "raw": raw.decode("utf-8", "replace"),
        }
        name = uuid.uuid4().hex
        tmp = os.path.join(out, "." + name)
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.rename(tmp, os.path.join(out, name + ".json"))
        return "250 OK: queued"

controller = Controller(Sink(), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
"#;

/// What installs the sink's one requirement.
pub const INSTALL_HINT: &str = "the SMTP sink needs Python 3 with aiosmtpd: install it with `python3 -m pip install aiosmtpd` (.ci/run does)";

/// One message the sink accepted.
#[derive(Debug, Clone, Deserialize)]
pub struct Received {
    /// The envelope's sender (`MAIL FROM`).
    pub mail_from: String,
    /// The envelope's recipients (`RCPT TO`).
    pub rcpt_tos: Vec<String>,
    /// The `From` header.
    pub from: String,
    /// The `To` header.
    pub to: String,
    /// The `Subject` header, decoded.
    pub subject: String,
    /// The `Message-ID` header.
    pub message_id: String,
    /// The plain-text body, decoded.
    pub body: String,
    /// The message as it came over the wire.
    pub raw: String,
}

/// A running SMTP receiver on `127.0.0.1`, stopped and its files removed on drop.
pub struct SmtpSink {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmtpSink(127.0.0.1:{})", self.port)
    }
}

/// A loopback port nothing listens on at the moment it is returned.
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a loopback port")
}

impl SmtpSink {
    /// A sink on a free port.
    ///
    /// # Panics
    /// As [`SmtpSink::start_on`].
    pub fn start() -> SmtpSink {
        Self::start_on(free_port())
    }

    /// A sink on `port`, once it accepts connections.
    ///
    /// # Panics
    /// When Python 3 or aiosmtpd is missing (with [`INSTALL_HINT`]), or the sink cannot start.
    pub fn start_on(port: u16) -> SmtpSink {
        let probe = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output();
        match probe {
            Ok(o) if o.status.success() => {}
            _ => panic!("{INSTALL_HINT}"),
        }
        let dir = std::env::temp_dir().join(format!(
            "custos-smtp-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        std::fs::create_dir_all(&dir).expect("creating the sink's directory");
        let mut child = Command::new("python3")
            .args(["-c", SINK])
            .arg(&dir)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting python3: {e}: {INSTALL_HINT}"));
        let stdout = child.stdout.take().expect("the sink's stdout");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "ready" {
            let _ = child.kill();
            panic!("the SMTP sink did not start on port {port} (see its output above)");
        }
        SmtpSink { child, dir, port }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory its messages are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every message accepted so far, in no particular order.
    ///
    /// # Panics
    /// When a message file cannot be read.
    pub fn received(&self) -> Vec<Received> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).expect("reading the sink's directory") {
            let path = entry.expect("a sink entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).expect("reading a received message");
                out.push(serde_json::from_str(&text).expect("a received message"));
            }
        }
        out
    }

    /// Waits until at least `n` messages have arrived, or `timeout` passes; returns what
    /// arrived either way.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n || start.elapsed() > timeout {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn uuid_like() -> String {
    custos_core::crypto::random_bytes(8)
        .map(hex::encode)
        .unwrap_or_default()
}
