//! Records on SQLite: [`RecordStore`] for [`SqliteStore`].

use async_trait::async_trait;
use custos_core::ids::{RecordId, SubjectId};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::audit::queue;
use super::convert::{backend, id_text, parse_id};
use super::index_keys::{check_index, live_versions};
use super::rekey::check_key;
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::records::{
    IndexEntry, NewRecord, RecordChange, RecordRow, RecordStore, RecordWithKey, decode_fields,
    encode_fields,
};
use crate::rekey::sealed_version;
use crate::shared::RECORD_WITH_KEY;

pub(super) fn record_with_key(row: &Row<'_>) -> rusqlite::Result<(RawRecord, bool)> {
    Ok((
        (
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
        ),
        row.get(8)?,
    ))
}

pub(super) fn to_record_flagged(
    (raw, has_ledger): (RawRecord, bool),
) -> Result<RecordWithKey, StoreError> {
    let mut r = to_record(raw)?;
    r.has_ledger = has_ledger;
    Ok(r)
}

/// A record row as read: id, subject, collection, fields, version, created, updated, wrapped key.
pub(super) type RawRecord = (String, String, String, Vec<u8>, i64, i64, i64, Vec<u8>);

pub(super) fn to_record(raw: RawRecord) -> Result<RecordWithKey, StoreError> {
    let (id, subject, collection, fields, version, created_ms, updated_ms, wrapped_key) = raw;
    Ok(RecordWithKey {
        record: RecordRow {
            id: parse_id(id)?,
            subject_id: parse_id(subject)?,
            collection,
            fields: decode_fields(&fields)?,
            version,
            created_ms,
            updated_ms,
        },
        wrapped_key,
        has_ledger: false,
    })
}

/// A record, its subject when new, its index entries and its audit entry.
fn insert_new(c: &Connection, new: &NewRecord) -> Result<(), StoreError> {
    if new.new_subject.is_none() {
        // An erased subject takes no new record: its key may survive for what the law keeps,
        // but nothing new is filed under it. The one writer thread makes this check and the
        // insert one step, so an erasure cannot slip between them.
        let status: Option<String> = c
            .prepare_cached("SELECT status FROM subjects WHERE id = ?1")
            .and_then(|mut st| {
                st.query_row([id_text(new.record.subject_id)], |r| r.get(0))
                    .optional()
            })
            .map_err(backend)?;
        if status.as_deref() == Some("erased") {
            return Err(StoreError::NotFound);
        }
        check_key(
            c,
            new.record.subject_id,
            sealed_version(new.record.fields.values())?,
        )?;
    }
    if let Some(s) = &new.new_subject {
        c.prepare_cached("INSERT INTO subjects (id, created_ms) VALUES (?1, ?2)")
            .and_then(|mut st| st.execute(params![id_text(s.id), s.created_ms]))
            .map_err(backend)?;
        let root_version = crate::rotation::root_version_of(&s.wrapped_key)?;
        c.prepare_cached(
            "INSERT INTO subject_keys (subject_id, version, wrapped, root_version, created_ms) \
             VALUES (?1, 1, ?2, ?3, ?4)",
        )
        .and_then(|mut st| {
            st.execute(params![
                id_text(s.id),
                s.wrapped_key,
                root_version,
                s.created_ms
            ])
        })
        .map_err(backend)?;
    }
    check_index(c, &new.index)?;
    let r = &new.record;
    c.prepare_cached(
        "INSERT INTO records (id, subject_id, collection, fields, version, created_ms, updated_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut st| {
        st.execute(params![
            id_text(r.id),
            id_text(r.subject_id),
            r.collection,
            encode_fields(&r.fields),
            r.version,
            r.created_ms,
            r.updated_ms
        ])
    })
    .map_err(|e| match backend(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict("the record id or subject is unknown or taken".into())
        }
        other => other,
    })?;
    insert_index(c, r, &new.index)?;
    queue(c, &new.audit)
}

fn insert_index(
    conn: &Connection,
    rec: &RecordRow,
    entries: &[IndexEntry],
) -> Result<(), StoreError> {
    let mut s = conn
        .prepare_cached(
            "INSERT INTO blind_index (collection, field, digest, record_id, subject_id, key_version) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(backend)?;
    for e in entries {
        s.execute(params![
            rec.collection,
            e.field,
            e.digest,
            id_text(rec.id),
            id_text(rec.subject_id),
            e.key_version
        ])
        .map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn insert_record(&self, new: NewRecord) -> Result<(), StoreError> {
        self.write(move |c| insert_new(c, &new)).await
    }

    async fn anonymise_record(
        &self,
        collection: &str,
        old: RecordId,
        new: NewRecord,
    ) -> Result<(), StoreError> {
        let collection = collection.to_owned();
        self.write(move |c| {
            c.execute(
                "DELETE FROM blind_index WHERE record_id = ?1",
                [id_text(old)],
            )
            .map_err(backend)?;
            let n = c
                .execute(
                    "DELETE FROM records WHERE id = ?1 AND collection = ?2",
                    params![id_text(old), collection],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_new(c, &new)
        })
        .await
    }

    async fn update_record(&self, change: RecordChange) -> Result<(), StoreError> {
        self.write(move |c| {
            let r = &change.record;
            check_key(c, r.subject_id, sealed_version(r.fields.values())?)?;
            check_index(c, &change.index)?;
            let n = c
                .prepare_cached(
                    "UPDATE records SET fields = ?1, version = version + 1, updated_ms = ?2 \
                     WHERE id = ?3 AND collection = ?4 AND version = ?5",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        encode_fields(&r.fields),
                        r.updated_ms,
                        id_text(r.id),
                        r.collection,
                        r.version
                    ])
                })
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::Conflict(
                    "the record changed since it was read".into(),
                ));
            }
            let mut del = c
                .prepare_cached("DELETE FROM blind_index WHERE record_id = ?1 AND field = ?2")
                .map_err(backend)?;
            for f in &change.reindexed_fields {
                del.execute(params![id_text(r.id), f]).map_err(backend)?;
            }
            insert_index(c, r, &change.index)?;
            queue(c, &change.audit)
        })
        .await
    }

    async fn delete_record(
        &self,
        collection: &str,
        id: RecordId,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let collection = collection.to_owned();
        self.write(move |c| {
            c.execute(
                "DELETE FROM blind_index WHERE record_id = ?1",
                [id_text(id)],
            )
            .map_err(backend)?;
            let n = c
                .execute(
                    "DELETE FROM records WHERE id = ?1 AND collection = ?2",
                    params![id_text(id), collection],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            queue(c, &audit)
        })
        .await
    }

    async fn record(
        &self,
        collection: &str,
        id: RecordId,
    ) -> Result<Option<RecordWithKey>, StoreError> {
        let collection = collection.to_owned();
        self.read(move |c| {
            let sql = format!("{RECORD_WITH_KEY} WHERE r.id = ?1 AND r.collection = ?2");
            let raw = c
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row(params![id_text(id), collection], record_with_key)
                        .optional()
                })
                .map_err(backend)?;
            raw.map(to_record_flagged).transpose()
        })
        .await
    }

    async fn find_by_digest(
        &self,
        collection: &str,
        field: &str,
        digests: &[(u32, Vec<u8>)],
    ) -> Result<Vec<RecordWithKey>, StoreError> {
        let (collection, field, digests) =
            (collection.to_owned(), field.to_owned(), digests.to_vec());
        self.read(move |c| {
            let sql = format!(
                "{RECORD_WITH_KEY} JOIN blind_index b ON b.record_id = r.id \
                 WHERE b.collection = ?1 AND b.field = ?2 AND b.digest = ?3 AND b.key_version = ?4 \
                 ORDER BY r.created_ms"
            );
            let mut s = c.prepare_cached(&sql).map_err(backend)?;
            let mut found: Vec<RecordWithKey> = Vec::new();
            for (version, digest) in &digests {
                let rows = s
                    .query_map(params![collection, field, digest, version], record_with_key)
                    .map_err(backend)?;
                for r in rows {
                    let r = r.map_err(backend).and_then(to_record_flagged)?;
                    if !found.iter().any(|f| f.record.id == r.record.id) {
                        found.push(r);
                    }
                }
            }
            // Checked after the lookup: see `crate::reindex`.
            let searched: Vec<u32> = digests.iter().map(|(v, _)| *v).collect();
            crate::reindex::check_searched(&live_versions(c)?, &searched)?;
            found.sort_by_key(|r| r.record.created_ms);
            Ok(found)
        })
        .await
    }

    async fn subject_records(&self, subject: SubjectId) -> Result<Vec<RecordWithKey>, StoreError> {
        self.read(move |c| {
            let sql = format!("{RECORD_WITH_KEY} WHERE r.subject_id = ?1 ORDER BY r.created_ms");
            let mut s = c.prepare_cached(&sql).map_err(backend)?;
            let rows = s
                .query_map([id_text(subject)], record_with_key)
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_record_flagged))
                .collect()
        })
        .await
    }

    async fn subject_key(&self, subject: SubjectId) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT k.wrapped FROM subject_keys k JOIN subjects s ON s.id = k.subject_id \
                 WHERE k.subject_id = ?1 AND s.status <> 'erased'",
            )
            .and_then(|mut s| s.query_row([id_text(subject)], |r| r.get(0)).optional())
            .map_err(backend)
        })
        .await
    }

    async fn count_records(&self, collection: &str) -> Result<u64, StoreError> {
        let collection = collection.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT count(*) FROM records WHERE collection = ?1",
                [collection],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }
}
