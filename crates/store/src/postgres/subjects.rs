//! Subjects' erasure on PostgreSQL: [`SubjectStore`] for [`PostgresStore`].

use async_trait::async_trait;
use custos_core::ids::SubjectId;
use uuid::Uuid;

use super::PostgresStore;
use super::audit::queue;
use super::convert::backend;
use crate::error::StoreError;
use crate::records::encode_fields;
use crate::subjects::{Erasure, ErasureRow, SubjectStore};

fn changed() -> StoreError {
    StoreError::Conflict(
        "the subject's records changed while it was being erased; try again".into(),
    )
}

#[async_trait]
impl SubjectStore for PostgresStore {
    async fn erase_subject(&self, e: Erasure) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let subject = e.subject_id.as_uuid();
        // The subject's row is locked for the transaction: two erasures, or an erasure and
        // a new record of the subject, do not interleave.
        let status = tx
            .query_opt(
                "SELECT status FROM subjects WHERE id = $1 FOR UPDATE",
                &[&subject],
            )
            .await
            .map_err(backend)?
            .map(|r| r.get::<_, String>(0));
        if status.is_none_or(|s| s == "erased") {
            return Err(StoreError::NotFound);
        }
        let kept = e.trim.iter().flat_map(|t| t.fields.values());
        super::rekey::guard_key(&tx, e.subject_id, crate::rekey::sealed_version(kept)?).await?;
        let erase: Vec<Uuid> = e.erase.iter().map(|(r, _)| r.as_uuid()).collect();
        let versions: Vec<i64> = e.erase.iter().map(|(_, v)| *v).collect();
        // The subject's records first, in id order as a blind-index rotation takes them: one
        // writing their entries meanwhile is waited for, and its entries deleted with the rest.
        tx.execute(
            "SELECT 1 FROM records WHERE subject_id = $1 ORDER BY id FOR UPDATE",
            &[&subject],
        )
        .await
        .map_err(backend)?;
        tx.execute(
            "DELETE FROM blind_index WHERE record_id = ANY($1)",
            &[&erase],
        )
        .await
        .map_err(backend)?;
        let n = tx
            .execute(
                "DELETE FROM records r USING unnest($1::uuid[], $3::bigint[]) AS u(id, version) \
                 WHERE r.id = u.id AND r.version = u.version AND r.subject_id = $2 \
                 AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.record_id = r.id)",
                &[&erase, &subject, &versions],
            )
            .await
            .map_err(backend)?;
        if n != erase.len() as u64 {
            return Err(changed());
        }
        for t in &e.trim {
            let n = tx
                .execute(
                    "UPDATE records SET fields = $1, version = version + 1, updated_ms = $2 \
                     WHERE id = $3 AND subject_id = $4 AND version = $5 AND NOT EXISTS \
                     (SELECT 1 FROM legal_holds h WHERE h.record_id = records.id)",
                    &[
                        &encode_fields(&t.fields),
                        &e.erased_ms,
                        &t.id.as_uuid(),
                        &subject,
                        &t.version,
                    ],
                )
                .await
                .map_err(backend)?;
            if n == 0 {
                return Err(changed());
            }
            tx.execute(
                "DELETE FROM blind_index WHERE record_id = $1 AND field = ANY($2)",
                &[&t.id.as_uuid(), &t.removed],
            )
            .await
            .map_err(backend)?;
        }
        let left: i64 = tx
            .query_one(
                "SELECT count(*) FROM records WHERE subject_id = $1",
                &[&subject],
            )
            .await
            .map_err(backend)?
            .get(0);
        if left as u64 != e.remaining {
            return Err(changed());
        }
        if e.destroy_key {
            tx.execute(
                "DELETE FROM subject_keys WHERE subject_id = $1",
                &[&subject],
            )
            .await
            .map_err(backend)?;
        }
        tx.execute(
            "UPDATE subjects SET status = 'erased' WHERE id = $1",
            &[&subject],
        )
        .await
        .map_err(backend)?;
        tx.execute(
            "INSERT INTO erasure_log (subject_id, erased_ms) VALUES ($1, $2)",
            &[&subject, &e.erased_ms],
        )
        .await
        .map_err(backend)?;
        queue(&tx, &e.audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn erasures(&self) -> Result<Vec<ErasureRow>, StoreError> {
        let rows = self
            .query(
                "SELECT subject_id, erased_ms FROM erasure_log ORDER BY erased_ms, subject_id",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ErasureRow {
                subject_id: SubjectId::from(r.get::<_, Uuid>(0)),
                erased_ms: r.get(1),
            })
            .collect())
    }

    async fn erasure(&self, subject: SubjectId) -> Result<Option<ErasureRow>, StoreError> {
        let rows = self
            .query(
                "SELECT erased_ms FROM erasure_log WHERE subject_id = $1",
                &[&subject.as_uuid()],
            )
            .await?;
        Ok(rows.first().map(|r| ErasureRow {
            subject_id: subject,
            erased_ms: r.get(0),
        }))
    }
}
