//! Subjects' erasure: [`Erasure`], the erasure list ([`ErasureRow`]) and [`SubjectStore`].

use async_trait::async_trait;
use custos_core::ids::{RecordId, SubjectId};

use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::records::EncryptedFields;

/// A record kept through an erasure with only some of its fields.
#[derive(Debug, Clone)]
pub struct Trim {
    /// The record.
    pub id: RecordId,
    /// The version that was read; a conflict if it changed.
    pub version: i64,
    /// The fields that stay, as stored.
    pub fields: EncryptedFields,
    /// The fields removed, whose blind-index entries go with them.
    pub removed: Vec<String>,
}

/// One subject's erasure, committed in one transaction.
#[derive(Debug, Clone)]
pub struct Erasure {
    /// The subject.
    pub subject_id: SubjectId,
    /// Records deleted whole, with their index entries, each with the version that was read:
    /// a conflict if it changed, or if a legal hold now stands on it.
    pub erase: Vec<(RecordId, i64)>,
    /// Records kept with fewer fields (a conflict if a legal hold now stands on one: it is
    /// kept whole).
    pub trim: Vec<Trim>,
    /// How many of the subject's records stay (kept whole or trimmed): a conflict when the
    /// subject holds any other, such as one written since the erasure was planned.
    pub remaining: u64,
    /// Whether the subject's data key is destroyed (nothing is kept).
    pub destroy_key: bool,
    /// When, ms since the epoch.
    pub erased_ms: i64,
    /// Its audit entry.
    pub audit: QueuedAudit,
}

/// A subject on the erasure list: what a restore must re-apply. No personal value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRow {
    /// The subject erased.
    pub subject_id: SubjectId,
    /// When, ms since the epoch.
    pub erased_ms: i64,
}

/// Subjects' lifecycle: erasure, and the list of those erased.
#[async_trait]
pub trait SubjectStore: Send + Sync {
    /// Erases a subject in one transaction: deletes the records named (and their index
    /// entries), trims the others, destroys the subject's data key when asked, marks the
    /// subject erased (so it is no longer found as a subject), adds it to the erasure list
    /// and queues the audit entry. `NotFound` when the subject does not exist or is erased
    /// already; a conflict when a record changed or appeared since the erasure was planned.
    async fn erase_subject(&self, erasure: Erasure) -> Result<(), StoreError>;
    /// The erasure list, oldest first.
    async fn erasures(&self) -> Result<Vec<ErasureRow>, StoreError>;
    /// One subject's erasure, when it was erased.
    async fn erasure(&self, subject: SubjectId) -> Result<Option<ErasureRow>, StoreError>;
}
