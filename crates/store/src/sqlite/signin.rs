//! Sign-in challenges and sessions on SQLite: [`SigninStore`] for [`SqliteStore`].

use async_trait::async_trait;
use custos_core::signin::{CODE_VALID_MS, Counts};
use rusqlite::{OptionalExtension, Row, params};

use super::SqliteStore;
use super::audit::queue;
use super::convert::{backend, id_text, parse_id};
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::signin::{ChallengeRow, SessionRow, SigninStore};

const CHALLENGE_COLUMNS: &str = "id, address_digest, client_digest, subject_id, code_digest, \
                                 created_ms, tries, last_try_ms, used_ms";

type RawChallenge = (
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Option<String>,
    Vec<u8>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

fn raw_challenge(r: &Row<'_>) -> rusqlite::Result<RawChallenge> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn to_challenge(raw: RawChallenge) -> Result<ChallengeRow, StoreError> {
    Ok(ChallengeRow {
        id: raw.0,
        address_digest: raw.1,
        client_digest: raw.2,
        subject_id: raw.3.map(parse_id).transpose()?,
        code_digest: raw.4,
        created_ms: raw.5,
        tries: u32::try_from(raw.6).unwrap_or(u32::MAX),
        last_try_ms: raw.7,
        used_ms: raw.8,
    })
}

type RawSession = (Vec<u8>, Option<String>, i64, i64, Option<i64>);

fn to_session(raw: RawSession) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id: raw.0,
        subject_id: raw
            .1
            .map(parse_id)
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("a session names no subject".into()))?,
        created_ms: raw.2,
        last_seen_ms: raw.3,
        revoked_ms: raw.4,
    })
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[async_trait]
impl SigninStore for SqliteStore {
    async fn signin_counts(
        &self,
        address_digest: &[u8],
        client_digest: &[u8],
        since_ms: i64,
        wrong_since_ms: i64,
    ) -> Result<Counts, StoreError> {
        let (address, client) = (address_digest.to_vec(), client_digest.to_vec());
        self.read(move |c| {
            let (codes_for_address, wrong): (i64, i64) = c
                .prepare_cached(&format!(
                    "SELECT count(*) FILTER (WHERE created_ms >= ?2), \
                     coalesce(sum(tries) FILTER (WHERE last_try_ms >= ?3), 0) \
                     FROM signin_challenges WHERE address_digest = ?1 \
                     AND created_ms >= min(?2, ?3) - {CODE_VALID_MS}"
                ))
                .and_then(|mut s| {
                    s.query_row(params![address, since_ms, wrong_since_ms], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                })
                .map_err(backend)?;
            let codes_for_client: i64 = c
                .prepare_cached(
                    "SELECT count(*) FROM signin_challenges \
                     WHERE client_digest = ?1 AND created_ms >= ?2",
                )
                .and_then(|mut s| s.query_row(params![client, since_ms], |r| r.get(0)))
                .map_err(backend)?;
            Ok(Counts {
                codes_for_address: count(codes_for_address),
                codes_for_client: count(codes_for_client),
                wrong_codes_for_address: count(wrong),
            })
        })
        .await
    }

    async fn insert_challenge(
        &self,
        ch: ChallengeRow,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO signin_challenges ({CHALLENGE_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    ch.id,
                    ch.address_digest,
                    ch.client_digest,
                    ch.subject_id.map(id_text),
                    ch.code_digest,
                    ch.created_ms,
                    i64::from(ch.tries),
                    ch.last_try_ms,
                    ch.used_ms
                ])
            })
            .map_err(backend)?;
            queue(c, &audit)
        })
        .await
    }

    async fn challenge(&self, id: &[u8]) -> Result<Option<ChallengeRow>, StoreError> {
        let id = id.to_vec();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {CHALLENGE_COLUMNS} FROM signin_challenges WHERE id = ?1"
            ))
            .and_then(|mut s| s.query_row(params![id], raw_challenge).optional())
            .map_err(backend)?
            .map(to_challenge)
            .transpose()
        })
        .await
    }

    async fn count_try(&self, id: &[u8], at_ms: i64, since_ms: i64) -> Result<u32, StoreError> {
        let id = id.to_vec();
        self.write(move |c| {
            let address: Option<Vec<u8>> = c
                .prepare_cached(
                    "UPDATE signin_challenges SET tries = tries + 1, last_try_ms = ?2 \
                     WHERE id = ?1 RETURNING address_digest",
                )
                .and_then(|mut s| s.query_row(params![id, at_ms], |r| r.get(0)).optional())
                .map_err(backend)?;
            let address = address.ok_or(StoreError::NotFound)?;
            let tries: i64 = c
                .prepare_cached(
                    "SELECT coalesce(sum(tries), 0) FROM signin_challenges \
                     WHERE address_digest = ?1 AND last_try_ms >= ?2",
                )
                .and_then(|mut s| s.query_row(params![address, since_ms], |r| r.get(0)))
                .map_err(backend)?;
            Ok(count(tries))
        })
        .await
    }

    async fn start_session(
        &self,
        challenge_id: &[u8],
        session: SessionRow,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let challenge_id = challenge_id.to_vec();
        self.write(move |c| {
            let used = c
                .prepare_cached(
                    "UPDATE signin_challenges SET used_ms = ?2, tries = max(tries - 1, 0) \
                     WHERE id = ?1 AND used_ms IS NULL",
                )
                .and_then(|mut s| s.execute(params![challenge_id, session.created_ms]))
                .map_err(backend)?;
            if used == 0 {
                return Err(StoreError::Conflict("the code was used already".into()));
            }
            c.prepare_cached(
                "INSERT INTO sessions (id, subject_id, created_ms, last_seen_ms, revoked_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    session.id,
                    id_text(session.subject_id),
                    session.created_ms,
                    session.last_seen_ms,
                    session.revoked_ms
                ])
            })
            .map_err(backend)?;
            queue(c, &audit)
        })
        .await
    }

    async fn session(&self, id: &[u8]) -> Result<Option<SessionRow>, StoreError> {
        let id = id.to_vec();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT id, subject_id, created_ms, last_seen_ms, revoked_ms \
                 FROM sessions WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row(params![id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()
            })
            .map_err(backend)?
            .map(to_session)
            .transpose()
        })
        .await
    }

    async fn touch_session(&self, id: &[u8], at_ms: i64) -> Result<(), StoreError> {
        let id = id.to_vec();
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE sessions SET last_seen_ms = max(last_seen_ms, ?2) \
                 WHERE id = ?1 AND revoked_ms IS NULL",
            )
            .and_then(|mut s| s.execute(params![id, at_ms]))
            .map(drop)
            .map_err(backend)
        })
        .await
    }

    async fn end_session(
        &self,
        id: &[u8],
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let id = id.to_vec();
        self.write(move |c| {
            let ended = c
                .prepare_cached(
                    "UPDATE sessions SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
                )
                .and_then(|mut s| s.execute(params![id, at_ms]))
                .map_err(backend)?;
            if ended > 0 {
                queue(c, &audit)?;
            }
            Ok(())
        })
        .await
    }

    async fn purge_signins(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write(move |c| {
            let a = c
                .prepare_cached("DELETE FROM signin_challenges WHERE created_ms < ?1")
                .and_then(|mut s| s.execute(params![before_ms]))
                .map_err(backend)?;
            let b = c
                .prepare_cached("DELETE FROM sessions WHERE last_seen_ms < ?1 OR revoked_ms < ?1")
                .and_then(|mut s| s.execute(params![before_ms]))
                .map_err(backend)?;
            Ok((a + b) as u64)
        })
        .await
    }
}
