//! API keys: 256-bit random bearer secrets, stored only as SHA-256 digests.

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::crypto::{digests_equal, random_bytes, secret_digest};
use custos_core::inventory::ADMIN_ROLE;
use custos_core::secret::Secret;
use custos_store::{ApiKeyRow, QueuedAudit, StoreError};
use serde::Serialize;

use custos_core::principal::Act;

use crate::{Principal, Vault, VaultError};

const PREFIX: &str = "custos_";

/// A key just created: the only time the secret exists outside its holder.
#[derive(Debug)]
pub struct NewApiKey {
    /// The key's name.
    pub name: String,
    /// The secret to hand to its holder.
    pub secret: Secret<String>,
}

/// A stored key, without its digest.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyInfo {
    /// The key's name.
    pub name: String,
    /// Its role.
    pub role: String,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Revoked, ms since the epoch.
    pub revoked_ms: Option<i64>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl Vault {
    /// Creates an API key holding `role`; the secret is returned once and stored as a digest.
    ///
    /// # Errors
    /// `Invalid` for a bad name or an undeclared role; `Conflict` when the name is taken.
    pub async fn create_api_key(
        &self,
        p: &Principal,
        name: &str,
        role: &str,
    ) -> Result<NewApiKey, VaultError> {
        self.authorize(p, &Act::ManageApiKeys)?;
        custos_core::principal::may_grant(p, role, &self.inventory)
            .map_err(|r| VaultError::Forbidden(r.to_string()))?;
        if !valid_name(name) {
            return Err(VaultError::invalid(
                "name",
                "api_key_name",
                "use 1 to 64 letters, digits, '-', '_' or '.'",
            ));
        }
        if role != ADMIN_ROLE && self.inventory.role(role).is_none() {
            let declared: Vec<&str> = std::iter::once(ADMIN_ROLE)
                .chain(self.inventory.roles.iter().map(|r| r.id.as_str()))
                .collect();
            return Err(VaultError::invalid(
                "role",
                "unknown_role",
                format!("no role {role:?}: choose one of {}", declared.join(", ")),
            ));
        }
        let secret = Secret::new(format!(
            "{PREFIX}{}",
            hex::encode(zeroize::Zeroizing::new(random_bytes(32)?))
        ));
        let row = ApiKeyRow {
            name: name.to_owned(),
            role: role.to_owned(),
            digest: secret_digest(secret.expose_secret()).to_vec(),
            created_ms: self.now_ms(),
            revoked_ms: None,
        };
        let mut e = AuditEntry::new(p.actor(), Action::ApiKeyCreate, Outcome::Ok);
        e.detail = Some(format!("name={name} role={role}"));
        let audit = QueuedAudit {
            subject_id: None,
            entry: e.to_bytes(),
        };
        self.store
            .insert_api_key(row, audit)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    VaultError::Conflict(format!("an API key named {name:?} exists"))
                }
                e => e.into(),
            })?;
        Ok(NewApiKey {
            name: name.to_owned(),
            secret,
        })
    }

    /// Every API key, revoked ones too.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn api_keys(&self, p: &Principal) -> Result<Vec<ApiKeyInfo>, VaultError> {
        self.authorize(p, &Act::ManageApiKeys)?;
        Ok(self
            .store
            .api_keys()
            .await?
            .into_iter()
            .map(|k| ApiKeyInfo {
                name: k.name,
                role: k.role,
                created_ms: k.created_ms,
                revoked_ms: k.revoked_ms,
            })
            .collect())
    }

    /// Revokes a key by name; it is refused from the next request on.
    ///
    /// # Errors
    /// `NotFound` when no live key has the name.
    pub async fn revoke_api_key(&self, p: &Principal, name: &str) -> Result<(), VaultError> {
        self.authorize(p, &Act::ManageApiKeys)?;
        let mut e = AuditEntry::new(p.actor(), Action::ApiKeyRevoke, Outcome::Ok);
        e.detail = Some(format!("name={name}"));
        let audit = QueuedAudit {
            subject_id: None,
            entry: e.to_bytes(),
        };
        self.store
            .revoke_api_key(name, self.now_ms(), audit)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => VaultError::NotFound("API key"),
                e => e.into(),
            })
    }

    /// The principal a bearer secret belongs to.
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown, malformed or revoked key.
    pub async fn authenticate(&self, secret: &str) -> Result<Principal, VaultError> {
        if !secret.starts_with(PREFIX) || secret.len() > 128 {
            return Err(VaultError::Unauthenticated);
        }
        let digest = secret_digest(secret);
        let row = self
            .store
            .api_key_by_digest(&digest)
            .await?
            .ok_or(VaultError::Unauthenticated)?;
        // The lookup matched on the digest; compare again in constant time so that no
        // backend's comparison can leak timing about a near miss.
        if !digests_equal(&row.digest, &digest) {
            return Err(VaultError::Unauthenticated);
        }
        Ok(Principal::api_key(row.name, row.role))
    }
}
