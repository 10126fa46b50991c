//! Data-subject requests on PostgreSQL: [`RequestStore`] for [`PostgresStore`], and the rows
//! `db copy` moves.

use async_trait::async_trait;
use custos_core::ids::{RequestId, SubjectId};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::convert::backend;
use super::{PostgresStore, Tx};
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::records::{decode_fields, encode_fields};
use crate::rekey::sealed_version;
use crate::requests::{RequestQuery, RequestRow, RequestStore, parse_kind, parse_status};
use crate::shared::{QueryParam, REQUEST_COLUMNS, request_query};

pub(super) fn to_request(r: &Row) -> Result<RequestRow, StoreError> {
    let kind: String = r.get(2);
    let status: String = r.get(3);
    let reasons: Vec<u8> = r.get(9);
    Ok(RequestRow {
        id: RequestId::from(r.get::<_, Uuid>(0)),
        subject_id: SubjectId::from(r.get::<_, Uuid>(1)),
        kind: parse_kind(&kind)?,
        status: parse_status(&status)?,
        due_ms: r.get(4),
        received_ms: r.get(5),
        closed_ms: r.get(6),
        version: r.get(7),
        body: r.get(8),
        reasons: decode_fields(&reasons)?,
    })
}

/// Why a guarded change touched no row: the request changed since it was read, or is gone.
const STALE_OR_GONE: &str = "SELECT EXISTS (SELECT 1 FROM requests WHERE id = $1)";

async fn stale_or_gone(store: &PostgresStore, id: RequestId) -> StoreError {
    match store.query(STALE_OR_GONE, &[&id.as_uuid()]).await {
        Ok(rows) if rows.first().is_some_and(|r| r.get::<_, bool>(0)) => {
            StoreError::Conflict("the request changed since it was read".into())
        }
        Ok(_) => StoreError::NotFound,
        Err(e) => e,
    }
}

/// A page of requests in id order, after `id`, for `db copy`.
pub(super) async fn export_requests(
    store: &PostgresStore,
    id: Uuid,
    limit: i64,
) -> Result<Vec<RequestRow>, StoreError> {
    store
        .query(
            &format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id > $1 ORDER BY id LIMIT $2"),
            &[&id, &limit],
        )
        .await?
        .iter()
        .map(to_request)
        .collect()
}

/// A copied request, unless its id is present.
pub(super) async fn import_request(tx: &Tx<'_>, r: &RequestRow) -> Result<(), StoreError> {
    let st = tx
        .prepare_cached(&format!(
            "INSERT INTO requests ({REQUEST_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
        ))
        .await
        .map_err(backend)?;
    tx.execute(
        &st,
        &[
            &r.id.as_uuid(),
            &r.subject_id.as_uuid(),
            &r.kind.as_str(),
            &r.status.as_str(),
            &r.due_ms,
            &r.received_ms,
            &r.closed_ms,
            &r.version,
            &r.body,
            &encode_fields(&r.reasons),
        ],
    )
    .await
    .map(drop)
    .map_err(backend)
}

#[async_trait]
impl RequestStore for PostgresStore {
    async fn insert_request(&self, row: RequestRow, audit: QueuedAudit) -> Result<(), StoreError> {
        // One statement: the request and its audit entry commit together, or neither does.
        let rows = self
            .query_guarded(
                row.subject_id,
                sealed_version(row.reasons.values())?,
                &format!(
                    "WITH r AS (INSERT INTO requests ({REQUEST_COLUMNS}) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
                     WHERE EXISTS (SELECT 1 FROM subject_keys WHERE subject_id = $2) \
                     RETURNING id) \
                     INSERT INTO audit_queue (subject_id, entry) SELECT $11, $12 FROM r \
                     RETURNING queue_id"
                ),
                &[
                    &row.id.as_uuid(),
                    &row.subject_id.as_uuid(),
                    &row.kind.as_str(),
                    &row.status.as_str(),
                    &row.due_ms,
                    &row.received_ms,
                    &row.closed_ms,
                    &row.version,
                    &row.body,
                    &encode_fields(&row.reasons),
                    &audit.subject_id.map(|s| s.as_uuid()),
                    &audit.entry,
                ],
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict("the request id is taken".into()),
                e => e,
            })?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn update_request(&self, row: RequestRow, audit: QueuedAudit) -> Result<(), StoreError> {
        let rows = self
            .query_guarded(
                row.subject_id,
                sealed_version(row.reasons.values())?,
                "WITH u AS (UPDATE requests SET status = $1, due_ms = $2, closed_ms = $3, \
                 body = $4, reasons = $5, version = version + 1 \
                 WHERE id = $6 AND version = $7 RETURNING id) \
                 INSERT INTO audit_queue (subject_id, entry) SELECT $8, $9 FROM u \
                 RETURNING queue_id",
                &[
                    &row.status.as_str(),
                    &row.due_ms,
                    &row.closed_ms,
                    &row.body,
                    &encode_fields(&row.reasons),
                    &row.id.as_uuid(),
                    &row.version,
                    &audit.subject_id.map(|s| s.as_uuid()),
                    &audit.entry,
                ],
            )
            .await?;
        if rows.is_empty() {
            return Err(stale_or_gone(self, row.id).await);
        }
        Ok(())
    }

    async fn delete_request(
        &self,
        id: RequestId,
        version: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let rows = self
            .query(
                "WITH d AS (DELETE FROM requests WHERE id = $1 AND version = $2 RETURNING id) \
                 INSERT INTO audit_queue (subject_id, entry) SELECT $3, $4 FROM d \
                 RETURNING queue_id",
                &[
                    &id.as_uuid(),
                    &version,
                    &audit.subject_id.map(|s| s.as_uuid()),
                    &audit.entry,
                ],
            )
            .await?;
        if rows.is_empty() {
            return Err(stale_or_gone(self, id).await);
        }
        Ok(())
    }

    async fn request(&self, id: RequestId) -> Result<Option<RequestRow>, StoreError> {
        self.query(
            &format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1"),
            &[&id.as_uuid()],
        )
        .await?
        .first()
        .map(to_request)
        .transpose()
    }

    async fn requests(&self, query: &RequestQuery) -> Result<Vec<RequestRow>, StoreError> {
        let (sql, params) = request_query(query);
        let values: Vec<Box<dyn ToSql + Sync + Send>> = params
            .into_iter()
            .map(|p| -> Box<dyn ToSql + Sync + Send> {
                match p {
                    QueryParam::Subject(s) => Box::new(s.as_uuid()),
                    QueryParam::Request(r) => Box::new(r.as_uuid()),
                    QueryParam::Name(n) => Box::new(n),
                    QueryParam::Int(i) => Box::new(i),
                }
            })
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect();
        self.query(&sql, &refs)
            .await?
            .iter()
            .map(to_request)
            .collect()
    }
}
