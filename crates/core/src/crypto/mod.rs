//! Envelope encryption, blind indexes and API-key digests, built only from audited primitives
//! (RustCrypto AES-256-GCM, HMAC-SHA256, SHA-256; Ed25519 from dalek).
//!
//! A root key (the key-encryption key) wraps one data key per subject and the vault's named
//! keys. A field ciphertext is bound by associated data to its record, collection and field,
//! and a queued message to its id, so a ciphertext copied anywhere else fails to decrypt.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::ids::{MailId, RecordId};
use crate::secret::Secret;

mod root;
pub use root::{RootKey, RootKeys, SealingKey, WrapContext, unwrap_with, wrap_with};

/// Length in bytes of every symmetric key here.
pub const KEY_LEN: usize = 32;
/// The algorithm byte that opens every ciphertext: AES-256-GCM with a random 96-bit nonce.
const ALG_AES256GCM: u8 = 1;
/// Length in bytes of an AES-GCM nonce here.
pub const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;

/// What can go wrong with keys and ciphertexts. Messages never carry key material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
    /// A ciphertext failed authentication: wrong key, wrong binding, or tampered bytes.
    #[error("ciphertext failed authentication")]
    Decrypt,
    /// A ciphertext is too short or names an unknown algorithm.
    #[error("ciphertext is malformed")]
    Malformed,
    /// A ciphertext or wrapped key names a key version that is not loaded.
    #[error("ciphertext was made with key version {0}, which is not available")]
    UnknownKeyVersion(u32),
    /// The root key file cannot be read as a key.
    #[error("root key file is malformed: {0}")]
    KeyFile(&'static str),
    /// A hardware token holding the root key could not seal or open (its own error, which
    /// never holds key material).
    #[error("the root key's token failed: {0}")]
    Token(String),
}

fn random_key() -> Result<Secret<[u8; KEY_LEN]>, CryptoError> {
    let mut k = [0u8; KEY_LEN];
    getrandom::fill(&mut k).map_err(|_| CryptoError::Rng)?;
    let s = Secret::new(k);
    k.zeroize();
    Ok(s)
}

/// Fills a fresh buffer with `n` random bytes.
///
/// # Errors
/// [`CryptoError::Rng`] when the operating system cannot supply randomness.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, CryptoError> {
    let mut v = vec![0u8; n];
    getrandom::fill(&mut v).map_err(|_| CryptoError::Rng)?;
    Ok(v)
}

fn seal(key: &[u8; KEY_LEN], version: u32, aad_tail: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let nonce = Nonce::generate();
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + 16);
    out.push(ALG_AES256GCM);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(nonce.as_slice());
    let aad = [&out[..5], aad_tail].concat();
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    out.extend_from_slice(&ct);
    out
}

/// The key version a ciphertext names, read from its header.
///
/// # Errors
/// [`CryptoError::Malformed`] when the bytes are not one of our ciphertexts.
pub fn ciphertext_key_version(ct: &[u8]) -> Result<u32, CryptoError> {
    if ct.len() < HEADER_LEN + 16 || ct[0] != ALG_AES256GCM {
        return Err(CryptoError::Malformed);
    }
    Ok(u32::from_be_bytes([ct[1], ct[2], ct[3], ct[4]]))
}

fn open(key: &[u8; KEY_LEN], aad_tail: &[u8], ct: &[u8]) -> Result<Secret<Vec<u8>>, CryptoError> {
    ciphertext_key_version(ct)?;
    let cipher = Aes256Gcm::new(key.into());
    let nonce = Nonce::try_from(&ct[5..HEADER_LEN]).map_err(|_| CryptoError::Malformed)?;
    let aad = [&ct[..5], aad_tail].concat();
    cipher
        .decrypt(
            &nonce,
            Payload {
                msg: &ct[HEADER_LEN..],
                aad: &aad,
            },
        )
        .map(Secret::new)
        .map_err(|_| CryptoError::Decrypt)
}

/// A symmetric data key: a subject's field key, the blind-index key or the signing seed.
pub struct DataKey {
    version: u32,
    key: Secret<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey(v{}, [redacted])", self.version)
    }
}

/// Where a field ciphertext belongs; bound into its associated data.
#[derive(Debug, Clone, Copy)]
pub struct FieldBinding<'a> {
    /// The record the value belongs to.
    pub record: RecordId,
    /// The record's collection.
    pub collection: &'a str,
    /// The field's name.
    pub field: &'a str,
}

impl FieldBinding<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        aad.extend_from_slice(b"custos/field/v1\0");
        aad.extend_from_slice(self.record.as_bytes());
        aad.extend_from_slice(&(self.collection.len() as u32).to_be_bytes());
        aad.extend_from_slice(self.collection.as_bytes());
        aad.extend_from_slice(self.field.as_bytes());
        aad
    }
}

/// Which queued message a sealed message is; bound into its associated data, so a sealed
/// message cannot be moved to another outbox row.
#[derive(Debug, Clone, Copy)]
pub struct MessageBinding {
    /// The message's id.
    pub id: MailId,
}

impl MessageBinding {
    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(32);
        aad.extend_from_slice(b"custos/mail/v1\0");
        aad.extend_from_slice(self.id.as_bytes());
        aad
    }
}

/// Which incident a sealed incident is; bound into its associated data, so a sealed incident
/// cannot be moved to another row.
#[derive(Debug, Clone, Copy)]
pub struct IncidentBinding {
    /// The incident's id.
    pub id: crate::ids::IncidentId,
}

impl IncidentBinding {
    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(36);
        aad.extend_from_slice(b"custos/incident/v1\0");
        aad.extend_from_slice(self.id.as_bytes());
        aad
    }
}

impl DataKey {
    /// A new random key.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] when the system cannot supply randomness.
    pub fn generate(version: u32) -> Result<Self, CryptoError> {
        Ok(Self {
            version,
            key: random_key()?,
        })
    }

    /// This key's version, carried by every ciphertext it makes.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Encrypts one field value, bound to its record, collection and field.
    pub fn encrypt_field(&self, at: FieldBinding<'_>, plaintext: &[u8]) -> Vec<u8> {
        seal(self.key.expose_secret(), self.version, &at.aad(), plaintext)
    }

    /// Decrypts a field value encrypted for exactly this binding.
    ///
    /// # Errors
    /// [`CryptoError::Decrypt`] when the ciphertext was made for another record or field, or
    /// was altered; [`CryptoError::UnknownKeyVersion`] when it names another key version.
    pub fn decrypt_field(
        &self,
        at: FieldBinding<'_>,
        ct: &[u8],
    ) -> Result<Secret<Vec<u8>>, CryptoError> {
        let v = ciphertext_key_version(ct)?;
        if v != self.version {
            return Err(CryptoError::UnknownKeyVersion(v));
        }
        open(self.key.expose_secret(), &at.aad(), ct)
    }

    /// Encrypts a whole message (recipient, subject and text, as `core::mail` encodes them),
    /// bound to the message's id.
    pub fn encrypt_message(&self, at: MessageBinding, plaintext: &[u8]) -> Vec<u8> {
        seal(self.key.expose_secret(), self.version, &at.aad(), plaintext)
    }

    /// Decrypts a message sealed for exactly this id.
    ///
    /// # Errors
    /// [`CryptoError::Decrypt`] when the ciphertext was made for another message or with
    /// another key, or was altered; [`CryptoError::UnknownKeyVersion`] when it names another
    /// key version.
    pub fn decrypt_message(
        &self,
        at: MessageBinding,
        ct: &[u8],
    ) -> Result<Secret<Vec<u8>>, CryptoError> {
        let v = ciphertext_key_version(ct)?;
        if v != self.version {
            return Err(CryptoError::UnknownKeyVersion(v));
        }
        open(self.key.expose_secret(), &at.aad(), ct)
    }

    /// Encrypts an incident (its title, facts and decision, which may name people), bound to
    /// its id.
    pub fn encrypt_incident(&self, at: IncidentBinding, plaintext: &[u8]) -> Vec<u8> {
        seal(self.key.expose_secret(), self.version, &at.aad(), plaintext)
    }

    /// Decrypts an incident sealed for exactly this id.
    ///
    /// # Errors
    /// As [`DataKey::decrypt_message`].
    pub fn decrypt_incident(
        &self,
        at: IncidentBinding,
        ct: &[u8],
    ) -> Result<Secret<Vec<u8>>, CryptoError> {
        let v = ciphertext_key_version(ct)?;
        if v != self.version {
            return Err(CryptoError::UnknownKeyVersion(v));
        }
        open(self.key.expose_secret(), &at.aad(), ct)
    }

    /// Turns this key into the blind-index key.
    pub fn into_index_key(self) -> IndexKey {
        IndexKey(self)
    }

    /// Turns this key into the key of the vault's lasting marks.
    pub fn into_mark_key(self) -> MarkKey {
        MarkKey(self)
    }

    /// Turns this key into a key for keyed digests of sign-in secrets and addresses.
    pub fn into_mac_key(self) -> MacKey {
        MacKey(self)
    }

    /// The Ed25519 signing key whose seed is this key.
    pub fn to_signing_key(&self) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(self.key.expose_secret())
    }
}

/// The HMAC-SHA256 key for blind indexes over normalised searchable values.
#[derive(Debug)]
pub struct IndexKey(DataKey);

/// The length of a blind-index digest.
pub const DIGEST_LEN: usize = 32;

impl IndexKey {
    /// The blind-index digest of a normalised value of one collection's field. Equal inputs give
    /// equal digests; without the key, a digest reveals nothing about the value.
    pub fn digest(&self, collection: &str, field: &str, normalised: &str) -> [u8; DIGEST_LEN] {
        framed_digest(&self.0, collection, field, normalised)
    }
}

/// The HMAC-SHA256 key of marks that must stay the same for the vault's life, unlike the
/// blind index, whose key rotates: sites' publishable keys and subject tokens, and the
/// digests of client addresses in consent evidence. A vault made before this key existed
/// began it as a copy of its first blind-index key, so marks it made then still match.
#[derive(Debug)]
pub struct MarkKey(DataKey);

impl MarkKey {
    /// The mark of `value` for one use, named by `domain` and `part`, computed as
    /// [`IndexKey::digest`] computes a blind-index digest.
    pub fn digest(&self, domain: &str, part: &str, value: &str) -> [u8; DIGEST_LEN] {
        framed_digest(&self.0, domain, part, value)
    }
}

/// HMAC-SHA256 over two length-prefixed names and a value.
fn framed_digest(key: &DataKey, a: &str, b: &str, value: &str) -> [u8; DIGEST_LEN] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.key.expose_secret())
        .expect("HMAC takes a key of any length");
    for part in [a, b] {
        mac.update(&(part.len() as u32).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac.update(value.as_bytes());
    mac.finalize().into_bytes().into()
}

/// An HMAC-SHA256 key for keyed digests outside the blind index: sign-in codes, addresses
/// and client addresses in the audit log and the throttle, CSRF tokens. Each use names its
/// own domain, so a digest made for one use never matches another.
#[derive(Debug)]
pub struct MacKey(DataKey);

impl MacKey {
    /// The keyed digest of `parts` under `domain`; each part is length-prefixed, so
    /// `("ab", "c")` and `("a", "bc")` differ.
    pub fn digest(&self, domain: &str, parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.key.expose_secret())
            .expect("HMAC takes a key of any length");
        mac.update(b"custos/mac/v1\0");
        mac.update(domain.as_bytes());
        mac.update(b"\0");
        for part in parts {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// SHA-256 of a bearer secret; what the store keeps instead of the secret.
pub fn secret_digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two digests in constant time.
pub fn digests_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SubjectId;

    fn binding(record: RecordId, field: &str) -> FieldBinding<'_> {
        FieldBinding {
            record,
            collection: "customers",
            field,
        }
    }

    #[test]
    fn field_round_trip() {
        let k = DataKey::generate(1).unwrap();
        let r = RecordId::random();
        let ct = k.encrypt_field(binding(r, "email"), b"ada@example.com");
        assert_eq!(ciphertext_key_version(&ct).unwrap(), 1);
        let pt = k.decrypt_field(binding(r, "email"), &ct).unwrap();
        assert_eq!(pt.expose_secret(), b"ada@example.com");
    }

    #[test]
    fn ciphertext_moved_to_another_field_or_record_fails() {
        let k = DataKey::generate(1).unwrap();
        let r = RecordId::random();
        let ct = k.encrypt_field(binding(r, "email"), b"ada@example.com");
        assert!(matches!(
            k.decrypt_field(binding(r, "notes"), &ct),
            Err(CryptoError::Decrypt)
        ));
        assert!(matches!(
            k.decrypt_field(binding(RecordId::random(), "email"), &ct),
            Err(CryptoError::Decrypt)
        ));
        let other_collection = FieldBinding {
            record: r,
            collection: "orders",
            field: "email",
        };
        assert!(matches!(
            k.decrypt_field(other_collection, &ct),
            Err(CryptoError::Decrypt)
        ));
    }

    #[test]
    fn tampered_or_rewrapped_version_fails() {
        let k = DataKey::generate(1).unwrap();
        let r = RecordId::random();
        let mut ct = k.encrypt_field(binding(r, "email"), b"x");
        let last = ct.len() - 1;
        ct[last] ^= 1;
        assert!(k.decrypt_field(binding(r, "email"), &ct).is_err());
        let mut ct = k.encrypt_field(binding(r, "email"), b"x");
        ct[4] = 2; // claims key version 2
        assert!(matches!(
            k.decrypt_field(binding(r, "email"), &ct),
            Err(CryptoError::UnknownKeyVersion(2))
        ));
    }

    #[test]
    fn a_message_opens_only_for_its_id_and_key() {
        let k = DataKey::generate(1).unwrap();
        let id = MailId::random();
        let ct = k.encrypt_message(MessageBinding { id }, b"to ada");
        let pt = k.decrypt_message(MessageBinding { id }, &ct).unwrap();
        assert_eq!(pt.expose_secret(), b"to ada");
        let elsewhere = MessageBinding {
            id: MailId::random(),
        };
        assert!(matches!(
            k.decrypt_message(elsewhere, &ct),
            Err(CryptoError::Decrypt)
        ));
        let other = DataKey::generate(1).unwrap();
        assert!(other.decrypt_message(MessageBinding { id }, &ct).is_err());
        // A field ciphertext is not a message, even with the same bytes for its id.
        let r = RecordId::from(id.as_uuid());
        let field = k.encrypt_field(binding(r, "email"), b"to ada");
        assert!(k.decrypt_message(MessageBinding { id }, &field).is_err());
    }

    #[test]
    fn nonces_are_fresh() {
        let k = DataKey::generate(1).unwrap();
        let r = RecordId::random();
        let a = k.encrypt_field(binding(r, "email"), b"same");
        let b = k.encrypt_field(binding(r, "email"), b"same");
        assert_ne!(a, b);
    }

    #[test]
    fn wrapped_key_is_bound_to_its_subject() {
        let root = RootKey::generate(1).unwrap();
        let dk = DataKey::generate(1).unwrap();
        let s = SubjectId::random();
        let w = root.wrap(WrapContext::Subject(s), &dk).unwrap();
        let back = root.unwrap(WrapContext::Subject(s), &w).unwrap();
        let r = RecordId::random();
        let ct = dk.encrypt_field(binding(r, "email"), b"v");
        assert!(back.decrypt_field(binding(r, "email"), &ct).is_ok());
        assert!(
            root.unwrap(WrapContext::Subject(SubjectId::random()), &w)
                .is_err()
        );
        assert!(root.unwrap(WrapContext::Named("index"), &w).is_err());
        let other_root = RootKey::generate(1).unwrap();
        assert!(other_root.unwrap(WrapContext::Subject(s), &w).is_err());
    }

    #[test]
    fn root_key_file_round_trip_and_errors() {
        let root = RootKey::generate(3).unwrap();
        let text = root.to_file_contents();
        let back = RootKey::from_file_contents(text.expose_secret()).unwrap();
        assert_eq!(back.version(), 3);
        let dk = DataKey::generate(1).unwrap();
        let w = root.wrap(WrapContext::Named("index"), &dk).unwrap();
        assert!(back.unwrap(WrapContext::Named("index"), &w).is_ok());
        for bad in [
            "",
            "custos-root-key-v1",
            "custos-root-key-v1 1 zz",
            "other 1 00",
        ] {
            assert!(RootKey::from_file_contents(bad).is_err(), "{bad:?}");
        }
        assert!(!format!("{root:?}").contains(&text.expose_secret()[21..]));
    }

    #[test]
    fn blind_index_is_keyed_and_separated_by_field() {
        let k1 = DataKey::generate(1).unwrap().into_index_key();
        let k2 = DataKey::generate(1).unwrap().into_index_key();
        let a = k1.digest("customers", "email", "ada@example.com");
        assert_eq!(a, k1.digest("customers", "email", "ada@example.com"));
        assert_ne!(a, k2.digest("customers", "email", "ada@example.com"));
        assert_ne!(a, k1.digest("customers", "notes", "ada@example.com"));
        assert_ne!(k1.digest("ab", "c", "v"), k1.digest("a", "bc", "v"));
    }

    #[test]
    fn digest_comparison() {
        let d = secret_digest("custos_abc");
        assert!(digests_equal(&d, &secret_digest("custos_abc")));
        assert!(!digests_equal(&d, &secret_digest("custos_abd")));
    }
}
