//! What `custos backup` reads and writes: [`SnapshotStore`], a consistent copy of the whole
//! database as one SQLite file, and [`copy_tables`], the page-by-page move both `db copy`
//! and `backup restore` make.

use std::path::Path;

use async_trait::async_trait;

use crate::copy::{CopyStore, Cursor, Table};
use crate::error::StoreError;

/// Rows moved per transaction by [`copy_tables`].
pub const COPY_PAGE: usize = 500;

/// A consistent snapshot of a store, and emptying one.
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Writes a consistent snapshot of every table [`Table::ALL`] names into a new SQLite
    /// database at `path`, which must not exist yet, while writers go on: SQLite copies itself
    /// with `VACUUM INTO`; PostgreSQL exports every table from one repeatable-read snapshot
    /// (as `pg_dump` does) into the new file. The file holds rows as stored: ciphertext,
    /// digests and wrapped keys.
    async fn snapshot_into(&self, path: &Path) -> Result<(), StoreError>;

    /// Deletes every row of every table, keeping the schema, in one transaction: what
    /// `custos backup restore --force` does to the database before it restores.
    async fn wipe(&self) -> Result<(), StoreError>;

    /// Whether no table [`Table::ALL`] names holds a row (the tree state aside).
    async fn is_empty(&self) -> Result<bool, StoreError>;
}

/// Where a copy of tables stands, reported after every page.
#[derive(Debug, Clone, Copy)]
pub struct CopyProgress {
    /// The table being copied.
    pub table: Table,
    /// Rows of it copied so far.
    pub done: u64,
    /// Rows of it in the source.
    pub total: u64,
}

/// Copies every table from `from` into `to`, page by page in [`Table::ALL`]'s order, each page
/// one transaction of the target; rows already present there are left alone.
///
/// # Errors
/// Store errors as they come; what was imported before stays.
pub async fn copy_tables(
    from: &dyn CopyStore,
    to: &dyn CopyStore,
    mut progress: impl FnMut(CopyProgress),
) -> Result<(), StoreError> {
    for table in Table::ALL {
        let total = from.count(table).await?.0;
        let mut done = 0;
        progress(CopyProgress { table, done, total });
        let mut after: Option<Cursor> = None;
        loop {
            let page = from.export(table, after, COPY_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.cursor());
            done += page.len() as u64;
            to.import(page).await?;
            progress(CopyProgress { table, done, total });
        }
    }
    Ok(())
}

/// Copies every table of `from` into a new SQLite file at `path`, sealed (no write-ahead log
/// beside it): how a backend other than SQLite writes its snapshot.
pub(crate) async fn copy_into_new_file(
    from: &dyn CopyStore,
    path: &Path,
) -> Result<(), StoreError> {
    crate::sqlite::SqliteStore::migrate(path).await?;
    let target = crate::sqlite::SqliteStore::open(path).await?;
    copy_tables(from, &target, |_| {}).await?;
    drop(target);
    crate::sqlite::seal(path).await
}

/// Refuses a snapshot path that exists: a snapshot is always a new file.
pub(crate) fn refuse_existing(path: &Path) -> Result<(), StoreError> {
    if path.exists() {
        return Err(StoreError::Backend(format!(
            "{} exists already: a snapshot is written to a new file",
            path.display()
        )));
    }
    Ok(())
}

/// Whether a store holds no rows, by [`CopyStore::count`].
pub(crate) async fn counts_empty(s: &dyn CopyStore) -> Result<bool, StoreError> {
    for table in Table::ALL {
        if table != Table::AuditState && s.count(table).await?.0 > 0 {
            return Ok(false);
        }
    }
    Ok(true)
}
