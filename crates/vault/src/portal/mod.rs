//! The privacy portal's use cases: a customer signs in with a one-time code mailed to an
//! address on file (`signin`), holds a session stored in the database (`session`), and then
//! exercises their rights themselves (`selfservice`). The rules (code length and life,
//! throttles, lockout, session lifetimes) are `core::signin`'s; the pages are the server's.
//!
//! Secrets the browser holds (the sign-in token, the session cookie) are 256 random bits;
//! the store keeps their SHA-256 only. Codes, addresses and client addresses are kept as
//! keyed digests under the vault's `portal` key, which also derives CSRF tokens.

mod selfservice;
mod session;
mod signin;

use custos_core::crypto::{digests_equal, random_bytes, secret_digest};
use custos_core::secret::Secret;

pub use selfservice::Correction;
pub use session::PortalSession;
pub use signin::{NewSession, SigninFlow};

use crate::{Vault, VaultError};

/// A new browser secret: 256 random bits, hex.
pub(crate) fn new_token() -> Result<Secret<String>, VaultError> {
    Ok(Secret::new(hex::encode(random_bytes(32)?)))
}

/// What the store keeps of a browser secret.
pub(crate) fn token_digest(token: &str) -> Vec<u8> {
    secret_digest(token).to_vec()
}

impl Vault {
    /// The CSRF token of the forms shown to the holder of `secret` (a session cookie or a
    /// sign-in token): a keyed digest of it, so it needs no storage and cannot be made
    /// without the vault's key.
    pub fn csrf_token(&self, secret: &str) -> String {
        hex::encode(self.keys.mac.digest("csrf", &[secret.as_bytes()]))
    }

    /// Whether `given` is the CSRF token of `secret`, compared in constant time.
    pub fn csrf_ok(&self, secret: &str, given: &str) -> bool {
        let want = self.csrf_token(secret);
        given.len() == want.len() && digests_equal(want.as_bytes(), given.as_bytes())
    }
}
