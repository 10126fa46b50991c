//! Data-subject requests: the row a request is stored as, the query that lists them, and
//! [`RequestStore`].

use async_trait::async_trait;
use custos_core::ids::{RequestId, SubjectId};
use custos_core::rights::{RequestKind, RequestStatus};

use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::records::EncryptedFields;

/// One stored request: the columns a list filters and sorts on, the rest as the vault's
/// bytes, and its reasons as ciphertexts under the subject's data key. No column holds a
/// personal value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    /// The request.
    pub id: RequestId,
    /// Its subject.
    pub subject_id: SubjectId,
    /// What it asks for.
    pub kind: RequestKind,
    /// Where it stands.
    pub status: RequestStatus,
    /// Its deadline now (the extended one once extended), ms since the epoch.
    pub due_ms: i64,
    /// When it was received, ms since the epoch.
    pub received_ms: i64,
    /// When it was completed or rejected, ms since the epoch.
    pub closed_ms: Option<i64>,
    /// Bumped on every change, for optimistic concurrency.
    pub version: i64,
    /// Everything else about it, as the vault encodes it: non-personal.
    pub body: Vec<u8>,
    /// Its reasons (extension, rejection), each encrypted under the subject's data key.
    pub reasons: EncryptedFields,
}

/// Which requests a list returns. Every condition given must hold; the list is in deadline
/// order (then id), after `after` when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestQuery {
    /// One subject's requests only.
    pub subject: Option<SubjectId>,
    /// Requests in one of these statuses (any status when empty).
    pub statuses: Vec<RequestStatus>,
    /// Requests of this kind.
    pub kind: Option<RequestKind>,
    /// Requests whose deadline is at or before this instant.
    pub due_by: Option<i64>,
    /// Requests closed before this instant.
    pub closed_before: Option<i64>,
    /// Requests after this (deadline, id) in list order: where the previous page ended.
    pub after: Option<(i64, RequestId)>,
    /// At most this many.
    pub limit: usize,
}

/// Data-subject requests, each change committed with its audit entry.
#[async_trait]
pub trait RequestStore: Send + Sync {
    /// Stores a new request with its audit entry, in one transaction; `NotFound` when the
    /// subject has no data key (unknown, or erased), a conflict when the id is taken.
    async fn insert_request(&self, row: RequestRow, audit: QueuedAudit) -> Result<(), StoreError>;
    /// Replaces a request with `row` if its version is still `row.version`, the version read,
    /// and queues its audit entry, in one transaction; a conflict when it changed since,
    /// `NotFound` when it is gone.
    async fn update_request(&self, row: RequestRow, audit: QueuedAudit) -> Result<(), StoreError>;
    /// Deletes a request if its version is still `version`, with its audit entry, in one
    /// transaction; a conflict when it changed since, `NotFound` when it is gone.
    async fn delete_request(
        &self,
        id: RequestId,
        version: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError>;
    /// One request.
    async fn request(&self, id: RequestId) -> Result<Option<RequestRow>, StoreError>;
    /// The requests `query` selects, in deadline order.
    async fn requests(&self, query: &RequestQuery) -> Result<Vec<RequestRow>, StoreError>;
}

/// A stored kind, which must be one this binary knows.
pub(crate) fn parse_kind(s: &str) -> Result<RequestKind, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt("a request's kind is not one this binary knows".into()))
}

/// A stored status, which must be one this binary knows.
pub(crate) fn parse_status(s: &str) -> Result<RequestStatus, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt("a request's status is not one this binary knows".into()))
}
