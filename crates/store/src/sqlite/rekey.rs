//! Subjects' data keys replaced on SQLite: [`SubjectKeyStore`] for [`SqliteStore`], and the
//! check every write sealed under a subject's key makes. The one writer thread runs each
//! rekey as one step, so a write is either before it (and sealed again by it) or after it
//! (and refused if sealed under the old key).

use async_trait::async_trait;
use custos_core::ids::SubjectId;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::convert::{backend, id_text, parse_id};
use crate::error::StoreError;
use crate::records::{decode_fields, encode_fields};
use crate::rekey::{Rekeyed, Reseal, SubjectKeyStore, SubjectSecrets, check_resealed};

/// Refuses with [`StoreError::KeyChanged`] a write sealed under data-key version `sealed`
/// when `subject`'s key is now of another version. A subject without a key is left to the
/// write's own checks.
pub(super) fn check_key(
    c: &Connection,
    subject: SubjectId,
    sealed: Option<u32>,
) -> Result<(), StoreError> {
    let Some(v) = sealed else { return Ok(()) };
    let current: Option<i64> = c
        .prepare_cached("SELECT version FROM subject_keys WHERE subject_id = ?1")
        .and_then(|mut s| s.query_row([id_text(subject)], |r| r.get(0)).optional())
        .map_err(backend)?;
    match current {
        Some(cur) if cur != i64::from(v) => Err(StoreError::KeyChanged),
        _ => Ok(()),
    }
}

/// The subject's secrets as stored, when it has a key made before `before_ms` and is not
/// erased.
fn read_secrets(
    c: &Connection,
    subject: SubjectId,
    before_ms: i64,
) -> Result<Option<SubjectSecrets>, StoreError> {
    let sid = id_text(subject);
    let key: Option<(i64, Vec<u8>)> = c
        .prepare_cached(
            "SELECT k.version, k.wrapped FROM subject_keys k JOIN subjects s ON s.id = k.subject_id \
             WHERE k.subject_id = ?1 AND k.created_ms < ?2 AND s.status <> 'erased'",
        )
        .and_then(|mut s| {
            s.query_row(params![sid, before_ms], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(backend)?;
    let Some((version, wrapped_key)) = key else {
        return Ok(None);
    };
    let mut records = Vec::new();
    let mut st = c
        .prepare_cached(
            "SELECT id, collection, fields FROM records WHERE subject_id = ?1 ORDER BY id",
        )
        .map_err(backend)?;
    let rows = st
        .query_map([&sid], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, Vec<u8>>(2)?))
        })
        .map_err(backend)?;
    for row in rows {
        let (id, collection, fields) = row.map_err(backend)?;
        records.push((parse_id(id)?, collection, decode_fields(&fields)?));
    }
    let mut requests = Vec::new();
    let mut st = c
        .prepare_cached("SELECT id, reasons FROM requests WHERE subject_id = ?1 ORDER BY id")
        .map_err(backend)?;
    let rows = st
        .query_map([&sid], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(backend)?;
    for row in rows {
        let (id, reasons) = row.map_err(backend)?;
        requests.push((parse_id(id)?, decode_fields(&reasons)?));
    }
    let mut mail = Vec::new();
    let mut st = c
        // Messages sent or given up keep no sealed text: only those still to send.
        .prepare_cached(
            "SELECT id, sealed FROM outbox WHERE subject_id = ?1 \
             AND sent_ms IS NULL AND failed_ms IS NULL ORDER BY id",
        )
        .map_err(backend)?;
    let rows = st
        .query_map([&sid], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(backend)?;
    for row in rows {
        let (id, sealed) = row.map_err(backend)?;
        mail.push((parse_id(id)?, sealed));
    }
    Ok(Some(SubjectSecrets {
        subject,
        key_version: u32::try_from(version)
            .map_err(|_| StoreError::Corrupt("a key version is out of range".into()))?,
        wrapped_key,
        records,
        requests,
        mail,
    }))
}

/// Whether a message to the subject is claimed for delivery at `now_ms`.
fn mail_in_flight(c: &Connection, subject: SubjectId, now_ms: i64) -> Result<bool, StoreError> {
    c.prepare_cached(
        "SELECT 1 FROM outbox WHERE subject_id = ?1 AND sent_ms IS NULL AND failed_ms IS NULL \
         AND claimed_until_ms > ?2 LIMIT 1",
    )
    .and_then(|mut s| {
        s.query_row(params![id_text(subject), now_ms], |_| Ok(()))
            .optional()
    })
    .map(|r| r.is_some())
    .map_err(backend)
}

/// Writes `new` back; the key is recorded as made at `made_ms`.
fn write_secrets(c: &Connection, new: &SubjectSecrets, made_ms: i64) -> Result<(), StoreError> {
    let sid = id_text(new.subject);
    let root_version = crate::rotation::root_version_of(&new.wrapped_key)?;
    c.prepare_cached(
        "UPDATE subject_keys SET version = ?1, wrapped = ?2, root_version = ?3, created_ms = ?4 \
         WHERE subject_id = ?5",
    )
    .and_then(|mut s| {
        s.execute(params![
            new.key_version,
            new.wrapped_key,
            root_version,
            made_ms,
            sid
        ])
    })
    .map_err(backend)?;
    let mut st = c
        .prepare_cached("UPDATE records SET fields = ?1 WHERE id = ?2")
        .map_err(backend)?;
    for (id, _, fields) in &new.records {
        st.execute(params![encode_fields(fields), id_text(id)])
            .map_err(backend)?;
    }
    let mut st = c
        .prepare_cached("UPDATE requests SET reasons = ?1 WHERE id = ?2")
        .map_err(backend)?;
    for (id, reasons) in &new.requests {
        st.execute(params![encode_fields(reasons), id_text(id)])
            .map_err(backend)?;
    }
    let mut st = c
        .prepare_cached("UPDATE outbox SET sealed = ?1 WHERE id = ?2")
        .map_err(backend)?;
    for (id, sealed) in &new.mail {
        st.execute(params![sealed, id_text(id)]).map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl SubjectKeyStore for SqliteStore {
    async fn keyed_before(
        &self,
        before_ms: i64,
        after: Option<(i64, SubjectId)>,
        limit: usize,
    ) -> Result<Vec<(i64, SubjectId)>, StoreError> {
        let (after_ms, after_id) = match after {
            Some((ms, id)) => (ms, id_text(id)),
            None => (i64::MIN, String::new()),
        };
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT k.created_ms, k.subject_id FROM subject_keys k \
                     JOIN subjects s ON s.id = k.subject_id \
                     WHERE k.created_ms < ?1 AND s.status <> 'erased' \
                     AND (k.created_ms, k.subject_id) > (?2, ?3) \
                     ORDER BY k.created_ms, k.subject_id LIMIT ?4",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![before_ms, after_ms, after_id, limit as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(backend)?;
            rows.map(|r| {
                let (ms, id) = r.map_err(backend)?;
                Ok((ms, parse_id(id)?))
            })
            .collect()
        })
        .await
    }

    async fn count_keyed_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.read(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM subject_keys k JOIN subjects s ON s.id = k.subject_id \
                 WHERE k.created_ms < ?1 AND s.status <> 'erased'",
                [before_ms],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }

    async fn rekey_subject(
        &self,
        rotation: i64,
        subject: SubjectId,
        before_ms: i64,
        now_ms: i64,
        reseal: Reseal,
    ) -> Result<Rekeyed, StoreError> {
        self.write(move |c| {
            let Some(old) = read_secrets(c, subject, before_ms)? else {
                return Ok(Rekeyed::Skipped);
            };
            if mail_in_flight(c, subject, now_ms)? {
                return Ok(Rekeyed::Busy);
            }
            let new = reseal(old.clone())?;
            check_resealed(&old, &new)?;
            // Never before the cutoff, whatever this clock says: a key once replaced is never
            // taken again by the same rotation.
            write_secrets(c, &new, now_ms.max(before_ms))?;
            c.prepare_cached("UPDATE key_rotations SET done = done + 1 WHERE id = ?1")
                .and_then(|mut s| s.execute([rotation]))
                .map_err(backend)?;
            Ok(Rekeyed::Done)
        })
        .await
    }
}
