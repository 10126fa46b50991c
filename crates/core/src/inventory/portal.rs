//! `[portal]`: how this installation's privacy portal runs. Today one setting: the proxies
//! whose `X-Forwarded-For` names the client, so that the per-client limits count customers
//! and not the proxy in front of them.

use std::net::IpAddr;

use serde::Deserialize;
use toml::Spanned;

use super::checker::Checker;

/// `[portal]` as the file says it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPortal {
    #[serde(default)]
    trusted_proxies: Vec<Spanned<String>>,
}

/// How the portal runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortalConfig {
    /// Addresses of the reverse proxies in front of Custos. A request from one of them is
    /// counted against the client its `X-Forwarded-For` names (the nearest address there that
    /// is not itself a trusted proxy); from anywhere else the header is ignored, since anyone
    /// can send it.
    pub trusted_proxies: Vec<IpAddr>,
}

impl PortalConfig {
    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.contains(&ip)
    }
}

/// Reads `[portal]`, reporting an address that is not one.
pub(super) fn portal(c: &mut Checker<'_>, raw: Option<Spanned<RawPortal>>) -> PortalConfig {
    let Some(raw) = raw else {
        return PortalConfig::default();
    };
    let mut out = PortalConfig::default();
    for (i, p) in raw.into_inner().trusted_proxies.into_iter().enumerate() {
        let line = c.line(&p);
        match p.get_ref().trim().parse::<IpAddr>() {
            Ok(ip) => out.trusted_proxies.push(ip),
            Err(_) => c.report(
                line,
                format!("portal.trusted_proxies[{i}]"),
                "is not an IP address (such as 127.0.0.1 or ::1); a proxy is named by its address",
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::inventory::{EXAMPLE, Inventory};

    #[test]
    fn trusted_proxies_are_addresses() {
        let inv = Inventory::from_toml(&format!(
            "{EXAMPLE}\n[portal]\ntrusted_proxies = [\"127.0.0.1\", \"::1\"]\n"
        ))
        .unwrap();
        assert!(inv.portal.trusts("127.0.0.1".parse().unwrap()));
        assert!(inv.portal.trusts("::1".parse().unwrap()));
        assert!(!inv.portal.trusts("10.0.0.1".parse().unwrap()));
        assert!(
            Inventory::from_toml(EXAMPLE)
                .unwrap()
                .portal
                .trusted_proxies
                .is_empty()
        );
        let e = Inventory::from_toml(&format!(
            "{EXAMPLE}\n[portal]\ntrusted_proxies = [\"proxy.internal\"]\n"
        ))
        .unwrap_err();
        let p = &e.problems[0];
        assert_eq!(p.path, "portal.trusted_proxies[0]");
        assert!(p.message.contains("not an IP address"), "{}", p.message);
        assert!(p.line.is_some());
    }

    #[test]
    fn the_examples_commented_section_parses_once_uncommented() {
        let start = EXAMPLE.find("# [portal]").unwrap();
        let section: String = EXAMPLE[start..]
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let inv = Inventory::from_toml(&format!("{EXAMPLE}\n{section}\n")).unwrap();
        assert_eq!(inv.portal.trusted_proxies.len(), 2);
    }
}
