//! `custos init`: a data directory with an example inventory, a new root key and an empty
//! database.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;

use custos_core::crypto::RootKey;
use custos_core::inventory::EXAMPLE;

use crate::keys::write_root_key;
use crate::{Paths, SystemClock, Vault, VaultError};

/// What `init` created.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The inventory, and whether it was written now (an existing one is kept).
    pub inventory: (PathBuf, bool),
    /// The new root key file.
    pub root_key: PathBuf,
    /// The database.
    pub database: custos_store::Location,
}

/// Initialises a data directory. An existing inventory is kept; an existing root key is never
/// overwritten, so `init` refuses to run twice. The database is migrated (a PostgreSQL one
/// too: `init` is where a vault begins).
///
/// # Errors
/// [`VaultError::Setup`] when a root key exists already or a file cannot be written.
pub async fn init(paths: &Paths) -> Result<InitReport, VaultError> {
    let dir = paths.dir.as_path();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| VaultError::Setup(format!("creating {}: {e}", dir.display())))?;
    let root = RootKey::generate(1)?;
    write_root_key(&paths.root_key, &root)?;
    let wrote_inventory = !paths.inventory.exists();
    if wrote_inventory {
        std::fs::write(&paths.inventory, EXAMPLE).map_err(|e| {
            VaultError::Setup(format!("writing {}: {e}", paths.inventory.display()))
        })?;
    }
    let inventory = paths.read_inventory()?;
    let location = paths.location(&inventory)?;
    custos_store::migrate(&location).await?;
    let store = custos_store::open(&location).await?;
    Vault::with_store(store, inventory, root, Arc::new(SystemClock)).await?;
    Ok(InitReport {
        inventory: (paths.inventory.clone(), wrote_inventory),
        root_key: paths.root_key.clone(),
        database: location,
    })
}
