//! Identifier newtypes, so that a subject id can never be passed where a record id belongs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new identifier: a UUIDv7, time-ordered so that inserts append to the
            /// database's B-trees instead of scattering across them (see BENCHMARKS.md). It
            /// reveals when it was made, to the millisecond, and nothing else: 74 of its bits
            /// are random.
            pub fn random() -> Self {
                Self(Uuid::now_v7())
            }

            /// A random identifier that carries no time (a UUIDv4): for what must not be
            /// linked to the moment it was made, such as an anonymised record.
            pub fn untimed() -> Self {
                Self(Uuid::new_v4())
            }

            /// The identifier's 16 bytes.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// The identifier as a UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| ParseIdError { what: $what })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }
    };
}

id_type!(
    /// A data subject: the customer a record is about. Pseudonymous: it carries no personal value.
    SubjectId,
    "subject id"
);
id_type!(
    /// One record in a collection.
    RecordId,
    "record id"
);
id_type!(
    /// One event of the consent ledger: a grant, a withdrawal, an objection or a restriction.
    EventId,
    "event id"
);

id_type!(
    /// A data-subject request: one access, erasure or other request, from receipt to answer.
    RequestId,
    "request id"
);

id_type!(
    /// A message in the outbox, from the moment it is queued until it is sent or given up.
    MailId,
    "mail id"
);

id_type!(
    /// A member of staff who signs in to the console, as audit entries name them
    /// (`operator:ID`).
    OperatorId,
    "operator id"
);

id_type!(
    /// An alert: something in the audit log that looks like a breach.
    AlertId,
    "alert id"
);

id_type!(
    /// An incident: a breach, or a suspected one, from the moment staff open it.
    IncidentId,
    "incident id"
);

/// A string that is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} is not a UUID")]
pub struct ParseIdError {
    /// Which kind of identifier was expected.
    pub what: &'static str,
}
