//! `[breach]` and `[[webhooks]]`: how alerts are raised and where they go. Webhook secrets
//! are never in the file: it names the environment variable that holds each.

use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;

use super::checker::Checker;
use super::mail::is_loopback;
use crate::breach::detect::Thresholds;
use crate::mail::Mailbox;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBreach {
    suspend_on_alert: Option<bool>,
    time_zone: Option<Spanned<String>>,
    alert_mail: Option<Vec<Spanned<String>>>,
    canary_domain: Option<Spanned<String>>,
    read_factor: Option<Spanned<f64>>,
    read_floor: Option<u64>,
    baseline_days: Option<Spanned<u32>>,
    rare_share: Option<Spanned<f64>>,
    rare_floor: Option<u64>,
    min_history: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    url: Option<Spanned<String>>,
    secret_env: Option<Spanned<String>>,
}

/// `[breach]`, or its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct BreachConfig {
    /// Whether an alert about an API key or an operator suspends it at once (the key is
    /// revoked, the operator disabled).
    pub suspend_on_alert: bool,
    /// The time zone deadlines are shown in and calendar days end in; UTC by default.
    pub time_zone: Tz,
    /// Who alerts are mailed to: the organization's contact unless the file says.
    pub alert_mail: Vec<String>,
    /// The domain canary addresses are made in: one that receives mail for the
    /// organization, so mail to a canary is noticed too. `example.net` by default.
    pub canary_domain: String,
    /// The unusual-access rules' thresholds.
    pub thresholds: Thresholds,
}

/// One `[[webhooks]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Where alerts are posted: HTTPS, or HTTP only to this machine.
    pub url: String,
    /// The environment variable holding the signing secret, read when a delivery is made.
    pub secret_env: String,
}

pub(super) fn breach(
    c: &mut Checker<'_>,
    raw: Option<Spanned<RawBreach>>,
    contact: Option<&str>,
) -> BreachConfig {
    let b = raw.map(Spanned::into_inner).unwrap_or_default();
    let defaults = Thresholds::default();
    let time_zone = match &b.time_zone {
        None => Tz::UTC,
        Some(z) => z.get_ref().parse::<Tz>().unwrap_or_else(|_| {
            c.report(
                c.line(z),
                "breach.time_zone",
                format!(
                    "{:?} is not an IANA time zone (write one such as \"Europe/London\" or \"America/Los_Angeles\")",
                    z.get_ref()
                ),
            );
            Tz::UTC
        }),
    };
    let alert_mail = match b.alert_mail {
        None => contact
            .and_then(|s| s.parse::<Mailbox>().ok())
            .map(|m| vec![m.address])
            .unwrap_or_default(),
        Some(list) => list
            .into_iter()
            .filter_map(|a| match a.get_ref().parse::<Mailbox>() {
                Ok(m) => Some(m.address),
                Err(e) => {
                    c.report(
                        c.line(&a),
                        "breach.alert_mail",
                        format!("is not an email address ({e})"),
                    );
                    None
                }
            })
            .collect(),
    };
    let canary_domain = match &b.canary_domain {
        None => "example.net".to_string(),
        Some(d) => {
            let s = d.get_ref().trim().to_ascii_lowercase();
            let ok = s.contains('.')
                && s.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                });
            if !ok {
                c.report(
                    c.line(d),
                    "breach.canary_domain",
                    "is not a domain name (letters, digits and hyphens, with a dot)",
                );
            }
            s
        }
    };
    let mut positive = |v: &Option<Spanned<f64>>, name: &str, max: f64, default: f64| match v {
        None => default,
        Some(x) if *x.get_ref() > 0.0 && *x.get_ref() <= max => *x.get_ref(),
        Some(x) => {
            c.report(
                c.line(x),
                format!("breach.{name}"),
                format!("must be above 0 and at most {max}"),
            );
            default
        }
    };
    let factor = positive(&b.read_factor, "read_factor", 1e6, defaults.factor);
    let rare_share = positive(&b.rare_share, "rare_share", 1.0, defaults.rare_share);
    let baseline_days = match b.baseline_days {
        None => defaults.baseline_days,
        Some(d) if (1..=366).contains(d.get_ref()) => *d.get_ref(),
        Some(d) => {
            c.report(c.line(&d), "breach.baseline_days", "must be 1 to 366 days");
            defaults.baseline_days
        }
    };
    BreachConfig {
        suspend_on_alert: b.suspend_on_alert.unwrap_or(false),
        time_zone,
        alert_mail,
        canary_domain,
        thresholds: Thresholds {
            factor,
            floor: b.read_floor.unwrap_or(defaults.floor),
            baseline_days,
            rare_share,
            rare_floor: b.rare_floor.unwrap_or(defaults.rare_floor),
            min_history: b.min_history.unwrap_or(defaults.min_history),
        },
    }
}

pub(super) fn webhooks(c: &mut Checker<'_>, raw: Vec<Spanned<RawWebhook>>) -> Vec<WebhookConfig> {
    let mut out = Vec::new();
    for (i, w) in raw.into_iter().enumerate() {
        let line = c.line(&w);
        let w = w.into_inner();
        let path = |f: &str| format!("webhooks[{i}].{f}");
        let url = match w.url {
            None => {
                c.report(line, path("url"), "the URL alerts are posted to is missing");
                None
            }
            Some(u) => {
                let s = u.get_ref().trim().to_string();
                let host = s
                    .strip_prefix("https://")
                    .map(|r| (true, r))
                    .or_else(|| s.strip_prefix("http://").map(|r| (false, r)));
                match host {
                    Some((tls, rest)) => {
                        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                        let host = match authority.rsplit_once(':') {
                            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
                            _ => authority,
                        };
                        if authority.contains('@') {
                            c.report(
                                c.line(&u),
                                path("url"),
                                "holds a user name or password: put the secret in the variable secret_env names",
                            );
                            None
                        } else if host.is_empty() {
                            c.report(c.line(&u), path("url"), "has no host");
                            None
                        } else if !tls && !is_loopback(host) {
                            c.report(
                                c.line(&u),
                                path("url"),
                                format!(
                                    "http:// would post alerts in clear over the network: use https:// for {host} (http:// only to localhost, 127.0.0.1, ::1)"
                                ),
                            );
                            None
                        } else {
                            Some(s)
                        }
                    }
                    None => {
                        c.report(
                            c.line(&u),
                            path("url"),
                            "must start with https:// (or http:// to this machine)",
                        );
                        None
                    }
                }
            }
        };
        let secret_env = match w.secret_env {
            Some(e) if is_env_name(e.get_ref()) => Some(e.into_inner()),
            Some(e) => {
                c.report(
                    c.line(&e),
                    path("secret_env"),
                    "must name an environment variable (A-Z, 0-9, _), never hold the secret",
                );
                None
            }
            None => {
                c.report(
                    line,
                    path("secret_env"),
                    "is missing: name the environment variable that holds the signing secret",
                );
                None
            }
        };
        if let (Some(url), Some(secret_env)) = (url, secret_env) {
            out.push(WebhookConfig { url, secret_env });
        }
    }
    out
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use crate::inventory::Inventory;

    fn with(extra: &str) -> Result<Inventory, String> {
        let text = format!("{}\n{extra}", crate::inventory::EXAMPLE);
        Inventory::from_toml(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_when_the_file_says_nothing() {
        let inv = with("").unwrap();
        assert!(!inv.breach.suspend_on_alert);
        assert_eq!(inv.breach.time_zone, chrono_tz::Tz::UTC);
        assert_eq!(
            inv.breach.alert_mail,
            vec![inv.organization.contact.clone()]
        );
        assert!(inv.webhooks.is_empty());
    }

    #[test]
    fn every_problem_is_named() {
        let e = with(
            "[breach]\ntime_zone = \"Mars/Olympus\"\nalert_mail = [\"nobody\"]\nread_factor = 0\n\
             [[webhooks]]\nurl = \"http://hooks.example/x\"\nsecret_env = \"s3cret-value\"\n\
             [[webhooks]]\nsecret_env = \"HOOK\"\n\
             [[webhooks]]\nurl = \"https://u:p@hooks.example/x\"\nsecret_env = \"HOOK\"\n",
        )
        .unwrap_err();
        for want in [
            "breach.time_zone",
            "breach.alert_mail",
            "breach.read_factor",
            "webhooks[0].url",
            "webhooks[0].secret_env",
            "webhooks[1].url",
            "webhooks[2].url",
        ] {
            assert!(e.contains(want), "{want} in {e}");
        }
    }

    #[test]
    fn a_full_section_reads() {
        let inv = with(
            "[breach]\nsuspend_on_alert = true\ntime_zone = \"Europe/London\"\nread_floor = 5\n\
             [[webhooks]]\nurl = \"http://127.0.0.1:9000/hook\"\nsecret_env = \"CUSTOS_HOOK\"\n\
             [[webhooks]]\nurl = \"https://hooks.example/custos\"\nsecret_env = \"HOOK_2\"\n",
        )
        .unwrap();
        assert!(inv.breach.suspend_on_alert);
        assert_eq!(inv.breach.time_zone, chrono_tz::Europe::London);
        assert_eq!(inv.breach.thresholds.floor, 5);
        assert_eq!(inv.webhooks.len(), 2);
        assert_eq!(inv.webhooks[0].secret_env, "CUSTOS_HOOK");
    }
}
