//! Keys: the vault's own wrapped keys and API key digests, and [`KeyStore`].

use async_trait::async_trait;

use crate::audit::QueuedAudit;
use crate::error::StoreError;

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

/// The vault's wrapped keys and the API keys' digests.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// A wrapped vault key (`index`, `audit-signing`) by name.
    async fn vault_key(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores a vault key once; a conflict when the name is taken.
    async fn insert_vault_key(&self, name: &str, wrapped: Vec<u8>) -> Result<(), StoreError>;

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
}
