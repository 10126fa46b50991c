//! The deadlines a breach starts, as data, and the instants they fall at.
//!
//! GDPR and UK GDPR give the controller 72 hours from becoming aware of a personal data
//! breach to notify the supervisory authority (Art. 33(1)), and tell the subjects "without
//! undue delay" when the risk to them is high (Art. 34(1)). California gives 30 calendar days
//! from discovery to notify its residents, and a sample copy to the Attorney General within
//! 15 days of that when more than 500 residents are notified (Cal. Civ. Code § 1798.82(a) and
//! (f), as amended by SB 446, in force since 1 January 2026).
//!
//! Hours are elapsed time: 72 hours after 09:30 on the Saturday before the clocks go forward
//! is 10:30 on the Tuesday by the wall clock. Calendar days end at midnight in the
//! organization's time zone (`[breach] time_zone`).

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;

use crate::rights::ProfileId;

/// Whom a duty is owed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Addressee {
    /// The supervisory authority (the ICO for UK GDPR).
    Authority,
    /// The data subjects affected.
    Subjects,
    /// California's Attorney General.
    AttorneyGeneral,
}

/// How long a duty allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Within {
    /// This many hours from awareness.
    Hours(i64),
    /// Until the end of this many calendar days after the day of discovery.
    CalendarDays(u64),
    /// No fixed time: without undue delay.
    WithoutUndueDelay,
}

/// One duty a breach may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Duty {
    /// The profile whose law it is.
    pub profile: ProfileId,
    /// Whom to notify.
    pub to: Addressee,
    /// How long.
    pub within: Within,
    /// When it applies, in words.
    pub when: &'static str,
    /// Where the law says so.
    pub cite: &'static str,
}

/// Every duty the built-in profiles know.
pub const DUTIES: &[Duty] = &[
    Duty {
        profile: ProfileId::Gdpr,
        to: Addressee::Authority,
        within: Within::Hours(72),
        when: "unless the breach is unlikely to result in a risk to people's rights and freedoms",
        cite: "GDPR Art. 33(1)",
    },
    Duty {
        profile: ProfileId::Gdpr,
        to: Addressee::Subjects,
        within: Within::WithoutUndueDelay,
        when: "when the breach is likely to result in a high risk to them",
        cite: "GDPR Art. 34(1)",
    },
    Duty {
        profile: ProfileId::UkGdpr,
        to: Addressee::Authority,
        within: Within::Hours(72),
        when: "unless the breach is unlikely to result in a risk to people's rights and freedoms",
        cite: "UK GDPR Art. 33(1)",
    },
    Duty {
        profile: ProfileId::UkGdpr,
        to: Addressee::Subjects,
        within: Within::WithoutUndueDelay,
        when: "when the breach is likely to result in a high risk to them",
        cite: "UK GDPR Art. 34(1)",
    },
    Duty {
        profile: ProfileId::Ccpa,
        to: Addressee::Subjects,
        within: Within::CalendarDays(30),
        when: "when unencrypted personal information of California residents was, or is reasonably believed to have been, acquired by an unauthorized person",
        cite: "Cal. Civ. Code § 1798.82(a)",
    },
    Duty {
        profile: ProfileId::Ccpa,
        to: Addressee::AttorneyGeneral,
        within: Within::CalendarDays(45),
        when: "when more than 500 California residents are notified: a sample copy within 15 days of notifying them (shown: the latest, for notices sent on the 30th day)",
        cite: "Cal. Civ. Code § 1798.82(f)",
    },
];

/// A duty and when it falls due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deadline {
    /// The duty.
    pub duty: Duty,
    /// When it is due, ms since the epoch; none for "without undue delay".
    pub due_ms: Option<i64>,
    /// The same instant on the organization's wall clock, RFC 3339 with its offset.
    pub due_local: Option<String>,
}

impl Deadline {
    /// Milliseconds left at `now_ms` (negative once passed); none without a fixed time.
    pub fn left_ms(&self, now_ms: i64) -> Option<i64> {
        self.due_ms.map(|d| d - now_ms)
    }
}

/// The deadlines of `profiles`' duties for a breach the controller became aware of at
/// `aware_ms`, counted in `tz`.
pub fn deadlines(aware_ms: i64, profiles: &[ProfileId], tz: Tz) -> Vec<Deadline> {
    DUTIES
        .iter()
        .filter(|d| profiles.contains(&d.profile))
        .map(|d| {
            let due_ms = due(aware_ms, d.within, tz);
            Deadline {
                duty: *d,
                due_ms,
                due_local: due_ms.map(|ms| local(ms, tz)),
            }
        })
        .collect()
}

fn due(aware_ms: i64, within: Within, tz: Tz) -> Option<i64> {
    match within {
        Within::Hours(h) => Some(aware_ms + h * 3_600_000),
        Within::CalendarDays(n) => {
            let aware = DateTime::from_timestamp_millis(aware_ms)?.with_timezone(&tz);
            let last: NaiveDate = aware.date_naive().checked_add_days(Days::new(n))?;
            let next = last.succ_opt()?.and_time(NaiveTime::MIN);
            // The instant the next day begins, less one millisecond: the end of the last day.
            let start = match tz.from_local_datetime(&next) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
                LocalResult::None => tz
                    .from_local_datetime(&(next + chrono::Duration::hours(1)))
                    .earliest()?,
            };
            Some(start.timestamp_millis() - 1)
        }
        Within::WithoutUndueDelay => None,
    }
}

/// An instant on the wall clock of `tz`, RFC 3339 with the offset, to the second.
pub fn local(ms: i64, tz: Tz) -> String {
    DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| {
            t.with_timezone(&tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
        },
    )
}

/// Time left in words: hours and minutes up to three days ("71 h 59 min left"), days and
/// hours beyond ("30 d 16 h left"); "overdue" once it is negative.
pub fn describe_left(ms: i64) -> String {
    let (word, ms) = if ms < 0 {
        ("overdue", -ms)
    } else {
        ("left", ms)
    };
    let minutes = ms / 60_000;
    let hours = minutes / 60;
    if hours > 72 {
        format!("{} d {} h {word}", hours / 24, hours % 24)
    } else {
        format!("{hours} h {} min {word}", minutes % 60)
    }
}

/// A time that cannot be read as one instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstantError {
    /// Neither RFC 3339 nor a local `YYYY-MM-DDTHH:MM[:SS]`.
    #[error(
        "is not a time: write RFC 3339 (2026-03-28T09:30:00+00:00) or a local time (2026-03-28T09:30) in {0}"
    )]
    Unreadable(String),
    /// A local time the clocks skip.
    #[error("{0} does not exist in {1}: the clocks go forward past it")]
    Skipped(String, String),
    /// A local time the clocks show twice.
    #[error("{0} happens twice in {1} as the clocks go back: give the offset (RFC 3339)")]
    Ambiguous(String, String),
}

/// Reads an instant: RFC 3339 with its offset, or a local date and time in `tz`, refusing
/// one the clocks skip or show twice. Milliseconds since the epoch.
///
/// # Errors
/// [`InstantError`] naming the rule.
pub fn parse_instant(s: &str, tz: Tz) -> Result<i64, InstantError> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let naive = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .ok_or_else(|| InstantError::Unreadable(tz.name().to_string()))?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.timestamp_millis()),
        LocalResult::None => Err(InstantError::Skipped(s.into(), tz.name().into())),
        LocalResult::Ambiguous(..) => Err(InstantError::Ambiguous(s.into(), tz.name().into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONDON: Tz = chrono_tz::Europe::London;
    const LA: Tz = chrono_tz::America::Los_Angeles;

    #[test]
    fn seventy_two_hours_are_elapsed_time_across_the_clocks_going_forward() {
        // Saturday 28 March 2026, 09:30 GMT; the clocks go forward on Sunday 29 March.
        let aware = parse_instant("2026-03-28T09:30", LONDON).unwrap();
        assert_eq!(
            crate::time::format_time_ms(aware),
            "2026-03-28T09:30:00.000Z"
        );
        let d = deadlines(aware, &[ProfileId::UkGdpr], LONDON);
        let authority = d
            .iter()
            .find(|d| d.duty.to == Addressee::Authority)
            .unwrap();
        assert_eq!(authority.due_ms, Some(aware + 72 * 3_600_000));
        assert_eq!(
            crate::time::format_time_ms(authority.due_ms.unwrap()),
            "2026-03-31T09:30:00.000Z"
        );
        // On the wall clock it is an hour later than the time of awareness.
        assert_eq!(
            authority.due_local.as_deref(),
            Some("2026-03-31T10:30:00+01:00")
        );
        let subjects = d.iter().find(|d| d.duty.to == Addressee::Subjects).unwrap();
        assert_eq!(subjects.due_ms, None);
    }

    #[test]
    fn and_across_the_clocks_going_back() {
        // Friday 23 October 2026, 12:00 BST; the clocks go back on Sunday 25 October.
        let aware = parse_instant("2026-10-23T12:00", LONDON).unwrap();
        let d = deadlines(aware, &[ProfileId::Gdpr], LONDON);
        assert_eq!(d[0].due_local.as_deref(), Some("2026-10-26T11:00:00+00:00"));
        assert_eq!(d[0].left_ms(aware), Some(72 * 3_600_000));
    }

    #[test]
    fn calendar_days_end_at_local_midnight() {
        // Discovered 20 February 2026 in California; 30 days later is 22 March, after the
        // clocks went forward on 8 March: midnight PDT is 07:00 UTC.
        let aware = parse_instant("2026-02-20T16:00", LA).unwrap();
        let d = deadlines(aware, &[ProfileId::Ccpa], LA);
        let residents = d.iter().find(|d| d.duty.to == Addressee::Subjects).unwrap();
        assert_eq!(
            crate::time::format_time_ms(residents.due_ms.unwrap()),
            "2026-03-23T06:59:59.999Z"
        );
        assert_eq!(
            residents.due_local.as_deref(),
            Some("2026-03-22T23:59:59-07:00")
        );
        assert!(d.iter().any(|d| d.duty.to == Addressee::AttorneyGeneral));
    }

    #[test]
    fn time_left_is_said_in_hours_then_days() {
        assert_eq!(describe_left(72 * 3_600_000), "72 h 0 min left");
        assert_eq!(
            describe_left(71 * 3_600_000 + 59 * 60_000 + 59_999),
            "71 h 59 min left"
        );
        assert_eq!(
            describe_left(-(2 * 3_600_000 + 5 * 60_000)),
            "2 h 5 min overdue"
        );
        assert_eq!(describe_left(736 * 3_600_000), "30 d 16 h left");
    }

    #[test]
    fn a_local_time_the_clocks_skip_or_repeat_is_refused() {
        assert!(matches!(
            parse_instant("2026-03-29T01:30", LONDON),
            Err(InstantError::Skipped(..))
        ));
        assert!(matches!(
            parse_instant("2026-10-25T01:30", LONDON),
            Err(InstantError::Ambiguous(..))
        ));
        assert_eq!(
            parse_instant("2026-10-25T01:30:00+01:00", LONDON).unwrap(),
            parse_instant("2026-10-25T00:30:00Z", LONDON).unwrap()
        );
        assert!(matches!(
            parse_instant("last tuesday", LONDON),
            Err(InstantError::Unreadable(_))
        ));
    }
}
