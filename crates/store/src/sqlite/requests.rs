//! Data-subject requests on SQLite: [`RequestStore`] for [`SqliteStore`], and the rows `db
//! copy` moves.

use async_trait::async_trait;
use custos_core::ids::RequestId;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::SqliteStore;
use super::audit::queue;
use super::convert::{backend, id_text, parse_id};
use super::rekey::check_key;
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::records::{decode_fields, encode_fields};
use crate::rekey::sealed_version;
use crate::requests::{RequestQuery, RequestRow, RequestStore, parse_kind, parse_status};
use crate::shared::{QueryParam, REQUEST_COLUMNS, request_query};

/// A request row as read, in [`REQUEST_COLUMNS`] order.
type RawRequest = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
    Vec<u8>,
    Vec<u8>,
);

pub(super) fn request_row(row: &Row<'_>) -> rusqlite::Result<RawRequest> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
    ))
}

pub(super) fn to_request(raw: RawRequest) -> Result<RequestRow, StoreError> {
    let (id, subject, kind, status, due_ms, received_ms, closed_ms, version, body, reasons) = raw;
    Ok(RequestRow {
        id: parse_id(id)?,
        subject_id: parse_id(subject)?,
        kind: parse_kind(&kind)?,
        status: parse_status(&status)?,
        due_ms,
        received_ms,
        closed_ms,
        version,
        body,
        reasons: decode_fields(&reasons)?,
    })
}

/// Inserts a request as it is; `or_ignore` leaves one whose id is present alone (`db copy`).
pub(super) fn insert_request(
    c: &Connection,
    r: &RequestRow,
    or_ignore: bool,
) -> Result<(), StoreError> {
    let conflict = if or_ignore {
        " ON CONFLICT DO NOTHING"
    } else {
        ""
    };
    c.prepare_cached(&format!(
        "INSERT INTO requests ({REQUEST_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10){conflict}"
    ))
    .and_then(|mut s| {
        s.execute(params![
            id_text(r.id),
            id_text(r.subject_id),
            r.kind.as_str(),
            r.status.as_str(),
            r.due_ms,
            r.received_ms,
            r.closed_ms,
            r.version,
            r.body,
            encode_fields(&r.reasons)
        ])
    })
    .map(drop)
    .map_err(backend)
}

/// A page of requests in id order, after `key`, for `db copy`.
pub(super) fn export_requests(
    c: &Connection,
    key: &str,
    limit: i64,
) -> Result<Vec<RequestRow>, StoreError> {
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))
        .map_err(backend)?;
    let rows = s
        .query_map(params![key, limit], request_row)
        .map_err(backend)?;
    rows.map(|r| r.map_err(backend).and_then(to_request))
        .collect()
}

/// Whether a request exists: what tells a stale version from a vanished request.
fn exists(c: &Connection, id: RequestId) -> Result<bool, StoreError> {
    c.prepare_cached("SELECT 1 FROM requests WHERE id = ?1")
        .and_then(|mut s| s.query_row([id_text(id)], |_| Ok(())).optional())
        .map(|found| found.is_some())
        .map_err(backend)
}

fn stale_or_gone(c: &Connection, id: RequestId) -> StoreError {
    match exists(c, id) {
        Ok(true) => StoreError::Conflict("the request changed since it was read".into()),
        Ok(false) => StoreError::NotFound,
        Err(e) => e,
    }
}

#[async_trait]
impl RequestStore for SqliteStore {
    async fn insert_request(&self, row: RequestRow, audit: QueuedAudit) -> Result<(), StoreError> {
        self.write(move |c| {
            let keyed: Option<i64> = c
                .prepare_cached("SELECT 1 FROM subject_keys WHERE subject_id = ?1 LIMIT 1")
                .and_then(|mut s| {
                    s.query_row([id_text(row.subject_id)], |r| r.get(0))
                        .optional()
                })
                .map_err(backend)?;
            if keyed.is_none() {
                return Err(StoreError::NotFound);
            }
            check_key(c, row.subject_id, sealed_version(row.reasons.values())?)?;
            insert_request(c, &row, false).map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict("the request id is taken".into()),
                e => e,
            })?;
            queue(c, &audit)
        })
        .await
    }

    async fn update_request(&self, row: RequestRow, audit: QueuedAudit) -> Result<(), StoreError> {
        self.write(move |c| {
            check_key(c, row.subject_id, sealed_version(row.reasons.values())?)?;
            let n = c
                .prepare_cached(
                    "UPDATE requests SET status = ?1, due_ms = ?2, closed_ms = ?3, body = ?4, \
                     reasons = ?5, version = version + 1 WHERE id = ?6 AND version = ?7",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        row.status.as_str(),
                        row.due_ms,
                        row.closed_ms,
                        row.body,
                        encode_fields(&row.reasons),
                        id_text(row.id),
                        row.version
                    ])
                })
                .map_err(backend)?;
            if n == 0 {
                return Err(stale_or_gone(c, row.id));
            }
            queue(c, &audit)
        })
        .await
    }

    async fn delete_request(
        &self,
        id: RequestId,
        version: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            let n = c
                .prepare_cached("DELETE FROM requests WHERE id = ?1 AND version = ?2")
                .and_then(|mut s| s.execute(params![id_text(id), version]))
                .map_err(backend)?;
            if n == 0 {
                return Err(stale_or_gone(c, id));
            }
            queue(c, &audit)
        })
        .await
    }

    async fn request(&self, id: RequestId) -> Result<Option<RequestRow>, StoreError> {
        self.read(move |c| {
            let raw = c
                .prepare_cached(&format!(
                    "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?1"
                ))
                .and_then(|mut s| s.query_row([id_text(id)], request_row).optional())
                .map_err(backend)?;
            raw.map(to_request).transpose()
        })
        .await
    }

    async fn requests(&self, query: &RequestQuery) -> Result<Vec<RequestRow>, StoreError> {
        let (sql, params) = request_query(query);
        let values: Vec<Value> = params
            .into_iter()
            .map(|p| match p {
                QueryParam::Subject(s) => Value::Text(id_text(s)),
                QueryParam::Request(r) => Value::Text(id_text(r)),
                QueryParam::Name(n) => Value::Text(n.to_owned()),
                QueryParam::Int(i) => Value::Integer(i),
            })
            .collect();
        self.read(move |c| {
            let mut s = c.prepare_cached(&sql).map_err(backend)?;
            let rows = s
                .query_map(params_from_iter(values), request_row)
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_request))
                .collect()
        })
        .await
    }
}
