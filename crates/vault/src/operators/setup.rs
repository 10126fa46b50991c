//! Setting up an account with its one-time link: the operator chooses a password (checked by
//! `core::operator::password`, hashed with Argon2id), is given a TOTP secret to enrol in an
//! authenticator app, and proves it with a first code; they are then given ten recovery
//! codes, once, and the link stops working.

use custos_core::audit::{Action, Outcome};
use custos_core::operator::OperatorStatus;
use custos_core::operator::password::{self, Password};
use custos_core::operator::recovery::{self, RecoveryCode};
use custos_core::operator::totp::{STEP_SECONDS, TotpSecret};
use custos_core::secret::Secret;
use custos_store::{AccountChange, OperatorRow};

use super::{actor_of, entry, touch};
use crate::portal::token_digest;
use crate::{Vault, VaultError};

/// Where a setup stands.
#[derive(Debug)]
pub enum SetupStage {
    /// A password is to be chosen.
    Password,
    /// The authenticator app is to be enrolled, and a first code typed.
    Authenticator {
        /// The otpauth URI, for the QR code.
        uri: Secret<String>,
        /// The secret in base32, for typing by hand.
        secret: Secret<String>,
    },
}

/// A setup under way.
#[derive(Debug)]
pub struct SetupView {
    /// Whose account: their address.
    pub email: String,
    /// What is to be done next.
    pub stage: SetupStage,
}

impl Vault {
    /// The account a setup link's `token` opens, if the link is live.
    async fn setup_row(&self, token: &str) -> Result<OperatorRow, VaultError> {
        let digest = token_digest(token);
        let row = self
            .store
            .operator_by_setup(&digest)
            .await?
            .ok_or(VaultError::Unauthenticated)?;
        let live = row.status == OperatorStatus::Invited
            && row.setup_expires_ms.is_some_and(|t| t > self.now_ms());
        if !live {
            return Err(VaultError::Unauthenticated);
        }
        Ok(row)
    }

    async fn stage_of(&self, row: &OperatorRow) -> Result<SetupView, VaultError> {
        let email = self.email_of(row).await?;
        let stage = match (&row.password_hash, &row.totp_sealed) {
            (Some(_), Some(sealed)) => {
                let secret = self.totp_of(row.id, sealed).await?;
                let issuer = &self.inventory.organization.name;
                SetupStage::Authenticator {
                    uri: secret.otpauth_uri(issuer, &email)?,
                    secret: secret.base32(),
                }
            }
            _ => SetupStage::Password,
        };
        Ok(SetupView { email, stage })
    }

    /// The setup a link's `token` opens.
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown, used or expired link.
    pub async fn operator_setup(&self, token: &str) -> Result<SetupView, VaultError> {
        let row = self.setup_row(token).await?;
        self.stage_of(&row).await
    }

    /// Sets the password of the account a setup link opens and makes the TOTP secret to
    /// enrol. Choosing again before enrolling replaces both. Audited.
    ///
    /// # Errors
    /// `Unauthenticated` for a dead link; `Invalid` naming `password` with the rule broken,
    /// or `password_again` when the two differ (nothing is changed).
    pub async fn choose_password(
        &self,
        token: &str,
        password: Password,
        again: Password,
    ) -> Result<SetupView, VaultError> {
        let mut row = self.setup_row(token).await?;
        let email = self.email_of(&row).await?;
        password::check(&password, &email)
            .map_err(|rule| VaultError::invalid("password", "password_policy", rule.message()))?;
        if !password.same_as(&again) {
            return Err(VaultError::invalid(
                "password_again",
                "same_password",
                "is not the same as the password",
            ));
        }
        let hash = {
            let _permit = self
                .hashing
                .acquire()
                .await
                .map_err(|e| VaultError::Internal(e.to_string()))?;
            tokio::task::spawn_blocking(move || password::hash(&password))
                .await
                .map_err(|e| VaultError::Internal(e.to_string()))??
        };
        let secret = TotpSecret::generate()?;
        row.password_hash = Some(hash);
        row.totp_sealed = Some(
            self.seal_operator(row.id, "totp", secret.expose_bytes())
                .await?,
        );
        let was = touch(&mut row, self.now_ms());
        let audit = entry(
            actor_of(row.id),
            Action::OperatorPassword,
            Outcome::Ok,
            "password chosen with the setup link".into(),
        );
        self.save_operator(row.clone(), was, AccountChange::default(), vec![audit])
            .await?;
        self.stage_of(&row).await
    }

    /// Enrols the second factor of the account a setup link opens: `code` must be the
    /// authenticator's current code. The account becomes active, the link stops working, the
    /// code's step counts as used, and ten recovery codes are returned (stored as digests).
    /// Audited.
    ///
    /// # Errors
    /// `Unauthenticated` for a dead link; `Invalid` naming `password` when none was chosen,
    /// or `code` for a wrong code (nothing is changed).
    pub async fn enrol_totp(
        &self,
        token: &str,
        code: &str,
    ) -> Result<Vec<RecoveryCode>, VaultError> {
        let mut row = self.setup_row(token).await?;
        let (Some(_), Some(sealed)) = (&row.password_hash, &row.totp_sealed) else {
            return Err(VaultError::invalid(
                "password",
                "password_first",
                "must be chosen before the authenticator is enrolled",
            ));
        };
        let secret = self.totp_of(row.id, sealed).await?;
        let now = self.now_ms();
        let step = secret.matching_step(code, now).ok_or_else(|| {
            VaultError::invalid(
                "code",
                "totp_code",
                format!(
                    "is not the authenticator's code: type the six digits it shows now (they \
                     change every {STEP_SECONDS} seconds)"
                ),
            )
        })?;
        let codes = recovery::generate()?;
        row.status = OperatorStatus::Active;
        row.totp_last_step = i64::try_from(step).ok();
        row.setup_digest = None;
        row.setup_expires_ms = None;
        let was = touch(&mut row, now);
        let audit = entry(
            actor_of(row.id),
            Action::OperatorEnrol,
            Outcome::Ok,
            format!(
                "authenticator enrolled; {} recovery codes given",
                recovery::CODES
            ),
        );
        let change = AccountChange {
            recovery_codes: Some(codes.iter().map(|c| c.digest().to_vec()).collect()),
            end_sessions_at: None,
            clear_lock: true,
        };
        self.save_operator(row, was, change, vec![audit]).await?;
        Ok(codes)
    }
}
