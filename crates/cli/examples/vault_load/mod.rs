//! What the key-rotation benchmarks share: a load of writes and reads through the vault,
//! run while a rotation runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use custos_core::personal::{PersonalFields, fields_of};
use custos_vault::{Principal, Vault};
use serde_json::json;

/// Customer `i`'s fields: an email and a name.
pub(crate) fn customer(i: usize) -> PersonalFields {
    fields_of(
        json!({"email": format!("bench{i}@example.com"), "name": "Bench Subject"})
            .as_object()
            .unwrap()
            .clone(),
    )
}

/// `tasks` tasks, each writing a new customer (numbered from `first` up, a million apart per
/// task) and reading it back, until `stop`; each pair counted in `served`.
pub(crate) fn spawn(
    vault: &Arc<Vault>,
    tasks: usize,
    first: usize,
    stop: &Arc<AtomicBool>,
    served: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..tasks)
        .map(|t| {
            let (vault, stop, served) = (Arc::clone(vault), Arc::clone(stop), Arc::clone(served));
            tokio::spawn(async move {
                let mut i = first + t * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    let created = vault
                        .put_record(&Principal::Cli, "customers", None, &customer(i))
                        .await
                        .expect("a write during the rotation");
                    vault
                        .get_record(&Principal::Cli, "customers", created.id, Some("support"))
                        .await
                        .expect("a read during the rotation");
                    served.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect()
}
