//! The outbox on SQLite: [`OutboxStore`] for [`SqliteStore`], and the rows `db copy` moves.
//! The one writer thread serialises claims, so two claimers never see the same row free.

use async_trait::async_trait;
use custos_core::ids::MailId;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::convert::{backend, id_text, parse_id};
use super::rekey::check_key;
use crate::error::StoreError;
use crate::outbox::{OUTBOX_COLUMNS, OutboxCounts, OutboxRow, OutboxStore, not_held};
use crate::rekey::sealed_version;

/// An outbox row as read, in [`OUTBOX_COLUMNS`] order.
type RawMail = (
    String,
    Option<String>,
    [i64; 4],
    (Option<String>, Option<i64>, Option<i64>, Option<i64>),
    Option<String>,
    Vec<u8>,
);

fn mail_row(r: &Row<'_>) -> rusqlite::Result<RawMail> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
        (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?),
        r.get(10)?,
        r.get(11)?,
    ))
}

fn to_mail(raw: RawMail) -> Result<OutboxRow, StoreError> {
    let (
        id,
        subject,
        [created_ms, next_attempt_ms, attempts, expires_ms],
        claim,
        last_error,
        sealed,
    ) = raw;
    let (claimed_by, claimed_until_ms, sent_ms, failed_ms) = claim;
    Ok(OutboxRow {
        id: parse_id(id)?,
        subject_id: subject.map(parse_id).transpose()?,
        created_ms,
        next_attempt_ms,
        attempts,
        expires_ms,
        claimed_by,
        claimed_until_ms,
        sent_ms,
        failed_ms,
        last_error,
        sealed,
    })
}

/// Inserts a row as it is; `or_ignore` leaves one whose id is present alone (`db copy`).
pub(super) fn insert_mail(
    c: &Connection,
    r: &OutboxRow,
    or_ignore: bool,
) -> Result<(), StoreError> {
    let conflict = if or_ignore {
        " ON CONFLICT DO NOTHING"
    } else {
        ""
    };
    c.prepare_cached(&format!(
        "INSERT INTO outbox ({OUTBOX_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12){conflict}"
    ))
    .and_then(|mut s| {
        s.execute(params![
            id_text(r.id),
            r.subject_id.map(id_text),
            r.created_ms,
            r.next_attempt_ms,
            r.attempts,
            r.expires_ms,
            r.claimed_by,
            r.claimed_until_ms,
            r.sent_ms,
            r.failed_ms,
            r.last_error,
            r.sealed
        ])
    })
    .map(drop)
    .map_err(backend)
}

/// A page of outbox rows in id order, after `key`, for `db copy`.
pub(super) fn export_mail(
    c: &Connection,
    key: &str,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))
        .map_err(backend)?;
    let rows = s
        .query_map(params![key, limit], mail_row)
        .map_err(backend)?;
    rows.map(|r| r.map_err(backend).and_then(to_mail)).collect()
}

/// Runs a mark guarded by the claim: it must change exactly the one row.
fn mark(c: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<(), StoreError> {
    let n = c
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(p))
        .map_err(backend)?;
    if n == 0 {
        return Err(not_held());
    }
    Ok(())
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn enqueue_mail(&self, row: OutboxRow) -> Result<(), StoreError> {
        self.write(move |c| {
            if let Some(subject) = row.subject_id {
                let keyed = c
                    .prepare_cached("SELECT 1 FROM subject_keys WHERE subject_id = ?1 LIMIT 1")
                    .and_then(|mut s| s.query_row([id_text(subject)], |_| Ok(())).optional())
                    .map_err(backend)?;
                if keyed.is_none() {
                    return Err(StoreError::NotFound);
                }
                check_key(c, subject, sealed_version([&row.sealed])?)?;
            }
            insert_mail(c, &row, false).map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict("the mail id is taken".into()),
                e => e,
            })
        })
        .await
    }

    async fn claim_mail(
        &self,
        holder: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let holder = holder.to_owned();
        let limit = limit as i64;
        let mut rows = self
            .write(move |c| {
                let mut s = c
                    .prepare_cached(&format!(
                        "UPDATE outbox SET claimed_by = ?1, claimed_until_ms = ?2 + ?3, \
                         attempts = attempts + 1 \
                         WHERE id IN (SELECT id FROM outbox \
                         WHERE sent_ms IS NULL AND failed_ms IS NULL AND next_attempt_ms <= ?2 \
                         AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?2) \
                         ORDER BY next_attempt_ms, id LIMIT ?4) \
                         RETURNING {OUTBOX_COLUMNS}"
                    ))
                    .map_err(backend)?;
                let rows = s
                    .query_map(params![holder, now_ms, lease_ms, limit], mail_row)
                    .map_err(backend)?;
                rows.map(|r| r.map_err(backend).and_then(to_mail))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        rows.sort_by_key(|r| (r.next_attempt_ms, r.id));
        Ok(rows)
    }

    async fn mail_sent(&self, id: MailId, holder: &str, now_ms: i64) -> Result<(), StoreError> {
        let holder = holder.to_owned();
        // The message is not needed once it is handed over: its ciphertext goes.
        self.write(move |c| {
            mark(
                c,
                "UPDATE outbox SET sent_ms = ?3, claimed_by = NULL, claimed_until_ms = NULL, \
                 last_error = NULL, sealed = x'' \
                 WHERE id = ?1 AND claimed_by = ?2 AND sent_ms IS NULL AND failed_ms IS NULL",
                params![id_text(id), holder, now_ms],
            )
        })
        .await
    }

    async fn mail_retry(
        &self,
        id: MailId,
        holder: &str,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let (holder, error) = (holder.to_owned(), error.to_owned());
        self.write(move |c| {
            mark(
                c,
                "UPDATE outbox SET next_attempt_ms = ?3, last_error = ?4, claimed_by = NULL, \
                 claimed_until_ms = NULL \
                 WHERE id = ?1 AND claimed_by = ?2 AND sent_ms IS NULL AND failed_ms IS NULL",
                params![id_text(id), holder, next_attempt_ms, error],
            )
        })
        .await
    }

    async fn mail_failed(
        &self,
        id: MailId,
        holder: &str,
        now_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let (holder, error) = (holder.to_owned(), error.to_owned());
        self.write(move |c| {
            mark(
                c,
                "UPDATE outbox SET failed_ms = ?3, last_error = ?4, claimed_by = NULL, \
                 claimed_until_ms = NULL, sealed = x'' \
                 WHERE id = ?1 AND claimed_by = ?2 AND sent_ms IS NULL AND failed_ms IS NULL",
                params![id_text(id), holder, now_ms, error],
            )
        })
        .await
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT coalesce(sum(sent_ms IS NULL AND failed_ms IS NULL), 0), \
                 count(sent_ms), count(failed_ms) FROM outbox",
                [],
                |r| {
                    Ok(OutboxCounts {
                        queued: r.get::<_, i64>(0)? as u64,
                        sent: r.get::<_, i64>(1)? as u64,
                        failed: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .map_err(backend)
        })
        .await
    }
}
