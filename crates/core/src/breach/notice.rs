//! The notices a breach may need, drafted from the incident, its blast radius and the
//! inventory: to the supervisory authority with every item GDPR Art. 33(3) asks, to each
//! affected subject in plain language (Art. 34(2)), and to California residents under the
//! headings Cal. Civ. Code § 1798.82(d) prescribes. Staff read, change the incident if they
//! must, and approve; the vault sends the subjects' through the outbox.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde::Serialize;

use super::blast::BlastRadius;
use super::incident::Incident;
use crate::rights::ProfileId;
use crate::time::format_time_ms;

/// Who the controller is and how to reach them, from `[organization]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Controller {
    /// Its name.
    pub name: String,
    /// Its contact point for privacy questions.
    pub contact: String,
}

/// The draft to the supervisory authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorityNotice {
    /// The text, every Art. 33(3) item under its own heading.
    pub text: String,
    /// Items staff must still write (an empty facts or effects, say), by heading.
    pub missing: Vec<&'static str>,
}

/// Which law's words a subject's notice uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// GDPR or UK GDPR Art. 34.
    Art34,
    /// Cal. Civ. Code § 1798.82.
    California,
}

impl Variant {
    /// The variant for a subject placed under `profile`: California's words under CCPA.
    pub fn for_profile(profile: ProfileId) -> Variant {
        if profile == ProfileId::Ccpa {
            Variant::California
        } else {
            Variant::Art34
        }
    }

    /// Its name, as JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Art34 => "art34",
            Variant::California => "california",
        }
    }

    /// What staff call it.
    pub fn words(self) -> &'static str {
        match self {
            Variant::Art34 => "GDPR Art. 34 notice",
            Variant::California => "California notice (Cal. Civ. Code § 1798.82)",
        }
    }
}

/// One subject's notice: its subject line and text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectNotice {
    /// Which law's words.
    pub variant: Variant,
    /// The subject line.
    pub subject: String,
    /// The text.
    pub text: String,
}

fn or_todo(s: &str, what: &str, missing: &mut Vec<&'static str>, heading: &'static str) -> String {
    if s.trim().is_empty() {
        missing.push(heading);
        format!("[to be written: {what}]")
    } else {
        s.trim().to_owned()
    }
}

fn join(xs: &BTreeSet<String>) -> String {
    if xs.is_empty() {
        "none recorded".into()
    } else {
        xs.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// The draft to the supervisory authority (GDPR / UK GDPR Art. 33(3)), with the reasons for
/// a delay past 72 hours asked for when the draft is made late (Art. 33(1)).
pub fn authority(
    c: &Controller,
    i: &Incident,
    r: &BlastRadius,
    aware_local: &str,
    now_ms: i64,
) -> AuthorityNotice {
    let mut missing = Vec::new();
    let mut t = String::new();
    let _ = writeln!(t, "Personal data breach notification (GDPR Art. 33)");
    let _ = writeln!(t, "Controller: {}", c.name);
    let _ = writeln!(t, "Incident: {} ({})", i.title, i.id);
    let _ = writeln!(t, "Became aware: {aware_local}");
    if let (Some(f), Some(l)) = (&r.first, &r.last) {
        let _ = writeln!(t, "Period of the access found in the audit log: {f} to {l}");
    }
    let _ = writeln!(t, "\n(a) Nature of the breach");
    let _ = writeln!(
        t,
        "{}",
        or_todo(&i.facts, "what happened", &mut missing, "nature")
    );
    let _ = writeln!(
        t,
        "Categories of personal data concerned: {}.",
        join(&r.categories)
    );
    for (coll, x) in &r.collections {
        let _ = writeln!(
            t,
            "  {coll}: fields {}; {} data subjects, {} records",
            join(&x.fields),
            x.subjects,
            x.records
        );
    }
    let _ = writeln!(
        t,
        "Approximate number of data subjects concerned: {}; of personal data records: {}.",
        r.subjects.len(),
        r.records
    );
    if !r.jurisdictions.is_empty() {
        let per: Vec<String> = r
            .jurisdictions
            .iter()
            .map(|(p, n)| format!("{p}: {n}"))
            .collect();
        let _ = writeln!(t, "Subjects by applicable law: {}.", per.join(", "));
    }
    let _ = writeln!(t, "\n(b) Contact point");
    let _ = writeln!(t, "{}, {}", c.name, c.contact);
    let _ = writeln!(t, "\n(c) Likely consequences");
    let _ = writeln!(
        t,
        "{}",
        or_todo(
            &i.effects,
            "the likely consequences for the people concerned",
            &mut missing,
            "consequences"
        )
    );
    let _ = writeln!(t, "\n(d) Measures taken or proposed");
    let _ = writeln!(
        t,
        "{}",
        or_todo(
            &i.remedial,
            "the measures taken or proposed, including to mitigate possible adverse effects",
            &mut missing,
            "measures"
        )
    );
    for s in &i.steps {
        let _ = writeln!(t, "  {} {}", format_time_ms(s.at_ms), s.what);
    }
    if now_ms > i.aware_at_ms + 72 * 3_600_000 {
        let _ = writeln!(t, "\nReasons for the delay (Art. 33(1))");
        let reasons = i.decision.as_ref().map_or("", |d| d.reasons.as_str());
        let _ = writeln!(
            t,
            "{}",
            or_todo(
                reasons,
                "why this notification is made after 72 hours",
                &mut missing,
                "delay"
            )
        );
    }
    AuthorityNotice { text: t, missing }
}

/// What one subject's notice says about them: the fields of theirs that were exposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The categories of their data.
    pub categories: BTreeSet<String>,
    /// The fields.
    pub fields: BTreeSet<String>,
}

/// A subject's notice in plain language: GDPR Art. 34(2) (what happened, the contact point,
/// the likely consequences, the measures), or for a California resident the headings of
/// Cal. Civ. Code § 1798.82(d)(1).
pub fn subject(
    c: &Controller,
    i: &Incident,
    x: &Exposure,
    variant: Variant,
    now_ms: i64,
) -> SubjectNotice {
    let happened = if i.facts.trim().is_empty() {
        i.title.trim()
    } else {
        i.facts.trim()
    };
    let consequences = if i.effects.trim().is_empty() {
        "We are still assessing what this may mean for you."
    } else {
        i.effects.trim()
    };
    let measures = if i.remedial.trim().is_empty() {
        "We stopped the access and are reviewing how it happened."
    } else {
        i.remedial.trim()
    };
    let involved = format!(
        "{} ({})",
        x.fields
            .iter()
            .map(|f| f.replace('_', " "))
            .collect::<Vec<_>>()
            .join(", "),
        x.categories.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    let mut t = String::new();
    match variant {
        Variant::Art34 => {
            let _ = writeln!(
                t,
                "We are writing to tell you about a security incident that affects some of your personal data held by {}.\n",
                c.name
            );
            let _ = writeln!(t, "What happened\n{happened}\n");
            let _ = writeln!(t, "Your data involved\n{involved}\n");
            let _ = writeln!(t, "What this may mean for you\n{consequences}\n");
            let _ = writeln!(t, "What we have done\n{measures}\n");
            let _ = writeln!(
                t,
                "What you can do\nBe wary of messages that ask for your details or payments and seem to come from us. You may ask us for a copy of your data, to correct it, or to erase it, and you may complain to the data protection authority.\n"
            );
            let _ = writeln!(t, "Contact\n{} ({})", c.name, c.contact);
            SubjectNotice {
                variant,
                subject: format!(
                    "Important: a security incident affecting your data at {}",
                    c.name
                ),
                text: t,
            }
        }
        Variant::California => {
            let _ = writeln!(t, "NOTICE OF DATA BREACH\n");
            let _ = writeln!(
                t,
                "What Happened\n{happened} We became aware of it on {}. This notice is dated {}.\n",
                &format_time_ms(i.aware_at_ms)[..10],
                &format_time_ms(now_ms)[..10]
            );
            let _ = writeln!(t, "What Information Was Involved\n{involved}\n");
            let _ = writeln!(t, "What We Are Doing\n{measures}\n");
            let _ = writeln!(
                t,
                "What You Can Do\nReview your accounts and be wary of messages asking for your information. {consequences}\n"
            );
            let _ = writeln!(
                t,
                "Other Important Information\nThis notice was not delayed by a law enforcement investigation.\n"
            );
            let _ = writeln!(t, "For More Information\n{} ({})", c.name, c.contact);
            SubjectNotice {
                variant,
                subject: format!("Notice of Data Breach from {}", c.name),
                text: t,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breach::incident::IncidentStatus;
    use crate::ids::IncidentId;

    fn incident() -> Incident {
        Incident {
            id: IncidentId::random(),
            title: "Support key leaked".into(),
            aware_at_ms: 1_774_690_200_000,
            opened_at_ms: 1_774_690_300_000,
            opened_by: "cli".into(),
            status: IncidentStatus::Open,
            facts: "A support API key was posted on a public forum.".into(),
            effects: String::new(),
            remedial: "The key was revoked.".into(),
            api_key: Some("support".into()),
            operator: None,
            from_ms: None,
            to_ms: None,
            alerts: Vec::new(),
            decision: None,
            steps: Vec::new(),
            notified: Vec::new(),
        }
    }

    fn controller() -> Controller {
        Controller {
            name: "Example Shop Ltd".into(),
            contact: "privacy@shop.example".into(),
        }
    }

    #[test]
    fn the_authority_draft_has_every_item_and_names_what_is_missing() {
        let mut r = BlastRadius::default();
        r.categories.insert("contact".into());
        r.records = 12;
        r.subjects = vec![crate::ids::SubjectId::random(); 3];
        let n = authority(
            &controller(),
            &incident(),
            &r,
            "2026-03-28T09:30:00+00:00",
            1_774_690_300_000,
        );
        for item in [
            "(a) Nature",
            "(b) Contact point",
            "(c) Likely consequences",
            "(d) Measures",
            "contact",
            "data subjects concerned: 3",
            "records: 12",
            "privacy@shop.example",
        ] {
            assert!(n.text.contains(item), "{item} in {}", n.text);
        }
        assert_eq!(n.missing, ["consequences"]);
        assert!(!n.text.contains("Reasons for the delay"));
        let late = authority(
            &controller(),
            &incident(),
            &r,
            "x",
            1_774_690_200_000 + 73 * 3_600_000,
        );
        assert!(late.text.contains("Reasons for the delay"));
        assert_eq!(late.missing, ["consequences", "delay"]);
    }

    #[test]
    fn a_californian_gets_the_statutory_headings() {
        let x = Exposure {
            categories: ["contact".to_string()].into(),
            fields: ["email".to_string(), "postal_address".to_string()].into(),
        };
        let n = subject(
            &controller(),
            &incident(),
            &x,
            Variant::California,
            1_774_690_300_000,
        );
        let at = |h: &str| {
            n.text
                .find(h)
                .unwrap_or_else(|| panic!("{h} in {}", n.text))
        };
        assert!(at("What Happened") < at("What Information Was Involved"));
        assert!(at("What Information Was Involved") < at("What We Are Doing"));
        assert!(at("What We Are Doing") < at("What You Can Do"));
        assert!(at("What You Can Do") < at("For More Information"));
        assert!(n.text.contains("email, postal address (contact)"));
        let g = subject(&controller(), &incident(), &x, Variant::Art34, 0);
        assert!(g.text.contains("What happened") && g.text.contains("privacy@shop.example"));
        assert!(g.text.contains("The key was revoked."));
    }
}
