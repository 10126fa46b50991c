//! How a customer signs in to the portal, as rules: a one-time code sent to an address on
//! file (six digits, ten minutes, used once), how many codes an address or a client may ask
//! for, how many wrong codes lock an address and for how long, and how long a session lives.
//! The vault applies them; nothing here does IO.

use std::fmt;

use crate::crypto::{CryptoError, random_bytes};
use crate::secret::Secret;

const MINUTE_MS: i64 = 60_000;

/// Digits in a one-time code.
pub const CODE_DIGITS: usize = 6;
/// How long a code is valid after it was made.
pub const CODE_VALID_MS: i64 = 10 * MINUTE_MS;
/// Wrong codes after which an address is locked: a sixth try fails even with the right code.
pub const MAX_WRONG_CODES: u32 = 5;
/// How long an address stays locked after its last wrong code.
pub const LOCKOUT_MS: i64 = 15 * MINUTE_MS;
/// The window the request limits below count in.
pub const THROTTLE_WINDOW_MS: i64 = 15 * MINUTE_MS;
/// Codes one address may be sent within [`THROTTLE_WINDOW_MS`].
pub const CODES_PER_ADDRESS: u32 = 5;
/// Codes one client address may ask for within [`THROTTLE_WINDOW_MS`], whatever the
/// addresses it names.
pub const CODES_PER_CLIENT: u32 = 20;
/// The least time a request for a code takes to answer, so that an address on file and one
/// not on file cannot be told apart by the time the answer takes.
pub const CODE_REQUEST_FLOOR_MS: u64 = 250;

/// How long a sign-in challenge, and a session once ended, is kept: long enough for every
/// window above, then deleted by the retention sweep.
pub const SIGNIN_KEPT_MS: i64 = 24 * 60 * MINUTE_MS;

/// How long a session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session not used for this long ends.
    pub idle_ms: i64,
    /// A session ends this long after it began, however much it is used.
    pub absolute_ms: i64,
}

/// A customer's session in the portal: 15 minutes idle, 2 hours at most.
pub const PORTAL_SESSION: SessionPolicy = SessionPolicy {
    idle_ms: 15 * MINUTE_MS,
    absolute_ms: 120 * MINUTE_MS,
};

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// In use.
    Live,
    /// Not used for longer than the idle timeout.
    Idle,
    /// Older than the absolute timeout.
    Expired,
    /// Ended by signing out (or by staff).
    Revoked,
}

impl SessionPolicy {
    /// Where a session that began at `created_ms`, was last used at `last_seen_ms` and was
    /// revoked at `revoked_ms` (if it was) stands at `now_ms`.
    pub fn state(
        &self,
        created_ms: i64,
        last_seen_ms: i64,
        revoked_ms: Option<i64>,
        now_ms: i64,
    ) -> SessionState {
        if revoked_ms.is_some() {
            SessionState::Revoked
        } else if now_ms - created_ms >= self.absolute_ms {
            SessionState::Expired
        } else if now_ms - last_seen_ms >= self.idle_ms {
            SessionState::Idle
        } else {
            SessionState::Live
        }
    }
}

/// A one-time code: six decimal digits. `Debug` hides it; it is wiped on drop.
pub struct OneTimeCode(Secret<String>);

impl fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeCode([redacted])")
    }
}

impl OneTimeCode {
    /// A new code, each of the 10^6 values equally likely.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] when the system cannot supply randomness.
    pub fn generate() -> Result<OneTimeCode, CryptoError> {
        // Rejection sampling: 4,294,000,000 is the largest multiple of 10^6 below 2^32, so
        // taking the remainder of a value under it favours no code.
        const LIMIT: u32 = 4_294_000_000;
        loop {
            let b = random_bytes(4)?;
            let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            if n < LIMIT {
                return Ok(OneTimeCode(Secret::new(format!("{:06}", n % 1_000_000))));
            }
        }
    }

    /// A code as a person typed it: spaces and dashes between digits are ignored; anything
    /// but six digits is `None`.
    pub fn parse(typed: &str) -> Option<OneTimeCode> {
        let digits: String = typed
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '\u{a0}'))
            .collect();
        (digits.len() == CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| OneTimeCode(Secret::new(digits)))
    }

    /// The digits.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

/// What the throttle counts for a request for a code, within [`THROTTLE_WINDOW_MS`] (wrong
/// codes: within [`LOCKOUT_MS`] of now).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Codes asked for this address.
    pub codes_for_address: u32,
    /// Codes asked for by this client address.
    pub codes_for_client: u32,
    /// Wrong codes typed for this address.
    pub wrong_codes_for_address: u32,
}

/// Why a sign-in step was refused. The customer is told the same thing whatever it is (so
/// nothing says whether an address is on file); the audit log is told which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigninRefusal {
    /// Too many codes for this address in the window.
    #[error("too many codes were asked for this address")]
    AddressThrottled,
    /// Too many codes asked for from this client address.
    #[error("too many codes were asked for from this client address")]
    ClientThrottled,
    /// Too many wrong codes for this address: locked for a while.
    #[error("the address is locked after {MAX_WRONG_CODES} wrong codes")]
    Locked,
    /// No such sign-in under way.
    #[error("no sign-in is under way")]
    NoChallenge,
    /// The code is older than [`CODE_VALID_MS`].
    #[error("the code expired")]
    Expired,
    /// The code was used already.
    #[error("the code was used already")]
    Used,
    /// The code is wrong.
    #[error("the code is wrong")]
    WrongCode,
    /// The address is not on file: no code was sent.
    #[error("the address is not on file")]
    NotOnFile,
}

impl SigninRefusal {
    /// The refusal's name in audit entries: `address_throttled`, `wrong_code`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            SigninRefusal::AddressThrottled => "address_throttled",
            SigninRefusal::ClientThrottled => "client_throttled",
            SigninRefusal::Locked => "locked",
            SigninRefusal::NoChallenge => "no_challenge",
            SigninRefusal::Expired => "expired",
            SigninRefusal::Used => "used",
            SigninRefusal::WrongCode => "wrong_code",
            SigninRefusal::NotOnFile => "not_on_file",
        }
    }
}

/// Whether a code may be sent, given what the throttle counted.
///
/// # Errors
/// The [`SigninRefusal`] that stops it.
pub fn may_send_code(counts: Counts) -> Result<(), SigninRefusal> {
    if counts.wrong_codes_for_address >= MAX_WRONG_CODES {
        Err(SigninRefusal::Locked)
    } else if counts.codes_for_client >= CODES_PER_CLIENT {
        Err(SigninRefusal::ClientThrottled)
    } else if counts.codes_for_address >= CODES_PER_ADDRESS {
        Err(SigninRefusal::AddressThrottled)
    } else {
        Ok(())
    }
}

/// A sign-in under way, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    /// When its code was made.
    pub created_ms: i64,
    /// When its code was used, if it was.
    pub used_ms: Option<i64>,
}

/// Whether a typed code may be checked against `challenge` at `now_ms`, given the wrong codes
/// typed for its address within [`LOCKOUT_MS`]. A code that passes this is then compared,
/// in constant time, by the caller.
///
/// # Errors
/// The [`SigninRefusal`] that stops it.
pub fn may_check_code(
    challenge: &Challenge,
    wrong_codes_for_address: u32,
    now_ms: i64,
) -> Result<(), SigninRefusal> {
    if wrong_codes_for_address >= MAX_WRONG_CODES {
        Err(SigninRefusal::Locked)
    } else if challenge.used_ms.is_some() {
        Err(SigninRefusal::Used)
    } else if now_ms - challenge.created_ms >= CODE_VALID_MS {
        Err(SigninRefusal::Expired)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: Vec<String> = (0..50)
            .map(|_| OneTimeCode::generate().unwrap().expose_secret().to_owned())
            .collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
        assert!(distinct.len() > 40, "{distinct:?}");
        assert_eq!(
            format!("{:?}", OneTimeCode::generate().unwrap()),
            "OneTimeCode([redacted])"
        );
    }

    #[test]
    fn typed_codes() {
        let check = |typed: &str, expect: Option<&str>| {
            assert_eq!(
                OneTimeCode::parse(typed).map(|c| c.expose_secret().to_owned()),
                expect.map(str::to_owned),
                "{typed:?}"
            );
        };
        check("123456", Some("123456"));
        check(" 123 456 ", Some("123456"));
        check("123-456", Some("123456"));
        check("12345", None);
        check("1234567", None);
        check("12345a", None);
        check("١٢٣٤٥٦", None);
        check("", None);
    }

    #[test]
    fn throttle() {
        let check = |c: Counts, expect: Result<(), SigninRefusal>| {
            assert_eq!(may_send_code(c), expect, "{c:?}");
        };
        check(Counts::default(), Ok(()));
        let at = |a, c, w| Counts {
            codes_for_address: a,
            codes_for_client: c,
            wrong_codes_for_address: w,
        };
        check(at(4, 19, 4), Ok(()));
        check(at(5, 0, 0), Err(SigninRefusal::AddressThrottled));
        check(at(0, 20, 0), Err(SigninRefusal::ClientThrottled));
        check(at(0, 0, 5), Err(SigninRefusal::Locked));
        check(at(9, 99, 9), Err(SigninRefusal::Locked));
    }

    #[test]
    fn checking_a_code() {
        let c = Challenge {
            created_ms: 1_000_000,
            used_ms: None,
        };
        let check = |c: &Challenge, wrong, now, expect| {
            assert_eq!(may_check_code(c, wrong, now), expect, "{c:?} {wrong} {now}");
        };
        check(&c, 0, 1_000_000, Ok(()));
        check(&c, 4, 1_000_000 + CODE_VALID_MS - 1, Ok(()));
        check(
            &c,
            0,
            1_000_000 + CODE_VALID_MS,
            Err(SigninRefusal::Expired),
        );
        check(&c, 5, 1_000_001, Err(SigninRefusal::Locked));
        let used = Challenge {
            used_ms: Some(1_000_001),
            ..c
        };
        check(&used, 0, 1_000_002, Err(SigninRefusal::Used));
    }

    #[test]
    fn sessions_end_idle_or_old_or_revoked() {
        let p = PORTAL_SESSION;
        let t0 = 10_000_000;
        let check = |last, revoked, now, expect| {
            assert_eq!(p.state(t0, last, revoked, now), expect, "{last} {now}");
        };
        check(t0, None, t0, SessionState::Live);
        check(t0, None, t0 + p.idle_ms - 1, SessionState::Live);
        check(t0, None, t0 + p.idle_ms, SessionState::Idle);
        // Used every ten minutes, it still ends two hours after it began.
        let late = t0 + p.absolute_ms - 60_000;
        check(late, None, late + 1, SessionState::Live);
        check(late, None, t0 + p.absolute_ms, SessionState::Expired);
        check(t0, Some(t0 + 1), t0 + 2, SessionState::Revoked);
    }
}
