//! How a message leaves: an SMTP relay (lettre over rustls) or `.eml` files in a directory,
//! and the RFC 5322 message lettre renders. A failure is described in our own words: a
//! relay's answer may quote the recipient's address, so it is never passed on.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use custos_core::ids::MailId;
use custos_core::inventory::{MailConfig, MailTransport, SmtpConfig, SmtpSecurity};
use custos_core::mail::{Mail, Mailbox};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::VaultError;

/// How long one SMTP step (connecting, each command) may take before the attempt fails.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the vault's mail goes, built once from `[mail]` when the server starts.
pub enum Transport {
    /// Submission to an SMTP relay.
    Smtp(SmtpRelay),
    /// One `.eml` file per message in this directory (mode 0700, files 0600).
    File(PathBuf),
}

/// An SMTP relay and the login read from the environment when it was built.
pub struct SmtpRelay {
    relay: AsyncSmtpTransport<Tokio1Executor>,
    host: String,
    port: u16,
    security: SmtpSecurity,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Transport({self})")
    }
}

impl fmt::Display for Transport {
    /// Where mail goes, in words for a log line: never the login.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Smtp(s) => write!(f, "smtp {}:{} ({})", s.host, s.port, s.security.as_str()),
            Transport::File(dir) => write!(f, "files in {}", dir.display()),
        }
    }
}

/// Why an attempt failed, in words that hold no address and no part of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendError {
    /// Whether trying again cannot help (the relay refused the message for good).
    pub(crate) permanent: bool,
    /// What happened.
    pub(crate) reason: String,
}

impl SendError {
    fn transient(reason: impl Into<String>) -> Self {
        SendError {
            permanent: false,
            reason: reason.into(),
        }
    }

    fn permanent(reason: impl Into<String>) -> Self {
        SendError {
            permanent: true,
            reason: reason.into(),
        }
    }
}

impl Transport {
    /// The transport `[mail]` describes: for SMTP, the relay with the login read now from the
    /// environment variables the file names; for files, the directory (relative to
    /// `data_dir`), created mode 0700 if need be.
    ///
    /// # Errors
    /// [`VaultError::Setup`] when a named variable is not set (naming the variable, never a
    /// value), the relay's TLS settings cannot be built, or the directory cannot be created.
    pub fn from_config(config: &MailConfig, data_dir: &Path) -> Result<Transport, VaultError> {
        match &config.transport {
            MailTransport::File { dir } => {
                let dir = data_dir.join(dir);
                private_dir(&dir)?;
                Ok(Transport::File(dir))
            }
            MailTransport::Smtp(smtp) => Ok(Transport::Smtp(relay(smtp)?)),
        }
    }

    /// Hands one message over: submitted to the relay, or written to its file.
    pub(crate) async fn send(
        &self,
        from: &Mailbox,
        id: MailId,
        created_ms: i64,
        mail: &Mail,
    ) -> Result<(), SendError> {
        let message = render(from, id, created_ms, mail)?;
        match self {
            Transport::Smtp(s) => s.relay.send(message).await.map(drop).map_err(smtp_error),
            Transport::File(dir) => {
                let (dir, name) = (dir.clone(), eml_name(id, created_ms));
                let bytes = zeroize::Zeroizing::new(message.formatted());
                tokio::task::spawn_blocking(move || write_eml(&dir, &name, &bytes))
                    .await
                    .map_err(|_| SendError::transient("the file writer stopped"))?
            }
        }
    }
}

fn env_var(name: &str, key: &str) -> Result<String, VaultError> {
    std::env::var(name).map_err(|_| {
        VaultError::Setup(format!(
            "[mail] {key} names the environment variable {name}, which is not set (or not UTF-8): set it before starting custos"
        ))
    })
}

fn relay(smtp: &SmtpConfig) -> Result<SmtpRelay, VaultError> {
    let tls_failed = |e: lettre::transport::smtp::Error| {
        VaultError::Setup(format!(
            "[mail] the TLS settings for {} cannot be built: {e}",
            smtp.host
        ))
    };
    let builder = match smtp.security {
        SmtpSecurity::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(tls_failed)?
        }
        SmtpSecurity::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(tls_failed)?
        }
        // Only to loopback: the inventory refuses it for any other host.
        SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
    };
    let mut builder = builder.port(smtp.port).timeout(Some(SMTP_TIMEOUT));
    if let Some(vars) = &smtp.credentials {
        let user = env_var(&vars.username_env, "username_env")?;
        let password = env_var(&vars.password_env, "password_env")?;
        builder = builder.credentials(Credentials::new(user, password));
    }
    Ok(SmtpRelay {
        relay: builder.build(),
        host: smtp.host.clone(),
        port: smtp.port,
        security: smtp.security,
    })
}

/// The message as lettre renders it: plain text, its Message-ID made from the mail id so a
/// message sent twice (see `docs/mail.md`) can be recognised as one.
fn render(from: &Mailbox, id: MailId, created_ms: i64, mail: &Mail) -> Result<Message, SendError> {
    let sender = from
        .address
        .parse::<lettre::Address>()
        .map_err(|_| SendError::permanent("the sender's address is not one lettre accepts"))?;
    let recipient = mail
        .expose_to()
        .parse::<lettre::Address>()
        .map_err(|_| SendError::permanent("the recipient's address is not one lettre accepts"))?;
    let domain = from
        .address
        .rsplit_once('@')
        .map_or("custos.invalid", |(_, d)| d);
    let date = UNIX_EPOCH + Duration::from_millis(u64::try_from(created_ms).unwrap_or(0));
    Message::builder()
        .from(lettre::message::Mailbox::new(from.name.clone(), sender))
        .to(lettre::message::Mailbox::new(None, recipient))
        .subject(mail.expose_subject())
        .message_id(Some(format!("<{id}@{domain}>")))
        .date(date)
        .header(ContentType::TEXT_PLAIN)
        .body(mail.expose_text().to_owned())
        .map_err(|_| SendError::permanent("the message cannot be rendered"))
}

/// A relay's refusal or a broken connection, in our words: its own text may quote the address.
fn smtp_error(e: lettre::transport::smtp::Error) -> SendError {
    let code = e.status().map(|c| c.to_string());
    if e.is_permanent() {
        SendError::permanent(format!(
            "the relay refused the message for good (SMTP {})",
            code.as_deref().unwrap_or("5xx")
        ))
    } else if e.is_transient() {
        SendError::transient(format!(
            "the relay refused the message for now (SMTP {})",
            code.as_deref().unwrap_or("4xx")
        ))
    } else if e.is_timeout() {
        SendError::transient("the relay did not answer in time")
    } else if e.is_tls() {
        SendError::transient("TLS with the relay failed")
    } else {
        SendError::transient("the relay could not be reached or broke off the conversation")
    }
}

/// `{created}-{id}.eml`: in the order messages were queued, and one name per message, so a
/// message written again after a crash replaces its own file.
fn eml_name(id: MailId, created_ms: i64) -> String {
    let created = chrono::DateTime::from_timestamp_millis(created_ms)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%S%3fZ");
    format!("{created}-{id}.eml")
}

/// Creates `dir` (and its parents) mode 0700 when absent.
fn private_dir(dir: &Path) -> Result<(), VaultError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            VaultError::Setup(format!(
                "creating the mail directory {}: {e}",
                dir.display()
            ))
        })?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| {
            VaultError::Setup(format!("reading the mail directory {}: {e}", dir.display()))
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(VaultError::Setup(format!(
            "the mail directory {} has mode {:o}, so other users can read the mail in it: run `chmod 700 {}`",
            dir.display(),
            mode & 0o777,
            dir.display()
        )));
    }
    Ok(())
}

/// Writes a message to a temporary name (mode 0600), syncs it and renames it into place, so a
/// reader of the directory never sees half a message.
fn write_eml(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SendError> {
    let failed = |what: &str, e: std::io::Error| {
        SendError::transient(format!("{what} in {}: {}", dir.display(), e.kind()))
    };
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| failed("creating a message file", e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| failed("writing a message file", e))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(|e| failed("renaming a message file", e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_by_creation_and_name_the_message() {
        let id = MailId::random();
        assert_eq!(
            eml_name(id, 1_767_225_600_123),
            format!("20260101T000000123Z-{id}.eml")
        );
    }

    #[test]
    fn a_missing_credential_names_the_variable_only() {
        let e = env_var("CUSTOS_TEST_SURELY_UNSET_VAR", "password_env")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[mail] password_env names the environment variable CUSTOS_TEST_SURELY_UNSET_VAR, which is not set"),
            "{e}"
        );
    }
}
