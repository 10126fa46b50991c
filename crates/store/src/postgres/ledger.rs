//! The consent ledger on PostgreSQL: [`LedgerStore`] for [`PostgresStore`].

use async_trait::async_trait;
use custos_core::ids::{EventId, SubjectId};
use tokio_postgres::Row;
use uuid::Uuid;

use super::PostgresStore;
use crate::error::StoreError;
use crate::ledger::{ConsentRow, LedgerStore};

pub(super) fn to_consent(r: &Row) -> ConsentRow {
    ConsentRow {
        seq: r.get(0),
        id: EventId::from(r.get::<_, Uuid>(1)),
        subject_id: SubjectId::from(r.get::<_, Uuid>(2)),
        entry: r.get(3),
    }
}

#[async_trait]
impl LedgerStore for PostgresStore {
    async fn insert_consent_event(
        &self,
        id: EventId,
        subject_id: SubjectId,
        entry: Vec<u8>,
    ) -> Result<(), StoreError> {
        // One statement: the event and its audit entry commit together, or neither does.
        let rows = self
            .query(
                "WITH e AS (INSERT INTO consent_events (id, subject_id, entry) \
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM subjects WHERE id = $2) \
                 RETURNING subject_id, entry) \
                 INSERT INTO audit_queue (subject_id, entry) SELECT subject_id, entry FROM e \
                 RETURNING queue_id",
                &[&id.as_uuid(), &subject_id.as_uuid(), &entry],
            )
            .await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn consent_event(&self, id: EventId) -> Result<Option<ConsentRow>, StoreError> {
        let rows = self
            .query(
                "SELECT seq, id, subject_id, entry FROM consent_events WHERE id = $1",
                &[&id.as_uuid()],
            )
            .await?;
        Ok(rows.first().map(to_consent))
    }

    async fn consent_events(&self, subject: SubjectId) -> Result<Vec<ConsentRow>, StoreError> {
        let rows = self
            .query(
                "SELECT seq, id, subject_id, entry FROM consent_events WHERE subject_id = $1 \
                 ORDER BY seq",
                &[&subject.as_uuid()],
            )
            .await?;
        Ok(rows.iter().map(to_consent).collect())
    }
}
