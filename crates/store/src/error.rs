//! What can go wrong in storage: [`StoreError`].

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
    /// A write sealed under a subject's data key that a subjects rotation has replaced
    /// meanwhile: nothing was written; seal it again under the new key.
    #[error("the subject's data key was replaced since it was read")]
    KeyChanged,
    /// The blind-index keys changed since the vault read them (a rotation began or ended):
    /// nothing was written or found; digest again under the keys the vault holds now.
    #[error("the blind-index keys changed since they were read")]
    IndexChanged,
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
