//! Subjects' erasure on SQLite: [`SubjectStore`] for [`SqliteStore`].

use async_trait::async_trait;
use custos_core::ids::SubjectId;
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::audit::queue;
use super::convert::{backend, id_text, parse_id};
use crate::error::StoreError;
use crate::records::encode_fields;
use crate::subjects::{Erasure, ErasureRow, SubjectStore};

fn changed() -> StoreError {
    StoreError::Conflict(
        "the subject's records changed while it was being erased; try again".into(),
    )
}

#[async_trait]
impl SubjectStore for SqliteStore {
    async fn erase_subject(&self, e: Erasure) -> Result<(), StoreError> {
        self.write(move |c| {
            let subject = id_text(e.subject_id);
            let status: Option<String> = c
                .prepare_cached("SELECT status FROM subjects WHERE id = ?1")
                .and_then(|mut s| s.query_row([&subject], |r| r.get(0)).optional())
                .map_err(backend)?;
            if status.is_none_or(|s| s == "erased") {
                return Err(StoreError::NotFound);
            }
            let kept = e.trim.iter().flat_map(|t| t.fields.values());
            super::rekey::check_key(c, e.subject_id, crate::rekey::sealed_version(kept)?)?;
            // One prepared statement each, reused for every record.
            let mut index = c
                .prepare_cached("DELETE FROM blind_index WHERE record_id = ?1")
                .map_err(backend)?;
            let mut record = c
                .prepare_cached(
                    "DELETE FROM records WHERE id = ?1 AND subject_id = ?2 AND version = ?3 \
                     AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.record_id = records.id)",
                )
                .map_err(backend)?;
            for (id, version) in &e.erase {
                let id = id_text(id);
                index.execute([&id]).map_err(backend)?;
                if record
                    .execute(params![id, subject, version])
                    .map_err(backend)?
                    == 0
                {
                    return Err(changed());
                }
            }
            drop((index, record));
            for t in &e.trim {
                let id = id_text(t.id);
                let n = c
                    .execute(
                        "UPDATE records SET fields = ?1, version = version + 1, updated_ms = ?2 \
                         WHERE id = ?3 AND subject_id = ?4 AND version = ?5 AND NOT EXISTS \
                         (SELECT 1 FROM legal_holds h WHERE h.record_id = records.id)",
                        params![
                            encode_fields(&t.fields),
                            e.erased_ms,
                            id,
                            subject,
                            t.version
                        ],
                    )
                    .map_err(backend)?;
                if n == 0 {
                    return Err(changed());
                }
                for f in &t.removed {
                    c.execute(
                        "DELETE FROM blind_index WHERE record_id = ?1 AND field = ?2",
                        params![id, f],
                    )
                    .map_err(backend)?;
                }
            }
            let left: i64 = c
                .query_row(
                    "SELECT count(*) FROM records WHERE subject_id = ?1",
                    [&subject],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if left as u64 != e.remaining {
                return Err(changed());
            }
            if e.destroy_key {
                c.execute("DELETE FROM subject_keys WHERE subject_id = ?1", [&subject])
                    .map_err(backend)?;
            }
            c.execute(
                "UPDATE subjects SET status = 'erased' WHERE id = ?1",
                [&subject],
            )
            .map_err(backend)?;
            c.execute(
                "INSERT INTO erasure_log (subject_id, erased_ms) VALUES (?1, ?2)",
                params![subject, e.erased_ms],
            )
            .map_err(backend)?;
            queue(c, &e.audit)
        })
        .await
    }

    async fn erasures(&self) -> Result<Vec<ErasureRow>, StoreError> {
        self.read(|c| {
            let mut s = c
                .prepare_cached(
                    "SELECT subject_id, erased_ms FROM erasure_log ORDER BY erased_ms, subject_id",
                )
                .map_err(backend)?;
            let rows = s
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(backend)?;
            rows.map(|r| {
                let (id, erased_ms) = r.map_err(backend)?;
                Ok(ErasureRow {
                    subject_id: parse_id(id)?,
                    erased_ms,
                })
            })
            .collect()
        })
        .await
    }

    async fn erasure(&self, subject: SubjectId) -> Result<Option<ErasureRow>, StoreError> {
        self.read(move |c| {
            let ms: Option<i64> = c
                .prepare_cached("SELECT erased_ms FROM erasure_log WHERE subject_id = ?1")
                .and_then(|mut s| s.query_row([id_text(subject)], |r| r.get(0)).optional())
                .map_err(backend)?;
            Ok(ms.map(|erased_ms| ErasureRow {
                subject_id: subject,
                erased_ms,
            }))
        })
        .await
    }
}
