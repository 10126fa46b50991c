//! Regulation profiles as data: which requests a regulation knows, how long a controller has
//! to answer them, whether and how far that may be extended, and when receipt must be
//! confirmed. The built-in profiles cite the articles and sections their numbers come from.

use serde::Serialize;

use super::calendar::{Calendar, OutOfRangeError, TimeLimit};

names! {
    /// What a data subject asks for.
    RequestKind, "request kind" {
        /// A copy of their data and how it is used: GDPR Art. 15; the CCPA's request to know
        /// (Cal. Civ. Code §§ 1798.110, 1798.115).
        Access = "access",
        /// Their data in a structured, machine-readable format, to take elsewhere: GDPR
        /// Art. 20.
        Portability = "portability",
        /// Correction of inaccurate data: GDPR Art. 16; the CCPA's request to correct
        /// (§ 1798.106).
        Rectification = "rectification",
        /// Deletion: GDPR Art. 17; the CCPA's request to delete (§ 1798.105).
        Erasure = "erasure",
        /// Restriction of processing: GDPR Art. 18.
        Restriction = "restriction",
        /// Objection to processing on legitimate interests or a public task, or for direct
        /// marketing: GDPR Art. 21.
        Objection = "objection",
        /// An opt-out of the sale or sharing of personal information: Cal. Civ. Code
        /// § 1798.120; CCPA Regulations § 7026.
        OptOutSaleSharing = "opt_out_sale_sharing",
    }
}

impl RequestKind {
    /// Whether the subject's identity is verified before the request is acted on. Every kind
    /// but an opt-out of sale or sharing, which need not be a verifiable consumer request
    /// (CCPA Regulations § 7026): a business acts on it as received.
    pub fn needs_verification(self) -> bool {
        self != RequestKind::OptOutSaleSharing
    }
}

names! {
    /// A built-in regulation profile, as the inventory and a request name it.
    ProfileId, "profile" {
        /// [`GDPR`].
        Gdpr = "gdpr",
        /// [`UK_GDPR`].
        UkGdpr = "uk_gdpr",
        /// [`CCPA`].
        Ccpa = "ccpa",
    }
}

impl ProfileId {
    /// The profile this id names.
    pub fn profile(self) -> &'static Profile {
        match self {
            ProfileId::Gdpr => &GDPR,
            ProfileId::UkGdpr => &UK_GDPR,
            ProfileId::Ccpa => &CCPA,
        }
    }
}

/// Whether, and by how much, the time to answer may be extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Extension {
    /// It may not.
    None,
    /// Once, by this much more, counted from the original due date, with notice to the
    /// subject before that date.
    Once(TimeLimit),
}

/// What a regulation says about data-subject requests, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// The profile's id.
    pub id: ProfileId,
    /// The regulation's name, for people.
    pub name: &'static str,
    /// The time to answer a request, counted from its receipt.
    pub answer: TimeLimit,
    /// Whether the time to answer may be extended.
    pub extension: Extension,
    /// The time to confirm receipt, where the regulation requires a confirmation.
    pub acknowledgement: Option<TimeLimit>,
    /// The time to act on an opt-out of sale or sharing, where the regulation knows one: it
    /// replaces [`answer`](Self::answer) for that kind, cannot be extended and needs no
    /// acknowledgement.
    pub opt_out: Option<TimeLimit>,
    /// The requests the regulation knows.
    pub kinds: &'static [RequestKind],
}

/// The EU General Data Protection Regulation, Regulation (EU) 2016/679.
///
/// Art. 12(3): the controller answers a request under Arts. 15 to 22 "without undue delay and
/// in any event within one month of receipt of the request"; "that period may be extended by
/// two further months where necessary", the subject being told of the extension, with the
/// reasons, within the first month. No acknowledgement is required. Requests: Arts. 15
/// (access), 16 (rectification), 17 (erasure), 18 (restriction), 20 (portability) and 21
/// (objection). There is no opt-out of sale or sharing: its nearest rights are the objection
/// to direct marketing (Art. 21(2)) and the withdrawal of consent (Art. 7(3)), which the
/// consent ledger records.
pub const GDPR: Profile = Profile {
    id: ProfileId::Gdpr,
    name: "EU GDPR",
    answer: TimeLimit::Months(1),
    extension: Extension::Once(TimeLimit::Months(2)),
    acknowledgement: None,
    opt_out: None,
    kinds: GDPR_KINDS,
};

/// The UK GDPR (Regulation (EU) 2016/679 as retained in UK law, with the Data Protection
/// Act 2018).
///
/// Art. 12(3), as in the EU: one month from receipt, extendable by two further months with
/// notice and reasons within the first month. The ICO counts the month "from the day you
/// receive the request (whether it is a working day or not) until the corresponding calendar
/// date in the next month", or that month's last day. The same requests as the EU GDPR.
pub const UK_GDPR: Profile = Profile {
    id: ProfileId::UkGdpr,
    name: "UK GDPR",
    answer: TimeLimit::Months(1),
    extension: Extension::Once(TimeLimit::Months(2)),
    acknowledgement: None,
    opt_out: None,
    kinds: GDPR_KINDS,
};

/// The California Consumer Privacy Act as amended by the California Privacy Rights Act (Cal.
/// Civ. Code § 1798.100 ff.) and its regulations (Cal. Code Regs. tit. 11, § 7000 ff.).
///
/// § 1798.130(a)(2) and Regulations § 7021(b): answer a request to know, delete or correct
/// "no later than 45 calendar days after receipt", extendable once by 45 more "for a maximum
/// total of 90 calendar days from the day the request is received", with notice and reasons
/// within the first 45 days. § 7021(a): confirm receipt "no later than 10 business days after
/// receiving" it. § 7026(f): act on an opt-out of sale or sharing "no later than 15 business
/// days from the date the business receives the request". Requests: know (access), delete
/// (erasure), correct (rectification), opt-out of sale or sharing. Portability is no separate
/// request: the answer to a request to know comes in a portable format (§ 1798.130(a)(2)).
/// The right to limit the use of sensitive personal information (§ 1798.121) is not modelled.
pub const CCPA: Profile = Profile {
    id: ProfileId::Ccpa,
    name: "California CCPA/CPRA",
    answer: TimeLimit::Days(45),
    extension: Extension::Once(TimeLimit::Days(45)),
    acknowledgement: Some(TimeLimit::BusinessDays(10)),
    opt_out: Some(TimeLimit::BusinessDays(15)),
    kinds: &[
        RequestKind::Access,
        RequestKind::Rectification,
        RequestKind::Erasure,
        RequestKind::OptOutSaleSharing,
    ],
};

const GDPR_KINDS: &[RequestKind] = &[
    RequestKind::Access,
    RequestKind::Portability,
    RequestKind::Rectification,
    RequestKind::Erasure,
    RequestKind::Restriction,
    RequestKind::Objection,
];

/// Every built-in profile.
pub const PROFILES: [&Profile; 3] = [&GDPR, &UK_GDPR, &CCPA];

impl Profile {
    /// Whether the regulation knows requests of this kind.
    pub fn offers(&self, kind: RequestKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// The time to answer a request of this kind: the opt-out period for an opt-out of sale
    /// or sharing where there is one, else the answer period.
    pub fn answer_for(&self, kind: RequestKind) -> TimeLimit {
        match (kind, self.opt_out) {
            (RequestKind::OptOutSaleSharing, Some(limit)) => limit,
            _ => self.answer,
        }
    }

    /// The extension a request of this kind may have: none for an opt-out acted on within
    /// its own period.
    pub fn extension_for(&self, kind: RequestKind) -> Extension {
        match (kind, self.opt_out) {
            (RequestKind::OptOutSaleSharing, Some(_)) => Extension::None,
            _ => self.extension,
        }
    }

    /// The time to confirm receipt of a request of this kind: none for an opt-out, which is
    /// acted on rather than confirmed.
    pub fn acknowledgement_for(&self, kind: RequestKind) -> Option<TimeLimit> {
        match kind {
            RequestKind::OptOutSaleSharing => None,
            _ => self.acknowledgement,
        }
    }

    /// When a request of this kind received at `received_at_ms` must be answered: the last
    /// millisecond of its due date at the calendar's offset.
    ///
    /// # Errors
    /// [`OutOfRangeError`] for an instant outside the calendar's range.
    pub fn due(
        &self,
        kind: RequestKind,
        received_at_ms: i64,
        calendar: &Calendar,
    ) -> Result<i64, OutOfRangeError> {
        let received = calendar.date_of(received_at_ms)?;
        calendar.end_of(self.answer_for(kind).after(received, calendar)?)
    }

    /// When receipt of a request of this kind must be confirmed, if it must.
    ///
    /// # Errors
    /// [`OutOfRangeError`] for an instant outside the calendar's range.
    pub fn acknowledge_by(
        &self,
        kind: RequestKind,
        received_at_ms: i64,
        calendar: &Calendar,
    ) -> Result<Option<i64>, OutOfRangeError> {
        let Some(limit) = self.acknowledgement_for(kind) else {
            return Ok(None);
        };
        let received = calendar.date_of(received_at_ms)?;
        calendar.end_of(limit.after(received, calendar)?).map(Some)
    }

    /// The due date once extended from the original one (`due_at_ms`), or `None` when a
    /// request of this kind cannot be extended.
    ///
    /// # Errors
    /// [`OutOfRangeError`] for an instant outside the calendar's range.
    pub fn extended_due(
        &self,
        kind: RequestKind,
        due_at_ms: i64,
        calendar: &Calendar,
    ) -> Result<Option<i64>, OutOfRangeError> {
        let Extension::Once(limit) = self.extension_for(kind) else {
            return Ok(None);
        };
        let due = calendar.date_of(due_at_ms)?;
        calendar.end_of(limit.after(due, calendar)?).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDate};

    use super::super::calendar::parse_utc_offset;
    use super::*;

    /// One request a line: profile, kind, received at (RFC 3339), calendar, then the due,
    /// extended and acknowledge-by dates at the calendar's offset (`-`: none). Calendars:
    /// `utc`; `year_end`, UTC with 25 December 2026 and 1 January 2027 as holidays; or an
    /// offset such as `+01:00`. 4 June 2027 is a Friday; 28 February 2027 a Sunday.
    const REQUESTS: &str = "
        # GDPR: a month, or the last day of a shorter month; two more from the due date.
        gdpr    access        2027-01-31T10:00:00Z  utc       2027-02-28  2027-04-28  -
        gdpr    access        2028-01-31T10:00:00Z  utc       2028-02-29  2028-04-29  -
        gdpr    erasure       2027-03-31T10:00:00Z  utc       2027-04-30  2027-06-30  -
        gdpr    access        2028-02-29T10:00:00Z  utc       2028-03-29  2028-05-29  -
        gdpr    access        2027-02-28T10:00:00Z  utc       2027-03-28  2027-05-28  -
        uk_gdpr access        2026-09-03T08:00:00Z  utc       2026-10-03  2026-12-03  -
        uk_gdpr objection     2026-12-31T23:59:59Z  utc       2027-01-31  2027-03-31  -
        # Friday evening, Saturday and holidays make no difference to a month.
        gdpr    access        2027-06-04T21:30:00Z  utc       2027-07-04  2027-09-04  -
        gdpr    access        2027-06-05T09:00:00Z  utc       2027-07-05  2027-09-05  -
        gdpr    access        2026-12-24T12:00:00Z  year_end  2027-01-24  2027-03-24  -
        # 23:30 UTC on 31 January is already 1 February in Berlin.
        gdpr    access        2027-01-31T23:30:00Z  +01:00    2027-03-01  2027-05-01  -
        # CCPA: 45 days and 45 more; receipt confirmed within 10 business days.
        ccpa    access        2027-03-01T10:00:00Z  utc       2027-04-15  2027-05-30  2027-03-15
        ccpa    access        2028-01-15T10:00:00Z  utc       2028-02-29  2028-04-14  2028-01-28
        ccpa    access        2027-01-15T10:00:00Z  utc       2027-03-01  2027-04-15  2027-01-29
        # Friday evening and Saturday: business days start on Monday 7 June either way.
        ccpa    erasure       2027-06-04T22:45:00Z  utc       2027-07-19  2027-09-02  2027-06-18
        ccpa    erasure       2027-06-05T09:00:00Z  utc       2027-07-20  2027-09-03  2027-06-18
        # An opt-out: 15 business days, no extension, no confirmation.
        ccpa    opt_out_sale_sharing  2027-06-04T22:45:00Z  utc     2027-06-25  -  -
        ccpa    opt_out_sale_sharing  2027-06-05T09:00:00Z  utc     2027-06-25  -  -
        # 22:45 UTC on that Friday is 14:45 in California (PST).
        ccpa    opt_out_sale_sharing  2027-06-04T22:45:00Z  -08:00  2027-06-25  -  -
        # Across the year end, with and without the holidays.
        ccpa    rectification 2026-12-24T16:00:00Z  year_end  2027-02-07  2027-03-24  2027-01-11
        ccpa    access        2026-12-24T16:00:00Z  utc       2027-02-07  2027-03-24  2027-01-07
        ccpa    opt_out_sale_sharing  2026-12-24T16:00:00Z  year_end  2027-01-18  -  -
    ";

    /// One line of [`REQUESTS`]: the deadlines its request gets are the ones it lists.
    fn check(row: &str) {
        let [profile, kind, received, calendar, due, extended, ack] =
            <[&str; 7]>::try_from(row.split_whitespace().collect::<Vec<_>>()).unwrap();
        let profile = profile.parse::<ProfileId>().unwrap().profile();
        let kind = kind.parse::<RequestKind>().unwrap();
        let calendar = match calendar {
            "utc" => Calendar::default(),
            "year_end" => Calendar::new(
                parse_utc_offset("+00:00").unwrap(),
                ["2026-12-25", "2027-01-01"].map(|d| d.parse::<NaiveDate>().unwrap()),
            ),
            offset => Calendar::new(parse_utc_offset(offset).unwrap(), []),
        };
        let date = |t: i64| calendar.date_of(t).unwrap().to_string();
        let or_none = |d: Option<i64>| d.map_or("-".to_owned(), date);
        let at = DateTime::parse_from_rfc3339(received)
            .unwrap()
            .timestamp_millis();
        let got_due = profile.due(kind, at, &calendar).unwrap();
        assert_eq!(date(got_due), due, "due: {row}");
        assert_ne!(
            date(got_due + 1),
            due,
            "the last millisecond of the day: {row}"
        );
        let got = profile.extended_due(kind, got_due, &calendar).unwrap();
        assert_eq!(or_none(got), extended, "extended: {row}");
        let got = profile.acknowledge_by(kind, at, &calendar).unwrap();
        assert_eq!(or_none(got), ack, "acknowledge by: {row}");
    }

    #[test]
    fn deadlines_under_each_profile() {
        let rows = REQUESTS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let mut n = 0;
        for row in rows {
            check(row);
            n += 1;
        }
        assert_eq!(n, 22);
    }

    #[test]
    fn profiles_offer_their_regulations_requests() {
        for p in PROFILES {
            assert_eq!(p.id.profile(), p);
            assert_eq!(p.id.as_str().parse::<ProfileId>(), Ok(p.id));
        }
        assert!(!GDPR.offers(RequestKind::OptOutSaleSharing));
        assert!(GDPR.offers(RequestKind::Objection) && GDPR.offers(RequestKind::Portability));
        assert!(CCPA.offers(RequestKind::OptOutSaleSharing));
        assert!(!CCPA.offers(RequestKind::Restriction) && !CCPA.offers(RequestKind::Portability));
        assert!(!RequestKind::OptOutSaleSharing.needs_verification());
        assert!(RequestKind::Access.needs_verification());
        let served = serde_json::to_value(&CCPA).unwrap();
        assert_eq!(served["answer"], serde_json::json!({ "days": 45 }));
        assert_eq!(
            served["extension"],
            serde_json::json!({ "once": { "days": 45 } })
        );
        assert_eq!(
            served["opt_out"],
            serde_json::json!({ "business_days": 15 })
        );
        assert_eq!(serde_json::to_value(GDPR.id).unwrap(), "gdpr");
        assert_eq!(GDPR.answer.to_string(), "1 month");
        assert_eq!(
            CCPA.acknowledgement.unwrap().to_string(),
            "10 business days"
        );
    }
}
