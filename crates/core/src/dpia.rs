//! A data protection impact assessment worksheet (GDPR Art. 35) for one purpose, prefilled
//! from the inventory and the record of processing activities: what is processed, for whom,
//! for how long, who may use it and the measures Custos applies; then the questions a person
//! must still answer (necessity and proportionality, the risks, the measures against them,
//! and the screening criteria that make an assessment mandatory).

use std::fmt::Write;

use serde::Serialize;

use crate::inventory::Inventory;
use crate::ropa::{Activity, Ropa};

/// One field the purpose uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DpiaField {
    /// `collection.field`.
    pub field: String,
    /// Its type.
    pub kind: String,
    /// Its category.
    pub category: String,
    /// Whether a blind index allows exact lookup.
    pub searchable: bool,
    /// How long it is kept.
    pub retention: String,
}

/// A question a person must answer, with why it is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Question {
    /// Where it comes from.
    pub basis: &'static str,
    /// The question.
    pub question: &'static str,
}

/// The worksheet.
#[derive(Debug, Clone, Serialize)]
pub struct Dpia {
    /// The controller.
    pub controller: String,
    /// The purpose's record of processing (Art. 30), as generated.
    pub activity: Activity,
    /// The fields processed for it.
    pub fields: Vec<DpiaField>,
    /// The roles that may read for it.
    pub roles: Vec<String>,
    /// The security measures Custos applies.
    pub measures: Vec<String>,
    /// What a person must still answer.
    pub questions: Vec<Question>,
}

/// What every worksheet asks.
pub const QUESTIONS: &[Question] = &[
    Question {
        basis: "Art. 35(7)(b)",
        question: "Is each field necessary for this purpose, and could the purpose be met with less data, or with data kept for less time?",
    },
    Question {
        basis: "Art. 35(7)(b)",
        question: "Is the legal basis the right one, and how are people told (the privacy notice is generated from the inventory: is it accurate)?",
    },
    Question {
        basis: "Art. 35(7)(c)",
        question: "What could harm the people concerned (loss of confidentiality, discrimination, financial loss, distress), how likely is it, and how severe?",
    },
    Question {
        basis: "Art. 35(7)(d)",
        question: "Which measures, besides those Custos applies, address each risk (access reviews, contracts with recipients, staff training)?",
    },
    Question {
        basis: "Art. 35(3)(a)",
        question: "Is there systematic and extensive evaluation of people, including profiling, with decisions that have legal or similarly significant effects?",
    },
    Question {
        basis: "Art. 35(3)(b)",
        question: "Are special categories of data (Art. 9) or data on criminal convictions (Art. 10) processed on a large scale?",
    },
    Question {
        basis: "Art. 35(3)(c)",
        question: "Is a publicly accessible area monitored systematically on a large scale?",
    },
    Question {
        basis: "EDPB WP248",
        question: "Are the people vulnerable (children, employees, patients), is the technology new, or are datasets matched or combined?",
    },
    Question {
        basis: "Art. 36(1)",
        question: "Does a high risk remain after the measures? Then the supervisory authority must be consulted before processing.",
    },
    Question {
        basis: "Art. 35(2)",
        question: "What did the data protection officer advise, and who approved this assessment, when?",
    },
];

/// The worksheet for `purpose`, or `None` when the inventory declares no such purpose.
pub fn worksheet(inv: &Inventory, ropa: &Ropa, purpose: &str) -> Option<Dpia> {
    let activity = ropa
        .activities
        .iter()
        .find(|a| a.purpose == purpose)?
        .clone();
    let mut fields = Vec::new();
    for (cname, c) in &inv.collections {
        for (fname, f) in &c.fields {
            if f.serves(purpose) {
                fields.push(DpiaField {
                    field: format!("{cname}.{fname}"),
                    kind: format!("{:?}", f.ty).to_lowercase(),
                    category: f.category.clone(),
                    searchable: f.searchable,
                    retention: f.retention.unwrap_or(c.retention).to_string(),
                });
            }
        }
    }
    let mut roles: Vec<String> = inv
        .roles
        .iter()
        .filter(|r| r.purposes.iter().any(|p| p == purpose))
        .map(|r| r.id.clone())
        .collect();
    roles.insert(0, "admin".into());
    Some(Dpia {
        controller: ropa.controller.clone(),
        activity,
        fields,
        roles,
        measures: ropa.security_measures.clone(),
        questions: QUESTIONS.to_vec(),
    })
}

impl Dpia {
    /// The worksheet as Markdown, with a space under each question for the answer.
    pub fn to_markdown(&self) -> String {
        let a = &self.activity;
        let mut t = String::new();
        let _ = writeln!(t, "# Data protection impact assessment: {}\n", a.purpose);
        let _ = writeln!(
            t,
            "Controller: {}. Prefilled by Custos from the inventory; the questions at the end are for a person to answer.\n",
            self.controller
        );
        let _ = writeln!(t, "## The processing (Art. 35(7)(a))\n");
        let _ = writeln!(t, "- Purpose: {} ({})", a.description, a.purpose);
        let _ = writeln!(t, "- Legal basis: {:?}", a.legal_basis);
        let _ = writeln!(
            t,
            "- Sale or sharing (CCPA): {}",
            if a.sale_or_sharing { "yes" } else { "no" }
        );
        let _ = writeln!(t, "- People concerned: {}", a.subjects.join(", "));
        let _ = writeln!(
            t,
            "- Roles that may read for it: {}\n",
            self.roles.join(", ")
        );
        let _ = writeln!(
            t,
            "| field | type | category | searchable | kept |\n|---|---|---|---|---|"
        );
        for f in &self.fields {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} |",
                f.field,
                f.kind,
                f.category,
                if f.searchable { "yes" } else { "no" },
                f.retention
            );
        }
        let _ = writeln!(t, "\n## Recipients and transfers\n");
        if a.recipients.is_empty() {
            let _ = writeln!(t, "- No recipients declared.");
        }
        for r in &a.recipients {
            let _ = writeln!(t, "- {} ({})", r.name, r.country);
        }
        for x in &a.transfers {
            let _ = writeln!(
                t,
                "- Transfer to {} ({}): {}",
                x.recipient, x.country, x.safeguard
            );
        }
        let _ = writeln!(t, "\n## Erasure\n");
        for e in &a.erasure {
            let _ = writeln!(t, "- {e}");
        }
        let _ = writeln!(t, "\n## Measures Custos applies (Art. 32)\n");
        for m in &self.measures {
            let _ = writeln!(t, "- {m}");
        }
        let _ = writeln!(t, "\n## To be answered\n");
        for (i, q) in self.questions.iter().enumerate() {
            let _ = writeln!(t, "{}. {} ({})\n\n   Answer:\n", i + 1, q.question, q.basis);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::EXAMPLE;
    use crate::ropa::{Measures, build};

    #[test]
    fn a_worksheet_is_prefilled_for_each_purpose_and_asks_what_only_a_person_can_say() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let ropa = build(
            &inv,
            &Measures {
                tls: Some("1.3".into()),
                database: "SQLite".into(),
            },
        );
        for p in &inv.purposes {
            let d = worksheet(&inv, &ropa, &p.id).unwrap();
            assert!(!d.fields.is_empty(), "{}", p.id);
            assert!(d.fields.iter().all(|f| {
                inv.collections[f.field.split('.').next().unwrap()].fields
                    [f.field.split('.').nth(1).unwrap()]
                .serves(&p.id)
            }));
            let md = d.to_markdown();
            assert!(
                md.contains("Art. 35(7)(c)") && md.contains("Answer:"),
                "{md}"
            );
        }
        let billing = worksheet(&inv, &ropa, "billing").unwrap();
        assert!(
            billing
                .fields
                .iter()
                .any(|f| f.field == "customers.address")
        );
        assert!(!billing.fields.iter().any(|f| f.field == "customers.notes"));
        assert!(billing.roles.contains(&"billing_service".to_string()));
        assert!(!billing.measures.is_empty());
        assert!(worksheet(&inv, &ropa, "astrology").is_none());
    }
}
