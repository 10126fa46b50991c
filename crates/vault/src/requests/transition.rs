//! Moving a request on: each transition an update guarded by the version read and committed
//! with its audit entry, and what approving carries out.

use custos_core::audit::Action;
use custos_core::consent::{Choice, ConsentStatus, Source};
use custos_core::ids::{RequestId, SubjectId};
use custos_core::inventory::LegalBasis;
use custos_core::principal::Act;
use custos_core::rights::{RequestKind, Transition};
use custos_store::StoreError;

use super::stored::{self, EXTENSION_REASON, REJECTION_REASON, StoredStep};
use super::{RequestView, queued, request_entry};
use crate::{NewChoice, Principal, Vault, VaultError};

/// How far [`Vault::self_served`] takes a request its subject filed in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SelfService {
    /// Verified by the sign-in, then left for staff.
    Verify,
    /// Verified, approved and carried out.
    CarryOut,
}

/// What a step of a request filed in the portal says of the subject's identity.
pub(crate) const SIGNED_IN: &str =
    "identity verified: the subject signed in to the portal with a code sent to an address on file";

/// How often a transition is tried again when a concurrent change to the request won.
const ATTEMPTS: usize = 5;

/// Whether a kind is carried out through the consent ledger.
fn through_the_ledger(kind: RequestKind) -> bool {
    matches!(
        kind,
        RequestKind::Restriction | RequestKind::Objection | RequestKind::OptOutSaleSharing
    )
}

impl Vault {
    /// Moves a request on: acknowledge, verify, approve, extend or reject (with a reason told
    /// to the subject), complete. Each transition is one update guarded by the version read,
    /// with its audit entry; a reason is sealed under the subject's key. Approving a
    /// restriction, an objection or an opt-out of sale or sharing carries it out through the
    /// consent ledger, each choice audited, and completes it.
    ///
    /// # Errors
    /// `Forbidden` without `handle_requests`; `NotFound`; `TransitionRefused`
    /// naming the rule the state machine would see broken (`request_closed`,
    /// `already_extended`, ...); `Conflict` when concurrent changes kept winning.
    pub async fn transition(
        &self,
        p: &Principal,
        id: RequestId,
        t: Transition,
    ) -> Result<RequestView, VaultError> {
        self.authorize(p, &Act::HandleRequests)?;
        let approving = t == Transition::Approve;
        if t == Transition::Complete {
            let row = self
                .store
                .request(id)
                .await?
                .ok_or(VaultError::NotFound("request"))?;
            let body = stored::decode(&row)?;
            let r = &body.request;
            let calendar = &self.inventory.rights.calendar;
            if through_the_ledger(r.kind) && r.apply(t.clone(), self.now_ms(), calendar).is_ok() {
                // An approval whose carrying out was cut short (a crash between its steps)
                // is finished here: the choices still missing are recorded first.
                let done = self.record_choices(p, &body).await?;
                return self.step(p, id, t, done).await;
            }
            if r.kind == RequestKind::Erasure && r.apply(t.clone(), self.now_ms(), calendar).is_ok()
            {
                // An erasure request completes only with the subject erased: an approval
                // whose erasure failed (a conflict, an outage) is carried out here.
                let done = self.erase_for(p, r.subject).await?;
                return self.step(p, id, t, Some(done)).await;
            }
        }
        let view = self.step(p, id, t, None).await?;
        if approving {
            return self.carry_out(p, view).await;
        }
        Ok(view)
    }

    /// Moves a request its subject filed in the portal as far as the subject may take it.
    /// Their sign-in is the identity check, so the request is verified (where its kind needs
    /// it) with [`SIGNED_IN`] as the step's detail; to [`SelfService::CarryOut`], it is also
    /// approved and carried out at once (a restriction, objection or opt-out is recorded in
    /// the ledger and completed; an access or rectification request is left in progress for
    /// its use case to complete). To [`SelfService::Verify`], it then waits for staff (an
    /// erasure).
    pub(crate) async fn self_served(
        &self,
        p: &Principal,
        id: RequestId,
        kind: RequestKind,
        until: SelfService,
    ) -> Result<RequestView, VaultError> {
        let said = || Some(SIGNED_IN.to_owned());
        let verified = match kind.needs_verification() {
            true => Some(self.step(p, id, Transition::Verify, said()).await?),
            false => None,
        };
        match (until, verified) {
            (SelfService::Verify, Some(v)) => Ok(v),
            (SelfService::Verify, None) => self.request(p, id).await,
            (SelfService::CarryOut, _) => {
                let approved = self.step(p, id, Transition::Approve, said()).await?;
                self.carry_out(p, approved).await
            }
        }
    }

    /// Completes a request its subject's own use case answered in the portal (an access
    /// request answered by the download, a rectification by the correction).
    pub(crate) async fn complete_self_served(
        &self,
        p: &Principal,
        id: RequestId,
        detail: String,
    ) -> Result<RequestView, VaultError> {
        self.step(p, id, Transition::Complete, Some(detail)).await
    }

    /// Carries out a request just approved. What is done through the consent ledger, and an
    /// erasure, is done now and the request completed; the rest stays `in_progress` until
    /// staff complete it.
    async fn carry_out(
        &self,
        p: &Principal,
        approved: RequestView,
    ) -> Result<RequestView, VaultError> {
        match approved.kind {
            RequestKind::Restriction | RequestKind::Objection | RequestKind::OptOutSaleSharing => {
                let row = self
                    .store
                    .request(approved.id)
                    .await?
                    .ok_or(VaultError::NotFound("request"))?;
                let done = self.record_choices(p, &stored::decode(&row)?).await?;
                self.step(p, approved.id, Transition::Complete, done).await
            }
            // Approving an erasure erases: the subject's key is destroyed and the request
            // completes with what was erased and kept (the certificate is served by
            // `erasure_certificate`). A subject erased already is not an error: the request
            // asked for what is done.
            RequestKind::Erasure => {
                let done = self.erase_for(p, approved.subject_id).await?;
                self.step(p, approved.id, Transition::Complete, Some(done))
                    .await
            }
            // The subject export is the customer's to fetch (`export_subject`); approval starts
            // the work, and staff complete the request once the export is sent.
            RequestKind::Access | RequestKind::Portability => Ok(approved),
            // Staff correct the record through the records API, then complete the request.
            RequestKind::Rectification => Ok(approved),
        }
    }

    /// Erases the subject of an erasure request, or finds them erased already (the request
    /// asked for what is done); says what was done.
    async fn erase_for(&self, p: &Principal, subject: SubjectId) -> Result<String, VaultError> {
        match self.erase_subject(p, subject).await {
            Ok(signed) => {
                let e = &signed.certificate.erasure;
                let erased: u64 = e.records_erased.values().sum();
                Ok(format!("erased {erased} records, kept {}", e.kept.len()))
            }
            // Erased, though the certificate could not be signed yet: it is served later.
            Err(VaultError::Unavailable(_) | VaultError::NotFound(_))
                if self.store.erasure(subject).await?.is_some() =>
            {
                Ok("the subject is erased".to_owned())
            }
            Err(e) => Err(e),
        }
    }

    /// Records in the subject's consent ledger the choices a restriction, objection or
    /// opt-out asks for and the ledger does not already hold, each with its own audit entry;
    /// says what was recorded.
    async fn record_choices(
        &self,
        p: &Principal,
        body: &stored::Body,
    ) -> Result<Option<String>, VaultError> {
        let r = &body.request;
        let state = self.subject_state(r.subject).await?;
        let purposes = &self.inventory.purposes;
        let choices: Vec<(Choice, Option<String>)> = match r.kind {
            RequestKind::Restriction if !state.restricted => vec![(Choice::Restrict, None)],
            RequestKind::Objection => purposes
                .iter()
                .filter(|q| match body.purposes.is_empty() {
                    true => matches!(
                        q.legal_basis,
                        LegalBasis::LegitimateInterests | LegalBasis::PublicTask
                    ),
                    false => body.purposes.contains(&q.id),
                })
                .filter(|q| !state.purpose(&q.id).objected)
                .map(|q| (Choice::Object, Some(q.id.clone())))
                .collect(),
            RequestKind::OptOutSaleSharing => purposes
                .iter()
                .filter(|q| q.sale_or_sharing)
                .filter(|q| state.purpose(&q.id).consent != ConsentStatus::Withdrawn)
                .map(|q| (Choice::Withdraw, Some(q.id.clone())))
                .collect(),
            _ => Vec::new(),
        };
        let mut done = Vec::new();
        for (choice, purpose) in choices {
            let said = match &purpose {
                Some(q) => format!("{} {q}", choice.as_str()),
                None => choice.as_str().to_owned(),
            };
            let source = match p {
                Principal::Customer { .. } => Source::Portal,
                _ => Source::Api,
            };
            let new = NewChoice {
                choice,
                purpose,
                source,
                notice_version: None,
                collection_point: Some(format!("data-subject request {}", r.id)),
                user_agent: None,
                ip: None,
                expires_at: None,
                reason: None,
            };
            self.append_choice(&p.actor(), r.subject, new).await?;
            done.push(said);
        }
        Ok(Some(match done.is_empty() {
            true => "the consent ledger already held every choice asked for".to_owned(),
            false => format!("recorded in the consent ledger: {}", done.join(", ")),
        }))
    }

    /// One transition, applied to the request as stored and committed if the request did not
    /// change since it was read (tried again on the new state when it did).
    async fn step(
        &self,
        p: &Principal,
        id: RequestId,
        t: Transition,
        detail: Option<String>,
    ) -> Result<RequestView, VaultError> {
        let calendar = &self.inventory.rights.calendar;
        for _ in 0..ATTEMPTS {
            let row = self
                .store
                .request(id)
                .await?
                .ok_or(VaultError::NotFound("request"))?;
            let mut body = stored::decode(&row)?;
            let now = self.now_ms();
            body.request = body.request.apply(t.clone(), now, calendar)?;
            let key = self.subject_data_key(row.subject_id).await?;
            let mut reasons = row.reasons.clone();
            match &t {
                Transition::Extend(why) => {
                    stored::seal(&mut reasons, key.as_ref(), id, EXTENSION_REASON, why);
                }
                Transition::Reject(why) => {
                    stored::seal(&mut reasons, key.as_ref(), id, REJECTION_REASON, why);
                }
                _ => {}
            }
            body.history.push(StoredStep {
                transition: t.name().to_owned(),
                status: body.request.status,
                at_ms: now,
                by: p.actor(),
                detail: detail.clone(),
            });
            let mut e = request_entry(p, Action::RequestTransition, &body.request);
            e.detail = Some(match &detail {
                Some(d) => format!("{}: {}; {d}", t.name(), body.request.status),
                None => format!("{}: {}", t.name(), body.request.status),
            });
            let next = stored::row_of(&body, reasons, row.version);
            match self.store.update_request(next.clone(), queued(&e)).await {
                // Changed by another, or its subject's key replaced by a rotation: read again.
                Err(StoreError::Conflict(_) | StoreError::KeyChanged) => continue,
                Err(StoreError::NotFound) => return Err(VaultError::NotFound("request")),
                Err(e) => return Err(e.into()),
                Ok(()) => {
                    let mut v = self.request_views(p, std::slice::from_ref(&next)).await?;
                    return Ok(v.remove(0));
                }
            }
        }
        Err(VaultError::Conflict(
            "the request is being changed by others; try again".into(),
        ))
    }
}
