//! `custos receipt verify`: a signed document (a consent receipt or an erasure certificate)
//! checked offline, and the verdict printed.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use custos_core::audit::VerifyingKey;
use custos_core::certificate::Certificate;
use custos_core::receipt::{self, Receipt};
use custos_core::verify::{Document, Signer, verify_file};

/// Exit status when every check passed but the signer is only the key the file carries.
const SIGNER_NOT_VERIFIED: u8 = 3;

/// The trusted key: 64 hex digits, or a file holding them.
fn trusted_key(arg: &str) -> Result<VerifyingKey> {
    let arg = arg.trim();
    let hex = if arg.len() == 64 && arg.bytes().all(|b| b.is_ascii_hexdigit()) {
        arg.to_owned()
    } else {
        std::fs::read_to_string(arg)
            .with_context(|| format!("--public-key: reading the key file {arg}"))?
    };
    receipt::parse_public_key(&hex).context("--public-key")
}

fn describe(d: &Document) -> String {
    match d {
        Document::ConsentReceipt(r) => describe_receipt(r),
        Document::ErasureCertificate(c) => describe_certificate(c),
    }
}

fn describe_certificate(c: &Certificate) -> String {
    format!(
        "erasure certificate: subject {} erased at {}, entry {} of the audit log of {} entries, \
         root {}. {}",
        c.subject_id, c.erased_at, c.log.leaf_index, c.log.tree_size, c.log.root_hash, c.statement
    )
}

fn describe_receipt(r: &Receipt) -> String {
    let about = r.event.purpose.as_deref().unwrap_or("every purpose");
    format!(
        "receipt {}: consent {} for {about} by subject {} at {} (source {}), \
         entry {} of the audit log of {} entries, root {}",
        r.receipt_id,
        r.state,
        r.pii_principal_id,
        r.consent_timestamp,
        serde_json::to_value(r.collection_method)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        r.log.leaf_index,
        r.log.tree_size,
        r.log.root_hash
    )
}

/// Checks `file`; prints `ok`, `signature valid, signer not verified` or `FAILED` and why.
///
/// # Errors
/// When the file or the key cannot be read.
pub(crate) fn verify(file: &Path, public_key: Option<&str>) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let trusted = public_key.map(trusted_key).transpose()?;
    match verify_file(&text, trusted.as_ref()) {
        Ok(v) => {
            let r = &v.document;
            match v.signer {
                Signer::Trusted => {
                    println!("ok: {}", describe(r));
                    Ok(ExitCode::SUCCESS)
                }
                Signer::NotVerified(key) => {
                    println!("signature valid, signer not verified: {}", describe(r));
                    println!(
                        "note: it was checked only against the key it carries ({key}); anyone can \
                         sign with a key of their own. Pass --public-key with the log's key \
                         (custos audit public-key, or GET /.well-known/custos-log-key)"
                    );
                    Ok(ExitCode::from(SIGNER_NOT_VERIFIED))
                }
            }
        }
        Err(e) => {
            println!("FAILED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
