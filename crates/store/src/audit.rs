//! The audit log: entries queued, integrated into the tree and signed, and [`AuditStore`].

use async_trait::async_trait;
use custos_core::audit::SignedTreeHead;
use custos_core::ids::SubjectId;
use custos_core::merkle::Hash;

use crate::error::StoreError;

/// An audit entry waiting for the sequencer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedAudit {
    /// Its subject, so the trail of one subject can be found.
    pub subject_id: Option<SubjectId>,
    /// The entry's bytes.
    pub entry: Vec<u8>,
}

/// An entry integrated into the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafRow {
    /// Its index in the log.
    pub index: u64,
    /// Its subject.
    pub subject_id: Option<SubjectId>,
    /// Its bytes: the leaf input.
    pub entry: Vec<u8>,
    /// Its RFC 6962 leaf hash, as computed when it was sequenced.
    pub leaf_hash: Hash,
}

/// The tree's right edge, as the sequencer left it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeState {
    /// Entries integrated.
    pub size: u64,
    /// The compact range's peaks.
    pub peaks: Vec<Hash>,
}

/// A batch the sequencer integrates in one transaction.
#[derive(Debug, Clone)]
pub struct Integration {
    /// The tree size the batch was computed on; a conflict if it changed.
    pub from_size: u64,
    /// Queue positions consumed.
    pub queue_ids: Vec<i64>,
    /// The new leaves, indexes `from_size..`.
    pub leaves: Vec<LeafRow>,
    /// The state after the batch.
    pub state: TreeState,
    /// The signed head at the new size.
    pub head: SignedTreeHead,
}

/// An audit entry waiting in the queue.
#[derive(Debug, Clone)]
pub struct QueuedRow {
    /// Its queue position.
    pub queue_id: i64,
    /// The entry.
    pub audit: QueuedAudit,
}

/// The audit queue, the tree's leaves, state and signed heads, and the sequencer's lease.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Queues audit entries (reads, administrative acts) durably.
    async fn append_audit(&self, entries: Vec<QueuedAudit>) -> Result<(), StoreError>;
    /// The oldest queued entries.
    async fn queued_audit(&self, limit: usize) -> Result<Vec<QueuedRow>, StoreError>;
    /// Integrates a batch into the tree.
    async fn integrate_audit(&self, batch: Integration) -> Result<(), StoreError>;
    /// The tree's right edge.
    async fn tree_state(&self) -> Result<TreeState, StoreError>;
    /// Leaves `from..to`, in index order, as stored.
    async fn leaves(&self, from: u64, to: u64) -> Result<Vec<LeafRow>, StoreError>;
    /// The leaves of one subject.
    async fn subject_leaves(&self, subject: SubjectId) -> Result<Vec<LeafRow>, StoreError>;
    /// The leaves made by `actor` (all callers when `None`) whose time is in `from..to`
    /// (RFC 3339 UTC as entries write it; either end open when `None`), in index order:
    /// found through the `(actor, time)` and `(time)` indexes, never a scan of the log.
    async fn leaves_by(
        &self,
        actor: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<LeafRow>, StoreError>;
    /// Every stored signed head, by size.
    async fn tree_heads(&self) -> Result<Vec<SignedTreeHead>, StoreError>;
    /// The newest signed head.
    async fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, StoreError>;

    /// Takes or renews the background sequencer's lease for `holder` until `now_ms + ttl_ms`;
    /// false while another holder's lease is live. Correctness does not rest on the lease
    /// ([`AuditStore::integrate_audit`] checks the tree size); it keeps instances from racing.
    async fn sequencer_lease(
        &self,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError>;
}
