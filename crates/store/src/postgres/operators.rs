//! Operators and their console sessions on PostgreSQL: [`OperatorStore`] for
//! [`PostgresStore`].

use async_trait::async_trait;
use custos_core::operator::{OperatorId, OperatorStatus, lockout_until};
use tokio_postgres::Row;
use uuid::Uuid;

use super::PostgresStore;
use super::audit::queue;
use super::convert::backend;
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::operators::{AccountChange, Attempt, OperatorRow, OperatorSessionRow, OperatorStore};

const COLUMNS: &str = "o.id, o.email_digest, o.email_sealed, o.role, o.status, o.password_hash, \
                       o.totp_sealed, o.totp_last_step, o.setup_digest, o.setup_expires_ms, \
                       o.failed_logins, o.locked_until_ms, o.created_ms, o.changed_ms";

/// The operator's columns from `at` on.
fn to_row(r: &Row, at: usize) -> Result<OperatorRow, StoreError> {
    let status: String = r.get(at + 4);
    Ok(OperatorRow {
        id: OperatorId::from(r.get::<_, Uuid>(at)),
        email_digest: r.get(at + 1),
        email_sealed: r.get(at + 2),
        role: r.get(at + 3),
        status: OperatorStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown operator status {status:?}")))?,
        password_hash: r.get(at + 5),
        totp_sealed: r.get(at + 6),
        totp_last_step: r.get(at + 7),
        setup_digest: r.get(at + 8),
        setup_expires_ms: r.get(at + 9),
        failed_logins: u32::try_from(r.get::<_, i64>(at + 10)).unwrap_or(u32::MAX),
        locked_until_ms: r.get(at + 11),
        created_ms: r.get(at + 12),
        changed_ms: r.get(at + 13),
    })
}

/// Inserts an operator's row; `conflict` is the statement's `ON CONFLICT` clause, if any.
async fn insert_row(tx: &super::Tx<'_>, o: &OperatorRow, conflict: &str) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO operators (id, email_digest, email_sealed, role, status, \
             password_hash, totp_sealed, totp_last_step, setup_digest, setup_expires_ms, \
             failed_logins, locked_until_ms, created_ms, changed_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) {conflict}"
        ),
        &[
            &o.id.as_uuid(),
            &o.email_digest,
            &o.email_sealed,
            &o.role,
            &o.status.as_str(),
            &o.password_hash,
            &o.totp_sealed,
            &o.totp_last_step,
            &o.setup_digest,
            &o.setup_expires_ms,
            &i64::from(o.failed_logins),
            &o.locked_until_ms,
            &o.created_ms,
            &o.changed_ms,
        ],
    )
    .await
    .map(drop)
    .map_err(backend)
}

impl PostgresStore {
    async fn operator_where(
        &self,
        column: &str,
        key: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<Option<OperatorRow>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {COLUMNS} FROM operators o WHERE o.{column} = $1"),
                &[key],
            )
            .await?;
        rows.first().map(|r| to_row(r, 0)).transpose()
    }
}

#[async_trait]
impl OperatorStore for PostgresStore {
    async fn insert_operator(&self, o: OperatorRow, audit: QueuedAudit) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        insert_row(&tx, &o, "").await?;
        queue(&tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn operator(&self, id: OperatorId) -> Result<Option<OperatorRow>, StoreError> {
        self.operator_where("id", &id.as_uuid()).await
    }

    async fn operator_by_email(&self, digest: &[u8]) -> Result<Option<OperatorRow>, StoreError> {
        self.operator_where("email_digest", &digest).await
    }

    async fn operator_by_setup(&self, digest: &[u8]) -> Result<Option<OperatorRow>, StoreError> {
        self.operator_where("setup_digest", &digest).await
    }

    async fn operators(&self) -> Result<Vec<OperatorRow>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {COLUMNS} FROM operators o ORDER BY o.created_ms, o.id"),
                &[],
            )
            .await?;
        rows.iter().map(|r| to_row(r, 0)).collect()
    }

    async fn update_operator(
        &self,
        o: OperatorRow,
        was_changed_ms: i64,
        change: AccountChange,
        audit: Vec<QueuedAudit>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let id = o.id.as_uuid();
        let n = tx
            .execute(
                "UPDATE operators SET role = $2, status = $3, password_hash = $4, \
                 totp_sealed = $5, totp_last_step = $6, setup_digest = $7, \
                 setup_expires_ms = $8, changed_ms = $9 WHERE id = $1 AND changed_ms = $10",
                &[
                    &id,
                    &o.role,
                    &o.status.as_str(),
                    &o.password_hash,
                    &o.totp_sealed,
                    &o.totp_last_step,
                    &o.setup_digest,
                    &o.setup_expires_ms,
                    &o.changed_ms,
                    &was_changed_ms,
                ],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            let exists = tx
                .query_opt("SELECT 1 FROM operators WHERE id = $1", &[&id])
                .await
                .map_err(backend)?
                .is_some();
            return Err(if exists {
                StoreError::Conflict("the account changed since it was read".into())
            } else {
                StoreError::NotFound
            });
        }
        if change.clear_lock {
            tx.execute(
                "UPDATE operators SET failed_logins = 0, locked_until_ms = NULL WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(backend)?;
        }
        if let Some(codes) = change.recovery_codes {
            tx.execute(
                "DELETE FROM operator_recovery_codes WHERE operator_id = $1",
                &[&id],
            )
            .await
            .map_err(backend)?;
            for d in codes {
                tx.execute(
                    "INSERT INTO operator_recovery_codes (operator_id, digest) VALUES ($1, $2)",
                    &[&id, &d],
                )
                .await
                .map_err(backend)?;
            }
        }
        if let Some(at) = change.end_sessions_at {
            tx.execute(
                "UPDATE operator_sessions SET revoked_ms = $2 \
                 WHERE operator_id = $1 AND revoked_ms IS NULL",
                &[&id, &at],
            )
            .await
            .map_err(backend)?;
        }
        for a in &audit {
            queue(&tx, a).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn begin_login(&self, id: OperatorId, at_ms: i64) -> Result<Option<Attempt>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let id = id.as_uuid();
        // The update takes the row's lock until the commit: attempts at once are counted one
        // after another, and each sees the lock the one before it placed.
        let Some(row) = tx
            .query_opt(
                "UPDATE operators SET failed_logins = failed_logins + 1 \
                 WHERE id = $1 AND (locked_until_ms IS NULL OR locked_until_ms <= $2) \
                 RETURNING failed_logins",
                &[&id, &at_ms],
            )
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let attempts = u32::try_from(row.get::<_, i64>(0)).unwrap_or(u32::MAX);
        let locks_until_ms = lockout_until(attempts, at_ms);
        if let Some(until) = locks_until_ms {
            tx.execute(
                "UPDATE operators SET locked_until_ms = greatest(locked_until_ms, $2) \
                 WHERE id = $1",
                &[&id, &until],
            )
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(Some(Attempt {
            attempts,
            locks_until_ms,
        }))
    }

    async fn use_totp_step(&self, id: OperatorId, step: i64) -> Result<bool, StoreError> {
        // One conditional update: of two servers given the same code at once, the second
        // waits on the row lock, then finds the step taken.
        let rows = self
            .query(
                "UPDATE operators SET totp_last_step = $2 \
                 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING id",
                &[&id.as_uuid(), &step],
            )
            .await?;
        Ok(rows.len() == 1)
    }

    async fn use_recovery_code(
        &self,
        id: OperatorId,
        digest: &[u8],
        at_ms: i64,
    ) -> Result<Option<u32>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let id = id.as_uuid();
        let used = tx
            .execute(
                "UPDATE operator_recovery_codes SET used_ms = $3 \
                 WHERE operator_id = $1 AND digest = $2 AND used_ms IS NULL",
                &[&id, &digest, &at_ms],
            )
            .await
            .map_err(backend)?;
        if used == 0 {
            return Ok(None);
        }
        let left: i64 = tx
            .query_one(
                "SELECT count(*) FROM operator_recovery_codes \
                 WHERE operator_id = $1 AND used_ms IS NULL",
                &[&id],
            )
            .await
            .map_err(backend)?
            .get(0);
        tx.commit().await.map_err(backend)?;
        Ok(Some(u32::try_from(left).unwrap_or(0)))
    }

    async fn start_operator_session(
        &self,
        s: OperatorSessionRow,
        audit: Vec<QueuedAudit>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let id = s.operator_id.as_uuid();
        tx.execute(
            "UPDATE operators SET failed_logins = 0, locked_until_ms = NULL WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(backend)?;
        tx.execute(
            "INSERT INTO operator_sessions (id, operator_id, created_ms, last_seen_ms, \
             revoked_ms) VALUES ($1, $2, $3, $4, $5)",
            &[&s.id, &id, &s.created_ms, &s.last_seen_ms, &s.revoked_ms],
        )
        .await
        .map_err(backend)?;
        for a in &audit {
            queue(&tx, a).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn operator_session(
        &self,
        id: &[u8],
    ) -> Result<Option<(OperatorSessionRow, OperatorRow)>, StoreError> {
        let rows = self
            .query(
                &format!(
                    "SELECT s.id, s.created_ms, s.last_seen_ms, s.revoked_ms, {COLUMNS} \
                     FROM operator_sessions s JOIN operators o ON o.id = s.operator_id \
                     WHERE s.id = $1"
                ),
                &[&id],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let o = to_row(r, 4)?;
        let session = OperatorSessionRow {
            id: r.get(0),
            operator_id: o.id,
            created_ms: r.get(1),
            last_seen_ms: r.get(2),
            revoked_ms: r.get(3),
        };
        Ok(Some((session, o)))
    }

    async fn touch_operator_session(&self, id: &[u8], at_ms: i64) -> Result<(), StoreError> {
        self.query(
            "UPDATE operator_sessions SET last_seen_ms = greatest(last_seen_ms, $2) \
             WHERE id = $1 AND revoked_ms IS NULL RETURNING id",
            &[&id, &at_ms],
        )
        .await
        .map(drop)
    }

    async fn end_operator_session(
        &self,
        id: &[u8],
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let ended = tx
            .execute(
                "UPDATE operator_sessions SET revoked_ms = $2 \
                 WHERE id = $1 AND revoked_ms IS NULL",
                &[&id, &at_ms],
            )
            .await
            .map_err(backend)?;
        if ended > 0 {
            queue(&tx, &audit).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn purge_operator_sessions(&self, before_ms: i64) -> Result<u64, StoreError> {
        let rows = self
            .query(
                "DELETE FROM operator_sessions WHERE last_seen_ms < $1 OR revoked_ms < $1 \
                 RETURNING id",
                &[&before_ms],
            )
            .await?;
        Ok(rows.len() as u64)
    }
}

/// A page of operators after the id `after` (the nil UUID for the first page), with their
/// recovery codes, for `db copy`.
pub(super) async fn export_operators(
    store: &PostgresStore,
    after: Uuid,
    limit: i64,
) -> Result<Vec<crate::copy::CopyRow>, StoreError> {
    let rows = store
        .query(
            &format!("SELECT {COLUMNS} FROM operators o WHERE o.id > $1 ORDER BY o.id LIMIT $2"),
            &[&after, &limit],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let o = to_row(r, 0)?;
        let codes = store
            .query(
                "SELECT digest, used_ms FROM operator_recovery_codes WHERE operator_id = $1 \
                 ORDER BY digest",
                &[&o.id.as_uuid()],
            )
            .await?
            .iter()
            .map(|c| (c.get(0), c.get(1)))
            .collect();
        out.push(crate::copy::CopyRow::Operator(o, codes));
    }
    Ok(out)
}

/// Writes a copied operator and their recovery codes, leaving any already present alone.
pub(super) async fn import_operator(
    tx: &super::Tx<'_>,
    o: &OperatorRow,
    recovery: &[(Vec<u8>, Option<i64>)],
) -> Result<(), StoreError> {
    insert_row(tx, o, "ON CONFLICT DO NOTHING").await?;
    for (digest, used) in recovery {
        tx.execute(
            "INSERT INTO operator_recovery_codes (operator_id, digest, used_ms) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&o.id.as_uuid(), digest, used],
        )
        .await
        .map_err(backend)?;
    }
    Ok(())
}
