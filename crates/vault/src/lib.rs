//! The Custos application: a [`Vault`] holds the store, the keys and the inventory, and has one
//! method per use case. Each change and its audit entry commit in one transaction; each read
//! of personal data is decided field by field in `core`, and audited before it is returned.

mod apikeys;
mod audit;
mod audit_query;
mod backup;
mod blind_index;
mod breach;
mod consent;
mod consent_report;
mod copy;
mod demo;
mod erasure;
mod error;
mod export;
mod init;
mod keys;
mod mail;
mod operators;
mod portal;
mod records;
mod reindex;
mod rekey;
mod reports;
mod requests;
mod retention;
mod rotation;
mod sites;
#[cfg(feature = "test-support")]
pub mod testing;
mod tls;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use custos_core::inventory::Inventory;
use custos_core::principal::{Act, authorize};
use custos_store::Store;
use tokio::sync::Mutex;

pub use apikeys::{ApiKeyInfo, NewApiKey};
pub use audit::{AuditFault, AuditProof, AuditRecord, HeadView, VerifyReport};
pub use audit_query::{AuditFilter, AuditPage, MAX_PAGE, SCAN_LIMIT, action_name};
pub use backup::{
    BackupCheck, BackupProgress, BackupReport, RestoreReport, create_backup, restore_backup,
    verify_backup,
};
pub use breach::{
    AlertView, BlastQuery, ClockView, Containment, DELIVERY_EXPIRY_MS, DETECTOR_BATCH,
    IncidentChange, IncidentView, MAX_ALERTS, MAX_PLANT, NOTICE_EXPIRY_MS, Notices, OpenIncident,
    PlantedCanary, Sent,
};
pub use consent::{LedgerView, NewChoice, PurposeView};
pub use consent_report::{ConsentSummary, PurposeCount};
pub use copy::{CopyReport, copy_database};
pub use custos_core::principal::{Job, Principal};
pub use custos_store::CopyProgress;
pub use custos_store::RotationRow;
pub use custos_store::{Location, OutboxCounts, SchemaVersion, StoreError, Table};
pub use demo::{DEMO_CUSTOMERS, demo_customer};
pub use erasure::{ErasureView, SignedCertificate};
pub use error::{InvalidKind, VaultError};
pub use export::{
    Activity, Actor, ActorKind, CollectionExport, EXPORT_FORMAT, ExportBytes, ExportFormat,
    FieldExport, Happened, PurposeExport, Read, RecipientExport, RecordExport, RetentionExport,
    Source, SubjectExport,
};
pub use init::{InitReport, RootKeySource, init};
pub use keys::ROOT_KEY_RECHECK;
pub use mail::{
    DELIVERY_BATCH, DELIVERY_LEASE, DeliveryReport, SMTP_TIMEOUT, SmtpRelay, Transport,
};
pub use operators::{
    NewOperator, NewOperatorSession, OperatorInfo, OperatorSession, SetupStage, SetupView,
};
pub use portal::{Correction, NewSession, PortalSession, SigninFlow};
pub use records::{Created, RecordView, WithheldView};
pub use reindex::{IndexStatus, REINDEX_BATCH, ReindexProgress, ReindexReport};
pub use rekey::{REKEY_BATCH, RekeyProgress, RekeyReport};
pub use requests::{
    MAX_LIST, NewRequest, Place, ReasonView, RequestFilter, RequestView, Step, WeekCount,
};
pub use retention::{CollectionRetention, HoldView, RetentionReport};
pub use rotation::{
    KeyStatus, ROTATION_BATCH, RootVersionStatus, RotationProgress, RotationReport,
};
pub use sites::{PublicChoice, PublicOutcome, SiteToken};
pub use tls::{
    SELF_SIGNED_CERT, SELF_SIGNED_DAYS, SELF_SIGNED_KEY, SelfSignedReport, self_signed_tls,
};

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
    /// The data directory.
    pub dir: PathBuf,
    /// The inventory.
    pub inventory: PathBuf,
    /// The root key file.
    pub root_key: PathBuf,
    /// The database when given on the command line; otherwise the inventory's `database`, or
    /// else the embedded file in the data directory.
    pub database: Option<Location>,
}

impl Paths {
    /// The usual layout inside a data directory.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            inventory: dir.join(INVENTORY_FILE),
            root_key: dir.join(ROOT_KEY_FILE),
            database: None,
        }
    }

    /// The same layout with the database given explicitly (`--database`).
    pub fn with_database(mut self, database: Location) -> Self {
        self.database = Some(database);
        self
    }

    /// Where the database is: the explicit location, else the inventory's `database` (an
    /// SQLite path there is read relative to the data directory), else `custos.db` in the
    /// data directory.
    ///
    /// # Errors
    /// [`VaultError::Setup`] when the inventory's URL cannot be read.
    pub fn location(&self, inventory: &Inventory) -> Result<Location, VaultError> {
        if let Some(l) = &self.database {
            return Ok(l.clone());
        }
        match inventory.database.as_deref() {
            None => Ok(Location::Sqlite(self.dir.join(DATABASE_FILE))),
            Some(url) => match Location::parse(url).map_err(|e| {
                VaultError::Setup(format!("{}: database: {e}", self.inventory.display()))
            })? {
                Location::Sqlite(p) => Ok(Location::Sqlite(self.dir.join(p))),
                other => Ok(other),
            },
        }
    }

    /// Reads and checks the inventory.
    ///
    /// # Errors
    /// [`VaultError::Setup`] listing every problem.
    pub fn read_inventory(&self) -> Result<Inventory, VaultError> {
        let text = std::fs::read_to_string(&self.inventory).map_err(|e| {
            VaultError::Setup(format!(
                "reading the inventory {}: {e}",
                self.inventory.display()
            ))
        })?;
        Inventory::from_toml(&text)
            .map_err(|e| VaultError::Setup(format!("{}: {e}", self.inventory.display())))
    }
}

/// Applies the schema migrations the vault's database lacks; says where it is and which
/// versions it went from and to.
///
/// # Errors
/// When the inventory is invalid, the database cannot be reached, a migration fails or the
/// schema is newer than this binary.
pub async fn migrate(paths: &Paths) -> Result<(Location, custos_store::SchemaVersion), VaultError> {
    let location = paths.location(&paths.read_inventory()?)?;
    let version = custos_store::migrate(&location).await?;
    Ok((location, version))
}

/// How long a server's hold on the audit sequencer outlives its last renewal.
pub const SEQUENCER_LEASE: Duration = Duration::from_secs(3);

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

/// A clock stopped at one instant: what `--as-of` runs on.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

impl FixedClock {
    /// The clock at a date (`YYYY-MM-DD`, midnight UTC) or an RFC 3339 instant.
    ///
    /// # Errors
    /// `Invalid` naming `field` when it is neither.
    pub fn parse(field: &str, s: &str) -> Result<FixedClock, VaultError> {
        let s = s.trim();
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(FixedClock(t.timestamp_millis()));
        }
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| FixedClock(t.and_utc().timestamp_millis()))
            .ok_or_else(|| {
                VaultError::invalid(
                    field,
                    "date",
                    "is not a date (2029-11-23) or an RFC 3339 instant (2029-11-23T12:00:00Z)",
                )
            })
    }
}

/// The vault.
pub struct Vault {
    store: Arc<dyn Store>,
    inventory: Arc<Inventory>,
    keys: KeyRing,
    clock: Arc<dyn Clock>,
    notice: custos_core::notice::Notice,
    sequencer: Mutex<()>,
    /// The key messages without a subject are sealed under, loaded or created on first use.
    outbox_key: tokio::sync::OnceCell<custos_core::crypto::DataKey>,
    /// The key operators' addresses and TOTP secrets are sealed under, loaded or created on
    /// first use.
    operators_key: tokio::sync::OnceCell<custos_core::crypto::DataKey>,
    /// The key incidents are sealed under, loaded or created on first use.
    incidents_key: tokio::sync::OnceCell<custos_core::crypto::DataKey>,
    /// The HTTP client webhook deliveries are posted with, built on first use.
    http: tokio::sync::OnceCell<reqwest::Client>,
    /// Password hashes computed at once (`Vault::verify_password`).
    hashing: tokio::sync::Semaphore,
    /// Where erasures are journaled outside the database: set when the vault is opened from
    /// its data directory, none over a bare store.
    journal: Option<backup::journal::ErasureJournal>,
}

/// How many Argon2id hashes the vault computes at once: two per core. Each takes 19 MiB.
pub const HASHING_AT_ONCE: usize = 4;

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
        Ok(Self::open_located(paths).await?.0)
    }

    /// [`Vault::open`], also saying where the database is.
    pub(crate) async fn open_located(paths: &Paths) -> Result<(Vault, Location), VaultError> {
        Self::open_with_clock(paths, Arc::new(SystemClock)).await
    }

    /// Opens the vault with its own clock: what the vault takes for "now" when it decides
    /// whether consent has lapsed or data is due for deletion. Tests move it; `--as-of`
    /// fixes it.
    ///
    /// # Errors
    /// As [`Vault::open`].
    pub async fn open_with_clock(
        paths: &Paths,
        clock: Arc<dyn Clock>,
    ) -> Result<(Vault, Location), VaultError> {
        let inventory = paths.read_inventory()?;
        let root = keys::root_ring(paths, &inventory)?;
        let location = paths.location(&inventory)?;
        let store = custos_store::open(&location).await?;
        let journal = inventory.backup.in_dir(&paths.dir).erasure_journal;
        let mut vault = Self::with_ring(store, inventory, root, clock).await?;
        vault.journal = Some(backup::journal::ErasureJournal::at(journal));
        Ok((vault, location))
    }

    /// Builds a vault over an open store; creates the vault's own keys on first use.
    ///
    /// # Errors
    /// When the stored keys cannot be unwrapped with this root key, or the store fails.
    pub async fn with_store(
        store: Arc<dyn Store>,
        inventory: Inventory,
        root: impl Into<custos_core::crypto::RootKeys>,
        clock: Arc<dyn Clock>,
    ) -> Result<Vault, VaultError> {
        Self::with_ring(store, inventory, keys::RootRing::fixed(root.into()), clock).await
    }

    async fn with_ring(
        store: Arc<dyn Store>,
        inventory: Inventory,
        root: keys::RootRing,
        clock: Arc<dyn Clock>,
    ) -> Result<Vault, VaultError> {
        let keys = KeyRing::load_or_create(store.as_ref(), root).await?;
        Ok(Vault {
            store,
            notice: custos_core::notice::Notice::from_inventory(&inventory),
            inventory: Arc::new(inventory),
            keys,
            clock,
            sequencer: Mutex::new(()),
            outbox_key: tokio::sync::OnceCell::new(),
            operators_key: tokio::sync::OnceCell::new(),
            incidents_key: tokio::sync::OnceCell::new(),
            http: tokio::sync::OnceCell::new(),
            hashing: tokio::sync::Semaphore::new(HASHING_AT_ONCE),
            journal: None,
        })
    }

    /// The inventory the vault enforces.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// The privacy notice, generated from the inventory, with its version.
    pub fn notice(&self) -> &custos_core::notice::Notice {
        &self.notice
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
    ///
    /// Several servers may share one database; the one holding the store's sequencer lease
    /// sequences, renewing it each round, and another takes over within
    /// [`SEQUENCER_LEASE`] of the holder's death. Correctness does not rest on the lease: an
    /// integration computed on a stale tree is refused by the store.
    pub async fn run_sequencer(self: Arc<Self>, interval: Duration) {
        // Unique per server, and says which process holds the lease when someone looks.
        let nonce = custos_core::crypto::random_bytes(8)
            .map(hex::encode)
            .unwrap_or_default();
        let holder = format!("pid {} {nonce}", std::process::id());
        let ttl = SEQUENCER_LEASE.as_millis() as i64;
        let mut held = false;
        loop {
            match self
                .store
                .sequencer_lease(&holder, self.now_ms(), ttl)
                .await
            {
                Ok(now_held) => {
                    if now_held != held {
                        tracing::info!(holder = %holder, held = now_held, "audit sequencer lease");
                    }
                    held = now_held;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the audit sequencer lease failed");
                    held = false;
                }
            }
            if held {
                let sequenced = self.sequence_audit().await;
                // The detector judges what is integrated, on the server that integrates it.
                let detected = self.detect().await;
                if let Err(e) = &detected {
                    tracing::warn!(error = %e, "the breach detector failed; retrying");
                }
                match sequenced {
                    Ok(n) if n >= audit::BATCH => continue,
                    Ok(_) if matches!(detected, Ok(n) if n as u64 >= DETECTOR_BATCH) => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "audit sequencing failed; retrying"),
                }
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Asks `core` whether `p` may do `act`: the one permission check of every use case.
    fn authorize(&self, p: &Principal, act: &Act<'_>) -> Result<(), VaultError> {
        authorize(p, act, &self.inventory).map_err(|r| VaultError::Forbidden(r.to_string()))
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
