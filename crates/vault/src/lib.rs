//! The Custos application: a [`Vault`] holds the store, the keys and the inventory, and has one
//! method per use case. Each change and its audit entry commit in one transaction; each read
//! of personal data is decided field by field in `core`, and audited before it is returned.

mod apikeys;
mod audit;
mod demo;
mod error;
mod init;
mod keys;
mod records;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use custos_core::access::Caller;
use custos_core::inventory::{ADMIN_ROLE, Inventory};
use custos_store::{Location, Store};
use tokio::sync::Mutex;

pub use apikeys::{ApiKeyInfo, NewApiKey};
pub use audit::{AuditFault, AuditProof, AuditRecord, HeadView, VerifyReport};
pub use custos_store::StoreError;
pub use demo::{DEMO_CUSTOMERS, demo_customer};
pub use error::VaultError;
pub use init::{InitReport, init};
pub use records::{Created, RecordView, WithheldView};

use keys::KeyRing;

/// The inventory file in a data directory.
pub const INVENTORY_FILE: &str = "custos.toml";
/// The root key file in a data directory.
pub const ROOT_KEY_FILE: &str = "root.key";
/// The embedded database file in a data directory.
pub const DATABASE_FILE: &str = "custos.db";

/// Where a vault's files are.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The inventory.
    pub inventory: PathBuf,
    /// The root key file.
    pub root_key: PathBuf,
    /// The database.
    pub database: Location,
}

impl Paths {
    /// The usual layout inside a data directory.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            inventory: dir.join(INVENTORY_FILE),
            root_key: dir.join(ROOT_KEY_FILE),
            database: Location::Sqlite(dir.join(DATABASE_FILE)),
        }
    }
}

/// A source of the current time; tests pass their own.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// Who is acting: an authenticated API key, or the operator at the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who, as written in audit entries: `apikey:NAME` or `cli`.
    pub actor: String,
    /// The role held.
    pub role: String,
}

impl Principal {
    /// The operator running the `custos` command on the vault's own machine, with admin rights.
    pub fn cli() -> Self {
        Self {
            actor: "cli".into(),
            role: ADMIN_ROLE.into(),
        }
    }
}

/// The vault.
pub struct Vault {
    store: Arc<dyn Store>,
    inventory: Arc<Inventory>,
    keys: KeyRing,
    clock: Arc<dyn Clock>,
    sequencer: Mutex<()>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

impl Vault {
    /// Opens a vault: reads and checks the inventory, reads the root key, opens the store
    /// (migrating an embedded database) and loads the vault's keys.
    ///
    /// # Errors
    /// When the inventory has problems (all listed), the root key file is missing, readable by
    /// others or malformed, or the store cannot be opened.
    pub async fn open(paths: &Paths) -> Result<Vault, VaultError> {
        let text = std::fs::read_to_string(&paths.inventory).map_err(|e| {
            VaultError::Setup(format!(
                "reading the inventory {}: {e}",
                paths.inventory.display()
            ))
        })?;
        let inventory = Inventory::from_toml(&text)
            .map_err(|e| VaultError::Setup(format!("{}: {e}", paths.inventory.display())))?;
        let root = keys::read_root_key(&paths.root_key)?;
        let store = custos_store::open(&paths.database).await?;
        Self::with_store(store, inventory, root, Arc::new(SystemClock)).await
    }

    /// Builds a vault over an open store; creates the vault's own keys on first use.
    ///
    /// # Errors
    /// When the stored keys cannot be unwrapped with this root key, or the store fails.
    pub async fn with_store(
        store: Arc<dyn Store>,
        inventory: Inventory,
        root: custos_core::crypto::RootKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Vault, VaultError> {
        let keys = KeyRing::load_or_create(store.as_ref(), root).await?;
        Ok(Vault {
            store,
            inventory: Arc::new(inventory),
            keys,
            clock,
            sequencer: Mutex::new(()),
        })
    }

    /// The inventory the vault enforces.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Whether the store answers.
    ///
    /// # Errors
    /// [`VaultError::Unavailable`] when it does not.
    pub async fn ping(&self) -> Result<(), VaultError> {
        Ok(self.store.ping().await?)
    }

    /// Runs the audit sequencer until its task is aborted: integrates queued entries into the
    /// tree every `interval` (at once again while a full batch was waiting), signing a head
    /// after each batch.
    pub async fn run_sequencer(self: Arc<Self>, interval: Duration) {
        loop {
            match self.sequence_audit().await {
                Ok(n) if n >= audit::BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "audit sequencing failed; retrying"),
            }
            tokio::time::sleep(interval).await;
        }
    }

    fn caller<'a>(&'a self, p: &Principal) -> Result<Caller<'a>, VaultError> {
        if p.role == ADMIN_ROLE {
            return Ok(Caller::Admin);
        }
        self.inventory
            .role(&p.role)
            .map(Caller::Role)
            .ok_or_else(|| {
                VaultError::Forbidden(format!(
                    "role {:?} is no longer declared in the inventory",
                    p.role
                ))
            })
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
