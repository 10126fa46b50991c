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
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::audit::QueuedAudit;
use crate::error::StoreError;
use crate::store::{SchemaVersion, Store};

use convert::{backend, pool_error};
use schema::{MIGRATION_LOCK, MIGRATIONS, schema_version};

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
mod subjects;
mod tls;

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
    /// The exported snapshot every query reads in, on a store made by `snapshot_into` alone.
    snapshot: Option<std::sync::Arc<str>>,
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

type Tx<'a> = deadpool_postgres::Transaction<'a>;

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
        let tls = tls::from_url(url)?;
        let mut config: tokio_postgres::Config = tls.url.parse().map_err(|_| {
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
        config.ssl_mode(tls.mode);
        let manager = Manager::from_config(
            config,
            tls.connector,
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
        Ok(Self {
            pool,
            appender,
            snapshot: None,
        })
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
        let mut client = self.client().await?;
        if let Some(id) = &self.snapshot {
            return snapshot::query_in(&mut client, id, sql, params).await;
        }
        let st = client.prepare_cached(sql).await.map_err(backend)?;
        client.query(&st, params).await.map_err(backend)
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn kind(&self) -> &'static str {
        "PostgreSQL"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.query("SELECT 1", &[]).await.map(drop)
    }
}
