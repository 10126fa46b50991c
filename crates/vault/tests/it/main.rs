//! The vault's own integration tests: mail delivery against a real SMTP receiver.

mod mail;
