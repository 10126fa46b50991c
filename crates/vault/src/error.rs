//! The vault's error: what the domain refused, separate from what storage failed.

use custos_core::fields::FieldError;
use custos_store::StoreError;

/// Why a use case did not complete.
///
/// Not `#[non_exhaustive]`, unlike our other library errors: the server answers each variant
/// with its own status and code in one exhaustive match, so a new variant must fail to compile
/// there rather than fall into a catch-all answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VaultError {
    /// No credentials, or unknown or revoked ones.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The thing named does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is malformed: a required parameter is missing or unreadable.
    #[error("{message}")]
    BadRequest {
        /// The parameter at fault.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The inventory says no: unknown collection or purpose, undeclared field, invalid value.
    #[error("{message}")]
    Invalid {
        /// The field or parameter at fault.
        field: Option<String>,
        /// Which kind of refusal this is.
        kind: InvalidKind,
        /// The rule broken.
        rule: String,
        /// What the rule expects.
        message: String,
    },
    /// A conflicting change or a name already taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A data-subject request's state machine refuses the transition asked for.
    #[error("{message}")]
    TransitionRefused {
        /// The rule the transition would break, in stable snake_case (`already_extended`).
        rule: &'static str,
        /// What the rule says.
        message: String,
    },
    /// A step of signing in to the portal was refused: the customer is told the same
    /// whatever the reason, the audit log which.
    #[error("sign-in refused: {0}")]
    SigninRefused(custos_core::signin::SigninRefusal),
    /// A login to the console was refused: the person is told the same whatever the reason
    /// (unless the account is locked), the audit log which.
    #[error("login refused: {}", .0.as_str())]
    LoginRefused(custos_core::operator::LoginRefusal),
    /// Storage is unreachable for now.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The vault cannot start: configuration, key or inventory problems.
    #[error("{0}")]
    Setup(String),
    /// Stored data failed a check (a ciphertext failed authentication, a row is unreadable).
    #[error("stored data failed an integrity check: {0}")]
    Integrity(String),
    /// Anything else; the message is for logs, never for a response body.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Which kind of [`VaultError::Invalid`] a refusal is: a name that refers to nothing the
/// inventory declares or the vault holds, or a value that breaks a rule. Callers that answer
/// each kind differently (the server's error codes) match on this, never on the rule's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// The collection named is not declared.
    UnknownCollection,
    /// The purpose named is not declared.
    UnknownPurpose,
    /// A field named is not declared for the collection.
    UndeclaredField,
    /// The subject named does not exist.
    UnknownSubject,
    /// A field or parameter breaks the rule named in `rule`.
    Field,
}

impl VaultError {
    /// A value that breaks `rule`: [`InvalidKind::Field`].
    pub(crate) fn invalid(
        field: impl Into<String>,
        rule: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::invalid_as(InvalidKind::Field, field, rule, message)
    }

    /// A refusal of the given kind.
    pub(crate) fn invalid_as(
        kind: InvalidKind,
        field: impl Into<String>,
        rule: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        VaultError::Invalid {
            field: Some(field.into()),
            kind,
            rule: rule.into(),
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(field: &str, message: impl Into<String>) -> Self {
        VaultError::BadRequest {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl From<FieldError> for VaultError {
    fn from(e: FieldError) -> Self {
        // `core` names its rules as text only; this is the one place that text picks a kind.
        let kind = if e.rule == "undeclared_field" {
            InvalidKind::UndeclaredField
        } else {
            InvalidKind::Field
        };
        VaultError::Invalid {
            message: e.to_string(),
            field: Some(e.field),
            kind,
            rule: e.rule.into(),
        }
    }
}

impl From<custos_core::mail::MailError> for VaultError {
    fn from(e: custos_core::mail::MailError) -> Self {
        use custos_core::mail::MailError;
        let (field, rule) = match &e {
            MailError::Recipient(_) => ("to", "mail_recipient"),
            MailError::Subject(_) => ("subject", "mail_subject"),
            MailError::Text(_) => ("text", "mail_text"),
            // A stored message that does not read back, or any later kind: not the caller's.
            _ => return VaultError::Integrity(e.to_string()),
        };
        VaultError::invalid(field, rule, e.to_string())
    }
}

impl From<custos_core::rights::TransitionError> for VaultError {
    fn from(e: custos_core::rights::TransitionError) -> Self {
        VaultError::TransitionRefused {
            rule: e.rule(),
            message: e.to_string(),
        }
    }
}

/// How many times a write sealed under a subject's key is sealed again when a rotation
/// replaced the key meanwhile (`StoreError::KeyChanged`), before the caller is told.
pub(crate) const KEY_ATTEMPTS: usize = 5;
/// What the caller is told then.
pub(crate) const KEY_CHANGED_AGAIN: &str = "the customer's data key is being replaced; try again";
/// What a caller is told when the blind-index keys changed on every attempt.
pub(crate) const INDEX_CHANGED_AGAIN: &str =
    "the blind-index keys changed on every attempt (a rotation is beginning or ending); try again";

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => VaultError::NotFound("record"),
            StoreError::Conflict(m) => VaultError::Conflict(m),
            StoreError::KeyChanged => VaultError::Conflict(KEY_CHANGED_AGAIN.into()),
            StoreError::IndexChanged => VaultError::Conflict(INDEX_CHANGED_AGAIN.into()),
            StoreError::Unavailable(m) => VaultError::Unavailable(m),
            StoreError::Corrupt(m) => VaultError::Integrity(m),
            StoreError::SchemaTooNew { .. } | StoreError::SchemaTooOld { .. } => {
                VaultError::Setup(e.to_string())
            }
            other => VaultError::Internal(other.to_string()),
        }
    }
}

impl From<custos_core::crypto::CryptoError> for VaultError {
    fn from(e: custos_core::crypto::CryptoError) -> Self {
        use custos_core::crypto::CryptoError;
        match e {
            // The token or the system failed, not the data: worth trying again.
            CryptoError::Token(_) | CryptoError::Rng => VaultError::Unavailable(e.to_string()),
            _ => VaultError::Integrity(e.to_string()),
        }
    }
}
