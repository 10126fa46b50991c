//! How a webhook delivery is signed, and how a receiver checks it.
//!
//! The body is JSON. The `Custos-Signature` header reads `t=UNIX_SECONDS,v1=HEX`, where
//! `HEX` is HMAC-SHA256 under the webhook's secret over `UNIX_SECONDS`, a full stop and the
//! body, byte for byte. A receiver recomputes it, compares in constant time, refuses a
//! timestamp older than its tolerance (five minutes is usual), and remembers the signatures it
//! accepted within that tolerance so a replayed delivery is refused too.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

/// The header a delivery's signature travels in.
pub const SIGNATURE_HEADER: &str = "Custos-Signature";

/// How old a delivery's timestamp may be when [`verify`] is given no other tolerance.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac {
    let mut m = Hmac::new_from_slice(secret).expect("HMAC takes a key of any length");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

type Hmac = hmac::Hmac<Sha256>;

/// The header value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The header is not `t=...,v1=...`.
    #[error("the signature header is not t=UNIX_SECONDS,v1=HEX")]
    Malformed,
    /// The signature is not the body's under this secret.
    #[error("the signature does not match the body")]
    Mismatch,
    /// The timestamp is too far from now.
    #[error("the delivery is {0} s away from now, more than the tolerance")]
    Stale(i64),
}

/// A delivery's header taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// When it was sent, Unix seconds.
    pub timestamp: i64,
    /// The HMAC tag.
    pub tag: Vec<u8>,
}

impl Signature {
    /// Reads a header value.
    ///
    /// # Errors
    /// [`WebhookError::Malformed`].
    pub fn parse(header: &str) -> Result<Signature, WebhookError> {
        let mut timestamp = None;
        let mut tag = None;
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
                Some(("v1", v)) => tag = hex::decode(v).ok(),
                _ => {}
            }
        }
        match (timestamp, tag) {
            (Some(timestamp), Some(tag)) => Ok(Signature { timestamp, tag }),
            _ => Err(WebhookError::Malformed),
        }
    }
}

/// Checks a delivery: the header's tag is the body's under `secret` (compared in constant
/// time) and its timestamp within `tolerance_secs` of `now_secs`. Refusing a replay within
/// the tolerance is the receiver's: remember accepted signatures that long.
///
/// # Errors
/// [`WebhookError`] naming what failed.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<Signature, WebhookError> {
    let sig = Signature::parse(header)?;
    mac(secret, sig.timestamp, body)
        .verify_slice(&sig.tag)
        .map_err(|_| WebhookError::Mismatch)?;
    let age = now_secs - sig.timestamp;
    if age.abs() > tolerance_secs {
        return Err(WebhookError::Stale(age));
    }
    Ok(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_is_refused() {
        let h = sign(b"s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(h.starts_with("t=1700000000,v1="), "{h}");
        verify(b"s3cret", &h, b"{\"a\":1}", 1_700_000_100, 300).unwrap();
        assert_eq!(
            verify(b"s3cret", &h, b"{\"a\":2}", 1_700_000_100, 300),
            Err(WebhookError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &h, b"{\"a\":1}", 1_700_000_100, 300),
            Err(WebhookError::Mismatch)
        );
        let moved = h.replace("t=1700000000", "t=1700000100");
        assert_eq!(
            verify(b"s3cret", &moved, b"{\"a\":1}", 1_700_000_100, 300),
            Err(WebhookError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", &h, b"{\"a\":1}", 1_700_000_301, 300),
            Err(WebhookError::Stale(301))
        );
        assert_eq!(
            verify(b"s3cret", "v1=00", b"", 0, 300),
            Err(WebhookError::Malformed)
        );
    }

    #[test]
    fn the_tag_is_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231-style check against an independent computation: HMAC-SHA256 with key
        // "key" over "The quick brown fox jumps over the lazy dog" is the well-known
        // f7bc83f4...; here the message is "1.The quick..." so compute both ways.
        let body = b"The quick brown fox jumps over the lazy dog";
        let mut m = Hmac::new_from_slice(b"key").unwrap();
        m.update(b"1.");
        m.update(body);
        let expect = hex::encode(m.finalize().into_bytes());
        assert_eq!(sign(b"key", 1, body), format!("t=1,v1={expect}"));
        let mut plain = Hmac::new_from_slice(b"key").unwrap();
        plain.update(body);
        assert_eq!(
            hex::encode(plain.finalize().into_bytes()),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}

/// A webhook delivery waiting in the outbox beside mail: where it goes and the alert's JSON.
/// Sealed as mail is, so it is one ciphertext among the outbox's rows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    /// The webhook's URL, as `[[webhooks]]` names it.
    pub url: String,
    /// The alert delivered.
    pub alert: crate::ids::AlertId,
    /// The body posted: the alert's JSON.
    pub body: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SealedDelivery {
    v: u32,
    kind: String,
    #[serde(flatten)]
    delivery: Delivery,
}

impl Delivery {
    /// The bytes the delivery is sealed as.
    pub fn to_plaintext(&self) -> Vec<u8> {
        serde_json::to_vec(&SealedDelivery {
            v: 1,
            kind: "webhook".into(),
            delivery: self.clone(),
        })
        .expect("a delivery serialises")
    }

    /// Reads back what [`Delivery::to_plaintext`] made; `None` when the bytes are not a
    /// webhook delivery (a mail, say).
    pub fn from_plaintext(bytes: &[u8]) -> Option<Delivery> {
        let s: SealedDelivery = serde_json::from_slice(bytes).ok()?;
        (s.v == 1 && s.kind == "webhook").then_some(s.delivery)
    }
}

#[cfg(test)]
mod delivery_tests {
    use super::*;

    #[test]
    fn a_delivery_round_trips_and_a_mail_is_not_one() {
        let d = Delivery {
            url: "https://hooks.example/x".into(),
            alert: crate::ids::AlertId::random(),
            body: "{\"kind\":\"canary_touched\"}".into(),
        };
        assert_eq!(Delivery::from_plaintext(&d.to_plaintext()), Some(d));
        assert_eq!(
            Delivery::from_plaintext(br#"{"v":1,"to":"a@b.example","subject":"s","text":"t"}"#),
            None
        );
    }
}
