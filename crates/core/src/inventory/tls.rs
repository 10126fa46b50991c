//! `[tls]`: the certificate and key `custos serve` answers HTTPS with, and the oldest TLS
//! version it accepts. Only paths and a version: reading the files is the server's, when it
//! starts and on SIGHUP.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::checker::Checker;

/// `[tls]` as the file says it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    min_version: Option<Spanned<String>>,
}

/// How the server answers HTTPS: `[tls]` (or `custos serve --tls-cert --tls-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The PEM file of the certificate chain, the server's own certificate first. A relative
    /// path is read from the data directory ([`TlsConfig::in_dir`]).
    pub cert: PathBuf,
    /// The PEM file of the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The oldest protocol version a client may use.
    pub min_version: TlsVersion,
}

impl TlsConfig {
    /// The same files with relative paths read from `dir` (the data directory), as every
    /// path in the inventory is.
    pub fn in_dir(&self, dir: &Path) -> TlsConfig {
        TlsConfig {
            cert: dir.join(&self.cert),
            key: dir.join(&self.key),
            min_version: self.min_version,
        }
    }
}

/// The oldest TLS version the server accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3: only for clients that cannot do 1.3 yet.
    Tls12,
    /// TLS 1.3 only: the default.
    #[default]
    Tls13,
}

impl TlsVersion {
    /// Its name as written in the file: `"1.2"` or `"1.3"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }
}

/// Reads `[tls]`: both files named, and a version this server offers. `None` without the
/// section, or with problems (reported).
pub(super) fn tls(c: &mut Checker<'_>, raw: Option<Spanned<RawTls>>) -> Option<TlsConfig> {
    let raw = raw?;
    let line = c.line(&raw);
    let t = raw.into_inner();
    let mut file = |value: Option<Spanned<String>>, name: &str, what: &str| match value {
        Some(v) if !v.get_ref().trim().is_empty() => Some(PathBuf::from(v.into_inner())),
        Some(v) => {
            let line = c.line(&v);
            c.report(
                line,
                format!("tls.{name}"),
                format!("the {what} path is empty"),
            );
            None
        }
        None => {
            c.report(
                line,
                format!("tls.{name}"),
                format!(
                    "the {what} is missing: write {name} = \"tls/{name}.pem\" (a PEM file; a relative path is read from the data directory)"
                ),
            );
            None
        }
    };
    let cert = file(t.cert, "cert", "certificate's PEM file");
    let key = file(t.key, "key", "private key's PEM file");
    let min_version = match t.min_version {
        None => Some(TlsVersion::default()),
        Some(v) => match v.get_ref().trim() {
            "1.3" => Some(TlsVersion::Tls13),
            "1.2" => Some(TlsVersion::Tls12),
            other => {
                c.report(
                    c.line(&v),
                    "tls.min_version",
                    format!(
                        "{other:?} is not a version this server offers: write \"1.3\" (the default) or \"1.2\"; TLS 1.1 and older are never accepted"
                    ),
                );
                None
            }
        },
    };
    Some(TlsConfig {
        cert: cert?,
        key: key?,
        min_version: min_version?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::TlsVersion;
    use crate::inventory::{EXAMPLE, Inventory};

    fn with(section: &str) -> Result<Inventory, Vec<(String, String)>> {
        Inventory::from_toml(&format!("{EXAMPLE}\n[tls]\n{section}\n")).map_err(|e| {
            e.problems
                .into_iter()
                .map(|p| {
                    assert!(p.line.is_some(), "{p}");
                    (p.path, p.message)
                })
                .collect()
        })
    }

    #[test]
    fn without_the_section_there_is_no_tls() {
        assert_eq!(Inventory::from_toml(EXAMPLE).unwrap().tls, None);
    }

    #[test]
    fn both_files_and_tls_13_by_default() {
        let inv = with("cert = \"tls/cert.pem\"\nkey = \"/etc/custos/key.pem\"").unwrap();
        let t = inv.tls.unwrap();
        assert_eq!(t.min_version, TlsVersion::Tls13);
        let t = t.in_dir(Path::new("/data"));
        assert_eq!(t.cert, Path::new("/data/tls/cert.pem"));
        assert_eq!(t.key, Path::new("/etc/custos/key.pem"));
        let inv = with("cert = \"c.pem\"\nkey = \"k.pem\"\nmin_version = \"1.2\"").unwrap();
        assert_eq!(inv.tls.unwrap().min_version, TlsVersion::Tls12);
    }

    #[test]
    fn each_problem_names_its_field_and_rule() {
        let check = |section: &str, path: &str, words: &str| {
            let problems = with(section).unwrap_err();
            assert!(
                problems.iter().any(|(p, m)| p == path && m.contains(words)),
                "{section}: {problems:?}"
            );
        };
        check(
            "key = \"k.pem\"",
            "tls.cert",
            "certificate's PEM file is missing",
        );
        check(
            "cert = \"c.pem\"",
            "tls.key",
            "private key's PEM file is missing",
        );
        check("cert = \"\"\nkey = \"k.pem\"", "tls.cert", "path is empty");
        for v in ["1.1", "1.0", "3", "tls1.3"] {
            check(
                &format!("cert = \"c.pem\"\nkey = \"k.pem\"\nmin_version = \"{v}\""),
                "tls.min_version",
                "write \"1.3\" (the default) or \"1.2\"",
            );
        }
        let problems = with("cert = \"c.pem\"\nkey = \"k.pem\"\nciphers = \"all\"").unwrap_err();
        assert!(problems[0].1.contains("ciphers"), "{problems:?}");
    }

    #[test]
    fn the_examples_commented_section_parses_once_uncommented() {
        let start = EXAMPLE.find("# [tls]").unwrap();
        let section: String = EXAMPLE[start..]
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let inv = Inventory::from_toml(&format!("{EXAMPLE}\n{section}\n")).unwrap();
        assert_eq!(inv.tls.unwrap().cert, Path::new("tls/cert.pem"));
    }
}
