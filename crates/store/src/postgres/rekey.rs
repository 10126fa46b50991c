//! Subjects' data keys replaced on PostgreSQL: [`SubjectKeyStore`] for [`PostgresStore`],
//! and the guard every write sealed under a subject's key takes. A rekey locks the subject's
//! row and its key's `FOR UPDATE` (in that order, as an erasure does) before it reads; a
//! write locks them `FOR SHARE` (same order) and checks the key's version, so either the write
//! commits first and the rekey reads it, or it waits and then sees the new version and is
//! refused ([`StoreError::KeyChanged`]), to be sealed again.

use async_trait::async_trait;
use custos_core::ids::{MailId, RecordId, RequestId, SubjectId};
use uuid::Uuid;

use super::convert::backend;
use super::{PostgresStore, Tx};
use crate::error::StoreError;
use crate::records::{decode_fields, encode_fields};
use crate::rekey::{Rekeyed, Reseal, SubjectKeyStore, SubjectSecrets, check_resealed};

/// Refuses with [`StoreError::KeyChanged`] a write sealed under data-key version `sealed`
/// when `subject`'s key is of another version, holding the subject's and the key's rows
/// `FOR SHARE` until the transaction ends. A subject without a key is left to the write's own
/// checks.
pub(super) async fn guard_key(
    tx: &Tx<'_>,
    subject: SubjectId,
    sealed: Option<u32>,
) -> Result<(), StoreError> {
    let Some(v) = sealed else { return Ok(()) };
    let id = subject.as_uuid();
    tx.query_opt("SELECT 1 FROM subjects WHERE id = $1 FOR SHARE", &[&id])
        .await
        .map_err(backend)?;
    let current = tx
        .query_opt(
            "SELECT version FROM subject_keys WHERE subject_id = $1 FOR SHARE",
            &[&id],
        )
        .await
        .map_err(backend)?
        .map(|r| r.get::<_, i32>(0));
    match current {
        Some(cur) if i64::from(cur) != i64::from(v) => Err(StoreError::KeyChanged),
        _ => Ok(()),
    }
}

/// The subject's secrets, its rows locked, when its key was made before `before_ms` and it
/// is not erased; and whether a message to it is claimed for delivery at `now_ms`.
async fn lock_secrets(
    tx: &Tx<'_>,
    subject: SubjectId,
    before_ms: i64,
    now_ms: i64,
) -> Result<Option<(SubjectSecrets, bool)>, StoreError> {
    let id = subject.as_uuid();
    let live = tx
        .query_opt(
            "SELECT 1 FROM subjects WHERE id = $1 AND status <> 'erased' FOR UPDATE",
            &[&id],
        )
        .await
        .map_err(backend)?;
    let key = tx
        .query_opt(
            "SELECT version, wrapped FROM subject_keys WHERE subject_id = $1 AND created_ms < $2 \
             FOR UPDATE",
            &[&id, &before_ms],
        )
        .await
        .map_err(backend)?;
    let (Some(_), Some(key)) = (live, key) else {
        return Ok(None);
    };
    let mut records = Vec::new();
    for r in tx
        .query(
            "SELECT id, collection, fields FROM records WHERE subject_id = $1 ORDER BY id FOR UPDATE",
            &[&id],
        )
        .await
        .map_err(backend)?
    {
        let fields: Vec<u8> = r.get(2);
        records.push((
            RecordId::from(r.get::<_, Uuid>(0)),
            r.get::<_, String>(1),
            decode_fields(&fields)?,
        ));
    }
    let mut requests = Vec::new();
    for r in tx
        .query(
            "SELECT id, reasons FROM requests WHERE subject_id = $1 ORDER BY id FOR UPDATE",
            &[&id],
        )
        .await
        .map_err(backend)?
    {
        let reasons: Vec<u8> = r.get(1);
        requests.push((
            RequestId::from(r.get::<_, Uuid>(0)),
            decode_fields(&reasons)?,
        ));
    }
    let mut mail = Vec::new();
    let mut in_flight = false;
    for r in tx
        .query(
            // Messages sent or given up keep no sealed text: only those still to send.
            "SELECT id, sealed, COALESCE(claimed_until_ms > $2, false) \
             FROM outbox WHERE subject_id = $1 AND sent_ms IS NULL AND failed_ms IS NULL \
             ORDER BY id FOR UPDATE",
            &[&id, &now_ms],
        )
        .await
        .map_err(backend)?
    {
        in_flight |= r.get::<_, bool>(2);
        mail.push((MailId::from(r.get::<_, Uuid>(0)), r.get::<_, Vec<u8>>(1)));
    }
    let version = u32::try_from(key.get::<_, i32>(0))
        .map_err(|_| StoreError::Corrupt("a key version is out of range".into()))?;
    let secrets = SubjectSecrets {
        subject,
        key_version: version,
        wrapped_key: key.get(1),
        records,
        requests,
        mail,
    };
    Ok(Some((secrets, in_flight)))
}

/// Writes `new` back; the key is recorded as made at `made_ms`.
async fn write_secrets(tx: &Tx<'_>, new: &SubjectSecrets, made_ms: i64) -> Result<(), StoreError> {
    let id = new.subject.as_uuid();
    let version = i32::try_from(new.key_version)
        .map_err(|_| StoreError::Backend("a key version is out of range".into()))?;
    tx.execute(
        "UPDATE subject_keys SET version = $1, wrapped = $2, created_ms = $3 WHERE subject_id = $4",
        &[&version, &new.wrapped_key, &made_ms, &id],
    )
    .await
    .map_err(backend)?;
    let ids: Vec<Uuid> = new.records.iter().map(|r| r.0.as_uuid()).collect();
    let fields: Vec<Vec<u8>> = new.records.iter().map(|r| encode_fields(&r.2)).collect();
    tx.execute(
        "UPDATE records r SET fields = u.f FROM unnest($1::uuid[], $2::bytea[]) AS u(id, f) \
         WHERE r.id = u.id",
        &[&ids, &fields],
    )
    .await
    .map_err(backend)?;
    let ids: Vec<Uuid> = new.requests.iter().map(|r| r.0.as_uuid()).collect();
    let reasons: Vec<Vec<u8>> = new.requests.iter().map(|r| encode_fields(&r.1)).collect();
    tx.execute(
        "UPDATE requests r SET reasons = u.f FROM unnest($1::uuid[], $2::bytea[]) AS u(id, f) \
         WHERE r.id = u.id",
        &[&ids, &reasons],
    )
    .await
    .map_err(backend)?;
    let ids: Vec<Uuid> = new.mail.iter().map(|m| m.0.as_uuid()).collect();
    let sealed: Vec<&[u8]> = new.mail.iter().map(|m| m.1.as_slice()).collect();
    tx.execute(
        "UPDATE outbox o SET sealed = u.s FROM unnest($1::uuid[], $2::bytea[]) AS u(id, s) \
         WHERE o.id = u.id",
        &[&ids, &sealed],
    )
    .await
    .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl SubjectKeyStore for PostgresStore {
    async fn keyed_before(
        &self,
        before_ms: i64,
        after: Option<(i64, SubjectId)>,
        limit: usize,
    ) -> Result<Vec<(i64, SubjectId)>, StoreError> {
        let (after_ms, after_id) = match after {
            Some((ms, id)) => (ms, id.as_uuid()),
            None => (i64::MIN, Uuid::nil()),
        };
        let rows = self
            .query(
                "SELECT k.created_ms, k.subject_id FROM subject_keys k \
                 JOIN subjects s ON s.id = k.subject_id \
                 WHERE k.created_ms < $1 AND s.status <> 'erased' \
                 AND (k.created_ms, k.subject_id) > ($2, $3) \
                 ORDER BY k.created_ms, k.subject_id LIMIT $4",
                &[&before_ms, &after_ms, &after_id, &(limit as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), SubjectId::from(r.get::<_, Uuid>(1))))
            .collect())
    }

    async fn count_keyed_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        let rows = self
            .query(
                "SELECT COUNT(*) FROM subject_keys k JOIN subjects s ON s.id = k.subject_id \
                 WHERE k.created_ms < $1 AND s.status <> 'erased'",
                &[&before_ms],
            )
            .await?;
        Ok(rows[0].get::<_, i64>(0) as u64)
    }

    async fn rekey_subject(
        &self,
        rotation: i64,
        subject: SubjectId,
        before_ms: i64,
        now_ms: i64,
        reseal: Reseal,
    ) -> Result<Rekeyed, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let Some((old, in_flight)) = lock_secrets(&tx, subject, before_ms, now_ms).await? else {
            return Ok(Rekeyed::Skipped);
        };
        if in_flight {
            return Ok(Rekeyed::Busy);
        }
        let new = reseal(old.clone())?;
        check_resealed(&old, &new)?;
        // Never before the cutoff, whatever this clock says: a key once replaced is never
        // taken again by the same rotation.
        write_secrets(&tx, &new, now_ms.max(before_ms)).await?;
        tx.execute(
            "UPDATE key_rotations SET done = done + 1 WHERE id = $1",
            &[&rotation],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Rekeyed::Done)
    }
}

impl PostgresStore {
    /// Runs one statement that writes something sealed under `subject`'s key of version
    /// `sealed`, behind [`guard_key`] in one transaction; without a sealed value, as is.
    pub(super) async fn query_guarded(
        &self,
        subject: SubjectId,
        sealed: Option<u32>,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        if sealed.is_none() {
            return self.query(sql, params).await;
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        guard_key(&tx, subject, sealed).await?;
        let st = tx.prepare_cached(sql).await.map_err(backend)?;
        let rows = tx.query(&st, params).await.map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(rows)
    }
}
