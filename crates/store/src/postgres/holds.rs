//! Legal holds on PostgreSQL: [`HoldStore`] for [`PostgresStore`].

use async_trait::async_trait;
use custos_core::ids::{RecordId, SubjectId};
use tokio_postgres::Row;
use uuid::Uuid;

use super::PostgresStore;
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::holds::{HoldRow, HoldStore};

pub(super) fn to_hold(r: &Row) -> HoldRow {
    HoldRow {
        record_id: RecordId::from(r.get::<_, Uuid>(0)),
        collection: r.get(1),
        subject_id: SubjectId::from(r.get::<_, Uuid>(2)),
        reason: r.get(3),
        placed_by: r.get(4),
        placed_ms: r.get(5),
    }
}

#[async_trait]
impl HoldStore for PostgresStore {
    async fn place_hold(&self, hold: HoldRow, audit: QueuedAudit) -> Result<(), StoreError> {
        // One statement: the hold and its audit entry commit together, or neither does.
        let rows = self
            .query(
                "WITH h AS (INSERT INTO legal_holds \
                 (record_id, collection, subject_id, reason, placed_by, placed_ms) \
                 SELECT $1, $2, $3, $4, $5, $6 \
                 WHERE EXISTS (SELECT 1 FROM records WHERE id = $1 AND collection = $2) \
                 RETURNING record_id) \
                 INSERT INTO audit_queue (subject_id, entry) SELECT $7, $8 FROM h RETURNING queue_id",
                &[
                    &hold.record_id.as_uuid(),
                    &hold.collection,
                    &hold.subject_id.as_uuid(),
                    &hold.reason,
                    &hold.placed_by,
                    &hold.placed_ms,
                    &audit.subject_id.map(|s| s.as_uuid()),
                    &audit.entry,
                ],
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    StoreError::Conflict("the record is already under a legal hold".into())
                }
                e => e,
            })?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn release_hold(&self, record: RecordId, audit: QueuedAudit) -> Result<(), StoreError> {
        let rows = self
            .query(
                "WITH d AS (DELETE FROM legal_holds WHERE record_id = $1 RETURNING record_id) \
                 INSERT INTO audit_queue (subject_id, entry) SELECT $2, $3 FROM d RETURNING queue_id",
                &[
                    &record.as_uuid(),
                    &audit.subject_id.map(|s| s.as_uuid()),
                    &audit.entry,
                ],
            )
            .await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn holds(&self) -> Result<Vec<HoldRow>, StoreError> {
        let rows = self
            .query(
                "SELECT record_id, collection, subject_id, reason, placed_by, placed_ms \
                 FROM legal_holds ORDER BY record_id",
                &[],
            )
            .await?;
        Ok(rows.iter().map(to_hold).collect())
    }
}
