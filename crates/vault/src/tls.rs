//! `custos init --tls-self-signed NAME`: a development certificate and its key in the data
//! directory (`tls/cert.pem`, `tls/key.pem` with mode 0600), and `[tls]` in `custos.toml`
//! naming them. Made with rcgen (ECDSA P-256); browsers warn about it, as they should about
//! any certificate no authority vouches for.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{Datelike, Days, Utc};
use custos_core::inventory::Inventory;

use crate::{Paths, VaultError};

/// Where `--tls-self-signed` writes, relative to the data directory.
pub const SELF_SIGNED_CERT: &str = "tls/cert.pem";
/// Where `--tls-self-signed` writes the key, relative to the data directory.
pub const SELF_SIGNED_KEY: &str = "tls/key.pem";
/// How long a development certificate is valid.
pub const SELF_SIGNED_DAYS: u64 = 365;

/// What [`self_signed_tls`] did.
#[derive(Debug, Clone)]
pub struct SelfSignedReport {
    /// The certificate file (mode 0644).
    pub cert: PathBuf,
    /// The key file (mode 0600).
    pub key: PathBuf,
    /// The names and addresses the certificate is valid for.
    pub names: Vec<String>,
    /// Whether `[tls]` was added to `custos.toml` (false: the file had one, kept as it was).
    pub enabled: bool,
}

/// Makes a self-signed certificate for `name` (and, for `localhost`, 127.0.0.1 and ::1 too),
/// writes it and its key into the data directory, and adds `[tls]` naming them to the
/// inventory unless it has one. Existing files are never overwritten.
///
/// # Errors
/// [`VaultError::Setup`] when `name` is no host name or IP address, a file exists already or
/// cannot be written, or the inventory cannot be read.
pub fn self_signed_tls(paths: &Paths, name: &str) -> Result<SelfSignedReport, VaultError> {
    let names = names_for(name)?;
    let cert_path = paths.dir.join(SELF_SIGNED_CERT);
    let key_path = paths.dir.join(SELF_SIGNED_KEY);
    for p in [&cert_path, &key_path] {
        if p.exists() {
            return Err(VaultError::Setup(format!(
                "{} exists already: remove it first to make a new certificate",
                p.display()
            )));
        }
    }
    let (cert_pem, key_pem) = generate(name, &names)
        .map_err(|e| VaultError::Setup(format!("making the certificate: {e}")))?;
    let dir = paths.dir.join("tls");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| VaultError::Setup(format!("creating {}: {e}", dir.display())))?;
    write_new(&key_path, key_pem.as_bytes(), 0o600)?;
    write_new(&cert_path, cert_pem.as_bytes(), 0o644)?;
    let enabled = enable(&paths.inventory)?;
    Ok(SelfSignedReport {
        cert: cert_path,
        key: key_path,
        names,
        enabled,
    })
}

/// The subject alternative names for `name`.
fn names_for(name: &str) -> Result<Vec<String>, VaultError> {
    let name = name.trim().to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 253
        && (name.parse::<std::net::IpAddr>().is_ok()
            || name.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    if !ok {
        return Err(VaultError::Setup(format!(
            "{name:?} is not a host name or IP address: give the name browsers will use, such as localhost or custos.example.internal"
        )));
    }
    let mut names = vec![name.clone()];
    if name == "localhost" {
        names.extend(["127.0.0.1".to_owned(), "::1".to_owned()]);
    }
    Ok(names)
}

/// A certificate and key, both PEM, valid from yesterday for [`SELF_SIGNED_DAYS`].
fn generate(name: &str, names: &[String]) -> Result<(String, String), rcgen::Error> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let day = |d: chrono::NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    let today = Utc::now().date_naive();
    params.not_before = day(today - Days::new(1));
    params.not_after = day(today + Days::new(SELF_SIGNED_DAYS));
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), VaultError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(|e| VaultError::Setup(format!("writing {}: {e}", path.display())))
}

/// Adds `[tls]` naming the files to the inventory, unless it has one.
fn enable(inventory: &Path) -> Result<bool, VaultError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map_err(|e| VaultError::Setup(format!("reading {}: {e}", p.display())))
    };
    let text = read(inventory)?;
    let parsed = Inventory::from_toml(&text)
        .map_err(|e| VaultError::Setup(format!("{}: {e}", inventory.display())))?;
    if parsed.tls.is_some() {
        return Ok(false);
    }
    let section = format!(
        "\n# Added by `custos init --tls-self-signed`: a development certificate.\n[tls]\ncert = \"{SELF_SIGNED_CERT}\"\nkey = \"{SELF_SIGNED_KEY}\"\n"
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(inventory)
        .map_err(|e| VaultError::Setup(format!("opening {}: {e}", inventory.display())))?;
    let sep = if text.ends_with('\n') { "" } else { "\n" };
    f.write_all(format!("{sep}{section}").as_bytes())
        .map_err(|e| VaultError::Setup(format!("writing {}: {e}", inventory.display())))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::names_for;

    #[test]
    fn names_are_host_names_or_addresses() {
        assert_eq!(
            names_for("LocalHost").unwrap(),
            ["localhost", "127.0.0.1", "::1"]
        );
        assert_eq!(names_for("custos.internal").unwrap(), ["custos.internal"]);
        assert_eq!(names_for("10.1.2.3").unwrap(), ["10.1.2.3"]);
        for bad in ["", "a b", "x..y", "evil/../path", "é.example"] {
            assert!(names_for(bad).is_err(), "{bad}");
        }
    }
}
