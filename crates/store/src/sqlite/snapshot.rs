//! `custos backup` on SQLite: [`SnapshotStore`] for [`SqliteStore`].

use std::path::Path;

use async_trait::async_trait;
use rusqlite::Connection;

use super::SqliteStore;
use super::convert::backend;
use crate::error::StoreError;
use crate::snapshot::{SnapshotStore, counts_empty, refuse_existing};

/// Tables a migration seeds with one row: emptied by resetting that row, not deleting it.
const SEEDED: [(&str, &str); 2] = [
    (
        "audit_state",
        "UPDATE audit_state SET size = 0, peaks = x''",
    ),
    ("detector_state", "UPDATE detector_state SET position = 0"),
];

#[async_trait]
impl SnapshotStore for SqliteStore {
    async fn snapshot_into(&self, path: &Path) -> Result<(), StoreError> {
        refuse_existing(path)?;
        let (from, to) = (self.path.clone(), path.to_owned());
        // VACUUM INTO reads one snapshot of the database (a read transaction: writers go on
        // in WAL mode) and writes it compacted into the new file. Its own connection on a
        // blocking thread: it takes longer than the reads the pool is for.
        tokio::task::spawn_blocking(move || {
            let c = Connection::open(&from).map_err(backend)?;
            c.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(backend)?;
            let target = to.to_str().ok_or_else(|| {
                StoreError::Backend(format!("{} is not a UTF-8 path", to.display()))
            })?;
            c.execute("VACUUM INTO ?1", [target]).map_err(backend)?;
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }

    async fn wipe(&self) -> Result<(), StoreError> {
        self.write(|c| {
            let tables: Vec<String> = {
                let mut s = c
                    .prepare(
                        "SELECT name FROM sqlite_master WHERE type = 'table' \
                         AND name NOT LIKE 'sqlite_%'",
                    )
                    .map_err(backend)?;
                s.query_map([], |r| r.get(0))
                    .map_err(backend)?
                    .collect::<Result<_, _>>()
                    .map_err(backend)?
            };
            // Foreign keys are checked at the commit, when every table is empty.
            c.execute_batch("PRAGMA defer_foreign_keys = ON")
                .map_err(backend)?;
            for t in &tables {
                match SEEDED.iter().find(|(name, _)| name == t) {
                    Some((_, reset)) => c.execute_batch(reset),
                    None => c.execute_batch(&format!("DELETE FROM \"{}\"", t.replace('"', ""))),
                }
                .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        counts_empty(self).await
    }
}

/// Folds a closed database's write-ahead log into the file and removes it, so that the file
/// alone holds the whole database: what a snapshot written through a store needs before its
/// bytes are read. A store just dropped may take a moment to close its writer's connection,
/// and leaving WAL mode does not wait for it: the change is tried again for up to ten
/// seconds.
pub async fn seal(path: &Path) -> Result<(), StoreError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let c = Connection::open(&path).map_err(backend)?;
        c.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mode = c.query_row("PRAGMA journal_mode = DELETE", [], |r| {
                r.get::<_, String>(0)
            });
            match mode {
                Ok(m) if m == "delete" => return Ok(()),
                Err(e) if std::time::Instant::now() >= until => return Err(backend(e)),
                Ok(m) if std::time::Instant::now() >= until => {
                    return Err(StoreError::Backend(format!(
                        "{} stayed in journal mode {m}: is it still open?",
                        path.display()
                    )));
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    })
    .await
    .map_err(|e| StoreError::Backend(e.to_string()))?
}
