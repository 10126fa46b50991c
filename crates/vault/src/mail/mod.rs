//! The outbox: [`Vault::enqueue_mail`] seals a message and queues it; [`Vault::deliver_mail`]
//! is one delivery round (claim, open, send, mark); [`Vault::run_outbox`] runs rounds in the
//! background. Delivery is at least once: see `docs/mail.md`.
//!
//! A message about a subject is sealed under the subject's data key, so erasing the subject
//! shreds it: delivery then gives it up as "subject erased". Any other message is sealed under
//! the vault's `outbox` key. No address, subject line or text is ever logged: the reasons
//! noted and logged are the vault's own words.

mod transport;

use std::sync::Arc;
use std::time::Duration;

use custos_core::breach::webhook::Delivery;
use custos_core::crypto::{DataKey, MessageBinding};
use custos_core::ids::{MailId, SubjectId};
use custos_core::mail::{Mail, Next, after_failure};
use custos_store::{OutboxCounts, OutboxRow, StoreError};

pub use transport::{SMTP_TIMEOUT, SmtpRelay, Transport};

use crate::breach::webhook::Posted;
use crate::error::{KEY_ATTEMPTS, KEY_CHANGED_AGAIN};
use crate::{Vault, VaultError};

/// Messages one round claims at most.
pub const DELIVERY_BATCH: usize = 16;
/// How long a round's claim lasts; another server may claim a message once it lapses.
pub const DELIVERY_LEASE: Duration = Duration::from_secs(60);

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages claimed.
    pub claimed: usize,
    /// Handed to the relay (or written).
    pub sent: usize,
    /// Failed this time, and due again later.
    pub retried: usize,
    /// Given up: expired, refused for good, or their subject erased.
    pub failed: usize,
}

/// What an outbox row seals.
enum Parcel {
    Mail(Mail),
    Webhook(Delivery),
}

/// What became of one claimed message.
enum Fate {
    Sent,
    Retry(i64, String),
    Failed(String),
}

impl Vault {
    /// Queues a message for delivery, sealed under `subject`'s data key when it is about a
    /// subject (erasing them shreds it), else under the vault's `outbox` key; it is tried
    /// until `expires_at_ms` (ms since the epoch), then given up. Called by other use cases
    /// (the portal's sign-in) that have authorized their caller: it is not an act of its own.
    ///
    /// # Errors
    /// [`VaultError::Invalid`] when `expires_at_ms` is not in the future;
    /// [`VaultError::NotFound`] when the subject is unknown or erased.
    pub async fn enqueue_mail(
        &self,
        subject: Option<SubjectId>,
        mail: Mail,
        expires_at_ms: i64,
    ) -> Result<MailId, VaultError> {
        let now = self.now_ms();
        if expires_at_ms <= now {
            return Err(VaultError::invalid(
                "expires_at_ms",
                "mail_expiry",
                "the message would expire before it could be sent",
            ));
        }
        let id = MailId::random();
        let at = MessageBinding { id };
        let plain = mail.to_plaintext();
        // Sealed again and retried when a rotation replaces the subject's key meanwhile.
        for _ in 0..KEY_ATTEMPTS {
            let sealed = match subject {
                Some(s) => {
                    if self.store.erasure(s).await?.is_some() {
                        return Err(VaultError::NotFound("subject"));
                    }
                    let key = self
                        .subject_data_key(s)
                        .await?
                        .ok_or(VaultError::NotFound("subject"))?;
                    key.encrypt_message(at, plain.expose_secret())
                }
                None => self
                    .outbox_key()
                    .await?
                    .encrypt_message(at, plain.expose_secret()),
            };
            let row = OutboxRow::queued(id, subject, now, expires_at_ms, sealed);
            match self.store.enqueue_mail(row).await {
                Ok(()) => return Ok(id),
                Err(StoreError::KeyChanged) => continue,
                Err(StoreError::NotFound) => return Err(VaultError::NotFound("subject")),
                Err(e) => return Err(e.into()),
            }
        }
        Err(VaultError::Conflict(KEY_CHANGED_AGAIN.into()))
    }

    /// One delivery round for server `holder`: claims up to [`DELIVERY_BATCH`] due messages
    /// for [`DELIVERY_LEASE`], and for each one opens it, hands it to `transport`, and marks
    /// it sent, due again after the backoff (`core::mail::after_failure`), or given up
    /// (expired, refused for good, or its subject erased). A mark refused because another
    /// server took the message over is logged and skipped.
    ///
    /// # Errors
    /// When the store cannot claim; a failure to mark one message is logged, and the message
    /// is claimed again once its lease lapses.
    pub async fn deliver_mail(
        &self,
        transport: &Transport,
        holder: &str,
    ) -> Result<DeliveryReport, VaultError> {
        let started = self.now_ms();
        let lease = DELIVERY_LEASE.as_millis() as i64;
        let claimed = self
            .store
            .claim_mail(holder, started, lease, DELIVERY_BATCH)
            .await?;
        let mut report = DeliveryReport {
            claimed: claimed.len(),
            ..DeliveryReport::default()
        };
        for row in claimed {
            // Past half the lease, another server may soon take what is left over: leave it
            // due at once rather than race it.
            let fate = if self.now_ms() - started > lease / 2 {
                Fate::Retry(
                    self.now_ms(),
                    "not tried: the delivery round ran long".into(),
                )
            } else {
                self.attempt(transport, &row).await
            };
            self.mark(holder, &row, fate, &mut report).await;
        }
        Ok(report)
    }

    /// How many messages are queued, sent and given up: for status pages and tests.
    ///
    /// # Errors
    /// When the store cannot count.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, VaultError> {
        Ok(self.store.outbox_counts().await?)
    }

    /// Runs delivery rounds until its task is aborted: every `interval`, and at once again
    /// after a full batch. Errors are logged (never an address or a word of a message) and
    /// the next round tries again.
    pub async fn run_outbox(self: Arc<Self>, transport: Transport, interval: Duration) {
        // Unique per server: the name its claims go under.
        let nonce = custos_core::crypto::random_bytes(8)
            .map(hex::encode)
            .unwrap_or_default();
        let holder = format!("pid {} {nonce}", std::process::id());
        loop {
            match self.deliver_mail(&transport, &holder).await {
                Ok(r) if r.claimed >= DELIVERY_BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "mail delivery round failed; retrying"),
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Opens and sends one claimed message (a mail, or a webhook delivery), and says what
    /// became of it.
    async fn attempt(&self, transport: &Transport, row: &OutboxRow) -> Fate {
        let now = self.now_ms();
        if now >= row.expires_ms {
            return Fate::Failed("expired before it could be sent".into());
        }
        let parcel = match self.open_parcel(row).await {
            Ok(Some(m)) => m,
            Ok(None) => return Fate::Failed("subject erased".into()),
            Err(e @ VaultError::Integrity(_)) => return Fate::Failed(e.to_string()),
            Err(e) => {
                return Fate::Retry(
                    after_retry(row, now),
                    format!("the message could not be opened: {e}"),
                );
            }
        };
        let mail = match parcel {
            Parcel::Mail(m) => m,
            Parcel::Webhook(d) => {
                return match self.post_webhook(row.id, &d, row.attempts).await {
                    Posted::Delivered => Fate::Sent,
                    Posted::Never(why) => Fate::Failed(why),
                    Posted::Again(why) => {
                        match after_failure(attempts(row), self.now_ms(), row.expires_ms) {
                            Next::RetryAt(at) => Fate::Retry(at, why),
                            Next::GiveUp => Fate::Failed(format!("expired after: {why}")),
                        }
                    }
                };
            }
        };
        let from = &self.inventory.mail.from;
        match transport.send(from, row.id, row.created_ms, &mail).await {
            Ok(()) => Fate::Sent,
            Err(e) if e.permanent => Fate::Failed(e.reason),
            Err(e) => match after_failure(attempts(row), self.now_ms(), row.expires_ms) {
                Next::RetryAt(at) => Fate::Retry(at, e.reason),
                Next::GiveUp => Fate::Failed(format!("expired after: {}", e.reason)),
            },
        }
    }

    /// Records what became of a message, and counts it.
    async fn mark(&self, holder: &str, row: &OutboxRow, fate: Fate, report: &mut DeliveryReport) {
        let id = row.id;
        let done = match &fate {
            Fate::Sent => {
                report.sent += 1;
                self.store.mail_sent(id, holder, self.now_ms()).await
            }
            Fate::Retry(at, reason) => {
                report.retried += 1;
                tracing::info!(mail = %id, attempts = row.attempts, reason = %reason, "mail not delivered yet; will retry");
                self.store.mail_retry(id, holder, *at, reason).await
            }
            Fate::Failed(reason) => {
                report.failed += 1;
                tracing::warn!(mail = %id, attempts = row.attempts, reason = %reason, "mail given up");
                self.store
                    .mail_failed(id, holder, self.now_ms(), reason)
                    .await
            }
        };
        if let Err(e) = done {
            tracing::warn!(mail = %id, error = %e, "marking a message failed; it will be claimed again");
        }
    }

    /// The message a row seals; `None` when its subject was erased (their key is gone, or
    /// the erasure list names them).
    async fn open_parcel(&self, row: &OutboxRow) -> Result<Option<Parcel>, VaultError> {
        let at = MessageBinding { id: row.id };
        let plain = match row.subject_id {
            Some(s) => {
                if self.store.erasure(s).await?.is_some() {
                    return Ok(None);
                }
                let Some(key) = self.subject_data_key(s).await? else {
                    return Ok(None);
                };
                // Sealed again by a rotation of the subject's key since the row was claimed
                // (a rotation leaves claimed messages alone, by its own clock): not broken,
                // so tried again, never given up.
                if custos_core::crypto::ciphertext_key_version(&row.sealed)
                    .is_ok_and(|v| v != key.version())
                {
                    return Err(VaultError::Unavailable(
                        "the subject's data key was replaced since the message was claimed".into(),
                    ));
                }
                key.decrypt_message(at, &row.sealed)?
            }
            None => self.outbox_key().await?.decrypt_message(at, &row.sealed)?,
        };
        if let Some(d) = Delivery::from_plaintext(plain.expose_secret()) {
            return Ok(Some(Parcel::Webhook(d)));
        }
        Ok(Some(Parcel::Mail(Mail::from_plaintext(
            plain.expose_secret(),
        )?)))
    }

    /// The vault's `outbox` key, created on first use.
    pub(crate) async fn outbox_key(&self) -> Result<&DataKey, VaultError> {
        self.outbox_key
            .get_or_try_init(|| {
                crate::keys::named_key(
                    self.store.as_ref(),
                    &self.keys.root,
                    crate::keys::OUTBOX_KEY,
                )
            })
            .await
    }
}

/// Attempts made, as the schedule counts them.
fn attempts(row: &OutboxRow) -> u32 {
    u32::try_from(row.attempts).unwrap_or(u32::MAX)
}

/// When to try again after a failure that was not the relay's, capped by the expiry.
fn after_retry(row: &OutboxRow, now: i64) -> i64 {
    match after_failure(attempts(row), now, row.expires_ms) {
        Next::RetryAt(at) => at,
        Next::GiveUp => now,
    }
}
