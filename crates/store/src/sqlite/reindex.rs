//! Blind-index key rotation on SQLite: [`IndexKeyStore`] for [`SqliteStore`], and the check
//! every index write and search makes. The one writer thread runs each write, and a
//! rotation's finish, as one step, so a write sees the keys as they are when it commits.

use async_trait::async_trait;
use custos_core::ids::RecordId;
use rusqlite::params;

use super::SqliteStore;
use super::convert::{backend, id_text};
use super::index_keys::live_versions;
use super::records::{record_with_key, to_record_flagged};
use crate::error::StoreError;
use crate::records::RecordWithKey;
use crate::reindex::{IndexKeyStore, Reindexed, index_key_name};
use crate::shared::RECORD_WITH_KEY;

/// Records with a field indexed under `current` and not under `next`.
const UNINDEXED: &str = "SELECT DISTINCT b.record_id FROM blind_index b \
     WHERE b.key_version = ?1 AND NOT EXISTS (SELECT 1 FROM blind_index n \
     WHERE n.key_version = ?2 AND n.record_id = b.record_id AND n.field = b.field)";

#[async_trait]
impl IndexKeyStore for SqliteStore {
    async fn index_versions(&self) -> Result<Vec<u32>, StoreError> {
        self.read(live_versions).await
    }

    async fn count_unindexed(&self, current: u32, next: u32) -> Result<u64, StoreError> {
        self.read(move |c| {
            c.query_row(
                &format!("SELECT count(*) FROM ({UNINDEXED})"),
                params![current, next],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }

    async fn unindexed_records(
        &self,
        current: u32,
        next: u32,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<RecordWithKey>, StoreError> {
        let after = after.map(id_text).unwrap_or_default();
        self.read(move |c| {
            let sql = format!(
                "{RECORD_WITH_KEY} WHERE r.id IN ({UNINDEXED} AND b.record_id > ?3 \
                 ORDER BY b.record_id LIMIT ?4) ORDER BY r.id"
            );
            let mut s = c.prepare_cached(&sql).map_err(backend)?;
            let rows = s
                .query_map(params![current, next, after, limit as i64], record_with_key)
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_record_flagged))
                .collect()
        })
        .await
    }

    async fn reindex(
        &self,
        rotation: i64,
        current: u32,
        next: u32,
        batch: Vec<Reindexed>,
    ) -> Result<u64, StoreError> {
        self.write(move |c| {
            if live_versions(c)? != [current, next] {
                return Err(StoreError::IndexChanged);
            }
            let mut done = 0u64;
            for r in &batch {
                let found: Option<(String, String)> = c
                    .prepare_cached(
                        "SELECT collection, subject_id FROM records WHERE id = ?1 AND version = ?2",
                    )
                    .and_then(|mut s| {
                        rusqlite::OptionalExtension::optional(s.query_row(
                            params![id_text(r.id), r.version],
                            |row| Ok((row.get(0)?, row.get(1)?)),
                        ))
                    })
                    .map_err(backend)?;
                let Some((collection, subject)) = found else {
                    continue;
                };
                let id = id_text(r.id);
                c.prepare_cached("DELETE FROM blind_index WHERE record_id = ?1 AND key_version = ?2")
                    .and_then(|mut s| s.execute(params![id, next]))
                    .map_err(backend)?;
                let mut drop_current = c
                    .prepare_cached(
                        "DELETE FROM blind_index WHERE record_id = ?1 AND key_version = ?2 AND field = ?3",
                    )
                    .map_err(backend)?;
                let fields: Vec<String> = c
                    .prepare_cached(
                        "SELECT DISTINCT field FROM blind_index WHERE record_id = ?1 AND key_version = ?2",
                    )
                    .and_then(|mut s| {
                        s.query_map(params![id, current], |row| row.get(0))?
                            .collect::<Result<_, _>>()
                    })
                    .map_err(backend)?;
                for f in fields.iter().filter(|f| !r.entries.iter().any(|e| &e.field == *f)) {
                    drop_current.execute(params![id, current, f]).map_err(backend)?;
                }
                let mut ins = c
                    .prepare_cached(
                        "INSERT INTO blind_index (collection, field, digest, record_id, subject_id, key_version) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(backend)?;
                for e in &r.entries {
                    if e.key_version != next {
                        return Err(StoreError::IndexChanged);
                    }
                    ins.execute(params![collection, e.field, e.digest, id, subject, next])
                        .map_err(backend)?;
                }
                done += 1;
            }
            c.execute(
                "UPDATE key_rotations SET done = done + ?1 WHERE id = ?2",
                params![done as i64, rotation],
            )
            .map_err(backend)?;
            Ok(done)
        })
        .await
    }

    async fn finish_index_rotation(&self, current: u32, next: u32) -> Result<(), StoreError> {
        self.write(move |c| {
            if live_versions(c)? != [current, next] {
                return Err(StoreError::IndexChanged);
            }
            let missing: i64 = c
                .query_row(
                    &format!("SELECT count(*) FROM ({UNINDEXED})"),
                    params![current, next],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if missing > 0 {
                return Err(StoreError::Conflict(format!(
                    "{missing} records are not yet indexed under blind-index key {next}"
                )));
            }
            c.execute(
                "DELETE FROM vault_keys WHERE name = ?1",
                [index_key_name(current)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn drop_index_entries(&self, version: u32, limit: usize) -> Result<u64, StoreError> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM blind_index WHERE (collection, field, digest, record_id) IN \
                 (SELECT collection, field, digest, record_id FROM blind_index \
                 WHERE key_version < ?1 LIMIT ?2)",
                params![version, limit as i64],
            )
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }

    async fn index_entries_per_version(&self) -> Result<Vec<(u32, u64)>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT key_version, count(*) FROM blind_index GROUP BY key_version \
                     ORDER BY key_version",
                )
                .map_err(backend)?;
            st.query_map([], |r| {
                Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(backend)?
            .collect::<Result<_, _>>()
            .map_err(backend)
        })
        .await
    }
}
