//! The PostgreSQL schema: forward-only migrations, the lock they run under, and the version
//! a database is at.

use super::convert::backend;
use crate::error::StoreError;

/// The schema, one forward-only migration per entry, each applied in its own transaction;
/// `custos_schema` records which ran.
pub(super) const MIGRATIONS: &[&str] = &[
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
    r#"
CREATE TABLE requests (
    id UUID PRIMARY KEY,
    subject_id UUID NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    due_ms BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    closed_ms BIGINT,
    version BIGINT NOT NULL,
    body BYTEA NOT NULL,
    reasons BYTEA NOT NULL
);
CREATE INDEX requests_due ON requests (due_ms, id);
CREATE INDEX requests_subject ON requests (subject_id, due_ms);
CREATE INDEX requests_closed ON requests (closed_ms) WHERE closed_ms IS NOT NULL;
"#,
    r#"
CREATE TABLE erasure_log (
    subject_id UUID PRIMARY KEY,
    erased_ms BIGINT NOT NULL
);
"#,
    r#"
CREATE TABLE outbox (
    id UUID PRIMARY KEY,
    subject_id UUID,
    created_ms BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_until_ms BIGINT,
    sent_ms BIGINT,
    failed_ms BIGINT,
    last_error TEXT,
    sealed BYTEA NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_ms, id) WHERE sent_ms IS NULL AND failed_ms IS NULL;
CREATE INDEX outbox_subject ON outbox (subject_id) WHERE subject_id IS NOT NULL;
"#,
    r#"
CREATE TABLE signin_challenges (
    id BYTEA PRIMARY KEY,
    address_digest BYTEA NOT NULL,
    client_digest BYTEA NOT NULL,
    subject_id UUID,
    code_digest BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    tries BIGINT NOT NULL DEFAULT 0,
    last_try_ms BIGINT,
    used_ms BIGINT
);
CREATE INDEX signin_challenges_address ON signin_challenges (address_digest, created_ms);
CREATE INDEX signin_challenges_client ON signin_challenges (client_digest, created_ms);
CREATE INDEX signin_challenges_created ON signin_challenges (created_ms);
CREATE TABLE sessions (
    id BYTEA PRIMARY KEY,
    subject_id UUID,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
CREATE INDEX sessions_last_seen ON sessions (last_seen_ms);
"#,
    r#"
CREATE TABLE operators (
    id UUID PRIMARY KEY,
    email_digest BYTEA NOT NULL UNIQUE,
    email_sealed BYTEA NOT NULL,
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    password_hash TEXT,
    totp_sealed BYTEA,
    totp_last_step BIGINT,
    setup_digest BYTEA UNIQUE,
    setup_expires_ms BIGINT,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until_ms BIGINT,
    created_ms BIGINT NOT NULL,
    changed_ms BIGINT NOT NULL
);
CREATE TABLE operator_recovery_codes (
    operator_id UUID NOT NULL REFERENCES operators (id),
    digest BYTEA NOT NULL,
    used_ms BIGINT,
    PRIMARY KEY (operator_id, digest)
);
CREATE TABLE operator_sessions (
    id BYTEA PRIMARY KEY,
    operator_id UUID NOT NULL REFERENCES operators (id),
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);
CREATE INDEX operator_sessions_last_seen ON operator_sessions (last_seen_ms);
"#,
    r#"
ALTER TABLE audit_leaves ADD COLUMN actor TEXT;
ALTER TABLE audit_leaves ADD COLUMN time TEXT;
UPDATE audit_leaves SET actor = convert_from(entry, 'UTF8')::jsonb ->> 'actor',
                        time = convert_from(entry, 'UTF8')::jsonb ->> 'time';
CREATE INDEX audit_leaves_actor ON audit_leaves (actor, time);
CREATE INDEX audit_leaves_time ON audit_leaves (time);
CREATE TABLE canaries (
    record_id UUID PRIMARY KEY,
    subject_id UUID NOT NULL,
    collection TEXT NOT NULL,
    planted_ms BIGINT NOT NULL
);
CREATE INDEX canaries_subject ON canaries (subject_id);
CREATE TABLE detector_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL
);
-- The log written before breach readiness is not judged: it starts where the log ends.
INSERT INTO detector_state (id, position) SELECT 1, COALESCE(MAX(idx) + 1, 0) FROM audit_leaves;
CREATE TABLE access_counts (
    actor TEXT NOT NULL,
    window_ms BIGINT NOT NULL,
    collection TEXT NOT NULL,
    reads BIGINT NOT NULL,
    PRIMARY KEY (actor, window_ms, collection)
);
CREATE TABLE alerts (
    id UUID PRIMARY KEY,
    dedup TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    raised_ms BIGINT NOT NULL,
    acknowledged_ms BIGINT,
    acknowledged_by TEXT,
    body BYTEA NOT NULL
);
CREATE INDEX alerts_raised ON alerts (raised_ms);
CREATE TABLE incidents (
    id UUID PRIMARY KEY,
    status TEXT NOT NULL,
    aware_ms BIGINT NOT NULL,
    opened_ms BIGINT NOT NULL,
    changed_ms BIGINT NOT NULL,
    sealed BYTEA NOT NULL
);
"#,
    // The root key version a wrapped key names in its header, kept beside it by the database.
    r#"
ALTER TABLE subject_keys ADD COLUMN root_version INTEGER GENERATED ALWAYS AS
    ((get_byte(wrapped, 1) << 24) | (get_byte(wrapped, 2) << 16)
     | (get_byte(wrapped, 3) << 8) | get_byte(wrapped, 4)) STORED;
ALTER TABLE vault_keys ADD COLUMN root_version INTEGER GENERATED ALWAYS AS
    ((get_byte(wrapped, 1) << 24) | (get_byte(wrapped, 2) << 16)
     | (get_byte(wrapped, 3) << 8) | get_byte(wrapped, 4)) STORED;
CREATE INDEX subject_keys_root ON subject_keys (root_version);
CREATE TABLE root_keys (
    version INTEGER PRIMARY KEY,
    created_ms BIGINT NOT NULL,
    retired_ms BIGINT
);
CREATE TABLE key_rotations (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    target INTEGER NOT NULL,
    started_ms BIGINT NOT NULL,
    total BIGINT NOT NULL,
    done BIGINT NOT NULL DEFAULT 0,
    finished_ms BIGINT
);
CREATE UNIQUE INDEX key_rotations_open ON key_rotations (kind) WHERE finished_ms IS NULL;
"#,
    // When each subject's data key was made: with its subject, until a rotation replaces it.
    r#"
ALTER TABLE subject_keys ADD COLUMN created_ms BIGINT NOT NULL DEFAULT 0;
UPDATE subject_keys k SET created_ms = s.created_ms FROM subjects s WHERE s.id = k.subject_id;
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

/// Serialises migrations between processes that start at once (`pg_advisory_xact_lock` key).
pub(super) const MIGRATION_LOCK: i64 = 0x6375_7374_6f73; // "custos"

pub(super) async fn schema_version(client: &tokio_postgres::Client) -> Result<i64, StoreError> {
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
