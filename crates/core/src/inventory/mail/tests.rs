//! `[mail]`: every rule, each problem with its line and path.

use super::super::{EXAMPLE, Inventory};
use super::*;

/// The example with `section` appended, and the line the section's first line is on.
fn with(section: &str) -> (String, usize) {
    let text = format!("{EXAMPLE}\n{section}");
    (text, EXAMPLE.lines().count() + 2)
}

fn config(section: &str) -> MailConfig {
    Inventory::from_toml(&with(section).0).unwrap().mail
}

/// The problems of the example with `section` appended.
fn problems(section: &str) -> Vec<String> {
    Inventory::from_toml(&with(section).0)
        .unwrap_err()
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect()
}

/// Appending `section` yields exactly the problems `expect`, each containing its text.
fn check(section: &str, expect: &[&str]) {
    let got = problems(section);
    assert_eq!(got.len(), expect.len(), "{section}\n{got:#?}");
    for (g, e) in got.iter().zip(expect) {
        assert!(g.contains(e), "{g:?} should contain {e:?}");
    }
}

#[test]
fn without_mail_it_goes_to_files_from_the_contact() {
    let inv = Inventory::from_toml(EXAMPLE).unwrap();
    assert_eq!(
        inv.mail,
        MailConfig {
            from: Mailbox {
                name: Some("Example Shop Ltd".into()),
                address: "privacy@shop.example".into(),
            },
            transport: MailTransport::File {
                dir: PathBuf::from("mail"),
            },
        }
    );
    // How this installation sends mail is not part of what it declares.
    let served = serde_json::to_string(&inv).unwrap();
    assert!(!served.contains("\"mail\""), "{served}");
}

#[test]
fn a_contact_that_is_no_address_needs_a_mail_section() {
    let text = EXAMPLE.replacen(
        "contact = \"privacy@shop.example\"",
        "contact = \"https://shop.example/privacy\"",
        1,
    );
    let e = Inventory::from_toml(&text).unwrap_err().to_string();
    assert!(
        e.contains("organization.contact: without [mail], mail is sent from the contact, which is not an email address"),
        "{e}"
    );
    let fixed = format!("{text}\n[mail]\nfrom = \"Shop <privacy@shop.example>\"\n");
    assert!(Inventory::from_toml(&fixed).is_ok());
}

#[test]
fn the_examples_commented_section_parses_once_uncommented() {
    let start = EXAMPLE.find("# [mail]").unwrap();
    let section: String = EXAMPLE[start..]
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let c = config(&section);
    assert_eq!(c.from.to_string(), "Example Shop <privacy@shop.example>");
    assert_eq!(
        c.transport,
        MailTransport::Smtp(SmtpConfig {
            host: "smtp.example.com".into(),
            port: 587,
            security: SmtpSecurity::Starttls,
            credentials: Some(CredentialVars {
                username_env: "CUSTOS_SMTP_USERNAME".into(),
                password_env: "CUSTOS_SMTP_PASSWORD".into(),
            }),
        })
    );
}

#[test]
fn ports_default_by_security_and_file_defaults_to_mail() {
    let smtp =
        |security: &str| {
            match config(&format!(
        "[mail]\nfrom = \"a@shop.example\"\ntransport = \"smtp\"\nhost = \"localhost\"\n{security}"
    ))
    .transport
    {
        MailTransport::Smtp(s) => (s.port, s.security, s.credentials),
        other => panic!("{other:?}"),
    }
        };
    assert_eq!(smtp(""), (587, SmtpSecurity::Starttls, None));
    assert_eq!(smtp("security = \"tls\""), (465, SmtpSecurity::Tls, None));
    assert_eq!(smtp("security = \"none\""), (25, SmtpSecurity::None, None));
    assert_eq!(
        smtp("security = \"none\"\nport = 2525"),
        (2525, SmtpSecurity::None, None)
    );
    let c = config("[mail]\nfrom = \"a@shop.example\"\n");
    assert_eq!(c.from.name, None);
    assert_eq!(
        c.transport,
        MailTransport::File {
            dir: PathBuf::from("mail")
        }
    );
    let c = config(
        "[mail]\nfrom = \"a@shop.example\"\ntransport = \"file\"\ndir = \"/var/spool/custos\"\n",
    );
    assert_eq!(
        c.transport,
        MailTransport::File {
            dir: PathBuf::from("/var/spool/custos")
        }
    );
}

#[test]
fn security_none_is_refused_off_loopback_and_says_so() {
    for host in ["localhost", "127.0.0.1", "127.8.9.1", "::1", "LocalHost"] {
        let c = config(&format!(
            "[mail]\nfrom = \"a@shop.example\"\ntransport = \"smtp\"\nhost = \"{host}\"\nsecurity = \"none\"\n"
        ));
        assert!(matches!(c.transport, MailTransport::Smtp(_)), "{host}");
    }
    let (text, first) = with(
        "[mail]\nfrom = \"a@shop.example\"\ntransport = \"smtp\"\nhost = \"smtp.example.com\"\nsecurity = \"none\"\n",
    );
    let e = Inventory::from_toml(&text).unwrap_err();
    assert_eq!(e.problems.len(), 1, "{e:?}");
    let p = e.problems[0].to_string();
    assert!(
        p.starts_with(&format!(
            "line {}: mail.security: none sends mail and the login in clear",
            first + 4
        )),
        "{p}"
    );
    assert!(p.contains("refused unless the host is loopback"), "{p}");
    assert!(
        p.contains("use starttls or tls for smtp.example.com"),
        "{p}"
    );
    assert!(!is_loopback("10.0.0.1") && !is_loopback("localhost.example.com"));
}

#[test]
fn each_mail_problem_is_named_with_its_place() {
    let rows: &[(&str, &[&str])] = &[
        (
            "[mail]\ntransport = \"file\"\n",
            &["mail.from: the sender is missing"],
        ),
        (
            "[mail]\nfrom = \"Example Shop\"\n",
            &["mail.from: \"Example Shop\" is not a sender (it has no @)"],
        ),
        (
            "[mail]\nfrom = \"Shop <a@shop.example\"\n",
            &[
                "mail.from: \"Shop <a@shop.example\" is not a sender (the address must be written whole",
            ],
        ),
        (
            "[mail]\nfrom = \"a@shop.example\"\ntransport = \"sendmail\"\n",
            &["mail.transport: \"sendmail\" is not a transport: choose smtp or file"],
        ),
        (
            "[mail]\nfrom = \"a@shop.example\"\ntransport = \"smtp\"\n",
            &["mail.host: the smtp transport needs the relay's host"],
        ),
        (
            "[mail]\nfrom = \"a@shop.example\"\ntransport = \"smtp\"\nhost = \"smtp.example.com:587\"\n",
            &["mail.host: \"smtp.example.com:587\" is not a host name or IP address"],
        ),
        (
            "[mail]\nfrom = \"a@shop.example\"\ntransport = \"smtp\"\nhost = \"smtp.example.com\"\nport = 0\n",
            &["mail.port: 0 is not a port: choose 1 to 65535"],
        ),
        (
            "[mail]\nfrom = \"a@shop.example\"\ntransport = \"smtp\"\nhost = \"smtp.example.com\"\nport = 70000\n",
            &["mail.port: 70000 is not a port"],
        ),
        (
            "[mail]\nfrom = \"a@shop.example\"\ntransport = \"smtp\"\nhost = \"smtp.example.com\"\nsecurity = \"ssl\"\n",
            &[
                "mail.security: \"ssl\" is not a security: choose starttls, tls (implicit TLS) or none",
            ],
        ),
        (
            "[mail]\nfrom = \"a@shop.example\"\ntransport = \"smtp\"\nhost = \"smtp.example.com\"\nusername_env = \"CUSTOS_SMTP_USERNAME\"\n",
            &["mail: a login needs both username_env and password_env"],
        ),
        (
            "[mail]\nfrom = \"a@shop.example\"\ntransport = \"smtp\"\nhost = \"smtp.example.com\"\nusername_env = \"U\"\npassword_env = \"hunter2 secret\"\n",
            &["mail.password_env: this names an environment variable (A-Z, 0-9, _)"],
        ),
        (
            "[mail]\nfrom = \"a@shop.example\"\nhost = \"smtp.example.com\"\nport = 25\n",
            &[
                "mail.host: only the smtp transport has a host",
                "mail.port: only the smtp transport has a port",
            ],
        ),
        (
            "[mail]\nfrom = \"a@shop.example\"\ntransport = \"smtp\"\nhost = \"smtp.example.com\"\ndir = \"mail\"\n",
            &["mail.dir: only the file transport writes to a directory"],
        ),
        (
            "[mail]\nfrom = \"a@shop.example\"\ndir = \"\"\n",
            &["mail.dir: the directory is empty"],
        ),
        (
            "[mail]\nfrom = \"a@shop.example\"\npassword = \"x\"\n",
            &["unknown field `password`"],
        ),
    ];
    for (section, expect) in rows {
        check(section, expect);
    }
}

#[test]
fn a_credential_written_in_by_mistake_is_never_repeated() {
    let got = problems(
        "[mail]\nfrom = \"a@shop.example\"\ntransport = \"smtp\"\nhost = \"smtp.example.com\"\nusername_env = \"ops@shop.example\"\npassword_env = \"hunter2-canary\"\n",
    );
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got.iter()
            .all(|p| !p.contains("hunter2") && !p.contains("ops@")),
        "{got:#?}"
    );
}

#[test]
fn several_mail_problems_are_all_reported_on_their_lines() {
    let (text, first) = with(
        "[mail]\nfrom = \"nobody\"\ntransport = \"smtp\"\nhost = \"bad host\"\nport = -1\nsecurity = \"ssl\"\n",
    );
    let got: Vec<String> = Inventory::from_toml(&text)
        .unwrap_err()
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect();
    let want = [
        format!("line {}: mail.from", first + 1),
        format!("line {}: mail.host", first + 3),
        format!("line {}: mail.port", first + 4),
        format!("line {}: mail.security", first + 5),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(&want) {
        assert!(g.starts_with(w), "{g:?} should start with {w:?}");
    }
}
