//! What every document Custos signs has in common: a JWS in compact serialisation (RFC 7515)
//! signed with the log's Ed25519 key (`"alg": "EdDSA"`, RFC 8037), carrying the audit entry it
//! stands for with its RFC 9162 inclusion proof and the signed tree head that commits to it.
//! Consent receipts and erasure certificates are built on it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEntry, SignedTreeHead, TreeHead};
use crate::merkle::{self, Hash};

/// Why a signed document does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignedError {
    /// Not a JWS of the expected document.
    #[error("not a signed document of this kind: {0}")]
    Malformed(String),
    /// The JWS signature does not verify.
    #[error("the signature does not verify with key {0}")]
    BadSignature(String),
    /// The signed tree head does not verify.
    #[error("the tree head in the document is not signed by key {0}")]
    BadHead(String),
    /// The inclusion proof does not lead to the signed root.
    #[error("the audit entry is not in the signed tree: its inclusion proof does not verify")]
    NotIncluded,
    /// The document says one thing and its audit entry another.
    #[error("the document does not match its audit entry: {0}")]
    Mismatch(String),
}

/// An entry's place in the audit log, and the signed head that commits to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogProof {
    /// The entry's index.
    pub leaf_index: u64,
    /// The entry's exact bytes (the Merkle leaf input), as UTF-8 JSON.
    pub entry: String,
    /// The RFC 9162 audit path, hex, leaf to root.
    pub inclusion_proof: Vec<String>,
    /// The tree size of the head.
    pub tree_size: u64,
    /// The root hash at that size, hex.
    pub root_hash: String,
    /// When the head was signed, ms since the epoch.
    pub timestamp_ms: u64,
    /// The Ed25519 signature over the head, hex.
    pub signature: String,
}

pub(crate) fn unhex<const N: usize>(what: &str, s: &str) -> Result<[u8; N], SignedError> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SignedError::Malformed(format!("{what} is not {N} bytes of hex")))
}

impl LogProof {
    /// Checks that the head is signed by `key`, that the entry is included in it at its
    /// index, and that the entry says it was sequenced there; returns the entry.
    ///
    /// # Errors
    /// The first check that fails.
    pub fn check(&self, key: &VerifyingKey) -> Result<AuditEntry, SignedError> {
        let key_hex = hex::encode(key.to_bytes());
        let head = SignedTreeHead {
            head: TreeHead {
                size: self.tree_size,
                root: unhex::<32>("log.root_hash", &self.root_hash)?,
                timestamp_ms: self.timestamp_ms,
            },
            signature: unhex::<64>("log.signature", &self.signature)?,
        };
        head.verify(key)
            .map_err(|_| SignedError::BadHead(key_hex))?;
        let proof = self
            .inclusion_proof
            .iter()
            .map(|h| unhex::<32>("log.inclusion_proof", h))
            .collect::<Result<Vec<Hash>, _>>()?;
        merkle::verify_inclusion(
            self.leaf_index,
            self.tree_size,
            &merkle::leaf_hash(self.entry.as_bytes()),
            &proof,
            &head.head.root,
        )
        .map_err(|_| SignedError::NotIncluded)?;
        let entry = AuditEntry::from_bytes(self.entry.as_bytes())
            .map_err(|_| SignedError::Malformed("log.entry is not an audit entry".into()))?;
        if entry.index != Some(self.leaf_index) {
            return Err(SignedError::Mismatch(
                "the entry was sequenced at another index".into(),
            ));
        }
        Ok(entry)
    }
}

/// Signs `payload` as a JWS of type `typ`.
pub(crate) fn sign_jws(typ: &str, payload: &impl Serialize, key: &SigningKey) -> String {
    let header = serde_json::json!({
        "alg": "EdDSA",
        "typ": typ,
        "kid": hex::encode(key.verifying_key().to_bytes()),
    });
    let signing_input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(serde_json::to_vec(payload).expect("a signed document always serialises"))
    );
    let sig = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", B64.encode(sig.to_bytes()))
}

/// A JWS taken apart, its signature not yet checked.
pub(crate) struct Opened {
    /// The header's `typ`.
    pub(crate) typ: String,
    /// The payload's bytes.
    pub(crate) payload: Vec<u8>,
    signing_input: String,
    signature: [u8; 64],
}

/// The `typ` a JWS declares, if it is readable.
pub fn jws_type(jws: &str) -> Option<String> {
    open_jws(jws).ok().map(|o| o.typ)
}

pub(crate) fn open_jws(jws: &str) -> Result<Opened, SignedError> {
    let malformed = |m: &str| SignedError::Malformed(m.to_owned());
    let parts: Vec<&str> = jws.trim().split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err(malformed("a JWS has three dot-separated parts"));
    };
    let header: serde_json::Value = B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| malformed("the JWS header is not base64url JSON"))?;
    if header["alg"] != "EdDSA" {
        return Err(malformed("the JWS is not signed with EdDSA"));
    }
    let payload = B64
        .decode(p)
        .map_err(|_| malformed("the JWS payload is not base64url"))?;
    let signature = B64
        .decode(s)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or_else(|| malformed("the JWS signature is not 64 bytes of base64url"))?;
    Ok(Opened {
        typ: header["typ"].as_str().unwrap_or_default().to_owned(),
        payload,
        signing_input: format!("{h}.{p}"),
        signature,
    })
}

impl Opened {
    /// Checks the signature with the trusted key, or else the key the document carries
    /// (`own`, hex); returns the key that was used.
    pub(crate) fn check_signature(
        &self,
        own: &str,
        trusted: Option<&VerifyingKey>,
    ) -> Result<VerifyingKey, SignedError> {
        let own = VerifyingKey::from_bytes(&unhex::<32>("public_key", own)?)
            .map_err(|_| SignedError::Malformed("public_key is not an Ed25519 key".into()))?;
        let key = trusted.copied().unwrap_or(own);
        let key_hex = hex::encode(key.to_bytes());
        if key != own {
            return Err(SignedError::BadSignature(key_hex));
        }
        key.verify(
            self.signing_input.as_bytes(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| SignedError::BadSignature(key_hex))?;
        Ok(key)
    }
}

/// Reads a published Ed25519 public key: 64 hex digits.
///
/// # Errors
/// `Malformed` when it is not one.
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, SignedError> {
    VerifyingKey::from_bytes(&unhex::<32>("the public key", s.trim())?)
        .map_err(|_| SignedError::Malformed("the public key is not an Ed25519 key".into()))
}
