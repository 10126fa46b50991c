//! Data-subject rights: the requests subjects make and the state machine they go through, the
//! regulation profiles (GDPR, UK GDPR, CCPA/CPRA) that say which requests exist and how long
//! a controller has to answer them, the working calendar those deadlines are counted on, and
//! which profile a subject falls under.
//!
//! # How time is counted
//!
//! One rule for every profile, chosen so that a computed deadline is never later than the
//! law's:
//!
//! - **Dates are the controller's.** A timestamp becomes a date at the calendar's UTC offset
//!   (`[rights] utc_offset` in the inventory, UTC when absent). Give the offset of standard
//!   (winter) time: in summer time a request received in the first hour after local midnight
//!   then counts as received the day before, which can only bring a deadline earlier.
//! - **The day of receipt is not counted**; a period runs from the next day. Regulation (EEC,
//!   Euratom) No 1182/71, Art. 3(1), which the CJEU applies to EU time limits; Cal. Civ.
//!   Code § 12 ("computed by excluding the first day, and including the last"). So a request
//!   received on a Saturday, on a holiday or late on a Friday evening is received that day, and
//!   needs no after-hours cut-off: its business-day periods start on the next business day
//!   (Monday for both a Friday-evening and a Saturday receipt), and its calendar periods are
//!   unchanged ("whether it is a working day or not", ICO).
//! - **Months** end on the same date of the final month, or on that month's last day when it
//!   has no such date (Reg. 1182/71 Art. 3(2)(c); ICO: 3 September → 3 October, 31 January →
//!   28 or 29 February).
//! - **Calendar days**: n days after the receipt date (CCPA Regulations § 7021(b): "no later
//!   than 45 calendar days after receipt").
//! - **Business days**: the n-th day after the receipt date that is neither a Saturday, a
//!   Sunday, nor a holiday the inventory lists (§ 7021(a): "no later than 10 business days
//!   after receiving"; § 7026(f): "15 business days from the date the business receives").
//! - **No roll-forward.** Reg. 1182/71 Art. 3(4) and the ICO let a period whose last day is a
//!   weekend or holiday end on the next working day; we keep the earlier date, since an answer
//!   by it is always in time.
//! - **An extension runs from the original due date** (GDPR: two further months; CCPA: 45
//!   further days, 90 from receipt in all, § 7021(b)). For months this is never later than the
//!   whole period counted from receipt: 31 January → 28 February → 28 April.
//! - A deadline is the **last millisecond** of its date at the calendar's offset: an answer at
//!   or before it is in time.
//!
//! # The request machine
//!
//! A request is created `received`, with its due date (and, under CCPA, its
//! acknowledge-by date) computed from its profile. Then:
//!
//! | from ↓ \ by → | acknowledge¹      | verify              | approve                           | extend²            | reject           | complete         |
//! |----------------|-------------------|---------------------|-----------------------------------|--------------------|------------------|------------------|
//! | `received`     | `received`        | `verifying`         | `in_progress`³ or `not_verified`  | `not_approved`     | `rejected`       | `not_approved`   |
//! | `verifying`    | `verifying`       | `already_verifying` | `in_progress`                     | `not_approved`     | `rejected`       | `not_approved`   |
//! | `in_progress`  | `in_progress`     | `already_approved`  | `already_approved`                | `extended`         | `rejected`       | `completed`      |
//! | `extended`     | `extended`        | `already_approved`  | `already_approved`                | `already_extended` | `rejected`       | `completed`      |
//! | `completed`    | `request_closed`  | `request_closed`    | `request_closed`                  | `request_closed`   | `request_closed` | `request_closed` |
//! | `rejected`     | `request_closed`  | `request_closed`    | `request_closed`                  | `request_closed`   | `request_closed` | `request_closed` |
//!
//! A status is where the transition leads; a snake_case name is the rule that refuses it
//! ([`TransitionError::rule`]).
//!
//! - ¹ **acknowledge** confirms receipt to the subject (CCPA Regulations § 7021(a)); it
//!   leaves the status as it is and is refused a second time (`already_acknowledged`).
//! - **verify** starts checking the subject's identity; **approve** records it checked
//!   (`verified_at`) and starts the work. ³ A kind that needs no verification (an opt-out of
//!   sale or sharing, § 7026) is approved straight from `received`; any other is refused
//!   `not_verified`.
//! - ² **extend** needs a [`Reason`] (told to the subject) and the request approved: an
//!   extension answers the work a request needs (GDPR Art. 12(3): "the complexity and number
//!   of the requests"), and a subject who cannot be verified in time is refused instead
//!   (§ 7021(b)). It is refused when the profile allows none for the kind
//!   (`extension_not_allowed`: an opt-out under CCPA), a second time (`already_extended`),
//!   and after the original due date, before which the subject must be told
//!   (`extension_too_late`; Art. 12(3), Cal. Civ. Code § 1798.130(a)(2)).
//! - **reject** needs a [`Reason`] and closes the request from any open status, verified or
//!   not; **complete** closes an approved one. A closed request changes no more.
//! - A transition dated before the request's last change is refused (`out_of_order`).
//!
//! A completed request may have been completed late; a late request is still answered, so
//! lateness ([`Request::is_overdue`]) refuses nothing.

use std::fmt;

/// A closed set of names: an enum written in snake_case in files and APIs, with `as_str`,
/// `FromStr` (whose error lists the allowed names), `Display` and `ALL`.
macro_rules! names {
    (
        $(#[$doc:meta])*
        $name:ident, $what:literal {
            $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Every name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The name as files and APIs write it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::rights::ParseNameError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::rights::ParseNameError {
                        what: $what,
                        allowed: $name::NAMES,
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod calendar;
mod jurisdiction;
mod profile;
mod request;

pub use calendar::{Calendar, OutOfRangeError, TimeLimit};
pub(crate) use calendar::{parse_date, parse_utc_offset};
pub use jurisdiction::{EU_EEA, jurisdiction};
pub use profile::{CCPA, Extension, GDPR, PROFILES, Profile, ProfileId, RequestKind, UK_GDPR};
pub use request::{
    Channel, MAX_REASON_LENGTH, NewRequestError, ParseReasonError, RECORD_KEPT_MONTHS, Reason,
    Request, RequestStatus, Transition, TransitionError,
};

/// A name that is not one of the few a closed set allows (a request kind, a profile id).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}: choose {}", Allowed(allowed))]
pub struct ParseNameError {
    /// What was being named ("request kind").
    pub what: &'static str,
    /// The names allowed.
    pub allowed: &'static [&'static str],
}

/// Names as a message lists them: `gdpr, uk_gdpr or ccpa`.
pub(crate) fn choices(names: &[&str]) -> String {
    Allowed(names).to_string()
}

/// Lists names as a message does: `a, b or c`.
struct Allowed<'a>(&'a [&'a str]);

impl fmt::Display for Allowed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            match i {
                0 => {}
                _ if i + 1 == self.0.len() => f.write_str(" or ")?,
                _ => f.write_str(", ")?,
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_a_wrong_one_lists_the_allowed() {
        for kind in RequestKind::ALL {
            assert_eq!(kind.as_str().parse::<RequestKind>(), Ok(*kind));
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
        }
        let e = "Erasure".parse::<RequestKind>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown request kind: choose access, portability, rectification, erasure, \
             restriction, objection or opt_out_sale_sharing"
        );
        let e = "gdrp".parse::<ProfileId>().unwrap_err().to_string();
        assert_eq!(e, "unknown profile: choose gdpr, uk_gdpr or ccpa");
    }
}
