//! The Custos domain, pure: the inventory, field types, envelope encryption and blind
//! indexes, the consent ledger's events and the state they add up to, access decisions, and
//! the RFC 6962 Merkle tree behind the audit log.
//!
//! This crate does no IO and knows nothing of HTTP, SQL or async runtimes.

pub mod access;
pub mod accountability;
pub mod audit;
pub mod backup;
pub mod breach;
pub mod certificate;
pub mod consent;
pub mod countries;
pub mod crypto;
pub mod dpia;
pub mod erasure;
pub mod fields;
pub mod ids;
pub mod inventory;
pub mod mail;
pub mod merkle;
pub mod notice;
pub mod operator;
pub mod personal;
pub mod principal;
pub mod receipt;
pub mod retention;
pub mod rights;
pub mod ropa;
pub mod secret;
pub mod signed;
pub mod signin;
pub mod time;
pub mod verify;
