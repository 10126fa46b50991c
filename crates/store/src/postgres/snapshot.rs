//! `custos backup` on PostgreSQL: [`SnapshotStore`] for [`PostgresStore`]. A snapshot is read
//! as `pg_dump` reads one: a connection opens a repeatable-read transaction and exports its
//! snapshot, and every query of the export runs in a transaction that adopts it, so all the
//! tables are read as of one instant while the servers go on writing.

use std::path::Path;

use async_trait::async_trait;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use super::convert::backend;
use crate::error::StoreError;
use crate::snapshot::{SnapshotStore, copy_into_new_file, counts_empty, refuse_existing};

/// Tables a migration seeds with one row: emptied by resetting that row, not truncating it.
const SEEDED: [(&str, &str); 2] = [
    (
        "audit_state",
        "UPDATE audit_state SET size = 0, peaks = '\\x'",
    ),
    ("detector_state", "UPDATE detector_state SET position = 0"),
];

#[async_trait]
impl SnapshotStore for PostgresStore {
    async fn snapshot_into(&self, path: &Path) -> Result<(), StoreError> {
        refuse_existing(path)?;
        // The holder leaves the pool: if anything below fails, dropping it closes the
        // connection and PostgreSQL ends its transaction, rather than a pooled connection
        // going back with a transaction open.
        let holder = deadpool_postgres::Object::take(self.client().await?);
        // The holder sits idle in its transaction while the pages are read on other
        // connections: a server's idle-transaction limit must not end it half-way.
        holder
            .batch_execute(
                "SET idle_in_transaction_session_timeout = 0; \
                 BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            )
            .await
            .map_err(backend)?;
        let id: String = holder
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .map_err(backend)?
            .get(0);
        if !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(StoreError::Backend(format!(
                "PostgreSQL exported a snapshot named {id:?}"
            )));
        }
        let reader = PostgresStore {
            pool: self.pool.clone(),
            appender: self.appender.clone(),
            snapshot: Some(id.into()),
        };
        copy_into_new_file(&reader, path).await?;
        holder.batch_execute("COMMIT").await.map_err(backend)?;
        Ok(())
    }

    async fn wipe(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // Only the tables the migrations create: a schema shared with other applications
        // keeps theirs.
        let tables = custos_tables();
        let truncated: Vec<String> = tables
            .iter()
            .filter(|t| !SEEDED.iter().any(|(name, _)| name == t))
            .map(|t| format!("\"{}\"", t.replace('"', "")))
            .collect();
        if !truncated.is_empty() {
            tx.batch_execute(&format!("TRUNCATE {}", truncated.join(", ")))
                .await
                .map_err(backend)?;
        }
        for (name, reset) in SEEDED {
            if tables.iter().any(|t| t == name) {
                tx.batch_execute(reset).await.map_err(backend)?;
            }
        }
        tx.commit().await.map_err(backend)
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        counts_empty(self).await
    }
}

/// The tables Custos's migrations create, in the order they create them.
fn custos_tables() -> Vec<String> {
    super::schema::MIGRATIONS
        .iter()
        .flat_map(|sql| sql.lines())
        .filter_map(|l| l.trim().strip_prefix("CREATE TABLE "))
        .map(|rest| rest.trim_start_matches("IF NOT EXISTS "))
        .filter_map(|rest| rest.split([' ', '(']).next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs one query in a read-only transaction that adopts the exported snapshot `id`.
pub(super) async fn query_in(
    client: &mut deadpool_postgres::Object,
    id: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(backend)?;
    tx.batch_execute(&format!("SET TRANSACTION SNAPSHOT '{id}'"))
        .await
        .map_err(backend)?;
    let st = tx.prepare_cached(sql).await.map_err(backend)?;
    let rows = tx.query(&st, params).await.map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(rows)
}
