//! Keys on PostgreSQL: [`KeyStore`] for [`PostgresStore`].

use async_trait::async_trait;
use tokio_postgres::Row;

use super::PostgresStore;
use super::audit::queue;
use super::convert::backend;
use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::keys::{ApiKeyRow, KeyStore};

pub(super) fn to_api_key(row: &Row) -> ApiKeyRow {
    ApiKeyRow {
        name: row.get(0),
        role: row.get(1),
        digest: row.get(2),
        created_ms: row.get(3),
        revoked_ms: row.get(4),
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn vault_key(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self
            .query("SELECT wrapped FROM vault_keys WHERE name = $1", &[&name])
            .await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    async fn insert_vault_key(&self, name: &str, wrapped: Vec<u8>) -> Result<(), StoreError> {
        self.query(
            "INSERT INTO vault_keys (name, wrapped) VALUES ($1, $2)",
            &[&name, &wrapped],
        )
        .await
        .map(drop)
    }

    async fn insert_api_key(&self, key: ApiKeyRow, audit: QueuedAudit) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute(
            "INSERT INTO api_keys (name, role, digest, created_ms, revoked_ms) VALUES ($1, $2, $3, $4, NULL)",
            &[&key.name, &key.role, &key.digest, &key.created_ms],
        )
        .await
        .map_err(|e| match backend(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict("an API key with this name exists".into())
            }
            other => other,
        })?;
        queue(&tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn api_key_by_digest(&self, digest: &[u8]) -> Result<Option<ApiKeyRow>, StoreError> {
        let rows = self
            .query(
                "SELECT name, role, digest, created_ms, revoked_ms FROM api_keys \
                 WHERE digest = $1 AND revoked_ms IS NULL",
                &[&digest],
            )
            .await?;
        Ok(rows.first().map(to_api_key))
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = self
            .query(
                "SELECT name, role, digest, created_ms, revoked_ms FROM api_keys ORDER BY created_ms, name",
                &[],
            )
            .await?;
        Ok(rows.iter().map(to_api_key).collect())
    }

    async fn revoke_api_key(
        &self,
        name: &str,
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let n = tx
            .execute(
                "UPDATE api_keys SET revoked_ms = $1 WHERE name = $2 AND revoked_ms IS NULL",
                &[&at_ms, &name],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        queue(&tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }
}
