//! The privacy notice, generated from the inventory so that it says exactly what the vault
//! does; its version is a digest of what it says. And the difference between two inventories,
//! told as what a customer must be asked again.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::inventory::{Inventory, LegalBasis, Retention};

/// The controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeController {
    /// Its name.
    pub name: String,
    /// How to reach it about personal data.
    pub contact: String,
}

/// A recipient of data for a purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeRecipient {
    /// Its legal name.
    pub name: String,
    /// Where it processes the data (ISO 3166-1 alpha-2).
    pub country: String,
}

/// One piece of data, as the notice lists it under a purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeItem {
    /// The collection.
    pub collection: String,
    /// The field.
    pub field: String,
    /// Its category.
    pub category: String,
}

/// A purpose, in the notice's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticePurpose {
    /// Its identifier.
    pub id: String,
    /// What it means.
    pub description: String,
    /// Its legal basis.
    pub legal_basis: LegalBasis,
    /// The basis, explained.
    pub legal_basis_explained: String,
    /// For consent: when consent is asked again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_lapses_after: Option<String>,
    /// The data used for it.
    pub data: Vec<NoticeItem>,
    /// Who receives data for it.
    pub recipients: Vec<NoticeRecipient>,
}

/// A field, as the notice lists it under its collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeField {
    /// The field.
    pub field: String,
    /// Its category.
    pub category: String,
    /// The purposes it is used for.
    pub purposes: Vec<String>,
    /// How long it is kept.
    pub retention: String,
}

/// A collection, as the notice lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeCollection {
    /// The collection.
    pub collection: String,
    /// How long a record is kept.
    pub retention: String,
    /// Its fields.
    pub fields: Vec<NoticeField>,
}

/// A right the customer has, and how to use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeRight {
    /// The right.
    pub right: String,
    /// Where the law gives it.
    pub article: String,
    /// What it means and how to use it.
    pub how: String,
}

/// The privacy notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// A digest of everything below: it changes when, and only when, the notice says
    /// something else.
    pub version: String,
    /// Who is responsible.
    pub controller: NoticeController,
    /// Why data is processed, on which basis, with which data, shared with whom.
    pub purposes: Vec<NoticePurpose>,
    /// What is collected, and how long it is kept.
    pub collections: Vec<NoticeCollection>,
    /// The customer's rights.
    pub rights: Vec<NoticeRight>,
}

fn explain(b: LegalBasis) -> &'static str {
    match b {
        LegalBasis::Consent => {
            "your consent (GDPR Art. 6(1)(a)): we do this only while you agree, and you can withdraw at any time, as easily as you gave it"
        }
        LegalBasis::Contract => {
            "our contract with you (GDPR Art. 6(1)(b)): we need it to do what you asked us to"
        }
        LegalBasis::LegalObligation => {
            "a legal obligation (GDPR Art. 6(1)(c)): the law requires it of us"
        }
        LegalBasis::VitalInterests => {
            "vital interests (GDPR Art. 6(1)(d)): to protect someone's life"
        }
        LegalBasis::PublicTask => {
            "a task in the public interest (GDPR Art. 6(1)(e)); you may object"
        }
        LegalBasis::LegitimateInterests => {
            "our legitimate interests (GDPR Art. 6(1)(f)), weighed against yours; you may object at any time"
        }
    }
}

fn retention_text(r: &Retention) -> String {
    match r {
        Retention::UntilConsentWithdrawn => "until you withdraw your consent".to_owned(),
        Retention::Period { .. } => r.to_string(),
    }
}

impl Notice {
    /// The notice the inventory implies.
    pub fn from_inventory(inv: &Inventory) -> Notice {
        let purposes =
            inv.purposes
                .iter()
                .map(|p| NoticePurpose {
                    id: p.id.clone(),
                    description: p.description.clone(),
                    legal_basis: p.legal_basis,
                    legal_basis_explained: explain(p.legal_basis).to_owned(),
                    consent_lapses_after: p.consent_lapses_after.map(|l| l.to_string()),
                    data: inv
                        .collections
                        .iter()
                        .flat_map(|(c, coll)| {
                            coll.fields.iter().filter(|(_, f)| f.serves(&p.id)).map(
                                move |(name, f)| NoticeItem {
                                    collection: c.clone(),
                                    field: name.clone(),
                                    category: f.category.clone(),
                                },
                            )
                        })
                        .collect(),
                    recipients: p
                        .recipients
                        .iter()
                        .filter_map(|r| inv.processors.iter().find(|x| x.id == *r))
                        .map(|x| NoticeRecipient {
                            name: x.name.clone(),
                            country: x.country.clone(),
                        })
                        .collect(),
                })
                .collect();
        let collections = inv
            .collections
            .iter()
            .map(|(c, coll)| NoticeCollection {
                collection: c.clone(),
                retention: retention_text(&coll.retention),
                fields: coll
                    .fields
                    .iter()
                    .map(|(name, f)| NoticeField {
                        field: name.clone(),
                        category: f.category.clone(),
                        purposes: f.purposes.clone(),
                        retention: retention_text(f.retention.as_ref().unwrap_or(&coll.retention)),
                    })
                    .collect(),
            })
            .collect();
        let contact = &inv.organization.contact;
        let mut rights = vec![
            (
                "access",
                "GDPR Art. 15",
                "receive a copy of all the personal data we hold about you, and learn what we do with it",
            ),
            (
                "rectification",
                "GDPR Art. 16",
                "have data about you that is wrong corrected",
            ),
            (
                "erasure",
                "GDPR Art. 17",
                "have data about you deleted when we no longer need it, or when you withdraw the consent it rests on",
            ),
            (
                "restriction",
                "GDPR Art. 18",
                "have us keep your data but stop using it, for instance while you contest its accuracy",
            ),
            (
                "portability",
                "GDPR Art. 20",
                "receive your data in a machine-readable form, to take elsewhere",
            ),
        ];
        if inv.purposes.iter().any(|p| {
            matches!(
                p.legal_basis,
                LegalBasis::LegitimateInterests | LegalBasis::PublicTask
            )
        }) {
            rights.push(("objection", "GDPR Art. 21", "object to processing based on our legitimate interests; we then stop unless we have compelling grounds"));
        }
        if inv
            .purposes
            .iter()
            .any(|p| p.legal_basis == LegalBasis::Consent)
        {
            rights.push(("withdraw consent", "GDPR Art. 7(3)", "withdraw any consent you gave, at any time, as easily as you gave it; what was done before stays lawful"));
        }
        rights.push(("complaint", "GDPR Art. 77", "complain to a data protection supervisory authority, such as the one where you live or work"));
        let rights = rights
            .into_iter()
            .map(|(right, article, what)| NoticeRight {
                right: right.to_owned(),
                article: article.to_owned(),
                how: if right == "complaint" {
                    format!("You have the right to {what}.")
                } else {
                    format!("You have the right to {what}. Write to {contact}; we answer within one month.")
                },
            })
            .collect();
        let mut notice = Notice {
            version: String::new(),
            controller: NoticeController {
                name: inv.organization.name.clone(),
                contact: contact.clone(),
            },
            purposes,
            collections,
            rights,
        };
        let digest = Sha256::digest(serde_json::to_vec(&notice).expect("a notice serialises"));
        notice.version = hex::encode(&digest[..8]);
        notice
    }
}

/// One difference between two inventories, and whether it needs fresh consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What changed, in words.
    pub what: String,
    /// Whether customers must be asked for consent again (or for the first time) before the
    /// change applies to them: no one's consent to it is assumed.
    pub fresh_consent: bool,
}

/// What changes from `old` to `new`, as a customer would be affected: consent-based purposes
/// added or widened need fresh consent; everything else changes the notice.
pub fn diff(old: &Inventory, new: &Inventory) -> Vec<Change> {
    let mut out = Vec::new();
    let mut change = |what: String, fresh_consent: bool| {
        out.push(Change {
            what,
            fresh_consent,
        })
    };
    let consent = |p: &crate::inventory::Purpose| p.legal_basis == LegalBasis::Consent;
    for p in &new.purposes {
        match old.purpose(&p.id) {
            None => change(
                format!("purpose {:?} is new, on {}", p.id, p.legal_basis.as_str()),
                consent(p),
            ),
            Some(o) => {
                if o.legal_basis != p.legal_basis {
                    change(
                        format!(
                            "purpose {:?} now rests on {} instead of {}",
                            p.id,
                            p.legal_basis.as_str(),
                            o.legal_basis.as_str()
                        ),
                        consent(p),
                    );
                }
                if o.description != p.description {
                    change(
                        format!("purpose {:?} is described differently", p.id),
                        consent(p),
                    );
                }
                for r in p.recipients.iter().filter(|r| !o.recipients.contains(r)) {
                    change(
                        format!("purpose {:?} now shares data with {r:?}", p.id),
                        consent(p),
                    );
                }
                for r in o.recipients.iter().filter(|r| !p.recipients.contains(r)) {
                    change(
                        format!("purpose {:?} no longer shares data with {r:?}", p.id),
                        false,
                    );
                }
            }
        }
    }
    for o in &old.purposes {
        if new.purpose(&o.id).is_none() {
            change(format!("purpose {:?} is gone", o.id), false);
        }
    }
    for (c, coll) in &new.collections {
        let old_coll = old.collection(c);
        for (name, f) in &coll.fields {
            let old_f = old_coll.and_then(|oc| oc.fields.get(name));
            for p in &f.purposes {
                if old_f.is_some_and(|of| of.serves(p)) {
                    continue;
                }
                let needs = new.purpose(p).is_some_and(consent);
                change(format!("{c}.{name} is now used for purpose {p:?}"), needs);
            }
            let (old_r, new_r) = (
                old_f.map(|of| {
                    of.retention
                        .or(old_coll.map(|oc| oc.retention))
                        .map(|r| r.to_string())
                }),
                f.retention.unwrap_or(coll.retention).to_string(),
            );
            if let Some(Some(old_r)) = old_r
                && old_r != new_r
            {
                change(
                    format!("{c}.{name} is kept {new_r} instead of {old_r}"),
                    false,
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::EXAMPLE;

    #[test]
    fn the_notice_names_every_purpose_recipient_and_retention_and_its_version_follows_its_words() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let n = Notice::from_inventory(&inv);
        assert_eq!(
            n.purposes.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            [
                "billing",
                "support",
                "marketing",
                "analytics",
                "advertising"
            ]
        );
        let billing = &n.purposes[0];
        assert_eq!(billing.recipients[0].name, "Example Payments Ltd");
        assert_eq!(billing.recipients[0].country, "IE");
        assert_eq!(n.purposes[2].consent_lapses_after.as_deref(), Some("13m"));
        let notes = n.collections[0]
            .fields
            .iter()
            .find(|f| f.field == "notes")
            .unwrap();
        assert_eq!(notes.retention, "2y after created");
        assert!(n.rights.iter().any(|r| r.right == "withdraw consent"));
        assert!(n.rights.iter().any(|r| r.right == "objection"));
        assert_eq!(n.version.len(), 16);
        assert_eq!(Notice::from_inventory(&inv).version, n.version, "stable");
        let changed = EXAMPLE.replace(
            "Send you our newsletter and offers",
            "Send you our newsletter",
        );
        let other = Notice::from_inventory(&Inventory::from_toml(&changed).unwrap());
        assert_ne!(
            other.version, n.version,
            "a different text, a different version"
        );
    }

    #[test]
    fn a_new_consent_purpose_or_a_wider_one_needs_fresh_consent() {
        let old = Inventory::from_toml(EXAMPLE).unwrap();
        assert!(diff(&old, &old).is_empty());
        let text = EXAMPLE
            .replacen(
                "[[processors]]",
                "[[purposes]]\nid = \"profiling\"\ndescription = \"Recommend products\"\nlegal_basis = \"consent\"\n\n[[purposes]]\nid = \"fraud\"\ndescription = \"Prevent fraud\"\nlegal_basis = \"legitimate_interests\"\n\n[[processors]]",
                1,
            )
            .replace(
                "category = \"demographic\"\npurposes = [\"analytics\"]",
                "category = \"demographic\"\npurposes = [\"analytics\", \"marketing\"]",
            )
            .replace("retention = \"2y\"", "retention = \"1y\"");
        let new = Inventory::from_toml(&text).unwrap();
        let changes = diff(&old, &new);
        let fresh: Vec<&str> = changes
            .iter()
            .filter(|c| c.fresh_consent)
            .map(|c| c.what.as_str())
            .collect();
        assert_eq!(
            fresh,
            [
                "purpose \"profiling\" is new, on consent",
                "customers.birth_date is now used for purpose \"marketing\""
            ]
        );
        let other: Vec<&str> = changes
            .iter()
            .filter(|c| !c.fresh_consent)
            .map(|c| c.what.as_str())
            .collect();
        assert_eq!(
            other,
            [
                "purpose \"fraud\" is new, on legitimate_interests",
                "customers.notes is kept 1y after created instead of 2y after created"
            ]
        );
    }
}
