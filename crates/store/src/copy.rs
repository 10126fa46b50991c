//! What `custos db copy` moves: [`Table`], [`CopyRow`], [`Cursor`] and [`CopyStore`].

use async_trait::async_trait;
use custos_core::audit::SignedTreeHead;
use custos_core::ids::SubjectId;

use crate::audit::{LeafRow, TreeState};
use crate::breach::{AlertRow, CanaryRow, IncidentRow};
use crate::error::StoreError;
use crate::holds::HoldRow;
use crate::keys::ApiKeyRow;
use crate::ledger::ConsentRow;
use crate::operators::OperatorRow;
use crate::outbox::OutboxRow;
use crate::records::{IndexEntry, RecordRow};
use crate::requests::RequestRow;
use crate::subjects::ErasureRow;

/// A table as `custos db copy` moves it, in the order it moves them: keys and subjects before
/// records, leaves before heads, and the tree's right edge last, so that an interrupted copy
/// never claims a tree it does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Table {
    /// Wrapped vault keys.
    VaultKeys,
    /// Subjects with their wrapped data keys.
    Subjects,
    /// Records with their blind-index entries.
    Records,
    /// The consent ledger.
    ConsentEvents,
    /// Legal holds on records.
    LegalHolds,
    /// The erasure list.
    Erasures,
    /// Data-subject requests.
    Requests,
    /// Mail not yet delivered (and what was), sealed as stored.
    Outbox,
    /// API key digests.
    ApiKeys,
    /// Operators' accounts and recovery-code digests (their sessions are not copied).
    Operators,
    /// Canary records' marks (the records themselves travel with the records).
    Canaries,
    /// Alerts raised.
    Alerts,
    /// Incidents, sealed as stored.
    Incidents,
    /// Integrated audit entries.
    AuditLeaves,
    /// Signed tree heads.
    AuditHeads,
    /// The tree's right edge.
    AuditState,
}

impl Table {
    /// Every table, in copy order.
    pub const ALL: [Table; 16] = [
        Table::VaultKeys,
        Table::Subjects,
        Table::Records,
        Table::ConsentEvents,
        Table::LegalHolds,
        Table::Erasures,
        Table::Requests,
        Table::Outbox,
        Table::ApiKeys,
        Table::Operators,
        Table::Canaries,
        Table::Alerts,
        Table::Incidents,
        Table::AuditLeaves,
        Table::AuditHeads,
        Table::AuditState,
    ];

    /// Its name, for progress and reports.
    pub fn name(self) -> &'static str {
        match self {
            Table::VaultKeys => "vault keys",
            Table::Subjects => "subjects",
            Table::Records => "records",
            Table::ConsentEvents => "consent events",
            Table::LegalHolds => "legal holds",
            Table::Erasures => "erasures",
            Table::Requests => "requests",
            Table::Outbox => "outbox",
            Table::ApiKeys => "api keys",
            Table::Operators => "operators",
            Table::Canaries => "canaries",
            Table::Alerts => "alerts",
            Table::Incidents => "incidents",
            Table::AuditLeaves => "audit entries",
            Table::AuditHeads => "signed heads",
            Table::AuditState => "tree state",
        }
    }
}

/// One row as `custos db copy` moves it: ciphertext and digests as stored, never decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyRow {
    /// A wrapped vault key.
    VaultKey {
        /// Its name.
        name: String,
        /// The key, wrapped by the root key.
        wrapped: Vec<u8>,
    },
    /// A subject and its wrapped data keys.
    Subject {
        /// The subject.
        id: SubjectId,
        /// Its status.
        status: String,
        /// Created, ms since the epoch.
        created_ms: i64,
        /// (version, wrapped key) pairs.
        keys: Vec<(i64, Vec<u8>)>,
    },
    /// A record and its blind-index entries.
    Record {
        /// The record.
        record: RecordRow,
        /// Its index entries.
        index: Vec<IndexEntry>,
    },
    /// An event of the consent ledger.
    Consent(ConsentRow),
    /// A legal hold.
    Hold(HoldRow),
    /// A subject on the erasure list.
    Erasure(ErasureRow),
    /// A data-subject request, its reasons encrypted as stored.
    Request(RequestRow),
    /// A message of the outbox, sealed as stored.
    Mail(OutboxRow),
    /// An API key's digest and metadata.
    ApiKey(ApiKeyRow),
    /// An operator's account and their recovery codes (digest, when used); their sessions
    /// are not copied.
    Operator(OperatorRow, Vec<(Vec<u8>, Option<i64>)>),
    /// A canary's mark.
    Canary(CanaryRow),
    /// An alert.
    Alert(AlertRow),
    /// An incident, sealed as stored.
    Incident(IncidentRow),
    /// An integrated audit entry.
    Leaf(LeafRow),
    /// A signed tree head.
    Head(SignedTreeHead),
    /// The tree's right edge.
    State(TreeState),
}

/// Where an export page ends; the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// A text or id key.
    Key(String),
    /// A numeric key.
    Number(i64),
}

impl CopyRow {
    /// The row's key in its table's order.
    pub fn cursor(&self) -> Cursor {
        match self {
            CopyRow::VaultKey { name, .. } => Cursor::Key(name.clone()),
            CopyRow::Subject { id, .. } => Cursor::Key(id.to_string()),
            CopyRow::Record { record, .. } => Cursor::Key(record.id.to_string()),
            CopyRow::Consent(e) => Cursor::Number(e.seq),
            CopyRow::Hold(h) => Cursor::Key(h.record_id.to_string()),
            CopyRow::Erasure(e) => Cursor::Key(e.subject_id.to_string()),
            CopyRow::Request(r) => Cursor::Key(r.id.to_string()),
            CopyRow::Mail(m) => Cursor::Key(m.id.to_string()),
            CopyRow::ApiKey(k) => Cursor::Key(k.name.clone()),
            CopyRow::Operator(o, _) => Cursor::Key(o.id.to_string()),
            CopyRow::Canary(c) => Cursor::Key(c.record_id.to_string()),
            CopyRow::Alert(a) => Cursor::Key(a.id.to_string()),
            CopyRow::Incident(i) => Cursor::Key(i.id.to_string()),
            CopyRow::Leaf(l) => Cursor::Number(l.index as i64),
            CopyRow::Head(h) => Cursor::Number(h.head.size as i64),
            CopyRow::State(_) => Cursor::Number(1),
        }
    }
}

/// Every table, page by page in key order, out of one store and into another.
#[async_trait]
pub trait CopyStore: Send + Sync {
    /// The number of rows in a table (blind-index entries are counted with [`Table::Records`]
    /// as a second number).
    async fn count(&self, table: Table) -> Result<(u64, u64), StoreError>;
    /// Up to `limit` rows of a table in key order, after `after`.
    async fn export(
        &self,
        table: Table,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<CopyRow>, StoreError>;
    /// Writes copied rows as they are, in one transaction. A row whose key is present is left
    /// alone, so a copy run again after an interruption adds only what is missing; the tree
    /// state is overwritten.
    async fn import(&self, rows: Vec<CopyRow>) -> Result<(), StoreError>;
}

/// A copy that finds a subject's key replaced on the source since it copied the subject: the
/// records copied before would be under the other key.
pub(crate) fn key_replaced(id: SubjectId) -> StoreError {
    StoreError::Conflict(format!(
        "subject {id}'s data key was replaced on the source since the copy began (a \
         `custos keys rotate-subjects` ran): copy again into an empty database"
    ))
}
