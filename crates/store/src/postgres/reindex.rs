//! Blind-index key rotation on PostgreSQL: [`IndexKeyStore`] for [`PostgresStore`], and the
//! check every index write and search makes.
//!
//! A write of index entries reads the blind-index keys' rows `FOR KEY SHARE` in its
//! transaction (which a root key rotation's update of the wrapped bytes does not wait for);
//! a rotation's finish locks the keys' table (`EXCLUSIVE`, waiting for those writes, at most
//! two seconds), deletes the current key's row, then counts what is missing under the next
//! key, so a write that committed entries under the current key alone is seen by the count,
//! and one that came after sees the key gone. While the finish holds the lock, record writes
//! wait.

use async_trait::async_trait;
use custos_core::ids::RecordId;
use uuid::Uuid;

use super::PostgresStore;
use super::convert::backend;
use super::index_keys::{names_sql, versions_in};
use super::records::to_record;
use crate::error::StoreError;
use crate::records::RecordWithKey;
use crate::reindex::{IndexKeyStore, Reindexed, index_key_name};
use crate::shared::RECORD_WITH_KEY;

/// Records with a field indexed under `$1` and not under `$2`.
const UNINDEXED: &str = "SELECT DISTINCT b.record_id FROM blind_index b \
     WHERE b.key_version = $1 AND NOT EXISTS (SELECT 1 FROM blind_index n \
     WHERE n.key_version = $2 AND n.record_id = b.record_id AND n.field = b.field)";

#[async_trait]
impl IndexKeyStore for PostgresStore {
    async fn index_versions(&self) -> Result<Vec<u32>, StoreError> {
        self.live_index_versions().await
    }

    async fn count_unindexed(&self, current: u32, next: u32) -> Result<u64, StoreError> {
        let (c, n) = (current as i32, next as i32);
        let rows = self
            .query(&format!("SELECT count(*) FROM ({UNINDEXED}) u"), &[&c, &n])
            .await?;
        Ok(rows[0].get::<_, i64>(0) as u64)
    }

    async fn unindexed_records(
        &self,
        current: u32,
        next: u32,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<RecordWithKey>, StoreError> {
        let (c, n) = (current as i32, next as i32);
        let after = after.map(|a| a.as_uuid()).unwrap_or(Uuid::nil());
        let sql = format!(
            "{RECORD_WITH_KEY} WHERE r.id IN ({UNINDEXED} AND b.record_id > $3 \
             ORDER BY b.record_id LIMIT $4) ORDER BY r.id"
        );
        let rows = self.query(&sql, &[&c, &n, &after, &(limit as i64)]).await?;
        rows.iter().map(to_record).collect()
    }

    async fn reindex(
        &self,
        rotation: i64,
        current: u32,
        next: u32,
        batch: Vec<Reindexed>,
    ) -> Result<u64, StoreError> {
        let (c, n) = (current as i32, next as i32);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let rows = tx.query(&names_sql(true), &[]).await.map_err(backend)?;
        if versions_in(&rows) != [current, next] {
            return Err(StoreError::IndexChanged);
        }
        let mut done = 0u64;
        for r in &batch {
            if r.entries.iter().any(|e| e.key_version != next) {
                return Err(StoreError::IndexChanged);
            }
            let id = r.id.as_uuid();
            let found = tx
                .query_opt(
                    "SELECT collection, subject_id FROM records WHERE id = $1 AND version = $2 \
                     FOR SHARE",
                    &[&id, &r.version],
                )
                .await
                .map_err(backend)?;
            let Some(row) = found else { continue };
            let (collection, subject): (String, Uuid) = (row.get(0), row.get(1));
            let fields: Vec<&str> = r.entries.iter().map(|e| e.field.as_str()).collect();
            let digests: Vec<&[u8]> = r.entries.iter().map(|e| e.digest.as_slice()).collect();
            tx.execute(
                "DELETE FROM blind_index WHERE record_id = $1 \
                 AND (key_version = $2 OR (key_version = $3 AND NOT field = ANY($4)))",
                &[&id, &n, &c, &fields],
            )
            .await
            .map_err(backend)?;
            tx.execute(
                "INSERT INTO blind_index (collection, field, digest, record_id, subject_id, key_version) \
                 SELECT $1, f, d, $4, $5, $6 FROM unnest($2::text[], $3::bytea[]) AS u(f, d) \
                 ON CONFLICT DO NOTHING",
                &[&collection, &fields, &digests, &id, &subject, &n],
            )
            .await
            .map_err(backend)?;
            done += 1;
        }
        tx.execute(
            "UPDATE key_rotations SET done = done + $1 WHERE id = $2",
            &[&(done as i64), &rotation],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(done)
    }

    async fn finish_index_rotation(&self, current: u32, next: u32) -> Result<(), StoreError> {
        let (c, n) = (current as i32, next as i32);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // A table lock, whose queue is fair: the writers' `FOR KEY SHARE` cannot keep it
        // waiting for ever, as they could a `FOR UPDATE` of the rows. Plain reads go on; record
        // writes queue behind it, so it gives up after a while (a conflict: another pass).
        tx.batch_execute("SET LOCAL lock_timeout = '2s'; LOCK TABLE vault_keys IN EXCLUSIVE MODE")
            .await
            .map_err(backend)?;
        let rows = tx.query(&names_sql(false), &[]).await.map_err(backend)?;
        if versions_in(&rows) != [current, next] {
            return Err(StoreError::IndexChanged);
        }
        // First the key, which waits for the writes holding it; then the count, which sees them.
        tx.execute(
            "DELETE FROM vault_keys WHERE name = $1",
            &[&index_key_name(current)],
        )
        .await
        .map_err(backend)?;
        let missing: i64 = tx
            .query_one(&format!("SELECT count(*) FROM ({UNINDEXED}) u"), &[&c, &n])
            .await
            .map_err(backend)?
            .get(0);
        if missing > 0 {
            return Err(StoreError::Conflict(format!(
                "{missing} records are not yet indexed under blind-index key {next}"
            )));
        }
        tx.commit().await.map_err(backend)
    }

    async fn drop_index_entries(&self, version: u32, limit: usize) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM blind_index WHERE ctid IN (SELECT ctid FROM blind_index \
                 WHERE key_version < $1 LIMIT $2)",
                &[&(version as i32), &(limit as i64)],
            )
            .await
            .map_err(backend)
    }

    async fn index_entries_per_version(&self) -> Result<Vec<(u32, u64)>, StoreError> {
        let rows = self
            .query(
                "SELECT key_version, count(*) FROM blind_index GROUP BY key_version \
                 ORDER BY key_version",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i32>(0) as u32, r.get::<_, i64>(1) as u64))
            .collect())
    }
}
