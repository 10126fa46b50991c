//! Key rotation on SQLite: [`RotationStore`] for [`SqliteStore`].

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::audit::queue;
use super::convert::{backend, id_text, parse_id};
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::rotation::{
    KeyOwner, Rewrap, RootVersionRow, RotationKind, RotationRow, RotationStore, WrappedKey,
    still_wrapping,
};

const ROTATION_COLUMNS: &str = "id, kind, target, started_ms, total, done, finished_ms";

fn rotation(row: &Row<'_>) -> rusqlite::Result<RotationRow> {
    Ok(RotationRow {
        id: row.get(0)?,
        kind: RotationKind::from_name(&row.get::<_, String>(1)?).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(1, "kind".into(), rusqlite::types::Type::Text)
        })?,
        target: row.get(2)?,
        started_ms: row.get(3)?,
        total: row.get::<_, i64>(4)? as u64,
        done: row.get::<_, i64>(5)? as u64,
        finished_ms: row.get(6)?,
    })
}

fn wrapped_by(c: &Connection, version: u32) -> Result<u64, StoreError> {
    c.query_row(
        "SELECT (SELECT COUNT(*) FROM subject_keys WHERE root_version = ?1) \
              + (SELECT COUNT(*) FROM vault_keys WHERE root_version = ?1)",
        [version],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .map_err(backend)
}

#[async_trait]
impl RotationStore for SqliteStore {
    async fn root_versions(&self) -> Result<Vec<RootVersionRow>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare("SELECT version, created_ms, retired_ms FROM root_keys ORDER BY version")
                .map_err(backend)?;
            st.query_map([], |r| {
                Ok(RootVersionRow {
                    version: r.get(0)?,
                    created_ms: r.get(1)?,
                    retired_ms: r.get(2)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(backend)
        })
        .await
    }

    async fn add_root_version(
        &self,
        version: u32,
        created_ms: i64,
        audit: QueuedAudit,
    ) -> Result<bool, StoreError> {
        self.write(move |c| {
            let added = c
                .execute(
                    "INSERT INTO root_keys (version, created_ms) VALUES (?1, ?2) \
                     ON CONFLICT DO NOTHING",
                    params![version, created_ms],
                )
                .map_err(backend)?;
            if added == 1 {
                queue(c, &audit)?;
            }
            Ok(added == 1)
        })
        .await
    }

    async fn wrapped_per_version(&self) -> Result<Vec<(u32, u64)>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT v, SUM(n) FROM ( \
                       SELECT root_version AS v, COUNT(*) AS n FROM subject_keys GROUP BY root_version \
                       UNION ALL \
                       SELECT root_version, COUNT(*) FROM vault_keys GROUP BY root_version) \
                     GROUP BY v ORDER BY v",
                )
                .map_err(backend)?;
            st.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
                .and_then(|rows| rows.collect())
                .map_err(backend)
        })
        .await
    }

    async fn wrapped_below(
        &self,
        version: u32,
        limit: usize,
    ) -> Result<Vec<WrappedKey>, StoreError> {
        self.read(move |c| {
            let mut out = Vec::new();
            let mut st = c
                .prepare_cached(
                    "SELECT name, wrapped FROM vault_keys WHERE root_version < ?1 LIMIT ?2",
                )
                .map_err(backend)?;
            let named = st
                .query_map(params![version, limit as i64], |r| {
                    Ok(WrappedKey {
                        owner: KeyOwner::Named(r.get(0)?),
                        wrapped: r.get(1)?,
                    })
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(backend)?;
            out.extend(named);
            let mut st = c
                .prepare_cached(
                    "SELECT subject_id, version, wrapped FROM subject_keys \
                     WHERE root_version < ?1 LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![version, (limit - out.len()) as i64], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(backend)?;
            for (id, v, wrapped) in rows {
                out.push(WrappedKey {
                    owner: KeyOwner::Subject {
                        id: parse_id(id)?,
                        version: v,
                    },
                    wrapped,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn rewrap(&self, rotation: i64, batch: Vec<Rewrap>) -> Result<u64, StoreError> {
        self.write(move |c| {
            let mut done = 0u64;
            for r in &batch {
                done += match &r.old.owner {
                    KeyOwner::Subject { id, version } => c
                        .prepare_cached(
                            "UPDATE subject_keys SET wrapped = ?1, root_version = ?2 \
                             WHERE subject_id = ?3 AND version = ?4 AND wrapped = ?5",
                        )
                        .and_then(|mut st| {
                            st.execute(params![
                                r.new,
                                r.new_version,
                                id_text(id),
                                version,
                                r.old.wrapped
                            ])
                        }),
                    KeyOwner::Named(name) => c
                        .prepare_cached(
                            "UPDATE vault_keys SET wrapped = ?1, root_version = ?2 \
                             WHERE name = ?3 AND wrapped = ?4",
                        )
                        .and_then(|mut st| {
                            st.execute(params![r.new, r.new_version, name, r.old.wrapped])
                        }),
                }
                .map_err(backend)? as u64;
            }
            c.execute(
                "UPDATE key_rotations SET done = done + ?1 WHERE id = ?2",
                params![done as i64, rotation],
            )
            .map_err(backend)?;
            Ok(done)
        })
        .await
    }

    async fn open_rotation(&self, kind: RotationKind) -> Result<Option<RotationRow>, StoreError> {
        self.read(move |c| {
            c.query_row(
                &format!(
                    "SELECT {ROTATION_COLUMNS} FROM key_rotations \
                     WHERE kind = ?1 AND finished_ms IS NULL"
                ),
                [kind.as_str()],
                rotation,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn last_rotation(&self, kind: RotationKind) -> Result<Option<RotationRow>, StoreError> {
        self.read(move |c| {
            c.query_row(
                &format!(
                    "SELECT {ROTATION_COLUMNS} FROM key_rotations \
                     WHERE kind = ?1 ORDER BY id DESC LIMIT 1"
                ),
                [kind.as_str()],
                rotation,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn start_rotation(
        &self,
        kind: RotationKind,
        target: u32,
        started_ms: i64,
        total: u64,
    ) -> Result<RotationRow, StoreError> {
        self.write(move |c| {
            c.query_row(
                &format!(
                    "INSERT INTO key_rotations (kind, target, started_ms, total) \
                     VALUES (?1, ?2, ?3, ?4) RETURNING {ROTATION_COLUMNS}"
                ),
                params![kind.as_str(), target, started_ms, total as i64],
                rotation,
            )
            .map_err(|e| match backend(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("a {} rotation is running", kind.as_str()))
                }
                other => other,
            })
        })
        .await
    }

    async fn finish_rotation(
        &self,
        id: i64,
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE key_rotations SET finished_ms = ?1 WHERE id = ?2 AND finished_ms IS NULL",
                    params![at_ms, id],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            queue(c, &audit)
        })
        .await
    }

    async fn retire_root_version(
        &self,
        version: u32,
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            let n = wrapped_by(c, version)?;
            if n > 0 {
                return Err(still_wrapping(version, n));
            }
            c.execute(
                "INSERT INTO root_keys (version, created_ms, retired_ms) VALUES (?1, 0, ?2) \
                 ON CONFLICT (version) DO UPDATE SET retired_ms = excluded.retired_ms",
                params![version, at_ms],
            )
            .map_err(backend)?;
            queue(c, &audit)
        })
        .await
    }

    async fn flush_replaced(&self) -> Result<bool, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let c = Connection::open(&path).map_err(backend)?;
            c.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(backend)?;
            let busy: i64 = c
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .map_err(backend)?;
            Ok(busy == 0)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("the checkpoint stopped: {e}")))?
    }
}
