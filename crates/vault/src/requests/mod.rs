//! The request desk: data-subject requests filed, listed, read and moved through their state
//! machine, each change committed with its audit entry. A request's deadlines come from the
//! profile of the subject's jurisdiction; its reasons are sealed under the subject's data key,
//! so erasing the subject shreds them while the request's record (kind, dates, status) stays.

mod expiry;
pub(crate) mod stored;
mod transition;
mod weekly;

pub(crate) use transition::SelfService;

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::countries;
use custos_core::crypto::{DataKey, WrapContext};
use custos_core::ids::{RequestId, SubjectId};
use custos_core::inventory::{FieldRef, LegalBasis, Period};
use custos_core::principal::Act;
use custos_core::rights::{
    Channel, NewRequestError, Profile, Request, RequestKind, RequestStatus, jurisdiction,
};
use custos_store::{QueuedAudit, RequestQuery, RequestRow, StoreError};

use stored::{Body, StoredStep};
pub use stored::{ReasonView, RequestView, Step};
pub use weekly::WeekCount;
pub(crate) use weekly::monday_of;

use crate::{InvalidKind, Principal, Vault, VaultError};

/// The most requests one list returns.
pub const MAX_LIST: usize = 1_000;

/// Where a subject is, as a request says: each part, when given, wins over what the subject's
/// record holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// ISO 3166-1 alpha-2 (`DE`).
    pub country: Option<String>,
    /// ISO 3166-2 (`US-CA`).
    pub region: Option<String>,
}

/// A request to file, as the caller gave it.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// Whose request it is.
    pub subject: SubjectId,
    /// What it asks for.
    pub kind: RequestKind,
    /// How it came in.
    pub channel: Channel,
    /// When it was received, RFC 3339; now when not given. Never later than now.
    pub received_at: Option<String>,
    /// Where the subject is, when the request says.
    pub place: Place,
    /// For an objection: the purposes objected to (none: every purpose on legitimate
    /// interests or a public task).
    pub purposes: Vec<String>,
}

/// Which requests a list returns; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// One subject's requests.
    pub subject: Option<SubjectId>,
    /// Requests in this status.
    pub status: Option<RequestStatus>,
    /// Requests of this kind.
    pub kind: Option<RequestKind>,
    /// Open requests due within this period from now, overdue ones included.
    pub due_within: Option<Period>,
    /// Open requests past their deadline.
    pub overdue: bool,
    /// Open requests only.
    pub open: bool,
}

/// The statuses of an open request.
const OPEN: [RequestStatus; 4] = [
    RequestStatus::Received,
    RequestStatus::Verifying,
    RequestStatus::InProgress,
    RequestStatus::Extended,
];

fn request_entry(p: &Principal, action: Action, r: &Request) -> AuditEntry {
    let mut e = AuditEntry::new(p.actor(), action, Outcome::Ok);
    e.subject_id = Some(r.subject);
    e.request_id = Some(r.id);
    e
}

fn queued(e: &AuditEntry) -> QueuedAudit {
    QueuedAudit {
        subject_id: e.subject_id,
        entry: e.to_bytes(),
    }
}

/// An instant a request names as `field`: RFC 3339, not later than `now`.
fn instant(field: &str, s: &str, now: i64) -> Result<i64, VaultError> {
    let at = chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            VaultError::invalid(
                field,
                "date_time",
                "is not an RFC 3339 date and time, such as 2027-01-31T09:30:00Z",
            )
        })?;
    if at > now {
        return Err(VaultError::invalid(
            field,
            "in_the_future",
            "is later than now: a request is logged once it is received",
        ));
    }
    Ok(at)
}

/// A place's codes, upper-cased, each a valid code or refused naming its field.
fn place(p: &Place) -> Result<Place, VaultError> {
    let code = |v: &Option<String>| v.as_deref().map(|s| s.trim().to_ascii_uppercase());
    let (country, region) = (code(&p.country), code(&p.region));
    if country.as_deref().is_some_and(|c| !countries::is_alpha2(c)) {
        return Err(VaultError::invalid(
            "jurisdiction.country",
            "country",
            "is not an ISO 3166-1 alpha-2 country code, such as \"DE\"",
        ));
    }
    if region.as_deref().is_some_and(|r| !countries::is_region(r)) {
        return Err(VaultError::invalid(
            "jurisdiction.region",
            "region",
            "is not an ISO 3166-2 region code, such as \"US-CA\"",
        ));
    }
    Ok(Place { country, region })
}

impl Vault {
    /// Files a data-subject request: its profile from the subject's jurisdiction (the
    /// inventory's rules over the country and region the request gives, else the ones the
    /// subject's record holds, else the default profile), its deadlines from the profile, and
    /// its audit entry in the same transaction, naming any field read to place the subject.
    ///
    /// # Errors
    /// `Forbidden` for a caller who may not file for this subject; `Invalid` naming the field
    /// for an unknown subject, a kind the profile does not offer, a bad or future
    /// `received_at`, a bad country or region, or purposes an objection cannot name.
    pub async fn file_request(
        &self,
        p: &Principal,
        new: NewRequest,
    ) -> Result<RequestView, VaultError> {
        self.authorize(
            p,
            &Act::FileRequest {
                subject: new.subject,
            },
        )?;
        let now = self.now_ms();
        let received_at = match new.received_at.as_deref() {
            Some(s) => instant("received_at", s, now)?,
            None => now,
        };
        let given = place(&new.place)?;
        let purposes = self.objected_purposes(new.kind, new.purposes)?;
        let unknown = || {
            VaultError::invalid_as(
                InvalidKind::UnknownSubject,
                "subject_id",
                "unknown_subject",
                "no subject with this id exists",
            )
        };
        let key = self
            .subject_data_key(new.subject)
            .await?
            .ok_or_else(unknown)?;
        let (profile, read) = self.jurisdiction_of(new.subject, given).await?;
        let calendar = &self.inventory.rights.calendar;
        let request = Request::new(
            RequestId::random(),
            new.subject,
            new.kind,
            new.channel,
            profile.id,
            received_at,
            calendar,
        )
        .map_err(|e| match e {
            NewRequestError::DateOutOfRange(_) => {
                VaultError::invalid("received_at", e.rule(), e.to_string())
            }
            _ => VaultError::invalid("kind", e.rule(), e.to_string()),
        })?;
        let body = Body {
            history: vec![StoredStep {
                transition: "file".to_owned(),
                status: request.status,
                at_ms: now,
                by: p.actor(),
                detail: None,
            }],
            request,
            purposes,
        };
        let mut e = request_entry(p, Action::RequestFile, &body.request);
        e.detail = Some(format!(
            "{} request by {} under {}",
            new.kind, new.channel, profile.id
        ));
        if let Some((collection, fields)) = read {
            e.collection = Some(collection);
            e.fields = fields;
        }
        let row = stored::row_of(&body, Default::default(), 1);
        self.store
            .insert_request(row.clone(), queued(&e))
            .await
            .map_err(|e| match e {
                StoreError::NotFound => unknown(),
                e => e.into(),
            })?;
        Ok(stored::view(&row, Some(&key), now, calendar)?.0)
    }

    /// The purposes an objection names, each declared and open to objection; none for any
    /// other kind.
    fn objected_purposes(
        &self,
        kind: RequestKind,
        purposes: Vec<String>,
    ) -> Result<Vec<String>, VaultError> {
        if purposes.is_empty() {
            return Ok(purposes);
        }
        if kind != RequestKind::Objection {
            return Err(VaultError::invalid(
                "purposes",
                "not_allowed",
                "only an objection names purposes",
            ));
        }
        for id in &purposes {
            let named =
                custos_core::fields::echoable(id).map_or_else(String::new, |n| format!(" {n:?}"));
            let purpose = self.inventory.purpose(id).ok_or_else(|| {
                VaultError::invalid_as(
                    InvalidKind::UnknownPurpose,
                    "purposes",
                    "unknown_purpose",
                    format!("no purpose{named} is declared in the inventory"),
                )
            })?;
            if !matches!(
                purpose.legal_basis,
                LegalBasis::LegitimateInterests | LegalBasis::PublicTask
            ) {
                return Err(VaultError::invalid(
                    "purposes",
                    "no_right_to_object",
                    format!(
                        "purpose{named} rests on {}; an objection (GDPR Art. 21) applies to \
                         legitimate_interests or public_task",
                        purpose.legal_basis.as_str()
                    ),
                ));
            }
        }
        Ok(purposes)
    }

    /// The subject's data key, or `None` once they were erased (or never existed).
    pub(crate) async fn subject_data_key(
        &self,
        subject: SubjectId,
    ) -> Result<Option<DataKey>, VaultError> {
        match self.store.subject_key(subject).await? {
            Some(w) => Ok(Some(
                self.keys.root.unwrap(WrapContext::Subject(subject), &w)?,
            )),
            None => Ok(None),
        }
    }

    /// The value of `field` in the subject's most recently changed record of its collection
    /// that holds it, as text, opened with the key read with that record (so a rotation of
    /// the subject's key between reads never pairs a record with another key).
    fn latest_value(
        &self,
        records: &[custos_store::RecordWithKey],
        field: &FieldRef,
    ) -> Result<Option<String>, VaultError> {
        let latest = records
            .iter()
            .filter(|r| {
                r.record.collection == field.collection
                    && r.record.fields.contains_key(&field.field)
            })
            .max_by_key(|r| r.record.updated_ms);
        let Some(rec) = latest else { return Ok(None) };
        let r = &rec.record;
        let key = self
            .keys
            .root
            .unwrap(WrapContext::Subject(r.subject_id), &rec.wrapped_key)?;
        let value = crate::records::open_field(&key, r, &field.field, &r.fields[&field.field])?;
        // A country or region code, which places the subject under a profile.
        Ok(value.expose_secret().as_str().map(str::to_owned))
    }

    /// The profile a subject falls under, from the place given or else the country and region
    /// fields their records hold; with the collection and fields read, when any was.
    pub(crate) async fn jurisdiction_of(
        &self,
        subject: SubjectId,
        given: Place,
    ) -> Result<(&'static Profile, Option<(String, Vec<String>)>), VaultError> {
        let rights = &self.inventory.rights;
        let wanted: Vec<&FieldRef> = [
            (given.country.is_none(), rights.country_field.as_ref()),
            (given.region.is_none(), rights.region_field.as_ref()),
        ]
        .into_iter()
        .filter_map(|(missing, f)| f.filter(|_| missing))
        .collect();
        let mut found = Place::default();
        let mut read: Option<(String, Vec<String>)> = None;
        if !wanted.is_empty() {
            let records = self.store.subject_records(subject).await?;
            for f in wanted {
                let Some(value) = self.latest_value(&records, f)? else {
                    continue;
                };
                let entry = read.get_or_insert_with(|| (f.collection.clone(), Vec::new()));
                entry.1.push(f.field.clone());
                if rights.country_field.as_ref() == Some(f) {
                    found.country = Some(value);
                } else {
                    found.region = Some(value);
                }
            }
        }
        let country = given.country.or(found.country);
        let region = given.region.or(found.region);
        let profile = jurisdiction(&self.inventory, country.as_deref(), region.as_deref());
        Ok((profile, read))
    }

    /// Data-subject requests in deadline order (at most [`MAX_LIST`]), each with its days
    /// left and whether it is overdue at the vault's clock. A reason opened is a read of what
    /// may be personal, and audited before the list is returned.
    ///
    /// # Errors
    /// `Forbidden` for a caller who may not read these requests.
    pub async fn requests(
        &self,
        p: &Principal,
        filter: RequestFilter,
    ) -> Result<Vec<RequestView>, VaultError> {
        self.authorize(
            p,
            &Act::ReadRequests {
                subject: filter.subject,
            },
        )?;
        let now = self.now_ms();
        let open_only = filter.open || filter.overdue || filter.due_within.is_some();
        let statuses: Vec<RequestStatus> = match filter.status {
            Some(s) if open_only && s.is_closed() => return Ok(Vec::new()),
            Some(s) => vec![s],
            None if open_only => OPEN.to_vec(),
            None => Vec::new(),
        };
        let due_by = [
            filter.overdue.then(|| now - 1),
            filter.due_within.map(|d| d.after(now).unwrap_or(i64::MAX)),
        ]
        .into_iter()
        .flatten()
        .min();
        let rows = self
            .store
            .requests(&RequestQuery {
                subject: filter.subject,
                statuses,
                kind: filter.kind,
                due_by,
                limit: MAX_LIST,
                ..RequestQuery::default()
            })
            .await?;
        self.request_views(p, &rows).await
    }

    /// One data-subject request, with its history. A reason opened is audited as a read.
    ///
    /// # Errors
    /// `Forbidden` for a caller who may not read this subject's requests (a caller who may
    /// read none is refused whether or not the request exists); `NotFound`.
    pub async fn request(&self, p: &Principal, id: RequestId) -> Result<RequestView, VaultError> {
        let row = self.store.request(id).await?;
        // Whose request it is is known once it is read; a caller refused any subject's
        // requests is refused alike for one that does not exist.
        self.authorize(
            p,
            &Act::ReadRequests {
                subject: row.as_ref().map(|r| r.subject_id),
            },
        )?;
        let row = row.ok_or(VaultError::NotFound("request"))?;
        let mut v = self.request_views(p, std::slice::from_ref(&row)).await?;
        Ok(v.remove(0))
    }

    /// The views of stored requests at the vault's clock, with one audit entry queued per
    /// request whose reasons were opened.
    pub(super) async fn request_views(
        &self,
        p: &Principal,
        rows: &[RequestRow],
    ) -> Result<Vec<RequestView>, VaultError> {
        let now = self.now_ms();
        let calendar = &self.inventory.rights.calendar;
        let mut keys: Vec<(SubjectId, Option<DataKey>)> = Vec::new();
        let mut views = Vec::with_capacity(rows.len());
        let mut audits = Vec::new();
        for row in rows {
            // Only a request with a reason needs its subject's key.
            let needs_key = !row.reasons.is_empty();
            let at = match keys.iter().position(|(s, _)| *s == row.subject_id) {
                Some(i) => Some(i),
                None if needs_key => {
                    keys.push((row.subject_id, self.subject_data_key(row.subject_id).await?));
                    Some(keys.len() - 1)
                }
                None => None,
            };
            // A rotation of the subject's key between reading the row and the key: both are
            // read again, so the reasons open with the key they were sealed under.
            let mut row = std::borrow::Cow::Borrowed(row);
            if let Some(i) = at {
                let other = |k: &DataKey| {
                    row.reasons.values().any(|ct| {
                        custos_core::crypto::ciphertext_key_version(ct)
                            .is_ok_and(|v| v != k.version())
                    })
                };
                if keys[i].1.as_ref().is_some_and(other) {
                    keys[i].1 = self.subject_data_key(row.subject_id).await?;
                    if let Some(again) = self.store.request(row.id).await? {
                        row = std::borrow::Cow::Owned(again);
                    }
                }
            }
            let key = at.and_then(|i| keys[i].1.as_ref());
            let (view, opened) = stored::view(&row, key, now, calendar)?;
            if !opened.is_empty() {
                let mut e = AuditEntry::new(p.actor(), Action::RequestRead, Outcome::Ok);
                e.subject_id = Some(row.subject_id);
                e.request_id = Some(row.id);
                e.fields = opened;
                audits.push(queued(&e));
            }
            views.push(view);
        }
        if !audits.is_empty() {
            self.store.append_audit(audits).await?;
        }
        Ok(views)
    }
}
