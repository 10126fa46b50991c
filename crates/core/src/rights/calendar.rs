//! The working calendar deadlines are counted on (a UTC offset and the holidays the inventory
//! lists), and time limits in months, calendar days and business days.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, FixedOffset, Months, NaiveDate, NaiveTime, Weekday};
use serde::Serialize;
use serde::ser::SerializeStruct;

/// A timestamp or date outside the range the calendar can count in (about 262,000 years
/// either side of the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the date is outside the range deadlines can be counted in")]
pub struct OutOfRangeError;

/// Where and when the controller works: the UTC offset its dates are taken at, and its
/// holidays. Saturdays and Sundays are never business days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    offset: FixedOffset,
    holidays: BTreeSet<NaiveDate>,
}

impl Default for Calendar {
    /// UTC, with no holidays.
    fn default() -> Self {
        Calendar::new(FixedOffset::east_opt(0).expect("zero is in range"), [])
    }
}

impl Calendar {
    /// A calendar at `offset` with these holidays.
    pub fn new(offset: FixedOffset, holidays: impl IntoIterator<Item = NaiveDate>) -> Self {
        Calendar {
            offset,
            holidays: holidays.into_iter().collect(),
        }
    }

    /// The offset from UTC dates are taken at.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// The holidays, in date order.
    pub fn holidays(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.holidays.iter().copied()
    }

    /// Whether `date` is a business day: not a Saturday, a Sunday or a listed holiday.
    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&date)
    }

    /// The date at this calendar's offset of an instant (milliseconds since the epoch).
    ///
    /// # Errors
    /// [`OutOfRangeError`] for an instant outside chrono's range.
    pub fn date_of(&self, at_ms: i64) -> Result<NaiveDate, OutOfRangeError> {
        DateTime::from_timestamp_millis(at_ms)
            .map(|t| t.with_timezone(&self.offset).date_naive())
            .ok_or(OutOfRangeError)
    }

    /// The last millisecond of `date` at this calendar's offset: the latest instant that is
    /// still on that date.
    ///
    /// # Errors
    /// [`OutOfRangeError`] at the very ends of chrono's range.
    pub fn end_of(&self, date: NaiveDate) -> Result<i64, OutOfRangeError> {
        let last = NaiveTime::from_hms_milli_opt(23, 59, 59, 999).ok_or(OutOfRangeError)?;
        date.and_time(last)
            .and_local_timezone(self.offset)
            .single()
            .map(|t| t.timestamp_millis())
            .ok_or(OutOfRangeError)
    }

    /// Whole days from the date of `from_ms` to the date of `to_ms`, negative when `to_ms`
    /// is on an earlier date.
    ///
    /// # Errors
    /// [`OutOfRangeError`] for an instant outside chrono's range.
    pub fn days_between(&self, from_ms: i64, to_ms: i64) -> Result<i64, OutOfRangeError> {
        Ok((self.date_of(to_ms)? - self.date_of(from_ms)?).num_days())
    }
}

impl Serialize for Calendar {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let holidays: Vec<String> = self.holidays.iter().map(|d| d.to_string()).collect();
        let mut st = s.serialize_struct("Calendar", 2)?;
        st.serialize_field("utc_offset", &self.offset.to_string())?;
        st.serialize_field("holidays", &holidays)?;
        st.end()
    }
}

/// Reads a date written `YYYY-MM-DD`, and nothing else.
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    shaped
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
}

/// Reads a UTC offset written `+HH:MM` or `-HH:MM` (at most 14 hours, as real zones are).
pub(crate) fn parse_utc_offset(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 || (h == 14 && m > 0) {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// A time limit the law sets, in the unit it sets it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeLimit {
    /// Calendar months: the same date in the final month, or that month's last day.
    Months(u32),
    /// Calendar days.
    Days(u32),
    /// Days that are neither a Saturday, a Sunday nor a holiday of the calendar.
    BusinessDays(u32),
}

impl TimeLimit {
    /// The last day of this limit counted from `start`, which is itself not counted (see the
    /// [module rules](crate::rights#how-time-is-counted)).
    ///
    /// # Errors
    /// [`OutOfRangeError`] when the end falls outside chrono's range.
    pub fn after(
        self,
        start: NaiveDate,
        calendar: &Calendar,
    ) -> Result<NaiveDate, OutOfRangeError> {
        match self {
            TimeLimit::Months(n) => start.checked_add_months(Months::new(n)),
            TimeLimit::Days(n) => start.checked_add_days(Days::new(u64::from(n))),
            TimeLimit::BusinessDays(n) => {
                let mut day = start;
                let mut left = n;
                while left > 0 {
                    day = day.succ_opt().ok_or(OutOfRangeError)?;
                    if calendar.is_business_day(day) {
                        left -= 1;
                    }
                }
                Some(day)
            }
        }
        .ok_or(OutOfRangeError)
    }
}

impl std::fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, unit) = match *self {
            TimeLimit::Months(n) => (n, "month"),
            TimeLimit::Days(n) => (n, "day"),
            TimeLimit::BusinessDays(n) => (n, "business day"),
        };
        write!(f, "{n} {unit}{}", if n == 1 { "" } else { "s" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// `limit` counted from `start` on a UTC calendar with `holidays` ends on `expect`.
    fn check(limit: TimeLimit, start: &str, holidays: &[&str], expect: &str) {
        let calendar = Calendar::new(
            FixedOffset::east_opt(0).unwrap(),
            holidays.iter().map(|h| date(h)),
        );
        let got = limit.after(date(start), &calendar).unwrap();
        assert_eq!(got, date(expect), "{limit} after {start}");
    }

    #[test]
    fn time_limits_end_where_the_rules_say() {
        use TimeLimit::{BusinessDays, Days, Months};
        let rows: &[(TimeLimit, &str, &[&str], &str)] = &[
            // Months: the same date, or the last day of a shorter month.
            (Months(1), "2026-09-03", &[], "2026-10-03"),
            (Months(1), "2027-01-31", &[], "2027-02-28"),
            (Months(1), "2028-01-31", &[], "2028-02-29"),
            (Months(1), "2027-01-29", &[], "2027-02-28"),
            (Months(1), "2027-03-31", &[], "2027-04-30"),
            (Months(1), "2028-02-29", &[], "2028-03-29"),
            (Months(1), "2026-12-31", &[], "2027-01-31"),
            (Months(2), "2027-02-28", &[], "2027-04-28"),
            (Months(2), "2026-12-31", &[], "2027-02-28"),
            (Months(12), "2028-02-29", &[], "2029-02-28"),
            // Months ignore weekends and holidays: 28 February 2027 is a Sunday.
            (Months(1), "2027-01-31", &["2027-02-28"], "2027-02-28"),
            // Calendar days.
            (Days(45), "2027-03-01", &[], "2027-04-15"),
            (Days(45), "2026-12-24", &["2026-12-25"], "2027-02-07"),
            (Days(45), "2028-01-15", &[], "2028-02-29"),
            (Days(45), "2027-01-15", &[], "2027-03-01"),
            // Business days: Friday 4 June 2027 and Saturday 5 June both start on Monday.
            (BusinessDays(10), "2027-06-04", &[], "2027-06-18"),
            (BusinessDays(10), "2027-06-05", &[], "2027-06-18"),
            (BusinessDays(10), "2027-06-06", &[], "2027-06-18"),
            (BusinessDays(15), "2027-06-04", &[], "2027-06-25"),
            (BusinessDays(15), "2027-06-05", &[], "2027-06-25"),
            (BusinessDays(1), "2027-06-04", &[], "2027-06-07"),
            (BusinessDays(1), "2027-06-07", &[], "2027-06-08"),
            // A listed holiday is skipped; an unlisted one is a business day.
            (BusinessDays(1), "2027-06-04", &["2027-06-07"], "2027-06-08"),
            // Across the year end: Thursday 24 December 2026, with 25 December and 1 January.
            (
                BusinessDays(10),
                "2026-12-24",
                &["2026-12-25", "2027-01-01"],
                "2027-01-11",
            ),
            (BusinessDays(10), "2026-12-24", &[], "2027-01-07"),
            (
                BusinessDays(15),
                "2026-12-24",
                &["2026-12-25", "2027-01-01"],
                "2027-01-18",
            ),
        ];
        for (limit, start, holidays, expect) in rows {
            check(*limit, start, holidays, expect);
        }
    }

    #[test]
    fn dates_are_taken_at_the_calendars_offset() {
        // 2027-06-04T23:00:00Z, a Friday evening in UTC, past midnight at +01:00.
        let t = 1_812_150_000_000;
        let at = |offset: &str| {
            Calendar::new(parse_utc_offset(offset).unwrap(), [])
                .date_of(t)
                .unwrap()
                .to_string()
        };
        assert_eq!(at("+00:00"), "2027-06-04");
        assert_eq!(at("+01:00"), "2027-06-05");
        assert_eq!(at("-08:00"), "2027-06-04");
        let cet = Calendar::new(parse_utc_offset("+01:00").unwrap(), []);
        let end = cet.end_of(date("2027-06-04")).unwrap();
        assert_eq!(end, t - 1);
        assert_eq!(cet.date_of(end).unwrap(), date("2027-06-04"));
        assert_eq!(cet.date_of(end + 1).unwrap(), date("2027-06-05"));
        assert_eq!(cet.days_between(end, end + 1), Ok(1));
        assert_eq!(Calendar::default().date_of(i64::MAX), Err(OutOfRangeError));
        for bad in [
            "", "+1:00", "01:00", "+01", "+15:00", "+14:30", "+01:60", "UTC", "+0a:00",
        ] {
            assert!(parse_utc_offset(bad).is_none(), "{bad:?}");
        }
        assert_eq!(
            parse_utc_offset("-03:30").unwrap().local_minus_utc(),
            -12_600
        );
    }
}
