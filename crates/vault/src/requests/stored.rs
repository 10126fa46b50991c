//! How a request is stored and shown: the row's body (the request without its reasons, and
//! its history), its reasons sealed under the subject's data key, and the view built from
//! both at the vault's clock.

use custos_core::crypto::{DataKey, FieldBinding};
use custos_core::ids::{RecordId, RequestId, SubjectId};
use custos_core::rights::{
    Calendar, Channel, ProfileId, Reason, Request, RequestKind, RequestStatus,
};
use custos_core::time::format_time_ms;
use custos_store::{EncryptedFields, RequestRow};
use serde::{Deserialize, Serialize, Serializer};

use crate::VaultError;

/// The pseudo-collection a request's reasons are bound to, so that a reason's ciphertext
/// opens for its own request and field only.
const COLLECTION: &str = "requests";
/// The field the extension's reason is sealed as.
pub(super) const EXTENSION_REASON: &str = "extension_reason";
/// The field the rejection's reason is sealed as.
pub(super) const REJECTION_REASON: &str = "rejection_reason";

/// What a request's row holds besides its columns: the request with its reasons taken out,
/// the purposes an objection names, and its history. Nothing in it is personal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Body {
    /// The request as the machine holds it, reasons `None`.
    pub(crate) request: Request,
    /// The purposes an objection names; empty for every purpose it may object to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) purposes: Vec<String>,
    /// Every step, oldest first.
    pub(crate) history: Vec<StoredStep>,
}

/// One step of a request's history, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredStep {
    pub(crate) transition: String,
    pub(crate) status: RequestStatus,
    pub(crate) at_ms: i64,
    pub(crate) by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

/// A reason as a reader sees it: its words, or erased with its subject's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReasonView {
    /// The reason as staff gave it.
    Given(Reason),
    /// The subject was erased: the reason was shredded with their key.
    Erased,
}

impl Serialize for ReasonView {
    /// `{"text": "..."}`, or `{"erased": true}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        match self {
            ReasonView::Given(r) => m.serialize_entry("text", r.as_str())?,
            ReasonView::Erased => m.serialize_entry("erased", &true)?,
        }
        m.end()
    }
}

/// One step of a request's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `file`, or the transition: `acknowledge`, `verify`, `approve`, `extend`, `reject`,
    /// `complete`.
    pub transition: String,
    /// Where it led.
    pub status: RequestStatus,
    /// When, ms since the epoch (RFC 3339 in JSON).
    #[serde(rename = "at", serialize_with = "time")]
    pub at_ms: i64,
    /// Who: `apikey:NAME`, `cli`, `customer:SUBJECT`.
    pub by: String,
    /// What was carried out with it, when something was: consent-ledger choices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A data-subject request as the desk shows it, at the vault's clock. Instants are ms since
/// the epoch, and RFC 3339 in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestView {
    /// The request.
    pub id: RequestId,
    /// Its subject.
    pub subject_id: SubjectId,
    /// What it asks for.
    pub kind: RequestKind,
    /// How it came in.
    pub channel: Channel,
    /// The profile its deadlines and rules come from.
    pub profile: ProfileId,
    /// Where it stands.
    pub status: RequestStatus,
    /// When it was received.
    #[serde(serialize_with = "time")]
    pub received_at: i64,
    /// When receipt must be confirmed, where the profile says (CCPA).
    #[serde(serialize_with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub acknowledge_by: Option<i64>,
    /// When receipt was confirmed.
    #[serde(serialize_with = "opt_time")]
    pub acknowledged_at: Option<i64>,
    /// When the subject was found verified (at approval).
    #[serde(serialize_with = "opt_time")]
    pub verified_at: Option<i64>,
    /// When it must be answered, as first computed.
    #[serde(serialize_with = "time")]
    pub due_at: i64,
    /// The extended deadline, once extended.
    #[serde(serialize_with = "opt_time")]
    pub extended_to: Option<i64>,
    /// The deadline now: the extended one, else the first.
    #[serde(serialize_with = "time")]
    pub deadline: i64,
    /// The deadline's date at the calendar's offset, `YYYY-MM-DD`.
    pub due_date: String,
    /// When it was completed or rejected.
    #[serde(serialize_with = "opt_time")]
    pub closed_at: Option<i64>,
    /// Calendar days to the deadline (0 on the day, negative once overdue); `None` when
    /// closed.
    pub days_left: Option<i64>,
    /// Whether it is open and its deadline has passed.
    pub overdue: bool,
    /// Whether receipt should have been confirmed by now and was not.
    pub acknowledgement_overdue: bool,
    /// Why it was extended.
    pub extension_reason: Option<ReasonView>,
    /// Why it was rejected.
    pub rejection_reason: Option<ReasonView>,
    /// The purposes an objection names (none: every purpose it may object to).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<String>,
    /// When its record goes, once closed: 24 months after (CCPA Regulations § 7101).
    #[serde(serialize_with = "opt_time")]
    pub kept_until: Option<i64>,
    /// Every step, oldest first.
    pub history: Vec<Step>,
}

fn time<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_time_ms(*ms))
}

fn opt_time<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => time(ms, s),
        None => s.serialize_none(),
    }
}

/// Where a reason of request `id` is sealed: bound to the request and the field.
pub(crate) fn binding(id: RequestId, field: &str) -> FieldBinding<'_> {
    FieldBinding {
        record: RecordId::from(id.as_uuid()),
        collection: COLLECTION,
        field,
    }
}

/// Seals `reason` as `field` of request `id` under the subject's key, when the subject still
/// has one; without it (the subject was erased) the reason is not kept at all, as it would
/// have been shredded with the key.
pub(super) fn seal(
    reasons: &mut EncryptedFields,
    key: Option<&DataKey>,
    id: RequestId,
    field: &str,
    reason: &Reason,
) {
    if let Some(key) = key {
        let ct = key.encrypt_field(binding(id, field), reason.as_str().as_bytes());
        reasons.insert(field.to_owned(), ct);
    }
}

/// The reason sealed as `field`, if the request has one: its words with the subject's key,
/// erased without.
fn open(
    row: &RequestRow,
    key: Option<&DataKey>,
    field: &str,
    given: bool,
) -> Result<Option<ReasonView>, VaultError> {
    if !given {
        return Ok(None);
    }
    let (Some(key), Some(ct)) = (key, row.reasons.get(field)) else {
        return Ok(Some(ReasonView::Erased));
    };
    let plain = key.decrypt_field(binding(row.id, field), ct)?;
    let text = std::str::from_utf8(plain.expose_secret())
        .map_err(|_| VaultError::Integrity("a request's reason is not UTF-8".into()))?;
    let reason = Reason::parse(text)
        .map_err(|_| VaultError::Integrity("a request's reason does not parse".into()))?;
    Ok(Some(ReasonView::Given(reason)))
}

/// A row's body.
///
/// # Errors
/// [`VaultError::Integrity`] when it is not a request's body, or not the row's request.
pub(crate) fn decode(row: &RequestRow) -> Result<Body, VaultError> {
    let body: Body = serde_json::from_slice(&row.body)
        .map_err(|_| VaultError::Integrity(format!("request {} is unreadable", row.id)))?;
    let r = &body.request;
    if r.id != row.id || r.subject != row.subject_id || r.status != row.status {
        return Err(VaultError::Integrity(format!(
            "request {} is not the request its row says",
            row.id
        )));
    }
    Ok(body)
}

/// The row of `body`'s request, its reasons as sealed, at `version` (the version read).
pub(super) fn row_of(body: &Body, reasons: EncryptedFields, version: i64) -> RequestRow {
    let r = &body.request;
    let mut stripped = body.clone();
    stripped.request.extension_reason = None;
    stripped.request.rejection_reason = None;
    RequestRow {
        id: r.id,
        subject_id: r.subject,
        kind: r.kind,
        status: r.status,
        due_ms: r.deadline(),
        received_ms: r.received_at,
        closed_ms: r.closed_at,
        version,
        body: serde_json::to_vec(&stripped).expect("a request serialises"),
        reasons,
    }
}

/// The view of a stored request at `now`, its reasons opened with the subject's key (`None`:
/// erased). Says too which reasons were opened, for the read's audit entry.
pub(super) fn view(
    row: &RequestRow,
    key: Option<&DataKey>,
    now: i64,
    calendar: &Calendar,
) -> Result<(RequestView, Vec<String>), VaultError> {
    let body = decode(row)?;
    let r = &body.request;
    let extension_reason = open(row, key, EXTENSION_REASON, r.extended_to.is_some())?;
    let rejection_reason = open(
        row,
        key,
        REJECTION_REASON,
        r.status == RequestStatus::Rejected,
    )?;
    let opened = [
        (EXTENSION_REASON, &extension_reason),
        (REJECTION_REASON, &rejection_reason),
    ]
    .into_iter()
    .filter(|(_, v)| matches!(v, Some(ReasonView::Given(_))))
    .map(|(f, _)| f.to_owned())
    .collect();
    let due_date = calendar
        .date_of(r.deadline())
        .map(|d| d.to_string())
        .unwrap_or_default();
    let view = RequestView {
        id: r.id,
        subject_id: r.subject,
        kind: r.kind,
        channel: r.channel,
        profile: r.profile,
        status: r.status,
        received_at: r.received_at,
        acknowledge_by: r.acknowledge_by,
        acknowledged_at: r.acknowledged_at,
        verified_at: r.verified_at,
        due_at: r.due_at,
        extended_to: r.extended_to,
        deadline: r.deadline(),
        due_date,
        closed_at: r.closed_at,
        days_left: r.days_left(now, calendar),
        overdue: r.is_overdue(now),
        acknowledgement_overdue: r.is_acknowledgement_overdue(now),
        extension_reason,
        rejection_reason,
        purposes: body.purposes.clone(),
        kept_until: r.kept_until(),
        history: body
            .history
            .iter()
            .map(|s| Step {
                transition: s.transition.clone(),
                status: s.status,
                at_ms: s.at_ms,
                by: s.by.clone(),
                detail: s.detail.clone(),
            })
            .collect(),
    };
    Ok((view, opened))
}
