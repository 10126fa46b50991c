//! Legal holds on records: [`HoldRow`] and [`HoldStore`].

use async_trait::async_trait;
use custos_core::ids::{RecordId, SubjectId};

use crate::audit::QueuedAudit;
use crate::error::StoreError;

/// A legal hold on a record: while it stands, nothing deletes the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRow {
    /// The record held.
    pub record_id: RecordId,
    /// Its collection.
    pub collection: String,
    /// Its subject.
    pub subject_id: SubjectId,
    /// Why, as the person who placed it wrote it.
    pub reason: String,
    /// Who placed it.
    pub placed_by: String,
    /// When, ms since the epoch.
    pub placed_ms: i64,
}

/// Legal holds, each placed and released with its audit entry.
#[async_trait]
pub trait HoldStore: Send + Sync {
    /// Places a legal hold, with its audit entry; a conflict when the record is already held,
    /// `NotFound` when it does not exist.
    async fn place_hold(&self, hold: HoldRow, audit: QueuedAudit) -> Result<(), StoreError>;
    /// Releases a record's hold, with its audit entry; `NotFound` when it holds none.
    async fn release_hold(&self, record: RecordId, audit: QueuedAudit) -> Result<(), StoreError>;
    /// Every legal hold standing.
    async fn holds(&self) -> Result<Vec<HoldRow>, StoreError>;
}
