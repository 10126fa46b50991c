//! The outbox: messages waiting to be delivered, at least once, and [`OutboxStore`].
//!
//! A server claims a few due messages for a lease, tries each, and marks it sent, due again
//! later, or failed; a claim whose lease lapsed (its server died) is claimed again by another.
//! Every mark is guarded by the holder, so a server whose lease lapsed cannot mark a message
//! another server has claimed since.

use async_trait::async_trait;
use custos_core::ids::{MailId, SubjectId};

use crate::error::StoreError;

/// One message in the outbox. The whole message (recipient, subject, text) is in `sealed`,
/// encrypted by the vault; no other column holds an address or a word of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// The message.
    pub id: MailId,
    /// The subject it is about, when it has one: its data key sealed the message, so erasing
    /// the subject shreds it.
    pub subject_id: Option<SubjectId>,
    /// When it was queued, ms since the epoch.
    pub created_ms: i64,
    /// When it is next due, ms since the epoch.
    pub next_attempt_ms: i64,
    /// Attempts made so far.
    pub attempts: i64,
    /// After this instant it is given up, ms since the epoch.
    pub expires_ms: i64,
    /// The server holding it for an attempt, while its lease lasts.
    pub claimed_by: Option<String>,
    /// When that lease ends, ms since the epoch.
    pub claimed_until_ms: Option<i64>,
    /// When it was handed to the relay (or written), ms since the epoch.
    pub sent_ms: Option<i64>,
    /// When it was given up, ms since the epoch.
    pub failed_ms: Option<i64>,
    /// Why the last attempt failed, in words that hold no address and no part of the message.
    pub last_error: Option<String>,
    /// The sealed message.
    pub sealed: Vec<u8>,
}

impl OutboxRow {
    /// A message queued at `now_ms`, due at once, unclaimed.
    pub fn queued(
        id: MailId,
        subject_id: Option<SubjectId>,
        now_ms: i64,
        expires_ms: i64,
        sealed: Vec<u8>,
    ) -> Self {
        OutboxRow {
            id,
            subject_id,
            created_ms: now_ms,
            next_attempt_ms: now_ms,
            attempts: 0,
            expires_ms,
            claimed_by: None,
            claimed_until_ms: None,
            sent_ms: None,
            failed_ms: None,
            last_error: None,
            sealed,
        }
    }
}

/// How many messages are where: for tests and `custos` status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Neither sent nor given up (waiting, due, or claimed).
    pub queued: u64,
    /// Sent.
    pub sent: u64,
    /// Given up.
    pub failed: u64,
}

/// The outbox: each method one transaction.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Queues a message; a conflict when its id is taken, `NotFound` when it names a subject
    /// that has no data key (unknown, or erased).
    async fn enqueue_mail(&self, row: OutboxRow) -> Result<(), StoreError>;
    /// Claims for `holder`, until `now_ms + lease_ms`, up to `limit` messages that are
    /// neither sent nor given up, are due (`next_attempt_ms <= now_ms`), and are unclaimed
    /// or their claim's lease has lapsed; expired ones are claimed too, so they can be given
    /// up. Each claim counts as an attempt. Oldest due first; two concurrent claims never
    /// return the same message.
    async fn claim_mail(
        &self,
        holder: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError>;
    /// Marks a message `holder` claimed as sent; `Conflict` when `holder` no longer holds it
    /// (another server claimed it since) or it is already sent or given up.
    async fn mail_sent(&self, id: MailId, holder: &str, now_ms: i64) -> Result<(), StoreError>;
    /// Releases `holder`'s claim and makes the message due again at `next_attempt_ms`,
    /// noting why this attempt failed; `Conflict` as for [`OutboxStore::mail_sent`].
    async fn mail_retry(
        &self,
        id: MailId,
        holder: &str,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), StoreError>;
    /// Gives a message `holder` claimed up, noting why; `Conflict` as for
    /// [`OutboxStore::mail_sent`].
    async fn mail_failed(
        &self,
        id: MailId,
        holder: &str,
        now_ms: i64,
        error: &str,
    ) -> Result<(), StoreError>;
    /// How many messages are queued, sent and given up.
    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;
}

/// The columns of an outbox row, in the order both backends read them.
pub(crate) const OUTBOX_COLUMNS: &str = "id, subject_id, created_ms, next_attempt_ms, attempts, \
     expires_ms, claimed_by, claimed_until_ms, sent_ms, failed_ms, last_error, sealed";

/// What a mark that changed no row means.
pub(crate) fn not_held() -> StoreError {
    StoreError::Conflict("the message is not claimed by this server, or is already done".into())
}
