//! The embedded SQLite backend.
//!
//! One writer thread owns the only writing connection and commits whatever is queued in one
//! transaction (group commit), each operation inside its own savepoint so that one failed
//! operation does not undo its neighbours. A caller hears back only after the commit, so an
//! acknowledged write is durable (WAL, `synchronous=FULL`). Reads run on a small pool of
//! read-only connections.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::store::{SchemaVersion, Store};

use convert::backend;
use schema::{migrate, pragmas};

mod audit;
mod breach;
mod convert;
mod copy;
mod holds;
mod index_keys;
mod keys;
mod ledger;
mod operators;
mod outbox;
mod records;
mod reindex;
mod rekey;
mod requests;
mod rotation;
mod schema;
mod signin;
mod snapshot;
pub use snapshot::seal;
mod subjects;

/// Read connections kept open; more are opened when all are in use, and closed after.
const READERS: usize = 4;
const MAX_BATCH: usize = 1024;

type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A queued write. Given the connection it runs and says whether it succeeded; given `None`
/// (the batch could not start) it does not run. Either way it returns the finisher that
/// answers its caller once the batch's fate is known.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Finish) + Send>;

/// The SQLite store.
pub struct SqliteStore {
    writer: mpsc::Sender<Job>,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
}

fn writer_loop(conn: Connection, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let mut finishers = Vec::with_capacity(jobs.len());
        let begun = conn.execute_batch("BEGIN IMMEDIATE").map_err(backend);
        if let Err(e) = begun {
            // Nothing ran; every caller hears the error and may retry.
            for job in jobs {
                let (_, finish) = job(None);
                finish(Err(e.clone()));
            }
            continue;
        }
        for job in jobs {
            let sp = conn.execute_batch("SAVEPOINT op").map_err(backend);
            if let Err(e) = sp {
                let (_, finish) = job(None);
                finishers.push((finish, Some(e)));
                continue;
            }
            let (ok, finish) = job(Some(&conn));
            let end = if ok {
                "RELEASE op"
            } else {
                "ROLLBACK TO op; RELEASE op"
            };
            let ended = conn.execute_batch(end).map_err(backend).err();
            finishers.push((finish, ended));
        }
        let committed = conn.execute_batch("COMMIT").map_err(backend);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for (finish, own_err) in finishers {
            match (&committed, own_err) {
                (Err(e), _) => finish(Err(e.clone())),
                (Ok(()), Some(e)) => finish(Err(e)),
                (Ok(()), None) => finish(Ok(())),
            }
        }
    }
}

impl SqliteStore {
    /// Opens (creating if need be) the database file and applies migrations.
    ///
    /// # Errors
    /// When the file cannot be opened, or its schema is newer than this binary.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?
    }

    /// Creates the file if need be and applies the migrations it lacks.
    ///
    /// # Errors
    /// When the file cannot be opened, a migration fails, or the schema is newer than this
    /// binary.
    pub async fn migrate(path: &Path) -> Result<SchemaVersion, StoreError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            create_private(&path)?;
            let mut conn = Connection::open(&path).map_err(backend)?;
            pragmas(&conn)?;
            migrate(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }

    fn open_blocking(path: &Path) -> Result<Self, StoreError> {
        create_private(path)?;
        let mut conn = Connection::open(path).map_err(backend)?;
        pragmas(&conn)?;
        migrate(&mut conn)?;
        let readers = (0..READERS)
            .map(|_| open_reader(path))
            .collect::<Result<Vec<_>, _>>()?;
        let (tx, rx) = mpsc::channel::<Job>(4096);
        std::thread::Builder::new()
            .name("custos-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::Backend(format!("starting the writer thread: {e}")))?;
        Ok(Self {
            writer: tx,
            readers: Mutex::new(readers),
            path: path.to_owned(),
        })
    }

    async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R, StoreError>>();
        let job: Job = Box::new(move |conn| {
            let Some(conn) = conn else {
                let finish: Finish = Box::new(move |res| {
                    let _ = tx.send(Err(res
                        .err()
                        .unwrap_or_else(|| StoreError::Unavailable("not run".into()))));
                });
                return (false, finish);
            };
            let out = f(conn);
            let ok = out.is_ok();
            let finish: Finish = Box::new(move |committed| {
                let _ = tx.send(match committed {
                    Ok(()) => out,
                    Err(e) => out.and(Err(e)),
                });
            });
            (ok, finish)
        });
        self.writer
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
    }

    /// Runs a read on a pooled read-only connection, on the calling thread. In WAL mode a
    /// reader never waits for the writer, and our reads are indexed lookups of microseconds:
    /// a hop to the blocking pool would cost more than the read (measured in BENCHMARKS.md).
    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let pooled = self.readers.lock().expect("reader pool lock").pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().expect("reader pool lock");
        if pool.len() < READERS {
            pool.push(conn);
        }
        out
    }
}

/// Creates the database file when absent, so that only the vault's own user may read it (and
/// so its WAL and journal, which SQLite creates with the database's mode).
fn create_private(path: &Path) -> Result<(), StoreError> {
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Backend(format!("creating {}: {e}", path.display())))?;
    }
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let r = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(backend)?;
    r.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend)?;
    Ok(r)
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "SQLite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(backend))
            .await
    }
}
