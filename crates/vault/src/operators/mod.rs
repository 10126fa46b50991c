//! The people who run Custos: operators, added with a role and a one-time setup link
//! (`custos operator add`), who choose a password and enrol a second factor (`setup`), sign
//! in to the console with both (`login`), and are listed, disabled or reset by an operator
//! or key holding `manage_operators`. The rules (password, TOTP, lockout, session lifetimes)
//! are `core::operator`'s.
//!
//! An operator's address is kept as a keyed digest (to find the account) and sealed under the
//! vault's `operators` key (to show it); the password as an Argon2id hash; the TOTP secret
//! sealed; setup links, recovery codes and session cookies as SHA-256 digests.

mod login;
mod setup;

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::crypto::{DataKey, FieldBinding};
use custos_core::fields;
use custos_core::ids::{OperatorId, RecordId};
use custos_core::inventory::ADMIN_ROLE;
use custos_core::operator::totp::TotpSecret;
use custos_core::operator::{OperatorStatus, SETUP_LINK_VALID_MS};
use custos_core::principal::Act;
use custos_core::secret::Secret;
use custos_store::{AccountChange, OperatorRow, QueuedAudit, StoreError};

pub use login::{NewOperatorSession, OperatorSession};
pub use setup::{SetupStage, SetupView};

use crate::portal::{new_token, token_digest};
use crate::{Principal, Vault, VaultError};

/// The pseudo-collection an operator's sealed values are bound to.
const SEALED_AS: &str = "operators";

/// An operator just added (or reset): the setup link's token, the only time it exists outside
/// its holder.
#[derive(Debug)]
pub struct NewOperator {
    /// Their id.
    pub id: OperatorId,
    /// The token of the setup link (`/console/setup?token=...`).
    pub setup_token: Secret<String>,
    /// When the link stops working, ms since the epoch.
    pub expires_ms: i64,
}

/// An operator as `operator list` shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OperatorInfo {
    /// Their id.
    pub id: String,
    /// Their address.
    pub email: String,
    /// Their role.
    pub role: String,
    /// `invited`, `active` or `disabled`.
    pub status: &'static str,
    /// Added, ms since the epoch.
    pub created_ms: i64,
    /// Locked after failed logins until then, if now locked.
    pub locked_until_ms: Option<i64>,
}

/// An audit entry of the console, by `actor`, about operator `id`.
fn entry(actor: String, action: Action, outcome: Outcome, detail: String) -> QueuedAudit {
    let mut e = AuditEntry::new(actor, action, outcome);
    e.detail = Some(detail);
    QueuedAudit {
        subject_id: None,
        entry: e.to_bytes(),
    }
}

/// `operator:ID`, as audit entries name an operator.
fn actor_of(id: OperatorId) -> String {
    format!("operator:{id}")
}

/// Marks `row` as changed at `now` (always later than its last change, so that a write
/// made from an older reading is refused) and says when it last changed before.
fn touch(row: &mut OperatorRow, now: i64) -> i64 {
    let was = row.changed_ms;
    row.changed_ms = now.max(was + 1);
    was
}

impl Vault {
    /// Writes `row` back, if the account has not changed since it was read (`was`): a disable
    /// or a reset that came in between wins, and this write is refused.
    async fn save_operator(
        &self,
        row: OperatorRow,
        was: i64,
        change: AccountChange,
        audit: Vec<QueuedAudit>,
    ) -> Result<(), VaultError> {
        match self.store.update_operator(row, was, change, audit).await {
            Err(StoreError::Conflict(_)) => Err(VaultError::Conflict(
                "the account was changed at the same time (disabled or reset?): nothing was done"
                    .into(),
            )),
            Err(StoreError::NotFound) => Err(VaultError::NotFound("operator")),
            other => other.map_err(VaultError::from),
        }
    }

    /// [`custos_core::principal::may_grant`], as the vault's refusal.
    pub(crate) fn may_grant(&self, p: &Principal, role: &str) -> Result<(), VaultError> {
        custos_core::principal::may_grant(p, role, &self.inventory)
            .map_err(|r| VaultError::Forbidden(r.to_string()))
    }

    /// The vault's `operators` key, created on first use.
    async fn operators_key(&self) -> Result<&DataKey, VaultError> {
        self.operators_key
            .get_or_try_init(|| {
                crate::keys::named_key(
                    self.store.as_ref(),
                    &self.keys.root,
                    crate::keys::OPERATORS_KEY,
                )
            })
            .await
    }

    async fn seal_operator(
        &self,
        id: OperatorId,
        field: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let at = FieldBinding {
            record: RecordId::from(id.as_uuid()),
            collection: SEALED_AS,
            field,
        };
        Ok(self.operators_key().await?.encrypt_field(at, plain))
    }

    async fn open_sealed(
        &self,
        id: OperatorId,
        field: &str,
        sealed: &[u8],
    ) -> Result<Secret<Vec<u8>>, VaultError> {
        let at = FieldBinding {
            record: RecordId::from(id.as_uuid()),
            collection: SEALED_AS,
            field,
        };
        Ok(self.operators_key().await?.decrypt_field(at, sealed)?)
    }

    /// An operator's TOTP secret, unsealed.
    async fn totp_of(&self, id: OperatorId, sealed: &[u8]) -> Result<TotpSecret, VaultError> {
        let bytes = self.open_sealed(id, "totp", sealed).await?;
        Ok(TotpSecret::from_bytes(bytes.expose_secret().clone()))
    }

    /// An address as typed, normalised as the blind index would, and its keyed digest.
    fn operator_address(&self, typed: &str) -> Result<(Secret<String>, Vec<u8>), VaultError> {
        let normal = fields::email(typed)
            .map_err(|rule| {
                VaultError::invalid("email", "email", format!("is not an email address: {rule}"))
            })?
            .to_lowercase();
        let digest = self
            .keys
            .mac
            .digest("operator-address", &[normal.as_bytes()])
            .to_vec();
        Ok((Secret::new(normal), digest))
    }

    async fn email_of(&self, row: &OperatorRow) -> Result<String, VaultError> {
        let plain = self.open_sealed(row.id, "email", &row.email_sealed).await?;
        String::from_utf8(plain.expose_secret().clone())
            .map_err(|_| VaultError::Integrity("an operator's address is not text".into()))
    }

    async fn info(&self, row: &OperatorRow) -> Result<OperatorInfo, VaultError> {
        let now = self.now_ms();
        Ok(OperatorInfo {
            id: row.id.to_string(),
            email: self.email_of(row).await?,
            role: row.role.clone(),
            status: row.status.as_str(),
            created_ms: row.created_ms,
            locked_until_ms: row.locked_until_ms.filter(|u| *u > now),
        })
    }

    /// A new setup link for `row`: its token, and the row holding its digest.
    fn setup_link(row: &mut OperatorRow, now: i64) -> Result<(Secret<String>, i64), VaultError> {
        let token = new_token()?;
        let expires = now + SETUP_LINK_VALID_MS;
        row.setup_digest = Some(token_digest(token.expose_secret()));
        row.setup_expires_ms = Some(expires);
        Ok((token, expires))
    }

    /// Adds an operator with `role` (the built-in `admin` or a role of the inventory) and
    /// gives a setup link valid for 24 hours, with which they choose a password and enrol
    /// their second factor. Audited, naming the role (the link never).
    ///
    /// # Errors
    /// `Forbidden` without `manage_operators`; `Invalid` naming `email` or `role`;
    /// `Conflict` when an operator has the address already.
    pub async fn add_operator(
        &self,
        p: &Principal,
        email: &str,
        role: &str,
    ) -> Result<NewOperator, VaultError> {
        self.authorize(p, &Act::ManageOperators)?;
        self.may_grant(p, role)?;
        if role != ADMIN_ROLE && self.inventory.role(role).is_none() {
            let mut known: Vec<&str> = self.inventory.roles.iter().map(|r| r.id.as_str()).collect();
            known.push(ADMIN_ROLE);
            return Err(VaultError::invalid(
                "role",
                "declared_role",
                format!(
                    "is not a role of the inventory: one of {}",
                    known.join(", ")
                ),
            ));
        }
        let (normal, digest) = self.operator_address(email)?;
        let now = self.now_ms();
        let id = OperatorId::random();
        let mut row = OperatorRow {
            id,
            email_digest: digest,
            email_sealed: self
                .seal_operator(id, "email", normal.expose_secret().as_bytes())
                .await?,
            role: role.to_owned(),
            status: OperatorStatus::Invited,
            password_hash: None,
            totp_sealed: None,
            totp_last_step: None,
            setup_digest: None,
            setup_expires_ms: None,
            failed_logins: 0,
            locked_until_ms: None,
            created_ms: now,
            changed_ms: now,
        };
        let (token, expires_ms) = Self::setup_link(&mut row, now)?;
        let audit = entry(
            p.actor(),
            Action::OperatorAdd,
            Outcome::Ok,
            format!("operator {id} added with role {role}"),
        );
        match self.store.insert_operator(row, audit).await {
            Err(StoreError::Conflict(_)) => Err(VaultError::Conflict(
                "an operator with this address exists already".into(),
            )),
            other => other.map_err(VaultError::from),
        }?;
        Ok(NewOperator {
            id,
            setup_token: token,
            expires_ms,
        })
    }

    /// Every operator, oldest first.
    ///
    /// # Errors
    /// `Forbidden` without `manage_operators`; store failures.
    pub async fn operators(&self, p: &Principal) -> Result<Vec<OperatorInfo>, VaultError> {
        self.authorize(p, &Act::ManageOperators)?;
        let mut out = Vec::new();
        for row in self.store.operators().await? {
            out.push(self.info(&row).await?);
        }
        Ok(out)
    }

    /// The operator with address `email`, for `p` to manage: `p` holds `manage_operators` and
    /// may give the operator's role.
    async fn managed(&self, p: &Principal, email: &str) -> Result<OperatorRow, VaultError> {
        self.authorize(p, &Act::ManageOperators)?;
        let row = self.operator_named(email).await?;
        self.may_grant(p, &row.role)?;
        Ok(row)
    }

    /// The id of the operator with address `email`.
    pub(crate) async fn operator_id_of(&self, email: &str) -> Result<OperatorId, VaultError> {
        Ok(self.operator_named(email).await?.id)
    }

    async fn operator_named(&self, email: &str) -> Result<OperatorRow, VaultError> {
        let (_, digest) = self.operator_address(email)?;
        self.store
            .operator_by_email(&digest)
            .await?
            .ok_or(VaultError::NotFound("operator"))
    }

    /// Disables the operator with address `email`: they can no longer sign in, and every
    /// session of theirs ends at once, on every server (sessions are checked against the
    /// account on each request). Audited.
    ///
    /// # Errors
    /// `Forbidden` without `manage_operators`; `NotFound`; store failures.
    pub async fn disable_operator(
        &self,
        p: &Principal,
        email: &str,
    ) -> Result<OperatorInfo, VaultError> {
        let mut row = self.managed(p, email).await?;
        let now = self.now_ms();
        row.status = OperatorStatus::Disabled;
        row.setup_digest = None;
        row.setup_expires_ms = None;
        let was = touch(&mut row, now);
        let audit = entry(
            p.actor(),
            Action::OperatorDisable,
            Outcome::Ok,
            format!("operator {} disabled; their sessions ended", row.id),
        );
        let change = AccountChange {
            recovery_codes: None,
            end_sessions_at: Some(now),
            clear_lock: false,
        };
        self.save_operator(row.clone(), was, change, vec![audit])
            .await?;
        self.info(&row).await
    }

    /// Lifts the lock that failed logins placed on the operator with address `email`, and
    /// clears the count. Audited.
    ///
    /// # Errors
    /// `Forbidden` without `manage_operators` or for a role one may not give; `NotFound`.
    pub async fn unlock_operator(
        &self,
        p: &Principal,
        email: &str,
    ) -> Result<OperatorInfo, VaultError> {
        let mut row = self.managed(p, email).await?;
        let was = touch(&mut row, self.now_ms());
        let audit = entry(
            p.actor(),
            Action::OperatorUnlock,
            Outcome::Ok,
            format!("operator {}: failed logins cleared, lock lifted", row.id),
        );
        let change = AccountChange {
            recovery_codes: None,
            end_sessions_at: None,
            clear_lock: true,
        };
        self.save_operator(row.clone(), was, change, vec![audit])
            .await?;
        row.locked_until_ms = None;
        self.info(&row).await
    }

    /// Resets the operator with address `email`: their password, second factor and recovery
    /// codes are removed, their sessions end, and a new setup link is given, with which they
    /// choose a password and enrol again. A disabled operator is enabled this way. Audited.
    ///
    /// # Errors
    /// `Forbidden` without `manage_operators`; `NotFound`; store failures.
    pub async fn reset_operator_mfa(
        &self,
        p: &Principal,
        email: &str,
    ) -> Result<NewOperator, VaultError> {
        let mut row = self.managed(p, email).await?;
        let now = self.now_ms();
        row.status = OperatorStatus::Invited;
        row.password_hash = None;
        row.totp_sealed = None;
        let was = touch(&mut row, now);
        let (token, expires_ms) = Self::setup_link(&mut row, now)?;
        let audit = entry(
            p.actor(),
            Action::OperatorResetMfa,
            Outcome::Ok,
            format!("operator {}: password and second factor reset", row.id),
        );
        let change = AccountChange {
            recovery_codes: Some(Vec::new()),
            end_sessions_at: Some(now),
            clear_lock: true,
        };
        let id = row.id;
        self.save_operator(row, was, change, vec![audit]).await?;
        Ok(NewOperator {
            id,
            setup_token: token,
            expires_ms,
        })
    }
}
