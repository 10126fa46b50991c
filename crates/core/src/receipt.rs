//! Consent receipts: what a subject chose, about what, when, and the proof that the choice is
//! in the audit log, signed so that anyone can check it offline.
//!
//! The receipt's fields follow ISO/IEC TS 27560:2023 (consent record information structure)
//! and the Kantara Consent Receipt v1.1 it succeeds, with one addition: the audit entry that
//! records the event, its RFC 9162 inclusion proof and the signed tree head it is included in.
//! It travels as a JWS in compact serialisation (RFC 7515), signed with the log's Ed25519 key
//! (`"alg": "EdDSA"`, RFC 8037).

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::consent::{Choice, ConsentEvent, Source};
use crate::ids::{EventId, SubjectId};
pub use crate::signed::LogProof;
use crate::signed::{SignedError, open_jws, sign_jws};

/// The receipt format's version.
pub const RECEIPT_VERSION: &str = "custos-consent-receipt-1";
/// The JWS `typ` of a receipt.
const JWS_TYPE: &str = "custos-consent-receipt+jws";

/// The controller, as the notice names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controller {
    /// Its name.
    pub name: String,
    /// How to reach it about personal data.
    pub contact: String,
}

/// A purpose the choice is about, as the notice described it when the receipt was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptPurpose {
    /// The purpose's identifier.
    pub purpose: String,
    /// What it means, in the notice's words.
    pub description: String,
    /// Its legal basis.
    pub legal_basis: String,
    /// The categories of personal data used for it.
    pub pii_categories: Vec<String>,
    /// Whether data is disclosed to third parties (processors) for it.
    pub third_party_disclosure: bool,
    /// Those third parties.
    pub third_party_names: Vec<String>,
    /// When consent ends: by withdrawal, or after a lapse.
    pub termination: String,
}

/// A consent receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// [`RECEIPT_VERSION`].
    pub version: String,
    /// The standards the fields follow.
    pub shaped_after: String,
    /// The receipt's id: the event's.
    pub receipt_id: EventId,
    /// When the receipt was issued, RFC 3339.
    pub issued_at: String,
    /// The subject (PII principal): a pseudonymous id.
    pub pii_principal_id: SubjectId,
    /// The controller.
    pub pii_controller: Controller,
    /// Where the notice is published.
    pub policy_url: String,
    /// The notice version the subject was shown, if the event names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_version: Option<String>,
    /// When the choice was recorded, RFC 3339.
    pub consent_timestamp: String,
    /// How it was collected.
    pub collection_method: Source,
    /// What the event did: `given`, `withdrawn`, `objected`, `objection_withdrawn`,
    /// `restricted` or `restriction_lifted`.
    pub state: String,
    /// The purposes it is about.
    pub purposes: Vec<ReceiptPurpose>,
    /// The event, as the ledger holds it.
    pub event: ConsentEvent,
    /// Its place in the audit log.
    pub log: LogProof,
    /// The log's Ed25519 public key, hex: it signs the head and the receipt.
    pub public_key: String,
}

/// The receipt's `state` for a choice.
pub fn state_of(choice: Choice) -> &'static str {
    match choice {
        Choice::Grant => "given",
        Choice::Withdraw => "withdrawn",
        Choice::Object => "objected",
        Choice::WithdrawObjection => "objection_withdrawn",
        Choice::Restrict => "restricted",
        Choice::LiftRestriction => "restriction_lifted",
    }
}

/// Why a receipt does not verify.
pub type ReceiptError = SignedError;

/// Signs a receipt: a JWS in compact serialisation.
pub fn sign(receipt: &Receipt, key: &SigningKey) -> String {
    sign_jws(JWS_TYPE, receipt, key)
}

/// Reads a published Ed25519 public key: 64 hex digits.
///
/// # Errors
/// `Malformed` when it is not one.
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, ReceiptError> {
    crate::signed::parse_public_key(s)
}

/// Checks a receipt offline: the JWS signature, the signed tree head, the audit entry's
/// inclusion in that head, and that the entry records exactly the receipt's event. With
/// `pinned`, the log's key must be that key (obtained apart from the receipt, for instance
/// from `GET /v1/audit/head`); without, the receipt's own key is used and only its internal
/// consistency is proven.
///
/// # Errors
/// The first check that fails.
pub fn verify(jws: &str, pinned: Option<&VerifyingKey>) -> Result<Receipt, ReceiptError> {
    let opened = open_jws(jws)?;
    let receipt: Receipt = serde_json::from_slice(&opened.payload)
        .map_err(|_| SignedError::Malformed("the JWS payload is not a consent receipt".into()))?;
    let key = opened.check_signature(&receipt.public_key, pinned)?;
    let entry = receipt.log.check(&key)?;
    if entry.consent.as_ref() != Some(&receipt.event) {
        return Err(ReceiptError::Mismatch(
            "the entry records another event".into(),
        ));
    }
    let e = &receipt.event;
    let purposes_match = match &e.purpose {
        Some(p) => receipt.purposes.len() == 1 && receipt.purposes[0].purpose == *p,
        // A restriction is about every purpose.
        None => true,
    };
    if receipt.receipt_id != e.id
        || receipt.pii_principal_id != e.subject_id
        || receipt.state != state_of(e.choice)
        || receipt.collection_method != e.source
        || receipt.notice_version != e.notice_version
        || receipt.consent_timestamp != crate::time::format_time_ms(e.at_ms)
        || !purposes_match
    {
        return Err(ReceiptError::Mismatch(
            "its id, subject, state, method, notice, time or purpose differ from the event".into(),
        ));
    }
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    use super::*;
    use crate::audit::{Action, AuditEntry, Outcome, TreeHead};
    use crate::consent::Evidence;
    use crate::crypto::DataKey;
    use crate::merkle;

    fn event() -> ConsentEvent {
        ConsentEvent {
            id: EventId::random(),
            subject_id: SubjectId::random(),
            choice: Choice::Grant,
            purpose: Some("marketing".into()),
            at_ms: 1_767_225_600_000,
            expires_ms: None,
            source: Source::WebForm,
            notice_version: Some("v1".into()),
            evidence: Evidence::default(),
            reason: None,
        }
    }

    /// A log of five entries whose entry 3 records `event`, and a receipt for it.
    fn issued(key: &SigningKey, event: &ConsentEvent) -> Receipt {
        let mut leaves = Vec::new();
        let mut entry_bytes = Vec::new();
        for i in 0..5u64 {
            let mut e = AuditEntry::new("cli", Action::RecordRead, Outcome::Ok);
            if i == 3 {
                e.action = Action::ConsentRecord;
                e.consent = Some(event.clone());
            }
            e.index = Some(i);
            let b = e.to_bytes();
            if i == 3 {
                entry_bytes = b.clone();
            }
            leaves.push(merkle::leaf_hash(&b));
        }
        let head = TreeHead {
            size: 5,
            root: merkle::root(&leaves),
            timestamp_ms: 1_767_225_601_000,
        }
        .sign(key);
        Receipt {
            version: RECEIPT_VERSION.into(),
            shaped_after: "ISO/IEC TS 27560:2023; Kantara Consent Receipt v1.1".into(),
            receipt_id: event.id,
            issued_at: "2026-01-01T00:00:02.000Z".into(),
            pii_principal_id: event.subject_id,
            pii_controller: Controller {
                name: "Example Shop Ltd".into(),
                contact: "privacy@shop.example".into(),
            },
            policy_url: "/privacy".into(),
            notice_version: event.notice_version.clone(),
            consent_timestamp: crate::time::format_time_ms(event.at_ms),
            collection_method: event.source,
            state: "given".into(),
            purposes: vec![ReceiptPurpose {
                purpose: "marketing".into(),
                description: "Newsletter".into(),
                legal_basis: "consent".into(),
                pii_categories: vec!["contact".into()],
                third_party_disclosure: false,
                third_party_names: vec![],
                termination: "on withdrawal".into(),
            }],
            event: event.clone(),
            log: LogProof {
                leaf_index: 3,
                entry: String::from_utf8(entry_bytes).unwrap(),
                inclusion_proof: merkle::inclusion_proof(3, &leaves)
                    .unwrap()
                    .iter()
                    .map(hex::encode)
                    .collect(),
                tree_size: 5,
                root_hash: hex::encode(head.head.root),
                timestamp_ms: head.head.timestamp_ms,
                signature: hex::encode(head.signature),
            },
            public_key: hex::encode(key.verifying_key().to_bytes()),
        }
    }

    fn key() -> SigningKey {
        DataKey::generate(1).unwrap().to_signing_key()
    }

    #[test]
    fn a_signed_receipt_verifies_with_its_key_and_with_the_pinned_key() {
        let k = key();
        let r = issued(&k, &event());
        let jws = sign(&r, &k);
        assert_eq!(verify(&jws, None).unwrap(), r);
        assert_eq!(verify(&jws, Some(&k.verifying_key())).unwrap(), r);
        let other = key();
        assert!(matches!(
            verify(&jws, Some(&other.verifying_key())),
            Err(ReceiptError::BadSignature(_))
        ));
    }

    #[test]
    fn every_alteration_is_caught() {
        let k = key();
        let r = issued(&k, &event());
        // The payload changed after signing.
        let jws = sign(&r, &k);
        let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
        let mut changed = r.clone();
        changed.state = "withdrawn".into();
        parts[1] = B64.encode(serde_json::to_vec(&changed).unwrap());
        assert!(matches!(
            verify(&parts.join("."), None),
            Err(ReceiptError::BadSignature(_))
        ));
        // Re-signed by the issuer's key, but the receipt no longer says what its entry says.
        assert!(matches!(
            verify(&sign(&changed, &k), None),
            Err(ReceiptError::Mismatch(_))
        ));
        let mut other_event = r.clone();
        other_event.event.purpose = Some("analytics".into());
        assert!(matches!(
            verify(&sign(&other_event, &k), None),
            Err(ReceiptError::Mismatch(_))
        ));
        // An entry that is not the one in the tree.
        let mut forged = r.clone();
        forged.log.entry = forged.log.entry.replace("web_form", "api");
        assert_eq!(
            verify(&sign(&forged, &k), None),
            Err(ReceiptError::NotIncluded)
        );
        // A head signed by someone else, with a receipt signed by that someone.
        let thief = key();
        let mut stolen = r.clone();
        stolen.public_key = hex::encode(thief.verifying_key().to_bytes());
        assert!(matches!(
            verify(&sign(&stolen, &thief), None),
            Err(ReceiptError::BadHead(_))
        ));
        assert!(matches!(
            verify("not.a.receipt", None),
            Err(ReceiptError::Malformed(_))
        ));
    }

    /// A receipt made whole by someone with a key of their own passes every internal check, so
    /// a verifier without a trusted key must not call it proven (issue 9).
    #[test]
    fn a_self_made_receipt_is_never_ok_without_a_trusted_key() {
        use crate::verify::{Signer, VerifyFileError, verify_file};
        let log = key();
        let forger = key();
        let forged = sign(&issued(&forger, &event()), &forger);
        let v = verify_file(&forged, None).unwrap();
        assert_eq!(
            v.signer,
            Signer::NotVerified(hex::encode(forger.verifying_key().to_bytes()))
        );
        assert!(matches!(
            verify_file(&forged, Some(&log.verifying_key())),
            Err(VerifyFileError::Signed(ReceiptError::BadSignature(_)))
        ));
        let genuine = sign(&issued(&log, &event()), &log);
        assert_eq!(
            verify_file(&genuine, Some(&log.verifying_key()))
                .unwrap()
                .signer,
            Signer::Trusted
        );
    }
}
