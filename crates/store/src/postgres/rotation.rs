//! Key rotation on PostgreSQL: [`RotationStore`] for [`PostgresStore`]. The root key version
//! of a wrapped key is a column the database computes from the key's header.

use async_trait::async_trait;
use custos_core::ids::SubjectId;
use tokio_postgres::Row;
use uuid::Uuid;

use super::PostgresStore;
use super::audit::queue;
use super::convert::backend;
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::rotation::{
    KeyOwner, Rewrap, RootVersionRow, RotationKind, RotationRow, RotationStore, WrappedKey,
    still_wrapping,
};

const ROTATION_COLUMNS: &str = "id, kind, target, started_ms, total, done, finished_ms";

fn rotation(r: &Row) -> Result<RotationRow, StoreError> {
    let kind: String = r.get(1);
    Ok(RotationRow {
        id: r.get(0),
        kind: RotationKind::from_name(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown rotation kind {kind:?}")))?,
        target: r.get::<_, i32>(2) as u32,
        started_ms: r.get(3),
        total: r.get::<_, i64>(4) as u64,
        done: r.get::<_, i64>(5) as u64,
        finished_ms: r.get(6),
    })
}

#[async_trait]
impl RotationStore for PostgresStore {
    async fn root_versions(&self) -> Result<Vec<RootVersionRow>, StoreError> {
        let rows = self
            .query(
                "SELECT version, created_ms, retired_ms FROM root_keys ORDER BY version",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| RootVersionRow {
                version: r.get::<_, i32>(0) as u32,
                created_ms: r.get(1),
                retired_ms: r.get(2),
            })
            .collect())
    }

    async fn add_root_version(
        &self,
        version: u32,
        created_ms: i64,
        audit: QueuedAudit,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let added = tx
            .execute(
                "INSERT INTO root_keys (version, created_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&(version as i32), &created_ms],
            )
            .await
            .map_err(backend)?;
        if added == 1 {
            queue(&tx, &audit).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(added == 1)
    }

    async fn wrapped_per_version(&self) -> Result<Vec<(u32, u64)>, StoreError> {
        let rows = self
            .query(
                "SELECT v, SUM(n)::bigint FROM ( \
                   SELECT root_version AS v, COUNT(*) AS n FROM subject_keys GROUP BY root_version \
                   UNION ALL \
                   SELECT root_version, COUNT(*) FROM vault_keys GROUP BY root_version) AS c \
                 GROUP BY v ORDER BY v",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i32>(0) as u32, r.get::<_, i64>(1) as u64))
            .collect())
    }

    async fn wrapped_below(
        &self,
        version: u32,
        limit: usize,
    ) -> Result<Vec<WrappedKey>, StoreError> {
        let v = version as i32;
        let named = self
            .query(
                "SELECT name, wrapped FROM vault_keys WHERE root_version < $1 LIMIT $2",
                &[&v, &(limit as i64)],
            )
            .await?;
        let mut out: Vec<WrappedKey> = named
            .iter()
            .map(|r| WrappedKey {
                owner: KeyOwner::Named(r.get(0)),
                wrapped: r.get(1),
            })
            .collect();
        let subjects = self
            .query(
                "SELECT subject_id, version, wrapped FROM subject_keys WHERE root_version < $1 LIMIT $2",
                &[&v, &((limit - out.len()) as i64)],
            )
            .await?;
        out.extend(subjects.iter().map(|r| WrappedKey {
            owner: KeyOwner::Subject {
                id: SubjectId::from(r.get::<_, Uuid>(0)),
                version: i64::from(r.get::<_, i32>(1)),
            },
            wrapped: r.get(2),
        }));
        Ok(out)
    }

    async fn rewrap(&self, rotation: i64, batch: Vec<Rewrap>) -> Result<u64, StoreError> {
        let (mut ids, mut versions, mut olds, mut news) = (vec![], vec![], vec![], vec![]);
        let (mut names, mut named_olds, mut named_news) = (vec![], vec![], vec![]);
        for r in batch {
            match r.old.owner {
                KeyOwner::Subject { id, version } => {
                    ids.push(id.as_uuid());
                    versions.push(version as i32);
                    olds.push(r.old.wrapped);
                    news.push(r.new);
                }
                KeyOwner::Named(name) => {
                    names.push(name);
                    named_olds.push(r.old.wrapped);
                    named_news.push(r.new);
                }
            }
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // Each key is replaced only while it is as it was read.
        let subjects = tx
            .execute(
                "UPDATE subject_keys k SET wrapped = u.new \
                 FROM unnest($1::uuid[], $2::int[], $3::bytea[], $4::bytea[]) AS u(id, v, old, new) \
                 WHERE k.subject_id = u.id AND k.version = u.v AND k.wrapped = u.old",
                &[&ids, &versions, &olds, &news],
            )
            .await
            .map_err(backend)?;
        let named = tx
            .execute(
                "UPDATE vault_keys k SET wrapped = u.new \
                 FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS u(name, old, new) \
                 WHERE k.name = u.name AND k.wrapped = u.old",
                &[&names, &named_olds, &named_news],
            )
            .await
            .map_err(backend)?;
        let done = subjects + named;
        tx.execute(
            "UPDATE key_rotations SET done = done + $1 WHERE id = $2",
            &[&(done as i64), &rotation],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(done)
    }

    async fn open_rotation(&self, kind: RotationKind) -> Result<Option<RotationRow>, StoreError> {
        let rows = self
            .query(
                &format!(
                    "SELECT {ROTATION_COLUMNS} FROM key_rotations \
                     WHERE kind = $1 AND finished_ms IS NULL"
                ),
                &[&kind.as_str()],
            )
            .await?;
        rows.first().map(rotation).transpose()
    }

    async fn last_rotation(&self, kind: RotationKind) -> Result<Option<RotationRow>, StoreError> {
        let rows = self
            .query(
                &format!(
                    "SELECT {ROTATION_COLUMNS} FROM key_rotations \
                     WHERE kind = $1 ORDER BY id DESC LIMIT 1"
                ),
                &[&kind.as_str()],
            )
            .await?;
        rows.first().map(rotation).transpose()
    }

    async fn start_rotation(
        &self,
        kind: RotationKind,
        target: u32,
        started_ms: i64,
        total: u64,
    ) -> Result<RotationRow, StoreError> {
        let rows = self
            .query(
                &format!(
                    "INSERT INTO key_rotations (kind, target, started_ms, total) \
                     VALUES ($1, $2, $3, $4) RETURNING {ROTATION_COLUMNS}"
                ),
                &[
                    &kind.as_str(),
                    &(target as i32),
                    &started_ms,
                    &(total as i64),
                ],
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("a {} rotation is running", kind.as_str()))
                }
                other => other,
            })?;
        rotation(rows.first().ok_or(StoreError::NotFound)?)
    }

    async fn finish_rotation(
        &self,
        id: i64,
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let n = tx
            .execute(
                "UPDATE key_rotations SET finished_ms = $1 WHERE id = $2 AND finished_ms IS NULL",
                &[&at_ms, &id],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        queue(&tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn retire_root_version(
        &self,
        version: u32,
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let v = version as i32;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The count and the retirement are one view: writers of keys wait for this.
        tx.batch_execute("LOCK TABLE subject_keys, vault_keys IN SHARE MODE")
            .await
            .map_err(backend)?;
        let n: i64 = tx
            .query_one(
                "SELECT (SELECT COUNT(*) FROM subject_keys WHERE root_version = $1) \
                      + (SELECT COUNT(*) FROM vault_keys WHERE root_version = $1)",
                &[&v],
            )
            .await
            .map_err(backend)?
            .get(0);
        if n > 0 {
            return Err(still_wrapping(version, n as u64));
        }
        tx.execute(
            "INSERT INTO root_keys (version, created_ms, retired_ms) VALUES ($1, 0, $2) \
             ON CONFLICT (version) DO UPDATE SET retired_ms = excluded.retired_ms",
            &[&v, &at_ms],
        )
        .await
        .map_err(backend)?;
        queue(&tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn flush_replaced(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
}
