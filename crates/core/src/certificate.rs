//! Erasure certificates: the proof a customer keeps that they were erased. It names the
//! subject, the time, what was erased and what was kept and why, and carries the erasure's
//! audit entry with its inclusion proof and the signed tree head, as a JWS signed with the
//! log's Ed25519 key, so anyone can check it offline (`custos receipt verify`).

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::audit::Action;
use crate::erasure::{ErasureSummary, KeptBecause};
use crate::ids::SubjectId;
use crate::receipt::Controller;
use crate::signed::{LogProof, SignedError, open_jws, sign_jws};

/// The certificate format's version.
pub const CERTIFICATE_VERSION: &str = "custos-erasure-certificate-1";
/// The JWS `typ` of a certificate.
pub const JWS_TYPE: &str = "custos-erasure-certificate+jws";

/// An erasure certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// [`CERTIFICATE_VERSION`].
    pub version: String,
    /// When the certificate was issued, RFC 3339.
    pub issued_at: String,
    /// The subject erased: a pseudonymous id.
    pub subject_id: SubjectId,
    /// Who erased them.
    pub controller: Controller,
    /// When, RFC 3339: the erasure entry's time.
    pub erased_at: String,
    /// What was erased and what kept.
    pub erasure: ErasureSummary,
    /// The same in words.
    pub statement: String,
    /// The erasure's place in the audit log.
    pub log: LogProof,
    /// The log's Ed25519 public key, hex: it signs the head and the certificate.
    pub public_key: String,
}

/// The erasure in plain words, from its summary.
pub fn statement(controller: &str, summary: &ErasureSummary) -> String {
    let erased: u64 = summary.records_erased.values().sum();
    let mut s = format!(
        "{controller} erased {erased} record{} of this person",
        if erased == 1 { "" } else { "s" }
    );
    if summary.key_destroyed {
        s.push_str(
            " and destroyed the key their data was encrypted with, so no copy of it can be read",
        );
    }
    s.push('.');
    for k in &summary.kept {
        let why = match &k.because {
            KeptBecause::LegalHold => "a legal hold stands on it".to_owned(),
            KeptBecause::LegalObligation { purposes } => {
                format!("the law requires it to be kept ({})", purposes.join(", "))
            }
        };
        s.push_str(&format!(
            " Kept: a {} record ({}), because {why}.",
            k.collection,
            k.fields.join(", ")
        ));
    }
    s
}

/// Signs a certificate: a JWS in compact serialisation.
pub fn sign(certificate: &Certificate, key: &SigningKey) -> String {
    sign_jws(JWS_TYPE, certificate, key)
}

/// Checks a certificate offline: the JWS signature, the signed tree head, the erasure entry's
/// inclusion in it, and that the entry records exactly the certificate's erasure, subject and
/// time. With `trusted`, the log's key must be that key; without, the certificate's own key is
/// used and only its internal consistency is proven.
///
/// # Errors
/// The first check that fails.
pub fn verify(jws: &str, trusted: Option<&VerifyingKey>) -> Result<Certificate, SignedError> {
    let opened = open_jws(jws)?;
    if opened.typ != JWS_TYPE {
        return Err(SignedError::Malformed(
            "the JWS is not an erasure certificate".into(),
        ));
    }
    let c: Certificate = serde_json::from_slice(&opened.payload).map_err(|_| {
        SignedError::Malformed("the JWS payload is not an erasure certificate".into())
    })?;
    let key = opened.check_signature(&c.public_key, trusted)?;
    let entry = c.log.check(&key)?;
    if entry.action != Action::SubjectErase
        || entry.subject_id != Some(c.subject_id)
        || entry.erasure.as_ref() != Some(&c.erasure)
        || entry.time != c.erased_at
        || c.erasure.subject_id != c.subject_id
        || c.statement != statement(&c.controller.name, &c.erasure)
    {
        return Err(SignedError::Mismatch(
            "its subject, time or what it says was erased differ from the erasure's entry".into(),
        ));
    }
    Ok(c)
}
