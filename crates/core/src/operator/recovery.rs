//! Recovery codes: ten one-time codes given at enrolment, for when the authenticator is lost.
//! Each is 80 random bits in 16 characters of Crockford's base32, shown in four groups; only
//! their SHA-256 digests are stored (80 bits need no slow hash: they cannot be guessed).

use std::fmt;

use crate::crypto::{CryptoError, random_bytes, secret_digest};
use crate::secret::Secret;

/// Codes given at each enrolment.
pub const CODES: usize = 10;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// One recovery code, as shown once. `Debug` hides it; it is wiped on drop.
pub struct RecoveryCode(Secret<String>);

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode([redacted])")
    }
}

impl RecoveryCode {
    /// The code as shown: `XXXX-XXXX-XXXX-XXXX`.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// What the store keeps of it.
    pub fn digest(&self) -> [u8; 32] {
        digest_of(self.0.expose_secret()).unwrap_or([0; 32])
    }
}

/// Ten new codes.
///
/// # Errors
/// [`CryptoError::Rng`] when the system cannot supply randomness.
pub fn generate() -> Result<Vec<RecoveryCode>, CryptoError> {
    (0..CODES)
        .map(|_| {
            let bytes = Secret::new(random_bytes(10)?);
            let mut bits: u128 = 0;
            for b in bytes.expose_secret() {
                bits = (bits << 8) | u128::from(*b);
            }
            let mut s = String::with_capacity(19);
            for i in 0..16 {
                if i > 0 && i % 4 == 0 {
                    s.push('-');
                }
                let v = ((bits >> (75 - 5 * i)) & 31) as usize;
                s.push(char::from(ALPHABET[v]));
            }
            Ok(RecoveryCode(Secret::new(s)))
        })
        .collect()
}

/// The digest of a code as typed: case, spaces and dashes ignored, and Crockford's look-alikes
/// read as the digits they stand for (O as 0, I and L as 1); `None` for anything but 16
/// characters of the alphabet.
pub fn digest_of(typed: &str) -> Option<[u8; 32]> {
    let normal: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    let normal = Secret::new(normal);
    let n = normal.expose_secret();
    if n.len() != 16 || !n.bytes().all(|b| ALPHABET.contains(&b)) {
        return None;
    }
    let grouped = Secret::new(format!(
        "{}-{}-{}-{}",
        &n[..4],
        &n[4..8],
        &n[8..12],
        &n[12..]
    ));
    Some(secret_digest(grouped.expose_secret()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_that_read_back_however_typed() {
        let codes = generate().unwrap();
        assert_eq!(codes.len(), 10);
        let mut digests: Vec<_> = codes.iter().map(RecoveryCode::digest).collect();
        digests.sort();
        digests.dedup();
        assert_eq!(digests.len(), 10);
        let c = codes[0].expose_secret();
        assert_eq!(c.len(), 19);
        assert_eq!(digest_of(c), Some(codes[0].digest()));
        let sloppy = c.to_lowercase().replace('-', " ");
        assert_eq!(digest_of(&sloppy), Some(codes[0].digest()));
        assert_eq!(digest_of("not a code"), None);
        assert_eq!(
            digest_of("UUUU-UUUU-UUUU-UUUU"),
            None,
            "U is not in the alphabet"
        );
        assert_eq!(
            digest_of("0OIL-0000-0000-0000"),
            digest_of("0011-0000-0000-0000")
        );
    }
}
