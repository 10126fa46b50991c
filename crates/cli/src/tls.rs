//! `custos serve` over HTTPS: which files to serve, and reloading them on SIGHUP.

use std::path::PathBuf;

use anyhow::{Context, Result};
use custos_core::inventory::{TlsConfig, TlsVersion};
use custos_server::Tls;
use custos_vault::Paths;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The certificate to serve: `--tls-cert`/`--tls-key` (paths as given, with the file's
/// `min_version` if it has `[tls]`), else `[tls]` (relative paths from the data directory),
/// else none: plain HTTP.
///
/// # Errors
/// When the files cannot be read or used: the error names the file.
pub(crate) fn load(
    paths: &Paths,
    file: Option<&TlsConfig>,
    flags: Option<(PathBuf, PathBuf)>,
) -> Result<Option<Tls>> {
    let config = match (flags, file) {
        (Some((cert, key)), file) => TlsConfig {
            cert,
            key,
            min_version: file.map_or(TlsVersion::default(), |f| f.min_version),
        },
        (None, Some(file)) => file.in_dir(&paths.dir),
        (None, None) => return Ok(None),
    };
    Tls::load(config)
        .map(Some)
        .context("loading the TLS certificate and key")
}

/// The SIGHUP stream, taken before the server says it listens, so that a SIGHUP from then
/// on reloads rather than ends the process.
///
/// # Errors
/// When the signal handler cannot be installed.
pub(crate) fn hangups() -> Result<Signal> {
    signal(SignalKind::hangup()).context("listening for SIGHUP")
}

/// Reloads the certificate and key on every SIGHUP. A failure keeps the certificate in use
/// and says why (the error names the file; no key material is in it).
pub(crate) async fn reload_on_hangup(tls: Tls, mut hangups: Signal) {
    while hangups.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => tracing::info!(
                cert = %tls.files().cert.display(),
                "reloaded the TLS certificate"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "reloading the TLS certificate failed; the one in use stays"
            ),
        }
    }
}
