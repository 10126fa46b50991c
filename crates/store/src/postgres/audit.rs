//! The audit log on PostgreSQL: [`AuditStore`] for [`PostgresStore`], and the queueing of
//! an audit entry inside a transaction.

use async_trait::async_trait;
use custos_core::audit::{SignedTreeHead, TreeHead};
use custos_core::ids::SubjectId;
use tokio::sync::oneshot;
use tokio_postgres::Row;
use uuid::Uuid;

use super::convert::backend;
use super::{PostgresStore, Tx};
use crate::audit::{AuditStore, Integration, LeafRow, QueuedAudit, QueuedRow, TreeState};
use crate::error::StoreError;
use crate::shared::{LEASE_SQL, hash32, signature64, split_peaks};

fn to_leaf(row: &Row) -> Result<LeafRow, StoreError> {
    Ok(LeafRow {
        index: row.get::<_, i64>(0) as u64,
        subject_id: row.get::<_, Option<Uuid>>(1).map(SubjectId::from),
        entry: row.get(2),
        leaf_hash: hash32(row.get(3))?,
    })
}

pub(super) fn to_head(row: &Row) -> Result<SignedTreeHead, StoreError> {
    Ok(SignedTreeHead {
        head: TreeHead {
            size: row.get::<_, i64>(0) as u64,
            root: hash32(row.get(1))?,
            timestamp_ms: row.get::<_, i64>(2) as u64,
        },
        signature: signature64(row.get(3))?,
    })
}

pub(super) async fn queue(tx: &Tx<'_>, audit: &QueuedAudit) -> Result<(), StoreError> {
    let st = tx
        .prepare_cached("INSERT INTO audit_queue (subject_id, entry) VALUES ($1, $2)")
        .await
        .map_err(backend)?;
    tx.execute(&st, &[&audit.subject_id.map(|s| s.as_uuid()), &audit.entry])
        .await
        .map(drop)
        .map_err(backend)
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, entries: Vec<QueuedAudit>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.appender
            .send((entries, tx))
            .await
            .map_err(|_| StoreError::Unavailable("the audit appender has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the audit appender has stopped".into()))?
    }

    async fn queued_audit(&self, limit: usize) -> Result<Vec<QueuedRow>, StoreError> {
        let rows = self
            .query(
                "SELECT queue_id, subject_id, entry FROM audit_queue ORDER BY queue_id LIMIT $1",
                &[&(limit as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| QueuedRow {
                queue_id: r.get(0),
                audit: QueuedAudit {
                    subject_id: r.get::<_, Option<Uuid>>(1).map(SubjectId::from),
                    entry: r.get(2),
                },
            })
            .collect())
    }

    async fn integrate_audit(&self, batch: Integration) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The row lock makes a second sequencer wait here, then see the size it moved to.
        let size: i64 = tx
            .query_one("SELECT size FROM audit_state WHERE id = 1 FOR UPDATE", &[])
            .await
            .map_err(backend)?
            .get(0);
        if size as u64 != batch.from_size {
            return Err(StoreError::Conflict(
                "the tree grew since the batch was computed".into(),
            ));
        }
        let idx: Vec<i64> = batch.leaves.iter().map(|l| l.index as i64).collect();
        let subjects: Vec<Option<Uuid>> = batch
            .leaves
            .iter()
            .map(|l| l.subject_id.map(|s| s.as_uuid()))
            .collect();
        let entries: Vec<&[u8]> = batch.leaves.iter().map(|l| l.entry.as_slice()).collect();
        let hashes: Vec<&[u8]> = batch
            .leaves
            .iter()
            .map(|l| l.leaf_hash.as_slice())
            .collect();
        let (actors, times): (Vec<Option<String>>, Vec<Option<String>>) = batch
            .leaves
            .iter()
            .map(|l| crate::shared::leaf_facts(&l.entry))
            .unzip();
        tx.execute(
            "INSERT INTO audit_leaves (idx, subject_id, entry, leaf_hash, actor, time) \
             SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bytea[], $4::bytea[], \
             $5::text[], $6::text[])",
            &[&idx, &subjects, &entries, &hashes, &actors, &times],
        )
        .await
        .map_err(backend)?;
        let deleted = tx
            .execute(
                "DELETE FROM audit_queue WHERE queue_id = ANY($1)",
                &[&batch.queue_ids],
            )
            .await
            .map_err(backend)?;
        if deleted != batch.queue_ids.len() as u64 {
            return Err(StoreError::Conflict(
                "a queued entry was already integrated".into(),
            ));
        }
        let peaks: Vec<u8> = batch.state.peaks.concat();
        tx.execute(
            "UPDATE audit_state SET size = $1, peaks = $2 WHERE id = 1",
            &[&(batch.state.size as i64), &peaks],
        )
        .await
        .map_err(backend)?;
        let h = &batch.head;
        tx.execute(
            "INSERT INTO audit_heads (size, root, timestamp_ms, signature) VALUES ($1, $2, $3, $4)",
            &[
                &(h.head.size as i64),
                &h.head.root.as_slice(),
                &(h.head.timestamp_ms as i64),
                &h.signature.as_slice(),
            ],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn tree_state(&self) -> Result<TreeState, StoreError> {
        let rows = self
            .query("SELECT size, peaks FROM audit_state WHERE id = 1", &[])
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::Corrupt("the tree state row is missing".into()))?;
        let peaks: Vec<u8> = row.get(1);
        Ok(TreeState {
            size: row.get::<_, i64>(0) as u64,
            peaks: split_peaks(&peaks)?,
        })
    }

    async fn leaves(&self, from: u64, to: u64) -> Result<Vec<LeafRow>, StoreError> {
        let rows = self
            .query(
                "SELECT idx, subject_id, entry, leaf_hash FROM audit_leaves \
                 WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                &[&(from as i64), &(to.min(i64::MAX as u64) as i64)],
            )
            .await?;
        rows.iter().map(to_leaf).collect()
    }

    async fn subject_leaves(&self, subject: SubjectId) -> Result<Vec<LeafRow>, StoreError> {
        let rows = self
            .query(
                "SELECT idx, subject_id, entry, leaf_hash FROM audit_leaves WHERE subject_id = $1 ORDER BY idx",
                &[&subject.as_uuid()],
            )
            .await?;
        rows.iter().map(to_leaf).collect()
    }

    async fn leaves_by(
        &self,
        actor: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<LeafRow>, StoreError> {
        let (sql, values) = crate::shared::leaves_by_sql(actor, from, to);
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
            .iter()
            .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let rows = self.query(&sql, &params).await?;
        rows.iter().map(to_leaf).collect()
    }

    async fn tree_heads(&self) -> Result<Vec<SignedTreeHead>, StoreError> {
        let rows = self
            .query(
                "SELECT size, root, timestamp_ms, signature FROM audit_heads ORDER BY size",
                &[],
            )
            .await?;
        rows.iter().map(to_head).collect()
    }

    async fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, StoreError> {
        let rows = self
            .query(
                "SELECT size, root, timestamp_ms, signature FROM audit_heads ORDER BY size DESC LIMIT 1",
                &[],
            )
            .await?;
        rows.first().map(to_head).transpose()
    }

    async fn sequencer_lease(
        &self,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let rows = self.query(LEASE_SQL, &[&holder, &now_ms, &ttl_ms]).await?;
        Ok(!rows.is_empty())
    }
}
