//! Checking a file that carries a document Custos signed (a consent receipt or an erasure
//! certificate), the way `custos receipt verify` does, offline.
//!
//! Only the JWS is proof. A file may also hold a readable copy of the signed payload for
//! people (the API's `{"receipt": {...}, "jws": "..."}`); a reader trusts what they read, so
//! the copy must be exactly what is signed, and the verifier names the first place it differs.
//! A valid signature proves who signed only when the key is one the user trusts, obtained apart
//! from the document (`GET /.well-known/custos-log-key`, `custos audit public-key`): a document
//! checked against the key it carries itself is reported as "signer not verified".

use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use crate::certificate::{self, Certificate};
use crate::receipt::{self, Receipt};
use crate::signed::{SignedError, jws_type, open_jws};

/// The members a file may hold beside `jws`: a readable copy of the payload, under the name
/// the API gives it.
const READABLE: [&str; 2] = ["receipt", "certificate"];

/// What a checked document is. Not `non_exhaustive`: every caller must say how it shows
/// each kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// A consent receipt.
    ConsentReceipt(Box<Receipt>),
    /// An erasure certificate.
    ErasureCertificate(Box<Certificate>),
}

/// Who signed it, as far as the check could tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// The key the user trusts.
    Trusted,
    /// Only the key the document carries, hex: anyone can sign a document with a key of their
    /// own, so this proves the document is whole, not who made it.
    NotVerified(String),
}

/// A document whose every check passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The document.
    pub document: Document,
    /// Who signed it.
    pub signer: Signer,
}

/// Why a file does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyFileError {
    /// The file is not a signed document Custos knows.
    #[error("{0}")]
    Malformed(String),
    /// The readable copy says something the signature does not cover.
    #[error("the readable {member} in the file is not what is signed: they differ at {member}{at}")]
    ReadableDiffers {
        /// The member holding the copy.
        member: String,
        /// Where the first difference is, as a JSON pointer (`/purposes/0/purpose`).
        at: String,
    },
    /// A check of the signed document failed.
    #[error(transparent)]
    Signed(#[from] SignedError),
}

/// Checks a file: the API's JSON (`jws` and a readable copy) or a bare JWS. With `trusted`,
/// the document must be signed by that key; without, it is checked against the key it carries
/// and the answer says the signer is not verified.
///
/// # Errors
/// The first check that fails.
pub fn verify_file(
    text: &str,
    trusted: Option<&VerifyingKey>,
) -> Result<Verified, VerifyFileError> {
    let (jws, readable) = split_file(text)?;
    if let Some((member, copy)) = readable {
        let signed = payload(&jws)?;
        if let Some(at) = first_difference(&copy, &signed) {
            return Err(VerifyFileError::ReadableDiffers { member, at });
        }
    }
    let (document, key) = if jws_type(&jws).as_deref() == Some(certificate::JWS_TYPE) {
        let c = certificate::verify(&jws, trusted)?;
        let key = c.public_key.clone();
        (Document::ErasureCertificate(Box::new(c)), key)
    } else {
        let r = receipt::verify(&jws, trusted)?;
        let key = r.public_key.clone();
        (Document::ConsentReceipt(Box::new(r)), key)
    };
    let signer = match trusted {
        Some(_) => Signer::Trusted,
        None => Signer::NotVerified(key),
    };
    Ok(Verified { document, signer })
}

fn malformed(m: impl Into<String>) -> VerifyFileError {
    VerifyFileError::Malformed(m.into())
}

/// The JWS of a file, and its readable copy if it holds one.
fn split_file(text: &str) -> Result<(String, Option<(String, Value)>), VerifyFileError> {
    let text = text.trim();
    if !text.starts_with('{') {
        return Ok((text.to_owned(), None));
    }
    let Ok(Value::Object(mut members)) = serde_json::from_str::<Value>(text) else {
        return Err(malformed("the file is neither a JWS nor a JSON object"));
    };
    let Some(Value::String(jws)) = members.remove("jws") else {
        return Err(malformed(
            "a JSON file holds the signed document as a \"jws\" string",
        ));
    };
    let mut readable = None;
    for (name, value) in members {
        if !READABLE.contains(&name.as_str()) || readable.is_some() {
            let named = crate::fields::echoable(&name).unwrap_or("a member");
            return Err(malformed(format!(
                "the file holds {named:?} beside \"jws\", which the signature does not cover"
            )));
        }
        readable = Some((name, value));
    }
    Ok((jws, readable))
}

/// The JWS payload as JSON.
fn payload(jws: &str) -> Result<Value, VerifyFileError> {
    serde_json::from_slice(&open_jws(jws)?.payload)
        .map_err(|_| malformed("the JWS payload is not base64url JSON"))
}

/// Where `a` and `b` first differ, as a JSON pointer (RFC 6901); `None` when they are equal.
fn first_difference(a: &Value, b: &Value) -> Option<String> {
    fn pointer_part(s: &str) -> String {
        s.replace('~', "~0").replace('/', "~1")
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut names: Vec<&String> = x.keys().chain(y.keys()).collect();
            names.sort();
            names.dedup();
            names.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(u), Some(v)) => {
                    first_difference(u, v).map(|at| format!("/{}{at}", pointer_part(k)))
                }
                _ => Some(format!("/{}", pointer_part(k))),
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            (0..x.len().max(y.len())).find_map(|i| match (x.get(i), y.get(i)) {
                (Some(u), Some(v)) => first_difference(u, v).map(|at| format!("/{i}{at}")),
                _ => Some(format!("/{i}")),
            })
        }
        _ if a == b => None,
        _ => Some(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn differences_are_named_by_pointer() {
        for (a, b, at) in [
            (json!({"a": 1}), json!({"a": 1}), None),
            (json!({"a": 1}), json!({"a": 2}), Some("/a")),
            (
                json!({"p": [{"purpose": "marketing"}]}),
                json!({"p": [{"purpose": "analytics"}]}),
                Some("/p/0/purpose"),
            ),
            (json!({"a": 1}), json!({"a": 1, "b": 2}), Some("/b")),
            (json!([1, 2]), json!([1]), Some("/1")),
            (json!({"a/b": 1}), json!({"a/b": 2}), Some("/a~1b")),
            (json!(1), json!("1"), Some("")),
        ] {
            assert_eq!(first_difference(&a, &b).as_deref(), at, "{a} vs {b}");
        }
    }

    #[test]
    fn files_hold_a_jws_and_at_most_a_readable_copy() {
        assert_eq!(split_file(" a.b.c\n").unwrap(), ("a.b.c".to_owned(), None));
        let (jws, copy) = split_file(r#"{"jws": "a.b.c", "receipt": {"x": 1}}"#).unwrap();
        assert_eq!(jws, "a.b.c");
        assert_eq!(copy, Some(("receipt".to_owned(), json!({"x": 1}))));
        for bad in [
            r#"{"receipt": {}}"#,
            r#"{"jws": 1}"#,
            r#"{"jws": "a.b.c", "note": "trust me"}"#,
            r#"{"jws": "a.b.c", "Ada Lovelace": 1}"#,
            "{not json",
        ] {
            let e = split_file(bad).unwrap_err().to_string();
            assert!(!e.contains("Ada"), "{e}");
        }
    }
}
