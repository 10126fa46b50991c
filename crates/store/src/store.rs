//! The [`Store`] trait, made of one trait per aggregate, and the [`SchemaVersion`] a
//! backend reports.

use async_trait::async_trait;

use crate::audit::AuditStore;
use crate::breach::BreachStore;
use crate::copy::CopyStore;
use crate::error::StoreError;
use crate::holds::HoldStore;
use crate::keys::KeyStore;
use crate::ledger::LedgerStore;
use crate::operators::OperatorStore;
use crate::outbox::OutboxStore;
use crate::records::RecordStore;
use crate::reindex::IndexKeyStore;
use crate::rekey::SubjectKeyStore;
use crate::requests::RequestStore;
use crate::rotation::RotationStore;
use crate::signin::SigninStore;
use crate::snapshot::SnapshotStore;
use crate::subjects::SubjectStore;

/// The storage a vault runs on: every aggregate's storage, and whether the database answers.
#[async_trait]
pub trait Store:
    RecordStore
    + LedgerStore
    + HoldStore
    + RequestStore
    + OutboxStore
    + AuditStore
    + KeyStore
    + RotationStore
    + SubjectKeyStore
    + IndexKeyStore
    + SubjectStore
    + SigninStore
    + OperatorStore
    + BreachStore
    + CopyStore
    + SnapshotStore
    + Send
    + Sync
    + 'static
{
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// The database's name, for reports: "SQLite" or "PostgreSQL".
    fn kind(&self) -> &'static str;
}

/// Where the schema stands against this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    /// Migrations applied to the database.
    pub found: i64,
    /// Migrations this binary knows.
    pub supported: i64,
}
