//! Storage for the vault: the [`Store`] trait and its backends.
//!
//! The trait speaks in rows of ciphertext and digests; it never sees a personal value and
//! makes no policy decision. Each write method is one transaction: a record, its blind-index
//! entries and its audit entry commit together or not at all.
//!
//! [`Store`] is made of one trait per aggregate, each in the file of the rows it speaks in:
//! [`RecordStore`], [`LedgerStore`], [`HoldStore`], [`RequestStore`], [`OutboxStore`],
//! [`AuditStore`], [`KeyStore`], [`RotationStore`], [`SubjectKeyStore`], [`IndexKeyStore`], [`SubjectStore`], [`SigninStore`],
//! [`OperatorStore`], [`BreachStore`], [`CopyStore`] and [`SnapshotStore`]. Code that holds a
//! backend by its own type brings their methods into scope with [`prelude`]; through
//! `dyn Store` they need no import.

use std::sync::Arc;

mod audit;
mod breach;
mod copy;
mod error;
mod holds;
mod keys;
mod ledger;
mod location;
mod operators;
mod outbox;
mod postgres;
mod records;
mod reindex;
mod rekey;
mod requests;
mod rotation;
mod shared;
mod signin;
mod snapshot;
mod sqlite;
mod store;
mod subjects;
#[cfg(feature = "test-support")]
pub mod testing;

pub use audit::{AuditStore, Integration, LeafRow, QueuedAudit, QueuedRow, TreeState};
pub use breach::{
    AlertRow, BreachStore, CanaryRow, DetectorStep, IncidentRow, NewAlert, WindowCount,
};
pub use copy::{CopyRow, CopyStore, Cursor, Table};
pub use error::StoreError;
pub use holds::{HoldRow, HoldStore};
pub use keys::{ApiKeyRow, KeyStore};
pub use ledger::{ConsentRow, LedgerStore};
pub use location::Location;
pub use operators::{AccountChange, Attempt, OperatorRow, OperatorSessionRow, OperatorStore};
pub use outbox::{OutboxCounts, OutboxRow, OutboxStore};
pub use postgres::PostgresStore;
pub use records::{
    EncryptedFields, IndexEntry, NewRecord, NewSubject, RecordChange, RecordRow, RecordStore,
    RecordWithKey, decode_fields, encode_fields,
};
pub use reindex::{IndexKeyStore, Reindexed, index_key_name, index_version_of};
pub use rekey::{Rekeyed, Reseal, SubjectKeyStore, SubjectSecrets};
pub use requests::{RequestQuery, RequestRow, RequestStore};
pub use rotation::{
    KeyOwner, Rewrap, RootVersionRow, RotationKind, RotationRow, RotationStore, WrappedKey,
    root_version_of,
};
pub use signin::{ChallengeRow, SessionRow, SigninStore};
pub use snapshot::{COPY_PAGE, CopyProgress, SnapshotStore, copy_tables};
pub use sqlite::SqliteStore;
/// Folds an SQLite file's write-ahead log into it and removes the log, once no store has it
/// open: the file alone then holds the database.
pub use sqlite::seal as seal_sqlite_file;
pub use store::{SchemaVersion, Store};
pub use subjects::{Erasure, ErasureRow, SubjectStore, Trim};

/// The aggregate traits [`Store`] is made of, and [`Store`] itself: `use
/// custos_store::prelude::*;` brings every storage method into scope. Through a `dyn Store`
/// or an `S: Store` they need no import; on a backend's own type they do.
///
/// ```
/// use custos_store::prelude::*;
/// use custos_store::{SqliteStore, StoreError};
///
/// async fn customers(store: &SqliteStore) -> Result<u64, StoreError> {
///     store.count_records("customers").await
/// }
/// ```
pub mod prelude {
    pub use crate::{
        AuditStore, BreachStore, CopyStore, HoldStore, IndexKeyStore, KeyStore, LedgerStore,
        OperatorStore, OutboxStore, RecordStore, RequestStore, RotationStore, SigninStore,
        SnapshotStore, Store, SubjectKeyStore, SubjectStore,
    };
}

/// Opens the store at a location. An SQLite file is created and migrated; a PostgreSQL
/// database must already be at this binary's schema (`custos migrate`), since several
/// instances may start at once.
///
/// # Errors
/// When the database cannot be opened or its schema is not this binary's.
pub async fn open(location: &Location) -> Result<Arc<dyn Store>, StoreError> {
    match location {
        Location::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path).await?)),
        Location::Postgres(url) => Ok(Arc::new(PostgresStore::open(url).await?)),
    }
}

/// Applies the schema migrations a database lacks (forward-only, each in a transaction).
///
/// # Errors
/// When the database cannot be reached, a migration fails, or the schema is newer than this
/// binary.
pub async fn migrate(location: &Location) -> Result<SchemaVersion, StoreError> {
    match location {
        Location::Sqlite(path) => SqliteStore::migrate(path).await,
        Location::Postgres(url) => PostgresStore::migrate(url).await,
    }
}
