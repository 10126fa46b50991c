//! `custos db copy` on SQLite: [`CopyStore`] for [`SqliteStore`].

use async_trait::async_trait;
use custos_core::ids::SubjectId;
use rusqlite::{Connection, params};

use super::SqliteStore;
use super::audit::{head, to_head};
use super::breach::{
    export_alerts, export_canaries, export_incidents, insert_alert, insert_canary,
    insert_incident_row,
};
use super::convert::{backend, id_text, parse_id};
use super::holds::{hold_row, insert_hold, to_hold};
use super::keys::api_key;
use super::ledger::{consent_row, to_consent};
use super::operators::{export_operators, import_operator};
use super::outbox::{export_mail, insert_mail};
use super::records::{RawRecord, to_record};
use super::requests::{export_requests, insert_request};
use crate::audit::{AuditStore, TreeState};
use crate::copy::{CopyRow, CopyStore, Cursor, Table};
use crate::error::StoreError;
use crate::records::{IndexEntry, RecordRow, encode_fields};
use crate::shared::split_peaks;
use crate::subjects::ErasureRow;

#[async_trait]
impl CopyStore for SqliteStore {
    async fn count(&self, table: Table) -> Result<(u64, u64), StoreError> {
        self.read(move |c| {
            let one = |sql: &str| -> Result<u64, StoreError> {
                c.query_row(sql, [], |r| r.get::<_, i64>(0))
                    .map(|n| n as u64)
                    .map_err(backend)
            };
            Ok(match table {
                Table::VaultKeys => (one("SELECT count(*) FROM vault_keys")?, 0),
                Table::Subjects => (one("SELECT count(*) FROM subjects")?, 0),
                Table::Records => (
                    one("SELECT count(*) FROM records")?,
                    one("SELECT count(*) FROM blind_index")?,
                ),
                Table::ConsentEvents => (one("SELECT count(*) FROM consent_events")?, 0),
                Table::LegalHolds => (one("SELECT count(*) FROM legal_holds")?, 0),
                Table::Erasures => (one("SELECT count(*) FROM erasure_log")?, 0),
                Table::Requests => (one("SELECT count(*) FROM requests")?, 0),
                Table::Outbox => (one("SELECT count(*) FROM outbox")?, 0),
                Table::ApiKeys => (one("SELECT count(*) FROM api_keys")?, 0),
                Table::Operators => (one("SELECT count(*) FROM operators")?, 0),
                Table::Canaries => (one("SELECT count(*) FROM canaries")?, 0),
                Table::Alerts => (one("SELECT count(*) FROM alerts")?, 0),
                Table::Incidents => (one("SELECT count(*) FROM incidents")?, 0),
                Table::AuditLeaves => (one("SELECT count(*) FROM audit_leaves")?, 0),
                Table::AuditHeads => (one("SELECT count(*) FROM audit_heads")?, 0),
                Table::AuditState => (1, 0),
            })
        })
        .await
    }

    async fn export(
        &self,
        table: Table,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<CopyRow>, StoreError> {
        let (key, number) = match after {
            None => (String::new(), -1),
            Some(Cursor::Key(k)) => (k, -1),
            Some(Cursor::Number(n)) => (String::new(), n),
        };
        if table == Table::AuditLeaves {
            // Leaf indexes are dense, so a page is an index range.
            let from = (number + 1) as u64;
            let leaves = self.leaves(from, from + limit as u64).await?;
            return Ok(leaves.into_iter().map(CopyRow::Leaf).collect());
        }
        let limit = limit as i64;
        self.read(move |c| export_page(c, table, &key, number, limit))
            .await
    }

    async fn import(&self, rows: Vec<CopyRow>) -> Result<(), StoreError> {
        self.write(move |c| {
            for row in &rows {
                import_row(c, row)?;
            }
            Ok(())
        })
        .await
    }
}

/// One page of a table other than the leaves, after `key` or `number` (whichever its order
/// is by).
fn export_page(
    c: &Connection,
    table: Table,
    key: &str,
    number: i64,
    limit: i64,
) -> Result<Vec<CopyRow>, StoreError> {
    match table {
        Table::VaultKeys => {
            let mut s = c
                .prepare_cached(
                    "SELECT name, wrapped FROM vault_keys WHERE name > ?1 ORDER BY name LIMIT ?2",
                )
                .map_err(backend)?;
            let it = s
                .query_map(params![key, limit], |r| {
                    Ok(CopyRow::VaultKey {
                        name: r.get(0)?,
                        wrapped: r.get(1)?,
                    })
                })
                .map_err(backend)?;
            it.map(|r| r.map_err(backend)).collect()
        }
        Table::Subjects => export_subjects(c, key, limit),
        Table::Records => export_records(c, key, limit),
        Table::ApiKeys => {
            let mut s = c.prepare_cached("SELECT name, role, digest, created_ms, revoked_ms FROM api_keys WHERE name > ?1 ORDER BY name LIMIT ?2").map_err(backend)?;
            let it = s.query_map(params![key, limit], api_key).map_err(backend)?;
            it.map(|r| r.map_err(backend).map(CopyRow::ApiKey))
                .collect()
        }
        Table::Operators => export_operators(c, key, limit),
        Table::Canaries => Ok(export_canaries(c, key, limit)?
            .into_iter()
            .map(CopyRow::Canary)
            .collect()),
        Table::Alerts => Ok(export_alerts(c, key, limit)?
            .into_iter()
            .map(CopyRow::Alert)
            .collect()),
        Table::Incidents => Ok(export_incidents(c, key, limit)?
            .into_iter()
            .map(CopyRow::Incident)
            .collect()),
        Table::ConsentEvents => {
            let mut s = c.prepare_cached("SELECT seq, id, subject_id, entry FROM consent_events WHERE seq > ?1 ORDER BY seq LIMIT ?2").map_err(backend)?;
            let it = s
                .query_map(params![number, limit], consent_row)
                .map_err(backend)?;
            it.map(|r| {
                r.map_err(backend)
                    .and_then(to_consent)
                    .map(CopyRow::Consent)
            })
            .collect()
        }
        Table::LegalHolds => {
            let mut s = c.prepare_cached("SELECT record_id, collection, subject_id, reason, placed_by, placed_ms FROM legal_holds WHERE record_id > ?1 ORDER BY record_id LIMIT ?2").map_err(backend)?;
            let it = s
                .query_map(params![key, limit], hold_row)
                .map_err(backend)?;
            it.map(|r| r.map_err(backend).and_then(to_hold).map(CopyRow::Hold))
                .collect()
        }
        Table::Erasures => {
            let mut s = c.prepare_cached("SELECT subject_id, erased_ms FROM erasure_log WHERE subject_id > ?1 ORDER BY subject_id LIMIT ?2").map_err(backend)?;
            let it = s
                .query_map(params![key, limit], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(backend)?;
            it.map(|r| {
                let (id, erased_ms) = r.map_err(backend)?;
                Ok(CopyRow::Erasure(ErasureRow {
                    subject_id: parse_id(id)?,
                    erased_ms,
                }))
            })
            .collect()
        }
        Table::Requests => Ok(export_requests(c, key, limit)?
            .into_iter()
            .map(CopyRow::Request)
            .collect()),
        Table::Outbox => Ok(export_mail(c, key, limit)?
            .into_iter()
            .map(CopyRow::Mail)
            .collect()),
        Table::AuditLeaves => unreachable!("paged through leaves() above"),
        Table::AuditHeads => {
            let mut s = c.prepare_cached("SELECT size, root, timestamp_ms, signature FROM audit_heads WHERE size > ?1 ORDER BY size LIMIT ?2").map_err(backend)?;
            let it = s.query_map(params![number, limit], head).map_err(backend)?;
            it.map(|r| r.map_err(backend).and_then(to_head).map(CopyRow::Head))
                .collect()
        }
        Table::AuditState => {
            if number >= 1 {
                return Ok(Vec::new());
            }
            let (size, peaks): (i64, Vec<u8>) = c
                .query_row(
                    "SELECT size, peaks FROM audit_state WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(backend)?;
            Ok(vec![CopyRow::State(TreeState {
                size: size as u64,
                peaks: split_peaks(&peaks)?,
            })])
        }
    }
}

/// A page of subjects, each with its wrapped keys.
fn export_subjects(c: &Connection, key: &str, limit: i64) -> Result<Vec<CopyRow>, StoreError> {
    let mut s = c
        .prepare_cached(
            "SELECT id, status, created_ms FROM subjects WHERE id > ?1 ORDER BY id LIMIT ?2",
        )
        .map_err(backend)?;
    let heads = s
        .query_map(params![key, limit], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    let mut k = c
        .prepare_cached(
            "SELECT version, wrapped FROM subject_keys WHERE subject_id = ?1 ORDER BY version",
        )
        .map_err(backend)?;
    heads
        .into_iter()
        .map(|(id, status, created_ms)| {
            let keys = k
                .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(CopyRow::Subject {
                id: parse_id(id)?,
                status,
                created_ms,
                keys,
            })
        })
        .collect()
}

/// A page of records, each with its blind-index entries.
fn export_records(c: &Connection, key: &str, limit: i64) -> Result<Vec<CopyRow>, StoreError> {
    let mut s = c
        .prepare_cached(
            "SELECT id, subject_id, collection, fields, version, created_ms, updated_ms \
             FROM records WHERE id > ?1 ORDER BY id LIMIT ?2",
        )
        .map_err(backend)?;
    let raws = s
        .query_map(params![key, limit], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                Vec::new(),
            ))
        })
        .map_err(backend)?
        .collect::<Result<Vec<RawRecord>, _>>()
        .map_err(backend)?;
    let mut ix = c
        .prepare_cached(
            "SELECT field, digest, key_version FROM blind_index WHERE record_id = ?1 \
             ORDER BY key_version, field, digest",
        )
        .map_err(backend)?;
    raws.into_iter()
        .map(|raw| {
            let index = ix
                .query_map([&raw.0], |r| {
                    Ok(IndexEntry {
                        field: r.get(0)?,
                        digest: r.get(1)?,
                        key_version: r.get(2)?,
                    })
                })
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(CopyRow::Record {
                record: to_record(raw)?.record,
                index,
            })
        })
        .collect()
}

/// Writes one copied row unless its key is present; the tree state is overwritten.
fn import_row(c: &Connection, row: &CopyRow) -> Result<(), StoreError> {
    match row {
        CopyRow::VaultKey { name, wrapped } => {
            let root_version = crate::rotation::root_version_of(wrapped)?;
            c.prepare_cached(
                "INSERT INTO vault_keys (name, wrapped, root_version) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![name, wrapped, root_version]))
            .map_err(backend)?;
        }
        CopyRow::Subject {
            id,
            status,
            created_ms,
            keys,
        } => import_subject(c, *id, status, *created_ms, keys)?,
        CopyRow::Record { record, index } => import_record(c, record, index)?,
        CopyRow::Consent(e) => {
            c.prepare_cached("INSERT INTO consent_events (seq, id, subject_id, entry) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING")
                .and_then(|mut s| s.execute(params![e.seq, id_text(e.id), id_text(e.subject_id), e.entry]))
                .map_err(backend)?;
        }
        CopyRow::Hold(h) => match insert_hold(c, h) {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        },
        CopyRow::Erasure(e) => {
            c.prepare_cached("INSERT INTO erasure_log (subject_id, erased_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
                .and_then(|mut s| s.execute(params![id_text(e.subject_id), e.erased_ms]))
                .map_err(backend)?;
        }
        CopyRow::Request(r) => insert_request(c, r, true)?,
        CopyRow::Mail(m) => insert_mail(c, m, true)?,
        CopyRow::ApiKey(k) => {
            c.prepare_cached(
                "INSERT INTO api_keys (name, role, digest, created_ms, revoked_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![k.name, k.role, k.digest, k.created_ms, k.revoked_ms]))
            .map_err(backend)?;
        }
        CopyRow::Operator(o, recovery) => import_operator(c, o, recovery)?,
        CopyRow::Canary(k) => insert_canary(c, k, true)?,
        CopyRow::Alert(a) => drop(insert_alert(c, a)?),
        CopyRow::Incident(i) => insert_incident_row(c, i, true)?,
        CopyRow::Leaf(l) => {
            let (actor, time) = crate::shared::leaf_facts(&l.entry);
            c.prepare_cached("INSERT INTO audit_leaves (idx, subject_id, entry, leaf_hash, actor, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING")
                .and_then(|mut s| s.execute(params![l.index as i64, l.subject_id.map(id_text), l.entry, l.leaf_hash.to_vec(), actor, time]))
                .map_err(backend)?;
        }
        CopyRow::Head(h) => {
            c.prepare_cached(
                "INSERT INTO audit_heads (size, root, timestamp_ms, signature) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![h.head.size as i64, h.head.root.to_vec(), h.head.timestamp_ms as i64, h.signature.to_vec()])
            })
            .map_err(backend)?;
        }
        CopyRow::State(t) => {
            c.execute(
                "UPDATE audit_state SET size = ?1, peaks = ?2 WHERE id = 1",
                params![t.size as i64, t.peaks.concat()],
            )
            .map_err(backend)?;
        }
    }
    Ok(())
}

/// A subject and its wrapped keys.
fn import_subject(
    c: &Connection,
    id: SubjectId,
    status: &str,
    created_ms: i64,
    keys: &[(i64, Vec<u8>)],
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO subjects (id, status, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )
    .and_then(|mut s| s.execute(params![id_text(id), status, created_ms]))
    .map_err(backend)?;
    let mut s = c
        .prepare_cached(
            "INSERT INTO subject_keys (subject_id, version, wrapped, root_version, created_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )
        .map_err(backend)?;
    // A key's age is not copied: it is taken as its subject's, never younger than it is.
    for (v, w) in keys {
        let root_version = crate::rotation::root_version_of(w)?;
        s.execute(params![id_text(id), v, w, root_version, created_ms])
            .map_err(backend)?;
        let held: i64 = c
            .query_row(
                "SELECT version FROM subject_keys WHERE subject_id = ?1",
                [id_text(id)],
                |r| r.get(0),
            )
            .map_err(backend)?;
        if held != *v {
            return Err(crate::copy::key_replaced(id));
        }
    }
    Ok(())
}

/// A record and its blind-index entries.
fn import_record(c: &Connection, r: &RecordRow, index: &[IndexEntry]) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO records (id, subject_id, collection, fields, version, created_ms, updated_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            id_text(r.id),
            id_text(r.subject_id),
            r.collection,
            encode_fields(&r.fields),
            r.version,
            r.created_ms,
            r.updated_ms
        ])
    })
    .map_err(backend)?;
    let mut s = c
        .prepare_cached(
            "INSERT INTO blind_index (collection, field, digest, record_id, subject_id, key_version) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        )
        .map_err(backend)?;
    for e in index {
        s.execute(params![
            r.collection,
            e.field,
            e.digest,
            id_text(r.id),
            id_text(r.subject_id),
            e.key_version
        ])
        .map_err(backend)?;
    }
    Ok(())
}
