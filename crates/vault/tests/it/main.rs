//! The vault's own integration tests: mail delivery against a real SMTP receiver, and what
//! mail must never leave behind.

mod mail;
mod mail_safety;
mod support;
