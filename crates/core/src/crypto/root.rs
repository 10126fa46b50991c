//! The root key (the key-encryption key) and its versions: [`RootKey`] wraps subjects' data
//! keys and the vault's named keys; [`RootKeys`] holds every version not yet retired, wraps
//! under the newest and unwraps under whichever version a wrapped key names.

use std::collections::BTreeMap;

use zeroize::Zeroize;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use super::{ALG_AES256GCM, CryptoError, DataKey, HEADER_LEN, KEY_LEN, NONCE_LEN};
use super::{ciphertext_key_version, random_key};
use crate::ids::SubjectId;
use crate::secret::Secret;

const KEY_FILE_PREFIX: &str = "custos-root-key-v1";

/// What a wrapped key is for; part of its associated data, so a wrapped key cannot be moved.
#[derive(Debug, Clone, Copy)]
pub enum WrapContext<'a> {
    /// A subject's data key.
    Subject(SubjectId),
    /// One of the vault's own keys, by name (`index`, `audit-signing`).
    Named(&'a str),
}

impl WrapContext<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut aad = b"custos/wrap/v1\0".to_vec();
        match self {
            WrapContext::Subject(id) => {
                aad.extend_from_slice(b"subject\0");
                aad.extend_from_slice(id.as_bytes());
            }
            WrapContext::Named(name) => {
                aad.extend_from_slice(b"named\0");
                aad.extend_from_slice(name.as_bytes());
            }
        }
        aad
    }
}

/// A root key version that seals and opens under AES-256-GCM with the nonce and associated
/// data it is given: [`RootKey`] in this process's memory, or a key that never leaves a
/// hardware token (PKCS#11), which does the same inside the token. [`wrap_with`] and
/// [`unwrap_with`] make one format of both, so a wrapped key does not say where its root is.
pub trait SealingKey {
    /// The version this key is, written in the header of everything it wraps.
    fn version(&self) -> u32;
    /// AES-256-GCM encryption: the ciphertext with its 16-byte tag appended.
    ///
    /// # Errors
    /// [`CryptoError::Token`] when a token cannot do it.
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// AES-256-GCM decryption of what [`SealingKey::seal`] made.
    ///
    /// # Errors
    /// [`CryptoError::Decrypt`] when the tag does not verify; [`CryptoError::Token`] when a
    /// token cannot do it.
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Secret<Vec<u8>>, CryptoError>;
}

/// Wraps a data key under a root key version: `1 | version | nonce | AES-GCM(key version |
/// key)`, the first five bytes and the context bound as associated data.
///
/// # Errors
/// [`CryptoError::Rng`] when no nonce can be drawn; what the sealing key reports.
pub fn wrap_with(
    root: &(impl SealingKey + ?Sized),
    ctx: WrapContext<'_>,
    key: &DataKey,
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| CryptoError::Rng)?;
    let mut out = Vec::with_capacity(HEADER_LEN + 4 + KEY_LEN + 16);
    out.push(ALG_AES256GCM);
    out.extend_from_slice(&root.version().to_be_bytes());
    let aad = [&out[..5], &ctx.aad()].concat();
    let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(4 + KEY_LEN));
    plain.extend_from_slice(&key.version.to_be_bytes());
    plain.extend_from_slice(key.key.expose_secret());
    let sealed = root.seal(&nonce, &aad, &plain)?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Unwraps a key [`wrap_with`] wrapped for the same context under this version.
///
/// # Errors
/// [`CryptoError::UnknownKeyVersion`] for a key wrapped by another version;
/// [`CryptoError::Decrypt`] when the bytes or the context do not match.
pub fn unwrap_with(
    root: &(impl SealingKey + ?Sized),
    ctx: WrapContext<'_>,
    wrapped: &[u8],
) -> Result<DataKey, CryptoError> {
    let v = ciphertext_key_version(wrapped)?;
    if v != root.version() {
        return Err(CryptoError::UnknownKeyVersion(v));
    }
    let nonce: [u8; NONCE_LEN] = wrapped[5..HEADER_LEN]
        .try_into()
        .map_err(|_| CryptoError::Malformed)?;
    let aad = [&wrapped[..5], &ctx.aad()].concat();
    let plain = root.open(&nonce, &aad, &wrapped[HEADER_LEN..])?;
    let p = plain.expose_secret();
    if p.len() != 4 + KEY_LEN {
        return Err(CryptoError::Malformed);
    }
    let version = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&p[4..]);
    let secret = Secret::new(key);
    key.zeroize();
    Ok(DataKey {
        version,
        key: secret,
    })
}

/// The key-encryption key. It never encrypts data itself, only other keys.
pub struct RootKey {
    version: u32,
    key: Secret<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RootKey(v{}, [redacted])", self.version)
    }
}

impl RootKey {
    /// A new random root key.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] when the system cannot supply randomness.
    pub fn generate(version: u32) -> Result<Self, CryptoError> {
        Ok(Self {
            version,
            key: random_key()?,
        })
    }

    /// This key's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Reads a key file holding this one key, written by [`RootKey::to_file_contents`].
    ///
    /// # Errors
    /// [`CryptoError::KeyFile`] naming what is wrong, never echoing the contents.
    pub fn from_file_contents(contents: &str) -> Result<Self, CryptoError> {
        let mut ring = RootKeys::from_file_contents(contents)?;
        if ring.keys.len() != 1 {
            return Err(CryptoError::KeyFile("it holds more than one key version"));
        }
        let v = ring.current_version();
        Ok(ring.keys.remove(&v).expect("the one version is there"))
    }

    /// Reads one line of a key file: `custos-root-key-v1 VERSION HEX`.
    fn from_line(contents: &str) -> Result<Self, CryptoError> {
        let mut parts = contents.split_whitespace();
        if parts.next() != Some(KEY_FILE_PREFIX) {
            return Err(CryptoError::KeyFile(
                "it does not start with custos-root-key-v1",
            ));
        }
        let version = parts
            .next()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| *v > 0)
            .ok_or(CryptoError::KeyFile(
                "the key version is missing or not a positive number",
            ))?;
        let hex_key = parts
            .next()
            .ok_or(CryptoError::KeyFile("the key is missing"))?;
        if parts.next().is_some() {
            return Err(CryptoError::KeyFile("unexpected text after the key"));
        }
        let mut key = [0u8; KEY_LEN];
        hex::decode_to_slice(hex_key, &mut key)
            .map_err(|_| CryptoError::KeyFile("the key is not 64 hexadecimal digits"))?;
        let secret = Secret::new(key);
        key.zeroize();
        Ok(Self {
            version,
            key: secret,
        })
    }

    /// The key file's text. It is a secret: write it to a file with mode 0600 and nowhere else.
    pub fn to_file_contents(&self) -> Secret<String> {
        let hex = zeroize::Zeroizing::new(hex::encode(self.key.expose_secret()));
        let version = self.version.to_string();
        let mut out = String::with_capacity(KEY_FILE_PREFIX.len() + version.len() + hex.len() + 3);
        for part in [KEY_FILE_PREFIX, " ", &version, " ", hex.as_str(), "\n"] {
            out.push_str(part);
        }
        Secret::new(out)
    }

    /// Wraps a data key for the given context.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] when no nonce can be drawn.
    pub fn wrap(&self, ctx: WrapContext<'_>, key: &DataKey) -> Result<Vec<u8>, CryptoError> {
        wrap_with(self, ctx, key)
    }

    /// Unwraps a key wrapped by [`RootKey::wrap`] for the same context.
    ///
    /// # Errors
    /// [`CryptoError::UnknownKeyVersion`] for a key wrapped by another root key version;
    /// [`CryptoError::Decrypt`] when the bytes or the context do not match.
    pub fn unwrap(&self, ctx: WrapContext<'_>, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        unwrap_with(self, ctx, wrapped)
    }
}

fn gcm_nonce(nonce: &[u8; NONCE_LEN]) -> aes_gcm::aead::Nonce<Aes256Gcm> {
    Nonce::try_from(&nonce[..]).expect("a nonce of NONCE_LEN bytes")
}

impl SealingKey for RootKey {
    fn version(&self) -> u32 {
        self.version
    }

    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let cipher = Aes256Gcm::new(self.key.expose_secret().into());
        cipher
            .encrypt(
                &gcm_nonce(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Malformed)
    }

    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Secret<Vec<u8>>, CryptoError> {
        let cipher = Aes256Gcm::new(self.key.expose_secret().into());
        cipher
            .decrypt(&gcm_nonce(nonce), Payload { msg: sealed, aad })
            .map(Secret::new)
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// Every root key version not yet retired. The newest wraps; each wrapped key is unwrapped by
/// the version its header names, so a vault part-way through a rotation reads all of it.
pub struct RootKeys {
    keys: BTreeMap<u32, RootKey>,
}

impl std::fmt::Debug for RootKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RootKeys(versions {:?}, [redacted])", self.versions())
    }
}

impl From<RootKey> for RootKeys {
    fn from(key: RootKey) -> Self {
        Self {
            keys: BTreeMap::from([(key.version, key)]),
        }
    }
}

impl RootKeys {
    /// Reads a key file: one line per version, `custos-root-key-v1 VERSION HEX`, in any order.
    ///
    /// # Errors
    /// [`CryptoError::KeyFile`] naming what is wrong (an empty file, a malformed line, a
    /// version twice), never echoing the contents.
    pub fn from_file_contents(contents: &str) -> Result<Self, CryptoError> {
        let mut keys = BTreeMap::new();
        for line in contents.lines().filter(|l| !l.trim().is_empty()) {
            let key = RootKey::from_line(line)?;
            if keys.insert(key.version, key).is_some() {
                return Err(CryptoError::KeyFile("a key version appears twice"));
            }
        }
        if keys.is_empty() {
            return Err(CryptoError::KeyFile("it holds no key"));
        }
        Ok(Self { keys })
    }

    /// The key file's text, oldest version first. A secret: mode 0600 and nowhere else.
    pub fn to_file_contents(&self) -> Secret<String> {
        // Sized once, so no reallocation leaves a copy of a key behind.
        let mut out = String::with_capacity(self.keys.len() * (KEY_FILE_PREFIX.len() + 80));
        for key in self.keys.values() {
            out.push_str(key.to_file_contents().expose_secret());
        }
        Secret::new(out)
    }

    /// The newest version: the one that wraps.
    pub fn current(&self) -> &RootKey {
        self.keys
            .values()
            .next_back()
            .expect("a key ring always holds a key")
    }

    /// The newest version's number.
    pub fn current_version(&self) -> u32 {
        self.current().version
    }

    /// Every version held, oldest first.
    pub fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// Whether this version is held.
    pub fn holds(&self, version: u32) -> bool {
        self.keys.contains_key(&version)
    }

    /// Adds a new random version after the newest, which becomes the one that wraps.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] when the system cannot supply randomness.
    pub fn add_version(&mut self) -> Result<u32, CryptoError> {
        let version = self.current_version() + 1;
        self.add_version_as(version)
    }

    /// Adds a new random version numbered `version`, which must be above the newest.
    ///
    /// # Errors
    /// [`CryptoError::KeyFile`] when `version` is not above the newest;
    /// [`CryptoError::Rng`] when the system cannot supply randomness.
    pub fn add_version_as(&mut self, version: u32) -> Result<u32, CryptoError> {
        if version <= self.current_version() {
            return Err(CryptoError::KeyFile(
                "a new version must be above the newest",
            ));
        }
        self.keys.insert(version, RootKey::generate(version)?);
        Ok(version)
    }

    /// Removes a version, never the newest; `false` when it is the newest or not held.
    pub fn remove_version(&mut self, version: u32) -> bool {
        if version == self.current_version() {
            return false;
        }
        self.keys.remove(&version).is_some()
    }

    /// Wraps a key under the newest version.
    ///
    /// # Errors
    /// [`CryptoError::Rng`] when no nonce can be drawn.
    pub fn wrap(&self, ctx: WrapContext<'_>, key: &DataKey) -> Result<Vec<u8>, CryptoError> {
        self.current().wrap(ctx, key)
    }

    /// Unwraps a key under the version it names.
    ///
    /// # Errors
    /// [`CryptoError::UnknownKeyVersion`] when that version is not held;
    /// [`CryptoError::Decrypt`] when the bytes or the context do not match.
    pub fn unwrap(&self, ctx: WrapContext<'_>, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        let v = ciphertext_key_version(wrapped)?;
        self.keys
            .get(&v)
            .ok_or(CryptoError::UnknownKeyVersion(v))?
            .unwrap(ctx, wrapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> SubjectId {
        SubjectId::from(uuid::Uuid::from_bytes([7; 16]))
    }

    #[test]
    fn a_ring_wraps_under_its_newest_version_and_unwraps_every_version_it_holds() {
        let mut ring = RootKeys::from(RootKey::generate(1).unwrap());
        let key = DataKey::generate(1).unwrap();
        let old = ring.wrap(WrapContext::Subject(subject()), &key).unwrap();
        assert_eq!(ciphertext_key_version(&old).unwrap(), 1);
        assert_eq!(ring.add_version().unwrap(), 2);
        let new = ring.wrap(WrapContext::Subject(subject()), &key).unwrap();
        assert_eq!(ciphertext_key_version(&new).unwrap(), 2);
        for w in [&old, &new] {
            let k = ring.unwrap(WrapContext::Subject(subject()), w).unwrap();
            assert_eq!(k.key.expose_secret(), key.key.expose_secret());
        }
        assert!(
            !ring.remove_version(2),
            "the newest version is never removed"
        );
        assert!(ring.remove_version(1));
        assert!(matches!(
            ring.unwrap(WrapContext::Subject(subject()), &old),
            Err(CryptoError::UnknownKeyVersion(1))
        ));
    }

    #[test]
    fn the_key_file_holds_every_version_and_reads_back() {
        let mut ring = RootKeys::from(RootKey::generate(1).unwrap());
        ring.add_version().unwrap();
        let text = ring.to_file_contents();
        assert_eq!(text.expose_secret().lines().count(), 2);
        let back = RootKeys::from_file_contents(text.expose_secret()).unwrap();
        assert_eq!(back.versions(), vec![1, 2]);
        let key = DataKey::generate(1).unwrap();
        let w = ring.wrap(WrapContext::Named("index"), &key).unwrap();
        back.unwrap(WrapContext::Named("index"), &w).unwrap();
        // A one-version file is still read as a single key, as before rotation existed.
        assert!(RootKey::from_file_contents(text.expose_secret()).is_err());
        let first = text.expose_secret().lines().next().unwrap().to_owned();
        assert_eq!(RootKey::from_file_contents(&first).unwrap().version(), 1);
    }

    #[test]
    fn a_bad_key_file_is_refused_without_echoing_it() {
        let line = "custos-root-key-v1 1 ".to_owned() + &"ab".repeat(32);
        for (text, says) in [
            ("", "it holds no key"),
            ("custos-root-key-v1 0 00", "positive number"),
            (&*format!("{line}\n{line}\n"), "appears twice"),
        ] {
            let e = RootKeys::from_file_contents(text).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
            assert!(!e.contains("abab"), "{e}");
        }
    }
}
