//! `custos init`: a data directory with an example inventory, a new root key and an empty
//! database.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;

use custos_core::crypto::RootKey;
use custos_core::inventory::{EXAMPLE, RootKeyConfig};

use crate::keys::{RootRing, Token, write_root_key};
use crate::{Paths, SystemClock, Vault, VaultError};

/// Where `init` found or put the root key.
#[derive(Debug, Clone)]
pub enum RootKeySource {
    /// A new key file, mode 0600.
    File(PathBuf),
    /// The environment variable `[root_key] env` names, read and never written.
    Env(String),
    /// A PKCS#11 token: where (the token and module), the first key's label, and whether
    /// `init` generated it now (the token held it already otherwise).
    Token {
        /// The token and its module.
        token: String,
        /// The label of the newest version there, `custos-root-1` when made now.
        label: String,
        /// Whether `init` generated it.
        created: bool,
    },
}

/// What `init` created.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The inventory, and whether it was written now (an existing one is kept).
    pub inventory: (PathBuf, bool),
    /// Where the root key is: the new key file, or the environment variable it was read from.
    pub root_key: RootKeySource,
    /// The database.
    pub database: custos_store::Location,
    /// The backup identity file written now, and the recipient put in `[backup]`; none when
    /// the inventory named a recipient already.
    pub backup: Option<(PathBuf, String)>,
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
    let wrote_inventory = !paths.inventory.exists();
    // A root key from the environment is never written, and one in a token never leaves it:
    // the key file is made only when the inventory names neither.
    let config = match wrote_inventory {
        true => RootKeyConfig::default(),
        false => paths.read_inventory()?.root_key,
    };
    let (root, source) = first_root_key(paths, &config).await?;
    if wrote_inventory {
        std::fs::write(&paths.inventory, EXAMPLE).map_err(|e| {
            VaultError::Setup(format!("writing {}: {e}", paths.inventory.display()))
        })?;
    }
    let backup = backup_identity(paths)?;
    let inventory = paths.read_inventory()?;
    // An empty journal from the start: a restore then tells a lost journal from one that
    // never had a line.
    let journal = inventory.backup.in_dir(&paths.dir).erasure_journal;
    if !journal.exists() {
        write_private(&journal, b"")?;
    }
    let location = paths.location(&inventory)?;
    custos_store::migrate(&location).await?;
    let store = custos_store::open(&location).await?;
    Vault::with_ring(store, inventory, root, Arc::new(SystemClock)).await?;
    Ok(InitReport {
        inventory: (paths.inventory.clone(), wrote_inventory),
        root_key: source,
        database: location,
        backup,
    })
}

/// The root key's first version where the inventory says to hold it: a new key file, the
/// environment variable's text, or a key generated in the token (one there already is used).
async fn first_root_key(
    paths: &Paths,
    config: &RootKeyConfig,
) -> Result<(RootRing, RootKeySource), VaultError> {
    match config {
        RootKeyConfig::File(_) => {
            let file = crate::keys::key_file(paths, config);
            write_root_key(&file, &RootKey::generate(1)?)?;
            Ok((RootRing::from_file(&file)?, RootKeySource::File(file)))
        }
        RootKeyConfig::Env(name) => Ok((
            RootRing::fixed(crate::keys::root_keys_from_env(name)?),
            RootKeySource::Env(name.clone()),
        )),
        RootKeyConfig::Pkcs11(c) => {
            let token = Token::open(c)?;
            let created = token.versions().is_empty();
            // Versions already there belong to a vault: this one only if its database holds
            // keys they wrapped (another data directory of it). A new database never adopts
            // them, or one vault's retirement would destroy another's key.
            if !created && database_is_new(paths).await? {
                return Err(VaultError::Setup(format!(
                    "{} already holds {} for another vault, and this database is new: give this \
                     vault a label of its own ([root_key.pkcs11] label = \"...\") or a token of its own",
                    token.describe(),
                    token.label_of(token.versions().last().copied().unwrap_or(1))
                )));
            }
            if created {
                token.generate(1)?;
            }
            let newest = token.versions().last().copied().unwrap_or(1);
            let source = RootKeySource::Token {
                token: token.describe(),
                label: token.label_of(newest),
                created,
            };
            Ok((RootRing::from_token(token, &paths.root_key), source))
        }
    }
}

/// Whether the inventory's database holds none of a vault's own keys yet.
async fn database_is_new(paths: &Paths) -> Result<bool, VaultError> {
    let location = paths.location(&paths.read_inventory()?)?;
    custos_store::migrate(&location).await?;
    let store = custos_store::open(&location).await?;
    Ok(store.vault_key("audit-signing").await?.is_none())
}

/// Makes the backup identity and names its recipient in `[backup]`, unless the inventory
/// names a recipient already. An identity file already there is kept and its recipient used.
fn backup_identity(paths: &Paths) -> Result<Option<(PathBuf, String)>, VaultError> {
    let config = paths.read_inventory()?.backup.in_dir(&paths.dir);
    if config.recipient.is_some() {
        return Ok(None);
    }
    let recipient = if config.identity.exists() {
        crate::backup::read_identity(&config.identity)?
            .to_public()
            .to_string()
    } else {
        let (text, recipient) = crate::backup::new_identity();
        write_private(&config.identity, text.as_bytes())?;
        recipient
    };
    let text = std::fs::read_to_string(&paths.inventory)
        .map_err(|e| VaultError::Setup(format!("reading {}: {e}", paths.inventory.display())))?;
    if text.lines().any(|l| l.trim_start().starts_with("[backup]")) {
        return Err(VaultError::Setup(format!(
            "{}: [backup] names no recipient: add recipient = \"{recipient}\" (the backup \
             identity {} opens what is encrypted to it)",
            paths.inventory.display(),
            config.identity.display()
        )));
    }
    let section = format!(
        "\n# Backups are encrypted to this recipient; the identity file opens them. Move the\n\
         # identity off the servers (docs/keys-and-backups.md).\n[backup]\nrecipient = \"{recipient}\"\n"
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(&paths.inventory)
        .and_then(|mut f| std::io::Write::write_all(&mut f, section.as_bytes()))
        .map_err(|e| VaultError::Setup(format!("writing {}: {e}", paths.inventory.display())))?;
    Ok(Some((config.identity, recipient)))
}

/// Writes a new file readable by its owner alone; never overwrites.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), VaultError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(|e| VaultError::Setup(format!("writing {}: {e}", path.display())))
}
