//! The consent ledger: what a subject chose, when, how and on what evidence, and the state
//! those choices add up to at a given instant. Events are never changed; the state is always
//! derived from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, SubjectId};
use crate::inventory::Period;

/// What the subject chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// Consent given to a consent-based purpose.
    Grant,
    /// Consent withdrawn (or refused, or opted out of) for a consent-based purpose.
    Withdraw,
    /// An objection (GDPR Art. 21) to a purpose based on legitimate interests or a public task.
    Object,
    /// An objection taken back.
    WithdrawObjection,
    /// Processing restricted (GDPR Art. 18): the data is stored, not used.
    Restrict,
    /// A restriction lifted.
    LiftRestriction,
}

impl Choice {
    /// The choice's stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Choice::Grant => "grant",
            Choice::Withdraw => "withdraw",
            Choice::Object => "object",
            Choice::WithdrawObjection => "withdraw_objection",
            Choice::Restrict => "restrict",
            Choice::LiftRestriction => "lift_restriction",
        }
    }

    /// Whether the choice is about one purpose (all but restriction, which is about the
    /// subject).
    pub fn names_purpose(&self) -> bool {
        !matches!(self, Choice::Restrict | Choice::LiftRestriction)
    }
}

/// Where a choice was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A form on the business's website.
    WebForm,
    /// The business's own application, through the API.
    Api,
    /// Imported from an earlier system.
    Import,
    /// A link in an email.
    EmailLink,
    /// A Global Privacy Control signal sent by the customer's browser.
    Gpc,
    /// The customer, signed in to the privacy portal.
    Portal,
}

impl Source {
    /// Every source, with its name.
    pub const ALL: [(&'static str, Source); 6] = [
        ("web_form", Source::WebForm),
        ("api", Source::Api),
        ("import", Source::Import),
        ("email_link", Source::EmailLink),
        ("gpc", Source::Gpc),
        ("portal", Source::Portal),
    ];
}

/// What shows the choice was made: never a plain IP address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Where the choice was collected: a page, a form, a campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_point: Option<String>,
    /// The browser's user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// HMAC-SHA-256 of the IP address under the vault's own key, hex: it can confirm a
    /// claimed address, it cannot reveal one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_hash: Option<String>,
}

/// One event of the ledger. It is the payload of an audit entry, so it is as permanent and as
/// verifiable as the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEvent {
    /// The event.
    pub id: EventId,
    /// Whose choice.
    pub subject_id: SubjectId,
    /// What was chosen.
    pub choice: Choice,
    /// For which purpose; `None` for a restriction, which covers every purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// When it was recorded, ms since the epoch.
    #[serde(rename = "at", with = "rfc3339_ms")]
    pub at_ms: i64,
    /// When a grant ends by itself, ms since the epoch, as the customer was told.
    #[serde(
        rename = "expires",
        default,
        with = "rfc3339_ms_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_ms: Option<i64>,
    /// Where it was made.
    pub source: Source,
    /// The version of the privacy notice the customer was shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_version: Option<String>,
    /// What shows it was made.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub evidence: Evidence,
    /// Why, for an objection or a restriction, as the customer or operator gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn is_empty(e: &Evidence) -> bool {
    *e == Evidence::default()
}

/// Times in events are written as RFC 3339 UTC with milliseconds.
mod rfc3339_ms {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::time::format_time_ms(*ms))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&s)
            .map(|t| t.timestamp_millis())
            .map_err(serde::de::Error::custom)
    }
}

mod rfc3339_ms_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => super::rfc3339_ms::serialize(ms, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| t.timestamp_millis())
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

/// Consent to one purpose, at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ConsentStatus {
    /// Never asked, or nothing recorded.
    NotGiven,
    /// Given, and holding.
    Granted {
        /// When it lapses, if it does, ms since the epoch.
        #[serde(skip)]
        until_ms: Option<i64>,
    },
    /// Given, and lapsed: by its own expiry or the purpose's `consent_lapses_after`.
    Lapsed,
    /// Withdrawn or refused.
    Withdrawn,
}

/// A subject's choices about one purpose, at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurposeState {
    /// Consent, for a consent-based purpose.
    pub consent: ConsentStatus,
    /// Whether the subject objects to the purpose.
    pub objected: bool,
}

impl Default for PurposeState {
    fn default() -> Self {
        Self {
            consent: ConsentStatus::NotGiven,
            objected: false,
        }
    }
}

/// What the vault knows about a subject when it decides an access: the sum of the subject's
/// ledger at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectState {
    /// Whether processing is restricted (GDPR Art. 18).
    pub restricted: bool,
    purposes: BTreeMap<String, PurposeState>,
}

impl SubjectState {
    /// The state that `events`, in the order they were recorded, add up to at `now_ms`.
    /// Events recorded after `now_ms` do not count, so the state can be asked "as of" a past
    /// instant. `lapse` gives a purpose's `consent_lapses_after`: a grant holds until the
    /// earlier of its own expiry and that period after it was given.
    pub fn at<'a>(
        events: impl IntoIterator<Item = &'a ConsentEvent>,
        now_ms: i64,
        lapse: impl Fn(&str) -> Option<Period>,
    ) -> Self {
        let mut state = SubjectState::default();
        for e in events.into_iter().filter(|e| e.at_ms <= now_ms) {
            match (e.choice, e.purpose.as_deref()) {
                (Choice::Restrict, _) => state.restricted = true,
                (Choice::LiftRestriction, _) => state.restricted = false,
                (_, None) => {}
                (choice, Some(purpose)) => {
                    let p = state.purposes.entry(purpose.to_owned()).or_default();
                    match choice {
                        Choice::Grant => {
                            let lapses = lapse(purpose).and_then(|l| l.after(e.at_ms));
                            let until_ms = match (e.expires_ms, lapses) {
                                (Some(a), Some(b)) => Some(a.min(b)),
                                (a, b) => a.or(b),
                            };
                            p.consent = ConsentStatus::Granted { until_ms };
                        }
                        Choice::Withdraw => p.consent = ConsentStatus::Withdrawn,
                        Choice::Object => p.objected = true,
                        Choice::WithdrawObjection => p.objected = false,
                        Choice::Restrict | Choice::LiftRestriction => {}
                    }
                }
            }
        }
        for p in state.purposes.values_mut() {
            if let ConsentStatus::Granted {
                until_ms: Some(until),
            } = p.consent
                && until <= now_ms
            {
                p.consent = ConsentStatus::Lapsed;
            }
        }
        state
    }

    /// The state of one purpose.
    pub fn purpose(&self, id: &str) -> PurposeState {
        self.purposes.get(id).copied().unwrap_or_default()
    }

    /// Every purpose the ledger says something about.
    pub fn purposes(&self) -> impl Iterator<Item = (&str, PurposeState)> {
        self.purposes.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(choice: Choice, purpose: Option<&str>, at_ms: i64) -> ConsentEvent {
        ConsentEvent {
            id: EventId::random(),
            subject_id: SubjectId::random(),
            choice,
            purpose: purpose.map(str::to_owned),
            at_ms,
            expires_ms: None,
            source: Source::Api,
            notice_version: None,
            evidence: Evidence::default(),
            reason: None,
        }
    }

    const DAY: i64 = 86_400_000;

    #[test]
    fn the_last_choice_counts() {
        let events = [
            event(Choice::Grant, Some("marketing"), 0),
            event(Choice::Withdraw, Some("marketing"), DAY),
            event(Choice::Grant, Some("analytics"), DAY),
        ];
        let s = SubjectState::at(&events, 2 * DAY, |_| None);
        assert_eq!(s.purpose("marketing").consent, ConsentStatus::Withdrawn);
        assert_eq!(
            s.purpose("analytics").consent,
            ConsentStatus::Granted { until_ms: None }
        );
        assert_eq!(s.purpose("support").consent, ConsentStatus::NotGiven);
        // As of the first day, the withdrawal had not happened yet.
        let then = SubjectState::at(&events, DAY - 1, |_| None);
        assert_eq!(
            then.purpose("marketing").consent,
            ConsentStatus::Granted { until_ms: None }
        );
    }

    #[test]
    fn consent_lapses_by_the_purpose_or_its_own_expiry_whichever_is_first() {
        let thirteen_months: Period = "13m".parse().unwrap();
        // 2026-01-31: thirteen months later is the last day of February 2027.
        let given = 1_769_817_600_000;
        let lapses = thirteen_months.after(given).unwrap();
        assert_eq!(
            crate::time::format_time_ms(lapses),
            "2027-02-28T00:00:00.000Z"
        );
        let events = [event(Choice::Grant, Some("marketing"), given)];
        let lapse = |_: &str| Some(thirteen_months);
        assert!(matches!(
            SubjectState::at(&events, lapses - 1, lapse)
                .purpose("marketing")
                .consent,
            ConsentStatus::Granted { .. }
        ));
        assert_eq!(
            SubjectState::at(&events, lapses, lapse)
                .purpose("marketing")
                .consent,
            ConsentStatus::Lapsed
        );
        let mut short = event(Choice::Grant, Some("marketing"), given);
        short.expires_ms = Some(given + DAY);
        let s = SubjectState::at([&short], given + DAY, lapse);
        assert_eq!(s.purpose("marketing").consent, ConsentStatus::Lapsed);
        // A fresh grant starts a fresh period.
        let again = [
            event(Choice::Grant, Some("marketing"), given),
            event(Choice::Grant, Some("marketing"), lapses + DAY),
        ];
        assert!(matches!(
            SubjectState::at(&again, lapses + 2 * DAY, lapse)
                .purpose("marketing")
                .consent,
            ConsentStatus::Granted { .. }
        ));
    }

    #[test]
    fn objections_and_restrictions_are_taken_back_by_their_own_events() {
        let events = [
            event(Choice::Object, Some("support"), 0),
            event(Choice::Restrict, None, 0),
            event(Choice::WithdrawObjection, Some("support"), DAY),
        ];
        let s = SubjectState::at(&events, DAY, |_| None);
        assert!(!s.purpose("support").objected);
        assert!(s.restricted);
        let s = SubjectState::at(&events[..2], DAY, |_| None);
        assert!(s.purpose("support").objected);
        let lifted = [
            event(Choice::Restrict, None, 0),
            event(Choice::LiftRestriction, None, 1),
        ];
        assert!(!SubjectState::at(&lifted, 1, |_| None).restricted);
    }

    #[test]
    fn events_read_back_as_written() {
        let mut e = event(Choice::Grant, Some("marketing"), 1_769_817_600_123);
        e.expires_ms = Some(1_769_817_700_000);
        e.evidence.ip_hash = Some("ab".repeat(32));
        let json = serde_json::to_string(&e).unwrap();
        assert!(
            json.contains("\"at\":\"2026-01-31T00:00:00.123Z\""),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<ConsentEvent>(&json).unwrap(), e);
    }
}
