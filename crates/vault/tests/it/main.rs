//! The vault's own integration tests: mail delivery against a real SMTP receiver, what
//! mail must never leave behind, and portal sessions on several servers.

mod mail;
mod mail_safety;
mod operators;
mod portal;
mod support;
