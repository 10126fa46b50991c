//! The blast radius of a compromised caller or a time window: from the audit log's reads and
//! the inventory, which subjects' data was read, which records, fields and categories, per
//! collection. Canary records are counted apart: they are no one's data.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::audit::{Action, AuditEntry, Outcome};
use crate::ids::{RecordId, SubjectId};
use crate::inventory::Inventory;
use crate::rights::ProfileId;

/// Whether an entry is a read that returned personal data: a record read, a search hit, an
/// export or a customer's own view, that was allowed and names its subject.
pub fn is_read(e: &AuditEntry) -> bool {
    matches!(
        e.action,
        Action::RecordRead | Action::RecordSearch | Action::SubjectExport | Action::SubjectView
    ) && e.outcome == Outcome::Ok
        && e.subject_id.is_some()
}

/// Whether an entry exposed personal data to someone other than its subject: a read
/// ([`is_read`]) by anyone but a customer reading their own, in the portal.
pub fn is_exposure(e: &AuditEntry) -> bool {
    is_read(e) && !e.actor.starts_with("customer:")
}

/// What was exposed in one collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CollectionExposure {
    /// Subjects whose records of it were read.
    pub subjects: u64,
    /// Records of it read.
    pub records: u64,
    /// The fields returned.
    pub fields: BTreeSet<String>,
    /// Their categories, from the inventory.
    pub categories: BTreeSet<String>,
}

/// The blast radius.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlastRadius {
    /// Reads counted (entries).
    pub reads: u64,
    /// Distinct records read.
    pub records: u64,
    /// The subjects whose data was read, in id order.
    pub subjects: Vec<SubjectId>,
    /// Per collection.
    pub collections: BTreeMap<String, CollectionExposure>,
    /// Every category exposed.
    pub categories: BTreeSet<String>,
    /// Reads of canary records: not subjects' data, but proof of access.
    pub canary_reads: u64,
    /// The first and last read counted, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    /// The last read counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    /// Subjects per jurisdiction's profile (`gdpr`, `uk_gdpr`, `ccpa`), once the vault placed
    /// them.
    pub jurisdictions: BTreeMap<String, u64>,
    /// Each subject's exposed fields, as `(collection, field)`: what their notice names.
    #[serde(skip)]
    pub per_subject: BTreeMap<SubjectId, BTreeSet<(String, String)>>,
    /// Each subject's profile, once the vault placed them: which law's notice they get.
    #[serde(skip)]
    pub profiles: BTreeMap<SubjectId, ProfileId>,
}

/// Adds reads up into a [`BlastRadius`].
#[derive(Debug)]
pub struct Tally<'a> {
    inventory: &'a Inventory,
    out: BlastRadius,
    subjects: BTreeSet<SubjectId>,
    records: BTreeSet<RecordId>,
    per: BTreeMap<String, (BTreeSet<SubjectId>, BTreeSet<RecordId>)>,
}

impl<'a> Tally<'a> {
    /// An empty tally over `inventory`'s fields.
    pub fn new(inventory: &'a Inventory) -> Self {
        Tally {
            inventory,
            out: BlastRadius::default(),
            subjects: BTreeSet::new(),
            records: BTreeSet::new(),
            per: BTreeMap::new(),
        }
    }

    /// Counts one entry if it is an exposure ([`is_exposure`]); `canary` when its subject is a canary.
    pub fn add(&mut self, e: &AuditEntry, canary: bool) {
        let Some(subject) = e.subject_id.filter(|_| is_exposure(e)) else {
            return;
        };
        if canary {
            self.out.canary_reads += 1;
            return;
        }
        self.out.reads += 1;
        if self.out.first.is_none() {
            self.out.first = Some(e.time.clone());
        }
        self.out.last = Some(e.time.clone());
        self.subjects.insert(subject);
        if let Some(r) = e.record_id {
            self.records.insert(r);
        }
        for f in &e.fields {
            // An export names `collection.field`; a read names the field of its collection.
            let (collection, field) = match (e.collection.as_deref(), f.split_once('.')) {
                (Some(c), _) => (c.to_string(), f.clone()),
                (None, Some((c, f))) => (c.to_string(), f.to_string()),
                (None, None) => continue,
            };
            let category = self
                .inventory
                .collections
                .get(&collection)
                .and_then(|c| c.fields.get(&field))
                .map(|d| d.category.clone());
            self.out
                .per_subject
                .entry(subject)
                .or_default()
                .insert((collection.clone(), field.clone()));
            let x = self.out.collections.entry(collection.clone()).or_default();
            x.fields.insert(field);
            if let Some(cat) = category {
                x.categories.insert(cat.clone());
                self.out.categories.insert(cat);
            }
            let (s, r) = self.per.entry(collection).or_default();
            s.insert(subject);
            if let Some(id) = e.record_id {
                r.insert(id);
            }
        }
    }

    /// The blast radius counted.
    pub fn finish(mut self) -> BlastRadius {
        for (c, (s, r)) in self.per {
            if let Some(x) = self.out.collections.get_mut(&c) {
                x.subjects = s.len() as u64;
                x.records = r.len() as u64;
            }
        }
        self.out.records = self.records.len() as u64;
        self.out.subjects = self.subjects.into_iter().collect();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditEntry;

    fn read(actor: &str, subject: SubjectId, record: RecordId, fields: &[&str]) -> AuditEntry {
        let mut e = AuditEntry::new(actor, Action::RecordRead, Outcome::Ok);
        e.collection = Some("customers".into());
        e.subject_id = Some(subject);
        e.record_id = Some(record);
        e.fields = fields.iter().map(|f| f.to_string()).collect();
        e
    }

    #[test]
    fn reads_add_up_by_subject_record_field_and_category() {
        let inv = Inventory::from_toml(crate::inventory::EXAMPLE).unwrap();
        let (a, b) = (SubjectId::random(), SubjectId::random());
        let (ra, rb) = (RecordId::random(), RecordId::random());
        let mut t = Tally::new(&inv);
        t.add(&read("apikey:x", a, ra, &["email"]), false);
        t.add(&read("apikey:x", a, ra, &["email", "phone"]), false);
        t.add(&read("apikey:x", b, rb, &["name"]), false);
        let mut denied = read("apikey:x", b, rb, &[]);
        denied.outcome = Outcome::Denied;
        t.add(&denied, false);
        let mut write = read("apikey:x", b, rb, &["email"]);
        write.action = Action::RecordUpdate;
        t.add(&write, false);
        t.add(
            &read(
                "apikey:x",
                SubjectId::random(),
                RecordId::random(),
                &["email"],
            ),
            true,
        );
        let mut export = AuditEntry::new("cli", Action::SubjectExport, Outcome::Ok);
        export.subject_id = Some(b);
        export.fields = vec!["customers.address".into()];
        t.add(&export, false);
        let r = t.finish();
        assert_eq!(r.reads, 4);
        assert_eq!(r.records, 2);
        assert_eq!(r.canary_reads, 1);
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(r.subjects, want);
        let c = &r.collections["customers"];
        assert_eq!((c.subjects, c.records), (2, 2));
        assert_eq!(
            c.fields.iter().map(String::as_str).collect::<Vec<_>>(),
            ["address", "email", "name", "phone"]
        );
        assert!(r.categories.contains("contact"), "{:?}", r.categories);
    }
}
