//! Audit entries and signed tree heads. An entry says who did what to which record of which
//! subject, for which purpose, touching which fields, with which outcome; it never holds a
//! personal value.

use ed25519_dalek::{Signature, Signer, Verifier};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::access::WithholdReason;
use crate::consent::ConsentEvent;
use crate::erasure::ErasureSummary;
use crate::ids::{RecordId, RequestId, SubjectId};
use crate::merkle::Hash;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Action {
    /// A record was created.
    #[serde(rename = "record.create")]
    RecordCreate,
    /// A record's personal data was read.
    #[serde(rename = "record.read")]
    RecordRead,
    /// A record was changed.
    #[serde(rename = "record.update")]
    RecordUpdate,
    /// A record was deleted.
    #[serde(rename = "record.delete")]
    RecordDelete,
    /// A record was found through a blind index and read.
    #[serde(rename = "record.search")]
    RecordSearch,
    /// An API key was created.
    #[serde(rename = "apikey.create")]
    ApiKeyCreate,
    /// An API key was revoked.
    #[serde(rename = "apikey.revoke")]
    ApiKeyRevoke,
    /// The audit trail of a subject was read.
    #[serde(rename = "audit.read")]
    AuditRead,
    /// The whole vault was copied to another database.
    #[serde(rename = "database.copy")]
    DatabaseCopy,
    /// A subject's choice was recorded in the consent ledger: the entry carries the event.
    #[serde(rename = "consent.record")]
    ConsentRecord,
    /// A subject's consent ledger was read.
    #[serde(rename = "consent.read")]
    ConsentRead,
    /// Retention deleted a record.
    #[serde(rename = "retention.delete")]
    RetentionDelete,
    /// Retention anonymised a record: what could identify anyone was deleted, the rest kept in
    /// a record of no one.
    #[serde(rename = "retention.anonymise")]
    RetentionAnonymise,
    /// Retention erased some fields of a record.
    #[serde(rename = "retention.erase")]
    RetentionErase,
    /// A legal hold was placed on a record.
    #[serde(rename = "legal_hold.place")]
    LegalHoldPlace,
    /// A legal hold was released.
    #[serde(rename = "legal_hold.release")]
    LegalHoldRelease,
    /// A subject was erased: the entry carries what was erased and what kept, and why.
    #[serde(rename = "subject.erase")]
    SubjectErase,
    /// A data-subject request was filed: the entry names the request, its subject, and the
    /// fields read to place the subject under a profile.
    #[serde(rename = "request.file")]
    RequestFile,
    /// The reasons of a data-subject request were read: `fields` names which
    /// (`extension_reason`, `rejection_reason`), which staff wrote and may name a person.
    #[serde(rename = "request.read")]
    RequestRead,
    /// A data-subject request moved on (verified, approved, extended, rejected, completed):
    /// `detail` names the transition and where it led, never its reason.
    #[serde(rename = "request.transition")]
    RequestTransition,
    /// Retention deleted the record of a request closed longer ago than it is kept.
    #[serde(rename = "retention.request_delete")]
    RetentionRequestDelete,
    /// Everything held about a subject was exported, decrypted, for the subject (access and
    /// portability); the entry names the fields exported.
    #[serde(rename = "subject.export")]
    SubjectExport,
    /// A customer saw everything held about them in the privacy portal: decrypted as for an
    /// export, shown in the page rather than handed out as a file.
    #[serde(rename = "subject.view")]
    SubjectView,
    /// A customer corrected a value of their own record in the portal (GDPR Art. 16): the
    /// entry names the fields changed and the rectification request.
    #[serde(rename = "record.rectify")]
    RecordRectify,
    /// A one-time sign-in code was asked for: `detail` carries the address's keyed digest
    /// (never the address) and whether a code was sent or why not.
    #[serde(rename = "signin.code")]
    SigninCode,
    /// A customer signed in to the portal with a code.
    #[serde(rename = "signin")]
    Signin,
    /// A sign-in failed: `detail` says why (`wrong_code`, `expired`, `locked`, ...).
    #[serde(rename = "signin.failed")]
    SigninFailed,
    /// A customer signed out of the portal.
    #[serde(rename = "signout")]
    Signout,
    /// An operator was added: `detail` names their role; the setup link is never logged.
    #[serde(rename = "operator.add")]
    OperatorAdd,
    /// An operator chose their password with the setup link.
    #[serde(rename = "operator.password")]
    OperatorPassword,
    /// An operator enrolled their second factor and was given recovery codes.
    #[serde(rename = "operator.enrol")]
    OperatorEnrol,
    /// An operator signed in to the console: `detail` says with which second factor.
    #[serde(rename = "operator.login")]
    OperatorLogin,
    /// A login to the console failed: `detail` says why (`wrong_password`, `wrong_code`,
    /// `locked`, `unknown_address` with the address's keyed digest, ...).
    #[serde(rename = "operator.login_failed")]
    OperatorLoginFailed,
    /// An operator's account was locked after failed logins: `detail` says until when.
    #[serde(rename = "operator.lockout")]
    OperatorLockout,
    /// An operator used one of their recovery codes: `detail` says how many are left.
    #[serde(rename = "operator.recovery_code")]
    OperatorRecoveryCode,
    /// An operator signed out of the console.
    #[serde(rename = "operator.signout")]
    OperatorSignout,
    /// An operator was disabled: every session of theirs ended.
    #[serde(rename = "operator.disable")]
    OperatorDisable,
    /// An operator's lock after failed logins was lifted by staff.
    #[serde(rename = "operator.unlock")]
    OperatorUnlock,
    /// An operator's password and second factor were reset, with a new setup link.
    #[serde(rename = "operator.reset_mfa")]
    OperatorResetMfa,
    /// Canary records were planted: `detail` says how many and in which collection (their
    /// ids are printed once, never logged).
    #[serde(rename = "canary.plant")]
    CanaryPlant,
    /// An alert was raised: `detail` names it, its kind and whom it is about.
    #[serde(rename = "alert.raise")]
    AlertRaise,
    /// An alert was acknowledged by staff.
    #[serde(rename = "alert.acknowledge")]
    AlertAcknowledge,
    /// A webhook delivery was attempted: `detail` names the alert, the URL and the answer.
    #[serde(rename = "webhook.deliver")]
    WebhookDeliver,
    /// An incident was opened.
    #[serde(rename = "incident.open")]
    IncidentOpen,
    /// An incident changed: `detail` says how (facts, a step, containment, the decision).
    #[serde(rename = "incident.update")]
    IncidentUpdate,
    /// A subject's breach notice was queued: the entry names the address field read.
    #[serde(rename = "breach.notify")]
    BreachNotify,
    /// A blast radius was computed from the log: `detail` names the caller and the window.
    #[serde(rename = "breach.blast_radius")]
    BlastRadius,
    /// A root key version was created: `detail` names it.
    #[serde(rename = "root_key.add")]
    RootKeyAdd,
    /// A rotation finished: every key the root key wraps is wrapped by the version `detail`
    /// names, with how many were wrapped again.
    #[serde(rename = "root_key.rotate")]
    RootKeyRotate,
    /// A root key version that wrapped nothing any more was retired: `detail` names it.
    #[serde(rename = "root_key.retire")]
    RootKeyRetire,
    /// A rotation of subjects' data keys finished: every subject whose key was older than the
    /// age `detail` names has a new one, with how many were replaced.
    #[serde(rename = "subject_keys.rotate")]
    SubjectKeysRotate,
    /// A blind-index rotation finished: every record is indexed under the key version
    /// `detail` names, with how many were indexed again; the old key is gone.
    #[serde(rename = "index_keys.rotate")]
    IndexKeysRotate,
    /// A backup was made: `detail` says of how many rows and audit entries (never where it
    /// was written, which may name a person's machine).
    #[serde(rename = "backup.create")]
    BackupCreate,
    /// The database was restored from a backup: `detail` says from when, and how many
    /// subjects erased since were erased again.
    #[serde(rename = "backup.restore")]
    BackupRestore,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused by policy.
    Denied,
    /// Tried and failed (a webhook delivery that was not acknowledged).
    Failed,
}

/// A field withheld from a read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withheld {
    /// The field's name.
    pub field: String,
    /// Why it was withheld.
    pub reason: WithholdReason,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The entry's position in the log, set by the sequencer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// When, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Who: `apikey:NAME` or `cli`.
    pub actor: String,
    /// What.
    pub action: Action,
    /// Which collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// Which record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<RecordId>,
    /// Which subject (a pseudonymous id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<SubjectId>,
    /// Which data-subject request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    /// For which purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The fields written or returned (names only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The fields withheld, with reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<Withheld>,
    /// A non-personal detail, such as the name of an API key created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The consent-ledger event this entry records, whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentEvent>,
    /// The erasure this entry records: names and counts, never a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure: Option<ErasureSummary>,
    /// How it ended.
    pub outcome: Outcome,
}

impl AuditEntry {
    /// A new entry of `action` by `actor`, now, with nothing else filled in.
    pub fn new(actor: impl Into<String>, action: Action, outcome: Outcome) -> Self {
        Self {
            index: None,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            actor: actor.into(),
            action,
            collection: None,
            record_id: None,
            subject_id: None,
            request_id: None,
            purpose: None,
            fields: Vec::new(),
            withheld: Vec::new(),
            detail: None,
            consent: None,
            erasure: None,
            outcome,
        }
    }

    /// The entry's canonical bytes: its JSON serialisation. The leaf input of the Merkle tree.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an audit entry always serialises")
    }

    /// Reads an entry from its bytes.
    ///
    /// # Errors
    /// When the bytes are not an audit entry.
    pub fn from_bytes(b: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(b)
    }
}

/// The state of the log at a size: what a signature commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// The number of entries.
    pub size: u64,
    /// The RFC 6962 root hash over them.
    pub root: Hash,
    /// When the head was made, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

impl TreeHead {
    /// The exact bytes signed: a domain-separation label, then size, timestamp and root.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut m = b"custos-tree-head-v1\n".to_vec();
        m.extend_from_slice(&self.size.to_be_bytes());
        m.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        m.extend_from_slice(&self.root);
        m
    }

    /// Signs this head.
    pub fn sign(self, key: &SigningKey) -> SignedTreeHead {
        let signature = key.sign(&self.signing_message()).to_bytes();
        SignedTreeHead {
            head: self,
            signature,
        }
    }
}

/// A tree head and its Ed25519 signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedTreeHead {
    /// The head.
    pub head: TreeHead,
    /// The signature over [`TreeHead::signing_message`].
    pub signature: [u8; 64],
}

/// A tree head whose signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the signature on the tree head of size {0} does not verify")]
pub struct BadSignature(pub u64);

impl SignedTreeHead {
    /// Checks the signature with the log's public key.
    ///
    /// # Errors
    /// [`BadSignature`] when it does not verify.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), BadSignature> {
        let sig = Signature::from_bytes(&self.signature);
        key.verify(&self.head.signing_message(), &sig)
            .map_err(|_| BadSignature(self.head.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKey;

    #[test]
    fn entry_round_trips_and_names_no_value() {
        let mut e = AuditEntry::new("apikey:ops", Action::RecordRead, Outcome::Ok);
        e.purpose = Some("billing".into());
        e.fields = vec!["email".into()];
        e.withheld = vec![Withheld {
            field: "notes".into(),
            reason: WithholdReason::PurposeNotDeclared,
        }];
        let b = e.to_bytes();
        assert_eq!(AuditEntry::from_bytes(&b).unwrap(), e);
        let s = String::from_utf8(b).unwrap();
        assert!(
            s.contains("\"action\":\"record.read\"") && s.contains("purpose_not_declared"),
            "{s}"
        );
    }

    #[test]
    fn signed_heads_verify_and_tampering_is_caught() {
        let key = DataKey::generate(1).unwrap().to_signing_key();
        let head = TreeHead {
            size: 7,
            root: [9; 32],
            timestamp_ms: 1_700_000_000_000,
        };
        let sth = head.sign(&key);
        sth.verify(&key.verifying_key()).unwrap();
        let mut bad = sth;
        bad.head.size = 8;
        assert_eq!(bad.verify(&key.verifying_key()), Err(BadSignature(8)));
        let mut bad = sth;
        bad.head.root[0] ^= 1;
        assert!(bad.verify(&key.verifying_key()).is_err());
        let other = DataKey::generate(1).unwrap().to_signing_key();
        assert!(sth.verify(&other.verifying_key()).is_err());
    }
}
