//! The record of processing activities (GDPR Art. 30(1)), generated from the inventory: one
//! activity per declared purpose, with (a) the controller and its contact, (b) the purpose,
//! (c) the categories of subjects and of personal data, (d) the recipients and their
//! countries, (e) transfers outside the EEA and whether an adequacy decision covers them,
//! (f) the time limits for erasure, and (g) the security measures, described from what
//! Custos itself applies under this configuration rather than typed by hand.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::inventory::{Inventory, LegalBasis};

/// The EEA: the EU's 27 members, Iceland, Liechtenstein and Norway. A recipient elsewhere
/// receives a transfer under GDPR Chapter V.
pub const EEA: [&str; 30] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "IS", "LI", "NO",
];

/// Countries with an adequacy decision of the European Commission (GDPR Art. 45), as the
/// Commission listed them in 2025, each with what it covers where it does not cover all.
pub const ADEQUACY: [(&str, &str); 15] = [
    ("AD", "adequacy decision"),
    ("AR", "adequacy decision"),
    (
        "CA",
        "adequacy decision (commercial organisations under PIPEDA)",
    ),
    ("CH", "adequacy decision"),
    ("FO", "adequacy decision"),
    ("GB", "adequacy decision"),
    ("GG", "adequacy decision"),
    ("IL", "adequacy decision"),
    ("IM", "adequacy decision"),
    ("JE", "adequacy decision"),
    ("JP", "adequacy decision"),
    ("KR", "adequacy decision"),
    ("NZ", "adequacy decision"),
    (
        "US",
        "adequacy decision for organisations certified under the EU-US Data Privacy Framework only",
    ),
    ("UY", "adequacy decision"),
];

/// What Custos applies under this configuration, for Art. 30(1)(g).
#[derive(Debug, Clone, Default)]
pub struct Measures {
    /// Served over TLS by Custos itself (`[tls]`), and the oldest version it accepts.
    pub tls: Option<String>,
    /// Where the data is kept: "SQLite" or "PostgreSQL".
    pub database: String,
}

/// The record.
#[derive(Debug, Clone, Serialize)]
pub struct Ropa {
    /// (a) The controller.
    pub controller: String,
    /// (a) Its contact for data protection.
    pub contact: String,
    /// One activity per declared purpose.
    pub activities: Vec<Activity>,
    /// (g) The technical and organisational security measures.
    pub security_measures: Vec<String>,
}

/// One processing activity: a purpose.
#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    /// (b) The purpose's id.
    pub purpose: String,
    /// (b) The purpose, as the privacy notice says it.
    pub description: String,
    /// Its legal basis (Art. 6(1)).
    pub legal_basis: LegalBasis,
    /// Whether it is a sale or sharing of personal information (CCPA).
    pub sale_or_sharing: bool,
    /// (c) The categories of data subjects: the collections holding data for it.
    pub subjects: Vec<String>,
    /// (c) The categories of personal data, each with its fields.
    pub data: Vec<DataCategory>,
    /// (d) The recipients.
    pub recipients: Vec<Recipient>,
    /// (e) The transfers outside the EEA.
    pub transfers: Vec<Transfer>,
    /// (f) The time limits for erasure, per collection (and per field where it differs).
    pub erasure: Vec<String>,
}

/// A category of personal data and the fields that hold it.
#[derive(Debug, Clone, Serialize)]
pub struct DataCategory {
    /// The category.
    pub category: String,
    /// The fields, as `collection.field`.
    pub fields: Vec<String>,
}

/// A recipient of personal data.
#[derive(Debug, Clone, Serialize)]
pub struct Recipient {
    /// Its legal name.
    pub name: String,
    /// Where it processes the data (ISO 3166-1 alpha-2).
    pub country: String,
}

/// A transfer to a recipient outside the EEA.
#[derive(Debug, Clone, Serialize)]
pub struct Transfer {
    /// The recipient.
    pub recipient: String,
    /// Its country.
    pub country: String,
    /// The adequacy decision covering it, or what the controller must document instead.
    pub safeguard: String,
}

fn measures_of(m: &Measures) -> Vec<String> {
    let mut out = vec![
        "Every personal field encrypted with AES-256-GCM under a data key of its own subject, \
         bound to its record and field; data keys wrapped by a root key kept outside the \
         database (mode 0600)"
            .to_owned(),
        "Exact lookups through keyed blind indexes (HMAC-SHA256) only: no value is stored in \
         clear"
            .to_owned(),
        "Each read allowed only for a declared purpose, to a role allowed it, with consent or \
         another legal basis holding, decided field by field"
            .to_owned(),
        "Every write and read recorded in an append-only audit log (an RFC 6962 Merkle tree \
         with Ed25519-signed heads), verifiable by anyone holding its public key"
            .to_owned(),
        "Retention applied automatically by the inventory's time limits, legal holds \
         excepted; erasure by deleting the subject's key (crypto-shredding), with a signed \
         certificate"
            .to_owned(),
        "Staff accounts with passwords hashed by Argon2id and a mandatory second factor \
         (TOTP), roles limiting what each may see and do, sessions ending after 30 minutes \
         idle"
            .to_owned(),
    ];
    out.push(match &m.tls {
        Some(v) => format!("Served over TLS {v} or later, with HSTS"),
        None => "Served over plain HTTP by Custos: TLS must be provided in front of it (a \
                 proxy) for any traffic leaving the machine"
            .to_owned(),
    });
    out.push(format!("Data kept in {}", m.database));
    out
}

fn safeguard(country: &str) -> String {
    ADEQUACY
        .iter()
        .find(|(c, _)| *c == country)
        .map(|(_, what)| (*what).to_owned())
        .unwrap_or_else(|| {
            "no adequacy decision: the controller must document the safeguard (Art. 46: \
             standard contractual clauses, binding corporate rules) or the derogation (Art. 49)"
                .to_owned()
        })
}

/// The record of processing activities of `inventory` under `measures`.
pub fn build(inventory: &Inventory, measures: &Measures) -> Ropa {
    let activities = inventory
        .purposes
        .iter()
        .map(|p| {
            let mut subjects = BTreeSet::new();
            let mut data: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut erasure = Vec::new();
            for (cname, c) in &inventory.collections {
                let mut held = false;
                for (fname, f) in &c.fields {
                    if f.purposes.contains(&p.id) {
                        held = true;
                        data.entry(f.category.clone())
                            .or_default()
                            .push(format!("{cname}.{fname}"));
                        if let Some(r) = &f.retention {
                            erasure.push(format!("{cname}.{fname}: {r}"));
                        }
                    }
                }
                if held {
                    subjects.insert(cname.clone());
                    erasure.insert(0, format!("{cname}: {}", c.retention));
                }
            }
            let recipients: Vec<Recipient> = p
                .recipients
                .iter()
                .filter_map(|id| inventory.processors.iter().find(|r| &r.id == id))
                .map(|r| Recipient {
                    name: r.name.clone(),
                    country: r.country.clone(),
                })
                .collect();
            let transfers = recipients
                .iter()
                .filter(|r| !EEA.contains(&r.country.as_str()))
                .map(|r| Transfer {
                    recipient: r.name.clone(),
                    country: r.country.clone(),
                    safeguard: safeguard(&r.country),
                })
                .collect();
            Activity {
                purpose: p.id.clone(),
                description: p.description.clone(),
                legal_basis: p.legal_basis,
                sale_or_sharing: p.sale_or_sharing,
                subjects: subjects.into_iter().collect(),
                data: data
                    .into_iter()
                    .map(|(category, fields)| DataCategory { category, fields })
                    .collect(),
                recipients,
                transfers,
                erasure,
            }
        })
        .collect();
    Ropa {
        controller: inventory.organization.name.clone(),
        contact: inventory.organization.contact.clone(),
        activities,
        security_measures: measures_of(measures),
    }
}

impl Ropa {
    /// The record as CSV: one row per activity and category of data, RFC 4180 quoting.
    pub fn to_csv(&self) -> String {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let mut out = String::from(
            "controller,contact,purpose,description,legal_basis,subjects,data_category,fields,\
             recipients,transfers,erasure\r\n",
        );
        for a in &self.activities {
            let recipients: Vec<String> = a
                .recipients
                .iter()
                .map(|r| format!("{} ({})", r.name, r.country))
                .collect();
            let transfers: Vec<String> = a
                .transfers
                .iter()
                .map(|t| format!("{} ({}): {}", t.recipient, t.country, t.safeguard))
                .collect();
            let categories: Vec<(&str, String)> = if a.data.is_empty() {
                vec![("", String::new())]
            } else {
                a.data
                    .iter()
                    .map(|d| (d.category.as_str(), d.fields.join("; ")))
                    .collect()
            };
            for (category, fields) in categories {
                let row = [
                    q(&self.controller),
                    q(&self.contact),
                    q(&a.purpose),
                    q(&a.description),
                    q(a.legal_basis.as_str()),
                    q(&a.subjects.join("; ")),
                    q(category),
                    q(&fields),
                    q(&recipients.join("; ")),
                    q(&transfers.join("; ")),
                    q(&a.erasure.join("; ")),
                ];
                out.push_str(&row.join(","));
                out.push_str("\r\n");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::EXAMPLE;

    #[test]
    fn every_purpose_recipient_and_retention_of_the_example_appears() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let r = build(
            &inv,
            &Measures {
                tls: None,
                database: "SQLite".into(),
            },
        );
        assert_eq!(r.activities.len(), inv.purposes.len());
        for p in &inv.purposes {
            let a = r.activities.iter().find(|a| a.purpose == p.id).unwrap();
            assert_eq!(a.recipients.len(), p.recipients.len(), "{}", p.id);
            assert!(!a.erasure.is_empty() || a.data.is_empty(), "{}", p.id);
        }
        let csv = r.to_csv();
        for p in &inv.processors {
            assert!(csv.contains(&p.name), "{}", p.name);
        }
        for c in inv.collections.values() {
            assert!(csv.contains(&c.retention.to_string()));
        }
        assert!(r.security_measures.iter().any(|m| m.contains("plain HTTP")));
        let tls = build(
            &inv,
            &Measures {
                tls: Some("1.3".into()),
                database: "PostgreSQL".into(),
            },
        );
        assert!(
            tls.security_measures
                .iter()
                .any(|m| m == "Served over TLS 1.3 or later, with HSTS")
        );
    }

    /// The example inventory's record, as JSON, against the snapshot checked in beside the
    /// tests; `CUSTOS_UPDATE_SNAPSHOTS=1` rewrites it after a deliberate change (review the
    /// diff).
    #[test]
    fn the_example_inventorys_record_is_its_snapshot() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let r = build(
            &inv,
            &Measures {
                tls: None,
                database: "SQLite".into(),
            },
        );
        let got = serde_json::to_string_pretty(&r).unwrap() + "\n";
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/snapshots/ropa-example.json"
        );
        if std::env::var_os("CUSTOS_UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(file, &got).unwrap();
        }
        let want = std::fs::read_to_string(file).expect("the snapshot file");
        assert_eq!(
            got, want,
            "the record changed: review, then CUSTOS_UPDATE_SNAPSHOTS=1"
        );
    }

    #[test]
    fn a_recipient_outside_the_eea_is_a_transfer_with_its_safeguard() {
        assert!(safeguard("JP").starts_with("adequacy decision"));
        assert!(safeguard("US").contains("Data Privacy Framework"));
        assert!(safeguard("IN").starts_with("no adequacy decision"));
        assert!(EEA.contains(&"NO") && !EEA.contains(&"CH"));
    }
}
