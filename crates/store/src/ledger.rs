//! The consent ledger: [`ConsentRow`] and [`LedgerStore`].

use async_trait::async_trait;
use custos_core::ids::{EventId, SubjectId};

use crate::error::StoreError;

/// One event of the consent ledger as stored: its audit entry's bytes, which the audit log
/// holds too, so that a changed or deleted event is found by `custos audit verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    /// The order the ledger recorded it in, ascending.
    pub seq: i64,
    /// The event.
    pub id: EventId,
    /// Its subject.
    pub subject_id: SubjectId,
    /// The audit entry that carries the event.
    pub entry: Vec<u8>,
}

/// The consent ledger, append-only: each event is stored with its audit entry.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Records an event of the consent ledger and queues `entry`, the same bytes, as its
    /// audit entry, in one transaction; `NotFound` when the subject does not exist.
    async fn insert_consent_event(
        &self,
        id: EventId,
        subject_id: SubjectId,
        entry: Vec<u8>,
    ) -> Result<(), StoreError>;
    /// One event of the consent ledger.
    async fn consent_event(&self, id: EventId) -> Result<Option<ConsentRow>, StoreError>;
    /// A subject's consent ledger, in the order it was recorded.
    async fn consent_events(&self, subject: SubjectId) -> Result<Vec<ConsentRow>, StoreError>;
}
