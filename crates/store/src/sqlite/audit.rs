//! The audit log on SQLite: [`AuditStore`] for [`SqliteStore`], and the queueing of an
//! audit entry inside a write.

use async_trait::async_trait;
use custos_core::audit::{SignedTreeHead, TreeHead};
use custos_core::ids::SubjectId;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::convert::{backend, id_text, parse_id};
use crate::audit::{AuditStore, Integration, LeafRow, QueuedAudit, QueuedRow, TreeState};
use crate::error::StoreError;
use crate::shared::{LEASE_SQL, hash32, leaf_facts, leaves_by_sql, signature64, split_peaks};

/// A leaf row as read: index, subject, entry, leaf hash.
type RawLeaf = (i64, Option<String>, Vec<u8>, Vec<u8>);

fn leaf(row: &Row<'_>) -> rusqlite::Result<RawLeaf> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_leaf(raw: RawLeaf) -> Result<LeafRow, StoreError> {
    Ok(LeafRow {
        index: raw.0 as u64,
        subject_id: raw.1.map(parse_id).transpose()?,
        entry: raw.2,
        leaf_hash: hash32(raw.3)?,
    })
}

pub(super) fn head(row: &Row<'_>) -> rusqlite::Result<(i64, Vec<u8>, i64, Vec<u8>)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

pub(super) fn to_head(raw: (i64, Vec<u8>, i64, Vec<u8>)) -> Result<SignedTreeHead, StoreError> {
    Ok(SignedTreeHead {
        head: TreeHead {
            size: raw.0 as u64,
            root: hash32(raw.1)?,
            timestamp_ms: raw.2 as u64,
        },
        signature: signature64(raw.3)?,
    })
}

pub(super) fn queue(conn: &Connection, audit: &QueuedAudit) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO audit_queue (subject_id, entry) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![audit.subject_id.map(id_text), audit.entry]))
        .map(drop)
        .map_err(backend)
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, entries: Vec<QueuedAudit>) -> Result<(), StoreError> {
        self.write(move |c| entries.iter().try_for_each(|e| queue(c, e)))
            .await
    }

    async fn queued_audit(&self, limit: usize) -> Result<Vec<QueuedRow>, StoreError> {
        self.read(move |c| {
            let mut s = c
                .prepare_cached("SELECT queue_id, subject_id, entry FROM audit_queue ORDER BY queue_id LIMIT ?1")
                .map_err(backend)?;
            let rows = s
                .query_map([limit as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?, r.get(2)?)))
                .map_err(backend)?;
            rows.map(|r| {
                let (queue_id, subject, entry) = r.map_err(backend)?;
                Ok(QueuedRow { queue_id, audit: QueuedAudit { subject_id: subject.map(parse_id).transpose()?, entry } })
            })
            .collect()
        })
        .await
    }

    async fn integrate_audit(&self, batch: Integration) -> Result<(), StoreError> {
        self.write(move |c| {
            let size: i64 = c.query_row("SELECT size FROM audit_state WHERE id = 1", [], |r| r.get(0)).map_err(backend)?;
            if size as u64 != batch.from_size {
                return Err(StoreError::Conflict("the tree grew since the batch was computed".into()));
            }
            let mut ins = c
                .prepare_cached("INSERT INTO audit_leaves (idx, subject_id, entry, leaf_hash, actor, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                .map_err(backend)?;
            for l in &batch.leaves {
                let (actor, time) = leaf_facts(&l.entry);
                ins.execute(params![l.index as i64, l.subject_id.map(id_text), l.entry, l.leaf_hash.to_vec(), actor, time])
                    .map_err(backend)?;
            }
            let mut del = c.prepare_cached("DELETE FROM audit_queue WHERE queue_id = ?1").map_err(backend)?;
            for q in &batch.queue_ids {
                if del.execute([q]).map_err(backend)? != 1 {
                    return Err(StoreError::Conflict("a queued entry was already integrated".into()));
                }
            }
            let peaks: Vec<u8> = batch.state.peaks.concat();
            c.execute("UPDATE audit_state SET size = ?1, peaks = ?2 WHERE id = 1", params![batch.state.size as i64, peaks])
                .map_err(backend)?;
            let h = &batch.head;
            c.execute(
                "INSERT INTO audit_heads (size, root, timestamp_ms, signature) VALUES (?1, ?2, ?3, ?4)",
                params![h.head.size as i64, h.head.root.to_vec(), h.head.timestamp_ms as i64, h.signature.to_vec()],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn tree_state(&self) -> Result<TreeState, StoreError> {
        self.read(|c| {
            let (size, peaks): (i64, Vec<u8>) = c
                .query_row(
                    "SELECT size, peaks FROM audit_state WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(backend)?;
            let peaks = split_peaks(&peaks)?;
            Ok(TreeState {
                size: size as u64,
                peaks,
            })
        })
        .await
    }

    async fn leaves(&self, from: u64, to: u64) -> Result<Vec<LeafRow>, StoreError> {
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT idx, subject_id, entry, leaf_hash FROM audit_leaves WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
                )
                .map_err(backend)?;
            let rows = s.query_map([from as i64, to as i64], leaf).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_leaf)).collect()
        })
        .await
    }

    async fn subject_leaves(&self, subject: SubjectId) -> Result<Vec<LeafRow>, StoreError> {
        self.read(move |c| {
            let mut s = c
                .prepare_cached("SELECT idx, subject_id, entry, leaf_hash FROM audit_leaves WHERE subject_id = ?1 ORDER BY idx")
                .map_err(backend)?;
            let rows = s.query_map([id_text(subject)], leaf).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_leaf)).collect()
        })
        .await
    }

    async fn leaves_by(
        &self,
        actor: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<LeafRow>, StoreError> {
        let (sql, values) = leaves_by_sql(actor, from, to);
        let values: Vec<String> = values.into_iter().map(str::to_owned).collect();
        self.read(move |c| {
            let mut s = c.prepare_cached(&sql).map_err(backend)?;
            let rows = s
                .query_map(rusqlite::params_from_iter(values.iter()), leaf)
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_leaf)).collect()
        })
        .await
    }

    async fn tree_heads(&self) -> Result<Vec<SignedTreeHead>, StoreError> {
        self.read(|c| {
            let mut s = c
                .prepare_cached(
                    "SELECT size, root, timestamp_ms, signature FROM audit_heads ORDER BY size",
                )
                .map_err(backend)?;
            let rows = s.query_map([], head).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_head)).collect()
        })
        .await
    }

    async fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT size, root, timestamp_ms, signature FROM audit_heads ORDER BY size DESC LIMIT 1",
                [],
                head,
            )
            .optional()
            .map_err(backend)?
            .map(to_head)
            .transpose()
        })
        .await
    }

    async fn sequencer_lease(
        &self,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let holder = holder.to_owned();
        self.write(move |c| {
            c.prepare_cached(LEASE_SQL)
                .and_then(|mut s| {
                    s.query(params![holder, now_ms, ttl_ms])?
                        .next()
                        .map(|r| r.is_some())
                })
                .map_err(backend)
        })
        .await
    }
}
