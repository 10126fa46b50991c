//! Breach readiness: canary records (`canary.rs`), the detector that reads the audit log as
//! it is sequenced (`detector.rs`), alerts and what delivers them (`alerts.rs`), incidents
//! and the register (`incidents.rs`), the blast radius and containment (`blast.rs`), and the
//! webhook deliveries the outbox makes (`webhook.rs`). The rules are `core::breach`'s.

mod alerts;
mod blast;
mod canary;
mod detector;
mod incidents;
mod notices;
pub(crate) mod webhook;

pub use alerts::{AlertView, DELIVERY_EXPIRY_MS, MAX_ALERTS};
pub use blast::{BlastQuery, Containment};
pub use canary::{MAX_PLANT, PlantedCanary};
pub use detector::DETECTOR_BATCH;
pub use incidents::{ClockView, IncidentChange, IncidentView, OpenIncident};
pub use notices::{NOTICE_EXPIRY_MS, Notices, Sent};
