//! Records on PostgreSQL: [`RecordStore`] for [`PostgresStore`].

use async_trait::async_trait;
use custos_core::ids::{RecordId, SubjectId};
use tokio_postgres::Row;
use uuid::Uuid;

use super::audit::queue;
use super::convert::backend;
use super::index_keys::{guard_index, written_names};
use super::rekey::guard_key;
use super::{PostgresStore, Tx};
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::records::{
    IndexEntry, NewRecord, RecordChange, RecordRow, RecordStore, RecordWithKey, decode_fields,
    encode_fields,
};
use crate::rekey::sealed_version;
use crate::shared::RECORD_WITH_KEY;

pub(super) fn to_record(row: &Row) -> Result<RecordWithKey, StoreError> {
    let fields: Vec<u8> = row.get(3);
    Ok(RecordWithKey {
        record: RecordRow {
            id: RecordId::from(row.get::<_, Uuid>(0)),
            subject_id: SubjectId::from(row.get::<_, Uuid>(1)),
            collection: row.get(2),
            fields: decode_fields(&fields)?,
            version: row.get(4),
            created_ms: row.get(5),
            updated_ms: row.get(6),
        },
        wrapped_key: row.get(7),
        has_ledger: row.get(8),
    })
}

/// A record's insert as one statement, so one round trip and an implicit transaction: the
/// subject, its key, the record, its index entries and its audit entry commit together or not
/// at all. Foreign keys are checked at the statement's end, when every part is in.
/// An existing subject must not be erased: the row is locked (`FOR SHARE`), so this insert
/// waits for an erasure in progress and then sees it and inserts nothing. A subject that does
/// not exist is left to the foreign key to refuse, as a conflict.
/// Each field's index entries must be made under exactly the blind-index keys stored (`$16`
/// names them),
/// whose rows are locked `FOR KEY SHARE` (see `reindex`); otherwise nothing is inserted.
const INSERT_RECORD: &str = "WITH g AS (SELECT name FROM vault_keys \
           WHERE (name = 'index' OR name LIKE 'index.%') FOR KEY SHARE), \
     gi AS (SELECT cardinality($16::text[]) = 0 OR (SELECT count(*) FROM g) = 0 \
           OR ((SELECT count(*) FROM g) = cardinality($16::text[]) \
           AND NOT EXISTS (SELECT 1 FROM g WHERE name <> ALL($16::text[])) \
           AND NOT EXISTS (SELECT 1 FROM unnest($12::text[], $17::int[]) AS e(f, v) GROUP BY f \
                           HAVING count(DISTINCT v) <> cardinality($16::text[]))) AS fine), \
     s AS (INSERT INTO subjects (id, created_ms) SELECT $1, $2 WHERE $3 AND (SELECT fine FROM gi)), \
     k AS (INSERT INTO subject_keys (subject_id, version, wrapped, created_ms) SELECT $1, 1, $4, $2 \
           WHERE $3 AND (SELECT fine FROM gi)), \
     ok AS (SELECT 1 AS one WHERE (SELECT fine FROM gi) AND ($3 \
           OR EXISTS (SELECT 1 FROM subjects WHERE id = $6 AND status <> 'erased' FOR SHARE) \
           OR NOT EXISTS (SELECT 1 FROM subjects WHERE id = $6))), \
     r AS (INSERT INTO records (id, subject_id, collection, fields, version, created_ms, updated_ms) \
           SELECT $5, $6, $7, $8, $9, $10, $11 FROM ok RETURNING id), \
     b AS (INSERT INTO blind_index (collection, field, digest, record_id, subject_id, key_version) \
           SELECT $7, f, d, $5, $6, v FROM unnest($12::text[], $13::bytea[], $17::int[]) AS u(f, d, v), r) \
     INSERT INTO audit_queue (subject_id, entry) SELECT $14, $15 FROM r";

/// The values of [`INSERT_RECORD`], owned.
struct InsertParams<'a> {
    subject: Uuid,
    created_ms: i64,
    creates_subject: bool,
    wrapped: &'a [u8],
    id: Uuid,
    subject_id: Uuid,
    collection: &'a str,
    fields: Vec<u8>,
    version: i64,
    record_created_ms: i64,
    updated_ms: i64,
    index_fields: Vec<&'a str>,
    digests: Vec<&'a [u8]>,
    audit_subject: Option<Uuid>,
    audit_entry: &'a [u8],
    index_keys: Vec<String>,
    key_versions: Vec<i32>,
}

impl<'a> InsertParams<'a> {
    fn of(new: &'a NewRecord) -> Self {
        let r = &new.record;
        let (subject, created_ms, wrapped) = match &new.new_subject {
            Some(s) => (s.id.as_uuid(), s.created_ms, s.wrapped_key.as_slice()),
            None => (r.subject_id.as_uuid(), 0, &[][..]),
        };
        InsertParams {
            subject,
            created_ms,
            creates_subject: new.new_subject.is_some(),
            wrapped,
            id: r.id.as_uuid(),
            subject_id: r.subject_id.as_uuid(),
            collection: &r.collection,
            fields: encode_fields(&r.fields),
            version: r.version,
            record_created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            index_fields: new.index.iter().map(|e| e.field.as_str()).collect(),
            digests: new.index.iter().map(|e| e.digest.as_slice()).collect(),
            audit_subject: new.audit.subject_id.map(|s| s.as_uuid()),
            audit_entry: &new.audit.entry,
            index_keys: written_names(&new.index),
            key_versions: new.index.iter().map(|e| e.key_version as i32).collect(),
        }
    }

    fn as_params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 17] {
        [
            &self.subject,
            &self.created_ms,
            &self.creates_subject,
            &self.wrapped,
            &self.id,
            &self.subject_id,
            &self.collection,
            &self.fields,
            &self.version,
            &self.record_created_ms,
            &self.updated_ms,
            &self.index_fields,
            &self.digests,
            &self.audit_subject,
            &self.audit_entry,
            &self.index_keys,
            &self.key_versions,
        ]
    }
}

fn insert_error(e: tokio_postgres::Error) -> StoreError {
    match backend(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict("the record id or subject is unknown or taken".into())
        }
        other => other,
    }
}

async fn insert_index(
    tx: &Tx<'_>,
    rec: &RecordRow,
    entries: &[IndexEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let fields: Vec<&str> = entries.iter().map(|e| e.field.as_str()).collect();
    let digests: Vec<&[u8]> = entries.iter().map(|e| e.digest.as_slice()).collect();
    let versions: Vec<i32> = entries.iter().map(|e| e.key_version as i32).collect();
    let st = tx
        .prepare_cached(
            "INSERT INTO blind_index (collection, field, digest, record_id, subject_id, key_version) \
             SELECT $1, f, d, $4, $5, v FROM unnest($2::text[], $3::bytea[], $6::int[]) AS u(f, d, v)",
        )
        .await
        .map_err(backend)?;
    tx.execute(
        &st,
        &[
            &rec.collection,
            &fields,
            &digests,
            &rec.id.as_uuid(),
            &rec.subject_id.as_uuid(),
            &versions,
        ],
    )
    .await
    .map(drop)
    .map_err(backend)
}

impl PostgresStore {
    /// Why [`INSERT_RECORD`] inserted nothing: its index entries were made under other
    /// blind-index keys than those stored, or its subject is erased.
    async fn why_not_inserted(&self, new: &NewRecord) -> StoreError {
        if new.index.is_empty() {
            return StoreError::NotFound;
        }
        match self.live_index_versions().await {
            Ok(live) => match crate::reindex::check_written(&live, &new.index) {
                Err(e) => e,
                Ok(()) => StoreError::NotFound,
            },
            Err(e) => e,
        }
    }
}

#[async_trait]
impl RecordStore for PostgresStore {
    async fn insert_record(&self, new: NewRecord) -> Result<(), StoreError> {
        // A record of an existing subject is sealed under its key: guarded against a
        // rotation of it (one more transaction); a new subject's is one statement.
        let sealed = match new.new_subject {
            Some(_) => None,
            None => sealed_version(new.record.fields.values())?,
        };
        let mut client = self.client().await?;
        let st = client
            .prepare_cached(INSERT_RECORD)
            .await
            .map_err(backend)?;
        let params = InsertParams::of(&new);
        let n = if sealed.is_some() {
            let tx = client.transaction().await.map_err(backend)?;
            guard_key(&tx, new.record.subject_id, sealed).await?;
            let n = tx
                .execute(&st, &params.as_params())
                .await
                .map_err(insert_error)?;
            tx.commit().await.map_err(backend)?;
            n
        } else {
            client
                .execute(&st, &params.as_params())
                .await
                .map_err(insert_error)?
        };
        if n == 0 {
            // Its connection back in the pool first: the answer takes one.
            drop(client);
            return Err(self.why_not_inserted(&new).await);
        }
        Ok(())
    }

    async fn anonymise_record(
        &self,
        collection: &str,
        old: RecordId,
        new: NewRecord,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The blind-index keys, then the record, in the order an update and a re-index take
        // them; a re-index writing the record's entries is waited for.
        guard_index(&tx, &new.index).await?;
        tx.execute(
            "SELECT 1 FROM records WHERE id = $1 FOR UPDATE",
            &[&old.as_uuid()],
        )
        .await
        .map_err(backend)?;
        tx.execute(
            "DELETE FROM blind_index WHERE record_id = $1",
            &[&old.as_uuid()],
        )
        .await
        .map_err(backend)?;
        let n = tx
            .execute(
                "DELETE FROM records WHERE id = $1 AND collection = $2",
                &[&old.as_uuid(), &collection],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        let st = tx.prepare_cached(INSERT_RECORD).await.map_err(backend)?;
        let params = InsertParams::of(&new);
        let n = tx
            .execute(&st, &params.as_params())
            .await
            .map_err(insert_error)?;
        if n == 0 {
            drop(tx);
            drop(client);
            return Err(self.why_not_inserted(&new).await);
        }
        tx.commit().await.map_err(backend)
    }

    async fn update_record(&self, change: RecordChange) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let r = &change.record;
        guard_key(&tx, r.subject_id, sealed_version(r.fields.values())?).await?;
        guard_index(&tx, &change.index).await?;
        let st = tx
            .prepare_cached(
                "UPDATE records SET fields = $1, version = version + 1, updated_ms = $2 \
                 WHERE id = $3 AND collection = $4 AND version = $5",
            )
            .await
            .map_err(backend)?;
        let n = tx
            .execute(
                &st,
                &[
                    &encode_fields(&r.fields),
                    &r.updated_ms,
                    &r.id.as_uuid(),
                    &r.collection,
                    &r.version,
                ],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(StoreError::Conflict(
                "the record changed since it was read".into(),
            ));
        }
        if !change.reindexed_fields.is_empty() {
            let st = tx
                .prepare_cached("DELETE FROM blind_index WHERE record_id = $1 AND field = ANY($2)")
                .await
                .map_err(backend)?;
            tx.execute(&st, &[&r.id.as_uuid(), &change.reindexed_fields])
                .await
                .map_err(backend)?;
        }
        insert_index(&tx, r, &change.index).await?;
        queue(&tx, &change.audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn delete_record(
        &self,
        collection: &str,
        id: RecordId,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The record first: a blind-index rotation writing its entries is waited for.
        tx.execute(
            "SELECT 1 FROM records WHERE id = $1 FOR UPDATE",
            &[&id.as_uuid()],
        )
        .await
        .map_err(backend)?;
        tx.execute(
            "DELETE FROM blind_index WHERE record_id = $1",
            &[&id.as_uuid()],
        )
        .await
        .map_err(backend)?;
        let n = tx
            .execute(
                "DELETE FROM records WHERE id = $1 AND collection = $2",
                &[&id.as_uuid(), &collection],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        queue(&tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn record(
        &self,
        collection: &str,
        id: RecordId,
    ) -> Result<Option<RecordWithKey>, StoreError> {
        let sql = format!("{RECORD_WITH_KEY} WHERE r.id = $1 AND r.collection = $2");
        let rows = self.query(&sql, &[&id.as_uuid(), &collection]).await?;
        rows.first().map(to_record).transpose()
    }

    async fn find_by_digest(
        &self,
        collection: &str,
        field: &str,
        digests: &[(u32, Vec<u8>)],
    ) -> Result<Vec<RecordWithKey>, StoreError> {
        let sql = format!(
            "{RECORD_WITH_KEY} WHERE r.id IN (SELECT b.record_id FROM blind_index b \
             JOIN unnest($3::int[], $4::bytea[]) AS u(v, d) ON b.key_version = u.v AND b.digest = u.d \
             WHERE b.collection = $1 AND b.field = $2) \
             ORDER BY r.created_ms, r.id"
        );
        let versions: Vec<i32> = digests.iter().map(|(v, _)| *v as i32).collect();
        let bytes: Vec<&[u8]> = digests.iter().map(|(_, d)| d.as_slice()).collect();
        let rows = self
            .query(&sql, &[&collection, &field, &versions, &bytes])
            .await?;
        let found = rows.iter().map(to_record).collect::<Result<Vec<_>, _>>()?;
        // Checked after the lookup: see `crate::reindex`.
        let searched: Vec<u32> = digests.iter().map(|(v, _)| *v).collect();
        crate::reindex::check_searched(&self.live_index_versions().await?, &searched)?;
        Ok(found)
    }

    async fn subject_records(&self, subject: SubjectId) -> Result<Vec<RecordWithKey>, StoreError> {
        let sql = format!("{RECORD_WITH_KEY} WHERE r.subject_id = $1 ORDER BY r.created_ms, r.id");
        let rows = self.query(&sql, &[&subject.as_uuid()]).await?;
        rows.iter().map(to_record).collect()
    }

    async fn subject_key(&self, subject: SubjectId) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self
            .query(
                "SELECT k.wrapped FROM subject_keys k JOIN subjects s ON s.id = k.subject_id \
                 WHERE k.subject_id = $1 AND s.status <> 'erased'",
                &[&subject.as_uuid()],
            )
            .await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    async fn count_records(&self, collection: &str) -> Result<u64, StoreError> {
        let rows = self
            .query(
                "SELECT count(*) FROM records WHERE collection = $1",
                &[&collection],
            )
            .await?;
        Ok(rows[0].get::<_, i64>(0) as u64)
    }
}
