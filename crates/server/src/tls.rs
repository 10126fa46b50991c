//! HTTPS: whether this server answers over TLS itself ([`Scheme`]), which decides HSTS and
//! the cookies' names, and the certificate it answers with ([`Tls`]), read from PEM files and
//! replaced in place on reload.
//!
//! rustls 0.23 with the ring provider, given to each configuration rather than installed as
//! the process's default. TLS 1.3 only unless `[tls] min_version = "1.2"`; a client that
//! offers nothing the server accepts fails the handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum_server::tls_rustls::RustlsConfig;
use custos_core::inventory::{TlsConfig, TlsVersion};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How browsers reach this server, as far as this process knows: over plain HTTP (perhaps
/// behind a proxy that terminates TLS), or over TLS that it serves itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP: no HSTS, and cookies without `Secure`, which a browser would refuse here.
    #[default]
    Http,
    /// HTTPS served by this process: HSTS on every answer, and `__Host-` cookies that are
    /// `Secure`.
    Https,
}

/// The HSTS header of every answer over HTTPS: a year, this host only (`includeSubDomains`
/// would bind hosts this server knows nothing of).
pub const HSTS: &str = "max-age=31536000";

/// Adds [`HSTS`] to an answer.
pub(crate) async fn hsts(mut res: Response) -> Response {
    res.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    );
    res
}

/// Why a certificate and key could not be used. Each names its file; none quotes a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate, or a broken one.
    #[error("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----){}", path.display(), detail(.source))]
    Certificate {
        /// The file.
        path: PathBuf,
        /// The PEM parser's reason, when it had one.
        source: Option<rustls::pki_types::pem::Error>,
    },
    /// The key file holds no PEM private key, or a broken one.
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1){}", path.display(), detail(.source))]
    Key {
        /// The file.
        path: PathBuf,
        /// The PEM parser's reason, when it had one.
        source: Option<rustls::pki_types::pem::Error>,
    },
    /// rustls refused the pair: a key that is not the certificate's, or of a kind it cannot
    /// sign with.
    #[error("the key in {} cannot serve the certificate in {}: {source}", key.display(), cert.display())]
    Refused {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
}

fn detail(e: &Option<rustls::pki_types::pem::Error>) -> String {
    e.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
}

/// The certificate this server answers HTTPS with, and the files it came from. Clones share
/// one configuration: [`Tls::reload`] through any of them changes what every later
/// handshake gets, while connections already open keep theirs.
#[derive(Clone)]
pub struct Tls {
    files: TlsConfig,
    rustls: RustlsConfig,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

impl Tls {
    /// Reads the certificate chain and key that `files` names (paths as given: resolve them
    /// first with [`TlsConfig::in_dir`]).
    ///
    /// # Errors
    /// A [`TlsError`] naming the file that cannot be read or used.
    pub fn load(files: TlsConfig) -> Result<Tls, TlsError> {
        let config = server_config(&files)?;
        Ok(Tls {
            files,
            rustls: RustlsConfig::from_config(config),
        })
    }

    /// Reads the files again and answers later handshakes with what they hold now. On an
    /// error the certificate in use stays.
    ///
    /// # Errors
    /// As [`Tls::load`].
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.files)?;
        self.rustls.reload_from_config(config);
        Ok(())
    }

    /// The files and version this was loaded with.
    pub fn files(&self) -> &TlsConfig {
        &self.files
    }

    pub(crate) fn rustls(&self) -> RustlsConfig {
        self.rustls.clone()
    }
}

fn server_config(files: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read(&files.cert)?;
    let certs = CertificateDer::pem_slice_iter(&certs)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate {
            path: files.cert.clone(),
            source: Some(e),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: files.cert.clone(),
            source: None,
        });
    }
    let key = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        source: match e {
            rustls::pki_types::pem::Error::NoItemsFound => None,
            e => Some(e),
        },
    })?;
    let refused = |source| TlsError::Refused {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let versions: &[&rustls::SupportedProtocolVersion] = match files.min_version {
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .map_err(refused)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(refused)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}
