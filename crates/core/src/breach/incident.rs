//! An incident: a breach (or a suspected one) from the moment staff open it, with the facts,
//! effects and remedial action GDPR Art. 33(5) asks to be documented, the decision whether to
//! notify and why, and every step taken. The register is every incident, notified or not.

use serde::{Deserialize, Serialize};

use crate::ids::{AlertId, IncidentId};

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Being handled.
    Open,
    /// Contained: the keys revoked, the accounts disabled; notices may still be due.
    Contained,
    /// Closed, with its decision recorded.
    Closed,
}

impl IncidentStatus {
    /// The name files and APIs write.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Contained => "contained",
            IncidentStatus::Closed => "closed",
        }
    }

    /// The status a name names.
    pub fn parse(s: &str) -> Option<IncidentStatus> {
        [
            IncidentStatus::Open,
            IncidentStatus::Contained,
            IncidentStatus::Closed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The decision whether to notify, with its reasons (Art. 33(5)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether the supervisory authority is (or was) notified.
    pub notify_authority: bool,
    /// Whether the subjects are (or were) notified.
    pub notify_subjects: bool,
    /// Why, in staff's words.
    pub reasons: String,
    /// When it was decided, ms since the epoch.
    pub at_ms: i64,
    /// Who decided, as the audit log names them.
    pub by: String,
}

/// One thing done about an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Who, as the audit log names them.
    pub by: String,
    /// What, in words.
    pub what: String,
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Its id.
    pub id: IncidentId,
    /// A short title.
    pub title: String,
    /// When the controller became aware of the breach: the clocks run from here.
    pub aware_at_ms: i64,
    /// When it was opened in Custos.
    pub opened_at_ms: i64,
    /// Who opened it.
    pub opened_by: String,
    /// Where it stands.
    pub status: IncidentStatus,
    /// The facts: what happened, as known (Art. 33(3)(a), 33(5)).
    #[serde(default)]
    pub facts: String,
    /// Its effects and likely consequences (Art. 33(3)(c)).
    #[serde(default)]
    pub effects: String,
    /// The remedial action taken or proposed (Art. 33(3)(d)).
    #[serde(default)]
    pub remedial: String,
    /// The API key whose reads are its blast radius, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// The operator whose reads are its blast radius, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// The start of the window its blast radius covers, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<i64>,
    /// The end of that window (excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<i64>,
    /// The alerts it was opened from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertId>,
    /// The decision whether to notify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Every step taken, in order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// The subjects whose notice was queued: a second approval skips them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notified: Vec<crate::ids::SubjectId>,
}

/// The longest title.
pub const MAX_TITLE: usize = 200;
/// The longest facts, effects, remedial action or reasons.
pub const MAX_TEXT: usize = 20_000;

/// A title or text that cannot be kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct IncidentTextError {
    /// Which field.
    pub field: &'static str,
    /// Which rule, in words.
    pub rule: &'static str,
}

/// Checks a title: 1 to 200 characters, on one line.
///
/// # Errors
/// [`IncidentTextError`] naming the rule.
pub fn check_title(s: &str) -> Result<(), IncidentTextError> {
    let err = |rule| {
        Err(IncidentTextError {
            field: "title",
            rule,
        })
    };
    if s.trim().is_empty() {
        return err("is empty");
    }
    if s.chars().count() > MAX_TITLE {
        return err("is longer than 200 characters");
    }
    if s.chars().any(char::is_control) {
        return err("holds a control character or line break");
    }
    Ok(())
}

/// Checks one of the longer texts: at most 20,000 characters, no control character but
/// line breaks and tabs.
///
/// # Errors
/// [`IncidentTextError`] naming the rule.
pub fn check_text(field: &'static str, s: &str) -> Result<(), IncidentTextError> {
    if s.chars().count() > MAX_TEXT {
        return Err(IncidentTextError {
            field,
            rule: "is longer than 20,000 characters",
        });
    }
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(IncidentTextError {
            field,
            rule: "holds a control character",
        });
    }
    Ok(())
}

impl Incident {
    /// The incident's bytes, as the vault seals them.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an incident serialises")
    }

    /// Reads an incident from its bytes.
    ///
    /// # Errors
    /// When the bytes are not an incident.
    pub fn from_bytes(b: &[u8]) -> Result<Incident, serde_json::Error> {
        serde_json::from_slice(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_texts_name_the_rule_they_break() {
        check_title("Support key leaked on a forum").unwrap();
        assert_eq!(check_title(" ").unwrap_err().to_string(), "title is empty");
        assert!(check_title(&"x".repeat(201)).is_err());
        assert!(check_title("two\nlines").is_err());
        check_text("facts", "line one\nline two\tok").unwrap();
        assert_eq!(
            check_text("facts", "bell\u{7}").unwrap_err().to_string(),
            "facts holds a control character"
        );
    }

    #[test]
    fn statuses_round_trip() {
        for s in ["open", "contained", "closed"] {
            assert_eq!(IncidentStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(IncidentStatus::parse("done"), None);
    }
}

/// One RFC 4180 cell, quoted; a cell a spreadsheet would read as a formula gets a `'` first.
fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The register (GDPR Art. 33(5)) as CSV: one row per incident with its facts, effects,
/// remedial action, the decision and its reasons, and the steps taken.
pub fn register_csv(incidents: &[Incident]) -> String {
    let t = crate::time::format_time_ms;
    let mut out = String::from(
        "id,title,status,aware_at,opened_at,opened_by,facts,effects,remedial_action,\
         notify_authority,notify_subjects,decision_reasons,decided_at,decided_by,steps\r\n",
    );
    for i in incidents {
        let (authority, subjects, reasons, at, by) = match &i.decision {
            Some(d) => (
                if d.notify_authority { "yes" } else { "no" },
                if d.notify_subjects { "yes" } else { "no" },
                d.reasons.as_str(),
                t(d.at_ms),
                d.by.as_str(),
            ),
            None => ("undecided", "undecided", "", String::new(), ""),
        };
        let steps: Vec<String> = i
            .steps
            .iter()
            .map(|s| format!("{} {}: {}", t(s.at_ms), s.by, s.what))
            .collect();
        let row = [
            cell(&i.id.to_string()),
            cell(&i.title),
            cell(i.status.as_str()),
            cell(&t(i.aware_at_ms)),
            cell(&t(i.opened_at_ms)),
            cell(&i.opened_by),
            cell(&i.facts),
            cell(&i.effects),
            cell(&i.remedial),
            cell(authority),
            cell(subjects),
            cell(reasons),
            cell(&at),
            cell(by),
            cell(&steps.join("\n")),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod register_tests {
    use super::*;

    #[test]
    fn the_register_quotes_every_cell_and_defuses_formulas() {
        let i = Incident {
            id: IncidentId::random(),
            title: "=HYPERLINK(\"x\")".into(),
            aware_at_ms: 0,
            opened_at_ms: 1,
            opened_by: "cli".into(),
            status: IncidentStatus::Closed,
            facts: "a \"quoted\" fact,\nover two lines".into(),
            effects: String::new(),
            remedial: String::new(),
            api_key: None,
            operator: None,
            from_ms: None,
            to_ms: None,
            alerts: Vec::new(),
            notified: Vec::new(),
            decision: Some(Decision {
                notify_authority: false,
                notify_subjects: false,
                reasons: "the data was encrypted and the key was not exposed".into(),
                at_ms: 2,
                by: "cli".into(),
            }),
            steps: Vec::new(),
        };
        let csv = register_csv(&[i]);
        let mut lines = csv.split("\r\n");
        assert!(lines.next().unwrap().starts_with("id,title,status"));
        assert!(csv.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{csv}");
        assert!(csv.contains("\"a \"\"quoted\"\" fact,\nover two lines\""));
        assert!(csv.contains("\"no\",\"no\",\"the data was encrypted"));
    }
}
