//! A signed-in customer's session: found by its cookie's digest, live while neither the idle
//! nor the absolute timeout has passed (`core::signin::PORTAL_SESSION`), ended at sign-out.
//! Stored in the database, so any of several servers accepts it and an ended one is refused
//! by all of them at once.

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::crypto::digests_equal;
use custos_core::ids::SubjectId;
use custos_core::signin::{PORTAL_SESSION, SessionState};
use custos_store::QueuedAudit;

use super::token_digest;
use crate::{Principal, Vault, VaultError};

/// A session's last use is written at most this often: a page view a second apart need not
/// cost a write each.
const TOUCH_EVERY_MS: i64 = 10_000;

/// A live session.
#[derive(Debug, Clone, Copy)]
pub struct PortalSession {
    /// Whose it is.
    pub subject: SubjectId,
}

impl PortalSession {
    /// Who is calling, for the vault's use cases: the customer bound to the session.
    pub fn principal(&self) -> Principal {
        Principal::Customer {
            subject: self.subject,
        }
    }
}

impl Vault {
    /// The live session whose cookie is `token`, its last use noted.
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown, idle, expired or ended session.
    pub async fn portal_session(&self, token: &str) -> Result<PortalSession, VaultError> {
        let digest = token_digest(token);
        let row = self
            .store
            .session(&digest)
            .await?
            .ok_or(VaultError::Unauthenticated)?;
        if !digests_equal(&row.id, &digest) {
            return Err(VaultError::Unauthenticated);
        }
        let now = self.now_ms();
        let state = PORTAL_SESSION.state(row.created_ms, row.last_seen_ms, row.revoked_ms, now);
        if state != SessionState::Live {
            return Err(VaultError::Unauthenticated);
        }
        if now - row.last_seen_ms >= TOUCH_EVERY_MS {
            self.store.touch_session(&digest, now).await?;
        }
        Ok(PortalSession {
            subject: row.subject_id,
        })
    }

    /// Ends the session whose cookie is `token`, audited; ending an ended or unknown one
    /// does nothing.
    ///
    /// # Errors
    /// Store failures.
    pub async fn sign_out(&self, token: &str) -> Result<(), VaultError> {
        let digest = token_digest(token);
        let Some(row) = self.store.session(&digest).await? else {
            return Ok(());
        };
        let p = Principal::Customer {
            subject: row.subject_id,
        };
        let mut e = AuditEntry::new(p.actor(), Action::Signout, Outcome::Ok);
        e.subject_id = Some(row.subject_id);
        let queued = QueuedAudit {
            subject_id: Some(row.subject_id),
            entry: e.to_bytes(),
        };
        self.store
            .end_session(&digest, self.now_ms(), queued)
            .await?;
        Ok(())
    }
}
