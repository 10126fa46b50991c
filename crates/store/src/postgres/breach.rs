//! Canaries, the detector, alerts and incidents on PostgreSQL: [`BreachStore`] for
//! [`PostgresStore`]. A detector step moves the position with a conditional update first,
//! so two servers computing the same step cannot both commit it.

use async_trait::async_trait;
use custos_core::ids::{AlertId, IncidentId, RecordId, SubjectId};
use tokio_postgres::Row;
use uuid::Uuid;

use super::audit::queue;
use super::convert::backend;
use super::outbox::import_mail;
use super::{PostgresStore, Tx};
use crate::audit::QueuedAudit;
use crate::breach::{
    AlertRow, BreachStore, CanaryRow, DetectorStep, IncidentRow, NewAlert, WindowCount,
};
use crate::error::StoreError;

const ALERT_COLUMNS: &str =
    "id, dedup, kind, actor, raised_ms, acknowledged_ms, acknowledged_by, body";
const INCIDENT_COLUMNS: &str = "id, status, aware_ms, opened_ms, changed_ms, sealed";

pub(super) fn to_alert(r: &Row) -> AlertRow {
    AlertRow {
        id: AlertId::from(r.get::<_, Uuid>(0)),
        dedup: r.get(1),
        kind: r.get(2),
        actor: r.get(3),
        raised_ms: r.get(4),
        acknowledged_ms: r.get(5),
        acknowledged_by: r.get(6),
        body: r.get(7),
    }
}

pub(super) fn to_incident(r: &Row) -> IncidentRow {
    IncidentRow {
        id: IncidentId::from(r.get::<_, Uuid>(0)),
        status: r.get(1),
        aware_ms: r.get(2),
        opened_ms: r.get(3),
        changed_ms: r.get(4),
        sealed: r.get(5),
    }
}

pub(super) fn to_canary(r: &Row) -> CanaryRow {
    CanaryRow {
        record_id: RecordId::from(r.get::<_, Uuid>(0)),
        subject_id: SubjectId::from(r.get::<_, Uuid>(1)),
        collection: r.get(2),
        planted_ms: r.get(3),
    }
}

/// Inserts a canary; `conflict` is the statement's `ON CONFLICT` clause, if any.
pub(super) async fn insert_canary(
    tx: &Tx<'_>,
    r: &CanaryRow,
    conflict: &str,
) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO canaries (record_id, subject_id, collection, planted_ms) VALUES ($1, $2, $3, $4) {conflict}"
        ),
        &[&r.record_id.as_uuid(), &r.subject_id.as_uuid(), &r.collection, &r.planted_ms],
    )
    .await
    .map(drop)
    .map_err(backend)
}

/// Inserts an alert unless its id or dedup key is taken; whether it was.
pub(super) async fn insert_alert(tx: &Tx<'_>, a: &AlertRow) -> Result<bool, StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
        ),
        &[
            &a.id.as_uuid(),
            &a.dedup,
            &a.kind,
            &a.actor,
            &a.raised_ms,
            &a.acknowledged_ms,
            &a.acknowledged_by,
            &a.body,
        ],
    )
    .await
    .map(|n| n == 1)
    .map_err(backend)
}

/// Inserts an incident; `conflict` as for [`insert_canary`].
pub(super) async fn insert_incident_row(
    tx: &Tx<'_>,
    r: &IncidentRow,
    conflict: &str,
) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO incidents ({INCIDENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) {conflict}"
        ),
        &[
            &r.id.as_uuid(),
            &r.status,
            &r.aware_ms,
            &r.opened_ms,
            &r.changed_ms,
            &r.sealed,
        ],
    )
    .await
    .map(drop)
    .map_err(backend)
}

/// Why a guarded update of `table`'s row `id` changed nothing: `NotFound` when there is no
/// such row, else a conflict saying `why`.
async fn missed(tx: &Tx<'_>, table: &str, id: Uuid, why: &str) -> StoreError {
    match tx
        .query(&format!("SELECT 1 FROM {table} WHERE id = $1"), &[&id])
        .await
    {
        Ok(rows) if rows.is_empty() => StoreError::NotFound,
        Ok(_) => StoreError::Conflict(why.to_owned()),
        Err(e) => backend(e),
    }
}

async fn raise(tx: &Tx<'_>, a: &NewAlert) -> Result<bool, StoreError> {
    if !insert_alert(tx, &a.row).await? {
        return Ok(false);
    }
    for m in &a.outbox {
        import_mail(tx, m).await?;
    }
    queue(tx, &a.audit).await?;
    Ok(true)
}

/// A page of a breach table in id order after `id`, for `db copy`.
pub(super) async fn export_page(
    s: &PostgresStore,
    table: &str,
    id: Uuid,
    limit: i64,
) -> Result<Vec<Row>, StoreError> {
    let (columns, key) = match table {
        "alerts" => (ALERT_COLUMNS, "id"),
        "incidents" => (INCIDENT_COLUMNS, "id"),
        _ => ("record_id, subject_id, collection, planted_ms", "record_id"),
    };
    s.query(
        &format!("SELECT {columns} FROM {table} WHERE {key} > $1 ORDER BY {key} LIMIT $2"),
        &[&id, &limit],
    )
    .await
}

#[async_trait]
impl BreachStore for PostgresStore {
    async fn plant_canaries(
        &self,
        rows: Vec<CanaryRow>,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        for r in &rows {
            insert_canary(&tx, r, "").await?;
        }
        queue(&tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn canaries(&self) -> Result<Vec<CanaryRow>, StoreError> {
        let rows = self
            .query(
                "SELECT record_id, subject_id, collection, planted_ms FROM canaries ORDER BY record_id",
                &[],
            )
            .await?;
        Ok(rows.iter().map(to_canary).collect())
    }

    async fn canary_digests(
        &self,
        collection: &str,
        digests: &[(String, Vec<u8>)],
    ) -> Result<Vec<RecordId>, StoreError> {
        if digests.is_empty() {
            return Ok(Vec::new());
        }
        let fields: Vec<&str> = digests.iter().map(|(f, _)| f.as_str()).collect();
        let values: Vec<&[u8]> = digests.iter().map(|(_, d)| d.as_slice()).collect();
        let rows = self
            .query(
                "SELECT DISTINCT b.record_id FROM blind_index b \
                 JOIN unnest($2::text[], $3::bytea[]) AS q (field, digest) \
                   ON b.field = q.field AND b.digest = q.digest \
                 JOIN canaries k ON k.record_id = b.record_id \
                 WHERE b.collection = $1",
                &[&collection, &fields, &values],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| RecordId::from(r.get::<_, Uuid>(0)))
            .collect())
    }

    async fn detector_position(&self) -> Result<u64, StoreError> {
        let rows = self
            .query("SELECT position FROM detector_state WHERE id = 1", &[])
            .await?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    async fn advance_detector(&self, step: DetectorStep) -> Result<Vec<AlertId>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let moved = tx
            .execute(
                "UPDATE detector_state SET position = $1 WHERE id = 1 AND position = $2",
                &[&(step.to as i64), &(step.from as i64)],
            )
            .await
            .map_err(backend)?;
        if moved != 1 {
            return Err(StoreError::Conflict(
                "the detector moved on since this step was computed".into(),
            ));
        }
        if !step.counts.is_empty() {
            let actors: Vec<&str> = step.counts.iter().map(|w| w.actor.as_str()).collect();
            let windows: Vec<i64> = step.counts.iter().map(|w| w.window_ms).collect();
            let collections: Vec<&str> =
                step.counts.iter().map(|w| w.collection.as_str()).collect();
            let reads: Vec<i64> = step.counts.iter().map(|w| w.reads as i64).collect();
            tx.execute(
                "INSERT INTO access_counts (actor, window_ms, collection, reads) \
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[]) \
                 ON CONFLICT (actor, window_ms, collection) \
                 DO UPDATE SET reads = access_counts.reads + excluded.reads",
                &[&actors, &windows, &collections, &reads],
            )
            .await
            .map_err(backend)?;
        }
        let mut new = Vec::new();
        for a in &step.alerts {
            if raise(&tx, a).await? {
                new.push(a.row.id);
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(new)
    }

    async fn access_counts(
        &self,
        actor: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<WindowCount>, StoreError> {
        let rows = self
            .query(
                "SELECT window_ms, collection, reads FROM access_counts \
                 WHERE actor = $1 AND window_ms >= $2 AND window_ms < $3 ORDER BY window_ms, collection",
                &[&actor, &from_ms, &to_ms],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| WindowCount {
                actor: actor.to_owned(),
                window_ms: r.get(0),
                collection: r.get(1),
                reads: r.get::<_, i64>(2) as u64,
            })
            .collect())
    }

    async fn raise_alert(&self, alert: NewAlert) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let new = raise(&tx, &alert).await?;
        tx.commit().await.map_err(backend)?;
        Ok(new)
    }

    async fn alerts(&self, open_only: bool, limit: usize) -> Result<Vec<AlertRow>, StoreError> {
        let filter = if open_only {
            " WHERE acknowledged_ms IS NULL"
        } else {
            ""
        };
        let rows = self
            .query(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts{filter} ORDER BY raised_ms DESC, id DESC LIMIT $1"),
                &[&(limit as i64)],
            )
            .await?;
        Ok(rows.iter().map(to_alert).collect())
    }

    async fn alert(&self, id: AlertId) -> Result<Option<AlertRow>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"),
                &[&id.as_uuid()],
            )
            .await?;
        Ok(rows.first().map(to_alert))
    }

    async fn acknowledge_alert(
        &self,
        id: AlertId,
        by: &str,
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let n = tx
            .execute(
                "UPDATE alerts SET acknowledged_ms = $1, acknowledged_by = $2 WHERE id = $3 AND acknowledged_ms IS NULL",
                &[&at_ms, &by, &id.as_uuid()],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(missed(
                &tx,
                "alerts",
                id.as_uuid(),
                "the alert was already acknowledged",
            )
            .await);
        }
        queue(&tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn insert_incident(
        &self,
        row: IncidentRow,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        insert_incident_row(&tx, &row, "").await?;
        queue(&tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn update_incident(
        &self,
        row: IncidentRow,
        was_changed_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let n = tx
            .execute(
                "UPDATE incidents SET status = $1, aware_ms = $2, changed_ms = $3, sealed = $4 \
                 WHERE id = $5 AND changed_ms = $6",
                &[
                    &row.status,
                    &row.aware_ms,
                    &row.changed_ms,
                    &row.sealed,
                    &row.id.as_uuid(),
                    &was_changed_ms,
                ],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(missed(
                &tx,
                "incidents",
                row.id.as_uuid(),
                "the incident changed since it was read",
            )
            .await);
        }
        queue(&tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn incidents(&self) -> Result<Vec<IncidentRow>, StoreError> {
        let rows = self
            .query(
                &format!(
                    "SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY aware_ms DESC, id DESC"
                ),
                &[],
            )
            .await?;
        Ok(rows.iter().map(to_incident).collect())
    }

    async fn incident(&self, id: IncidentId) -> Result<Option<IncidentRow>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"),
                &[&id.as_uuid()],
            )
            .await?;
        Ok(rows.first().map(to_incident))
    }
}
