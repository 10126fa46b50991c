//! Operators and their console sessions on SQLite: [`OperatorStore`] for [`SqliteStore`].

use async_trait::async_trait;
use custos_core::operator::{OperatorId, OperatorStatus, lockout_until};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::audit::queue;
use super::convert::{backend, id_text, parse_id};
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::operators::{AccountChange, Attempt, OperatorRow, OperatorSessionRow, OperatorStore};

const COLUMNS: &str = "o.id, o.email_digest, o.email_sealed, o.role, o.status, o.password_hash, \
                       o.totp_sealed, o.totp_last_step, o.setup_digest, o.setup_expires_ms, \
                       o.failed_logins, o.locked_until_ms, o.created_ms, o.changed_ms";

type Raw = (
    String,
    Vec<u8>,
    Vec<u8>,
    String,
    String,
    Option<String>,
    Option<Vec<u8>>,
    Option<i64>,
    Option<Vec<u8>>,
    Option<i64>,
    i64,
    Option<i64>,
    i64,
    i64,
);

/// The operator's columns from `at` on.
fn raw(r: &Row<'_>, at: usize) -> rusqlite::Result<Raw> {
    Ok((
        r.get(at)?,
        r.get(at + 1)?,
        r.get(at + 2)?,
        r.get(at + 3)?,
        r.get(at + 4)?,
        r.get(at + 5)?,
        r.get(at + 6)?,
        r.get(at + 7)?,
        r.get(at + 8)?,
        r.get(at + 9)?,
        r.get(at + 10)?,
        r.get(at + 11)?,
        r.get(at + 12)?,
        r.get(at + 13)?,
    ))
}

fn to_row(raw: Raw) -> Result<OperatorRow, StoreError> {
    Ok(OperatorRow {
        id: parse_id(raw.0)?,
        email_digest: raw.1,
        email_sealed: raw.2,
        role: raw.3,
        status: OperatorStatus::parse(&raw.4)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown operator status {:?}", raw.4)))?,
        password_hash: raw.5,
        totp_sealed: raw.6,
        totp_last_step: raw.7,
        setup_digest: raw.8,
        setup_expires_ms: raw.9,
        failed_logins: u32::try_from(raw.10).unwrap_or(u32::MAX),
        locked_until_ms: raw.11,
        created_ms: raw.12,
        changed_ms: raw.13,
    })
}

fn one_by(
    c: &Connection,
    column: &str,
    key: &dyn rusqlite::ToSql,
) -> Result<Option<OperatorRow>, StoreError> {
    c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM operators o WHERE o.{column} = ?1"
    ))
    .and_then(|mut s| s.query_row(params![key], |r| raw(r, 0)).optional())
    .map_err(backend)?
    .map(to_row)
    .transpose()
}

/// Inserts an operator's row; `conflict` is the statement's `ON CONFLICT` clause, if any.
fn insert_row(c: &Connection, o: &OperatorRow, conflict: &str) -> Result<(), StoreError> {
    c.prepare_cached(&format!(
        "INSERT INTO operators (id, email_digest, email_sealed, role, status, \
         password_hash, totp_sealed, totp_last_step, setup_digest, setup_expires_ms, \
         failed_logins, locked_until_ms, created_ms, changed_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) {conflict}"
    ))
    .and_then(|mut s| {
        s.execute(params![
            id_text(o.id),
            o.email_digest,
            o.email_sealed,
            o.role,
            o.status.as_str(),
            o.password_hash,
            o.totp_sealed,
            o.totp_last_step,
            o.setup_digest,
            o.setup_expires_ms,
            i64::from(o.failed_logins),
            o.locked_until_ms,
            o.created_ms,
            o.changed_ms
        ])
    })
    .map(drop)
    .map_err(backend)
}

#[async_trait]
impl OperatorStore for SqliteStore {
    async fn insert_operator(&self, o: OperatorRow, audit: QueuedAudit) -> Result<(), StoreError> {
        self.write(move |c| {
            insert_row(c, &o, "")?;
            queue(c, &audit)
        })
        .await
    }

    async fn operator(&self, id: OperatorId) -> Result<Option<OperatorRow>, StoreError> {
        self.read(move |c| one_by(c, "id", &id_text(id))).await
    }

    async fn operator_by_email(&self, digest: &[u8]) -> Result<Option<OperatorRow>, StoreError> {
        let d = digest.to_vec();
        self.read(move |c| one_by(c, "email_digest", &d)).await
    }

    async fn operator_by_setup(&self, digest: &[u8]) -> Result<Option<OperatorRow>, StoreError> {
        let d = digest.to_vec();
        self.read(move |c| one_by(c, "setup_digest", &d)).await
    }

    async fn operators(&self) -> Result<Vec<OperatorRow>, StoreError> {
        self.read(move |c| {
            let mut s = c
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM operators o ORDER BY o.created_ms, o.id"
                ))
                .map_err(backend)?;
            let rows = s
                .query_map([], |r| raw(r, 0))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            rows.into_iter().map(to_row).collect()
        })
        .await
    }

    async fn update_operator(
        &self,
        o: OperatorRow,
        was_changed_ms: i64,
        change: AccountChange,
        audit: Vec<QueuedAudit>,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            let id = id_text(o.id);
            let n = c
                .prepare_cached(
                    "UPDATE operators SET role = ?2, status = ?3, password_hash = ?4, \
                     totp_sealed = ?5, totp_last_step = ?6, setup_digest = ?7, \
                     setup_expires_ms = ?8, changed_ms = ?9 WHERE id = ?1 AND changed_ms = ?10",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        id,
                        o.role,
                        o.status.as_str(),
                        o.password_hash,
                        o.totp_sealed,
                        o.totp_last_step,
                        o.setup_digest,
                        o.setup_expires_ms,
                        o.changed_ms,
                        was_changed_ms
                    ])
                })
                .map_err(backend)?;
            if n == 0 {
                return Err(match one_by(c, "id", &id)? {
                    Some(_) => StoreError::Conflict("the account changed since it was read".into()),
                    None => StoreError::NotFound,
                });
            }
            if change.clear_lock {
                c.prepare_cached(
                    "UPDATE operators SET failed_logins = 0, locked_until_ms = NULL WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id]))
                .map_err(backend)?;
            }
            if let Some(codes) = change.recovery_codes {
                c.prepare_cached("DELETE FROM operator_recovery_codes WHERE operator_id = ?1")
                    .and_then(|mut s| s.execute(params![id]))
                    .map_err(backend)?;
                let mut ins = c
                    .prepare_cached(
                        "INSERT INTO operator_recovery_codes (operator_id, digest) VALUES (?1, ?2)",
                    )
                    .map_err(backend)?;
                for d in codes {
                    ins.execute(params![id, d]).map_err(backend)?;
                }
            }
            if let Some(at) = change.end_sessions_at {
                c.prepare_cached(
                    "UPDATE operator_sessions SET revoked_ms = ?2 \
                     WHERE operator_id = ?1 AND revoked_ms IS NULL",
                )
                .and_then(|mut s| s.execute(params![id, at]))
                .map_err(backend)?;
            }
            for a in &audit {
                queue(c, a)?;
            }
            Ok(())
        })
        .await
    }

    async fn begin_login(&self, id: OperatorId, at_ms: i64) -> Result<Option<Attempt>, StoreError> {
        self.write(move |c| {
            let id = id_text(id);
            let n: Option<i64> = c
                .prepare_cached(
                    "UPDATE operators SET failed_logins = failed_logins + 1 \
                     WHERE id = ?1 AND (locked_until_ms IS NULL OR locked_until_ms <= ?2) \
                     RETURNING failed_logins",
                )
                .and_then(|mut s| s.query_row(params![id, at_ms], |r| r.get(0)).optional())
                .map_err(backend)?;
            let Some(n) = n else { return Ok(None) };
            let attempts = u32::try_from(n).unwrap_or(u32::MAX);
            let locks_until_ms = lockout_until(attempts, at_ms);
            if let Some(until) = locks_until_ms {
                c.prepare_cached(
                    "UPDATE operators SET locked_until_ms = max(coalesce(locked_until_ms, 0), ?2) \
                     WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id, until]))
                .map_err(backend)?;
            }
            Ok(Some(Attempt {
                attempts,
                locks_until_ms,
            }))
        })
        .await
    }

    async fn use_totp_step(&self, id: OperatorId, step: i64) -> Result<bool, StoreError> {
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE operators SET totp_last_step = ?2 \
                 WHERE id = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
            )
            .and_then(|mut s| s.execute(params![id_text(id), step]))
            .map(|n| n == 1)
            .map_err(backend)
        })
        .await
    }

    async fn use_recovery_code(
        &self,
        id: OperatorId,
        digest: &[u8],
        at_ms: i64,
    ) -> Result<Option<u32>, StoreError> {
        let digest = digest.to_vec();
        self.write(move |c| {
            let id = id_text(id);
            let used = c
                .prepare_cached(
                    "UPDATE operator_recovery_codes SET used_ms = ?3 \
                     WHERE operator_id = ?1 AND digest = ?2 AND used_ms IS NULL",
                )
                .and_then(|mut s| s.execute(params![id, digest, at_ms]))
                .map_err(backend)?;
            if used == 0 {
                return Ok(None);
            }
            let left: i64 = c
                .prepare_cached(
                    "SELECT count(*) FROM operator_recovery_codes \
                     WHERE operator_id = ?1 AND used_ms IS NULL",
                )
                .and_then(|mut s| s.query_row(params![id], |r| r.get(0)))
                .map_err(backend)?;
            Ok(Some(u32::try_from(left).unwrap_or(0)))
        })
        .await
    }

    async fn start_operator_session(
        &self,
        s: OperatorSessionRow,
        audit: Vec<QueuedAudit>,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            let id = id_text(s.operator_id);
            c.prepare_cached(
                "UPDATE operators SET failed_logins = 0, locked_until_ms = NULL WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![id]))
            .map_err(backend)?;
            c.prepare_cached(
                "INSERT INTO operator_sessions (id, operator_id, created_ms, last_seen_ms, \
                 revoked_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    s.id,
                    id,
                    s.created_ms,
                    s.last_seen_ms,
                    s.revoked_ms
                ])
            })
            .map_err(backend)?;
            for a in &audit {
                queue(c, a)?;
            }
            Ok(())
        })
        .await
    }

    async fn operator_session(
        &self,
        id: &[u8],
    ) -> Result<Option<(OperatorSessionRow, OperatorRow)>, StoreError> {
        let id = id.to_vec();
        self.read(move |c| {
            let found = c
                .prepare_cached(&format!(
                    "SELECT s.id, s.created_ms, s.last_seen_ms, s.revoked_ms, {COLUMNS} \
                     FROM operator_sessions s JOIN operators o ON o.id = s.operator_id \
                     WHERE s.id = ?1"
                ))
                .and_then(|mut st| {
                    st.query_row(params![id], |r| {
                        Ok((
                            (
                                r.get::<_, Vec<u8>>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, i64>(2)?,
                                r.get::<_, Option<i64>>(3)?,
                            ),
                            raw(r, 4)?,
                        ))
                    })
                    .optional()
                })
                .map_err(backend)?;
            let Some(((sid, created_ms, last_seen_ms, revoked_ms), raw)) = found else {
                return Ok(None);
            };
            let o = to_row(raw)?;
            let session = OperatorSessionRow {
                id: sid,
                operator_id: o.id,
                created_ms,
                last_seen_ms,
                revoked_ms,
            };
            Ok(Some((session, o)))
        })
        .await
    }

    async fn touch_operator_session(&self, id: &[u8], at_ms: i64) -> Result<(), StoreError> {
        let id = id.to_vec();
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE operator_sessions SET last_seen_ms = max(last_seen_ms, ?2) \
                 WHERE id = ?1 AND revoked_ms IS NULL",
            )
            .and_then(|mut s| s.execute(params![id, at_ms]))
            .map(drop)
            .map_err(backend)
        })
        .await
    }

    async fn end_operator_session(
        &self,
        id: &[u8],
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let id = id.to_vec();
        self.write(move |c| {
            let ended = c
                .prepare_cached(
                    "UPDATE operator_sessions SET revoked_ms = ?2 \
                     WHERE id = ?1 AND revoked_ms IS NULL",
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

    async fn purge_operator_sessions(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write(move |c| {
            c.prepare_cached(
                "DELETE FROM operator_sessions WHERE last_seen_ms < ?1 OR revoked_ms < ?1",
            )
            .and_then(|mut s| s.execute(params![before_ms]))
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }
}

/// A page of operators after `key` (an id), with their recovery codes, for `db copy`.
pub(super) fn export_operators(
    c: &Connection,
    key: &str,
    limit: i64,
) -> Result<Vec<crate::copy::CopyRow>, StoreError> {
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM operators o WHERE o.id > ?1 ORDER BY o.id LIMIT ?2"
        ))
        .map_err(backend)?;
    let raws = s
        .query_map(params![key, limit], |r| raw(r, 0))
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    let mut codes = c
        .prepare_cached(
            "SELECT digest, used_ms FROM operator_recovery_codes WHERE operator_id = ?1 \
             ORDER BY digest",
        )
        .map_err(backend)?;
    raws.into_iter()
        .map(|raw| {
            let o = to_row(raw)?;
            let recovery = codes
                .query_map(params![id_text(o.id)], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(crate::copy::CopyRow::Operator(o, recovery))
        })
        .collect()
}

/// Writes a copied operator and their recovery codes, leaving any already present alone.
pub(super) fn import_operator(
    c: &Connection,
    o: &OperatorRow,
    recovery: &[(Vec<u8>, Option<i64>)],
) -> Result<(), StoreError> {
    insert_row(c, o, "ON CONFLICT DO NOTHING")?;
    let mut ins = c
        .prepare_cached(
            "INSERT INTO operator_recovery_codes (operator_id, digest, used_ms) \
             VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )
        .map_err(backend)?;
    for (digest, used) in recovery {
        ins.execute(params![id_text(o.id), digest, used])
            .map_err(backend)?;
    }
    Ok(())
}
