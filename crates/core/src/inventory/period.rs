//! Periods (`"30d"`, `"13m"`) and retention rules (`"3y after last_activity"`) as the
//! inventory writes them.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A length of time in calendar units, as written in the inventory: `"30d"`, `"6w"`, `"13m"`,
/// `"2y"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// How many units.
    pub amount: u32,
    /// Which unit.
    pub unit: PeriodUnit,
}

impl Period {
    /// The instant this period after `ms` (milliseconds since the epoch, UTC). Months and
    /// years are calendar months and years; a day that the target month lacks becomes its last
    /// day (31 January + 1 month = 28 or 29 February). `None` past the calendar's range.
    pub fn after(&self, ms: i64) -> Option<i64> {
        use chrono::{Days, Months};
        let t = chrono::DateTime::from_timestamp_millis(ms)?;
        let t = match self.unit {
            PeriodUnit::Days => t.checked_add_days(Days::new(u64::from(self.amount)))?,
            PeriodUnit::Weeks => t.checked_add_days(Days::new(7 * u64::from(self.amount)))?,
            PeriodUnit::Months => t.checked_add_months(Months::new(self.amount))?,
            PeriodUnit::Years => t.checked_add_months(Months::new(self.amount.checked_mul(12)?))?,
        };
        Some(t.timestamp_millis())
    }
}

/// A period that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "period {0:?} is not understood: write a number and a unit, d (days), w (weeks), m (months) \
     or y (years), such as \"30d\" or \"13m\""
)]
pub struct ParsePeriodError(String);

impl FromStr for Period {
    type Err = ParsePeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParsePeriodError(s.to_owned());
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (digits, unit) = s.split_at(split);
        let amount: u32 = digits.parse().map_err(|_| err())?;
        let unit = match unit {
            "d" => PeriodUnit::Days,
            "w" => PeriodUnit::Weeks,
            "m" => PeriodUnit::Months,
            "y" => PeriodUnit::Years,
            _ => return Err(err()),
        };
        if amount == 0 || amount > 100 * 366 {
            return Err(err());
        }
        Ok(Period { amount, unit })
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = match self.unit {
            PeriodUnit::Days => "d",
            PeriodUnit::Weeks => "w",
            PeriodUnit::Months => "m",
            PeriodUnit::Years => "y",
        };
        write!(f, "{}{u}", self.amount)
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How long data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// A period counted from an event.
    Period {
        /// How long.
        period: Period,
        /// From which event.
        anchor: Anchor,
    },
    /// Until the subject withdraws consent for the field's consent-based purposes.
    UntilConsentWithdrawn,
}

/// The unit of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    /// Days.
    Days,
    /// Weeks.
    Weeks,
    /// Calendar months.
    Months,
    /// Calendar years.
    Years,
}

/// The event a retention period runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// When the record was created.
    Created,
    /// When the record was last changed.
    Updated,
    /// The subject's last activity.
    LastActivity,
}

/// A retention string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "retention {0:?} is not understood: write a period such as \"30d\", \"6m\", \"2y\", optionally \
     followed by \"after created\", \"after updated\" or \"after last_activity\", or \"until consent withdrawn\""
)]
pub struct ParseRetentionError(String);

impl FromStr for Retention {
    type Err = ParseRetentionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseRetentionError(s.to_owned());
        let words: Vec<&str> = s.split_whitespace().collect();
        if words == ["until", "consent", "withdrawn"] {
            return Ok(Retention::UntilConsentWithdrawn);
        }
        let (period, anchor) = match words.as_slice() {
            [p] => (*p, Anchor::Created),
            [p, "after", a] => (
                *p,
                match *a {
                    "created" => Anchor::Created,
                    "updated" => Anchor::Updated,
                    "last_activity" => Anchor::LastActivity,
                    _ => return Err(err()),
                },
            ),
            _ => return Err(err()),
        };
        let period = period.parse::<Period>().map_err(|_| err())?;
        Ok(Retention::Period { period, anchor })
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::UntilConsentWithdrawn => f.write_str("until consent withdrawn"),
            Retention::Period { period, anchor } => {
                let a = match anchor {
                    Anchor::Created => "created",
                    Anchor::Updated => "updated",
                    Anchor::LastActivity => "last_activity",
                };
                write!(f, "{period} after {a}")
            }
        }
    }
}

impl Serialize for Retention {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_strings() {
        let ok = [
            ("30d", "30d after created"),
            ("2y", "2y after created"),
            ("6m", "6m after created"),
            ("3y after last_activity", "3y after last_activity"),
            ("7y after created", "7y after created"),
            ("until consent withdrawn", "until consent withdrawn"),
        ];
        for (input, shown) in ok {
            assert_eq!(input.parse::<Retention>().unwrap().to_string(), shown);
        }
        for bad in [
            "",
            "0d",
            "30",
            "d",
            "3x",
            "3y after birth",
            "forever",
            "-1d",
            "3y after",
        ] {
            assert!(bad.parse::<Retention>().is_err(), "{bad:?}");
        }
    }
}
