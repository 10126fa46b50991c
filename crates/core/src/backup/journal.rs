//! The erasure journal's lines: one per erasure, signed by the vault's audit-signing key, so
//! that a restore erases again exactly the subjects this vault erased.
//!
//! ```text
//! custos-erasure-v1 {subject id} {erased, ms since the epoch} {Ed25519 signature, hex}
//! ```
//!
//! A line holds a subject's random id and a time, never a personal value.

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};

use crate::ids::SubjectId;

/// The first word of every line.
pub const LINE_MAGIC: &str = "custos-erasure-v1";

/// One erasure, as the journal holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalEntry {
    /// The subject erased.
    pub subject_id: SubjectId,
    /// When, ms since the epoch.
    pub erased_ms: i64,
}

impl JournalEntry {
    fn signed(&self) -> String {
        format!("{LINE_MAGIC} {} {}", self.subject_id, self.erased_ms)
    }

    /// The entry as a line, signed, with its newline.
    pub fn to_line(&self, key: &SigningKey) -> String {
        let body = self.signed();
        let signature = key.sign(body.as_bytes());
        format!("{body} {}\n", hex::encode(signature.to_bytes()))
    }

    /// Reads a line and checks its signature.
    ///
    /// # Errors
    /// A message saying what is wrong with it.
    pub fn from_line(line: &str, key: &VerifyingKey) -> Result<JournalEntry, String> {
        let parts: Vec<&str> = line.trim_end().split(' ').collect();
        let [magic, subject, erased, signature] = parts[..] else {
            return Err("it is not four words".into());
        };
        if magic != LINE_MAGIC {
            return Err(format!("it does not start with {LINE_MAGIC}"));
        }
        let entry = JournalEntry {
            subject_id: subject
                .parse()
                .map_err(|_| format!("{subject:?} is not a subject id"))?,
            erased_ms: erased
                .parse()
                .map_err(|_| format!("{erased:?} is not a time"))?,
        };
        let signature =
            super::signature_from_hex(signature).ok_or("its signature is not 64 bytes of hex")?;
        key.verify(entry.signed().as_bytes(), &signature)
            .map_err(|_| "its signature does not verify: it was changed, or is another vault's")?;
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_back_only_as_signed() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let e = JournalEntry {
            subject_id: SubjectId::random(),
            erased_ms: 1_764_000_000_000,
        };
        let line = e.to_line(&key);
        assert!(line.ends_with('\n'));
        assert_eq!(JournalEntry::from_line(&line, &key.verifying_key()), Ok(e));

        let later = line.replace("1764000000000", "1764000000001");
        assert!(JournalEntry::from_line(&later, &key.verifying_key()).is_err());
        let other = SigningKey::from_bytes(&[4; 32]).verifying_key();
        assert!(JournalEntry::from_line(&line, &other).is_err());
        assert!(JournalEntry::from_line("custos-erasure-v1 x", &key.verifying_key()).is_err());
    }
}
