//! TLS to PostgreSQL as the URL's `sslmode` says, the way libpq reads it, over rustls with
//! the ring provider.
//!
//! tokio-postgres knows `disable`, `prefer` and `require` and neither verifies anything nor
//! knows `sslrootcert`; this module reads `sslmode` and `sslrootcert` out of the URL itself:
//!
//! | `sslmode` | encrypted | certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (the default, as in libpq) | when the server offers TLS | no |
//! | `require` | always | no; with `sslrootcert`, as `verify-ca` (as libpq does) |
//! | `verify-ca` | always | its chain up to a CA of `sslrootcert`, not its host name |
//! | `verify-full` | always | its chain, and that it names the URL's host |
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for this machine's store;
//! `verify-ca` and `verify-full` need it (libpq's `~/.postgresql/root.crt` is not read).
//! The host checked is the URL's host, also when `hostaddr` says where to connect.
//! `allow` is refused rather than approximated.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::StoreError;

/// How a URL asks for TLS: the URL without the parameters tokio-postgres does not know, the
/// mode to give it, and the connector that checks what `sslmode` asks.
pub(super) struct PgTls {
    /// The URL, `sslmode` and `sslrootcert` removed.
    pub(super) url: String,
    /// What tokio-postgres is to do.
    pub(super) mode: SslMode,
    /// The rustls connector.
    pub(super) connector: MakeRustlsConnect,
}

/// What the server's certificate is checked for.
enum Check {
    Nothing,
    Chain(RootCertStore),
    ChainAndName(RootCertStore),
}

/// Reads `sslmode` and `sslrootcert` from `url`.
///
/// # Errors
/// [`StoreError::Backend`] for an `sslmode` this does not honour, a verifying mode without
/// `sslrootcert`, or a root file that cannot be read or holds no certificate.
pub(super) fn from_url(url: &str) -> Result<PgTls, StoreError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut sslmode, mut rootcert, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => sslmode = Some(decode(v)),
            Some(("sslrootcert", v)) => rootcert = Some(decode(v)),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let roots = || match rootcert.as_deref() {
        Some(path) => roots(path),
        None => Err(StoreError::Backend(format!(
            "sslmode={} needs sslrootcert=PATH (a PEM file of the CA certificates the server's certificate must chain to) or sslrootcert=system",
            sslmode.as_deref().unwrap_or_default()
        ))),
    };
    let (mode, check) = match sslmode.as_deref().unwrap_or("prefer") {
        "disable" => (SslMode::Disable, Check::Nothing),
        "prefer" => (SslMode::Prefer, Check::Nothing),
        "require" if rootcert.is_some() => (SslMode::Require, Check::Chain(roots()?)),
        "require" => (SslMode::Require, Check::Nothing),
        "verify-ca" => (SslMode::Require, Check::Chain(roots()?)),
        "verify-full" => (SslMode::Require, Check::ChainAndName(roots()?)),
        other => {
            return Err(StoreError::Backend(format!(
                "sslmode={other} is not one this server honours: use disable, prefer, require, verify-ca or verify-full"
            )));
        }
    };
    Ok(PgTls {
        url,
        mode,
        connector: MakeRustlsConnect::new(client_config(check)?),
    })
}

fn client_config(check: Check) -> Result<ClientConfig, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("configuring TLS: {e}")))?;
    let webpki = |roots: RootCertStore| {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| StoreError::Backend(format!("configuring TLS: {e}")))
    };
    let builder = match check {
        Check::ChainAndName(roots) => builder.with_webpki_verifier(webpki(roots)?),
        Check::Chain(roots) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki(roots)?))),
        Check::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(
                provider.signature_verification_algorithms,
            ))),
    };
    Ok(builder.with_no_client_auth())
}

fn roots(path: &str) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    if path == "system" {
        let found = rustls_native_certs::load_native_certs();
        store.add_parsable_certificates(found.certs);
    } else {
        let bad = |why: String| StoreError::Backend(format!("sslrootcert {path}: {why}"));
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| bad(e.to_string()))?;
            store.add(cert).map_err(|e| bad(e.to_string()))?;
        }
    }
    if store.is_empty() {
        return Err(StoreError::Backend(format!(
            "sslrootcert {path}: no CA certificate found"
        )));
    }
    Ok(store)
}

/// A URL parameter's value, percent-decoded (a path may be written with `%2F`).
fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `verify-ca`: webpki's check of the chain, without its check of the name. webpki checks
/// the chain first, so a certificate refused only for its name has a valid chain.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a root: encrypted, the certificate taken as it comes (as
/// libpq does). The handshake's signatures are still checked against it.
#[derive(Debug)]
struct Unchecked(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::{decode, from_url};
    use tokio_postgres::config::SslMode;

    fn check(url: &str, expect_url: &str, mode: SslMode) {
        let t = from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(t.url, expect_url);
        assert_eq!(t.mode, mode, "{url}");
    }

    #[test]
    fn modes_as_libpq_reads_them() {
        let base = "postgres://u@h:5432/db";
        check(base, base, SslMode::Prefer);
        check(
            &format!("{base}?sslmode=disable&options=-c%20x%3D1"),
            &format!("{base}?options=-c%20x%3D1"),
            SslMode::Disable,
        );
        check(&format!("{base}?sslmode=prefer"), base, SslMode::Prefer);
        check(&format!("{base}?sslmode=require"), base, SslMode::Require);
    }

    #[test]
    fn refusals_name_the_parameter() {
        let e = |q: &str| {
            from_url(&format!("postgres://u@h/db?{q}"))
                .err()
                .unwrap()
                .to_string()
        };
        assert!(e("sslmode=allow").contains("sslmode=allow is not one"));
        assert!(e("sslmode=verify-full").contains("needs sslrootcert"));
        assert!(e("sslmode=verify-ca").contains("needs sslrootcert"));
        assert!(
            e("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
                .contains("sslrootcert /nonexistent/ca.pem")
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        assert!(
            e(&format!(
                "sslmode=verify-ca&sslrootcert={}",
                empty.display()
            ))
            .contains("no CA certificate found")
        );
    }

    #[test]
    fn values_are_percent_decoded() {
        assert_eq!(decode("%2Ftmp%2Fca.pem"), "/tmp/ca.pem");
        assert_eq!(decode("a%zz%4"), "a%zz%4");
    }
}
