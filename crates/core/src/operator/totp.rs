//! The second factor: TOTP (RFC 6238: HMAC-SHA-1, six digits, 30-second steps, one step of
//! clock skew either way), the secret an authenticator app is given as an otpauth URI, and
//! the step a code matched, which the vault stores so that no code is accepted twice.

use std::fmt;

use totp_rs::{Algorithm, Builder, Secret as RawSecret, Totp};

use crate::crypto::{CryptoError, random_bytes};
use crate::secret::Secret;

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Bytes of a new secret: 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

/// An operator's TOTP secret. `Debug` hides it; it is wiped on drop.
pub struct TotpSecret(Secret<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    /// A new random secret.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] when the system cannot supply randomness.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(TotpSecret(Secret::new(random_bytes(SECRET_BYTES)?)))
    }

    /// A secret from its bytes (as stored, once unsealed).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        TotpSecret(Secret::new(bytes))
    }

    /// A secret as an authenticator app is given it: base32, as in the otpauth URI.
    pub fn from_base32(text: &str) -> Option<Self> {
        RawSecret::try_from_base32(text)
            .ok()
            .map(|s| TotpSecret(Secret::new(s.as_ref().to_vec())))
    }

    /// Its bytes, for sealing.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    fn totp(&self, issuer: &str, account: &str) -> Result<Totp, CryptoError> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(STEP_SECONDS)
            .with_secret(RawSecret::from(self.0.expose_secret().clone()))
            .with_issuer(Some(issuer.replace(':', " ")))
            .with_account_name(account.replace(':', " "))
            .build()
            .map_err(|_| CryptoError::Malformed)
    }

    /// The otpauth URI an authenticator app is enrolled with (as text or as a QR code).
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] for a secret of the wrong length.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<Secret<String>, CryptoError> {
        self.totp(issuer, account)?
            .to_url()
            .map(Secret::new)
            .map_err(|_| CryptoError::Malformed)
    }

    /// The secret in base32, for typing into an app that cannot read the QR code.
    pub fn base32(&self) -> Secret<String> {
        Secret::new(RawSecret::from(self.0.expose_secret().clone()).to_base32())
    }

    /// The step `code` matches at `now_ms` (within one step either way), compared in constant
    /// time; `None` for a wrong code. The caller accepts a step only once, and only later
    /// than the last it accepted.
    pub fn matching_step(&self, code: &str, now_ms: i64) -> Option<u64> {
        let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now_s = u64::try_from(now_ms / 1000).ok()?;
        self.totp("custos", "").ok()?.check(&digits, now_s)
    }

    /// The code of the step that `at_ms` falls in: what an authenticator app shows then.
    /// For tests and drills; the vault never shows it.
    pub fn code_at(&self, at_ms: i64) -> Option<String> {
        let at_s = u64::try_from(at_ms / 1000).ok()?;
        Some(self.totp("custos", "").ok()?.generate(at_s).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, the SHA-1 vectors (eight digits there; six here are their last
    /// six).
    #[test]
    fn rfc_6238_vectors() {
        let s = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        for (t, eight) in [
            (59_i64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(s.code_at(t * 1000).unwrap(), eight[2..], "t = {t}");
            let step = (t as u64) / STEP_SECONDS;
            assert_eq!(s.matching_step(&eight[2..], t * 1000), Some(step));
        }
    }

    #[test]
    fn a_code_matches_its_step_and_the_neighbours_only() {
        let s = TotpSecret::generate().unwrap();
        let t = 1_700_000_000_000_i64;
        let code = s.code_at(t).unwrap();
        let step = (t / 1000) as u64 / STEP_SECONDS;
        assert_eq!(s.matching_step(&code, t), Some(step));
        assert_eq!(s.matching_step(&code, t + 30_000), Some(step));
        assert_eq!(s.matching_step(&code, t - 30_000), Some(step));
        assert_eq!(s.matching_step(&code, t + 95_000), None);
        assert_eq!(s.matching_step("12345", t), None);
        assert_eq!(s.matching_step("abcdef", t), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(s.matching_step(&spaced, t), Some(step));
    }

    #[test]
    fn the_uri_names_the_issuer_and_account_and_carries_the_secret() {
        let s = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let uri = s.otpauth_uri("Example Shop", "dana@example.com").unwrap();
        let uri = uri.expose_secret();
        assert!(
            uri.starts_with("otpauth://totp/Example%20Shop:dana%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert_eq!(
            s.base32().expose_secret(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(format!("{s:?}"), "TotpSecret([redacted])");
        let back = TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(back.expose_bytes(), b"12345678901234567890");
    }
}
