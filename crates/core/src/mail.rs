//! Mail the vault sends, pure: the message ([`Mail`], whose recipient, subject and text are
//! personal and never shown), the sender ([`Mailbox`]), the bytes a message is sealed as, and
//! the retry schedule ([`after_failure`]). Rendering to RFC 5322 and talking SMTP are the
//! vault's (lettre); this module does no IO.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::fields;
use crate::personal::PersonalValue;
use crate::secret::Secret;

/// The longest subject line accepted, in characters.
pub const MAX_SUBJECT_LEN: usize = 200;
/// The longest text accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 256 * 1024;
/// The wait before the first retry; each later one waits twice as long as the one before.
pub const FIRST_RETRY_MS: i64 = 1_000;
/// The longest wait between two attempts.
pub const MAX_RETRY_MS: i64 = 5 * 60 * 1_000;

/// Why a message cannot be made or read back. Messages never quote the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The recipient is not an email address.
    #[error("the recipient is not an email address: {0}")]
    Recipient(&'static str),
    /// The subject line breaks a rule.
    #[error("the subject {0}")]
    Subject(&'static str),
    /// The text breaks a rule.
    #[error("the text {0}")]
    Text(&'static str),
    /// Sealed bytes opened but do not hold a message this binary reads.
    #[error("the stored message is not one this binary reads")]
    Malformed,
}

/// One message to one recipient, in plain text. The recipient's address, the subject and the
/// text are all personal (a sign-in code, a name): `Debug` shows none of them, there is no
/// `Display`, and each is wiped when dropped; reading one is an explicit `expose_*` call.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    to: Secret<String>,
    subject: Secret<String>,
    text: Secret<String>,
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mail([redacted])")
    }
}

/// The shape a message is sealed as; versioned so a later binary can read older rows.
#[derive(Serialize, Deserialize)]
struct Sealed {
    v: u32,
    to: String,
    subject: String,
    text: String,
}

impl Drop for Sealed {
    fn drop(&mut self) {
        self.to.zeroize();
        self.subject.zeroize();
        self.text.zeroize();
    }
}

impl Mail {
    /// A message to `to` (a JSON string holding an email address: the domain is lower-cased
    /// and IDNA-encoded, as for an `email` field).
    ///
    /// # Errors
    /// [`MailError::Recipient`] when `to` is not an address; [`MailError::Subject`] when the
    /// subject is empty, longer than [`MAX_SUBJECT_LEN`] or holds a control character (a line
    /// break would start a header of its own); [`MailError::Text`] when the text is longer
    /// than [`MAX_TEXT_LEN`] or holds a control character other than a line break or tab.
    pub fn new(
        to: &PersonalValue,
        subject: impl Into<String>,
        text: impl Into<String>,
    ) -> Result<Mail, MailError> {
        let subject = Secret::new(subject.into());
        let text = Secret::new(text.into());
        let address = to
            .expose_secret()
            .as_str()
            .ok_or(MailError::Recipient("it is not text"))?;
        let to = Secret::new(fields::email(address).map_err(MailError::Recipient)?);
        let s = subject.expose_secret();
        if s.trim().is_empty() {
            return Err(MailError::Subject("is empty"));
        }
        if s.chars().count() > MAX_SUBJECT_LEN {
            return Err(MailError::Subject("is longer than 200 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(MailError::Subject(
                "holds a control character or line break",
            ));
        }
        let t = text.expose_secret();
        if t.len() > MAX_TEXT_LEN {
            return Err(MailError::Text("is longer than 256 KiB"));
        }
        if t.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(MailError::Text("holds a control character"));
        }
        Ok(Mail { to, subject, text })
    }

    /// The recipient's address. Never pass it to a log, a metric or an error message.
    pub fn expose_to(&self) -> &str {
        self.to.expose_secret()
    }

    /// The subject line. Never pass it to a log, a metric or an error message.
    pub fn expose_subject(&self) -> &str {
        self.subject.expose_secret()
    }

    /// The text. Never pass it to a log, a metric or an error message.
    pub fn expose_text(&self) -> &str {
        self.text.expose_secret()
    }

    /// The bytes the whole message is sealed as (recipient, subject and text together).
    pub fn to_plaintext(&self) -> Secret<Vec<u8>> {
        let sealed = Sealed {
            v: 1,
            to: self.to.expose_secret().clone(),
            subject: self.subject.expose_secret().clone(),
            text: self.text.expose_secret().clone(),
        };
        Secret::new(serde_json::to_vec(&sealed).expect("a message of strings serialises"))
    }

    /// Reads back what [`Mail::to_plaintext`] made.
    ///
    /// # Errors
    /// [`MailError::Malformed`] when the bytes are not a message this binary reads.
    pub fn from_plaintext(bytes: &[u8]) -> Result<Mail, MailError> {
        let s: Sealed = serde_json::from_slice(bytes).map_err(|_| MailError::Malformed)?;
        if s.v != 1 {
            return Err(MailError::Malformed);
        }
        Ok(Mail {
            to: Secret::new(s.to.clone()),
            subject: Secret::new(s.subject.clone()),
            text: Secret::new(s.text.clone()),
        })
    }
}

/// A sender: an address and, usually, a name (`Example Shop <privacy@shop.example>`). Not
/// personal: it is the organization's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The name shown beside the address, when there is one.
    pub name: Option<String>,
    /// The address, its domain lower-cased and IDNA-encoded.
    pub address: String,
}

/// A sender that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseMailboxError(pub &'static str);

impl FromStr for Mailbox {
    type Err = ParseMailboxError;

    /// Reads `Name <address>`, `"Name" <address>` or a bare address.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (name, address) = match s.strip_suffix('>').and_then(|r| r.rsplit_once('<')) {
            Some((name, address)) => (Some(name.trim()), address),
            None if s.contains(['<', '>']) => {
                return Err(ParseMailboxError(
                    "the address must be written whole between < and > at the end",
                ));
            }
            None => (None, s),
        };
        let name = name
            .map(|n| {
                n.strip_prefix('"')
                    .and_then(|n| n.strip_suffix('"'))
                    .unwrap_or(n)
                    .trim()
            })
            .filter(|n| !n.is_empty());
        if let Some(n) = name
            && (n.chars().any(char::is_control) || n.contains(['<', '>', '"']))
        {
            return Err(ParseMailboxError(
                "the name must not hold <, >, quotes or control characters",
            ));
        }
        let address = fields::email(address).map_err(ParseMailboxError)?;
        Ok(Mailbox {
            name: name.map(str::to_owned),
            address,
        })
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} <{}>", self.address),
            None => f.write_str(&self.address),
        }
    }
}

/// What to do with a message after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again at this instant (ms since the epoch).
    RetryAt(i64),
    /// Stop trying: the message has expired.
    GiveUp,
}

/// How long to wait after the `attempts`-th failed attempt: 1 s after the first, doubling
/// each time, at most [`MAX_RETRY_MS`].
pub fn retry_delay_ms(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(31);
    FIRST_RETRY_MS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_RETRY_MS)
}

/// After the `attempts`-th failed attempt at `now_ms`, when to try again, or to give up once
/// the message's `expires_ms` has come. A retry that would fall after the expiry is moved to
/// the expiry itself, so an expired message is marked failed then and not left waiting.
pub fn after_failure(attempts: u32, now_ms: i64, expires_ms: i64) -> Next {
    if now_ms >= expires_ms {
        return Next::GiveUp;
    }
    Next::RetryAt(
        now_ms
            .saturating_add(retry_delay_ms(attempts))
            .min(expires_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "canary-mail-7f3a@Example.COM";

    fn mail(to: &str) -> Result<Mail, MailError> {
        Mail::new(
            &PersonalValue::text(to),
            "Your sign-in code",
            "Your code is 123456.\n",
        )
    }

    #[test]
    fn a_message_shows_nothing_and_round_trips_through_its_sealed_bytes() {
        let m = Mail::new(
            &PersonalValue::text(CANARY),
            "canary subject",
            "canary body",
        )
        .unwrap();
        let shown = format!("{m:?} {m:#?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert_eq!(m.expose_to(), "canary-mail-7f3a@example.com");
        let back = Mail::from_plaintext(m.to_plaintext().expose_secret()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.expose_subject(), "canary subject");
        assert_eq!(back.expose_text(), "canary body");
        assert_eq!(Mail::from_plaintext(b"{}"), Err(MailError::Malformed));
        let v2 = br#"{"v":2,"to":"a@b.example","subject":"s","text":"t"}"#;
        assert_eq!(Mail::from_plaintext(v2), Err(MailError::Malformed));
    }

    #[test]
    fn each_rule_of_a_message_is_named_without_the_value() {
        let long = "x".repeat(MAX_SUBJECT_LEN + 1);
        let huge = "x".repeat(MAX_TEXT_LEN + 1);
        let to = PersonalValue::text("ada@example.com");
        let cases: Vec<(Result<Mail, MailError>, &str)> = vec![
            (
                mail("not-an-address"),
                "the recipient is not an email address",
            ),
            (
                Mail::new(&PersonalValue::new(serde_json::json!(7)), "s", "t"),
                "it is not text",
            ),
            (Mail::new(&to, " ", "t"), "the subject is empty"),
            (Mail::new(&to, long, "t"), "longer than 200"),
            (
                Mail::new(&to, "Hi\r\nBcc: eve@example.com", "t"),
                "line break",
            ),
            (Mail::new(&to, "s", huge), "the text is longer"),
            (Mail::new(&to, "s", "a\u{0}b"), "control character"),
        ];
        for (got, want) in cases {
            let e = got.unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
            assert!(!e.contains("eve@") && !e.contains("not-an-address"), "{e}");
        }
        assert!(Mail::new(&to, "s", "line one\r\nline two\twith a tab").is_ok());
    }

    #[test]
    fn mailboxes_are_read_with_or_without_a_name() {
        let rows: &[(&str, Option<&str>, &str)] = &[
            (
                "Example Shop <privacy@Shop.Example>",
                Some("Example Shop"),
                "privacy@shop.example",
            ),
            (
                "\"Shop, Ltd\" <a@shop.example>",
                Some("Shop, Ltd"),
                "a@shop.example",
            ),
            ("a@shop.example", None, "a@shop.example"),
            (" <a@shop.example> ", None, "a@shop.example"),
        ];
        for (text, name, address) in rows {
            let m: Mailbox = text.parse().unwrap();
            assert_eq!(m.name.as_deref(), *name, "{text}");
            assert_eq!(m.address, *address, "{text}");
        }
        assert_eq!(
            "Shop <a@shop.example>"
                .parse::<Mailbox>()
                .unwrap()
                .to_string(),
            "Shop <a@shop.example>"
        );
        for bad in [
            "Shop",
            "Shop <a@shop.example",
            "Shop <a@localhost>",
            "Sh<op <a@shop.example>",
            "",
        ] {
            assert!(bad.parse::<Mailbox>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn retries_back_off_exponentially_to_five_minutes() {
        let delays: Vec<i64> = (1..=12).map(retry_delay_ms).collect();
        assert_eq!(
            delays,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000,
                300_000, 300_000
            ]
        );
        assert_eq!(retry_delay_ms(0), 1_000);
        assert_eq!(retry_delay_ms(u32::MAX), MAX_RETRY_MS);
    }

    #[test]
    fn a_message_is_given_up_at_its_expiry_and_never_retried_past_it() {
        assert_eq!(after_failure(1, 10_000, 60_000), Next::RetryAt(11_000));
        assert_eq!(after_failure(3, 10_000, 60_000), Next::RetryAt(14_000));
        // The next wait would end after the expiry: the last round is at the expiry.
        assert_eq!(after_failure(9, 10_000, 60_000), Next::RetryAt(60_000));
        assert_eq!(after_failure(1, 60_000, 60_000), Next::GiveUp);
        assert_eq!(after_failure(1, 70_000, 60_000), Next::GiveUp);
        assert_eq!(
            after_failure(1, i64::MAX - 5, i64::MAX),
            Next::RetryAt(i64::MAX)
        );
    }
}
