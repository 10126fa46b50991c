//! PostgreSQL's errors as the store's: what is a conflict, what is an outage.

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::error::StoreError;

pub(super) fn backend(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::FOREIGN_KEY_VIOLATION {
            return StoreError::Conflict("a unique value is already taken".into());
        }
        if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::LOCK_NOT_AVAILABLE
        {
            return StoreError::Conflict("a concurrent change won; try again".into());
        }
        if code.code().starts_with("08")
            || code.code().starts_with("57")
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            return StoreError::Unavailable(format!("the database refused: {}", db.message()));
        }
        return StoreError::Backend(format!("{}: {}", code.code(), db.message()));
    }
    // No answer from the server: the connection broke or never opened. tokio-postgres's own
    // words name only the kind ("error performing TLS handshake"); the cause says which
    // (a certificate refused, a connection refused), and quotes neither a URL nor a value.
    let cause = std::error::Error::source(&e)
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    StoreError::Unavailable(format!("the database cannot be reached: {e}{cause}"))
}

pub(super) fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => backend(e),
        PoolError::Timeout(_) => {
            StoreError::Unavailable("no database connection became free in time".into())
        }
        other => StoreError::Unavailable(format!("the database cannot be reached: {other}")),
    }
}
