//! Conversions between SQLite's values and errors and the store's.

use crate::error::StoreError;

pub(super) fn backend(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict("a unique value is already taken".into())
        }
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Unavailable("the database is busy".into())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

pub(super) fn id_text<T: std::fmt::Display>(id: T) -> String {
    id.to_string()
}

pub(super) fn parse_id<T: std::str::FromStr>(s: String) -> Result<T, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt("an id column holds no UUID".into()))
}
