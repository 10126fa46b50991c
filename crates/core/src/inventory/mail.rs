//! `[mail]`: who the vault's mail is from and how it goes out (an SMTP relay, or files in a
//! directory), and checking it. Credentials are never in the file: it names the environment
//! variables that hold them.

use std::net::IpAddr;
use std::path::PathBuf;

use toml::Spanned;

use super::Organization;
use super::checker::Checker;
use super::raw::RawMail;
use crate::mail::Mailbox;

/// Where mail goes when the file has no `[mail]`: files in this directory, relative to the
/// data directory.
pub const DEFAULT_MAIL_DIR: &str = "mail";

/// `[mail]`, or its default: files in `mail/` of the data directory, from the organization's
/// contact address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// The sender every message carries.
    pub from: Mailbox,
    /// How messages leave.
    pub transport: MailTransport,
}

/// How messages leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// Submitted to an SMTP relay.
    Smtp(SmtpConfig),
    /// Written as one `.eml` file each into this directory (relative paths are read from the
    /// data directory): for development and for a pickup directory another program sends from.
    File {
        /// The directory.
        dir: PathBuf,
    },
}

/// An SMTP relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// The relay's host name or IP address, lower-cased.
    pub host: String,
    /// Its port: 587 for STARTTLS, 465 for TLS, 25 for none unless the file says.
    pub port: u16,
    /// How the connection is protected.
    pub security: SmtpSecurity,
    /// The environment variables holding the login, when the relay wants one.
    pub credentials: Option<CredentialVars>,
}

/// The names of the environment variables a relay's login is read from when the server
/// starts; never the values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialVars {
    /// The variable holding the user name.
    pub username_env: String,
    /// The variable holding the password.
    pub password_env: String,
}

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, refused if the relay cannot (port 587).
    Starttls,
    /// TLS from the first byte (implicit TLS, port 465).
    Tls,
    /// No encryption: only to a relay on loopback.
    None,
}

impl SmtpSecurity {
    const ALL: [(&'static str, SmtpSecurity); 3] = [
        ("starttls", SmtpSecurity::Starttls),
        ("tls", SmtpSecurity::Tls),
        ("none", SmtpSecurity::None),
    ];

    /// Its name as written in the file.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map(|(n, _)| *n)
            .expect("every security is listed")
    }

    /// The port a relay listens on for it, by convention.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

/// Whether `host` is this machine: `localhost` or a loopback address.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `[mail]`, or its default when the file has none; `None` when it has problems (reported).
pub(super) fn mail(
    c: &mut Checker<'_>,
    raw: Option<Spanned<RawMail>>,
    organization: Option<&Organization>,
) -> Option<MailConfig> {
    let Some(raw) = raw else {
        return default_mail(c, organization?);
    };
    let line = c.line(&raw);
    let m = raw.into_inner();
    let from = match &m.from {
        Some(f) => sender(c, f),
        None => {
            c.report(
                line,
                "mail.from",
                "the sender is missing: write from = \"Example Shop <privacy@shop.example>\"",
            );
            None
        }
    };
    let transport = match m
        .transport
        .as_ref()
        .map(|t| (c.line(t), t.get_ref().as_str()))
    {
        None | Some((_, "file")) => file(c, &m),
        Some((_, "smtp")) => smtp(c, line, &m).map(MailTransport::Smtp),
        Some((line, other)) => {
            c.report(
                line,
                "mail.transport",
                format!("{other:?} is not a transport: choose smtp or file"),
            );
            None
        }
    };
    Some(MailConfig {
        from: from?,
        transport: transport?,
    })
}

/// Without `[mail]`: files in `mail/`, from the organization's name and contact address.
fn default_mail(c: &mut Checker<'_>, organization: &Organization) -> Option<MailConfig> {
    match organization.contact.parse::<Mailbox>() {
        Ok(m) => Some(MailConfig {
            from: Mailbox {
                name: m.name.or_else(|| Some(organization.name.clone())),
                address: m.address,
            },
            transport: MailTransport::File {
                dir: PathBuf::from(DEFAULT_MAIL_DIR),
            },
        }),
        Err(e) => {
            c.report(
                None,
                "organization.contact",
                format!(
                    "without [mail], mail is sent from the contact, which is not an email address ({e}): write one, or add [mail] with from = \"Name <address>\""
                ),
            );
            None
        }
    }
}

fn sender(c: &mut Checker<'_>, from: &Spanned<String>) -> Option<Mailbox> {
    from.get_ref()
        .parse::<Mailbox>()
        .map_err(|e| {
            c.report(
                c.line(from),
                "mail.from",
                format!(
                    "{:?} is not a sender ({e}): write \"Name <address>\" or an address",
                    from.get_ref()
                ),
            )
        })
        .ok()
}

/// The file transport: its directory, and no SMTP key.
fn file(c: &mut Checker<'_>, m: &RawMail) -> Option<MailTransport> {
    let smtp_keys = [
        ("host", m.host.as_ref().map(|s| s.span())),
        ("port", m.port.as_ref().map(|s| s.span())),
        ("security", m.security.as_ref().map(|s| s.span())),
        ("username_env", m.username_env.as_ref().map(|s| s.span())),
        ("password_env", m.password_env.as_ref().map(|s| s.span())),
    ];
    let mut clean = true;
    for (key, span) in smtp_keys {
        if let Some(span) = span {
            let line = Some(c.line_of(span));
            c.report(
                line,
                format!("mail.{key}"),
                format!(
                    "only the smtp transport has a {key}: write transport = \"smtp\", or remove it"
                ),
            );
            clean = false;
        }
    }
    let dir = match &m.dir {
        None => PathBuf::from(DEFAULT_MAIL_DIR),
        Some(d) if d.get_ref().trim().is_empty() || d.get_ref().contains('\0') => {
            c.report(
                c.line(d),
                "mail.dir",
                "the directory is empty: name one, relative to the data directory (\"mail\")",
            );
            return None;
        }
        Some(d) => PathBuf::from(d.get_ref()),
    };
    clean.then_some(MailTransport::File { dir })
}

/// The SMTP transport: a host, a port, a security that fits the host, and credentials named
/// by environment variables, both or neither.
fn smtp(c: &mut Checker<'_>, line: Option<usize>, m: &RawMail) -> Option<SmtpConfig> {
    if let Some(d) = &m.dir {
        c.report(
            c.line(d),
            "mail.dir",
            "only the file transport writes to a directory: remove dir, or write transport = \"file\"",
        );
    }
    let host = match &m.host {
        None => {
            c.report(
                line,
                "mail.host",
                "the smtp transport needs the relay's host: write host = \"smtp.example.com\"",
            );
            None
        }
        Some(h) => host(c, h),
    };
    let security = match &m.security {
        None => Some(SmtpSecurity::Starttls),
        Some(s) => {
            let found = SmtpSecurity::ALL.iter().find(|(n, _)| n == s.get_ref());
            if found.is_none() {
                c.report(
                    c.line(s),
                    "mail.security",
                    format!(
                        "{:?} is not a security: choose starttls, tls (implicit TLS) or none",
                        s.get_ref()
                    ),
                );
            }
            found.map(|(_, s)| *s)
        }
    };
    let in_clear =
        matches!((&host, security), (Some(h), Some(SmtpSecurity::None)) if !is_loopback(h));
    if in_clear {
        let at = m.security.as_ref().and_then(|s| c.line(s));
        c.report(
            at,
            "mail.security",
            format!(
                "none sends mail and the login in clear over the network, so it is refused unless the host is loopback (localhost, 127.0.0.1, ::1): use starttls or tls for {}",
                host.as_deref().unwrap_or_default()
            ),
        );
    }
    let port = port(
        c,
        m.port.as_ref(),
        security.unwrap_or(SmtpSecurity::Starttls),
    );
    let credentials = credentials(c, line, m);
    if in_clear {
        return None;
    }
    Some(SmtpConfig {
        host: host?,
        port: port?,
        security: security?,
        credentials: credentials?,
    })
}

/// A host name (letters, digits, hyphens, dots) or an IP address.
fn host(c: &mut Checker<'_>, raw: &Spanned<String>) -> Option<String> {
    let h = raw.get_ref().trim().to_ascii_lowercase();
    let name_ok = !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        });
    if name_ok || h.parse::<IpAddr>().is_ok() {
        return Some(h);
    }
    c.report(
        c.line(raw),
        "mail.host",
        format!(
            "{:?} is not a host name or IP address: write the relay's name alone, such as \"smtp.example.com\" (the port goes in port)",
            raw.get_ref()
        ),
    );
    None
}

fn port(c: &mut Checker<'_>, raw: Option<&Spanned<i64>>, security: SmtpSecurity) -> Option<u16> {
    let Some(p) = raw else {
        return Some(security.default_port());
    };
    match u16::try_from(*p.get_ref()) {
        Ok(n) if n > 0 => Some(n),
        _ => {
            c.report(
                c.line(p),
                "mail.port",
                format!("{} is not a port: choose 1 to 65535", p.get_ref()),
            );
            None
        }
    }
}

/// `username_env` and `password_env`: both or neither, each the name of an environment
/// variable. `Some(None)` when neither is given; `None` when they have problems.
fn credentials(
    c: &mut Checker<'_>,
    line: Option<usize>,
    m: &RawMail,
) -> Option<Option<CredentialVars>> {
    let mut var = |key: &str, raw: &Option<Spanned<String>>| -> Option<Option<String>> {
        let Some(v) = raw else {
            return Some(None);
        };
        let name = v.get_ref();
        let ok = name
            .chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_uppercase() || ch == '_')
            && name
                .chars()
                .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_');
        if ok {
            return Some(Some(name.clone()));
        }
        // The value may be a password written in by mistake: never repeat it.
        c.report(
            c.line(v),
            format!("mail.{key}"),
            "this names an environment variable (A-Z, 0-9, _), such as CUSTOS_SMTP_PASSWORD: the credential itself never goes in this file",
        );
        None
    };
    let username = var("username_env", &m.username_env);
    let password = var("password_env", &m.password_env);
    match (username?, password?) {
        (None, None) => Some(None),
        (Some(username_env), Some(password_env)) => Some(Some(CredentialVars {
            username_env,
            password_env,
        })),
        (Some(_), None) | (None, Some(_)) => {
            c.report(
                line,
                "mail",
                "a login needs both username_env and password_env: name both variables, or neither",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests;
