//! Legal holds on SQLite: [`HoldStore`] for [`SqliteStore`].

use async_trait::async_trait;
use custos_core::ids::RecordId;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::audit::queue;
use super::convert::{backend, id_text, parse_id};
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::holds::{HoldRow, HoldStore};

/// A hold as read: record, collection, subject, reason, placed by, placed at.
type RawHold = (String, String, String, String, String, i64);

pub(super) fn hold_row(row: &Row<'_>) -> rusqlite::Result<RawHold> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

pub(super) fn to_hold(raw: RawHold) -> Result<HoldRow, StoreError> {
    Ok(HoldRow {
        record_id: parse_id(raw.0)?,
        collection: raw.1,
        subject_id: parse_id(raw.2)?,
        reason: raw.3,
        placed_by: raw.4,
        placed_ms: raw.5,
    })
}

pub(super) fn insert_hold(c: &Connection, h: &HoldRow) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO legal_holds (record_id, collection, subject_id, reason, placed_by, placed_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id_text(h.record_id),
            h.collection,
            id_text(h.subject_id),
            h.reason,
            h.placed_by,
            h.placed_ms
        ])
    })
    .map(drop)
    .map_err(backend)
}

#[async_trait]
impl HoldStore for SqliteStore {
    async fn place_hold(&self, hold: HoldRow, audit: QueuedAudit) -> Result<(), StoreError> {
        self.write(move |c| {
            let exists: Option<i64> = c
                .prepare_cached("SELECT 1 FROM records WHERE id = ?1 AND collection = ?2")
                .and_then(|mut s| {
                    s.query_row(params![id_text(hold.record_id), hold.collection], |r| {
                        r.get(0)
                    })
                    .optional()
                })
                .map_err(backend)?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            insert_hold(c, &hold).map_err(|e| match e {
                StoreError::Conflict(_) => {
                    StoreError::Conflict("the record is already under a legal hold".into())
                }
                e => e,
            })?;
            queue(c, &audit)
        })
        .await
    }

    async fn release_hold(&self, record: RecordId, audit: QueuedAudit) -> Result<(), StoreError> {
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM legal_holds WHERE record_id = ?1",
                    [id_text(record)],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            queue(c, &audit)
        })
        .await
    }

    async fn holds(&self) -> Result<Vec<HoldRow>, StoreError> {
        self.read(|c| {
            let mut s = c
                .prepare_cached(
                    "SELECT record_id, collection, subject_id, reason, placed_by, placed_ms \
                     FROM legal_holds ORDER BY record_id",
                )
                .map_err(backend)?;
            let rows = s.query_map([], hold_row).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_hold)).collect()
        })
        .await
    }
}
