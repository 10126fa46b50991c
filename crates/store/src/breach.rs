//! Breach readiness: canary records, the detector's position and counts, alerts and
//! incidents, and [`BreachStore`].
//!
//! The detector reads the audit log as it is sequenced and moves its position forward in the
//! same transaction as the counts and alerts it derived, so each entry is judged once, on
//! any number of servers. An alert's `dedup` key makes raising it twice a no-op; its outbox
//! rows (webhook deliveries and mail) are queued only with the alert that was new.

use async_trait::async_trait;
use custos_core::ids::{AlertId, IncidentId, RecordId, SubjectId};

use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::outbox::OutboxRow;

/// A canary: a synthetic record no legitimate caller ever touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryRow {
    /// The record.
    pub record_id: RecordId,
    /// Its synthetic subject.
    pub subject_id: SubjectId,
    /// Its collection.
    pub collection: String,
    /// When it was planted, ms since the epoch.
    pub planted_ms: i64,
}

/// An alert as stored: the columns the console filters on, and the alert's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    /// Its id.
    pub id: AlertId,
    /// What makes two alerts the same one (`canary:INDEX`, `read_volume:ACTOR:WINDOW`, ...).
    pub dedup: String,
    /// Its kind's name.
    pub kind: String,
    /// Whom it is about.
    pub actor: String,
    /// When it was raised, ms since the epoch.
    pub raised_ms: i64,
    /// When staff acknowledged it.
    pub acknowledged_ms: Option<i64>,
    /// Who did.
    pub acknowledged_by: Option<String>,
    /// The alert's JSON (`core::breach::Alert`): ids, counts and names, never a value.
    pub body: Vec<u8>,
}

/// An alert to raise, with what delivers it and its audit entry.
#[derive(Debug, Clone)]
pub struct NewAlert {
    /// The alert.
    pub row: AlertRow,
    /// Its webhook deliveries and mail, queued only if the alert is new.
    pub outbox: Vec<OutboxRow>,
    /// Its `alert.raise` entry, queued only if the alert is new.
    pub audit: QueuedAudit,
}

/// Records read by one caller in one hour from one collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowCount {
    /// The caller, as the audit log names it.
    pub actor: String,
    /// The hour's start, ms since the epoch.
    pub window_ms: i64,
    /// The collection.
    pub collection: String,
    /// Records read.
    pub reads: u64,
}

/// What the detector derived from the log's entries `from..to`.
#[derive(Debug, Clone)]
pub struct DetectorStep {
    /// The position it read from; a conflict if another detector moved it since.
    pub from: u64,
    /// The position after.
    pub to: u64,
    /// Reads to add to the counts.
    pub counts: Vec<WindowCount>,
    /// Alerts raised.
    pub alerts: Vec<NewAlert>,
}

/// An incident as stored: what lists sort and filter on, and the incident sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    /// Its id.
    pub id: IncidentId,
    /// Its status's name.
    pub status: String,
    /// When the controller became aware, ms since the epoch.
    pub aware_ms: i64,
    /// When it was opened.
    pub opened_ms: i64,
    /// When it last changed: a write from an older read is refused.
    pub changed_ms: i64,
    /// The incident (`core::breach::Incident`), sealed under the vault's `incidents` key.
    pub sealed: Vec<u8>,
}

/// Canaries, the detector, alerts and incidents: each method one transaction.
#[async_trait]
pub trait BreachStore: Send + Sync {
    /// Marks records as canaries (before the records are written, so no canary is ever a
    /// record not known as one), with its audit entry.
    async fn plant_canaries(
        &self,
        rows: Vec<CanaryRow>,
        audit: QueuedAudit,
    ) -> Result<(), StoreError>;
    /// Every canary, oldest first.
    async fn canaries(&self) -> Result<Vec<CanaryRow>, StoreError>;
    /// The canary records among those holding one of these blind-index digests of
    /// `collection` (`(field, digest)`): a canary's value seen in a request.
    async fn canary_digests(
        &self,
        collection: &str,
        digests: &[(String, Vec<u8>)],
    ) -> Result<Vec<RecordId>, StoreError>;

    /// Where the detector stands: entries before it were judged.
    async fn detector_position(&self) -> Result<u64, StoreError>;
    /// Adds counts, raises alerts and moves the position, together; `Conflict` when the
    /// position is no longer `step.from`. Returns the alerts that were new.
    async fn advance_detector(&self, step: DetectorStep) -> Result<Vec<AlertId>, StoreError>;
    /// A caller's counts for windows `from_ms..to_ms`.
    async fn access_counts(
        &self,
        actor: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<WindowCount>, StoreError>;

    /// Raises one alert outside the detector (a canary value in a request); false when an
    /// alert with its `dedup` key exists.
    async fn raise_alert(&self, alert: NewAlert) -> Result<bool, StoreError>;
    /// Alerts, newest first, at most `limit`; only unacknowledged ones when `open_only`.
    async fn alerts(&self, open_only: bool, limit: usize) -> Result<Vec<AlertRow>, StoreError>;
    /// One alert.
    async fn alert(&self, id: AlertId) -> Result<Option<AlertRow>, StoreError>;
    /// Acknowledges an alert; `NotFound` when there is none, `Conflict` when it already was.
    async fn acknowledge_alert(
        &self,
        id: AlertId,
        by: &str,
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError>;

    /// Opens an incident.
    async fn insert_incident(&self, row: IncidentRow, audit: QueuedAudit)
    -> Result<(), StoreError>;
    /// Writes an incident read when it last changed at `was_changed_ms`; `Conflict` when it
    /// changed since, `NotFound` when there is none.
    async fn update_incident(
        &self,
        row: IncidentRow,
        was_changed_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError>;
    /// Every incident, the newest awareness first.
    async fn incidents(&self) -> Result<Vec<IncidentRow>, StoreError>;
    /// One incident.
    async fn incident(&self, id: IncidentId) -> Result<Option<IncidentRow>, StoreError>;
}
