//! A wrapper for personal values and key material: redacted in `Debug`, zeroised on drop.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A value that must not be printed or logged. Reading it is explicit: [`Secret::expose_secret`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value. Every use is a place where a secret leaves its wrapper: keep them few.
    pub fn expose_secret(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new(String::from("ada@example.com"));
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(s.expose_secret(), "ada@example.com");
    }
}
