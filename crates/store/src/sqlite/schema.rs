//! The SQLite schema: numbered migrations run under `PRAGMA user_version`, and the
//! connection settings every writing connection gets.

use rusqlite::Connection;

use super::convert::backend;
use crate::error::StoreError;
use crate::store::SchemaVersion;

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
    r#"
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    due_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    closed_ms INTEGER,
    version INTEGER NOT NULL,
    body BLOB NOT NULL,
    reasons BLOB NOT NULL
);
CREATE INDEX requests_due ON requests (due_ms, id);
CREATE INDEX requests_subject ON requests (subject_id, due_ms);
CREATE INDEX requests_closed ON requests (closed_ms) WHERE closed_ms IS NOT NULL;
"#,
    r#"
CREATE TABLE erasure_log (
    subject_id TEXT PRIMARY KEY,
    erased_ms INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    subject_id TEXT,
    created_ms INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    claimed_by TEXT,
    claimed_until_ms INTEGER,
    sent_ms INTEGER,
    failed_ms INTEGER,
    last_error TEXT,
    sealed BLOB NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_ms, id) WHERE sent_ms IS NULL AND failed_ms IS NULL;
CREATE INDEX outbox_subject ON outbox (subject_id) WHERE subject_id IS NOT NULL;
"#,
    r#"
CREATE TABLE signin_challenges (
    id BLOB PRIMARY KEY,
    address_digest BLOB NOT NULL,
    client_digest BLOB NOT NULL,
    subject_id TEXT,
    code_digest BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    last_try_ms INTEGER,
    used_ms INTEGER
);
CREATE INDEX signin_challenges_address ON signin_challenges (address_digest, created_ms);
CREATE INDEX signin_challenges_client ON signin_challenges (client_digest, created_ms);
CREATE INDEX signin_challenges_created ON signin_challenges (created_ms);
CREATE TABLE sessions (
    id BLOB PRIMARY KEY,
    subject_id TEXT,
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE INDEX sessions_last_seen ON sessions (last_seen_ms);
"#,
    r#"
CREATE TABLE operators (
    id TEXT PRIMARY KEY,
    email_digest BLOB NOT NULL UNIQUE,
    email_sealed BLOB NOT NULL,
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    password_hash TEXT,
    totp_sealed BLOB,
    totp_last_step INTEGER,
    setup_digest BLOB UNIQUE,
    setup_expires_ms INTEGER,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until_ms INTEGER,
    created_ms INTEGER NOT NULL,
    changed_ms INTEGER NOT NULL
);
CREATE TABLE operator_recovery_codes (
    operator_id TEXT NOT NULL REFERENCES operators (id),
    digest BLOB NOT NULL,
    used_ms INTEGER,
    PRIMARY KEY (operator_id, digest)
);
CREATE TABLE operator_sessions (
    id BLOB PRIMARY KEY,
    operator_id TEXT NOT NULL REFERENCES operators (id),
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);
CREATE INDEX operator_sessions_last_seen ON operator_sessions (last_seen_ms);
"#,
    r#"
ALTER TABLE audit_leaves ADD COLUMN actor TEXT;
ALTER TABLE audit_leaves ADD COLUMN time TEXT;
UPDATE audit_leaves SET actor = json_extract(CAST(entry AS TEXT), '$.actor'),
                        time = json_extract(CAST(entry AS TEXT), '$.time')
    WHERE json_valid(CAST(entry AS TEXT));
CREATE INDEX audit_leaves_actor ON audit_leaves (actor, time);
CREATE INDEX audit_leaves_time ON audit_leaves (time);
CREATE TABLE canaries (
    record_id TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL,
    collection TEXT NOT NULL,
    planted_ms INTEGER NOT NULL
);
CREATE INDEX canaries_subject ON canaries (subject_id);
CREATE TABLE detector_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
);
-- The log written before breach readiness is not judged: it starts where the log ends.
INSERT INTO detector_state (id, position) SELECT 1, COALESCE(MAX(idx) + 1, 0) FROM audit_leaves;
CREATE TABLE access_counts (
    actor TEXT NOT NULL,
    window_ms INTEGER NOT NULL,
    collection TEXT NOT NULL,
    reads INTEGER NOT NULL,
    PRIMARY KEY (actor, window_ms, collection)
);
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    dedup TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    raised_ms INTEGER NOT NULL,
    acknowledged_ms INTEGER,
    acknowledged_by TEXT,
    body BLOB NOT NULL
);
CREATE INDEX alerts_raised ON alerts (raised_ms);
CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    aware_ms INTEGER NOT NULL,
    opened_ms INTEGER NOT NULL,
    changed_ms INTEGER NOT NULL,
    sealed BLOB NOT NULL
);
"#,
    // Before key rotation every wrapped key was made by root key version 1.
    r#"
ALTER TABLE subject_keys ADD COLUMN root_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE vault_keys ADD COLUMN root_version INTEGER NOT NULL DEFAULT 1;
CREATE INDEX subject_keys_root ON subject_keys (root_version);
CREATE TABLE root_keys (
    version INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    retired_ms INTEGER
);
CREATE TABLE key_rotations (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    target INTEGER NOT NULL,
    started_ms INTEGER NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    finished_ms INTEGER
);
CREATE UNIQUE INDEX key_rotations_open ON key_rotations (kind) WHERE finished_ms IS NULL;
"#,
    // When each subject's data key was made: with its subject, until a rotation replaces it.
    r#"
ALTER TABLE subject_keys ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;
UPDATE subject_keys SET created_ms =
    COALESCE((SELECT created_ms FROM subjects WHERE subjects.id = subject_keys.subject_id), 0);
CREATE INDEX subject_keys_age ON subject_keys (created_ms, subject_id);
-- One data key per subject: a rotation replaces the row, never adds one.
CREATE UNIQUE INDEX subject_keys_one ON subject_keys (subject_id);
"#,
    // Which blind-index key made each entry: while a rotation runs, a field has one per key.
    r#"
ALTER TABLE blind_index ADD COLUMN key_version INTEGER NOT NULL DEFAULT 1;
CREATE INDEX blind_index_version ON blind_index (key_version, record_id, field);
"#,
];

pub(super) fn pragmas(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA secure_delete = ON;",
    )
    .map_err(backend)
}

pub(super) fn migrate(conn: &mut Connection) -> Result<SchemaVersion, StoreError> {
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
