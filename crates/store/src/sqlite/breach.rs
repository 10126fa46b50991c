//! Canaries, the detector, alerts and incidents on SQLite: [`BreachStore`] for
//! [`SqliteStore`]. The one writer thread serialises detector steps, so the position check
//! and the counts it guards commit together.

use async_trait::async_trait;
use custos_core::ids::{AlertId, IncidentId, RecordId};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::audit::queue;
use super::convert::{backend, id_text, parse_id};
use super::outbox::insert_mail;
use crate::audit::QueuedAudit;
use crate::breach::{
    AlertRow, BreachStore, CanaryRow, DetectorStep, IncidentRow, NewAlert, WindowCount,
};
use crate::error::StoreError;

const ALERT_COLUMNS: &str =
    "id, dedup, kind, actor, raised_ms, acknowledged_ms, acknowledged_by, body";
const INCIDENT_COLUMNS: &str = "id, status, aware_ms, opened_ms, changed_ms, sealed";

type RawAlert = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Vec<u8>,
);

fn alert_row(r: &Row<'_>) -> rusqlite::Result<RawAlert> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn to_alert(raw: RawAlert) -> Result<AlertRow, StoreError> {
    Ok(AlertRow {
        id: parse_id(raw.0)?,
        dedup: raw.1,
        kind: raw.2,
        actor: raw.3,
        raised_ms: raw.4,
        acknowledged_ms: raw.5,
        acknowledged_by: raw.6,
        body: raw.7,
    })
}

type RawIncident = (String, String, i64, i64, i64, Vec<u8>);

fn incident_row(r: &Row<'_>) -> rusqlite::Result<RawIncident> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn to_incident(raw: RawIncident) -> Result<IncidentRow, StoreError> {
    Ok(IncidentRow {
        id: parse_id(raw.0)?,
        status: raw.1,
        aware_ms: raw.2,
        opened_ms: raw.3,
        changed_ms: raw.4,
        sealed: raw.5,
    })
}

/// Inserts a canary row; `or_ignore` for `db copy`.
pub(super) fn insert_canary(
    c: &Connection,
    r: &CanaryRow,
    or_ignore: bool,
) -> Result<(), StoreError> {
    let conflict = if or_ignore {
        " ON CONFLICT DO NOTHING"
    } else {
        ""
    };
    c.prepare_cached(&format!(
        "INSERT INTO canaries (record_id, subject_id, collection, planted_ms) VALUES (?1, ?2, ?3, ?4){conflict}"
    ))
    .and_then(|mut s| {
        s.execute(params![id_text(r.record_id), id_text(r.subject_id), r.collection, r.planted_ms])
    })
    .map(drop)
    .map_err(backend)
}

/// Inserts an alert unless its id or dedup key is taken; whether it was.
pub(super) fn insert_alert(c: &Connection, a: &AlertRow) -> Result<bool, StoreError> {
    c.prepare_cached(&format!(
        "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING"
    ))
    .and_then(|mut s| {
        s.execute(params![
            id_text(a.id),
            a.dedup,
            a.kind,
            a.actor,
            a.raised_ms,
            a.acknowledged_ms,
            a.acknowledged_by,
            a.body
        ])
    })
    .map(|n| n == 1)
    .map_err(backend)
}

/// Inserts an incident; `or_ignore` for `db copy`.
pub(super) fn insert_incident_row(
    c: &Connection,
    r: &IncidentRow,
    or_ignore: bool,
) -> Result<(), StoreError> {
    let conflict = if or_ignore {
        " ON CONFLICT DO NOTHING"
    } else {
        ""
    };
    c.prepare_cached(&format!(
        "INSERT INTO incidents ({INCIDENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6){conflict}"
    ))
    .and_then(|mut s| {
        s.execute(params![
            id_text(r.id),
            r.status,
            r.aware_ms,
            r.opened_ms,
            r.changed_ms,
            r.sealed
        ])
    })
    .map(drop)
    .map_err(backend)
}

/// Why a guarded update of `table`'s row `id` changed nothing: `NotFound` when there is no
/// such row, else a conflict saying `why`.
fn missed(c: &Connection, table: &str, id: &str, why: &str) -> StoreError {
    let exists = c.query_row(
        &format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE id = ?1)"),
        [id],
        |r| r.get::<_, bool>(0),
    );
    match exists {
        Ok(true) => StoreError::Conflict(why.to_owned()),
        Ok(false) => StoreError::NotFound,
        Err(e) => backend(e),
    }
}

/// A new alert with its deliveries and entry, when it is new.
fn raise(c: &Connection, a: &NewAlert) -> Result<bool, StoreError> {
    if !insert_alert(c, &a.row)? {
        return Ok(false);
    }
    for m in &a.outbox {
        insert_mail(c, m, false)?;
    }
    queue(c, &a.audit)?;
    Ok(true)
}

/// A page of canaries after `key`, for `db copy`.
pub(super) fn export_canaries(
    c: &Connection,
    key: &str,
    limit: i64,
) -> Result<Vec<CanaryRow>, StoreError> {
    let mut s = c
        .prepare_cached("SELECT record_id, subject_id, collection, planted_ms FROM canaries WHERE record_id > ?1 ORDER BY record_id LIMIT ?2")
        .map_err(backend)?;
    let rows = s
        .query_map(params![key, limit], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(backend)?;
    rows.map(|r| {
        let (rec, sub, collection, planted_ms) = r.map_err(backend)?;
        Ok(CanaryRow {
            record_id: parse_id(rec)?,
            subject_id: parse_id(sub)?,
            collection,
            planted_ms,
        })
    })
    .collect()
}

/// A page of alerts after `key`, for `db copy`.
pub(super) fn export_alerts(
    c: &Connection,
    key: &str,
    limit: i64,
) -> Result<Vec<AlertRow>, StoreError> {
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))
        .map_err(backend)?;
    let rows = s
        .query_map(params![key, limit], alert_row)
        .map_err(backend)?;
    rows.map(|r| r.map_err(backend).and_then(to_alert))
        .collect()
}

/// A page of incidents after `key`, for `db copy`.
pub(super) fn export_incidents(
    c: &Connection,
    key: &str,
    limit: i64,
) -> Result<Vec<IncidentRow>, StoreError> {
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))
        .map_err(backend)?;
    let rows = s
        .query_map(params![key, limit], incident_row)
        .map_err(backend)?;
    rows.map(|r| r.map_err(backend).and_then(to_incident))
        .collect()
}

#[async_trait]
impl BreachStore for SqliteStore {
    async fn plant_canaries(
        &self,
        rows: Vec<CanaryRow>,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            for r in &rows {
                insert_canary(c, r, false)?;
            }
            queue(c, &audit)
        })
        .await
    }

    async fn canaries(&self) -> Result<Vec<CanaryRow>, StoreError> {
        self.read(|c| export_canaries(c, "", i64::MAX)).await
    }

    async fn canary_digests(
        &self,
        collection: &str,
        digests: &[(String, Vec<u8>)],
    ) -> Result<Vec<RecordId>, StoreError> {
        let collection = collection.to_owned();
        let digests = digests.to_vec();
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT DISTINCT b.record_id FROM blind_index b JOIN canaries k ON k.record_id = b.record_id \
                     WHERE b.collection = ?1 AND b.field = ?2 AND b.digest = ?3",
                )
                .map_err(backend)?;
            let mut found = Vec::new();
            for (field, digest) in &digests {
                let rows = s
                    .query_map(params![collection, field, digest], |r| r.get::<_, String>(0))
                    .map_err(backend)?;
                for r in rows {
                    let id: RecordId = parse_id(r.map_err(backend)?)?;
                    if !found.contains(&id) {
                        found.push(id);
                    }
                }
            }
            Ok(found)
        })
        .await
    }

    async fn detector_position(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT position FROM detector_state WHERE id = 1",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|p| p as u64)
            .map_err(backend)
        })
        .await
    }

    async fn advance_detector(&self, step: DetectorStep) -> Result<Vec<AlertId>, StoreError> {
        self.write(move |c| {
            let moved = c
                .execute(
                    "UPDATE detector_state SET position = ?1 WHERE id = 1 AND position = ?2",
                    params![step.to as i64, step.from as i64],
                )
                .map_err(backend)?;
            if moved != 1 {
                return Err(StoreError::Conflict("the detector moved on since this step was computed".into()));
            }
            let mut add = c
                .prepare_cached(
                    "INSERT INTO access_counts (actor, window_ms, collection, reads) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (actor, window_ms, collection) DO UPDATE SET reads = reads + excluded.reads",
                )
                .map_err(backend)?;
            for w in &step.counts {
                add.execute(params![w.actor, w.window_ms, w.collection, w.reads as i64]).map_err(backend)?;
            }
            let mut new = Vec::new();
            for a in &step.alerts {
                if raise(c, a)? {
                    new.push(a.row.id);
                }
            }
            Ok(new)
        })
        .await
    }

    async fn access_counts(
        &self,
        actor: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<WindowCount>, StoreError> {
        let actor = actor.to_owned();
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT window_ms, collection, reads FROM access_counts \
                     WHERE actor = ?1 AND window_ms >= ?2 AND window_ms < ?3 ORDER BY window_ms, collection",
                )
                .map_err(backend)?;
            let rows = s
                .query_map(params![actor, from_ms, to_ms], |r| {
                    Ok(WindowCount { actor: actor.clone(), window_ms: r.get(0)?, collection: r.get(1)?, reads: r.get::<_, i64>(2)? as u64 })
                })
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend)).collect()
        })
        .await
    }

    async fn raise_alert(&self, alert: NewAlert) -> Result<bool, StoreError> {
        self.write(move |c| raise(c, &alert)).await
    }

    async fn alerts(&self, open_only: bool, limit: usize) -> Result<Vec<AlertRow>, StoreError> {
        self.read(move |c| {
            let filter = if open_only { " WHERE acknowledged_ms IS NULL" } else { "" };
            let mut s = c
                .prepare_cached(&format!("SELECT {ALERT_COLUMNS} FROM alerts{filter} ORDER BY raised_ms DESC, id DESC LIMIT ?1"))
                .map_err(backend)?;
            let rows = s.query_map([limit as i64], alert_row).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_alert)).collect()
        })
        .await
    }

    async fn alert(&self, id: AlertId) -> Result<Option<AlertRow>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id_text(id)], alert_row).optional())
                .map_err(backend)?
                .map(to_alert)
                .transpose()
        })
        .await
    }

    async fn acknowledge_alert(
        &self,
        id: AlertId,
        by: &str,
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let by = by.to_owned();
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE alerts SET acknowledged_ms = ?1, acknowledged_by = ?2 WHERE id = ?3 AND acknowledged_ms IS NULL",
                    params![at_ms, by, id_text(id)],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(missed(c, "alerts", &id_text(id), "the alert was already acknowledged"));
            }
            queue(c, &audit)
        })
        .await
    }

    async fn insert_incident(
        &self,
        row: IncidentRow,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            insert_incident_row(c, &row, false)?;
            queue(c, &audit)
        })
        .await
    }

    async fn update_incident(
        &self,
        row: IncidentRow,
        was_changed_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE incidents SET status = ?1, aware_ms = ?2, changed_ms = ?3, sealed = ?4 WHERE id = ?5 AND changed_ms = ?6",
                    params![row.status, row.aware_ms, row.changed_ms, row.sealed, id_text(row.id), was_changed_ms],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(missed(c, "incidents", &id_text(row.id), "the incident changed since it was read"));
            }
            queue(c, &audit)
        })
        .await
    }

    async fn incidents(&self) -> Result<Vec<IncidentRow>, StoreError> {
        self.read(|c| {
            let mut s = c
                .prepare_cached(&format!(
                    "SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY aware_ms DESC, id DESC"
                ))
                .map_err(backend)?;
            let rows = s.query_map([], incident_row).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_incident))
                .collect()
        })
        .await
    }

    async fn incident(&self, id: IncidentId) -> Result<Option<IncidentRow>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"
            ))
            .and_then(|mut s| s.query_row([id_text(id)], incident_row).optional())
            .map_err(backend)?
            .map(to_incident)
            .transpose()
        })
        .await
    }
}
