//! Keys on SQLite: [`KeyStore`] for [`SqliteStore`].

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use super::SqliteStore;
use super::audit::queue;
use super::convert::backend;
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::keys::{ApiKeyRow, KeyStore};

pub(super) fn api_key(row: &Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        name: row.get(0)?,
        role: row.get(1)?,
        digest: row.get(2)?,
        created_ms: row.get(3)?,
        revoked_ms: row.get(4)?,
    })
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn vault_key(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let name = name.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT wrapped FROM vault_keys WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn insert_vault_key(&self, name: &str, wrapped: Vec<u8>) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write(move |c| {
            c.execute(
                "INSERT INTO vault_keys (name, wrapped, root_version) VALUES (?1, ?2, ?3)",
                params![name, wrapped, crate::rotation::root_version_of(&wrapped)?],
            )
            .map(drop)
            .map_err(backend)
        })
        .await
    }

    async fn insert_api_key(&self, key: ApiKeyRow, audit: QueuedAudit) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO api_keys (name, role, digest, created_ms, revoked_ms) VALUES (?1, ?2, ?3, ?4, NULL)",
                params![key.name, key.role, key.digest, key.created_ms],
            )
            .map_err(|e| match backend(e) {
                StoreError::Conflict(_) => StoreError::Conflict("an API key with this name exists".into()),
                other => other,
            })?;
            queue(c, &audit)
        })
        .await
    }

    async fn api_key_by_digest(&self, digest: &[u8]) -> Result<Option<ApiKeyRow>, StoreError> {
        let digest = digest.to_vec();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT name, role, digest, created_ms, revoked_ms FROM api_keys WHERE digest = ?1 AND revoked_ms IS NULL",
            )
            .and_then(|mut s| s.query_row([digest], api_key).optional())
            .map_err(backend)
        })
        .await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        self.read(|c| {
            let mut s = c
                .prepare_cached("SELECT name, role, digest, created_ms, revoked_ms FROM api_keys ORDER BY created_ms, name")
                .map_err(backend)?;
            let rows = s.query_map([], api_key).map_err(backend)?;
            rows.map(|r| r.map_err(backend)).collect()
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        name: &str,
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE api_keys SET revoked_ms = ?1 WHERE name = ?2 AND revoked_ms IS NULL",
                    params![at_ms, name],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            queue(c, &audit)
        })
        .await
    }
}
