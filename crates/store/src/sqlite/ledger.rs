//! The consent ledger on SQLite: [`LedgerStore`] for [`SqliteStore`].

use async_trait::async_trait;
use custos_core::ids::{EventId, SubjectId};
use rusqlite::{OptionalExtension, Row, params};

use super::SqliteStore;
use super::audit::queue;
use super::convert::{backend, id_text, parse_id};
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::ledger::{ConsentRow, LedgerStore};

/// A consent row as read: seq, id, subject, entry.
type RawConsent = (i64, String, String, Vec<u8>);

pub(super) fn consent_row(row: &Row<'_>) -> rusqlite::Result<RawConsent> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

pub(super) fn to_consent(raw: RawConsent) -> Result<ConsentRow, StoreError> {
    Ok(ConsentRow {
        seq: raw.0,
        id: parse_id(raw.1)?,
        subject_id: parse_id(raw.2)?,
        entry: raw.3,
    })
}

#[async_trait]
impl LedgerStore for SqliteStore {
    async fn insert_consent_event(
        &self,
        id: EventId,
        subject_id: SubjectId,
        entry: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            let known: Option<i64> = c
                .prepare_cached("SELECT 1 FROM subjects WHERE id = ?1")
                .and_then(|mut s| s.query_row([id_text(subject_id)], |r| r.get(0)).optional())
                .map_err(backend)?;
            if known.is_none() {
                return Err(StoreError::NotFound);
            }
            c.prepare_cached(
                "INSERT INTO consent_events (id, subject_id, entry) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![id_text(id), id_text(subject_id), entry]))
            .map_err(backend)?;
            queue(
                c,
                &QueuedAudit {
                    subject_id: Some(subject_id),
                    entry,
                },
            )
        })
        .await
    }

    async fn consent_event(&self, id: EventId) -> Result<Option<ConsentRow>, StoreError> {
        self.read(move |c| {
            let raw = c
                .prepare_cached(
                    "SELECT seq, id, subject_id, entry FROM consent_events WHERE id = ?1",
                )
                .and_then(|mut s| s.query_row([id_text(id)], consent_row).optional())
                .map_err(backend)?;
            raw.map(to_consent).transpose()
        })
        .await
    }

    async fn consent_events(&self, subject: SubjectId) -> Result<Vec<ConsentRow>, StoreError> {
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT seq, id, subject_id, entry FROM consent_events WHERE subject_id = ?1 \
                     ORDER BY seq",
                )
                .map_err(backend)?;
            let rows = s
                .query_map([id_text(subject)], consent_row)
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_consent))
                .collect()
        })
        .await
    }
}
