//! Erasure by crypto-shredding: the subject's records and index entries deleted and its data
//! key destroyed in one transaction, except what a legal hold or a legal obligation keeps
//! (`core::erasure` decides which), the subject put on the erasure list, and a signed
//! certificate that proves it.

use std::collections::HashSet;

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::certificate::{self, CERTIFICATE_VERSION, Certificate};
use custos_core::erasure::{Fate, Held, plan};
use custos_core::ids::{RecordId, SubjectId};
use custos_core::principal::Act;
use custos_core::receipt::Controller;
use custos_core::time::format_time_ms;
use custos_store::{Erasure, QueuedAudit, StoreError, Trim};
use serde::Serialize;

use crate::error::{KEY_ATTEMPTS, KEY_CHANGED_AGAIN};
use crate::{Principal, Vault, VaultError};

/// A subject on the erasure list.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureView {
    /// The subject erased.
    pub subject_id: SubjectId,
    /// When, RFC 3339.
    pub erased_at: String,
}

/// An erasure's certificate, and the same as a JWS.
#[derive(Debug, Clone, Serialize)]
pub struct SignedCertificate {
    /// The certificate, readable.
    pub certificate: Certificate,
    /// The same, signed: what `custos receipt verify` checks.
    pub jws: String,
}

impl Vault {
    /// Erases a subject: deletes their records and blind-index entries and destroys their
    /// data key, in one transaction with the audit entry, keeping only what a legal hold or a
    /// `legal_obligation` purpose requires (the key then survives for those records alone);
    /// marks the subject erased and puts them on the erasure list. Consent events and audit
    /// entries stay: they hold no personal value. Returns the signed certificate.
    ///
    /// # Errors
    /// `Forbidden` without `handle_requests`; `NotFound` for an unknown or already erased
    /// subject; `Conflict` when the subject's records changed meanwhile (try again).
    pub async fn erase_subject(
        &self,
        p: &Principal,
        subject: SubjectId,
    ) -> Result<SignedCertificate, VaultError> {
        self.authorize(p, &Act::EraseSubject { subject })?;
        // Planned again when a rotation replaced the subject's key meanwhile: what is kept
        // is written back as stored, under the key it is sealed with.
        for _ in 0..KEY_ATTEMPTS {
            let erasure = self.plan_erasure(p, subject).await?;
            let erased_ms = erasure.erased_ms;
            match self.store.erase_subject(erasure).await {
                Err(StoreError::KeyChanged) => continue,
                Err(StoreError::NotFound) => return Err(VaultError::NotFound("subject")),
                Err(e) => return Err(e.into()),
                Ok(()) => {
                    self.journal_erasure(subject, erased_ms);
                    return self.certificate_of(subject).await;
                }
            }
        }
        Err(VaultError::Conflict(KEY_CHANGED_AGAIN.into()))
    }

    /// What erasing `subject` now does, from its records and the holds on them.
    async fn plan_erasure(&self, p: &Principal, subject: SubjectId) -> Result<Erasure, VaultError> {
        if self.store.subject_key(subject).await?.is_none() {
            return Err(VaultError::NotFound("subject"));
        }
        let records = self.store.subject_records(subject).await?;
        let held: HashSet<RecordId> = self
            .store
            .holds()
            .await?
            .into_iter()
            .filter(|h| h.subject_id == subject)
            .map(|h| h.record_id)
            .collect();
        let plan_input: Vec<Held<'_>> = records
            .iter()
            .map(|r| Held {
                id: r.record.id,
                collection: &r.record.collection,
                fields: r.record.fields.keys().map(String::as_str).collect(),
                on_hold: held.contains(&r.record.id),
            })
            .collect();
        let (fates, summary) = plan(&self.inventory, subject, &plan_input);
        let erased_ms = self.now_ms();
        let mut erasure = Erasure {
            subject_id: subject,
            erase: Vec::new(),
            trim: Vec::new(),
            remaining: 0,
            destroy_key: summary.key_destroyed,
            erased_ms,
            audit: QueuedAudit {
                subject_id: Some(subject),
                entry: Vec::new(),
            },
        };
        for ((id, fate), rec) in fates.into_iter().zip(&records) {
            match fate {
                Fate::Erase => erasure.erase.push((id, rec.record.version)),
                Fate::Keep => erasure.remaining += 1,
                Fate::Trim(keep) => {
                    let mut fields = rec.record.fields.clone();
                    let removed: Vec<String> = fields
                        .keys()
                        .filter(|f| !keep.contains(f))
                        .cloned()
                        .collect();
                    fields.retain(|f, _| keep.contains(f));
                    erasure.trim.push(Trim {
                        id,
                        version: rec.record.version,
                        fields,
                        removed,
                    });
                    erasure.remaining += 1;
                }
            }
        }
        let mut entry = AuditEntry::new(p.actor(), Action::SubjectErase, Outcome::Ok);
        entry.subject_id = Some(subject);
        entry.erasure = Some(summary);
        erasure.audit.entry = entry.to_bytes();
        Ok(erasure)
    }

    /// The certificate of a subject's erasure, signed again now.
    ///
    /// # Errors
    /// `Forbidden` without `read_requests` or `handle_requests` (but for the customer themself); `NotFound` when the
    /// subject was not erased; `Unavailable` when the erasure is not yet in a signed head.
    pub async fn erasure_certificate(
        &self,
        p: &Principal,
        subject: SubjectId,
    ) -> Result<SignedCertificate, VaultError> {
        self.authorize(
            p,
            &Act::ReadErasures {
                subject: Some(subject),
            },
        )?;
        if self.store.erasure(subject).await?.is_none() {
            return Err(VaultError::NotFound("erasure"));
        }
        self.certificate_of(subject).await
    }

    /// The erasure list: every subject erased, oldest first. What a restore must re-apply; no
    /// personal value.
    ///
    /// # Errors
    /// `Forbidden` without `read_requests` or `handle_requests`; store failures.
    pub async fn erasures(&self, p: &Principal) -> Result<Vec<ErasureView>, VaultError> {
        self.authorize(p, &Act::ReadErasures { subject: None })?;
        Ok(self
            .store
            .erasures()
            .await?
            .into_iter()
            .map(|e| ErasureView {
                subject_id: e.subject_id,
                erased_at: format_time_ms(e.erased_ms),
            })
            .collect())
    }

    /// Builds and signs the certificate from the erasure's audit entry, sequencing the log
    /// first if the entry is still queued.
    async fn certificate_of(&self, subject: SubjectId) -> Result<SignedCertificate, VaultError> {
        let is_erasure = |e: &AuditEntry| e.action == Action::SubjectErase;
        let index = self
            .find_subject_entry(subject, is_erasure)
            .await?
            .ok_or_else(|| {
                VaultError::Unavailable(
                    "the erasure is not in the audit log yet: retry shortly".into(),
                )
            })?;
        let (log, entry) = self.log_proof(index).await?;
        let summary = entry
            .erasure
            .clone()
            .filter(|s| s.subject_id == subject)
            .ok_or_else(|| {
                VaultError::Integrity("the erasure entry is not this subject's".into())
            })?;
        let org = &self.inventory.organization;
        let certificate = Certificate {
            version: CERTIFICATE_VERSION.to_owned(),
            issued_at: format_time_ms(self.now_ms()),
            subject_id: subject,
            controller: Controller {
                name: org.name.clone(),
                contact: org.contact.clone(),
            },
            erased_at: entry.time.clone(),
            statement: certificate::statement(&org.name, &summary),
            erasure: summary,
            log,
            public_key: self.log_public_key(),
        };
        let jws = certificate::sign(&certificate, &self.keys.signer);
        Ok(SignedCertificate { certificate, jws })
    }
}
