//! Alerts: raised by the detector or by a canary value in a request, delivered through the
//! outbox (a signed webhook delivery per `[[webhooks]]` entry, a mail per `[breach]
//! alert_mail` address) in the transaction that raises them, shown in the console, and
//! acknowledged by staff. With `[breach] suspend_on_alert`, the key or operator an alert is
//! about is suspended as it is raised.

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::breach::webhook::Delivery;
use custos_core::breach::{Alert, AlertKind};
use custos_core::crypto::MessageBinding;
use custos_core::ids::{AlertId, MailId, RecordId};
use custos_core::mail::Mail;
use custos_core::operator::{OperatorId, OperatorStatus};
use custos_core::personal::PersonalValue;
use custos_core::principal::{Act, Job, Principal};
use custos_core::time::format_time_ms;
use custos_store::{
    AccountChange, AlertRow, IndexEntry, NewAlert, OutboxRow, QueuedAudit, StoreError,
};

use crate::{Vault, VaultError};

/// How long an alert's deliveries are retried before they are given up: three days.
pub const DELIVERY_EXPIRY_MS: i64 = 3 * 24 * 3_600_000;
/// The most alerts a list shows.
pub const MAX_ALERTS: usize = 500;

/// An alert as staff see it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertView {
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// When staff acknowledged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<String>,
    /// Who did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
}

fn view(row: AlertRow) -> Result<AlertView, VaultError> {
    let alert = Alert::from_json(&row.body)
        .map_err(|_| VaultError::Integrity(format!("alert {} is unreadable", row.id)))?;
    Ok(AlertView {
        alert,
        acknowledged_at: row.acknowledged_ms.map(format_time_ms),
        acknowledged_by: row.acknowledged_by,
    })
}

impl Vault {
    /// An alert with its deliveries and audit entry, ready to raise. `suspended` is set when
    /// `suspend_on_alert` will suspend whom it is about.
    pub(crate) async fn new_alert(
        &self,
        mut alert: Alert,
        dedup: String,
    ) -> Result<NewAlert, VaultError> {
        alert.suspended = self.inventory.breach.suspend_on_alert && suspendable(&alert.actor);
        let body = alert.to_json();
        let now = self.now_ms();
        let expires = now + DELIVERY_EXPIRY_MS;
        let mut outbox = Vec::new();
        let text = String::from_utf8_lossy(&body).into_owned();
        for w in &self.inventory.webhooks {
            let d = Delivery {
                url: w.url.clone(),
                alert: alert.id,
                body: text.clone(),
            };
            let id = MailId::random();
            let sealed = self
                .outbox_key()
                .await?
                .encrypt_message(MessageBinding { id }, &d.to_plaintext());
            outbox.push(OutboxRow::queued(id, None, now, expires, sealed));
        }
        for to in &self.inventory.breach.alert_mail {
            let words = format!(
                "{}\n\nAlert {} ({}), raised {} about {}.\n\nSee it in the console under Alerts; \
                 open an incident from it if it is a breach.\n",
                alert.summary,
                alert.id,
                alert.kind.as_str(),
                alert.raised_at,
                alert.actor
            );
            let mail = Mail::new(
                &PersonalValue::text(to.clone()),
                format!("Custos alert: {}", alert.kind.as_str().replace('_', " ")),
                words,
            )?;
            let id = MailId::random();
            let sealed = self
                .outbox_key()
                .await?
                .encrypt_message(MessageBinding { id }, mail.to_plaintext().expose_secret());
            outbox.push(OutboxRow::queued(id, None, now, expires, sealed));
        }
        let mut e = AuditEntry::new("detector", Action::AlertRaise, Outcome::Ok);
        e.time = alert.raised_at.clone();
        e.collection = alert.collection.clone();
        e.record_id = alert.record_id;
        e.subject_id = alert.subject_id;
        e.detail = Some(alert.raise_detail());
        Ok(NewAlert {
            row: AlertRow {
                id: alert.id,
                dedup,
                kind: alert.kind.as_str().to_owned(),
                actor: alert.actor.clone(),
                raised_ms: now,
                acknowledged_ms: None,
                acknowledged_by: None,
                body,
            },
            outbox,
            audit: QueuedAudit {
                subject_id: alert.subject_id,
                entry: e.to_bytes(),
            },
        })
    }

    /// Suspends whom newly raised alerts are about, when `[breach] suspend_on_alert` says so:
    /// an API key is revoked, an operator disabled (their sessions end). Each is audited
    /// under the detector, naming the alert. A failure is logged: the alert stands.
    pub(crate) async fn suspend_for(&self, raised: &[NewAlert]) {
        if !self.inventory.breach.suspend_on_alert {
            return;
        }
        let detector = Principal::System(Job::Detector);
        for a in raised {
            let because = format!("alert {}", a.row.id);
            if let Err(e) = self.suspend(&detector, &a.row.actor, &because).await {
                tracing::warn!(alert = %a.row.id, error = %e, "suspending after an alert failed");
            }
        }
    }

    /// Suspends the caller `actor` names (`apikey:NAME` or `operator:ID`) `because` of an
    /// alert or an incident: a key is revoked, an operator disabled with their sessions
    /// ended. Audited as the revocation or the disabling, naming why. Whom nothing can stop
    /// (the CLI) and who is already stopped are left as they are.
    pub(crate) async fn suspend(
        &self,
        p: &Principal,
        actor: &str,
        because: &str,
    ) -> Result<(), VaultError> {
        self.authorize(p, &Act::Suspend)?;
        // A person stops an administrator's key or account only as an administrator:
        // containment is no way for a role to lock out those above it.
        let person = !matches!(p, Principal::System(_));
        let guard = |role: &str| {
            if person && role == custos_core::inventory::ADMIN_ROLE {
                self.may_grant(p, role)
            } else {
                Ok(())
            }
        };
        let now = self.now_ms();
        if let Some(name) = actor.strip_prefix("apikey:") {
            if person {
                let keys = self.store.api_keys().await?;
                if let Some(k) = keys.iter().find(|k| k.name == name) {
                    guard(&k.role)?;
                }
            }
            let mut e = AuditEntry::new(p.actor(), Action::ApiKeyRevoke, Outcome::Ok);
            e.detail = Some(format!("name={name}; suspended because of {because}"));
            return match self
                .store
                .revoke_api_key(
                    name,
                    now,
                    QueuedAudit {
                        subject_id: None,
                        entry: e.to_bytes(),
                    },
                )
                .await
            {
                Ok(()) | Err(StoreError::NotFound) => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        if let Some(id) = actor.strip_prefix("operator:") {
            let id: OperatorId = id.parse().map_err(|_| VaultError::NotFound("operator"))?;
            let Some(mut row) = self.store.operator(id).await? else {
                return Ok(());
            };
            if row.status == OperatorStatus::Disabled {
                return Ok(());
            }
            guard(&row.role)?;
            let was = row.changed_ms;
            row.status = OperatorStatus::Disabled;
            row.setup_digest = None;
            row.setup_expires_ms = None;
            row.changed_ms = now.max(was + 1);
            let mut e = AuditEntry::new(p.actor(), Action::OperatorDisable, Outcome::Ok);
            e.detail = Some(format!(
                "operator {id} disabled; their sessions ended; suspended because of {because}"
            ));
            let change = AccountChange {
                recovery_codes: None,
                end_sessions_at: Some(now),
                clear_lock: false,
            };
            self.store
                .update_operator(
                    row,
                    was,
                    change,
                    vec![QueuedAudit {
                        subject_id: None,
                        entry: e.to_bytes(),
                    }],
                )
                .await?;
        }
        Ok(())
    }

    /// Raises a `canary_value` alert when a write carried a canary's value: its searchable
    /// fields' digests match a canary's. Logged, never failing the write that carried it.
    pub(crate) async fn check_canary_values(
        &self,
        p: &Principal,
        collection: &str,
        record: RecordId,
        index: &[IndexEntry],
    ) {
        if index.is_empty() {
            return;
        }
        let digests: Vec<(String, Vec<u8>)> = index
            .iter()
            .map(|e| (e.field.clone(), e.digest.clone()))
            .collect();
        let hits = match self.store.canary_digests(collection, &digests).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "checking a write against the canaries failed");
                return;
            }
        };
        for canary in hits.into_iter().filter(|c| *c != record) {
            let alert = Alert {
                id: AlertId::random(),
                kind: AlertKind::CanaryValue,
                raised_at: format_time_ms(self.now_ms()),
                actor: p.actor(),
                summary: format!(
                    "A write to {collection} by {} carried a value of canary record {canary}: someone holds a copy of the canaries' data.",
                    p.actor()
                ),
                collection: Some(collection.to_owned()),
                record_id: Some(canary),
                subject_id: None,
                audit_index: None,
                reads: None,
                baseline: None,
                suspended: false,
            };
            let raised = async {
                let a = self
                    .new_alert(alert, format!("canary_value:{record}:{canary}"))
                    .await?;
                if self.store.raise_alert(a.clone()).await? {
                    self.suspend_for(std::slice::from_ref(&a)).await;
                }
                Ok::<_, VaultError>(())
            };
            if let Err(e) = raised.await {
                tracing::warn!(error = %e, "raising a canary-value alert failed");
            }
        }
    }

    /// Alerts, newest first (at most [`MAX_ALERTS`]); only unacknowledged ones when
    /// `open_only`.
    ///
    /// # Errors
    /// `Forbidden` without `read_audit` or `handle_incidents`.
    pub async fn alerts(
        &self,
        p: &Principal,
        open_only: bool,
    ) -> Result<Vec<AlertView>, VaultError> {
        self.authorize(p, &Act::ReadAlerts)?;
        self.store
            .alerts(open_only, MAX_ALERTS)
            .await?
            .into_iter()
            .map(view)
            .collect()
    }

    /// One alert.
    ///
    /// # Errors
    /// `Forbidden` without `read_audit` or `handle_incidents`; `NotFound`.
    pub async fn alert(&self, p: &Principal, id: AlertId) -> Result<AlertView, VaultError> {
        self.authorize(p, &Act::ReadAlerts)?;
        let row = self
            .store
            .alert(id)
            .await?
            .ok_or(VaultError::NotFound("alert"))?;
        view(row)
    }

    /// Acknowledges an alert: staff have seen it. Audited.
    ///
    /// # Errors
    /// `Forbidden` without `handle_incidents`; `NotFound`; `Conflict` when it already was.
    pub async fn acknowledge_alert(
        &self,
        p: &Principal,
        id: AlertId,
    ) -> Result<AlertView, VaultError> {
        self.authorize(p, &Act::HandleIncidents)?;
        let mut e = AuditEntry::new(p.actor(), Action::AlertAcknowledge, Outcome::Ok);
        e.detail = Some(format!("alert {id}"));
        self.store
            .acknowledge_alert(
                id,
                &p.actor(),
                self.now_ms(),
                QueuedAudit {
                    subject_id: None,
                    entry: e.to_bytes(),
                },
            )
            .await
            .map_err(|e| match e {
                StoreError::NotFound => VaultError::NotFound("alert"),
                StoreError::Conflict(m) => VaultError::Conflict(m),
                e => e.into(),
            })?;
        let row = self
            .store
            .alert(id)
            .await?
            .ok_or(VaultError::NotFound("alert"))?;
        view(row)
    }
}

/// Whether `actor` is a caller a suspension can stop.
fn suspendable(actor: &str) -> bool {
    actor.starts_with("apikey:") || actor.starts_with("operator:")
}
