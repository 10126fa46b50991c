//! A data-subject request as a state machine: what it asks for, how it came in, where it
//! stands, its deadlines, and the transitions that move it on, each refused with the rule it
//! would break. The machine's table and its rules are in the
//! [`rights`](crate::rights#the-request-machine) documentation.

use serde::{Deserialize, Serialize};

use super::calendar::{Calendar, OutOfRangeError};
use super::profile::{ProfileId, RequestKind};
use crate::ids::{RequestId, SubjectId};

names! {
    /// How a request reached the controller.
    Channel, "channel" {
        /// A self-service page.
        Portal = "portal",
        /// An email.
        Email = "email",
        /// A phone call.
        Phone = "phone",
        /// A letter.
        Letter = "letter",
        /// A call of the HTTP API, by the controller's own systems.
        Api = "api",
    }
}

names! {
    /// Where a request stands.
    RequestStatus, "request status" {
        /// Logged, its clock running; nothing done yet.
        Received = "received",
        /// The subject's identity is being checked.
        Verifying = "verifying",
        /// Approved: being carried out.
        InProgress = "in_progress",
        /// Being carried out, under an extended deadline.
        Extended = "extended",
        /// Answered. Closed.
        Completed = "completed",
        /// Refused, with a reason. Closed.
        Rejected = "rejected",
    }
}

impl RequestStatus {
    /// Whether the request is completed or rejected, and so changes no more.
    pub fn is_closed(self) -> bool {
        matches!(self, RequestStatus::Completed | RequestStatus::Rejected)
    }
}

/// How long the record of a closed request is kept, in months: "at least 24 months" (CCPA
/// Regulations § 7101(a)). The record holds no personal value, so keeping it past the
/// subject's erasure keeps nothing of them.
pub const RECORD_KEPT_MONTHS: u32 = 24;

/// The longest reason accepted, in characters.
pub const MAX_REASON_LENGTH: usize = 2_000;

/// Why a request is extended or rejected, in words the subject is told. Never empty. Staff
/// write it, so it may name a person: `Debug` shows its length only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

/// A reason that is empty or too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseReasonError {
    /// Nothing but white space.
    #[error("the reason is empty: say why, in words the subject is told")]
    Empty,
    /// Longer than [`MAX_REASON_LENGTH`].
    #[error("the reason is longer than {MAX_REASON_LENGTH} characters")]
    TooLong,
}

impl Reason {
    /// A reason, trimmed.
    ///
    /// # Errors
    /// [`ParseReasonError`] when it is empty or longer than [`MAX_REASON_LENGTH`].
    pub fn parse(s: &str) -> Result<Reason, ParseReasonError> {
        let s = s.trim();
        if s.is_empty() {
            Err(ParseReasonError::Empty)
        } else if s.chars().count() > MAX_REASON_LENGTH {
            Err(ParseReasonError::TooLong)
        } else {
            Ok(Reason(s.to_owned()))
        }
    }

    /// The reason's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reason([{} characters])", self.0.chars().count())
    }
}

impl TryFrom<String> for Reason {
    type Error = ParseReasonError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Reason::parse(&s)
    }
}

impl From<Reason> for String {
    fn from(r: Reason) -> String {
        r.0
    }
}

/// What can happen to a request. In JSON: `{"transition": "verify"}`, or
/// `{"transition": "reject", "reason": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transition", content = "reason", rename_all = "snake_case")]
pub enum Transition {
    /// Receipt is confirmed to the subject.
    Acknowledge,
    /// Checking the subject's identity starts.
    Verify,
    /// The subject's identity is checked (where the kind needs it): the work starts.
    Approve,
    /// The deadline is extended as the profile allows, the subject told why.
    Extend(Reason),
    /// The request is refused, the subject told why.
    Reject(Reason),
    /// The request is answered.
    Complete,
}

impl Transition {
    /// The transition's name: `acknowledge`, `verify`, `approve`, `extend`, `reject`,
    /// `complete`.
    pub fn name(&self) -> &'static str {
        match self {
            Transition::Acknowledge => "acknowledge",
            Transition::Verify => "verify",
            Transition::Approve => "approve",
            Transition::Extend(_) => "extend",
            Transition::Reject(_) => "reject",
            Transition::Complete => "complete",
        }
    }
}

/// A request that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NewRequestError {
    /// The profile knows no request of this kind.
    #[error("the {profile} profile has no {kind} requests")]
    KindNotOffered {
        /// The kind asked for.
        kind: RequestKind,
        /// The request's profile.
        profile: ProfileId,
    },
    /// The receipt is outside the range deadlines can be counted in.
    #[error(transparent)]
    DateOutOfRange(#[from] OutOfRangeError),
}

impl NewRequestError {
    /// The rule, in stable snake_case: `kind_not_offered`, `date_out_of_range`.
    pub fn rule(&self) -> &'static str {
        match self {
            NewRequestError::KindNotOffered { .. } => "kind_not_offered",
            NewRequestError::DateOutOfRange(_) => "date_out_of_range",
        }
    }
}

/// A transition the machine refuses, naming the rule it would break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// A completed or rejected request changes no more.
    #[error("the request is {status}: a completed or rejected request changes no more")]
    RequestClosed {
        /// Its status.
        status: RequestStatus,
    },
    /// Receipt is confirmed once.
    #[error("receipt of the request was acknowledged already")]
    AlreadyAcknowledged,
    /// Verification has started already.
    #[error("the subject's verification is under way already")]
    AlreadyVerifying,
    /// The request was approved already.
    #[error("the request is {status}: it was approved already")]
    AlreadyApproved {
        /// Its status.
        status: RequestStatus,
    },
    /// This kind is approved only once its subject is verified.
    #[error("{kind} requests are approved only once their subject is verified: verify first")]
    NotVerified {
        /// The request's kind.
        kind: RequestKind,
    },
    /// Extending and completing need the request approved.
    #[error("the request is {status}: approve it before you {transition} it")]
    NotApproved {
        /// Its status.
        status: RequestStatus,
        /// What was asked: `extend` or `complete`.
        transition: &'static str,
    },
    /// The profile allows one extension.
    #[error("the request was extended already: the {profile} profile allows one extension")]
    AlreadyExtended {
        /// The request's profile.
        profile: ProfileId,
    },
    /// The profile allows no extension of this kind.
    #[error("the {profile} profile allows no extension of {kind} requests")]
    ExtensionNotAllowed {
        /// The request's profile.
        profile: ProfileId,
        /// The request's kind.
        kind: RequestKind,
    },
    /// An extension is decided, and the subject told, within the original period.
    #[error("the request was due on {due}: an extension must be noticed to the subject by then")]
    ExtensionTooLate {
        /// The original due date, at the calendar's offset.
        due: chrono::NaiveDate,
    },
    /// A transition is dated at or after the request's last change.
    #[error("the transition is dated before the request's last change")]
    OutOfOrder,
    /// A date outside the range deadlines can be counted in.
    #[error(transparent)]
    DateOutOfRange(#[from] OutOfRangeError),
}

impl TransitionError {
    /// The rule broken, in stable snake_case, for an API's error code.
    pub fn rule(&self) -> &'static str {
        match self {
            TransitionError::RequestClosed { .. } => "request_closed",
            TransitionError::AlreadyAcknowledged => "already_acknowledged",
            TransitionError::AlreadyVerifying => "already_verifying",
            TransitionError::AlreadyApproved { .. } => "already_approved",
            TransitionError::NotVerified { .. } => "not_verified",
            TransitionError::NotApproved { .. } => "not_approved",
            TransitionError::AlreadyExtended { .. } => "already_extended",
            TransitionError::ExtensionNotAllowed { .. } => "extension_not_allowed",
            TransitionError::ExtensionTooLate { .. } => "extension_too_late",
            TransitionError::OutOfOrder => "out_of_order",
            TransitionError::DateOutOfRange(_) => "date_out_of_range",
        }
    }
}

/// A data-subject request. Made by [`Request::new`] and moved on by [`Request::apply`];
/// its fields are public so that a store can keep and rebuild it. Instants are milliseconds
/// since the epoch; a deadline is the last millisecond that is in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The request's id.
    pub id: RequestId,
    /// Whose request it is.
    pub subject: SubjectId,
    /// What it asks for.
    pub kind: RequestKind,
    /// How it came in.
    pub channel: Channel,
    /// The profile its deadlines and rules come from.
    pub profile: ProfileId,
    /// Where it stands.
    pub status: RequestStatus,
    /// When it was received: its clock starts here.
    pub received_at: i64,
    /// When receipt must be confirmed, where the profile says.
    pub acknowledge_by: Option<i64>,
    /// When receipt was confirmed.
    pub acknowledged_at: Option<i64>,
    /// When the subject's identity was found checked (at approval).
    pub verified_at: Option<i64>,
    /// When it must be answered, as first computed.
    pub due_at: i64,
    /// The extended deadline, once extended.
    pub extended_to: Option<i64>,
    /// Why it was extended.
    pub extension_reason: Option<Reason>,
    /// Why it was rejected.
    pub rejection_reason: Option<Reason>,
    /// When it was completed or rejected.
    pub closed_at: Option<i64>,
}

impl Request {
    /// A request received at `received_at`, its deadlines computed from its profile.
    ///
    /// # Errors
    /// [`NewRequestError::KindNotOffered`] for a kind the profile does not know (an opt-out
    /// of sale or sharing under GDPR, whose nearest right is an objection; a restriction
    /// under CCPA); [`NewRequestError::DateOutOfRange`] for an impossible instant.
    pub fn new(
        id: RequestId,
        subject: SubjectId,
        kind: RequestKind,
        channel: Channel,
        profile: ProfileId,
        received_at: i64,
        calendar: &Calendar,
    ) -> Result<Request, NewRequestError> {
        let p = profile.profile();
        if !p.offers(kind) {
            return Err(NewRequestError::KindNotOffered { kind, profile });
        }
        Ok(Request {
            id,
            subject,
            kind,
            channel,
            profile,
            status: RequestStatus::Received,
            received_at,
            acknowledge_by: p.acknowledge_by(kind, received_at, calendar)?,
            acknowledged_at: None,
            verified_at: None,
            due_at: p.due(kind, received_at, calendar)?,
            extended_to: None,
            extension_reason: None,
            rejection_reason: None,
            closed_at: None,
        })
    }

    /// The request after `transition` at `at`, or the rule that refuses it (see [the
    /// table](crate::rights#the-request-machine)).
    ///
    /// # Errors
    /// A [`TransitionError`] naming the rule the transition would break.
    pub fn apply(
        &self,
        transition: Transition,
        at: i64,
        calendar: &Calendar,
    ) -> Result<Request, TransitionError> {
        use RequestStatus::{Extended, InProgress, Received, Verifying};
        if self.status.is_closed() {
            return Err(TransitionError::RequestClosed {
                status: self.status,
            });
        }
        if at < self.last_change() {
            return Err(TransitionError::OutOfOrder);
        }
        let mut next = self.clone();
        match (transition, self.status) {
            (Transition::Acknowledge, _) if self.acknowledged_at.is_some() => {
                return Err(TransitionError::AlreadyAcknowledged);
            }
            (Transition::Acknowledge, _) => next.acknowledged_at = Some(at),
            (Transition::Verify, Received) => next.status = Verifying,
            (Transition::Verify, Verifying) => return Err(TransitionError::AlreadyVerifying),
            (Transition::Approve, Received) if self.kind.needs_verification() => {
                return Err(TransitionError::NotVerified { kind: self.kind });
            }
            (Transition::Approve, Received) => next.status = InProgress,
            (Transition::Approve, Verifying) => {
                next.status = InProgress;
                next.verified_at = Some(at);
            }
            (Transition::Verify | Transition::Approve, status) => {
                return Err(TransitionError::AlreadyApproved { status });
            }
            (Transition::Extend(reason), InProgress) => {
                next.extended_to = Some(self.extension(at, calendar)?);
                next.extension_reason = Some(reason);
                next.status = Extended;
            }
            (Transition::Extend(_), Extended) => {
                return Err(TransitionError::AlreadyExtended {
                    profile: self.profile,
                });
            }
            (Transition::Reject(reason), _) => {
                next.status = RequestStatus::Rejected;
                next.rejection_reason = Some(reason);
                next.closed_at = Some(at);
            }
            (Transition::Complete, InProgress | Extended) => {
                next.status = RequestStatus::Completed;
                next.closed_at = Some(at);
            }
            (t @ (Transition::Extend(_) | Transition::Complete), status) => {
                return Err(TransitionError::NotApproved {
                    status,
                    transition: t.name(),
                });
            }
        }
        Ok(next)
    }

    /// The extended deadline, if the profile allows one for this request at `at`.
    fn extension(&self, at: i64, calendar: &Calendar) -> Result<i64, TransitionError> {
        let profile = self.profile.profile();
        let Some(extended) = profile.extended_due(self.kind, self.due_at, calendar)? else {
            return Err(TransitionError::ExtensionNotAllowed {
                profile: self.profile,
                kind: self.kind,
            });
        };
        if at > self.due_at {
            return Err(TransitionError::ExtensionTooLate {
                due: calendar.date_of(self.due_at)?,
            });
        }
        Ok(extended)
    }

    /// The latest instant the request records: no transition may be dated before it.
    fn last_change(&self) -> i64 {
        [self.acknowledged_at, self.verified_at, self.closed_at]
            .into_iter()
            .flatten()
            .fold(self.received_at, i64::max)
    }

    /// The deadline now: the extended one, else the first.
    pub fn deadline(&self) -> i64 {
        self.extended_to.unwrap_or(self.due_at)
    }

    /// When the record of a closed request may go: [`RECORD_KEPT_MONTHS`] after it closed,
    /// as a calendar period in UTC. `None` while it is open, or past the calendar's range.
    pub fn kept_until(&self) -> Option<i64> {
        use crate::inventory::{Period, PeriodUnit};
        let kept = Period {
            amount: RECORD_KEPT_MONTHS,
            unit: PeriodUnit::Months,
        };
        kept.after(self.closed_at?)
    }

    /// Whether the request is open and its deadline has passed at `at`.
    pub fn is_overdue(&self, at: i64) -> bool {
        !self.status.is_closed() && at > self.deadline()
    }

    /// Whether receipt should have been confirmed by `at` and was not, while the request is
    /// open.
    pub fn is_acknowledgement_overdue(&self, at: i64) -> bool {
        !self.status.is_closed()
            && self.acknowledged_at.is_none()
            && self.acknowledge_by.is_some_and(|by| at > by)
    }

    /// Calendar days from the date of `at` to the deadline's date: 0 on the day it is due,
    /// negative once overdue. `None` for a closed request, or an instant outside the
    /// calendar's range.
    pub fn days_left(&self, at: i64, calendar: &Calendar) -> Option<i64> {
        if self.status.is_closed() {
            return None;
        }
        calendar.days_between(at, self.deadline()).ok()
    }
}

#[cfg(test)]
mod tests;
