//! The PostgreSQL backend, for vaults that outgrow one file or run on several servers.
//!
//! Every method is one transaction on a pooled connection; PostgreSQL's own concurrency does
//! what the SQLite writer thread does there. Nothing shared lives in this process: several
//! `custos serve` processes on one database are one vault. The audit tree's right edge is one
//! row that an integration locks (`FOR UPDATE`) and checks, so two sequencers can never both
//! extend the tree from the same size; a lease row says which instance's background sequencer
//! runs, and another takes over when the lease lapses.
//!
//! Every subject-scoped table carries `subject_id`, so the schema can be distributed on Citus
//! by that column (`docs/scaling.md`).

use std::time::Duration;

use async_trait::async_trait;
use custos_core::audit::{SignedTreeHead, TreeHead};
use custos_core::ids::{EventId, RecordId, SubjectId};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use crate::shared::{LEASE_SQL, RECORD_WITH_KEY, hash32, signature64, split_peaks};
use crate::{
    ApiKeyRow, AuditStore, ConsentRow, CopyRow, CopyStore, Cursor, HoldRow, HoldStore, Integration,
    KeyStore, LeafRow, LedgerStore, NewRecord, QueuedAudit, QueuedRow, RecordChange, RecordRow,
    RecordStore, RecordWithKey, SchemaVersion, Store, StoreError, Table, TreeState, decode_fields,
    encode_fields,
};

/// The schema, one forward-only migration per entry, each applied in its own transaction;
/// `custos_schema` records which ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE vault_keys (
    name TEXT PRIMARY KEY,
    wrapped BYTEA NOT NULL
);
CREATE TABLE subjects (
    id UUID PRIMARY KEY,
    status TEXT NOT NULL DEFAULT 'active',
    created_ms BIGINT NOT NULL
);
CREATE TABLE subject_keys (
    subject_id UUID NOT NULL REFERENCES subjects(id),
    version INTEGER NOT NULL,
    wrapped BYTEA NOT NULL,
    PRIMARY KEY (subject_id, version)
);
CREATE TABLE records (
    id UUID PRIMARY KEY,
    subject_id UUID NOT NULL REFERENCES subjects(id),
    collection TEXT NOT NULL,
    fields BYTEA NOT NULL,
    version BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX records_subject ON records (subject_id);
CREATE INDEX records_collection ON records (collection);
CREATE TABLE blind_index (
    collection TEXT NOT NULL,
    field TEXT NOT NULL,
    digest BYTEA NOT NULL,
    record_id UUID NOT NULL REFERENCES records(id),
    subject_id UUID NOT NULL,
    PRIMARY KEY (collection, field, digest, record_id)
);
CREATE INDEX blind_index_record ON blind_index (record_id);
CREATE TABLE audit_queue (
    queue_id BIGSERIAL PRIMARY KEY,
    subject_id UUID,
    entry BYTEA NOT NULL
);
CREATE TABLE audit_leaves (
    idx BIGINT PRIMARY KEY,
    subject_id UUID,
    entry BYTEA NOT NULL,
    leaf_hash BYTEA NOT NULL
);
CREATE INDEX audit_leaves_subject ON audit_leaves (subject_id);
CREATE TABLE audit_heads (
    size BIGINT PRIMARY KEY,
    root BYTEA NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    signature BYTEA NOT NULL
);
CREATE TABLE audit_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL,
    peaks BYTEA NOT NULL
);
INSERT INTO audit_state (id, size, peaks) VALUES (1, 0, '\x');
CREATE TABLE api_keys (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    digest BYTEA NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
"#,
    r#"
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
"#,
    r#"
CREATE TABLE consent_events (
    seq BIGSERIAL PRIMARY KEY,
    id UUID NOT NULL UNIQUE,
    subject_id UUID NOT NULL REFERENCES subjects(id),
    entry BYTEA NOT NULL
);
CREATE INDEX consent_events_subject ON consent_events (subject_id, seq);
"#,
    r#"
CREATE TABLE legal_holds (
    record_id UUID PRIMARY KEY,
    collection TEXT NOT NULL,
    subject_id UUID NOT NULL,
    reason TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    placed_ms BIGINT NOT NULL
);
"#,
];

/// Serialises migrations between processes that start at once (`pg_advisory_xact_lock` key).
const MIGRATION_LOCK: i64 = 0x6375_7374_6f73; // "custos"

/// Connections per process. Bounded: a busy server waits for a connection (up to
/// [`POOL_WAIT`]) instead of opening more than the database allows.
const POOL_SIZE: usize = 16;
const POOL_WAIT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// No statement of ours runs long; one that does is cut off rather than holding a connection.
const STATEMENT_TIMEOUT_MS: u32 = 15_000;

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: Pool,
    appender: mpsc::Sender<Append>,
}

/// Audit entries to queue, and who to tell when they are.
type Append = (Vec<QueuedAudit>, oneshot::Sender<Result<(), StoreError>>);

/// Entries queued by one appender statement at most.
const APPEND_BATCH: usize = 2048;

/// Queues the audit entries of reads. Every read queues one entry before it answers; alone,
/// each would be a commit of its own. This task takes whatever callers are waiting and queues
/// all their entries in one statement (group commit, as the SQLite writer does), so a busy
/// server pays one commit per batch. Each caller's entries stay together and in order; a
/// failed statement fails every caller in it, and none of their entries is queued.
async fn append_loop(pool: Pool, mut rx: mpsc::Receiver<Append>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut n = batch[0].0.len();
        while n < APPEND_BATCH {
            match rx.try_recv() {
                Ok(more) => {
                    n += more.0.len();
                    batch.push(more);
                }
                Err(_) => break,
            }
        }
        let subjects: Vec<Option<Uuid>> = batch
            .iter()
            .flat_map(|(e, _)| e.iter().map(|e| e.subject_id.map(|s| s.as_uuid())))
            .collect();
        let entries: Vec<&[u8]> = batch
            .iter()
            .flat_map(|(e, _)| e.iter().map(|e| e.entry.as_slice()))
            .collect();
        let result = async {
            let client = pool.get().await.map_err(pool_error)?;
            let st = client
                .prepare_cached(
                    "INSERT INTO audit_queue (subject_id, entry) \
                     SELECT s, e FROM unnest($1::uuid[], $2::bytea[]) WITH ORDINALITY AS u(s, e, n) ORDER BY n",
                )
                .await
                .map_err(backend)?;
            client
                .execute(&st, &[&subjects, &entries])
                .await
                .map(drop)
                .map_err(backend)
        }
        .await;
        for (_, done) in batch {
            let _ = done.send(result.clone());
        }
    }
}

fn backend(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::FOREIGN_KEY_VIOLATION {
            return StoreError::Conflict("a unique value is already taken".into());
        }
        if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            return StoreError::Conflict("a concurrent change won; try again".into());
        }
        if code.code().starts_with("08")
            || code.code().starts_with("57")
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            return StoreError::Unavailable(format!("the database refused: {}", db.message()));
        }
        return StoreError::Backend(format!("{}: {}", code.code(), db.message()));
    }
    // No answer from the server: the connection broke or never opened.
    StoreError::Unavailable(format!("the database cannot be reached: {e}"))
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => backend(e),
        PoolError::Timeout(_) => {
            StoreError::Unavailable("no database connection became free in time".into())
        }
        other => StoreError::Unavailable(format!("the database cannot be reached: {other}")),
    }
}

fn to_record(row: &Row) -> Result<RecordWithKey, StoreError> {
    let fields: Vec<u8> = row.get(3);
    Ok(RecordWithKey {
        record: RecordRow {
            id: RecordId::from(row.get::<_, Uuid>(0)),
            subject_id: SubjectId::from(row.get::<_, Uuid>(1)),
            collection: row.get(2),
            fields: decode_fields(&fields)?,
            version: row.get(4),
            created_ms: row.get(5),
            updated_ms: row.get(6),
        },
        wrapped_key: row.get(7),
        has_ledger: row.get(8),
    })
}

fn to_leaf(row: &Row) -> Result<LeafRow, StoreError> {
    Ok(LeafRow {
        index: row.get::<_, i64>(0) as u64,
        subject_id: row.get::<_, Option<Uuid>>(1).map(SubjectId::from),
        entry: row.get(2),
        leaf_hash: hash32(row.get(3))?,
    })
}

fn to_head(row: &Row) -> Result<SignedTreeHead, StoreError> {
    Ok(SignedTreeHead {
        head: TreeHead {
            size: row.get::<_, i64>(0) as u64,
            root: hash32(row.get(1))?,
            timestamp_ms: row.get::<_, i64>(2) as u64,
        },
        signature: signature64(row.get(3))?,
    })
}

fn to_api_key(row: &Row) -> ApiKeyRow {
    ApiKeyRow {
        name: row.get(0),
        role: row.get(1),
        digest: row.get(2),
        created_ms: row.get(3),
        revoked_ms: row.get(4),
    }
}

type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// A record's insert as one statement, so one round trip and an implicit transaction: the
/// subject, its key, the record, its index entries and its audit entry commit together or not
/// at all. Foreign keys are checked at the statement's end, when every part is in.
const INSERT_RECORD: &str = "WITH s AS (INSERT INTO subjects (id, created_ms) SELECT $1, $2 WHERE $3), \
     k AS (INSERT INTO subject_keys (subject_id, version, wrapped) SELECT $1, 1, $4 WHERE $3), \
     r AS (INSERT INTO records (id, subject_id, collection, fields, version, created_ms, updated_ms) \
           VALUES ($5, $6, $7, $8, $9, $10, $11)), \
     b AS (INSERT INTO blind_index (collection, field, digest, record_id, subject_id) \
           SELECT $7, f, d, $5, $6 FROM unnest($12::text[], $13::bytea[]) AS u(f, d)) \
     INSERT INTO audit_queue (subject_id, entry) VALUES ($14, $15)";

/// The values of [`INSERT_RECORD`], owned.
struct InsertParams<'a> {
    subject: Uuid,
    created_ms: i64,
    creates_subject: bool,
    wrapped: &'a [u8],
    id: Uuid,
    subject_id: Uuid,
    collection: &'a str,
    fields: Vec<u8>,
    version: i64,
    record_created_ms: i64,
    updated_ms: i64,
    index_fields: Vec<&'a str>,
    digests: Vec<&'a [u8]>,
    audit_subject: Option<Uuid>,
    audit_entry: &'a [u8],
}

impl<'a> InsertParams<'a> {
    fn of(new: &'a NewRecord) -> Self {
        let r = &new.record;
        let (subject, created_ms, wrapped) = match &new.new_subject {
            Some(s) => (s.id.as_uuid(), s.created_ms, s.wrapped_key.as_slice()),
            None => (r.subject_id.as_uuid(), 0, &[][..]),
        };
        InsertParams {
            subject,
            created_ms,
            creates_subject: new.new_subject.is_some(),
            wrapped,
            id: r.id.as_uuid(),
            subject_id: r.subject_id.as_uuid(),
            collection: &r.collection,
            fields: encode_fields(&r.fields),
            version: r.version,
            record_created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            index_fields: new.index.iter().map(|e| e.field.as_str()).collect(),
            digests: new.index.iter().map(|e| e.digest.as_slice()).collect(),
            audit_subject: new.audit.subject_id.map(|s| s.as_uuid()),
            audit_entry: &new.audit.entry,
        }
    }

    fn as_params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 15] {
        [
            &self.subject,
            &self.created_ms,
            &self.creates_subject,
            &self.wrapped,
            &self.id,
            &self.subject_id,
            &self.collection,
            &self.fields,
            &self.version,
            &self.record_created_ms,
            &self.updated_ms,
            &self.index_fields,
            &self.digests,
            &self.audit_subject,
            &self.audit_entry,
        ]
    }
}

fn insert_error(e: tokio_postgres::Error) -> StoreError {
    match backend(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict("the record id or subject is unknown or taken".into())
        }
        other => other,
    }
}

fn to_hold(r: &Row) -> HoldRow {
    HoldRow {
        record_id: RecordId::from(r.get::<_, Uuid>(0)),
        collection: r.get(1),
        subject_id: SubjectId::from(r.get::<_, Uuid>(2)),
        reason: r.get(3),
        placed_by: r.get(4),
        placed_ms: r.get(5),
    }
}

fn to_consent(r: &Row) -> ConsentRow {
    ConsentRow {
        seq: r.get(0),
        id: EventId::from(r.get::<_, Uuid>(1)),
        subject_id: SubjectId::from(r.get::<_, Uuid>(2)),
        entry: r.get(3),
    }
}

async fn queue(tx: &Tx<'_>, audit: &QueuedAudit) -> Result<(), StoreError> {
    let st = tx
        .prepare_cached("INSERT INTO audit_queue (subject_id, entry) VALUES ($1, $2)")
        .await
        .map_err(backend)?;
    tx.execute(&st, &[&audit.subject_id.map(|s| s.as_uuid()), &audit.entry])
        .await
        .map(drop)
        .map_err(backend)
}

async fn insert_index(
    tx: &Tx<'_>,
    rec: &RecordRow,
    entries: &[crate::IndexEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let fields: Vec<&str> = entries.iter().map(|e| e.field.as_str()).collect();
    let digests: Vec<&[u8]> = entries.iter().map(|e| e.digest.as_slice()).collect();
    let st = tx
        .prepare_cached(
            "INSERT INTO blind_index (collection, field, digest, record_id, subject_id) \
             SELECT $1, f, d, $4, $5 FROM unnest($2::text[], $3::bytea[]) AS u(f, d)",
        )
        .await
        .map_err(backend)?;
    tx.execute(
        &st,
        &[
            &rec.collection,
            &fields,
            &digests,
            &rec.id.as_uuid(),
            &rec.subject_id.as_uuid(),
        ],
    )
    .await
    .map(drop)
    .map_err(backend)
}

async fn schema_version(client: &tokio_postgres::Client) -> Result<i64, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('custos_schema') IS NOT NULL", &[])
        .await
        .map_err(backend)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    client
        .query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM custos_schema",
            &[],
        )
        .await
        .map(|r| r.get(0))
        .map_err(backend)
}

impl PostgresStore {
    /// Connects to the database at `url` (a libpq-style `postgres://` URL) with a bounded
    /// pool, and checks its schema: a newer schema is refused, an older one is refused with
    /// [`StoreError::SchemaTooOld`] (several instances may start at once, so none migrates by
    /// itself: `custos migrate` does).
    ///
    /// # Errors
    /// When the URL is malformed, the database cannot be reached, or its schema is not this
    /// binary's.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url)?;
        let client = store.pool.get().await.map_err(pool_error)?;
        let found = schema_version(&client).await?;
        let supported = MIGRATIONS.len() as i64;
        if found > supported {
            return Err(StoreError::SchemaTooNew { found, supported });
        }
        if found < supported {
            return Err(StoreError::SchemaTooOld { found, supported });
        }
        drop(client);
        Ok(store)
    }

    fn connect(url: &str) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|_| {
            // The parser's message may quote the URL, password included: say what, not that.
            StoreError::Backend(
                "the PostgreSQL URL is malformed: expected postgres://USER@HOST:PORT/DATABASE"
                    .into(),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let options = format!(
            "{} -c statement_timeout={STATEMENT_TIMEOUT_MS} -c client_min_messages=warning",
            config.get_options().unwrap_or_default()
        );
        config.options(options.trim());
        config.application_name("custos");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(format!("building the connection pool: {e}")))?;
        let (appender, rx) = mpsc::channel(4096);
        tokio::spawn(append_loop(pool.clone(), rx));
        Ok(Self { pool, appender })
    }

    /// Applies the migrations this database lacks, each in its own transaction, under a lock
    /// that makes a concurrent `migrate` wait and then find nothing to do.
    ///
    /// # Errors
    /// When the database cannot be reached, a migration fails (that migration is rolled back
    /// and the later ones are not tried), or the schema is newer than this binary.
    pub async fn migrate(url: &str) -> Result<SchemaVersion, StoreError> {
        let store = Self::connect(url)?;
        let mut client = store.pool.get().await.map_err(pool_error)?;
        let supported = MIGRATIONS.len() as i64;
        let before = schema_version(&client).await?;
        if before > supported {
            return Err(StoreError::SchemaTooNew {
                found: before,
                supported,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate() {
            let version = i as i64 + 1;
            let tx = client.transaction().await.map_err(backend)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(backend)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS custos_schema (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
            )
            .await
            .map_err(backend)?;
            let done: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM custos_schema WHERE version = $1)",
                    &[&version],
                )
                .await
                .map_err(backend)?
                .get(0);
            if done {
                continue;
            }
            tx.batch_execute(sql).await.map_err(backend)?;
            tx.execute(
                "INSERT INTO custos_schema (version, applied_ms) \
                 VALUES ($1, (extract(epoch FROM now()) * 1000)::bigint)",
                &[&version],
            )
            .await
            .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
        }
        Ok(SchemaVersion {
            found: before,
            supported,
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let st = client.prepare_cached(sql).await.map_err(backend)?;
        client.query(&st, params).await.map_err(backend)
    }
}

#[async_trait]
impl RecordStore for PostgresStore {
    async fn insert_record(&self, new: NewRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(INSERT_RECORD)
            .await
            .map_err(backend)?;
        let params = InsertParams::of(&new);
        client
            .execute(&st, &params.as_params())
            .await
            .map(drop)
            .map_err(insert_error)
    }

    async fn anonymise_record(
        &self,
        collection: &str,
        old: RecordId,
        new: NewRecord,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute(
            "DELETE FROM blind_index WHERE record_id = $1",
            &[&old.as_uuid()],
        )
        .await
        .map_err(backend)?;
        let n = tx
            .execute(
                "DELETE FROM records WHERE id = $1 AND collection = $2",
                &[&old.as_uuid(), &collection],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        let st = tx.prepare_cached(INSERT_RECORD).await.map_err(backend)?;
        let params = InsertParams::of(&new);
        tx.execute(&st, &params.as_params())
            .await
            .map_err(insert_error)?;
        tx.commit().await.map_err(backend)
    }

    async fn update_record(&self, change: RecordChange) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let r = &change.record;
        let st = tx
            .prepare_cached(
                "UPDATE records SET fields = $1, version = version + 1, updated_ms = $2 \
                 WHERE id = $3 AND collection = $4 AND version = $5",
            )
            .await
            .map_err(backend)?;
        let n = tx
            .execute(
                &st,
                &[
                    &encode_fields(&r.fields),
                    &r.updated_ms,
                    &r.id.as_uuid(),
                    &r.collection,
                    &r.version,
                ],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(StoreError::Conflict(
                "the record changed since it was read".into(),
            ));
        }
        if !change.reindexed_fields.is_empty() {
            let st = tx
                .prepare_cached("DELETE FROM blind_index WHERE record_id = $1 AND field = ANY($2)")
                .await
                .map_err(backend)?;
            tx.execute(&st, &[&r.id.as_uuid(), &change.reindexed_fields])
                .await
                .map_err(backend)?;
        }
        insert_index(&tx, r, &change.index).await?;
        queue(&tx, &change.audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn delete_record(
        &self,
        collection: &str,
        id: RecordId,
        audit: QueuedAudit,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute(
            "DELETE FROM blind_index WHERE record_id = $1",
            &[&id.as_uuid()],
        )
        .await
        .map_err(backend)?;
        let n = tx
            .execute(
                "DELETE FROM records WHERE id = $1 AND collection = $2",
                &[&id.as_uuid(), &collection],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        queue(&tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn record(
        &self,
        collection: &str,
        id: RecordId,
    ) -> Result<Option<RecordWithKey>, StoreError> {
        let sql =
            format!("{RECORD_WITH_KEY} WHERE r.id = $1 AND r.collection = $2 AND k.version = 1");
        let rows = self.query(&sql, &[&id.as_uuid(), &collection]).await?;
        rows.first().map(to_record).transpose()
    }

    async fn find_by_digest(
        &self,
        collection: &str,
        field: &str,
        digest: &[u8],
    ) -> Result<Vec<RecordWithKey>, StoreError> {
        let sql = format!(
            "{RECORD_WITH_KEY} JOIN blind_index b ON b.record_id = r.id \
             WHERE b.collection = $1 AND b.field = $2 AND b.digest = $3 AND k.version = 1 \
             ORDER BY r.created_ms, r.id"
        );
        let rows = self.query(&sql, &[&collection, &field, &digest]).await?;
        rows.iter().map(to_record).collect()
    }

    async fn subject_records(&self, subject: SubjectId) -> Result<Vec<RecordWithKey>, StoreError> {
        let sql = format!(
            "{RECORD_WITH_KEY} WHERE r.subject_id = $1 AND k.version = 1 ORDER BY r.created_ms, r.id"
        );
        let rows = self.query(&sql, &[&subject.as_uuid()]).await?;
        rows.iter().map(to_record).collect()
    }

    async fn subject_key(&self, subject: SubjectId) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self
            .query(
                "SELECT wrapped FROM subject_keys WHERE subject_id = $1 AND version = 1",
                &[&subject.as_uuid()],
            )
            .await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    async fn count_records(&self, collection: &str) -> Result<u64, StoreError> {
        let rows = self
            .query(
                "SELECT count(*) FROM records WHERE collection = $1",
                &[&collection],
            )
            .await?;
        Ok(rows[0].get::<_, i64>(0) as u64)
    }
}

#[async_trait]
impl LedgerStore for PostgresStore {
    async fn insert_consent_event(
        &self,
        id: EventId,
        subject_id: SubjectId,
        entry: Vec<u8>,
    ) -> Result<(), StoreError> {
        // One statement: the event and its audit entry commit together, or neither does.
        let rows = self
            .query(
                "WITH e AS (INSERT INTO consent_events (id, subject_id, entry) \
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM subjects WHERE id = $2) \
                 RETURNING subject_id, entry) \
                 INSERT INTO audit_queue (subject_id, entry) SELECT subject_id, entry FROM e \
                 RETURNING queue_id",
                &[&id.as_uuid(), &subject_id.as_uuid(), &entry],
            )
            .await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn consent_event(&self, id: EventId) -> Result<Option<ConsentRow>, StoreError> {
        let rows = self
            .query(
                "SELECT seq, id, subject_id, entry FROM consent_events WHERE id = $1",
                &[&id.as_uuid()],
            )
            .await?;
        Ok(rows.first().map(to_consent))
    }

    async fn consent_events(&self, subject: SubjectId) -> Result<Vec<ConsentRow>, StoreError> {
        let rows = self
            .query(
                "SELECT seq, id, subject_id, entry FROM consent_events WHERE subject_id = $1 \
                 ORDER BY seq",
                &[&subject.as_uuid()],
            )
            .await?;
        Ok(rows.iter().map(to_consent).collect())
    }
}

#[async_trait]
impl HoldStore for PostgresStore {
    async fn place_hold(&self, hold: HoldRow, audit: QueuedAudit) -> Result<(), StoreError> {
        // One statement: the hold and its audit entry commit together, or neither does.
        let rows = self
            .query(
                "WITH h AS (INSERT INTO legal_holds \
                 (record_id, collection, subject_id, reason, placed_by, placed_ms) \
                 SELECT $1, $2, $3, $4, $5, $6 \
                 WHERE EXISTS (SELECT 1 FROM records WHERE id = $1 AND collection = $2) \
                 RETURNING record_id) \
                 INSERT INTO audit_queue (subject_id, entry) SELECT $7, $8 FROM h RETURNING queue_id",
                &[
                    &hold.record_id.as_uuid(),
                    &hold.collection,
                    &hold.subject_id.as_uuid(),
                    &hold.reason,
                    &hold.placed_by,
                    &hold.placed_ms,
                    &audit.subject_id.map(|s| s.as_uuid()),
                    &audit.entry,
                ],
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    StoreError::Conflict("the record is already under a legal hold".into())
                }
                e => e,
            })?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn release_hold(&self, record: RecordId, audit: QueuedAudit) -> Result<(), StoreError> {
        let rows = self
            .query(
                "WITH d AS (DELETE FROM legal_holds WHERE record_id = $1 RETURNING record_id) \
                 INSERT INTO audit_queue (subject_id, entry) SELECT $2, $3 FROM d RETURNING queue_id",
                &[
                    &record.as_uuid(),
                    &audit.subject_id.map(|s| s.as_uuid()),
                    &audit.entry,
                ],
            )
            .await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn holds(&self) -> Result<Vec<HoldRow>, StoreError> {
        let rows = self
            .query(
                "SELECT record_id, collection, subject_id, reason, placed_by, placed_ms \
                 FROM legal_holds ORDER BY record_id",
                &[],
            )
            .await?;
        Ok(rows.iter().map(to_hold).collect())
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, entries: Vec<QueuedAudit>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.appender
            .send((entries, tx))
            .await
            .map_err(|_| StoreError::Unavailable("the audit appender has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the audit appender has stopped".into()))?
    }

    async fn queued_audit(&self, limit: usize) -> Result<Vec<QueuedRow>, StoreError> {
        let rows = self
            .query(
                "SELECT queue_id, subject_id, entry FROM audit_queue ORDER BY queue_id LIMIT $1",
                &[&(limit as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| QueuedRow {
                queue_id: r.get(0),
                audit: QueuedAudit {
                    subject_id: r.get::<_, Option<Uuid>>(1).map(SubjectId::from),
                    entry: r.get(2),
                },
            })
            .collect())
    }

    async fn integrate_audit(&self, batch: Integration) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The row lock makes a second sequencer wait here, then see the size it moved to.
        let size: i64 = tx
            .query_one("SELECT size FROM audit_state WHERE id = 1 FOR UPDATE", &[])
            .await
            .map_err(backend)?
            .get(0);
        if size as u64 != batch.from_size {
            return Err(StoreError::Conflict(
                "the tree grew since the batch was computed".into(),
            ));
        }
        let idx: Vec<i64> = batch.leaves.iter().map(|l| l.index as i64).collect();
        let subjects: Vec<Option<Uuid>> = batch
            .leaves
            .iter()
            .map(|l| l.subject_id.map(|s| s.as_uuid()))
            .collect();
        let entries: Vec<&[u8]> = batch.leaves.iter().map(|l| l.entry.as_slice()).collect();
        let hashes: Vec<&[u8]> = batch
            .leaves
            .iter()
            .map(|l| l.leaf_hash.as_slice())
            .collect();
        tx.execute(
            "INSERT INTO audit_leaves (idx, subject_id, entry, leaf_hash) \
             SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bytea[], $4::bytea[])",
            &[&idx, &subjects, &entries, &hashes],
        )
        .await
        .map_err(backend)?;
        let deleted = tx
            .execute(
                "DELETE FROM audit_queue WHERE queue_id = ANY($1)",
                &[&batch.queue_ids],
            )
            .await
            .map_err(backend)?;
        if deleted != batch.queue_ids.len() as u64 {
            return Err(StoreError::Conflict(
                "a queued entry was already integrated".into(),
            ));
        }
        let peaks: Vec<u8> = batch.state.peaks.concat();
        tx.execute(
            "UPDATE audit_state SET size = $1, peaks = $2 WHERE id = 1",
            &[&(batch.state.size as i64), &peaks],
        )
        .await
        .map_err(backend)?;
        let h = &batch.head;
        tx.execute(
            "INSERT INTO audit_heads (size, root, timestamp_ms, signature) VALUES ($1, $2, $3, $4)",
            &[
                &(h.head.size as i64),
                &h.head.root.as_slice(),
                &(h.head.timestamp_ms as i64),
                &h.signature.as_slice(),
            ],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn tree_state(&self) -> Result<TreeState, StoreError> {
        let rows = self
            .query("SELECT size, peaks FROM audit_state WHERE id = 1", &[])
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::Corrupt("the tree state row is missing".into()))?;
        let peaks: Vec<u8> = row.get(1);
        Ok(TreeState {
            size: row.get::<_, i64>(0) as u64,
            peaks: split_peaks(&peaks)?,
        })
    }

    async fn leaves(&self, from: u64, to: u64) -> Result<Vec<LeafRow>, StoreError> {
        let rows = self
            .query(
                "SELECT idx, subject_id, entry, leaf_hash FROM audit_leaves \
                 WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                &[&(from as i64), &(to.min(i64::MAX as u64) as i64)],
            )
            .await?;
        rows.iter().map(to_leaf).collect()
    }

    async fn subject_leaves(&self, subject: SubjectId) -> Result<Vec<LeafRow>, StoreError> {
        let rows = self
            .query(
                "SELECT idx, subject_id, entry, leaf_hash FROM audit_leaves WHERE subject_id = $1 ORDER BY idx",
                &[&subject.as_uuid()],
            )
            .await?;
        rows.iter().map(to_leaf).collect()
    }

    async fn tree_heads(&self) -> Result<Vec<SignedTreeHead>, StoreError> {
        let rows = self
            .query(
                "SELECT size, root, timestamp_ms, signature FROM audit_heads ORDER BY size",
                &[],
            )
            .await?;
        rows.iter().map(to_head).collect()
    }

    async fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, StoreError> {
        let rows = self
            .query(
                "SELECT size, root, timestamp_ms, signature FROM audit_heads ORDER BY size DESC LIMIT 1",
                &[],
            )
            .await?;
        rows.first().map(to_head).transpose()
    }

    async fn sequencer_lease(
        &self,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let rows = self.query(LEASE_SQL, &[&holder, &now_ms, &ttl_ms]).await?;
        Ok(!rows.is_empty())
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

#[async_trait]
impl CopyStore for PostgresStore {
    async fn count(&self, table: Table) -> Result<(u64, u64), StoreError> {
        let one = |sql: &'static str| async move {
            self.query(sql, &[])
                .await
                .map(|r| r[0].get::<_, i64>(0) as u64)
        };
        Ok(match table {
            Table::VaultKeys => (one("SELECT count(*) FROM vault_keys").await?, 0),
            Table::Subjects => (one("SELECT count(*) FROM subjects").await?, 0),
            Table::Records => (
                one("SELECT count(*) FROM records").await?,
                one("SELECT count(*) FROM blind_index").await?,
            ),
            Table::ConsentEvents => (one("SELECT count(*) FROM consent_events").await?, 0),
            Table::LegalHolds => (one("SELECT count(*) FROM legal_holds").await?, 0),
            Table::ApiKeys => (one("SELECT count(*) FROM api_keys").await?, 0),
            Table::AuditLeaves => (one("SELECT count(*) FROM audit_leaves").await?, 0),
            Table::AuditHeads => (one("SELECT count(*) FROM audit_heads").await?, 0),
            Table::AuditState => (1, 0),
        })
    }

    async fn export(
        &self,
        table: Table,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<CopyRow>, StoreError> {
        let (key, number) = match after {
            None => (String::new(), -1i64),
            Some(Cursor::Key(k)) => (k, -1),
            Some(Cursor::Number(n)) => (String::new(), n),
        };
        // Subjects and records are keyed by UUID; the nil UUID sorts before every real one.
        let id = if key.is_empty()
            || !matches!(table, Table::Subjects | Table::Records | Table::LegalHolds)
        {
            Uuid::nil()
        } else {
            key.parse::<Uuid>()
                .map_err(|_| StoreError::Backend("a copy cursor is not an id".into()))?
        };
        let limit = limit as i64;
        match table {
            Table::VaultKeys => Ok(self
                .query(
                    "SELECT name, wrapped FROM vault_keys WHERE name > $1 ORDER BY name LIMIT $2",
                    &[&key, &limit],
                )
                .await?
                .iter()
                .map(|r| CopyRow::VaultKey {
                    name: r.get(0),
                    wrapped: r.get(1),
                })
                .collect()),
            Table::Subjects => {
                let rows = self
                    .query(
                        "SELECT s.id, s.status, s.created_ms, \
                         array_agg(k.version ORDER BY k.version), array_agg(k.wrapped ORDER BY k.version) \
                         FROM (SELECT * FROM subjects WHERE id > $1 ORDER BY id LIMIT $2) s \
                         JOIN subject_keys k ON k.subject_id = s.id \
                         GROUP BY s.id, s.status, s.created_ms ORDER BY s.id",
                        &[&id, &limit],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        let versions: Vec<i32> = r.get(3);
                        let wrapped: Vec<Vec<u8>> = r.get(4);
                        CopyRow::Subject {
                            id: SubjectId::from(r.get::<_, Uuid>(0)),
                            status: r.get(1),
                            created_ms: r.get(2),
                            keys: versions.into_iter().map(i64::from).zip(wrapped).collect(),
                        }
                    })
                    .collect())
            }
            Table::Records => {
                let rows = self
                    .query(
                        "SELECT r.id, r.subject_id, r.collection, r.fields, r.version, r.created_ms, r.updated_ms, \
                         coalesce(array_agg(b.field ORDER BY b.field, b.digest) FILTER (WHERE b.field IS NOT NULL), '{}'), \
                         coalesce(array_agg(b.digest ORDER BY b.field, b.digest) FILTER (WHERE b.field IS NOT NULL), '{}') \
                         FROM (SELECT * FROM records WHERE id > $1 ORDER BY id LIMIT $2) r \
                         LEFT JOIN blind_index b ON b.record_id = r.id \
                         GROUP BY r.id, r.subject_id, r.collection, r.fields, r.version, r.created_ms, r.updated_ms \
                         ORDER BY r.id",
                        &[&id, &limit],
                    )
                    .await?;
                rows.iter()
                    .map(|r| {
                        let fields: Vec<String> = r.get(7);
                        let digests: Vec<Vec<u8>> = r.get(8);
                        let bytes: Vec<u8> = r.get(3);
                        Ok(CopyRow::Record {
                            record: RecordRow {
                                id: RecordId::from(r.get::<_, Uuid>(0)),
                                subject_id: SubjectId::from(r.get::<_, Uuid>(1)),
                                collection: r.get(2),
                                fields: decode_fields(&bytes)?,
                                version: r.get(4),
                                created_ms: r.get(5),
                                updated_ms: r.get(6),
                            },
                            index: fields
                                .into_iter()
                                .zip(digests)
                                .map(|(field, digest)| crate::IndexEntry { field, digest })
                                .collect(),
                        })
                    })
                    .collect()
            }
            Table::ConsentEvents => Ok(self
                .query(
                    "SELECT seq, id, subject_id, entry FROM consent_events \
                     WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&number, &limit],
                )
                .await?
                .iter()
                .map(|r| CopyRow::Consent(to_consent(r)))
                .collect()),
            Table::LegalHolds => Ok(self
                .query(
                    "SELECT record_id, collection, subject_id, reason, placed_by, placed_ms \
                     FROM legal_holds WHERE record_id > $1 ORDER BY record_id LIMIT $2",
                    &[&id, &limit],
                )
                .await?
                .iter()
                .map(|r| CopyRow::Hold(to_hold(r)))
                .collect()),
            Table::ApiKeys => Ok(self
                .query(
                    "SELECT name, role, digest, created_ms, revoked_ms FROM api_keys \
                     WHERE name > $1 ORDER BY name LIMIT $2",
                    &[&key, &limit],
                )
                .await?
                .iter()
                .map(|r| CopyRow::ApiKey(to_api_key(r)))
                .collect()),
            // Leaf indexes are dense, so a page is an index range.
            Table::AuditLeaves => Ok(self
                .leaves((number + 1) as u64, (number + 1) as u64 + limit as u64)
                .await?
                .into_iter()
                .map(CopyRow::Leaf)
                .collect()),
            Table::AuditHeads => self
                .query(
                    "SELECT size, root, timestamp_ms, signature FROM audit_heads \
                     WHERE size > $1 ORDER BY size LIMIT $2",
                    &[&number, &limit],
                )
                .await?
                .iter()
                .map(|r| to_head(r).map(CopyRow::Head))
                .collect(),
            Table::AuditState => {
                if number >= 1 {
                    return Ok(Vec::new());
                }
                Ok(vec![CopyRow::State(self.tree_state().await?)])
            }
        }
    }

    async fn import(&self, rows: Vec<CopyRow>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        for row in &rows {
            match row {
                CopyRow::VaultKey { name, wrapped } => {
                    tx.execute(
                        "INSERT INTO vault_keys (name, wrapped) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        &[name, wrapped],
                    )
                    .await
                    .map_err(backend)?;
                }
                CopyRow::Subject {
                    id,
                    status,
                    created_ms,
                    keys,
                } => {
                    let st = tx
                        .prepare_cached(
                            "INSERT INTO subjects (id, status, created_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        )
                        .await
                        .map_err(backend)?;
                    tx.execute(&st, &[&id.as_uuid(), status, created_ms])
                        .await
                        .map_err(backend)?;
                    let st = tx
                        .prepare_cached(
                            "INSERT INTO subject_keys (subject_id, version, wrapped) VALUES ($1, $2, $3) \
                             ON CONFLICT DO NOTHING",
                        )
                        .await
                        .map_err(backend)?;
                    for (v, w) in keys {
                        let v = i32::try_from(*v).map_err(|_| {
                            StoreError::Corrupt("a key version is out of range".into())
                        })?;
                        tx.execute(&st, &[&id.as_uuid(), &v, w])
                            .await
                            .map_err(backend)?;
                    }
                }
                CopyRow::Record { record: r, index } => {
                    let st = tx
                        .prepare_cached(
                            "INSERT INTO records (id, subject_id, collection, fields, version, created_ms, updated_ms) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                        )
                        .await
                        .map_err(backend)?;
                    tx.execute(
                        &st,
                        &[
                            &r.id.as_uuid(),
                            &r.subject_id.as_uuid(),
                            &r.collection,
                            &encode_fields(&r.fields),
                            &r.version,
                            &r.created_ms,
                            &r.updated_ms,
                        ],
                    )
                    .await
                    .map_err(backend)?;
                    let fields: Vec<&str> = index.iter().map(|e| e.field.as_str()).collect();
                    let digests: Vec<&[u8]> = index.iter().map(|e| e.digest.as_slice()).collect();
                    let st = tx
                        .prepare_cached(
                            "INSERT INTO blind_index (collection, field, digest, record_id, subject_id) \
                             SELECT $1, f, d, $4, $5 FROM unnest($2::text[], $3::bytea[]) AS u(f, d) \
                             ON CONFLICT DO NOTHING",
                        )
                        .await
                        .map_err(backend)?;
                    tx.execute(
                        &st,
                        &[
                            &r.collection,
                            &fields,
                            &digests,
                            &r.id.as_uuid(),
                            &r.subject_id.as_uuid(),
                        ],
                    )
                    .await
                    .map_err(backend)?;
                }
                CopyRow::Consent(e) => {
                    tx.execute(
                        "INSERT INTO consent_events (seq, id, subject_id, entry) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                        &[&e.seq, &e.id.as_uuid(), &e.subject_id.as_uuid(), &e.entry],
                    )
                    .await
                    .map_err(backend)?;
                }
                CopyRow::Hold(h) => {
                    tx.execute(
                        "INSERT INTO legal_holds \
                         (record_id, collection, subject_id, reason, placed_by, placed_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                        &[
                            &h.record_id.as_uuid(),
                            &h.collection,
                            &h.subject_id.as_uuid(),
                            &h.reason,
                            &h.placed_by,
                            &h.placed_ms,
                        ],
                    )
                    .await
                    .map_err(backend)?;
                }
                CopyRow::ApiKey(k) => {
                    tx.execute(
                        "INSERT INTO api_keys (name, role, digest, created_ms, revoked_ms) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        &[&k.name, &k.role, &k.digest, &k.created_ms, &k.revoked_ms],
                    )
                    .await
                    .map_err(backend)?;
                }
                CopyRow::Leaf(l) => {
                    let st = tx
                        .prepare_cached(
                            "INSERT INTO audit_leaves (idx, subject_id, entry, leaf_hash) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT DO NOTHING",
                        )
                        .await
                        .map_err(backend)?;
                    tx.execute(
                        &st,
                        &[
                            &(l.index as i64),
                            &l.subject_id.map(|s| s.as_uuid()),
                            &l.entry,
                            &l.leaf_hash.as_slice(),
                        ],
                    )
                    .await
                    .map_err(backend)?;
                }
                CopyRow::Head(h) => {
                    tx.execute(
                        "INSERT INTO audit_heads (size, root, timestamp_ms, signature) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT DO NOTHING",
                        &[
                            &(h.head.size as i64),
                            &h.head.root.as_slice(),
                            &(h.head.timestamp_ms as i64),
                            &h.signature.as_slice(),
                        ],
                    )
                    .await
                    .map_err(backend)?;
                }
                CopyRow::State(t) => {
                    tx.execute(
                        "UPDATE audit_state SET size = $1, peaks = $2 WHERE id = 1",
                        &[&(t.size as i64), &t.peaks.concat()],
                    )
                    .await
                    .map_err(backend)?;
                }
            }
        }
        if rows.iter().any(|r| matches!(r, CopyRow::Consent(_))) {
            // Events copied in keep their order; the sequence must issue after them.
            tx.execute(
                "SELECT setval(pg_get_serial_sequence('consent_events', 'seq'), \
                 (SELECT max(seq) FROM consent_events))",
                &[],
            )
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.query("SELECT 1", &[]).await.map(drop)
    }
}
