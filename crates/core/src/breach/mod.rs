//! Breach readiness, pure: what an alert is ([`alert`]), the rules that raise one from the
//! audit log ([`detect`]), how a webhook delivery is signed and checked ([`webhook`]), the
//! deadlines a breach starts ([`clock`]), an incident and the register it is kept in
//! ([`incident`]), and what a compromised caller could have read ([`blast`]).
//!
//! The vault does the IO: it plants canaries, runs the detector over the log as it is
//! sequenced, queues alerts through the outbox, and keeps incidents.

pub mod alert;
pub mod blast;
pub mod clock;
pub mod detect;
pub mod incident;
pub mod notice;
pub mod webhook;

pub use alert::{Alert, AlertKind};
pub use clock::{Addressee, Deadline, Duty, Within, deadlines};
pub use incident::{Decision, Incident, IncidentStatus, Step};
