//! Storage for the vault: the [`Store`] trait and its backends.
//!
//! The trait speaks in rows of ciphertext and digests; it never sees a personal value and
//! makes no policy decision. Each write method is one transaction: a record, its blind-index
//! entries and its audit entry commit together or not at all.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use custos_core::audit::SignedTreeHead;
use custos_core::ids::{EventId, RecordId, SubjectId};
use custos_core::merkle::Hash;

mod postgres;
mod sqlite;
#[cfg(feature = "test-support")]
pub mod testing;

pub use postgres::{PostgresStore, SchemaVersion};
pub use sqlite::SqliteStore;

/// What can go wrong in storage. Messages name the operation, never a stored value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// The row changed since it was read, or a unique value is taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or is shutting down; trying again later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The database holds something this binary cannot read.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database's schema is newer than this binary.
    #[error(
        "the database schema is version {found}, newer than this binary's {supported}: upgrade custos"
    )]
    SchemaTooNew {
        /// The database's version.
        found: i64,
        /// The newest version this binary knows.
        supported: i64,
    },
    /// The database's schema is older than this binary and this backend does not migrate
    /// by itself.
    #[error(
        "the database schema is version {found}, older than this binary's {supported}: run `custos migrate`"
    )]
    SchemaTooOld {
        /// The database's version.
        found: i64,
        /// The newest version this binary knows.
        supported: i64,
    },
    /// Any other backend failure.
    #[error("storage failed: {0}")]
    Backend(String),
}

/// Where a store lives, parsed from a URL. An unknown scheme is an error, never a silently
/// created file.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite database file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database, by its `postgres://` URL (which may hold a password).
    Postgres(String),
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// Shows the location with any password in a URL replaced by `***`.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Location::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

/// A `scheme://[userinfo@]host[/path][?query]` URL cut into its parts, without decoding.
pub(crate) struct UrlParts<'a> {
    pub(crate) scheme: &'a str,
    pub(crate) userinfo: Option<&'a str>,
    pub(crate) host: &'a str,
    /// The path and query, from the first `/` or `?` on.
    pub(crate) tail: &'a str,
}

impl<'a> UrlParts<'a> {
    pub(crate) fn split(url: &'a str) -> Self {
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        Self {
            scheme,
            userinfo,
            host,
            tail,
        }
    }
}

/// `scheme://user:secret@host/db` becomes `scheme://user:***@host/db`; a `password=`
/// query parameter is hidden too.
fn redact_password(url: &str) -> String {
    let u = UrlParts::split(url);
    let userinfo = match u.userinfo {
        Some(info) => match info.split_once(':') {
            Some((user, _)) => format!("{user}:***@"),
            None => format!("{info}@"),
        },
        None => String::new(),
    };
    let tail = match u.tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => u.tail.to_owned(),
    };
    format!("{}://{userinfo}{}{tail}", u.scheme, u.host)
}

impl Location {
    /// Parses `sqlite://PATH` (or `sqlite:PATH`), or `postgres://...` / `postgresql://...`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] naming the schemes understood.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(StoreError::Backend("the sqlite URL names no file".into()));
            }
            return Ok(Location::Sqlite(path.into()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_owned()));
        }
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        Err(StoreError::Backend(format!(
            "unknown database URL scheme {:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE",
            if scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
            {
                scheme
            } else {
                "?"
            }
        )))
    }
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

/// A field name to its ciphertext.
pub type EncryptedFields = BTreeMap<String, Vec<u8>>;

/// One stored record: ciphertexts only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// The record.
    pub id: RecordId,
    /// Its subject.
    pub subject_id: SubjectId,
    /// Its collection.
    pub collection: String,
    /// Its fields, encrypted.
    pub fields: EncryptedFields,
    /// Bumped on every change, for optimistic concurrency.
    pub version: i64,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Last changed, ms since the epoch.
    pub updated_ms: i64,
}

/// A record with its subject's wrapped data key: what a read needs, in one query.
#[derive(Debug, Clone)]
pub struct RecordWithKey {
    /// The record.
    pub record: RecordRow,
    /// The subject's data key, wrapped by the root key.
    pub wrapped_key: Vec<u8>,
    /// Whether the subject's consent ledger holds any event: when not, a read needs no
    /// second query to know the subject chose nothing.
    pub has_ledger: bool,
}

/// A blind-index entry of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The field.
    pub field: String,
    /// HMAC of its normalised value.
    pub digest: Vec<u8>,
}

/// An audit entry waiting for the sequencer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedAudit {
    /// Its subject, so the trail of one subject can be found.
    pub subject_id: Option<SubjectId>,
    /// The entry's bytes.
    pub entry: Vec<u8>,
}

/// A subject created with its first record.
#[derive(Debug, Clone)]
pub struct NewSubject {
    /// The subject.
    pub id: SubjectId,
    /// Its data key, wrapped.
    pub wrapped_key: Vec<u8>,
    /// Created, ms since the epoch.
    pub created_ms: i64,
}

/// A new record, and all that commits with it.
#[derive(Debug, Clone)]
pub struct NewRecord {
    /// The record.
    pub record: RecordRow,
    /// The subject, when the record creates it.
    pub new_subject: Option<NewSubject>,
    /// Its blind-index entries.
    pub index: Vec<IndexEntry>,
    /// Its audit entry.
    pub audit: QueuedAudit,
}

/// A change to a record, and all that commits with it.
#[derive(Debug, Clone)]
pub struct RecordChange {
    /// The record with its new fields; `version` is the version that was read.
    pub record: RecordRow,
    /// Fields whose blind-index entries are replaced (all of them for a field given here).
    pub reindexed_fields: Vec<String>,
    /// The new entries of those fields.
    pub index: Vec<IndexEntry>,
    /// Its audit entry.
    pub audit: QueuedAudit,
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

/// A stored API key: its digest, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// The key's unique name.
    pub name: String,
    /// The role it holds.
    pub role: String,
    /// SHA-256 of the key.
    pub digest: Vec<u8>,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Revoked, ms since the epoch.
    pub revoked_ms: Option<i64>,
}

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
    /// API key digests.
    ApiKeys,
    /// Integrated audit entries.
    AuditLeaves,
    /// Signed tree heads.
    AuditHeads,
    /// The tree's right edge.
    AuditState,
}

impl Table {
    /// Every table, in copy order.
    pub const ALL: [Table; 9] = [
        Table::VaultKeys,
        Table::Subjects,
        Table::Records,
        Table::ConsentEvents,
        Table::LegalHolds,
        Table::ApiKeys,
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
            Table::ApiKeys => "api keys",
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
    /// An API key's digest and metadata.
    ApiKey(ApiKeyRow),
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
            CopyRow::ApiKey(k) => Cursor::Key(k.name.clone()),
            CopyRow::Leaf(l) => Cursor::Number(l.index as i64),
            CopyRow::Head(h) => Cursor::Number(h.head.size as i64),
            CopyRow::State(_) => Cursor::Number(1),
        }
    }
}

/// The storage a vault runs on.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A wrapped vault key (`index`, `audit-signing`) by name.
    async fn vault_key(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores a vault key once; a conflict when the name is taken.
    async fn insert_vault_key(&self, name: &str, wrapped: Vec<u8>) -> Result<(), StoreError>;

    /// Creates a record, its subject when new, its index entries and its audit entry.
    async fn insert_record(&self, new: NewRecord) -> Result<(), StoreError>;
    /// Replaces a record by its anonymised copy in one transaction: deletes `old` of
    /// `collection` with its index entries (`NotFound` when it is gone) and inserts `new`, a
    /// record of a new subject, with `new.audit` as the one audit entry of the act.
    async fn anonymise_record(
        &self,
        collection: &str,
        old: RecordId,
        new: NewRecord,
    ) -> Result<(), StoreError>;
    /// Changes a record if its version is still the one read; a conflict otherwise.
    async fn update_record(&self, change: RecordChange) -> Result<(), StoreError>;
    /// Deletes a record of a collection with its index entries; `NotFound` when absent.
    async fn delete_record(
        &self,
        collection: &str,
        id: RecordId,
        audit: QueuedAudit,
    ) -> Result<(), StoreError>;
    /// A record of a collection with its subject's wrapped key.
    async fn record(
        &self,
        collection: &str,
        id: RecordId,
    ) -> Result<Option<RecordWithKey>, StoreError>;
    /// The records of a collection whose field has this digest.
    async fn find_by_digest(
        &self,
        collection: &str,
        field: &str,
        digest: &[u8],
    ) -> Result<Vec<RecordWithKey>, StoreError>;
    /// All records of a subject.
    async fn subject_records(&self, subject: SubjectId) -> Result<Vec<RecordWithKey>, StoreError>;
    /// Whether a subject exists, and its wrapped key.
    async fn subject_key(&self, subject: SubjectId) -> Result<Option<Vec<u8>>, StoreError>;
    /// The number of records in a collection.
    async fn count_records(&self, collection: &str) -> Result<u64, StoreError>;

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

    /// Places a legal hold, with its audit entry; a conflict when the record is already held,
    /// `NotFound` when it does not exist.
    async fn place_hold(&self, hold: HoldRow, audit: QueuedAudit) -> Result<(), StoreError>;
    /// Releases a record's hold, with its audit entry; `NotFound` when it holds none.
    async fn release_hold(&self, record: RecordId, audit: QueuedAudit) -> Result<(), StoreError>;
    /// Every legal hold standing.
    async fn holds(&self) -> Result<Vec<HoldRow>, StoreError>;

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
    /// Every stored signed head, by size.
    async fn tree_heads(&self) -> Result<Vec<SignedTreeHead>, StoreError>;
    /// The newest signed head.
    async fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, StoreError>;

    /// Stores an API key; a conflict when the name is taken.
    async fn insert_api_key(&self, key: ApiKeyRow, audit: QueuedAudit) -> Result<(), StoreError>;
    /// The live (unrevoked) key with this digest.
    async fn api_key_by_digest(&self, digest: &[u8]) -> Result<Option<ApiKeyRow>, StoreError>;
    /// Every key, revoked ones too.
    async fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError>;
    /// Revokes a key by name; `NotFound` when no live key has it.
    async fn revoke_api_key(
        &self,
        name: &str,
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError>;

    /// Takes or renews the background sequencer's lease for `holder` until `now_ms + ttl_ms`;
    /// false while another holder's lease is live. Correctness does not rest on the lease
    /// ([`Store::integrate_audit`] checks the tree size); it keeps instances from racing.
    async fn sequencer_lease(
        &self,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError>;

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

    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Encodes a field map as bytes: count, then (name, ciphertext) pairs, length-prefixed.
pub fn encode_fields(fields: &EncryptedFields) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.values().map(|v| v.len() + 24).sum::<usize>() + 2);
    out.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (name, ct) in fields {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(ct.len() as u32).to_be_bytes());
        out.extend_from_slice(ct);
    }
    out
}

/// Decodes [`encode_fields`].
///
/// # Errors
/// [`StoreError::Corrupt`] when the bytes are truncated or malformed.
pub fn decode_fields(mut b: &[u8]) -> Result<EncryptedFields, StoreError> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], StoreError> {
        if b.len() < n {
            return Err(StoreError::Corrupt("record fields are truncated".into()));
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Ok(h)
    }
    let n = u16::from_be_bytes(take(&mut b, 2)?.try_into().expect("two bytes"));
    let mut out = EncryptedFields::new();
    for _ in 0..n {
        let len = u16::from_be_bytes(take(&mut b, 2)?.try_into().expect("two bytes")) as usize;
        let name = std::str::from_utf8(take(&mut b, len)?)
            .map_err(|_| StoreError::Corrupt("a field name is not UTF-8".into()))?
            .to_owned();
        let len = u32::from_be_bytes(take(&mut b, 4)?.try_into().expect("four bytes")) as usize;
        out.insert(name, take(&mut b, len)?.to_vec());
    }
    if !b.is_empty() {
        return Err(StoreError::Corrupt(
            "record fields have trailing bytes".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_truncation_is_caught() {
        let mut f = EncryptedFields::new();
        f.insert("email".into(), vec![1, 2, 3]);
        f.insert("name".into(), vec![]);
        let b = encode_fields(&f);
        assert_eq!(decode_fields(&b).unwrap(), f);
        for cut in 0..b.len() {
            assert!(decode_fields(&b[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("sqlite://data/custos.db").unwrap(),
            Location::Sqlite("data/custos.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:/tmp/x.db").unwrap(),
            Location::Sqlite("/tmp/x.db".into())
        );
        let e = Location::parse("mysql://localhost/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown database URL scheme \"mysql\""), "{e}");
        assert!(Location::parse("custos.db").is_err());
        assert!(Location::parse("sqlite://").is_err());
        assert_eq!(
            Location::parse("postgres://u@h/db").unwrap(),
            Location::Postgres("postgres://u@h/db".into())
        );
    }

    #[test]
    fn a_location_never_shows_its_password() {
        for (url, shown) in [
            (
                "postgres://u:s3cret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgresql://u:s3cret@h", "postgresql://u:***@h"),
            (
                "postgres://u@h/db?password=s3cret&x=1",
                "postgres://u@h/db?password=***&x=1",
            ),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
        ] {
            let l = Location::parse(url).unwrap();
            assert_eq!(l.to_string(), shown);
            assert!(!format!("{l:?}").contains("s3cret"));
        }
    }
}
