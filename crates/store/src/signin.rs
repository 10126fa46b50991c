//! Signing in to the portal: one-time-code challenges ([`ChallengeRow`]), sessions
//! ([`SessionRow`]) and [`SigninStore`]. Only digests are stored: of the code (keyed), the
//! address and the client address (keyed), the challenge's browser token and the session's
//! cookie (SHA-256 of 256 random bits).

use async_trait::async_trait;
use custos_core::ids::SubjectId;
use custos_core::signin::Counts;

use crate::audit::QueuedAudit;
use crate::error::StoreError;

/// A sign-in under way: a code was made for an address (sent only if it is on file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    /// SHA-256 of the token in the browser's sign-in cookie.
    pub id: Vec<u8>,
    /// The keyed digest of the address as normalised.
    pub address_digest: Vec<u8>,
    /// The keyed digest of the client's network address.
    pub client_digest: Vec<u8>,
    /// The subject the address is on file for; none when it is not (no code was sent, and
    /// no code can match).
    pub subject_id: Option<SubjectId>,
    /// The keyed digest of the code.
    pub code_digest: Vec<u8>,
    /// When the code was made, ms since the epoch.
    pub created_ms: i64,
    /// Wrong codes typed.
    pub tries: u32,
    /// When the last wrong code was typed.
    pub last_try_ms: Option<i64>,
    /// When the code was used to sign in.
    pub used_ms: Option<i64>,
}

/// A signed-in customer's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 of the session cookie's value.
    pub id: Vec<u8>,
    /// Whose session it is.
    pub subject_id: SubjectId,
    /// When it began.
    pub created_ms: i64,
    /// When it was last used.
    pub last_seen_ms: i64,
    /// When it was ended (signed out), if it was.
    pub revoked_ms: Option<i64>,
}

/// Challenges and sessions; each change commits with its audit entry.
#[async_trait]
pub trait SigninStore: Send + Sync {
    /// What the throttle counts for an address and a client: codes asked for since
    /// `since_ms`, and wrong codes typed for the address since `wrong_since_ms`.
    async fn signin_counts(
        &self,
        address_digest: &[u8],
        client_digest: &[u8],
        since_ms: i64,
        wrong_since_ms: i64,
    ) -> Result<Counts, StoreError>;
    /// Stores a new challenge, with its audit entry.
    async fn insert_challenge(
        &self,
        challenge: ChallengeRow,
        audit: QueuedAudit,
    ) -> Result<(), StoreError>;
    /// A challenge by its id.
    async fn challenge(&self, id: &[u8]) -> Result<Option<ChallengeRow>, StoreError>;
    /// Counts a try at a challenge's code before the code is compared, and says how many
    /// tries its address has had since `since_ms`, this one included, in one transaction:
    /// of any number of tries at once, the sixth sees six, so no more than five are ever
    /// compared within the lockout. `NotFound` for an unknown challenge.
    async fn count_try(&self, id: &[u8], at_ms: i64, since_ms: i64) -> Result<u32, StoreError>;
    /// Uses a challenge's code and begins a session, with its audit entry, in one
    /// transaction; the try that found the right code is taken back, so a sign-in does not
    /// count toward the lockout. A `Conflict` when the code was used already (a replay),
    /// so a code signs in once however many servers see it.
    async fn start_session(
        &self,
        challenge_id: &[u8],
        session: SessionRow,
        audit: QueuedAudit,
    ) -> Result<(), StoreError>;
    /// A session by its id.
    async fn session(&self, id: &[u8]) -> Result<Option<SessionRow>, StoreError>;
    /// Notes that a session was used at `at_ms`.
    async fn touch_session(&self, id: &[u8], at_ms: i64) -> Result<(), StoreError>;
    /// Ends a session, with its audit entry; ending one that is ended already changes
    /// nothing and is not an error.
    async fn end_session(
        &self,
        id: &[u8],
        at_ms: i64,
        audit: QueuedAudit,
    ) -> Result<(), StoreError>;
    /// Deletes challenges made before `before_ms` and sessions last used (or ended) before
    /// it; says how many rows went.
    async fn purge_signins(&self, before_ms: i64) -> Result<u64, StoreError>;
}
