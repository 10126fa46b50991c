//! Key rotation: the root key versions a vault knows of, the keys each still wraps, and the
//! progress of a rotation, kept so that one stopped or killed half-way resumes. [`RotationStore`].

use async_trait::async_trait;
use custos_core::ids::SubjectId;

use crate::audit::QueuedAudit;
use crate::error::StoreError;

/// A root key version the database knows of. Version 1 is known without a row: it is the
/// version every vault began with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootVersionRow {
    /// The version.
    pub version: u32,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Retired, ms since the epoch.
    pub retired_ms: Option<i64>,
}

/// Whose a key wrapped by the root key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    /// A subject's data key, of this data-key version.
    Subject {
        /// The subject.
        id: SubjectId,
        /// The data key's version.
        version: i64,
    },
    /// One of the vault's named keys (`index`, `audit-signing`, ...).
    Named(String),
}

/// A key as stored, wrapped by the root key version its header names.
#[derive(Debug, Clone)]
pub struct WrappedKey {
    /// Whose it is.
    pub owner: KeyOwner,
    /// The wrapped bytes.
    pub wrapped: Vec<u8>,
}

/// One key wrapped again: replaced only while it is still `old.wrapped`, so an erasure or
/// another rotation that got there first is never undone.
#[derive(Debug, Clone)]
pub struct Rewrap {
    /// The key as it was read.
    pub old: WrappedKey,
    /// The key wrapped under the new version.
    pub new: Vec<u8>,
    /// The new version.
    pub new_version: u32,
}

/// What a rotation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationKind {
    /// Every key wrapped by the root key is wrapped again by a new root key version.
    Root,
    /// Subjects whose data key is older than an age get a new one, and everything sealed
    /// under it is sealed again (the rotation's target is that age in days).
    Subjects,
    /// Every record is indexed again under a new blind-index key, and the old key and its
    /// entries are removed (the rotation's target is the new key's version).
    Index,
}

impl RotationKind {
    /// Its name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationKind::Root => "root",
            RotationKind::Subjects => "subjects",
            RotationKind::Index => "index",
        }
    }

    /// The kind of this name, as stored.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "root" => Some(RotationKind::Root),
            "subjects" => Some(RotationKind::Subjects),
            "index" => Some(RotationKind::Index),
            _ => None,
        }
    }
}

/// A rotation, started and perhaps finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRow {
    /// Its id.
    pub id: i64,
    /// What it does.
    pub kind: RotationKind,
    /// The root key version it rotates to; for subjects, the age in days a key must have
    /// reached to be replaced.
    pub target: u32,
    /// Started, ms since the epoch.
    pub started_ms: i64,
    /// Keys to do when it started.
    pub total: u64,
    /// Keys done so far.
    pub done: u64,
    /// Finished, ms since the epoch.
    pub finished_ms: Option<i64>,
}

/// Root key versions, the keys they wrap, and rotations.
#[async_trait]
pub trait RotationStore: Send + Sync {
    /// The versions recorded (version 1 only once it was retired or another was added).
    async fn root_versions(&self) -> Result<Vec<RootVersionRow>, StoreError>;
    /// Claims a new root key version, with its audit entry: `false` (and nothing written)
    /// when the version is recorded already, as when another rotation claimed it first.
    async fn add_root_version(
        &self,
        version: u32,
        created_ms: i64,
        audit: QueuedAudit,
    ) -> Result<bool, StoreError>;
    /// How many keys (subjects' data keys and named keys) each root key version wraps.
    async fn wrapped_per_version(&self) -> Result<Vec<(u32, u64)>, StoreError>;
    /// Up to `limit` keys wrapped by a version below `version`: named keys first.
    async fn wrapped_below(
        &self,
        version: u32,
        limit: usize,
    ) -> Result<Vec<WrappedKey>, StoreError>;
    /// Replaces each key still as it was read, counts those replaced into the rotation's
    /// progress, in one transaction; returns how many were replaced.
    async fn rewrap(&self, rotation: i64, batch: Vec<Rewrap>) -> Result<u64, StoreError>;
    /// The unfinished rotation of this kind, if one was started.
    async fn open_rotation(&self, kind: RotationKind) -> Result<Option<RotationRow>, StoreError>;
    /// The latest rotation of this kind, finished or not.
    async fn last_rotation(&self, kind: RotationKind) -> Result<Option<RotationRow>, StoreError>;
    /// Starts a rotation; a conflict when one of this kind is unfinished.
    async fn start_rotation(
        &self,
        kind: RotationKind,
        target: u32,
        started_ms: i64,
        total: u64,
    ) -> Result<RotationRow, StoreError>;
    /// Marks a rotation finished, with its audit entry.
    async fn finish_rotation(
        &self,
        id: i64,
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError>;
    /// Records a version retired, with its audit entry: a conflict naming how many keys it
    /// still wraps when it wraps any (checked in the same transaction).
    async fn retire_root_version(
        &self,
        version: u32,
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError>;
    /// Drops what the database still keeps of replaced keys where the backend can do so while
    /// serving: SQLite moves its write-ahead log into the file (where `secure_delete` has
    /// zeroed freed space) and truncates it. `false` when it could not (SQLite with a reader
    /// in the way; PostgreSQL, whose dead row versions stay until `VACUUM` reuses their space).
    async fn flush_replaced(&self) -> Result<bool, StoreError>;
}

/// The root key version a wrapped key's header names (its bytes 1 to 4, big-endian).
///
/// # Errors
/// [`StoreError::Backend`] for bytes that are not a wrapped key.
pub fn root_version_of(wrapped: &[u8]) -> Result<u32, StoreError> {
    custos_core::crypto::ciphertext_key_version(wrapped)
        .map_err(|_| StoreError::Backend("a wrapped key is malformed".into()))
}

/// The refusal of a retirement while keys remain.
pub(crate) fn still_wrapping(version: u32, n: u64) -> StoreError {
    StoreError::Conflict(format!(
        "root key version {version} still wraps {n} keys: run `custos keys rotate-root` to finish"
    ))
}
