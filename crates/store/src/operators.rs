//! Operators (the people who run Custos) and their console sessions: [`OperatorRow`],
//! [`OperatorSessionRow`] and [`OperatorStore`]. Only what cannot be read back is stored in
//! clear: the address as a keyed digest (for finding an account) and sealed (for showing it),
//! the password as an Argon2id hash, the TOTP secret sealed, recovery codes and setup links
//! and session cookies as SHA-256 digests.

use async_trait::async_trait;
use custos_core::operator::{OperatorId, OperatorStatus};

use crate::audit::QueuedAudit;
use crate::error::StoreError;

/// An operator's account. `Debug` leaves out the password hash and the sealed values.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorRow {
    /// Their id.
    pub id: OperatorId,
    /// The keyed digest of their address, normalised: unique.
    pub email_digest: Vec<u8>,
    /// Their address, sealed under the vault's operators key.
    pub email_sealed: Vec<u8>,
    /// The role they hold.
    pub role: String,
    /// Where the account stands.
    pub status: OperatorStatus,
    /// The Argon2id PHC string of their password, once chosen.
    pub password_hash: Option<String>,
    /// Their TOTP secret, sealed; set when the password is chosen, enrolled once a code from
    /// it is typed (the account is then `Active`).
    pub totp_sealed: Option<Vec<u8>>,
    /// The last TOTP step accepted: no code of it or an earlier step is accepted again.
    pub totp_last_step: Option<i64>,
    /// SHA-256 of the setup link's token, while the account is being set up.
    pub setup_digest: Option<Vec<u8>>,
    /// When the setup link stops working.
    pub setup_expires_ms: Option<i64>,
    /// Failed logins since the last success.
    pub failed_logins: u32,
    /// Locked until then after failed logins.
    pub locked_until_ms: Option<i64>,
    /// When the operator was added.
    pub created_ms: i64,
    /// When the account last changed.
    pub changed_ms: i64,
}

impl std::fmt::Debug for OperatorRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorRow")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("status", &self.status)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until_ms", &self.locked_until_ms)
            .field("changed_ms", &self.changed_ms)
            .finish_non_exhaustive()
    }
}

/// An operator's session in the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSessionRow {
    /// SHA-256 of the session cookie's value.
    pub id: Vec<u8>,
    /// Whose.
    pub operator_id: OperatorId,
    /// When it began.
    pub created_ms: i64,
    /// When it was last used.
    pub last_seen_ms: i64,
    /// When it was ended (signed out, or the operator disabled), if it was.
    pub revoked_ms: Option<i64>,
}

/// How an account changes in [`OperatorStore::update_operator`], besides its row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountChange {
    /// The digests of a new set of recovery codes, replacing any old ones; `Some(vec![])`
    /// removes them all.
    pub recovery_codes: Option<Vec<Vec<u8>>>,
    /// Ends every live session of the operator at this instant.
    pub end_sessions_at: Option<i64>,
    /// Clears the failed-login count and any lock.
    pub clear_lock: bool,
}

/// A login attempt begun: how many attempts there have been since the last success, this one
/// included, and the lock this one placed (lifted again if it succeeds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Attempts since the last successful login, this one included.
    pub attempts: u32,
    /// The lock placed by this attempt, per `core::operator::lockout_until`.
    pub locks_until_ms: Option<i64>,
}

/// Operators and their sessions; each change commits with its audit entries.
#[async_trait]
pub trait OperatorStore: Send + Sync {
    /// Adds an operator. A `Conflict` when an operator has the address already.
    async fn insert_operator(&self, row: OperatorRow, audit: QueuedAudit)
    -> Result<(), StoreError>;
    /// An operator by id.
    async fn operator(&self, id: OperatorId) -> Result<Option<OperatorRow>, StoreError>;
    /// An operator by their address's digest.
    async fn operator_by_email(&self, digest: &[u8]) -> Result<Option<OperatorRow>, StoreError>;
    /// An operator by their setup link's digest.
    async fn operator_by_setup(&self, digest: &[u8]) -> Result<Option<OperatorRow>, StoreError>;
    /// Every operator, oldest first.
    async fn operators(&self) -> Result<Vec<OperatorRow>, StoreError>;
    /// Writes an account's role, status, password, TOTP secret and last step, and setup link
    /// (not its login counters), with `change` and the audit entries, in one transaction, if
    /// the account is as it was when read: its `changed_ms` still `was_changed_ms`.
    /// `Conflict` when it changed since (a disable or a reset in between), `NotFound` for an
    /// unknown operator.
    async fn update_operator(
        &self,
        row: OperatorRow,
        was_changed_ms: i64,
        change: AccountChange,
        audit: Vec<QueuedAudit>,
    ) -> Result<(), StoreError>;
    /// Begins a login attempt at `at_ms`, before anything is checked: `None` while the
    /// account is locked; otherwise the attempt is counted and, when the count calls for it
    /// (`core::operator::lockout_until`), the account locked, in one transaction. Of any
    /// number of attempts at once, each sees its own count and none gets past a lock another
    /// placed, so no more attempts are checked than the lockout allows.
    async fn begin_login(&self, id: OperatorId, at_ms: i64) -> Result<Option<Attempt>, StoreError>;
    /// Accepts TOTP step `step` if it is later than the last accepted: `false` when it is
    /// not (a replay, however many servers see the code).
    async fn use_totp_step(&self, id: OperatorId, step: i64) -> Result<bool, StoreError>;
    /// Uses a recovery code: `Some(codes left)` when it was the operator's and unused,
    /// `None` otherwise. Used once, however many servers see it.
    async fn use_recovery_code(
        &self,
        id: OperatorId,
        digest: &[u8],
        at_ms: i64,
    ) -> Result<Option<u32>, StoreError>;
    /// Begins a session after a successful login, clearing the attempt count and any lock,
    /// with its audit entries.
    async fn start_operator_session(
        &self,
        session: OperatorSessionRow,
        audit: Vec<QueuedAudit>,
    ) -> Result<(), StoreError>;
    /// A session by its id, with its operator's account as it stands now.
    async fn operator_session(
        &self,
        id: &[u8],
    ) -> Result<Option<(OperatorSessionRow, OperatorRow)>, StoreError>;
    /// Notes that a session was used at `at_ms`.
    async fn touch_operator_session(&self, id: &[u8], at_ms: i64) -> Result<(), StoreError>;
    /// Ends a session, with its audit entry; ending an ended one changes nothing.
    async fn end_operator_session(
        &self,
        id: &[u8],
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError>;
    /// Deletes sessions last used (or ended) before `before_ms`; says how many.
    async fn purge_operator_sessions(&self, before_ms: i64) -> Result<u64, StoreError>;
}
