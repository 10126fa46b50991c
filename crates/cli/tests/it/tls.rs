//! HTTPS end to end: `custos init --tls-self-signed`, `custos serve` with `[tls]` or the
//! flags, TLS versions, plain HTTP on the TLS port, HSTS and the portal's cookies, and the
//! certificate reloaded on SIGHUP while an open connection keeps working.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::{Server, custos, stderr};

const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// A data directory made by `custos init --tls-self-signed localhost`.
fn tls_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let o = custos(dir.path(), &["init", "--tls-self-signed", "localhost"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("[tls]       added to"),
        "{}",
        stderr(&o)
    );
    dir
}

fn addr(server: &Server) -> SocketAddr {
    server
        .base
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("not https: {}", server.base))
        .parse()
        .unwrap()
}

/// A client trusting the certificates in these PEM texts, offering only `versions`.
fn client(pems: &[&str], versions: &[&'static SupportedProtocolVersion]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for pem in pems {
        for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn connect(to: SocketAddr, tls: &TlsConnector) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(to).await?;
    tls.connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// One HTTP/1.1 request on a kept-alive connection: the head (lower-cased) and the body.
async fn get<S>(stream: &mut S, path: &str) -> (String, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed before an answer");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed inside a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    (head, body)
}

fn peer_cert(s: &TlsStream<TcpStream>) -> Vec<u8> {
    s.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

/// A certificate for localhost and its key, both PEM, from rcgen.
fn another_cert() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

#[tokio::test]
async fn tls_13_only_by_default_with_hsts_and_host_cookies() {
    let dir = tls_dir();
    let key = dir.path().join("tls/key.pem");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key is for the owner only");
    let server = Server::start(dir.path(), &[]);
    let to = addr(&server);
    let cert = read(dir.path(), "tls/cert.pem");

    let mut s = connect(to, &client(&[&cert], TLS13)).await.unwrap();
    assert_eq!(
        s.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_3)
    );
    let (head, body) = get(&mut s, "/healthz").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(body.contains("ok"), "{body}");
    assert!(
        head.contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    // Every answer: a refusal and a portal page too.
    let (head, _) = get(&mut s, "/v1/inventory").await;
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("strict-transport-security"), "{head}");
    let (head, _) = get(&mut s, "/portal/signin").await;
    let set = head
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    assert!(
        set.starts_with("set-cookie: __host-custos_signin="),
        "{set}"
    );
    for part in ["; path=/;", "; secure", "; httponly", "; samesite=strict"] {
        assert!(set.contains(part), "{set} lacks {part}");
    }

    // A client that can only speak TLS 1.2 is refused in the handshake.
    let refused = connect(to, &client(&[&cert], TLS12)).await;
    assert!(refused.is_err(), "a TLS 1.2 client was accepted");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(to).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP was answered: {}",
        String::from_utf8_lossy(&answer)
    );
    server.stop();
}

#[tokio::test]
async fn min_version_12_accepts_a_tls_12_client() {
    let dir = tls_dir();
    // `init` wrote [tls] last in the file.
    let inventory = dir.path().join("custos.toml");
    let text = std::fs::read_to_string(&inventory).unwrap();
    std::fs::write(&inventory, format!("{text}min_version = \"1.2\"\n")).unwrap();
    let server = Server::start(dir.path(), &[]);
    let cert = read(dir.path(), "tls/cert.pem");
    for (versions, expect) in [
        (TLS12, ProtocolVersion::TLSv1_2),
        (TLS13, ProtocolVersion::TLSv1_3),
    ] {
        let mut s = connect(addr(&server), &client(&[&cert], versions))
            .await
            .unwrap();
        assert_eq!(s.get_ref().1.protocol_version(), Some(expect));
        let (head, _) = get(&mut s, "/healthz").await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("strict-transport-security"), "{head}");
    }
    server.stop();
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_open_connections_keep_working() {
    let dir = tls_dir();
    let server = Server::start(dir.path(), &[]);
    let to = addr(&server);
    let a = read(dir.path(), "tls/cert.pem");
    let (b, b_key) = another_cert();
    let both = client(&[&a, &b], TLS13);
    let mut open = connect(to, &both).await.unwrap();
    let (head, _) = get(&mut open, "/healthz").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let a_der = peer_cert(&open);

    // Renewed files, then SIGHUP.
    std::fs::write(dir.path().join("tls/cert.pem"), &b).unwrap();
    std::fs::write(dir.path().join("tls/key.pem"), &b_key).unwrap();
    let hup = || {
        let pid = rustix::process::Pid::from_raw(server.pid() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    };
    hup();
    let started = Instant::now();
    let b_der = loop {
        let s = connect(to, &both).await.unwrap();
        if peer_cert(&s) != a_der {
            break peer_cert(&s);
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let b_expect = CertificateDer::from_pem_slice(b.as_bytes()).unwrap();
    assert_eq!(b_der, b_expect.to_vec(), "the new connection sees cert B");
    // A client trusting only the old certificate no longer gets in; the open connection,
    // made under it, still answers.
    assert!(connect(to, &client(&[&a], TLS13)).await.is_err());
    let (head, _) = get(&mut open, "/healthz").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");

    // A broken file on the next SIGHUP: the server says so and keeps cert B.
    std::fs::write(dir.path().join("tls/cert.pem"), "not a certificate").unwrap();
    hup();
    let started = Instant::now();
    while !std::fs::read_to_string(&server.log)
        .unwrap()
        .contains("reloading the TLS certificate failed")
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no error logged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = connect(to, &both).await.unwrap();
    assert_eq!(peer_cert(&s), b_expect.to_vec());
    let log = server.stop();
    assert!(log.contains("holds no PEM certificate"), "{log}");
}

#[tokio::test]
async fn flags_serve_tls_and_a_bad_file_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = custos(dir.path(), &["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (cert, key) = another_cert();
    let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert_file, &cert).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let (c, k) = (cert_file.to_str().unwrap(), key_file.to_str().unwrap());

    // Without TLS: plain HTTP, and no HSTS.
    let plain = Server::start(dir.path(), &[]);
    assert!(plain.base.starts_with("http://"), "{}", plain.base);
    let mut s = TcpStream::connect(plain.base.strip_prefix("http://").unwrap())
        .await
        .unwrap();
    let (head, _) = get(&mut s, "/portal/signin").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("strict-transport-security"), "{head}");
    assert!(head.contains("set-cookie: custos_signin="), "{head}");
    assert!(!head.contains("secure"), "{head}");
    plain.stop();

    let server = Server::start(dir.path(), &["--tls-cert", c, "--tls-key", k]);
    let mut s = connect(addr(&server), &client(&[&cert], TLS13))
        .await
        .unwrap();
    let (head, _) = get(&mut s, "/healthz").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    server.stop();

    // The key given as the certificate, and a missing file: refused at start, naming it.
    let o = custos(dir.path(), &["serve", "--tls-cert", k, "--tls-key", k]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("{k} holds no PEM certificate")),
        "{}",
        stderr(&o)
    );
    let missing = dir.path().join("missing.pem");
    let m = missing.to_str().unwrap();
    let o = custos(dir.path(), &["serve", "--tls-cert", c, "--tls-key", m]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("reading {m}")),
        "{}",
        stderr(&o)
    );
    // A key that is not the certificate's.
    let (_, other_key) = another_cert();
    std::fs::write(&key_file, other_key).unwrap();
    let o = custos(dir.path(), &["serve", "--tls-cert", c, "--tls-key", k]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot serve the certificate"),
        "{}",
        stderr(&o)
    );
}
