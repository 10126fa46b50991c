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
use custos_core::audit::{SignedTreeHead, TreeHead};
use custos_core::ids::{EventId, RecordId, SubjectId};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use tokio::sync::{mpsc, oneshot};

use crate::shared::{LEASE_SQL, RECORD_WITH_KEY, hash32, signature64, split_peaks};
use crate::{
    ApiKeyRow, AuditStore, ConsentRow, CopyRow, CopyStore, Cursor, HoldRow, HoldStore, Integration,
    KeyStore, LeafRow, LedgerStore, NewRecord, QueuedAudit, QueuedRow, RecordChange, RecordRow,
    RecordStore, RecordWithKey, SchemaVersion, Store, StoreError, Table, TreeState, decode_fields,
    encode_fields,
};

/// The schema, one migration per entry; `PRAGMA user_version` says how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE vault_keys (
    name TEXT PRIMARY KEY,
    wrapped BLOB NOT NULL
);
CREATE TABLE subjects (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL DEFAULT 'active',
    created_ms INTEGER NOT NULL
);
CREATE TABLE subject_keys (
    subject_id TEXT NOT NULL REFERENCES subjects(id),
    version INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    PRIMARY KEY (subject_id, version)
);
CREATE TABLE records (
    id TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL REFERENCES subjects(id),
    collection TEXT NOT NULL,
    fields BLOB NOT NULL,
    version INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX records_subject ON records (subject_id);
CREATE INDEX records_collection ON records (collection);
CREATE TABLE blind_index (
    collection TEXT NOT NULL,
    field TEXT NOT NULL,
    digest BLOB NOT NULL,
    record_id TEXT NOT NULL REFERENCES records(id),
    subject_id TEXT NOT NULL,
    PRIMARY KEY (collection, field, digest, record_id)
) WITHOUT ROWID;
CREATE INDEX blind_index_record ON blind_index (record_id);
CREATE TABLE audit_queue (
    queue_id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_id TEXT,
    entry BLOB NOT NULL
);
CREATE TABLE audit_leaves (
    idx INTEGER PRIMARY KEY,
    subject_id TEXT,
    entry BLOB NOT NULL,
    leaf_hash BLOB NOT NULL
);
CREATE INDEX audit_leaves_subject ON audit_leaves (subject_id);
CREATE TABLE audit_heads (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    signature BLOB NOT NULL
);
CREATE TABLE audit_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    peaks BLOB NOT NULL
);
INSERT INTO audit_state (id, size, peaks) VALUES (1, 0, x'');
CREATE TABLE api_keys (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
"#,
    r#"
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE consent_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    subject_id TEXT NOT NULL REFERENCES subjects(id),
    entry BLOB NOT NULL
);
CREATE INDEX consent_events_subject ON consent_events (subject_id, seq);
"#,
    r#"
CREATE TABLE legal_holds (
    record_id TEXT PRIMARY KEY,
    collection TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    placed_ms INTEGER NOT NULL
);
"#,
];

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

fn backend(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict("a unique value is already taken".into())
        }
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Unavailable("the database is busy".into())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

fn pragmas(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA secure_delete = ON;",
    )
    .map_err(backend)
}

fn migrate(conn: &mut Connection) -> Result<SchemaVersion, StoreError> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(SchemaVersion {
        found: current,
        supported,
    })
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

fn id_text<T: std::fmt::Display>(id: T) -> String {
    id.to_string()
}

fn parse_id<T: std::str::FromStr>(s: String) -> Result<T, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt("an id column holds no UUID".into()))
}

fn record_with_key(row: &Row<'_>) -> rusqlite::Result<(RawRecord, bool)> {
    Ok((
        (
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
        ),
        row.get(8)?,
    ))
}

fn to_record_flagged((raw, has_ledger): (RawRecord, bool)) -> Result<RecordWithKey, StoreError> {
    let mut r = to_record(raw)?;
    r.has_ledger = has_ledger;
    Ok(r)
}

/// A record row as read: id, subject, collection, fields, version, created, updated, wrapped key.
type RawRecord = (String, String, String, Vec<u8>, i64, i64, i64, Vec<u8>);

fn to_record(raw: RawRecord) -> Result<RecordWithKey, StoreError> {
    let (id, subject, collection, fields, version, created_ms, updated_ms, wrapped_key) = raw;
    Ok(RecordWithKey {
        record: RecordRow {
            id: parse_id(id)?,
            subject_id: parse_id(subject)?,
            collection,
            fields: decode_fields(&fields)?,
            version,
            created_ms,
            updated_ms,
        },
        wrapped_key,
        has_ledger: false,
    })
}

/// A leaf row as read: index, subject, entry, leaf hash.
type RawLeaf = (i64, Option<String>, Vec<u8>, Vec<u8>);

fn leaf(row: &Row<'_>) -> rusqlite::Result<RawLeaf> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_leaf(raw: RawLeaf) -> Result<LeafRow, StoreError> {
    Ok(LeafRow {
        index: raw.0 as u64,
        subject_id: raw.1.map(parse_id).transpose()?,
        entry: raw.2,
        leaf_hash: hash32(raw.3)?,
    })
}

/// A consent row as read: seq, id, subject, entry.
type RawConsent = (i64, String, String, Vec<u8>);

fn consent_row(row: &Row<'_>) -> rusqlite::Result<RawConsent> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_consent(raw: RawConsent) -> Result<ConsentRow, StoreError> {
    Ok(ConsentRow {
        seq: raw.0,
        id: parse_id(raw.1)?,
        subject_id: parse_id(raw.2)?,
        entry: raw.3,
    })
}

/// A hold as read: record, collection, subject, reason, placed by, placed at.
type RawHold = (String, String, String, String, String, i64);

fn hold_row(row: &Row<'_>) -> rusqlite::Result<RawHold> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn to_hold(raw: RawHold) -> Result<HoldRow, StoreError> {
    Ok(HoldRow {
        record_id: parse_id(raw.0)?,
        collection: raw.1,
        subject_id: parse_id(raw.2)?,
        reason: raw.3,
        placed_by: raw.4,
        placed_ms: raw.5,
    })
}

fn insert_hold(c: &Connection, h: &HoldRow) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO legal_holds (record_id, collection, subject_id, reason, placed_by, placed_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id_text(h.record_id),
            h.collection,
            id_text(h.subject_id),
            h.reason,
            h.placed_by,
            h.placed_ms
        ])
    })
    .map(drop)
    .map_err(backend)
}

fn head(row: &Row<'_>) -> rusqlite::Result<(i64, Vec<u8>, i64, Vec<u8>)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_head(raw: (i64, Vec<u8>, i64, Vec<u8>)) -> Result<SignedTreeHead, StoreError> {
    Ok(SignedTreeHead {
        head: TreeHead {
            size: raw.0 as u64,
            root: hash32(raw.1)?,
            timestamp_ms: raw.2 as u64,
        },
        signature: signature64(raw.3)?,
    })
}

fn api_key(row: &Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        name: row.get(0)?,
        role: row.get(1)?,
        digest: row.get(2)?,
        created_ms: row.get(3)?,
        revoked_ms: row.get(4)?,
    })
}

/// A record, its subject when new, its index entries and its audit entry.
fn insert_new(c: &Connection, new: &NewRecord) -> Result<(), StoreError> {
    if let Some(s) = &new.new_subject {
        c.prepare_cached("INSERT INTO subjects (id, created_ms) VALUES (?1, ?2)")
            .and_then(|mut st| st.execute(params![id_text(s.id), s.created_ms]))
            .map_err(backend)?;
        c.prepare_cached(
            "INSERT INTO subject_keys (subject_id, version, wrapped) VALUES (?1, 1, ?2)",
        )
        .and_then(|mut st| st.execute(params![id_text(s.id), s.wrapped_key]))
        .map_err(backend)?;
    }
    let r = &new.record;
    c.prepare_cached(
        "INSERT INTO records (id, subject_id, collection, fields, version, created_ms, updated_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut st| {
        st.execute(params![
            id_text(r.id),
            id_text(r.subject_id),
            r.collection,
            encode_fields(&r.fields),
            r.version,
            r.created_ms,
            r.updated_ms
        ])
    })
    .map_err(|e| match backend(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict("the record id or subject is unknown or taken".into())
        }
        other => other,
    })?;
    insert_index(c, r, &new.index)?;
    queue(c, &new.audit)
}

fn queue(conn: &Connection, audit: &QueuedAudit) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO audit_queue (subject_id, entry) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![audit.subject_id.map(id_text), audit.entry]))
        .map(drop)
        .map_err(backend)
}

fn insert_index(
    conn: &Connection,
    rec: &RecordRow,
    entries: &[crate::IndexEntry],
) -> Result<(), StoreError> {
    let mut s = conn
        .prepare_cached(
            "INSERT INTO blind_index (collection, field, digest, record_id, subject_id) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(backend)?;
    for e in entries {
        s.execute(params![
            rec.collection,
            e.field,
            e.digest,
            id_text(rec.id),
            id_text(rec.subject_id)
        ])
        .map_err(backend)?;
    }
    Ok(())
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
impl RecordStore for SqliteStore {
    async fn insert_record(&self, new: NewRecord) -> Result<(), StoreError> {
        self.write(move |c| insert_new(c, &new)).await
    }

    async fn anonymise_record(
        &self,
        collection: &str,
        old: RecordId,
        new: NewRecord,
    ) -> Result<(), StoreError> {
        let collection = collection.to_owned();
        self.write(move |c| {
            c.execute(
                "DELETE FROM blind_index WHERE record_id = ?1",
                [id_text(old)],
            )
            .map_err(backend)?;
            let n = c
                .execute(
                    "DELETE FROM records WHERE id = ?1 AND collection = ?2",
                    params![id_text(old), collection],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_new(c, &new)
        })
        .await
    }

    async fn update_record(&self, change: RecordChange) -> Result<(), StoreError> {
        self.write(move |c| {
            let r = &change.record;
            let n = c
                .prepare_cached(
                    "UPDATE records SET fields = ?1, version = version + 1, updated_ms = ?2 \
                     WHERE id = ?3 AND collection = ?4 AND version = ?5",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        encode_fields(&r.fields),
                        r.updated_ms,
                        id_text(r.id),
                        r.collection,
                        r.version
                    ])
                })
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::Conflict(
                    "the record changed since it was read".into(),
                ));
            }
            let mut del = c
                .prepare_cached("DELETE FROM blind_index WHERE record_id = ?1 AND field = ?2")
                .map_err(backend)?;
            for f in &change.reindexed_fields {
                del.execute(params![id_text(r.id), f]).map_err(backend)?;
            }
            insert_index(c, r, &change.index)?;
            queue(c, &change.audit)
        })
        .await
    }

    async fn delete_record(
        &self,
        collection: &str,
        id: RecordId,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let collection = collection.to_owned();
        self.write(move |c| {
            c.execute(
                "DELETE FROM blind_index WHERE record_id = ?1",
                [id_text(id)],
            )
            .map_err(backend)?;
            let n = c
                .execute(
                    "DELETE FROM records WHERE id = ?1 AND collection = ?2",
                    params![id_text(id), collection],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            queue(c, &audit)
        })
        .await
    }

    async fn record(
        &self,
        collection: &str,
        id: RecordId,
    ) -> Result<Option<RecordWithKey>, StoreError> {
        let collection = collection.to_owned();
        self.read(move |c| {
            let sql = format!(
                "{RECORD_WITH_KEY} WHERE r.id = ?1 AND r.collection = ?2 AND k.version = 1"
            );
            let raw = c
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row(params![id_text(id), collection], record_with_key)
                        .optional()
                })
                .map_err(backend)?;
            raw.map(to_record_flagged).transpose()
        })
        .await
    }

    async fn find_by_digest(
        &self,
        collection: &str,
        field: &str,
        digest: &[u8],
    ) -> Result<Vec<RecordWithKey>, StoreError> {
        let (collection, field, digest) =
            (collection.to_owned(), field.to_owned(), digest.to_vec());
        self.read(move |c| {
            let sql = format!(
                "{RECORD_WITH_KEY} JOIN blind_index b ON b.record_id = r.id \
                 WHERE b.collection = ?1 AND b.field = ?2 AND b.digest = ?3 AND k.version = 1 ORDER BY r.created_ms"
            );
            let mut s = c.prepare_cached(&sql).map_err(backend)?;
            let rows = s.query_map(params![collection, field, digest], record_with_key).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_record_flagged)).collect()
        })
        .await
    }

    async fn subject_records(&self, subject: SubjectId) -> Result<Vec<RecordWithKey>, StoreError> {
        self.read(move |c| {
            let sql = format!(
                "{RECORD_WITH_KEY} WHERE r.subject_id = ?1 AND k.version = 1 ORDER BY r.created_ms"
            );
            let mut s = c.prepare_cached(&sql).map_err(backend)?;
            let rows = s
                .query_map([id_text(subject)], record_with_key)
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_record_flagged))
                .collect()
        })
        .await
    }

    async fn subject_key(&self, subject: SubjectId) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT wrapped FROM subject_keys WHERE subject_id = ?1 AND version = 1",
            )
            .and_then(|mut s| s.query_row([id_text(subject)], |r| r.get(0)).optional())
            .map_err(backend)
        })
        .await
    }

    async fn count_records(&self, collection: &str) -> Result<u64, StoreError> {
        let collection = collection.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT count(*) FROM records WHERE collection = ?1",
                [collection],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }
}

#[async_trait]
impl LedgerStore for SqliteStore {
    async fn insert_consent_event(
        &self,
        id: EventId,
        subject_id: SubjectId,
        entry: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            let known: Option<i64> = c
                .prepare_cached("SELECT 1 FROM subjects WHERE id = ?1")
                .and_then(|mut s| s.query_row([id_text(subject_id)], |r| r.get(0)).optional())
                .map_err(backend)?;
            if known.is_none() {
                return Err(StoreError::NotFound);
            }
            c.prepare_cached(
                "INSERT INTO consent_events (id, subject_id, entry) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![id_text(id), id_text(subject_id), entry]))
            .map_err(backend)?;
            queue(
                c,
                &QueuedAudit {
                    subject_id: Some(subject_id),
                    entry,
                },
            )
        })
        .await
    }

    async fn consent_event(&self, id: EventId) -> Result<Option<ConsentRow>, StoreError> {
        self.read(move |c| {
            let raw = c
                .prepare_cached(
                    "SELECT seq, id, subject_id, entry FROM consent_events WHERE id = ?1",
                )
                .and_then(|mut s| s.query_row([id_text(id)], consent_row).optional())
                .map_err(backend)?;
            raw.map(to_consent).transpose()
        })
        .await
    }

    async fn consent_events(&self, subject: SubjectId) -> Result<Vec<ConsentRow>, StoreError> {
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT seq, id, subject_id, entry FROM consent_events WHERE subject_id = ?1 \
                     ORDER BY seq",
                )
                .map_err(backend)?;
            let rows = s
                .query_map([id_text(subject)], consent_row)
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_consent))
                .collect()
        })
        .await
    }
}

#[async_trait]
impl HoldStore for SqliteStore {
    async fn place_hold(&self, hold: HoldRow, audit: QueuedAudit) -> Result<(), StoreError> {
        self.write(move |c| {
            let exists: Option<i64> = c
                .prepare_cached("SELECT 1 FROM records WHERE id = ?1 AND collection = ?2")
                .and_then(|mut s| {
                    s.query_row(params![id_text(hold.record_id), hold.collection], |r| {
                        r.get(0)
                    })
                    .optional()
                })
                .map_err(backend)?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            insert_hold(c, &hold).map_err(|e| match e {
                StoreError::Conflict(_) => {
                    StoreError::Conflict("the record is already under a legal hold".into())
                }
                e => e,
            })?;
            queue(c, &audit)
        })
        .await
    }

    async fn release_hold(&self, record: RecordId, audit: QueuedAudit) -> Result<(), StoreError> {
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM legal_holds WHERE record_id = ?1",
                    [id_text(record)],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            queue(c, &audit)
        })
        .await
    }

    async fn holds(&self) -> Result<Vec<HoldRow>, StoreError> {
        self.read(|c| {
            let mut s = c
                .prepare_cached(
                    "SELECT record_id, collection, subject_id, reason, placed_by, placed_ms \
                     FROM legal_holds ORDER BY record_id",
                )
                .map_err(backend)?;
            let rows = s.query_map([], hold_row).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_hold)).collect()
        })
        .await
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, entries: Vec<QueuedAudit>) -> Result<(), StoreError> {
        self.write(move |c| entries.iter().try_for_each(|e| queue(c, e)))
            .await
    }

    async fn queued_audit(&self, limit: usize) -> Result<Vec<QueuedRow>, StoreError> {
        self.read(move |c| {
            let mut s = c
                .prepare_cached("SELECT queue_id, subject_id, entry FROM audit_queue ORDER BY queue_id LIMIT ?1")
                .map_err(backend)?;
            let rows = s
                .query_map([limit as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?, r.get(2)?)))
                .map_err(backend)?;
            rows.map(|r| {
                let (queue_id, subject, entry) = r.map_err(backend)?;
                Ok(QueuedRow { queue_id, audit: QueuedAudit { subject_id: subject.map(parse_id).transpose()?, entry } })
            })
            .collect()
        })
        .await
    }

    async fn integrate_audit(&self, batch: Integration) -> Result<(), StoreError> {
        self.write(move |c| {
            let size: i64 = c.query_row("SELECT size FROM audit_state WHERE id = 1", [], |r| r.get(0)).map_err(backend)?;
            if size as u64 != batch.from_size {
                return Err(StoreError::Conflict("the tree grew since the batch was computed".into()));
            }
            let mut ins = c
                .prepare_cached("INSERT INTO audit_leaves (idx, subject_id, entry, leaf_hash) VALUES (?1, ?2, ?3, ?4)")
                .map_err(backend)?;
            for l in &batch.leaves {
                ins.execute(params![l.index as i64, l.subject_id.map(id_text), l.entry, l.leaf_hash.to_vec()])
                    .map_err(backend)?;
            }
            let mut del = c.prepare_cached("DELETE FROM audit_queue WHERE queue_id = ?1").map_err(backend)?;
            for q in &batch.queue_ids {
                if del.execute([q]).map_err(backend)? != 1 {
                    return Err(StoreError::Conflict("a queued entry was already integrated".into()));
                }
            }
            let peaks: Vec<u8> = batch.state.peaks.concat();
            c.execute("UPDATE audit_state SET size = ?1, peaks = ?2 WHERE id = 1", params![batch.state.size as i64, peaks])
                .map_err(backend)?;
            let h = &batch.head;
            c.execute(
                "INSERT INTO audit_heads (size, root, timestamp_ms, signature) VALUES (?1, ?2, ?3, ?4)",
                params![h.head.size as i64, h.head.root.to_vec(), h.head.timestamp_ms as i64, h.signature.to_vec()],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn tree_state(&self) -> Result<TreeState, StoreError> {
        self.read(|c| {
            let (size, peaks): (i64, Vec<u8>) = c
                .query_row(
                    "SELECT size, peaks FROM audit_state WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(backend)?;
            let peaks = split_peaks(&peaks)?;
            Ok(TreeState {
                size: size as u64,
                peaks,
            })
        })
        .await
    }

    async fn leaves(&self, from: u64, to: u64) -> Result<Vec<LeafRow>, StoreError> {
        self.read(move |c| {
            let mut s = c
                .prepare_cached(
                    "SELECT idx, subject_id, entry, leaf_hash FROM audit_leaves WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
                )
                .map_err(backend)?;
            let rows = s.query_map([from as i64, to as i64], leaf).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_leaf)).collect()
        })
        .await
    }

    async fn subject_leaves(&self, subject: SubjectId) -> Result<Vec<LeafRow>, StoreError> {
        self.read(move |c| {
            let mut s = c
                .prepare_cached("SELECT idx, subject_id, entry, leaf_hash FROM audit_leaves WHERE subject_id = ?1 ORDER BY idx")
                .map_err(backend)?;
            let rows = s.query_map([id_text(subject)], leaf).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_leaf)).collect()
        })
        .await
    }

    async fn tree_heads(&self) -> Result<Vec<SignedTreeHead>, StoreError> {
        self.read(|c| {
            let mut s = c
                .prepare_cached(
                    "SELECT size, root, timestamp_ms, signature FROM audit_heads ORDER BY size",
                )
                .map_err(backend)?;
            let rows = s.query_map([], head).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(to_head)).collect()
        })
        .await
    }

    async fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT size, root, timestamp_ms, signature FROM audit_heads ORDER BY size DESC LIMIT 1",
                [],
                head,
            )
            .optional()
            .map_err(backend)?
            .map(to_head)
            .transpose()
        })
        .await
    }

    async fn sequencer_lease(
        &self,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let holder = holder.to_owned();
        self.write(move |c| {
            c.prepare_cached(LEASE_SQL)
                .and_then(|mut s| {
                    s.query(params![holder, now_ms, ttl_ms])?
                        .next()
                        .map(|r| r.is_some())
                })
                .map_err(backend)
        })
        .await
    }
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
                "INSERT INTO vault_keys (name, wrapped) VALUES (?1, ?2)",
                params![name, wrapped],
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

#[async_trait]
impl CopyStore for SqliteStore {
    async fn count(&self, table: Table) -> Result<(u64, u64), StoreError> {
        self.read(move |c| {
            let one = |sql: &str| -> Result<u64, StoreError> {
                c.query_row(sql, [], |r| r.get::<_, i64>(0))
                    .map(|n| n as u64)
                    .map_err(backend)
            };
            Ok(match table {
                Table::VaultKeys => (one("SELECT count(*) FROM vault_keys")?, 0),
                Table::Subjects => (one("SELECT count(*) FROM subjects")?, 0),
                Table::Records => (
                    one("SELECT count(*) FROM records")?,
                    one("SELECT count(*) FROM blind_index")?,
                ),
                Table::ConsentEvents => (one("SELECT count(*) FROM consent_events")?, 0),
                Table::LegalHolds => (one("SELECT count(*) FROM legal_holds")?, 0),
                Table::ApiKeys => (one("SELECT count(*) FROM api_keys")?, 0),
                Table::AuditLeaves => (one("SELECT count(*) FROM audit_leaves")?, 0),
                Table::AuditHeads => (one("SELECT count(*) FROM audit_heads")?, 0),
                Table::AuditState => (1, 0),
            })
        })
        .await
    }

    async fn export(
        &self,
        table: Table,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<CopyRow>, StoreError> {
        let (key, number) = match after {
            None => (String::new(), -1),
            Some(Cursor::Key(k)) => (k, -1),
            Some(Cursor::Number(n)) => (String::new(), n),
        };
        if table == Table::AuditLeaves {
            // Leaf indexes are dense, so a page is an index range.
            let from = (number + 1) as u64;
            let leaves = self.leaves(from, from + limit as u64).await?;
            return Ok(leaves.into_iter().map(CopyRow::Leaf).collect());
        }
        let limit = limit as i64;
        self.read(move |c| {
            match table {
                Table::VaultKeys => {
                    let mut s = c.prepare_cached("SELECT name, wrapped FROM vault_keys WHERE name > ?1 ORDER BY name LIMIT ?2").map_err(backend)?;
                    let it = s.query_map(params![key, limit], |r| Ok(CopyRow::VaultKey { name: r.get(0)?, wrapped: r.get(1)? })).map_err(backend)?;
                    it.map(|r| r.map_err(backend)).collect()
                }
                Table::Subjects => {
                    let mut s = c.prepare_cached("SELECT id, status, created_ms FROM subjects WHERE id > ?1 ORDER BY id LIMIT ?2").map_err(backend)?;
                    let heads = s
                        .query_map(params![key, limit], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
                        .map_err(backend)?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(backend)?;
                    let mut k = c.prepare_cached("SELECT version, wrapped FROM subject_keys WHERE subject_id = ?1 ORDER BY version").map_err(backend)?;
                    heads
                        .into_iter()
                        .map(|(id, status, created_ms)| {
                            let keys = k
                                .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))
                                .map_err(backend)?
                                .collect::<Result<Vec<_>, _>>()
                                .map_err(backend)?;
                            Ok(CopyRow::Subject { id: parse_id(id)?, status, created_ms, keys })
                        })
                        .collect()
                }
                Table::Records => {
                    let mut s = c
                        .prepare_cached(
                            "SELECT id, subject_id, collection, fields, version, created_ms, updated_ms \
                             FROM records WHERE id > ?1 ORDER BY id LIMIT ?2",
                        )
                        .map_err(backend)?;
                    let raws = s
                        .query_map(params![key, limit], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, Vec::new()))
                        })
                        .map_err(backend)?
                        .collect::<Result<Vec<RawRecord>, _>>()
                        .map_err(backend)?;
                    let mut ix = c.prepare_cached("SELECT field, digest FROM blind_index WHERE record_id = ?1 ORDER BY field, digest").map_err(backend)?;
                    raws.into_iter()
                        .map(|raw| {
                            let index = ix
                                .query_map([&raw.0], |r| Ok(crate::IndexEntry { field: r.get(0)?, digest: r.get(1)? }))
                                .map_err(backend)?
                                .collect::<Result<Vec<_>, _>>()
                                .map_err(backend)?;
                            Ok(CopyRow::Record { record: to_record(raw)?.record, index })
                        })
                        .collect()
                }
                Table::ApiKeys => {
                    let mut s = c.prepare_cached("SELECT name, role, digest, created_ms, revoked_ms FROM api_keys WHERE name > ?1 ORDER BY name LIMIT ?2").map_err(backend)?;
                    let it = s.query_map(params![key, limit], api_key).map_err(backend)?;
                    it.map(|r| r.map_err(backend).map(CopyRow::ApiKey)).collect()
                }
                Table::ConsentEvents => {
                    let mut s = c.prepare_cached("SELECT seq, id, subject_id, entry FROM consent_events WHERE seq > ?1 ORDER BY seq LIMIT ?2").map_err(backend)?;
                    let it = s.query_map(params![number, limit], consent_row).map_err(backend)?;
                    it.map(|r| r.map_err(backend).and_then(to_consent).map(CopyRow::Consent)).collect()
                }
                Table::LegalHolds => {
                    let mut s = c.prepare_cached("SELECT record_id, collection, subject_id, reason, placed_by, placed_ms FROM legal_holds WHERE record_id > ?1 ORDER BY record_id LIMIT ?2").map_err(backend)?;
                    let it = s.query_map(params![key, limit], hold_row).map_err(backend)?;
                    it.map(|r| r.map_err(backend).and_then(to_hold).map(CopyRow::Hold)).collect()
                }
                Table::AuditLeaves => unreachable!("paged through leaves() above"),
                Table::AuditHeads => {
                    let mut s = c.prepare_cached("SELECT size, root, timestamp_ms, signature FROM audit_heads WHERE size > ?1 ORDER BY size LIMIT ?2").map_err(backend)?;
                    let it = s.query_map(params![number, limit], head).map_err(backend)?;
                    it.map(|r| r.map_err(backend).and_then(to_head).map(CopyRow::Head)).collect()
                }
                Table::AuditState => {
                    if number >= 1 {
                        return Ok(Vec::new());
                    }
                    let (size, peaks): (i64, Vec<u8>) = c
                        .query_row("SELECT size, peaks FROM audit_state WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
                        .map_err(backend)?;
                    Ok(vec![CopyRow::State(TreeState { size: size as u64, peaks: split_peaks(&peaks)? })])
                }
            }
        })
        .await
    }

    async fn import(&self, rows: Vec<CopyRow>) -> Result<(), StoreError> {
        self.write(move |c| {
            for row in &rows {
                match row {
                    CopyRow::VaultKey { name, wrapped } => {
                        c.prepare_cached("INSERT INTO vault_keys (name, wrapped) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
                            .and_then(|mut s| s.execute(params![name, wrapped]))
                            .map_err(backend)?;
                    }
                    CopyRow::Subject { id, status, created_ms, keys } => {
                        c.prepare_cached("INSERT INTO subjects (id, status, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
                            .and_then(|mut s| s.execute(params![id_text(id), status, created_ms]))
                            .map_err(backend)?;
                        let mut s = c
                            .prepare_cached("INSERT INTO subject_keys (subject_id, version, wrapped) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
                            .map_err(backend)?;
                        for (v, w) in keys {
                            s.execute(params![id_text(id), v, w]).map_err(backend)?;
                        }
                    }
                    CopyRow::Record { record: r, index } => {
                        c.prepare_cached(
                            "INSERT INTO records (id, subject_id, collection, fields, version, created_ms, updated_ms) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                        )
                        .and_then(|mut s| {
                            s.execute(params![
                                id_text(r.id),
                                id_text(r.subject_id),
                                r.collection,
                                encode_fields(&r.fields),
                                r.version,
                                r.created_ms,
                                r.updated_ms
                            ])
                        })
                        .map_err(backend)?;
                        let mut s = c
                            .prepare_cached(
                                "INSERT INTO blind_index (collection, field, digest, record_id, subject_id) \
                                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                            )
                            .map_err(backend)?;
                        for e in index {
                            s.execute(params![r.collection, e.field, e.digest, id_text(r.id), id_text(r.subject_id)])
                                .map_err(backend)?;
                        }
                    }
                    CopyRow::Consent(e) => {
                        c.prepare_cached("INSERT INTO consent_events (seq, id, subject_id, entry) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING")
                            .and_then(|mut s| s.execute(params![e.seq, id_text(e.id), id_text(e.subject_id), e.entry]))
                            .map_err(backend)?;
                    }
                    CopyRow::Hold(h) => match insert_hold(c, h) {
                        Ok(()) | Err(StoreError::Conflict(_)) => {}
                        Err(e) => return Err(e),
                    },
                    CopyRow::ApiKey(k) => {
                        c.prepare_cached(
                            "INSERT INTO api_keys (name, role, digest, created_ms, revoked_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
                             ON CONFLICT DO NOTHING",
                        )
                        .and_then(|mut s| s.execute(params![k.name, k.role, k.digest, k.created_ms, k.revoked_ms]))
                        .map_err(backend)?;
                    }
                    CopyRow::Leaf(l) => {
                        c.prepare_cached("INSERT INTO audit_leaves (idx, subject_id, entry, leaf_hash) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING")
                            .and_then(|mut s| s.execute(params![l.index as i64, l.subject_id.map(id_text), l.entry, l.leaf_hash.to_vec()]))
                            .map_err(backend)?;
                    }
                    CopyRow::Head(h) => {
                        c.prepare_cached(
                            "INSERT INTO audit_heads (size, root, timestamp_ms, signature) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                        )
                        .and_then(|mut s| {
                            s.execute(params![h.head.size as i64, h.head.root.to_vec(), h.head.timestamp_ms as i64, h.signature.to_vec()])
                        })
                        .map_err(backend)?;
                    }
                    CopyRow::State(t) => {
                        c.execute("UPDATE audit_state SET size = ?1, peaks = ?2 WHERE id = 1", params![t.size as i64, t.peaks.concat()])
                            .map_err(backend)?;
                    }
                }
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(backend))
            .await
    }
}
