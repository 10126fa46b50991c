//! Erasure (GDPR Art. 17, CCPA § 1798.105): what of a subject's data is erased and what the law
//! requires to keep. One rule, here: a record under a legal hold is kept whole (Art. 17(3)(e),
//! the establishment, exercise or defence of legal claims); of any other record, the fields
//! declared for a `legal_obligation` purpose are kept (Art. 17(3)(b)) and the rest erased; a
//! record left with nothing is erased whole. The subject's data key is destroyed when nothing
//! is kept, and otherwise survives for the kept records alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{RecordId, SubjectId};
use crate::inventory::{Inventory, LegalBasis};

/// Why a record outlives its subject's erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum KeptBecause {
    /// A legal hold stands on it.
    LegalHold,
    /// Some of its fields serve a purpose whose basis is a legal obligation.
    LegalObligation {
        /// The purposes.
        purposes: Vec<String>,
    },
}

/// A record kept, and why. Names only: never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// The record.
    pub record_id: RecordId,
    /// Its collection.
    pub collection: String,
    /// The fields kept.
    pub fields: Vec<String>,
    /// Why.
    #[serde(flatten)]
    pub because: KeptBecause,
}

/// What one erasure did: the audit entry of the erasure carries it, and the certificate
/// repeats it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureSummary {
    /// The subject.
    pub subject_id: SubjectId,
    /// Records erased whole, per collection.
    pub records_erased: BTreeMap<String, u64>,
    /// Fields erased from records that are kept, as `collection.field` with a count.
    pub fields_erased: BTreeMap<String, u64>,
    /// What was kept, and why.
    pub kept: Vec<Kept>,
    /// Whether the subject's data key was destroyed (nothing kept).
    pub key_destroyed: bool,
}

/// One of the subject's records, as the plan needs it: names, never values.
#[derive(Debug, Clone)]
pub struct Held<'a> {
    /// The record.
    pub id: RecordId,
    /// Its collection.
    pub collection: &'a str,
    /// The fields it holds.
    pub fields: Vec<&'a str>,
    /// Whether a legal hold stands on it.
    pub on_hold: bool,
}

/// What to do with one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Delete it with its index entries.
    Erase,
    /// Keep it whole.
    Keep,
    /// Keep only these fields; remove the others and their index entries.
    Trim(Vec<String>),
}

/// Decides the fate of each record and the summary of the whole erasure.
pub fn plan(
    inventory: &Inventory,
    subject: SubjectId,
    records: &[Held<'_>],
) -> (Vec<(RecordId, Fate)>, ErasureSummary) {
    let mut summary = ErasureSummary {
        subject_id: subject,
        records_erased: BTreeMap::new(),
        fields_erased: BTreeMap::new(),
        kept: Vec::new(),
        key_destroyed: false,
    };
    let mut fates = Vec::with_capacity(records.len());
    for r in records {
        if r.on_hold {
            summary.kept.push(Kept {
                record_id: r.id,
                collection: r.collection.to_owned(),
                fields: r.fields.iter().map(|f| (*f).to_owned()).collect(),
                because: KeptBecause::LegalHold,
            });
            fates.push((r.id, Fate::Keep));
            continue;
        }
        let mut keep = Vec::new();
        let mut purposes: Vec<String> = Vec::new();
        for field in &r.fields {
            let obligations = obligations_of(inventory, r.collection, field);
            if !obligations.is_empty() {
                keep.push((*field).to_owned());
                purposes.extend(obligations);
            }
        }
        if keep.is_empty() {
            *summary
                .records_erased
                .entry(r.collection.to_owned())
                .or_default() += 1;
            fates.push((r.id, Fate::Erase));
            continue;
        }
        for field in r.fields.iter().filter(|f| !keep.iter().any(|k| k == *f)) {
            *summary
                .fields_erased
                .entry(format!("{}.{field}", r.collection))
                .or_default() += 1;
        }
        purposes.sort();
        purposes.dedup();
        summary.kept.push(Kept {
            record_id: r.id,
            collection: r.collection.to_owned(),
            fields: keep.clone(),
            because: KeptBecause::LegalObligation { purposes },
        });
        let fate = if keep.len() == r.fields.len() {
            Fate::Keep
        } else {
            Fate::Trim(keep)
        };
        fates.push((r.id, fate));
    }
    summary.key_destroyed = summary.kept.is_empty();
    (fates, summary)
}

/// The `legal_obligation` purposes a field of a collection serves.
fn obligations_of(inventory: &Inventory, collection: &str, field: &str) -> Vec<String> {
    let Some(decl) = inventory
        .collection(collection)
        .and_then(|c| c.fields.get(field))
    else {
        return Vec::new();
    };
    decl.purposes
        .iter()
        .filter(|p| {
            inventory
                .purpose(p)
                .is_some_and(|p| p.legal_basis == LegalBasis::LegalObligation)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::EXAMPLE;

    /// The example with a `tax_records` purpose (a legal obligation) that the customers'
    /// name and address serve.
    fn inventory() -> Inventory {
        let text = EXAMPLE.replacen(
            "[[purposes]]",
            "[[purposes]]\nid = \"tax_records\"\ndescription = \"Keep invoices as tax law requires\"\nlegal_basis = \"legal_obligation\"\n\n[[purposes]]",
            1,
        );
        let mut inv = Inventory::from_toml(&text).unwrap();
        let fields = &mut inv.collections.get_mut("customers").unwrap().fields;
        for f in ["name", "address"] {
            fields
                .get_mut(f)
                .unwrap()
                .purposes
                .push("tax_records".into());
        }
        inv
    }

    fn held(collection: &str, fields: &[&'static str], on_hold: bool) -> Held<'static> {
        Held {
            id: RecordId::random(),
            collection: Box::leak(collection.to_owned().into_boxed_str()),
            fields: fields.to_vec(),
            on_hold,
        }
    }

    #[test]
    fn nothing_owed_means_everything_goes_with_the_key() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let s = SubjectId::random();
        let rs = [
            held("customers", &["name", "email"], false),
            held("customers", &["email"], false),
        ];
        let (fates, summary) = plan(&inv, s, &rs);
        assert!(fates.iter().all(|(_, f)| *f == Fate::Erase));
        assert_eq!(summary.records_erased["customers"], 2);
        assert!(summary.fields_erased.is_empty() && summary.kept.is_empty());
        assert!(summary.key_destroyed);
    }

    #[test]
    fn a_hold_keeps_a_record_whole_and_the_key_with_it() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let rs = [
            held("customers", &["name", "email"], true),
            held("customers", &["email"], false),
        ];
        let (fates, summary) = plan(&inv, SubjectId::random(), &rs);
        assert_eq!(fates[0].1, Fate::Keep);
        assert_eq!(fates[1].1, Fate::Erase);
        assert_eq!(summary.kept.len(), 1);
        assert_eq!(summary.kept[0].because, KeptBecause::LegalHold);
        assert_eq!(summary.kept[0].fields, ["name", "email"]);
        assert!(!summary.key_destroyed);
    }

    #[test]
    fn a_legal_obligation_keeps_only_its_fields() {
        let inv = inventory();
        let rs = [
            held("customers", &["address", "email", "name", "phone"], false),
            held("customers", &["email"], false),
        ];
        let (fates, summary) = plan(&inv, SubjectId::random(), &rs);
        assert_eq!(
            fates[0].1,
            Fate::Trim(vec!["address".into(), "name".into()])
        );
        assert_eq!(fates[1].1, Fate::Erase);
        assert_eq!(
            summary.kept[0].because,
            KeptBecause::LegalObligation {
                purposes: vec!["tax_records".into()]
            }
        );
        assert_eq!(summary.fields_erased["customers.email"], 1);
        assert_eq!(summary.fields_erased["customers.phone"], 1);
        assert_eq!(summary.records_erased["customers"], 1);
        assert!(!summary.key_destroyed);
        // The summary is names and counts: it serialises with no room for a value.
        let text = serde_json::to_string(&summary).unwrap();
        assert!(text.contains("\"reason\":\"legal_obligation\""), "{text}");
    }
}
