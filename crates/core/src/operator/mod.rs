//! How the people who run Custos sign in to the console, as rules: who an operator is
//! ([`OperatorStatus`]), the life of a setup link, what a password must be
//! ([`password`]), the second factor ([`totp`], [`recovery`]), when failed logins lock an
//! account ([`lockout_until`]) and how long a session lives ([`OPERATOR_SESSION`]). The vault
//! applies them; nothing here does IO.

pub mod password;
pub mod recovery;
pub mod totp;

pub use crate::ids::OperatorId;
use crate::signin::SessionPolicy;

const MINUTE_MS: i64 = 60_000;

/// How long a setup link (from `custos operator add` or `reset-mfa`) may be used.
pub const SETUP_LINK_VALID_MS: i64 = 24 * 60 * MINUTE_MS;

/// An operator's session in the console: 30 minutes idle, 12 hours at most.
pub const OPERATOR_SESSION: SessionPolicy = SessionPolicy {
    idle_ms: 30 * MINUTE_MS,
    absolute_ms: 12 * 60 * MINUTE_MS,
};

/// The login attempt, counted since the last success, that locks an account: the fifth.
pub const LOCKING_ATTEMPT: u32 = 5;
/// How long the first lockout lasts; each further failure doubles it, up to
/// [`MAX_LOCKOUT_MS`].
pub const FIRST_LOCKOUT_MS: i64 = MINUTE_MS;
/// The longest lockout.
pub const MAX_LOCKOUT_MS: i64 = 60 * MINUTE_MS;

/// Until when an account is locked by its `attempts`-th login attempt since the last success,
/// made at `at_ms`: not at all before the [`LOCKING_ATTEMPT`]; one minute at it, doubling
/// with each further attempt, at most an hour. The lock is placed when the attempt begins,
/// before anything is checked, so attempts at once cannot get past it; a success lifts it
/// and clears the count.
pub fn lockout_until(attempts: u32, at_ms: i64) -> Option<i64> {
    let over = attempts.checked_sub(LOCKING_ATTEMPT)?;
    let ms = FIRST_LOCKOUT_MS
        .checked_mul(1_i64 << over.min(20))
        .unwrap_or(MAX_LOCKOUT_MS)
        .min(MAX_LOCKOUT_MS);
    Some(at_ms + ms)
}

/// Where an operator's account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorStatus {
    /// Added, with a setup link: no password or second factor yet (or both reset).
    Invited,
    /// Set up with a password and a second factor: may sign in.
    Active,
    /// Disabled: may not sign in; every session ended when it was disabled.
    Disabled,
}

impl OperatorStatus {
    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorStatus::Invited => "invited",
            OperatorStatus::Active => "active",
            OperatorStatus::Disabled => "disabled",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invited" => Some(OperatorStatus::Invited),
            "active" => Some(OperatorStatus::Active),
            "disabled" => Some(OperatorStatus::Disabled),
            _ => None,
        }
    }
}

/// Why a login was refused, as the audit entry says it. The person signing in is told only
/// that the address, password or code was wrong (or that the account is locked), never which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// No operator has this address.
    UnknownAddress,
    /// The password was wrong.
    WrongPassword,
    /// The second factor's code was wrong, or was used already (a replay).
    WrongCode,
    /// The account is locked after failed logins.
    Locked,
    /// The account is not set up, or is disabled.
    NotActive,
}

impl LoginRefusal {
    /// The refusal's name in audit entries.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginRefusal::UnknownAddress => "unknown_address",
            LoginRefusal::WrongPassword => "wrong_password",
            LoginRefusal::WrongCode => "wrong_code",
            LoginRefusal::Locked => "locked",
            LoginRefusal::NotActive => "not_active",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_back_off_from_a_minute_to_an_hour() {
        let at = 1_000_000;
        for n in 0..LOCKING_ATTEMPT {
            assert_eq!(lockout_until(n, at), None, "{n} failures");
        }
        assert_eq!(lockout_until(5, at), Some(at + MINUTE_MS));
        assert_eq!(lockout_until(6, at), Some(at + 2 * MINUTE_MS));
        assert_eq!(lockout_until(8, at), Some(at + 8 * MINUTE_MS));
        assert_eq!(lockout_until(11, at), Some(at + MAX_LOCKOUT_MS));
        assert_eq!(lockout_until(u32::MAX, at), Some(at + MAX_LOCKOUT_MS));
    }

    #[test]
    fn statuses_and_ids_round_trip() {
        for s in [
            OperatorStatus::Invited,
            OperatorStatus::Active,
            OperatorStatus::Disabled,
        ] {
            assert_eq!(OperatorStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OperatorStatus::parse("root"), None);
        let id = OperatorId::random();
        assert_eq!(id.to_string().parse::<OperatorId>().unwrap(), id);
    }

    #[test]
    fn console_sessions_last_longer_than_the_portals() {
        assert_eq!(OPERATOR_SESSION.idle_ms, 30 * MINUTE_MS);
        assert_eq!(OPERATOR_SESSION.absolute_ms, 12 * 60 * MINUTE_MS);
    }
}
