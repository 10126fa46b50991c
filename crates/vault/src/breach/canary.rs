//! Canary records: synthetic customers whose only reader is an intruder. Planted like any
//! record (validated, encrypted, indexed), but marked first, so none is ever a record not
//! known as a canary; the detector raises an alert when one is read, found or exported, and
//! a write or search carrying one of their values raises one too.

use std::collections::BTreeMap;

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::crypto::{DataKey, WrapContext, random_bytes};
use custos_core::fields::{self, Mode};
use custos_core::ids::{RecordId, SubjectId};
use custos_core::inventory::FieldType;
use custos_core::personal::{PersonalFields, PersonalValue};
use custos_core::principal::{Act, Principal};
use custos_store::{CanaryRow, NewRecord, NewSubject, QueuedAudit, RecordRow, StoreError};
use serde_json::{Value, json};

use crate::error::KEY_ATTEMPTS;
use crate::{Vault, VaultError};

/// The most canaries planted at once.
pub const MAX_PLANT: usize = 1000;

const FIRST: [&str; 12] = [
    "Imogen", "Tobias", "Marta", "Idris", "Freya", "Callum", "Anika", "Rohan", "Elspeth", "Mateo",
    "Ines", "Oskar",
];
const LAST: [&str; 12] = [
    "Ashdown",
    "Brennan",
    "Castell",
    "Dunmore",
    "Everly",
    "Fairbairn",
    "Garrow",
    "Hollis",
    "Ingram",
    "Jessop",
    "Kinross",
    "Lockhart",
];
/// Area codes with an Ofcom drama range `496 0xxx`.
const DRAMA_AREAS: [&str; 10] = [
    "113", "114", "116", "117", "118", "121", "131", "141", "151", "161",
];
const STREETS: [&str; 6] = [
    "Alder Road",
    "Beech Grove",
    "Chapel Lane",
    "Dock Street",
    "Elm Terrace",
    "Ferry Walk",
];

/// A planted canary, as `custos canary plant` prints it for drills.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlantedCanary {
    /// The record.
    pub record_id: RecordId,
    /// Its synthetic subject.
    pub subject_id: SubjectId,
    /// Its collection.
    pub collection: String,
}

/// Random numbers for the values.
struct Dice(Vec<u8>, usize);

impl Dice {
    fn new() -> Result<Dice, VaultError> {
        Ok(Dice(random_bytes(256)?, 0))
    }

    fn next(&mut self, below: u64) -> u64 {
        if self.1 + 8 > self.0.len() {
            self.0 = random_bytes(256).unwrap_or_else(|_| vec![7; 256]);
            self.1 = 0;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[self.1..self.1 + 8]);
        self.1 += 8;
        u64::from_le_bytes(b) % below.max(1)
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.next(xs.len() as u64) as usize]
    }
}

/// A plausible, unique value for every declared field of a canary.
fn synthetic(
    fields: &BTreeMap<String, custos_core::inventory::FieldDecl>,
    domain: &str,
    d: &mut Dice,
) -> PersonalFields {
    let (first, last) = (d.pick(&FIRST), d.pick(&LAST));
    let tag = d.next(1_000_000);
    let mut out = PersonalFields::new();
    for (name, decl) in fields {
        let v: Value = match decl.ty {
            FieldType::Email => json!(format!(
                "{}.{}{tag:06}@{domain}",
                first.to_lowercase(),
                last.to_lowercase()
            )),
            // Ofcom's ranges for drama (0113 496 0000 to 0999 in Leeds, and the same in
            // other cities): never a real line.
            FieldType::Phone => json!(format!(
                "+44 {} 496 0{:03}",
                d.pick(&DRAMA_AREAS),
                d.next(1000)
            )),
            FieldType::Date => json!(format!(
                "{:04}-{:02}-{:02}",
                1955 + d.next(50),
                1 + d.next(12),
                1 + d.next(28)
            )),
            FieldType::Country => json!("GB"),
            FieldType::PostalAddress => json!({
                "lines": [format!("{} {}", 1 + d.next(180), d.pick(&STREETS))],
                "locality": "Lancaster",
                "postal_code": format!("LA1 {}AB", 1 + d.next(9)),
                "country": "GB"
            }),
            FieldType::Number => json!(d.next(1000)),
            FieldType::Bool => json!(d.next(2) == 1),
            FieldType::Text => {
                let s = format!("{first} {last}");
                if s.chars().count() > decl.max_length {
                    continue;
                }
                json!(s)
            }
        };
        out.insert(name.clone(), PersonalValue::new(v));
    }
    out
}

impl Vault {
    /// Plants `n` canaries in `collection`: synthetic subjects with a plausible, unique value
    /// in every declared field, marked as canaries before they are written. Audited as one
    /// `canary.plant` entry (which names how many, not which). Their ids are returned for
    /// drills; keep them out of the application's own data.
    ///
    /// # Errors
    /// `Forbidden` without `handle_incidents`; `Invalid` for an unknown collection or `n`
    /// outside 1..=1000.
    pub async fn plant_canaries(
        &self,
        p: &Principal,
        collection: &str,
        n: usize,
    ) -> Result<Vec<PlantedCanary>, VaultError> {
        self.authorize(p, &Act::HandleIncidents)?;
        let coll = self.collection(collection)?;
        if n == 0 || n > MAX_PLANT {
            return Err(VaultError::invalid(
                "n",
                "canary_count",
                "plant 1 to 1000 canaries at a time",
            ));
        }
        let now = self.now_ms();
        let mut dice = Dice::new()?;
        let domain = self.inventory.breach.canary_domain.clone();
        let mut planned = Vec::with_capacity(n);
        let mut tries = 0;
        while planned.len() < n {
            let body = synthetic(&coll.fields, &domain, &mut dice);
            let values = fields::validate_record(coll, &body, Mode::Create, self.context())?;
            // A canary shares no searchable value with a record: a search for a real
            // customer never finds one.
            if self.collides(collection, coll, &values).await? {
                tries += 1;
                if tries > 20 * n {
                    return Err(VaultError::invalid(
                        "n",
                        "canary_unique",
                        "no canary could be made whose searchable values no record holds: plant fewer",
                    ));
                }
                continue;
            }
            planned.push((RecordId::random(), SubjectId::random(), values));
        }
        let marks = planned
            .iter()
            .map(|(r, s, _)| CanaryRow {
                record_id: *r,
                subject_id: *s,
                collection: collection.to_owned(),
                planted_ms: now,
            })
            .collect();
        let mut e = AuditEntry::new(p.actor(), Action::CanaryPlant, Outcome::Ok);
        e.collection = Some(collection.to_owned());
        e.detail = Some(format!("{n} canaries planted"));
        self.store
            .plant_canaries(
                marks,
                QueuedAudit {
                    subject_id: None,
                    entry: e.to_bytes(),
                },
            )
            .await?;
        let mut out = Vec::with_capacity(n);
        for (id, subject, values) in planned {
            self.insert_canary(p, collection, (id, subject), &values, now)
                .await?;
            out.push(PlantedCanary {
                record_id: id,
                subject_id: subject,
                collection: collection.to_owned(),
            });
        }
        Ok(out)
    }

    /// One canary's record, of a new subject under a key of its own; digested again when a
    /// blind-index rotation begins or ends meanwhile.
    async fn insert_canary(
        &self,
        p: &Principal,
        collection: &str,
        (id, subject): (RecordId, SubjectId),
        values: &fields::Validated,
        now: i64,
    ) -> Result<(), VaultError> {
        let coll = self.collection(collection)?;
        let key = DataKey::generate(1)?;
        let wrapped_key = self.keys.root.wrap(WrapContext::Subject(subject), &key)?;
        let mut tries = 0;
        loop {
            let mut record = RecordRow {
                id,
                subject_id: subject,
                collection: collection.to_owned(),
                fields: BTreeMap::new(),
                version: 1,
                created_ms: now,
                updated_ms: now,
            };
            let index = self.encrypt(&key, coll, &mut record, values);
            let mut audit = AuditEntry::new(p.actor(), Action::RecordCreate, Outcome::Ok);
            audit.collection = Some(collection.to_owned());
            audit.record_id = Some(id);
            audit.subject_id = Some(subject);
            audit.fields = values.keys().cloned().collect();
            let inserted = self
                .store
                .insert_record(NewRecord {
                    record,
                    new_subject: Some(NewSubject {
                        id: subject,
                        wrapped_key: wrapped_key.clone(),
                        created_ms: now,
                    }),
                    index,
                    audit: QueuedAudit {
                        subject_id: Some(subject),
                        entry: audit.to_bytes(),
                    },
                })
                .await;
            match inserted {
                Err(StoreError::IndexChanged) if tries < KEY_ATTEMPTS => {
                    tries += 1;
                    self.refresh_index().await?;
                }
                other => return Ok(other?),
            }
        }
    }

    /// Whether a searchable value of `values` is held by a record already.
    async fn collides(
        &self,
        collection: &str,
        coll: &custos_core::inventory::Collection,
        values: &fields::Validated,
    ) -> Result<bool, VaultError> {
        for (name, v) in values {
            let Some(v) = v.as_ref().filter(|_| coll.fields[name].searchable) else {
                continue;
            };
            if !self
                .find_by_value(collection, name, v.index_form.expose_secret())
                .await?
                .is_empty()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every canary planted.
    ///
    /// # Errors
    /// `Forbidden` without `handle_incidents`.
    pub async fn canaries(&self, p: &Principal) -> Result<Vec<PlantedCanary>, VaultError> {
        self.authorize(p, &Act::HandleIncidents)?;
        Ok(self
            .store
            .canaries()
            .await?
            .into_iter()
            .map(|c| PlantedCanary {
                record_id: c.record_id,
                subject_id: c.subject_id,
                collection: c.collection,
            })
            .collect())
    }
}
