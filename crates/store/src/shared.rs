//! What both backends share: statements they run alike and the encodings of stored values.
//! Backends import from here, never from each other.

use custos_core::ids::{RequestId, SubjectId};
use custos_core::merkle::Hash;

use crate::error::StoreError;
use crate::requests::RequestQuery;

/// The columns a read of a record with its subject's key selects, in the order both backends
/// read them; each appends its own conditions.
pub(crate) const RECORD_WITH_KEY: &str = "SELECT r.id, r.subject_id, r.collection, r.fields, r.version, r.created_ms, \
     r.updated_ms, k.wrapped, \
     EXISTS (SELECT 1 FROM consent_events c WHERE c.subject_id = r.subject_id) \
     FROM records r JOIN subject_keys k ON k.subject_id = r.subject_id";

/// Who made an audit entry and when, read from its bytes for the columns the log is
/// searched by (`audit_leaves.actor`, `time`); `None` for bytes that are not an entry,
/// which `audit verify` names.
pub(crate) fn leaf_facts(entry: &[u8]) -> (Option<String>, Option<String>) {
    match custos_core::audit::AuditEntry::from_bytes(entry) {
        Ok(e) => (Some(e.actor), Some(e.time)),
        Err(_) => (None, None),
    }
}

/// The conditions of [`crate::AuditStore::leaves_by`], with `$n` placeholders from 1 in the
/// order actor, from, to (only those given), and the values to bind.
pub(crate) fn leaves_by_sql<'a>(
    actor: Option<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
) -> (String, Vec<&'a str>) {
    let mut conds = Vec::new();
    let mut values = Vec::new();
    for (value, cond) in [(actor, "actor = "), (from, "time >= "), (to, "time < ")] {
        if let Some(v) = value {
            values.push(v);
            conds.push(format!("{cond}${}", values.len()));
        }
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    (
        format!("SELECT idx, subject_id, entry, leaf_hash FROM audit_leaves{filter} ORDER BY idx"),
        values,
    )
}

/// Takes the sequencer lease when it is free, lapsed or already ours; returns a row when
/// taken. The same statement runs on SQLite and PostgreSQL.
pub(crate) const LEASE_SQL: &str = "INSERT INTO leases (name, holder, expires_ms) \
     VALUES ('sequencer', CAST($1 AS TEXT), CAST($2 AS BIGINT) + CAST($3 AS BIGINT)) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms \
     WHERE leases.holder = excluded.holder OR leases.expires_ms < CAST($2 AS BIGINT) RETURNING holder";

/// The columns of a request, in the order both backends read them.
pub(crate) const REQUEST_COLUMNS: &str =
    "id, subject_id, kind, status, due_ms, received_ms, closed_ms, version, body, reasons";

/// A value a request list binds, as each backend types it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueryParam {
    /// A subject id.
    Subject(SubjectId),
    /// A request id.
    Request(RequestId),
    /// A kind's or status's name.
    Name(&'static str),
    /// An instant or a count.
    Int(i64),
}

/// The statement a [`RequestQuery`] runs and the values it binds, in the order their
/// placeholders (`$1`, `$2`, ...) first appear: both backends number them alike.
pub(crate) fn request_query(q: &RequestQuery) -> (String, Vec<QueryParam>) {
    /// Binds `p` to the next placeholder, and names it.
    fn next(p: QueryParam, params: &mut Vec<QueryParam>) -> String {
        params.push(p);
        format!("${}", params.len())
    }
    let mut params = Vec::new();
    let mut conditions = Vec::new();
    if let Some(s) = q.subject {
        conditions.push(format!(
            "subject_id = {}",
            next(QueryParam::Subject(s), &mut params)
        ));
    }
    if !q.statuses.is_empty() {
        let names: Vec<String> = q
            .statuses
            .iter()
            .map(|s| next(QueryParam::Name(s.as_str()), &mut params))
            .collect();
        conditions.push(format!("status IN ({})", names.join(", ")));
    }
    if let Some(k) = q.kind {
        conditions.push(format!(
            "kind = {}",
            next(QueryParam::Name(k.as_str()), &mut params)
        ));
    }
    if let Some(t) = q.due_by {
        conditions.push(format!(
            "due_ms <= {}",
            next(QueryParam::Int(t), &mut params)
        ));
    }
    if let Some(t) = q.closed_before {
        conditions.push(format!(
            "closed_ms < {}",
            next(QueryParam::Int(t), &mut params)
        ));
    }
    if let Some((due, id)) = q.after {
        let due = next(QueryParam::Int(due), &mut params);
        let id = next(QueryParam::Request(id), &mut params);
        conditions.push(format!(
            "(due_ms > {due} OR (due_ms = {due} AND id > {id}))"
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let limit = next(QueryParam::Int(q.limit as i64), &mut params);
    let sql =
        format!("SELECT {REQUEST_COLUMNS} FROM requests{filter} ORDER BY due_ms, id LIMIT {limit}");
    (sql, params)
}

/// A stored hash, which must be 32 bytes.
pub(crate) fn hash32(b: Vec<u8>) -> Result<Hash, StoreError> {
    b.try_into()
        .map_err(|_| StoreError::Corrupt("a hash column is not 32 bytes".into()))
}

/// A stored Ed25519 signature, which must be 64 bytes.
pub(crate) fn signature64(b: Vec<u8>) -> Result<[u8; 64], StoreError> {
    b.try_into()
        .map_err(|_| StoreError::Corrupt("a signature is not 64 bytes".into()))
}

/// The tree state's peaks, stored concatenated.
pub(crate) fn split_peaks(peaks: &[u8]) -> Result<Vec<Hash>, StoreError> {
    if !peaks.len().is_multiple_of(32) {
        return Err(StoreError::Corrupt(
            "the tree state's peaks are not whole hashes".into(),
        ));
    }
    peaks.chunks(32).map(|c| hash32(c.to_vec())).collect()
}

#[cfg(test)]
mod tests {
    use custos_core::rights::{RequestKind, RequestStatus};

    use super::*;

    /// Placeholders are numbered in the order they first appear, so SQLite (which numbers
    /// `$N` names by first appearance) and PostgreSQL bind the same values to them.
    #[test]
    fn a_request_query_numbers_its_placeholders_in_order() {
        let q = RequestQuery {
            statuses: vec![RequestStatus::Received, RequestStatus::Extended],
            kind: Some(RequestKind::Erasure),
            due_by: Some(7),
            after: Some((5, RequestId::untimed())),
            limit: 10,
            ..RequestQuery::default()
        };
        let (sql, params) = request_query(&q);
        assert!(
            sql.ends_with(
                "WHERE status IN ($1, $2) AND kind = $3 AND due_ms <= $4 \
                 AND (due_ms > $5 OR (due_ms = $5 AND id > $6)) ORDER BY due_ms, id LIMIT $7"
            ),
            "{sql}"
        );
        assert_eq!(params.len(), 7);
        assert_eq!(params[2], QueryParam::Name("erasure"));
        let (sql, params) = request_query(&RequestQuery::default());
        assert!(
            sql.ends_with("FROM requests ORDER BY due_ms, id LIMIT $1"),
            "{sql}"
        );
        assert_eq!(params, [QueryParam::Int(0)]);
    }
    /// What both backends need comes from this file: neither backend names the other.
    #[test]
    fn backends_never_import_each_other() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for (dir, other) in [("sqlite", "postgres"), ("postgres", "sqlite")] {
            for entry in std::fs::read_dir(src.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                for needle in [format!("crate::{other}"), format!("super::super::{other}")] {
                    assert!(!text.contains(&needle), "{} names {needle}", path.display());
                }
            }
        }
    }
}
