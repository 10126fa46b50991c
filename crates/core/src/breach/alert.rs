//! An alert: something in the audit log that looks like a breach, said in words and ids,
//! never a personal value. Its JSON is what webhooks receive.

use serde::{Deserialize, Serialize};

use crate::ids::{AlertId, RecordId, SubjectId};

/// What raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A canary record was read, found by a search, or exported: no legitimate caller
    /// ever touches one.
    CanaryTouched,
    /// A canary's value came in with a request (a write or a search): someone is trying a
    /// leaked list against the API.
    CanaryValue,
    /// A caller read far more records in an hour than it usually does.
    ReadVolume,
    /// A caller read many records of a collection it rarely reads.
    RareCollection,
    /// A caller read records at an hour of the day it never reads at.
    UnusualHour,
}

impl AlertKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [AlertKind] = &[
        AlertKind::CanaryTouched,
        AlertKind::CanaryValue,
        AlertKind::ReadVolume,
        AlertKind::RareCollection,
        AlertKind::UnusualHour,
    ];

    /// The name files and APIs write.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::CanaryTouched => "canary_touched",
            AlertKind::CanaryValue => "canary_value",
            AlertKind::ReadVolume => "read_volume",
            AlertKind::RareCollection => "rare_collection",
            AlertKind::UnusualHour => "unusual_hour",
        }
    }

    /// The kind a name names.
    pub fn parse(s: &str) -> Option<AlertKind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// The kind an `alert.raise` entry's detail ([`Alert::raise_detail`]) names.
    pub fn in_raise_detail(detail: &str) -> Option<AlertKind> {
        detail.split_whitespace().nth(2).and_then(AlertKind::parse)
    }

    /// Whether it comes from a canary: certain, rather than a guess from a baseline.
    pub fn is_canary(self) -> bool {
        matches!(self, AlertKind::CanaryTouched | AlertKind::CanaryValue)
    }
}

/// One alert, as stored, shown in the console and posted to webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Its id.
    pub id: AlertId,
    /// What raised it.
    pub kind: AlertKind,
    /// When, RFC 3339 UTC.
    pub raised_at: String,
    /// Whom it is about, as the audit log names callers: `apikey:NAME`, `operator:ID`, ...
    pub actor: String,
    /// What happened, in words (ids, counts and names, never a value).
    pub summary: String,
    /// The collection it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// The canary record touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<RecordId>,
    /// The canary's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<SubjectId>,
    /// The audit entry that raised it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_index: Option<u64>,
    /// Records read in the hour, for the rules counting reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<u64>,
    /// What the caller usually reads in an hour, for the rules counting reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// Whether the caller was suspended because of it (`[breach] suspend_on_alert`).
    #[serde(default)]
    pub suspended: bool,
}

impl Alert {
    /// The `detail` of the alert's `alert.raise` audit entry: `alert ID KIND about ACTOR`,
    /// which [`AlertKind::in_raise_detail`] reads back.
    pub fn raise_detail(&self) -> String {
        format!(
            "alert {} {} about {}",
            self.id,
            self.kind.as_str(),
            self.actor
        )
    }

    /// The alert's JSON: the body webhooks receive.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an alert serialises")
    }

    /// Reads an alert from its JSON.
    ///
    /// # Errors
    /// When the bytes are not an alert.
    pub fn from_json(b: &[u8]) -> Result<Alert, serde_json::Error> {
        serde_json::from_slice(b)
    }
}
