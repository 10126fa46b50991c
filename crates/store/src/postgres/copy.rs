//! `custos db copy` on PostgreSQL: [`CopyStore`] for [`PostgresStore`].

use async_trait::async_trait;
use custos_core::audit::SignedTreeHead;
use custos_core::ids::{RecordId, SubjectId};
use uuid::Uuid;

use super::audit::to_head;
use super::breach;
use super::convert::backend;
use super::holds::to_hold;
use super::keys::to_api_key;
use super::ledger::to_consent;
use super::operators::{export_operators, import_operator};
use super::outbox::{export_mail, import_mail};
use super::requests::{export_requests, import_request};
use super::{PostgresStore, Tx};
use crate::audit::{AuditStore, LeafRow};
use crate::copy::{CopyRow, CopyStore, Cursor, Table};
use crate::error::StoreError;
use crate::records::{IndexEntry, RecordRow, decode_fields, encode_fields};
use crate::subjects::ErasureRow;

#[async_trait]
impl CopyStore for PostgresStore {
    async fn count(&self, table: Table) -> Result<(u64, u64), StoreError> {
        let one = |sql: &'static str| async move {
            self.query(sql, &[])
                .await
                .map(|r| r[0].get::<_, i64>(0) as u64)
        };
        Ok(match table {
            Table::VaultKeys => (one("SELECT count(*) FROM vault_keys").await?, 0),
            Table::Subjects => (one("SELECT count(*) FROM subjects").await?, 0),
            Table::Records => (
                one("SELECT count(*) FROM records").await?,
                one("SELECT count(*) FROM blind_index").await?,
            ),
            Table::ConsentEvents => (one("SELECT count(*) FROM consent_events").await?, 0),
            Table::LegalHolds => (one("SELECT count(*) FROM legal_holds").await?, 0),
            Table::Erasures => (one("SELECT count(*) FROM erasure_log").await?, 0),
            Table::Requests => (one("SELECT count(*) FROM requests").await?, 0),
            Table::Outbox => (one("SELECT count(*) FROM outbox").await?, 0),
            Table::ApiKeys => (one("SELECT count(*) FROM api_keys").await?, 0),
            Table::Operators => (one("SELECT count(*) FROM operators").await?, 0),
            Table::Canaries => (one("SELECT count(*) FROM canaries").await?, 0),
            Table::Alerts => (one("SELECT count(*) FROM alerts").await?, 0),
            Table::Incidents => (one("SELECT count(*) FROM incidents").await?, 0),
            Table::AuditLeaves => (one("SELECT count(*) FROM audit_leaves").await?, 0),
            Table::AuditHeads => (one("SELECT count(*) FROM audit_heads").await?, 0),
            Table::AuditState => (1, 0),
        })
    }

    async fn export(
        &self,
        table: Table,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<CopyRow>, StoreError> {
        let (key, number, id) = page_start(table, after)?;
        let limit = limit as i64;
        match table {
            Table::VaultKeys => Ok(self
                .query(
                    "SELECT name, wrapped FROM vault_keys WHERE name > $1 ORDER BY name LIMIT $2",
                    &[&key, &limit],
                )
                .await?
                .iter()
                .map(|r| CopyRow::VaultKey {
                    name: r.get(0),
                    wrapped: r.get(1),
                })
                .collect()),
            Table::Subjects => self.export_subjects(id, limit).await,
            Table::Operators => export_operators(self, id, limit).await,
            Table::Canaries => Ok(breach::export_page(self, "canaries", id, limit)
                .await?
                .iter()
                .map(|r| CopyRow::Canary(breach::to_canary(r)))
                .collect()),
            Table::Alerts => Ok(breach::export_page(self, "alerts", id, limit)
                .await?
                .iter()
                .map(|r| CopyRow::Alert(breach::to_alert(r)))
                .collect()),
            Table::Incidents => Ok(breach::export_page(self, "incidents", id, limit)
                .await?
                .iter()
                .map(|r| CopyRow::Incident(breach::to_incident(r)))
                .collect()),
            Table::Records => self.export_records(id, limit).await,
            Table::ConsentEvents => Ok(self
                .query(
                    "SELECT seq, id, subject_id, entry FROM consent_events \
                     WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&number, &limit],
                )
                .await?
                .iter()
                .map(|r| CopyRow::Consent(to_consent(r)))
                .collect()),
            Table::LegalHolds => Ok(self
                .query(
                    "SELECT record_id, collection, subject_id, reason, placed_by, placed_ms \
                     FROM legal_holds WHERE record_id > $1 ORDER BY record_id LIMIT $2",
                    &[&id, &limit],
                )
                .await?
                .iter()
                .map(|r| CopyRow::Hold(to_hold(r)))
                .collect()),
            Table::Erasures => Ok(self
                .query(
                    "SELECT subject_id, erased_ms FROM erasure_log \
                     WHERE subject_id > $1 ORDER BY subject_id LIMIT $2",
                    &[&id, &limit],
                )
                .await?
                .iter()
                .map(|r| {
                    CopyRow::Erasure(ErasureRow {
                        subject_id: SubjectId::from(r.get::<_, Uuid>(0)),
                        erased_ms: r.get(1),
                    })
                })
                .collect()),
            Table::Requests => Ok(export_requests(self, id, limit)
                .await?
                .into_iter()
                .map(CopyRow::Request)
                .collect()),
            Table::Outbox => Ok(export_mail(self, id, limit)
                .await?
                .into_iter()
                .map(CopyRow::Mail)
                .collect()),
            Table::ApiKeys => Ok(self
                .query(
                    "SELECT name, role, digest, created_ms, revoked_ms FROM api_keys \
                     WHERE name > $1 ORDER BY name LIMIT $2",
                    &[&key, &limit],
                )
                .await?
                .iter()
                .map(|r| CopyRow::ApiKey(to_api_key(r)))
                .collect()),
            // Leaf indexes are dense, so a page is an index range.
            Table::AuditLeaves => Ok(self
                .leaves((number + 1) as u64, (number + 1) as u64 + limit as u64)
                .await?
                .into_iter()
                .map(CopyRow::Leaf)
                .collect()),
            Table::AuditHeads => self
                .query(
                    "SELECT size, root, timestamp_ms, signature FROM audit_heads \
                     WHERE size > $1 ORDER BY size LIMIT $2",
                    &[&number, &limit],
                )
                .await?
                .iter()
                .map(|r| to_head(r).map(CopyRow::Head))
                .collect(),
            Table::AuditState => {
                if number >= 1 {
                    return Ok(Vec::new());
                }
                Ok(vec![CopyRow::State(self.tree_state().await?)])
            }
        }
    }

    async fn import(&self, rows: Vec<CopyRow>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        for row in &rows {
            import_row(&tx, row).await?;
        }
        if rows.iter().any(|r| matches!(r, CopyRow::Consent(_))) {
            // Events copied in keep their order; the sequence must issue after them.
            tx.execute(
                "SELECT setval(pg_get_serial_sequence('consent_events', 'seq'), \
                 (SELECT max(seq) FROM consent_events))",
                &[],
            )
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }
}

/// Where a page starts: after this text key, number, or id (the nil id before every real
/// one), whichever the table's order is by.
fn page_start(table: Table, after: Option<Cursor>) -> Result<(String, i64, Uuid), StoreError> {
    let (key, number) = match after {
        None => (String::new(), -1i64),
        Some(Cursor::Key(k)) => (k, -1),
        Some(Cursor::Number(n)) => (String::new(), n),
    };
    // Subjects, records, holds, requests and mail are keyed by UUID; the nil UUID sorts before
    // every real one.
    let id = if key.is_empty()
        || !matches!(
            table,
            Table::Subjects
                | Table::Records
                | Table::LegalHolds
                | Table::Erasures
                | Table::Requests
                | Table::Outbox
                | Table::Operators
                | Table::Canaries
                | Table::Alerts
                | Table::Incidents
        ) {
        Uuid::nil()
    } else {
        key.parse::<Uuid>()
            .map_err(|_| StoreError::Backend("a copy cursor is not an id".into()))?
    };
    Ok((key, number, id))
}

impl PostgresStore {
    /// A page of subjects, each with its wrapped keys.
    async fn export_subjects(&self, id: Uuid, limit: i64) -> Result<Vec<CopyRow>, StoreError> {
        let rows = self
            .query(
                "SELECT s.id, s.status, s.created_ms, \
                 array_agg(k.version ORDER BY k.version), array_agg(k.wrapped ORDER BY k.version) \
                 FROM (SELECT * FROM subjects WHERE id > $1 ORDER BY id LIMIT $2) s \
                 JOIN subject_keys k ON k.subject_id = s.id \
                 GROUP BY s.id, s.status, s.created_ms ORDER BY s.id",
                &[&id, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let versions: Vec<i32> = r.get(3);
                let wrapped: Vec<Vec<u8>> = r.get(4);
                CopyRow::Subject {
                    id: SubjectId::from(r.get::<_, Uuid>(0)),
                    status: r.get(1),
                    created_ms: r.get(2),
                    keys: versions.into_iter().map(i64::from).zip(wrapped).collect(),
                }
            })
            .collect())
    }

    /// A page of records, each with its blind-index entries.
    async fn export_records(&self, id: Uuid, limit: i64) -> Result<Vec<CopyRow>, StoreError> {
        let rows = self
            .query(
                "SELECT r.id, r.subject_id, r.collection, r.fields, r.version, r.created_ms, r.updated_ms, \
                 coalesce(array_agg(b.field ORDER BY b.field, b.digest) FILTER (WHERE b.field IS NOT NULL), '{}'), \
                 coalesce(array_agg(b.digest ORDER BY b.field, b.digest) FILTER (WHERE b.field IS NOT NULL), '{}'), \
                 coalesce(array_agg(b.key_version ORDER BY b.field, b.digest) FILTER (WHERE b.field IS NOT NULL), '{}') \
                 FROM (SELECT * FROM records WHERE id > $1 ORDER BY id LIMIT $2) r \
                 LEFT JOIN blind_index b ON b.record_id = r.id \
                 GROUP BY r.id, r.subject_id, r.collection, r.fields, r.version, r.created_ms, r.updated_ms \
                 ORDER BY r.id",
                &[&id, &limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let fields: Vec<String> = r.get(7);
                let digests: Vec<Vec<u8>> = r.get(8);
                let versions: Vec<i32> = r.get(9);
                let bytes: Vec<u8> = r.get(3);
                Ok(CopyRow::Record {
                    record: RecordRow {
                        id: RecordId::from(r.get::<_, Uuid>(0)),
                        subject_id: SubjectId::from(r.get::<_, Uuid>(1)),
                        collection: r.get(2),
                        fields: decode_fields(&bytes)?,
                        version: r.get(4),
                        created_ms: r.get(5),
                        updated_ms: r.get(6),
                    },
                    index: fields
                        .into_iter()
                        .zip(digests)
                        .zip(versions)
                        .map(|((field, digest), v)| IndexEntry {
                            field,
                            digest,
                            key_version: v as u32,
                        })
                        .collect(),
                })
            })
            .collect()
    }
}

/// Writes one copied row unless its key is present; the tree state is overwritten.
async fn import_row(tx: &Tx<'_>, row: &CopyRow) -> Result<(), StoreError> {
    match row {
        CopyRow::VaultKey { name, wrapped } => {
            tx.execute(
                "INSERT INTO vault_keys (name, wrapped) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[name, wrapped],
            )
            .await
            .map_err(backend)?;
        }
        CopyRow::Subject {
            id,
            status,
            created_ms,
            keys,
        } => import_subject(tx, *id, status, *created_ms, keys).await?,
        CopyRow::Record { record, index } => import_record(tx, record, index).await?,
        CopyRow::Consent(e) => {
            tx.execute(
                "INSERT INTO consent_events (seq, id, subject_id, entry) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&e.seq, &e.id.as_uuid(), &e.subject_id.as_uuid(), &e.entry],
            )
            .await
            .map_err(backend)?;
        }
        CopyRow::Hold(h) => {
            tx.execute(
                "INSERT INTO legal_holds \
                 (record_id, collection, subject_id, reason, placed_by, placed_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &h.record_id.as_uuid(),
                    &h.collection,
                    &h.subject_id.as_uuid(),
                    &h.reason,
                    &h.placed_by,
                    &h.placed_ms,
                ],
            )
            .await
            .map_err(backend)?;
        }
        CopyRow::Erasure(e) => {
            tx.execute(
                "INSERT INTO erasure_log (subject_id, erased_ms) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                &[&e.subject_id.as_uuid(), &e.erased_ms],
            )
            .await
            .map_err(backend)?;
        }
        CopyRow::Request(r) => import_request(tx, r).await?,
        CopyRow::Mail(m) => import_mail(tx, m).await?,
        CopyRow::ApiKey(k) => {
            tx.execute(
                "INSERT INTO api_keys (name, role, digest, created_ms, revoked_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&k.name, &k.role, &k.digest, &k.created_ms, &k.revoked_ms],
            )
            .await
            .map_err(backend)?;
        }
        CopyRow::Operator(o, recovery) => import_operator(tx, o, recovery).await?,
        CopyRow::Canary(k) => breach::insert_canary(tx, k, "ON CONFLICT DO NOTHING").await?,
        CopyRow::Alert(a) => drop(breach::insert_alert(tx, a).await?),
        CopyRow::Incident(i) => {
            breach::insert_incident_row(tx, i, "ON CONFLICT DO NOTHING").await?
        }
        CopyRow::Leaf(l) => import_leaf(tx, l).await?,
        CopyRow::Head(h) => import_head(tx, h).await?,
        CopyRow::State(t) => {
            tx.execute(
                "UPDATE audit_state SET size = $1, peaks = $2 WHERE id = 1",
                &[&(t.size as i64), &t.peaks.concat()],
            )
            .await
            .map_err(backend)?;
        }
    }
    Ok(())
}

/// A subject and its wrapped keys.
async fn import_subject(
    tx: &Tx<'_>,
    id: SubjectId,
    status: &str,
    created_ms: i64,
    keys: &[(i64, Vec<u8>)],
) -> Result<(), StoreError> {
    let st = tx
        .prepare_cached(
            "INSERT INTO subjects (id, status, created_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(backend)?;
    tx.execute(&st, &[&id.as_uuid(), &status, &created_ms])
        .await
        .map_err(backend)?;
    let st = tx
        .prepare_cached(
            "INSERT INTO subject_keys (subject_id, version, wrapped, created_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(backend)?;
    for (v, w) in keys {
        let v = i32::try_from(*v)
            .map_err(|_| StoreError::Corrupt("a key version is out of range".into()))?;
        // A key's age is not copied: it is taken as its subject's, never younger than it is.
        tx.execute(&st, &[&id.as_uuid(), &v, w, &created_ms])
            .await
            .map_err(backend)?;
        let held: i32 = tx
            .query_one(
                "SELECT version FROM subject_keys WHERE subject_id = $1",
                &[&id.as_uuid()],
            )
            .await
            .map_err(backend)?
            .get(0);
        if held != v {
            return Err(crate::copy::key_replaced(id));
        }
    }
    Ok(())
}

/// A record and its blind-index entries.
async fn import_record(tx: &Tx<'_>, r: &RecordRow, index: &[IndexEntry]) -> Result<(), StoreError> {
    let st = tx
        .prepare_cached(
            "INSERT INTO records (id, subject_id, collection, fields, version, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(backend)?;
    tx.execute(
        &st,
        &[
            &r.id.as_uuid(),
            &r.subject_id.as_uuid(),
            &r.collection,
            &encode_fields(&r.fields),
            &r.version,
            &r.created_ms,
            &r.updated_ms,
        ],
    )
    .await
    .map_err(backend)?;
    let fields: Vec<&str> = index.iter().map(|e| e.field.as_str()).collect();
    let digests: Vec<&[u8]> = index.iter().map(|e| e.digest.as_slice()).collect();
    let versions: Vec<i32> = index.iter().map(|e| e.key_version as i32).collect();
    let st = tx
        .prepare_cached(
            "INSERT INTO blind_index (collection, field, digest, record_id, subject_id, key_version) \
             SELECT $1, f, d, $4, $5, v FROM unnest($2::text[], $3::bytea[], $6::int[]) AS u(f, d, v) \
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(backend)?;
    tx.execute(
        &st,
        &[
            &r.collection,
            &fields,
            &digests,
            &r.id.as_uuid(),
            &r.subject_id.as_uuid(),
            &versions,
        ],
    )
    .await
    .map_err(backend)?;
    Ok(())
}

/// An integrated audit entry.
async fn import_leaf(tx: &Tx<'_>, l: &LeafRow) -> Result<(), StoreError> {
    let (actor, time) = crate::shared::leaf_facts(&l.entry);
    let st = tx
        .prepare_cached(
            "INSERT INTO audit_leaves (idx, subject_id, entry, leaf_hash, actor, time) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(backend)?;
    tx.execute(
        &st,
        &[
            &(l.index as i64),
            &l.subject_id.map(|s| s.as_uuid()),
            &l.entry,
            &l.leaf_hash.as_slice(),
            &actor,
            &time,
        ],
    )
    .await
    .map_err(backend)?;
    Ok(())
}

/// A signed tree head.
async fn import_head(tx: &Tx<'_>, h: &SignedTreeHead) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO audit_heads (size, root, timestamp_ms, signature) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
        &[
            &(h.head.size as i64),
            &h.head.root.as_slice(),
            &(h.head.timestamp_ms as i64),
            &h.signature.as_slice(),
        ],
    )
    .await
    .map_err(backend)?;
    Ok(())
}
