//! What a signed-in customer does in the portal, each a right of the request desk exercised
//! by the subject: a correction (rectification), a restriction, an objection, an opt-out of
//! sale or sharing, a download of everything (access), a request for erasure. Each is filed
//! as a request through the portal channel, verified by the sign-in, and (but for erasure,
//! which waits for staff) carried out and completed at once, so `custos requests list` shows
//! what the portal did and when.

use custos_core::audit::Action;
use custos_core::fields::{self, Mode};
use custos_core::ids::{RecordId, SubjectId};
use custos_core::inventory::FieldType;
use custos_core::personal::{PersonalFields, PersonalValue};
use custos_core::principal::Act;
use custos_core::rights::{Channel, RequestKind, RequestStatus};

use crate::requests::SelfService;
use crate::{
    ExportBytes, ExportFormat, NewRequest, Place, Principal, RequestFilter, RequestView, Vault,
    VaultError,
};

/// A value a customer corrects.
#[derive(Debug)]
pub struct Correction {
    /// The record's collection.
    pub collection: String,
    /// The record.
    pub record: RecordId,
    /// The field.
    pub field: String,
    /// The new value, as typed; validated as the API validates it.
    pub value: PersonalValue,
}

/// The subject a customer is signed in as; anyone else does not use the portal.
fn own_subject(p: &Principal) -> Result<SubjectId, VaultError> {
    p.own_subject().ok_or_else(|| {
        VaultError::Forbidden("only a customer signed in to the portal acts here".into())
    })
}

impl Vault {
    fn portal_request(subject: SubjectId, kind: RequestKind, purposes: Vec<String>) -> NewRequest {
        NewRequest {
            subject,
            kind,
            channel: Channel::Portal,
            received_at: None,
            place: Place::default(),
            purposes,
        }
    }

    /// Everything held about the signed-in customer, for the portal's page: the export,
    /// audited as `subject.view` (a look, not a file handed out).
    ///
    /// # Errors
    /// As [`Vault::export_subject`].
    pub async fn view_own(&self, p: &Principal) -> Result<crate::SubjectExport, VaultError> {
        let subject = own_subject(p)?;
        self.export_as(p, subject, Action::SubjectView).await
    }

    /// A customer corrects one value of their own record (GDPR Art. 16): validated exactly
    /// as the API validates a change, before anything is filed; then a rectification request
    /// is filed, verified by the sign-in, carried out (audited as `record.rectify`, naming the
    /// request) and completed.
    ///
    /// # Errors
    /// `NotFound` for a record not in the collection; `Forbidden` for another subject's
    /// record; `Invalid` naming the field and the rule for a bad value (nothing is filed or
    /// changed); `Conflict` when the subject was erased.
    pub async fn rectify(&self, p: &Principal, c: Correction) -> Result<RequestView, VaultError> {
        let own = own_subject(p)?;
        let coll = self.collection(&c.collection)?;
        let rec = self
            .store
            .record(&c.collection, c.record)
            .await?
            .ok_or(VaultError::NotFound("record"))?;
        let subject = rec.record.subject_id;
        self.authorize(p, &Act::Rectify { subject })?;
        debug_assert_eq!(own, subject);
        if coll
            .fields
            .get(&c.field)
            .is_some_and(|d| d.ty == FieldType::Email && d.searchable)
        {
            // Changing the address one signs in with needs proof of the new one (a code sent
            // to it) and word to the old one; until the portal has both, staff change it.
            return Err(VaultError::invalid(
                &c.field,
                "sign_in_address",
                format!(
                    "is the address you sign in with: to change it, write to {}",
                    self.inventory.organization.contact
                ),
            ));
        }
        let body: PersonalFields = [(c.field.clone(), c.value)].into_iter().collect();
        let values = fields::validate_record(coll, &body, Mode::Patch, self.context())?;
        let filed = self
            .file_request(
                p,
                Self::portal_request(subject, RequestKind::Rectification, Vec::new()),
            )
            .await?;
        self.self_served(p, filed.id, filed.kind, SelfService::CarryOut)
            .await?;
        self.change_fields(
            p,
            &c.collection,
            c.record,
            &values,
            Action::RecordRectify,
            Some(filed.id),
        )
        .await?;
        self.complete_self_served(p, filed.id, format!("corrected {} in the portal", c.field))
            .await
    }

    /// A customer restricts processing, objects (to the purposes named, or to every purpose
    /// on legitimate interests or a public task), or opts out of sale or sharing: filed,
    /// verified by the sign-in, recorded in the consent ledger and completed at once.
    ///
    /// # Errors
    /// `Invalid` for another kind, or purposes an objection cannot name; `Forbidden` for
    /// anyone but a signed-in customer.
    pub async fn exercise_choice(
        &self,
        p: &Principal,
        kind: RequestKind,
        purposes: Vec<String>,
    ) -> Result<RequestView, VaultError> {
        let subject = own_subject(p)?;
        if !matches!(
            kind,
            RequestKind::Restriction | RequestKind::Objection | RequestKind::OptOutSaleSharing
        ) {
            return Err(VaultError::invalid(
                "kind",
                "not_a_choice",
                "only a restriction, an objection or an opt-out is carried out at once",
            ));
        }
        let filed = self
            .file_request(p, Self::portal_request(subject, kind, purposes))
            .await?;
        self.self_served(p, filed.id, kind, SelfService::CarryOut)
            .await
    }

    /// A customer downloads everything held about them: an access request filed, verified by
    /// the sign-in, answered with the export (audited as `subject.export`) and completed.
    ///
    /// # Errors
    /// As [`Vault::export_subject`].
    pub async fn download_own(
        &self,
        p: &Principal,
        format: ExportFormat,
    ) -> Result<ExportBytes, VaultError> {
        let subject = own_subject(p)?;
        let filed = self
            .file_request(
                p,
                Self::portal_request(subject, RequestKind::Access, Vec::new()),
            )
            .await?;
        self.self_served(p, filed.id, filed.kind, SelfService::CarryOut)
            .await?;
        let export = self.export_subject(p, subject).await?;
        let bytes = export.render(format)?;
        self.complete_self_served(
            p,
            filed.id,
            "answered in the portal: the subject downloaded the export".to_owned(),
        )
        .await?;
        Ok(bytes)
    }

    /// A customer asks for erasure (confirmed twice in the page): filed and verified by the
    /// sign-in, it waits for staff to approve it (who see what the law keeps). Asking again
    /// while one is open returns the open one.
    ///
    /// # Errors
    /// `Forbidden` for anyone but a signed-in customer; store failures.
    pub async fn ask_erasure(&self, p: &Principal) -> Result<RequestView, VaultError> {
        let subject = own_subject(p)?;
        let open = self
            .requests(
                p,
                RequestFilter {
                    subject: Some(subject),
                    kind: Some(RequestKind::Erasure),
                    ..RequestFilter::default()
                },
            )
            .await?
            .into_iter()
            .find(|r| !r.status.is_closed());
        if let Some(r) = open {
            return Ok(r);
        }
        let filed = self
            .file_request(
                p,
                Self::portal_request(subject, RequestKind::Erasure, Vec::new()),
            )
            .await?;
        let view = self
            .self_served(p, filed.id, filed.kind, SelfService::Verify)
            .await?;
        debug_assert_eq!(view.status, RequestStatus::Verifying);
        Ok(view)
    }
}
