//! Synthetic customers for `custos serve --demo`: plausible, obviously fake, deterministic.

use std::sync::Arc;

use custos_core::personal::PersonalFields;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::{Principal, Vault, VaultError};

/// How many customers the demo loads.
pub const DEMO_CUSTOMERS: usize = 1000;

const FIRST: [&str; 20] = [
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Katherine",
    "Dennis",
    "Margaret",
    "Ken",
    "Radia",
    "Tim",
    "Hedy",
    "Claude",
    "Sophie",
    "Linus",
    "Joan",
    "Niklaus",
];
const LAST: [&str; 20] = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "McCarthy",
    "Johnson",
    "Ritchie",
    "Hamilton",
    "Thompson",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Shannon",
    "Wilson",
    "Torvalds",
    "Clarke",
    "Wirth",
];
const TOWNS: [&str; 5] = ["London", "Manchester", "Leeds", "Bristol", "Glasgow"];

/// A small deterministic generator (SplitMix64): demo data need not be random, only varied.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// The `i`th demo customer. Emails are at example.com (RFC 2606) and phone numbers in
/// Ofcom's range reserved for drama (020 7946 0xxx), so none reaches a real person.
pub fn demo_customer(i: usize) -> PersonalFields {
    let mut m = Mix(i as u64);
    let (first, last) = (m.pick(&FIRST), m.pick(&LAST));
    let email = format!(
        "{}.{}{}@example.com",
        first.to_lowercase(),
        last.to_lowercase().replace('-', ""),
        i
    );
    let year = 1950 + m.next() % 55;
    let month = 1 + m.next() % 12;
    let day = 1 + m.next() % 28;
    let mut c = json!({
        "name": format!("{first} {last}"),
        "email": email,
        "birth_date": format!("{year:04}-{month:02}-{day:02}"),
        "country": "GB",
        "address": {
            "lines": [format!("{} Example Street", 1 + m.next() % 200)],
            "locality": m.pick(&TOWNS),
            "postal_code": "SW1A 1AA",
            "country": "GB"
        },
        "vip": m.next().is_multiple_of(10),
    });
    if !i.is_multiple_of(3) {
        c["phone"] = json!(format!("020 7946 {:04}", i % 1000));
    }
    if i.is_multiple_of(7) {
        c["notes"] = json!("Prefers contact by email.");
    }
    match c {
        Value::Object(o) => custos_core::personal::fields_of(o),
        _ => unreachable!("built as an object"),
    }
}

impl Vault {
    /// Loads `n` synthetic customers into the `customers` collection, many at a time so that
    /// group commit carries them.
    ///
    /// # Errors
    /// When the inventory has no `customers` collection that accepts them, or the store fails.
    pub async fn load_demo(self: &Arc<Self>, n: usize) -> Result<(), VaultError> {
        const IN_FLIGHT: usize = 64;
        let mut set = JoinSet::new();
        for i in 0..n {
            if set.len() >= IN_FLIGHT {
                set.join_next()
                    .await
                    .expect("the set is not empty")
                    .map_err(|e| VaultError::Internal(e.to_string()))??;
            }
            let vault = Arc::clone(self);
            set.spawn(async move {
                vault
                    .put_record(&Principal::Cli, "customers", None, &demo_customer(i))
                    .await
            });
        }
        while let Some(r) = set.join_next().await {
            r.map_err(|e| VaultError::Internal(e.to_string()))??;
        }
        while self.sequence_audit().await? > 0 {}
        Ok(())
    }
}
