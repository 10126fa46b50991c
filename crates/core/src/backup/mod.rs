//! The backup format: what a backup's plaintext holds once its age encryption is removed, and
//! the erasure journal ([`journal`]) that a restore erases again from.
//!
//! ```text
//! custos-backup-v1\n
//! {manifest as one line of JSON}\n
//! {Ed25519 signature of the two lines above, hex}\n
//! {the snapshot: an SQLite database file, payload_bytes long}
//! ```
//!
//! The signature is made with the vault's audit-signing key, whose public half is in the
//! manifest and whose private half is in the snapshot, wrapped by the root key. A reader that
//! holds the root key unwraps it from the snapshot and checks that it signed the manifest:
//! only this vault can have made the backup, even though anyone with the recipient can encrypt
//! a file to it.

pub mod journal;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The first line of a backup's plaintext.
pub const MAGIC: &str = "custos-backup-v1";
/// The manifest line is at most this long: a longer one is not ours.
pub const MAX_MANIFEST: usize = 1 << 20;

/// What a backup holds, written before the snapshot and signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// When the snapshot was taken, RFC 3339.
    pub created_at: String,
    /// The backend it was taken from: "SQLite" or "PostgreSQL".
    pub source: String,
    /// The schema version of the snapshot.
    pub schema_version: i64,
    /// The vault's audit-signing public key, hex: whose backup this is.
    pub vault: String,
    /// Rows per table, as `custos db copy` counts them.
    pub tables: Vec<TableRows>,
    /// Entries in the audit log's tree at snapshot time.
    pub audit_size: u64,
    /// The newest signed head at snapshot time, if any head was signed.
    pub signed_head: Option<HeadSummary>,
    /// The snapshot's length in bytes.
    pub payload_bytes: u64,
    /// The snapshot's SHA-256, hex.
    pub payload_sha256: String,
}

/// One table's rows in a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRows {
    /// The table, as `db copy` names it.
    pub table: String,
    /// Its rows.
    pub rows: u64,
    /// Its second count: blind-index entries for records, else 0.
    pub second: u64,
}

/// A signed tree head, as the manifest carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSummary {
    /// Entries the head covers.
    pub size: u64,
    /// Its root hash, hex.
    pub root_hash: String,
    /// When it was signed, ms since the epoch.
    pub timestamp_ms: u64,
}

/// The header a backup's plaintext starts with: magic, manifest and signature lines.
///
/// # Errors
/// When the manifest cannot be serialised (it always can).
pub fn header(manifest: &Manifest, key: &SigningKey) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = format!("{MAGIC}\n{}\n", serde_json::to_string(manifest)?).into_bytes();
    let signature = key.sign(&out);
    out.extend_from_slice(hex::encode(signature.to_bytes()).as_bytes());
    out.push(b'\n');
    Ok(out)
}

/// A header as read, its signature not yet checked (the key that must have made it is in the
/// snapshot that follows).
#[derive(Debug, Clone)]
pub struct Header {
    /// The manifest.
    pub manifest: Manifest,
    signed: Vec<u8>,
    signature: Signature,
}

impl Header {
    /// Parses the magic, manifest and signature lines.
    ///
    /// # Errors
    /// A message saying which line is not as written by `backup create`.
    pub fn parse(magic: &str, manifest: &str, signature: &str) -> Result<Header, String> {
        if magic != MAGIC {
            return Err(format!(
                "it does not start with {MAGIC:?}: not a Custos backup, or of a newer format"
            ));
        }
        let parsed: Manifest = serde_json::from_str(manifest)
            .map_err(|e| format!("its manifest cannot be read: {e}"))?;
        Ok(Header {
            manifest: parsed,
            signed: format!("{magic}\n{manifest}\n").into_bytes(),
            signature: signature_from_hex(signature.trim())
                .ok_or("its signature line is not 64 bytes of hex")?,
        })
    }

    /// Checks that `key` signed the header and is the vault the manifest names.
    ///
    /// # Errors
    /// A message saying which does not hold.
    pub fn check(&self, key: &VerifyingKey) -> Result<(), String> {
        if self.manifest.vault != hex::encode(key.to_bytes()) {
            return Err(format!(
                "it was made by the vault whose signing key is {}, and the snapshot's is {}",
                self.manifest.vault,
                hex::encode(key.to_bytes())
            ));
        }
        key.verify(&self.signed, &self.signature)
            .map_err(|_| "its manifest's signature does not verify: it was changed".to_owned())
    }
}

/// An Ed25519 signature written as 128 hex digits.
pub(crate) fn signature_from_hex(text: &str) -> Option<Signature> {
    let bytes: [u8; 64] = hex::decode(text).ok()?.try_into().ok()?;
    Some(Signature::from_bytes(&bytes))
}

/// SHA-256 over a payload written piece by piece.
#[derive(Default)]
pub struct PayloadHash(Sha256);

impl PayloadHash {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest, hex.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            created_at: "2026-12-02T10:00:00Z".into(),
            source: "SQLite".into(),
            schema_version: 11,
            vault: hex::encode(key().verifying_key().to_bytes()),
            tables: vec![TableRows {
                table: "records".into(),
                rows: 3,
                second: 4,
            }],
            audit_size: 9,
            signed_head: Some(HeadSummary {
                size: 8,
                root_hash: "ab".into(),
                timestamp_ms: 1,
            }),
            payload_bytes: 4096,
            payload_sha256: "00".into(),
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn lines(bytes: &[u8]) -> Vec<String> {
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_header_reads_back_and_verifies_with_its_key_only() {
        let l = lines(&header(&manifest(), &key()).unwrap());
        assert_eq!(l.len(), 3);
        let h = Header::parse(&l[0], &l[1], &l[2]).unwrap();
        assert_eq!(h.manifest, manifest());
        h.check(&key().verifying_key()).unwrap();
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(h.check(&other).unwrap_err().contains("made by the vault"));
    }

    #[test]
    fn a_changed_manifest_or_magic_is_refused() {
        let l = lines(&header(&manifest(), &key()).unwrap());
        let changed = l[1].replace("\"rows\":3", "\"rows\":2");
        let h = Header::parse(&l[0], &changed, &l[2]).unwrap();
        assert!(
            h.check(&key().verifying_key())
                .unwrap_err()
                .contains("signature")
        );
        assert!(Header::parse("custos-backup-v9", &l[1], &l[2]).is_err());
        assert!(Header::parse(&l[0], &l[1], "zz").is_err());
        assert!(Header::parse(&l[0], "{}", &l[2]).is_err());
    }
}
