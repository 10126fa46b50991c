//! Signing in to the console: address, password and second factor in one form, all checked
//! before anything is said, so a refusal never tells which was wrong; failed logins lock the
//! account with backoff (`core::operator::lockout_until`). Then a session stored in the
//! database, live while the idle and absolute timeouts allow and the account stays active:
//! disabling an operator ends their sessions on every server at once.

use std::net::IpAddr;

use custos_core::audit::{Action, Outcome};
use custos_core::crypto::digests_equal;
use custos_core::ids::OperatorId;
use custos_core::operator::password::{self, Password};
use custos_core::operator::{LoginRefusal, OPERATOR_SESSION, OperatorStatus, recovery};
use custos_core::secret::Secret;
use custos_core::signin::SessionState;
use custos_store::{OperatorRow, OperatorSessionRow, QueuedAudit};

use super::{actor_of, entry};
use crate::portal::{new_token, token_digest};
use crate::{Principal, Vault, VaultError};

/// Who tries to sign in before anyone has, in audit entries.
const CONSOLE_ACTOR: &str = "console";

/// A session's last use is written at most this often.
const TOUCH_EVERY_MS: i64 = 10_000;

/// A session just begun: the cookie's value.
#[derive(Debug)]
pub struct NewOperatorSession {
    /// The session cookie's value.
    pub token: Secret<String>,
}

/// A live console session.
#[derive(Debug, Clone)]
pub struct OperatorSession {
    /// Whose it is.
    pub id: OperatorId,
    /// Their address.
    pub email: String,
    /// The role they hold.
    pub role: String,
}

impl OperatorSession {
    /// Who is calling, for the vault's use cases: the operator with their role.
    pub fn principal(&self) -> Principal {
        Principal::Operator {
            id: self.id.to_string(),
            role: self.role.clone(),
        }
    }
}

/// Which second factor signed someone in.
enum Factor {
    Totp,
    Recovery { left: u32 },
}

impl Vault {
    /// Signs in with `email`, `password` and `code` (the authenticator's six digits, or a
    /// recovery code) from `client`. The attempt is counted before anything is checked
    /// (`OperatorStore::begin_login`), so attempts at once cannot get past the lockout; every
    /// path verifies a password hash, so the answer's time does not tell an unknown, locked
    /// or inactive account from a wrong password. Every attempt is audited: a login, or a
    /// failure with its reason, a lockout, a recovery code used.
    ///
    /// # Errors
    /// `LoginRefused` with the reason, for the audit log: the console says the same whatever
    /// it is; store failures.
    pub async fn operator_login(
        &self,
        email: &str,
        password: Password,
        code: &str,
        client: IpAddr,
    ) -> Result<NewOperatorSession, VaultError> {
        let client = hex::encode(
            &self
                .keys
                .mac
                .digest("client", &[client.to_string().as_bytes()])[..8],
        );
        let found = match self.operator_address(email) {
            Ok((_, digest)) => self.store.operator_by_email(&digest).await?,
            Err(_) => None,
        };
        let now = self.now_ms();
        let Some(row) = found else {
            let refusal = LoginRefusal::UnknownAddress;
            let audit = entry(
                CONSOLE_ACTOR.into(),
                Action::OperatorLoginFailed,
                Outcome::Denied,
                format!("{} from client {client}", refusal.as_str()),
            );
            return self.refuse_login(password, refusal, vec![audit]).await;
        };
        let refused = |why: LoginRefusal| {
            entry(
                actor_of(row.id),
                Action::OperatorLoginFailed,
                Outcome::Denied,
                format!("{} from client {client}", why.as_str()),
            )
        };
        if row.status != OperatorStatus::Active {
            let why = LoginRefusal::NotActive;
            return self.refuse_login(password, why, vec![refused(why)]).await;
        }
        let Some(attempt) = self.store.begin_login(row.id, now).await? else {
            let why = LoginRefusal::Locked;
            return self.refuse_login(password, why, vec![refused(why)]).await;
        };
        let failed = |why: LoginRefusal| {
            let mut audit = vec![refused(why)];
            if let Some(until) = attempt.locks_until_ms {
                audit.push(entry(
                    actor_of(row.id),
                    Action::OperatorLockout,
                    Outcome::Denied,
                    format!(
                        "locked after {} failed logins for {} s",
                        attempt.attempts,
                        (until - now) / 1000
                    ),
                ));
            }
            audit
        };
        if !self
            .verify_password(password, row.password_hash.clone())
            .await?
        {
            let why = LoginRefusal::WrongPassword;
            self.store.append_audit(failed(why)).await?;
            return Err(VaultError::LoginRefused(why));
        }
        let Some(factor) = self.second_factor(&row, code, now).await? else {
            let why = LoginRefusal::WrongCode;
            self.store.append_audit(failed(why)).await?;
            return Err(VaultError::LoginRefused(why));
        };
        self.begin_session(&row, factor, &client, now).await
    }

    /// Refuses a login, as slowly as a wrong password (a hash is verified all the same),
    /// with its audit entries.
    async fn refuse_login<T>(
        &self,
        password: Password,
        why: LoginRefusal,
        audit: Vec<QueuedAudit>,
    ) -> Result<T, VaultError> {
        let _ = self.verify_password(password, None).await?;
        self.store.append_audit(audit).await?;
        Err(VaultError::LoginRefused(why))
    }

    /// Begins the session of a login whose password and second factor were right.
    async fn begin_session(
        &self,
        row: &OperatorRow,
        factor: Factor,
        client: &str,
        now: i64,
    ) -> Result<NewOperatorSession, VaultError> {
        let token = new_token()?;
        let mut audit = Vec::new();
        let how = match factor {
            Factor::Totp => "totp".to_owned(),
            Factor::Recovery { left } => {
                audit.push(entry(
                    actor_of(row.id),
                    Action::OperatorRecoveryCode,
                    Outcome::Ok,
                    format!("a recovery code was used; {left} left"),
                ));
                "recovery code".to_owned()
            }
        };
        audit.push(entry(
            actor_of(row.id),
            Action::OperatorLogin,
            Outcome::Ok,
            format!("signed in with password and {how} from client {client}"),
        ));
        let session = OperatorSessionRow {
            id: token_digest(token.expose_secret()),
            operator_id: row.id,
            created_ms: now,
            last_seen_ms: now,
            revoked_ms: None,
        };
        self.store.start_operator_session(session, audit).await?;
        Ok(NewOperatorSession { token })
    }

    /// The factor `code` proves, used up: a TOTP step later than the last accepted, or an
    /// unused recovery code. `None` for a wrong or replayed code.
    async fn second_factor(
        &self,
        row: &OperatorRow,
        code: &str,
        now: i64,
    ) -> Result<Option<Factor>, VaultError> {
        if let Some(sealed) = &row.totp_sealed {
            let secret = self.totp_of(row.id, sealed).await?;
            if let Some(step) = secret.matching_step(code, now) {
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                // A code of a step already accepted is a replay, and fails as a wrong one.
                let fresh = self.store.use_totp_step(row.id, step).await?;
                return Ok(fresh.then_some(Factor::Totp));
            }
        }
        if let Some(digest) = recovery::digest_of(code) {
            let left = self.store.use_recovery_code(row.id, &digest, now).await?;
            return Ok(left.map(|left| Factor::Recovery { left }));
        }
        Ok(None)
    }

    /// The live session whose cookie is `token`, its last use noted.
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown, idle, expired or ended session, or one whose operator
    /// is no longer active.
    pub async fn operator_session(&self, token: &str) -> Result<OperatorSession, VaultError> {
        let digest = token_digest(token);
        let (s, row) = self
            .store
            .operator_session(&digest)
            .await?
            .ok_or(VaultError::Unauthenticated)?;
        if !digests_equal(&s.id, &digest) || row.status != OperatorStatus::Active {
            return Err(VaultError::Unauthenticated);
        }
        let now = self.now_ms();
        let state = OPERATOR_SESSION.state(s.created_ms, s.last_seen_ms, s.revoked_ms, now);
        if state != SessionState::Live {
            return Err(VaultError::Unauthenticated);
        }
        if now - s.last_seen_ms >= TOUCH_EVERY_MS {
            self.store.touch_operator_session(&digest, now).await?;
        }
        Ok(OperatorSession {
            id: row.id,
            email: self.email_of(&row).await?,
            role: row.role,
        })
    }

    /// Ends the console session whose cookie is `token`, audited; ending an ended or unknown
    /// one does nothing.
    ///
    /// # Errors
    /// Store failures.
    pub async fn operator_sign_out(&self, token: &str) -> Result<(), VaultError> {
        let digest = token_digest(token);
        let Some((s, _)) = self.store.operator_session(&digest).await? else {
            return Ok(());
        };
        let audit = entry(
            actor_of(s.operator_id),
            Action::OperatorSignout,
            Outcome::Ok,
            "signed out".into(),
        );
        self.store
            .end_operator_session(&digest, self.now_ms(), audit)
            .await?;
        Ok(())
    }
}

impl Vault {
    /// Whether `password` is the one `stored` was made from, verified off the async threads
    /// (Argon2id takes about 19 ms and 19 MiB, BENCHMARKS.md) and at most
    /// [`crate::HASHING_AT_ONCE`] at a time, so a flood of logins queues rather than
    /// exhausting memory. With no stored hash, the decoy is verified: as slow, never a match.
    pub(crate) async fn verify_password(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, VaultError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| VaultError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || match stored {
            Some(h) => password::verify(&password, &h),
            None => {
                let _ = password::verify(&password, password::decoy_hash());
                false
            }
        })
        .await
        .map_err(|e| VaultError::Internal(e.to_string()))
    }
}
