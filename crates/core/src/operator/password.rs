//! What an operator's password must be, and how it is kept: Argon2id.
//!
//! The rules follow NIST SP 800-63B §3.1.1.2: at least [`MIN_CHARS`] characters, any
//! characters at all (no composition rules), and not a commonly used password: not in the
//! shipped list (`common-passwords.txt`, 18,054 entries, see `common-passwords.md`), not one
//! of them with digits or symbols added at the end ("Password123!"), and not the operator's
//! own address.
//!
//! Hashing uses the parameters of OWASP's Password Storage Cheat Sheet (2025) for Argon2id:
//! m = 19 MiB (19,456 KiB), t = 2 iterations, p = 1 lane, a 16-byte random salt, stored as a
//! PHC string, which carries its parameters, so raising them later leaves old hashes
//! verifiable.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::crypto::{CryptoError, digests_equal, secret_digest};
use crate::secret::Secret;

/// The fewest characters a password may have.
pub const MIN_CHARS: usize = 12;
/// The most: a bound on the work a login asks of the server.
pub const MAX_CHARS: usize = 256;

/// Argon2id's memory cost, KiB.
pub const ARGON2_M_KIB: u32 = 19_456;
/// Argon2id's iterations.
pub const ARGON2_T: u32 = 2;
/// Argon2id's lanes.
pub const ARGON2_P: u32 = 1;

const COMMON: &str = include_str!("common-passwords.txt");

/// A password as typed. `Debug` hides it; it is wiped on drop.
pub struct Password(Secret<String>);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl Password {
    /// A password as typed.
    pub fn new(typed: String) -> Self {
        Password(Secret::new(typed))
    }

    fn bytes(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }

    /// Whether two typed passwords are the same (the "type it again" check), compared in
    /// constant time over their digests.
    pub fn same_as(&self, other: &Password) -> bool {
        digests_equal(
            &secret_digest(self.0.expose_secret()),
            &secret_digest(other.0.expose_secret()),
        )
    }
}

/// The rule a password broke, as a sentence for the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PasswordRule(&'static str);

impl PasswordRule {
    /// The sentence.
    pub fn message(&self) -> &'static str {
        self.0
    }
}

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().filter(|l| !l.is_empty()).collect())
}

/// Whether `password` may be chosen by the operator whose address is `address`.
///
/// # Errors
/// The [`PasswordRule`] it breaks.
pub fn check(password: &Password, address: &str) -> Result<(), PasswordRule> {
    let typed = password.0.expose_secret();
    let chars = typed.chars().count();
    if chars < MIN_CHARS {
        return Err(PasswordRule("must be at least 12 characters long"));
    }
    if chars > MAX_CHARS {
        return Err(PasswordRule("must be at most 256 characters long"));
    }
    let lower = Secret::new(typed.to_lowercase());
    let lower = lower.expose_secret();
    let stem = lower.trim_end_matches(|c: char| !c.is_alphabetic());
    if common().contains(lower.as_str()) || common().contains(stem) {
        return Err(PasswordRule(
            "is a commonly used password (it is in the list of passwords seen in breaches)",
        ));
    }
    let address = address.to_lowercase();
    let local = address.split('@').next().unwrap_or_default();
    if lower.contains(&address) || (local.len() >= 4 && lower.contains(local)) {
        return Err(PasswordRule("must not contain your email address"));
    }
    if typed.chars().all(|c| typed.starts_with(c)) {
        return Err(PasswordRule("must not be one character repeated"));
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    let params =
        Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).unwrap_or_else(|_| Params::default());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// `password` hashed with Argon2id and a new random salt, as a PHC string.
///
/// # Errors
/// [`CryptoError::Rng`] when no salt can be drawn.
pub fn hash(password: &Password) -> Result<String, CryptoError> {
    argon2()
        .hash_password(password.bytes())
        .map(|h| h.to_string())
        .map_err(|_| CryptoError::Rng)
}

/// Whether `password` is the one `stored` (a PHC string from [`hash`]) was made from. A
/// stored string that cannot be read is no match.
pub fn verify(password: &Password, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| argon2().verify_password(password.bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A hash of no one's password, verified against when no operator has the address given, so
/// that a login for an unknown address takes as long as one for a known address.
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        hash(&Password::new("no operator has this password".to_owned())).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::new(s.to_owned())
    }

    #[test]
    fn the_rules_refuse_short_common_and_own_address_passwords() {
        let me = "dana.lee@example.com";
        for (typed, rule) in [
            ("short pass", "must be at least 12 characters long"),
            ("Ab1!Ab1!Ab1", "must be at least 12 characters long"),
            ("CookieMonster", "is a commonly used password"),
            ("Password1234!", "is a commonly used password"),
            ("SUPERMAN2024##", "is a commonly used password"),
            (
                "dana.lee@example.com",
                "must not contain your email address",
            ),
            ("I am dana.lee, hi", "must not contain your email address"),
            ("aaaaaaaaaaaaaaa", "must not be one character repeated"),
        ] {
            let e = check(&pw(typed), me).unwrap_err();
            assert!(e.message().starts_with(rule), "{typed}: {e}");
        }
        assert!(check(&pw(&"x".repeat(257)), me).is_err());
        for fine in [
            "correct horse battery staple",
            "vXq7-Lm2p-Rt9z",
            "ça ne se devine pas",
        ] {
            assert_eq!(check(&pw(fine), me), Ok(()), "{fine}");
        }
    }

    #[test]
    fn the_shipped_list_is_whole() {
        assert_eq!(common().len(), 18_054);
        assert!(common().contains("password123"));
    }

    #[test]
    fn hashes_are_argon2id_with_the_stated_parameters_and_verify() {
        let h = hash(&pw("correct horse battery staple")).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(&pw("correct horse battery staple"), &h));
        assert!(!verify(&pw("correct horse battery stapl"), &h));
        assert!(!verify(&pw("x"), "not a phc string"));
        // A new salt each time.
        assert_ne!(h, hash(&pw("correct horse battery staple")).unwrap());
        assert!(!verify(&pw("anything at all"), decoy_hash()));
    }

    #[test]
    fn debug_hides_the_password() {
        assert_eq!(
            format!("{:?}", pw("hunter2hunter2")),
            "Password([redacted])"
        );
    }
}
