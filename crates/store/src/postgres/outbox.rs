//! The outbox on PostgreSQL: [`OutboxStore`] for [`PostgresStore`], and the rows `db copy`
//! moves. A claim locks the rows it takes with `FOR UPDATE SKIP LOCKED`, so several servers
//! on one database claim side by side and never the same row at once.

use async_trait::async_trait;
use custos_core::ids::{MailId, SubjectId};
use tokio_postgres::Row;
use uuid::Uuid;

use super::convert::backend;
use super::{PostgresStore, Tx};
use crate::error::StoreError;
use crate::outbox::{OUTBOX_COLUMNS, OutboxCounts, OutboxRow, OutboxStore, not_held};
use crate::rekey::sealed_version;

fn to_mail(r: &Row) -> OutboxRow {
    OutboxRow {
        id: MailId::from(r.get::<_, Uuid>(0)),
        subject_id: r.get::<_, Option<Uuid>>(1).map(SubjectId::from),
        created_ms: r.get(2),
        next_attempt_ms: r.get(3),
        attempts: r.get(4),
        expires_ms: r.get(5),
        claimed_by: r.get(6),
        claimed_until_ms: r.get(7),
        sent_ms: r.get(8),
        failed_ms: r.get(9),
        last_error: r.get(10),
        sealed: r.get(11),
    }
}

/// A page of outbox rows in id order, after `id`, for `db copy`.
pub(super) async fn export_mail(
    store: &PostgresStore,
    id: Uuid,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(store
        .query(
            &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id > $1 ORDER BY id LIMIT $2"),
            &[&id, &limit],
        )
        .await?
        .iter()
        .map(to_mail)
        .collect())
}

/// A copied outbox row, unless its id is present.
pub(super) async fn import_mail(tx: &Tx<'_>, r: &OutboxRow) -> Result<(), StoreError> {
    let st = tx
        .prepare_cached(&format!(
            "INSERT INTO outbox ({OUTBOX_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING"
        ))
        .await
        .map_err(backend)?;
    tx.execute(
        &st,
        &[
            &r.id.as_uuid(),
            &r.subject_id.map(|s| s.as_uuid()),
            &r.created_ms,
            &r.next_attempt_ms,
            &r.attempts,
            &r.expires_ms,
            &r.claimed_by,
            &r.claimed_until_ms,
            &r.sent_ms,
            &r.failed_ms,
            &r.last_error,
            &r.sealed,
        ],
    )
    .await
    .map(drop)
    .map_err(backend)
}

impl PostgresStore {
    /// Runs a mark guarded by the claim: it must change exactly the one row.
    async fn mark(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<(), StoreError> {
        if self.query(sql, params).await?.is_empty() {
            return Err(not_held());
        }
        Ok(())
    }
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn enqueue_mail(&self, row: OutboxRow) -> Result<(), StoreError> {
        let sealed = match row.subject_id {
            Some(_) => sealed_version([&row.sealed])?,
            None => None,
        };
        let rows = self
            .query_guarded(
                row.subject_id
                    .unwrap_or_else(|| SubjectId::from(uuid::Uuid::nil())),
                sealed,
                &format!(
                    "INSERT INTO outbox ({OUTBOX_COLUMNS}) \
                     SELECT $1, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
                     WHERE $2::uuid IS NULL \
                     OR EXISTS (SELECT 1 FROM subject_keys WHERE subject_id = $2::uuid) \
                     RETURNING id"
                ),
                &[
                    &row.id.as_uuid(),
                    &row.subject_id.map(|s| s.as_uuid()),
                    &row.created_ms,
                    &row.next_attempt_ms,
                    &row.attempts,
                    &row.expires_ms,
                    &row.claimed_by,
                    &row.claimed_until_ms,
                    &row.sent_ms,
                    &row.failed_ms,
                    &row.last_error,
                    &row.sealed,
                ],
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict("the mail id is taken".into()),
                e => e,
            })?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn claim_mail(
        &self,
        holder: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let limit = limit as i64;
        let mut rows: Vec<OutboxRow> = self
            .query(
                &format!(
                    "WITH due AS (SELECT id FROM outbox \
                     WHERE sent_ms IS NULL AND failed_ms IS NULL AND next_attempt_ms <= $2 \
                     AND (claimed_until_ms IS NULL OR claimed_until_ms <= $2) \
                     ORDER BY next_attempt_ms, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                     UPDATE outbox SET claimed_by = $1, claimed_until_ms = $2 + $3, \
                     attempts = attempts + 1 WHERE id IN (SELECT id FROM due) \
                     RETURNING {OUTBOX_COLUMNS}"
                ),
                &[&holder, &now_ms, &lease_ms, &limit],
            )
            .await?
            .iter()
            .map(to_mail)
            .collect();
        rows.sort_by_key(|r| (r.next_attempt_ms, r.id));
        Ok(rows)
    }

    async fn mail_sent(&self, id: MailId, holder: &str, now_ms: i64) -> Result<(), StoreError> {
        // The message is not needed once it is handed over: its ciphertext goes.
        self.mark(
            "UPDATE outbox SET sent_ms = $3, claimed_by = NULL, claimed_until_ms = NULL, \
             last_error = NULL, sealed = ''::bytea \
             WHERE id = $1 AND claimed_by = $2 AND sent_ms IS NULL AND failed_ms IS NULL \
             RETURNING id",
            &[&id.as_uuid(), &holder, &now_ms],
        )
        .await
    }

    async fn mail_retry(
        &self,
        id: MailId,
        holder: &str,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.mark(
            "UPDATE outbox SET next_attempt_ms = $3, last_error = $4, claimed_by = NULL, \
             claimed_until_ms = NULL \
             WHERE id = $1 AND claimed_by = $2 AND sent_ms IS NULL AND failed_ms IS NULL \
             RETURNING id",
            &[&id.as_uuid(), &holder, &next_attempt_ms, &error],
        )
        .await
    }

    async fn mail_failed(
        &self,
        id: MailId,
        holder: &str,
        now_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.mark(
            "UPDATE outbox SET failed_ms = $3, last_error = $4, claimed_by = NULL, \
             claimed_until_ms = NULL, sealed = ''::bytea \
             WHERE id = $1 AND claimed_by = $2 AND sent_ms IS NULL AND failed_ms IS NULL \
             RETURNING id",
            &[&id.as_uuid(), &holder, &now_ms, &error],
        )
        .await
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let rows = self
            .query(
                "SELECT count(*) FILTER (WHERE sent_ms IS NULL AND failed_ms IS NULL), \
                 count(sent_ms), count(failed_ms) FROM outbox",
                &[],
            )
            .await?;
        let r = rows
            .first()
            .ok_or_else(|| StoreError::Backend("a count returned no row".into()))?;
        Ok(OutboxCounts {
            queued: r.get::<_, i64>(0) as u64,
            sent: r.get::<_, i64>(1) as u64,
            failed: r.get::<_, i64>(2) as u64,
        })
    }
}
