//! Sign-in challenges and sessions on PostgreSQL: [`SigninStore`] for [`PostgresStore`].

use async_trait::async_trait;
use custos_core::ids::SubjectId;
use custos_core::signin::{CODE_VALID_MS, Counts};
use tokio_postgres::Row;
use uuid::Uuid;

use super::PostgresStore;
use super::audit::queue;
use super::convert::backend;
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::signin::{ChallengeRow, SessionRow, SigninStore};

const CHALLENGE_COLUMNS: &str = "id, address_digest, client_digest, subject_id, code_digest, \
                                 created_ms, tries, last_try_ms, used_ms";

fn to_challenge(r: &Row) -> ChallengeRow {
    ChallengeRow {
        id: r.get(0),
        address_digest: r.get(1),
        client_digest: r.get(2),
        subject_id: r.get::<_, Option<Uuid>>(3).map(SubjectId::from),
        code_digest: r.get(4),
        created_ms: r.get(5),
        tries: count(r.get(6)),
        last_try_ms: r.get(7),
        used_ms: r.get(8),
    }
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[async_trait]
impl SigninStore for PostgresStore {
    async fn signin_counts(
        &self,
        address_digest: &[u8],
        client_digest: &[u8],
        since_ms: i64,
        wrong_since_ms: i64,
    ) -> Result<Counts, StoreError> {
        let rows = self
            .query(
                &format!(
                    "SELECT \
                 (SELECT count(*) FROM signin_challenges \
                  WHERE address_digest = $1 AND created_ms >= $3)::bigint, \
                 (SELECT count(*) FROM signin_challenges \
                  WHERE client_digest = $2 AND created_ms >= $3)::bigint, \
                 (SELECT coalesce(sum(tries), 0) FROM signin_challenges \
                  WHERE address_digest = $1 AND created_ms >= $4::bigint - {CODE_VALID_MS} \
                  AND last_try_ms >= $4)::bigint"
                ),
                &[&address_digest, &client_digest, &since_ms, &wrong_since_ms],
            )
            .await?;
        let r = rows
            .first()
            .ok_or_else(|| StoreError::Backend("no counts".into()))?;
        Ok(Counts {
            codes_for_address: count(r.get(0)),
            codes_for_client: count(r.get(1)),
            wrong_codes_for_address: count(r.get(2)),
        })
    }

    async fn insert_challenge(
        &self,
        ch: ChallengeRow,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        self.query(
            &format!(
                "WITH c AS (INSERT INTO signin_challenges ({CHALLENGE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id) \
                 INSERT INTO audit_queue (subject_id, entry) SELECT $10, $11 FROM c \
                 RETURNING queue_id"
            ),
            &[
                &ch.id,
                &ch.address_digest,
                &ch.client_digest,
                &ch.subject_id.map(|s| s.as_uuid()),
                &ch.code_digest,
                &ch.created_ms,
                &i64::from(ch.tries),
                &ch.last_try_ms,
                &ch.used_ms,
                &audit.subject_id.map(|s| s.as_uuid()),
                &audit.entry,
            ],
        )
        .await
        .map(drop)
    }

    async fn challenge(&self, id: &[u8]) -> Result<Option<ChallengeRow>, StoreError> {
        Ok(self
            .query(
                &format!("SELECT {CHALLENGE_COLUMNS} FROM signin_challenges WHERE id = $1"),
                &[&id],
            )
            .await?
            .first()
            .map(to_challenge))
    }

    async fn count_try(&self, id: &[u8], at_ms: i64, since_ms: i64) -> Result<u32, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let row = tx
            .query_opt(
                "UPDATE signin_challenges SET tries = tries + 1, last_try_ms = $2 \
                 WHERE id = $1 RETURNING address_digest",
                &[&id, &at_ms],
            )
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound)?;
        let address: Vec<u8> = row.get(0);
        // Tries at the same address wait on each other's row lock only when they are at the
        // same challenge; across challenges, each commits its own count before it reads, so
        // the sum each sees counts every try committed before it.
        let tries: i64 = tx
            .query_one(
                "SELECT coalesce(sum(tries), 0)::bigint FROM signin_challenges \
                 WHERE address_digest = $1 AND last_try_ms >= $2",
                &[&address, &since_ms],
            )
            .await
            .map_err(backend)?
            .get(0);
        tx.commit().await.map_err(backend)?;
        Ok(count(tries))
    }

    async fn start_session(
        &self,
        challenge_id: &[u8],
        session: SessionRow,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The update takes the challenge's row lock: of two servers given the same code at
        // once, the second waits, then finds it used.
        let used = tx
            .execute(
                "UPDATE signin_challenges SET used_ms = $2, tries = greatest(tries - 1, 0) \
                 WHERE id = $1 AND used_ms IS NULL",
                &[&challenge_id, &session.created_ms],
            )
            .await
            .map_err(backend)?;
        if used == 0 {
            return Err(StoreError::Conflict("the code was used already".into()));
        }
        tx.execute(
            "INSERT INTO sessions (id, subject_id, created_ms, last_seen_ms, revoked_ms) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &session.id,
                &session.subject_id.as_uuid(),
                &session.created_ms,
                &session.last_seen_ms,
                &session.revoked_ms,
            ],
        )
        .await
        .map_err(backend)?;
        queue(&tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn session(&self, id: &[u8]) -> Result<Option<SessionRow>, StoreError> {
        let rows = self
            .query(
                "SELECT id, subject_id, created_ms, last_seen_ms, revoked_ms \
                 FROM sessions WHERE id = $1",
                &[&id],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let subject: Option<Uuid> = r.get(1);
        Ok(Some(SessionRow {
            id: r.get(0),
            subject_id: SubjectId::from(
                subject.ok_or_else(|| StoreError::Corrupt("a session names no subject".into()))?,
            ),
            created_ms: r.get(2),
            last_seen_ms: r.get(3),
            revoked_ms: r.get(4),
        }))
    }

    async fn touch_session(&self, id: &[u8], at_ms: i64) -> Result<(), StoreError> {
        self.query(
            "UPDATE sessions SET last_seen_ms = greatest(last_seen_ms, $2) \
             WHERE id = $1 AND revoked_ms IS NULL",
            &[&id, &at_ms],
        )
        .await
        .map(drop)
    }

    async fn end_session(
        &self,
        id: &[u8],
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        self.query(
            "WITH u AS (UPDATE sessions SET revoked_ms = $2 \
             WHERE id = $1 AND revoked_ms IS NULL RETURNING id) \
             INSERT INTO audit_queue (subject_id, entry) SELECT $3, $4 FROM u \
             RETURNING queue_id",
            &[
                &id,
                &at_ms,
                &audit.subject_id.map(|s| s.as_uuid()),
                &audit.entry,
            ],
        )
        .await
        .map(drop)
    }

    async fn purge_signins(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let a = tx
            .execute(
                "DELETE FROM signin_challenges WHERE created_ms < $1",
                &[&before_ms],
            )
            .await
            .map_err(backend)?;
        let b = tx
            .execute(
                "DELETE FROM sessions WHERE last_seen_ms < $1",
                &[&before_ms],
            )
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(a + b)
    }
}
