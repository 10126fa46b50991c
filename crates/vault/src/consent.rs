//! The consent ledger: recording a subject's choices (consent, objection, restriction) and
//! reading them back, and the state every read of personal data is decided against.

use std::net::IpAddr;

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::consent::{Choice, ConsentEvent, ConsentStatus, Evidence, Source, SubjectState};
use custos_core::ids::{EventId, SubjectId};
use custos_core::inventory::LegalBasis;
use custos_core::receipt::{self, Controller, RECEIPT_VERSION, Receipt, ReceiptPurpose};
use custos_core::time::format_time_ms;
use serde::Serialize;

use custos_core::principal::Act;

use crate::{InvalidKind, Principal, Vault, VaultError};

/// The longest evidence string kept (a URL, a user agent, a notice version, a reason).
const MAX_TEXT: usize = 512;

/// A choice to record, as the caller gave it.
#[derive(Debug, Clone)]
pub struct NewChoice {
    /// What was chosen.
    pub choice: Choice,
    /// For which purpose (none for a restriction).
    pub purpose: Option<String>,
    /// Where it was made.
    pub source: Source,
    /// The privacy notice version shown; the current one when not given.
    pub notice_version: Option<String>,
    /// The page or form it was collected on.
    pub collection_point: Option<String>,
    /// The browser's user agent.
    pub user_agent: Option<String>,
    /// The IP address it came from: hashed under the vault's key, never stored.
    pub ip: Option<String>,
    /// When a grant ends by itself, RFC 3339.
    pub expires_at: Option<String>,
    /// Why, for an objection or a restriction.
    pub reason: Option<String>,
}

/// One purpose as the ledger stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurposeView {
    /// The purpose.
    pub purpose: String,
    /// Its legal basis.
    pub legal_basis: LegalBasis,
    /// For a consent-based purpose: `not_given`, `granted`, `lapsed` or `withdrawn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<&'static str>,
    /// When a grant lapses, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_until: Option<String>,
    /// Whether the subject objects to it.
    pub objected: bool,
    /// Whether the purpose can be used for this subject now; if not, why not.
    pub usable: bool,
    /// Why not, when it cannot: `no_consent`, `consent_withdrawn`, `objection`, `restricted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// A subject's ledger: the state per declared purpose now, and every event, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerView {
    /// The subject.
    pub subject_id: SubjectId,
    /// Whether processing is restricted (GDPR Art. 18).
    pub restricted: bool,
    /// Every declared purpose, in inventory order.
    pub purposes: Vec<PurposeView>,
    /// Every event, in the order recorded.
    pub history: Vec<ConsentEvent>,
}

fn status_name(s: ConsentStatus) -> &'static str {
    match s {
        ConsentStatus::NotGiven => "not_given",
        ConsentStatus::Granted { .. } => "granted",
        ConsentStatus::Lapsed => "lapsed",
        ConsentStatus::Withdrawn => "withdrawn",
    }
}

/// A piece of evidence: trimmed, bounded, printable; `None` when empty.
fn text(field: &str, v: Option<String>) -> Result<Option<String>, VaultError> {
    let Some(v) = v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > MAX_TEXT {
        return Err(VaultError::invalid(
            field,
            "too_long",
            format!("is longer than {MAX_TEXT} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(VaultError::invalid(
            field,
            "control_characters",
            "holds control characters",
        ));
    }
    Ok(Some(v))
}

impl Vault {
    /// Checks a choice against the inventory and the clock, and makes it an event.
    fn event(&self, subject: SubjectId, new: NewChoice) -> Result<ConsentEvent, VaultError> {
        let now = self.now_ms();
        let purpose = match (new.choice.names_purpose(), new.purpose.as_deref()) {
            (true, None | Some("")) => {
                return Err(VaultError::bad_request(
                    "purpose",
                    format!("a {} names the purpose it is about", new.choice.as_str()),
                ));
            }
            (false, Some(_)) => {
                return Err(VaultError::invalid(
                    "purpose",
                    "not_allowed",
                    "a restriction covers every purpose: name none",
                ));
            }
            (false, None) => None,
            (true, Some(id)) => {
                let p = self.inventory.purpose(id).ok_or_else(|| {
                    let named = custos_core::fields::echoable(id)
                        .map_or_else(String::new, |n| format!(" {n:?}"));
                    VaultError::invalid_as(
                        InvalidKind::UnknownPurpose,
                        "purpose",
                        "unknown_purpose",
                        format!("no purpose{named} is declared in the inventory"),
                    )
                })?;
                let basis = p.legal_basis;
                match new.choice {
                    Choice::Grant | Choice::Withdraw if basis != LegalBasis::Consent => {
                        return Err(VaultError::invalid(
                            "purpose",
                            "not_consent_based",
                            format!(
                                "purpose {:?} rests on {}, not on consent: there is no consent to {}",
                                p.id,
                                basis.as_str(),
                                new.choice.as_str()
                            ),
                        ));
                    }
                    Choice::Object | Choice::WithdrawObjection
                        if !matches!(
                            basis,
                            LegalBasis::LegitimateInterests | LegalBasis::PublicTask
                        ) =>
                    {
                        return Err(VaultError::invalid(
                            "purpose",
                            "no_right_to_object",
                            format!(
                                "purpose {:?} rests on {}; an objection (GDPR Art. 21) applies to \
                                 legitimate_interests or public_task, and consent is withdrawn instead",
                                p.id,
                                basis.as_str()
                            ),
                        ));
                    }
                    _ => {}
                }
                Some(p.id.clone())
            }
        };
        let expires_ms = new
            .expires_at
            .as_deref()
            .map(|s| {
                chrono::DateTime::parse_from_rfc3339(s.trim())
                    .map(|t| t.timestamp_millis())
                    .map_err(|_| {
                        VaultError::invalid(
                            "expires_at",
                            "date_time",
                            "is not an RFC 3339 date and time, such as 2027-01-31T00:00:00Z",
                        )
                    })
            })
            .transpose()?;
        if let Some(e) = expires_ms {
            if new.choice != Choice::Grant {
                return Err(VaultError::invalid(
                    "expires_at",
                    "not_allowed",
                    "only a grant can expire",
                ));
            }
            if e <= now {
                return Err(VaultError::invalid(
                    "expires_at",
                    "in_the_past",
                    "is not in the future",
                ));
            }
        }
        let ip_hash = match new.ip.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(ip) => {
                let ip: IpAddr = ip.parse().map_err(|_| {
                    VaultError::invalid(
                        "evidence.ip_address",
                        "ip_address",
                        "is not an IPv4 or IPv6 address",
                    )
                })?;
                // Canonical form, so that "::ffff:1.2.3.4" and "1.2.3.4" hash alike.
                let canonical = ip.to_canonical().to_string();
                Some(hex::encode(self.keys.marks.digest(
                    "consent",
                    "ip_address",
                    &canonical,
                )))
            }
        };
        Ok(ConsentEvent {
            id: EventId::random(),
            subject_id: subject,
            choice: new.choice,
            purpose,
            at_ms: now,
            expires_ms,
            source: new.source,
            // Unless told otherwise, the customer saw the notice published now.
            notice_version: text("notice_version", new.notice_version)?
                .or_else(|| Some(self.notice.version.clone())),
            evidence: Evidence {
                collection_point: text("evidence.collection_point", new.collection_point)?,
                user_agent: text("evidence.user_agent", new.user_agent)?,
                ip_hash,
            },
            reason: text("reason", new.reason)?,
        })
    }

    /// Records a subject's choice in the ledger. The event and its audit entry commit
    /// together; the event is never changed or deleted after.
    ///
    /// # Errors
    /// `Forbidden` for a role that may not write; `Invalid`/`BadRequest` naming the field and
    /// the rule; `NotFound` for an unknown subject.
    pub async fn record_choice(
        &self,
        p: &Principal,
        subject: SubjectId,
        new: NewChoice,
    ) -> Result<ConsentEvent, VaultError> {
        self.authorize(p, &Act::RecordChoice { subject })?;
        self.append_choice(&p.actor(), subject, new).await
    }

    /// Records a choice once the caller's right to is established.
    pub(crate) async fn append_choice(
        &self,
        actor: &str,
        subject: SubjectId,
        new: NewChoice,
    ) -> Result<ConsentEvent, VaultError> {
        let event = self.event(subject, new)?;
        let mut entry = AuditEntry::new(actor, Action::ConsentRecord, Outcome::Ok);
        entry.time = format_time_ms(event.at_ms);
        entry.subject_id = Some(subject);
        entry.purpose = event.purpose.clone();
        entry.detail = Some(event.choice.as_str().to_owned());
        entry.consent = Some(event.clone());
        self.store
            .insert_consent_event(event.id, subject, entry.to_bytes())
            .await
            .map_err(|e| match e {
                custos_store::StoreError::NotFound => VaultError::NotFound("subject"),
                e => e.into(),
            })?;
        Ok(event)
    }

    /// A subject's ledger events, oldest first.
    pub(crate) async fn ledger(&self, subject: SubjectId) -> Result<Vec<ConsentEvent>, VaultError> {
        self.store
            .consent_events(subject)
            .await?
            .into_iter()
            .map(|row| {
                AuditEntry::from_bytes(&row.entry)
                    .ok()
                    .and_then(|e| e.consent)
                    .filter(|e| e.id == row.id && e.subject_id == subject)
                    .ok_or_else(|| {
                        VaultError::Integrity(format!(
                            "consent event {} is not the event it claims to be",
                            row.id
                        ))
                    })
            })
            .collect()
    }

    /// What a subject's ledger adds up to now: the state reads are decided against.
    pub(crate) async fn subject_state(
        &self,
        subject: SubjectId,
    ) -> Result<SubjectState, VaultError> {
        let events = self.ledger(subject).await?;
        Ok(self.state_of(&events, self.now_ms()))
    }

    /// What a subject's `events` add up to at `now_ms`.
    pub(crate) fn state_of(&self, events: &[ConsentEvent], now_ms: i64) -> SubjectState {
        SubjectState::at(events, now_ms, |id| {
            self.inventory
                .purpose(id)
                .and_then(|p| p.consent_lapses_after)
        })
    }

    /// A subject's ledger: every declared purpose's state now, and the full history. Reading
    /// it is audited: the evidence is about a person.
    ///
    /// # Errors
    /// `Forbidden` for a role that may not write; `NotFound` for an unknown subject.
    pub async fn consents(
        &self,
        p: &Principal,
        subject: SubjectId,
    ) -> Result<LedgerView, VaultError> {
        self.authorize(
            p,
            &Act::ReadLedger {
                subject: Some(subject),
            },
        )?;
        if self.store.subject_key(subject).await?.is_none() {
            return Err(VaultError::NotFound("subject"));
        }
        let history = self.ledger(subject).await?;
        let state = self.state_of(&history, self.now_ms());
        let purposes = self
            .inventory
            .purposes
            .iter()
            .map(|purpose| {
                let s = state.purpose(&purpose.id);
                let consent_based = purpose.legal_basis == LegalBasis::Consent;
                let reason = custos_core::access::basis_holds(purpose, &state);
                PurposeView {
                    purpose: purpose.id.clone(),
                    legal_basis: purpose.legal_basis,
                    consent: consent_based.then(|| status_name(s.consent)),
                    consent_until: match s.consent {
                        ConsentStatus::Granted {
                            until_ms: Some(until),
                        } => Some(format_time_ms(until)),
                        _ => None,
                    },
                    objected: s.objected,
                    usable: reason.is_none(),
                    reason: reason.map(|r| r.as_str()),
                }
            })
            .collect();
        let mut entry = AuditEntry::new(p.actor(), Action::ConsentRead, Outcome::Ok);
        entry.subject_id = Some(subject);
        self.store
            .append_audit(vec![custos_store::QueuedAudit {
                subject_id: Some(subject),
                entry: entry.to_bytes(),
            }])
            .await?;
        Ok(LedgerView {
            subject_id: subject,
            restricted: state.restricted,
            purposes,
            history,
        })
    }

    /// The signed receipt of one ledger event, with the audit inclusion proof of its entry:
    /// the receipt and its JWS.
    ///
    /// # Errors
    /// `Forbidden` for a role that may not write, or a customer asking for another's event;
    /// `NotFound` for an unknown event; `Unavailable` when its entry is not yet in a signed
    /// head (retry).
    pub async fn consent_receipt(
        &self,
        p: &Principal,
        id: EventId,
    ) -> Result<(Receipt, String), VaultError> {
        // Asked before the lookup (a customer for their own ledger, anyone else for any), so
        // a caller refused outright learns nothing of the event; then again for its subject.
        self.authorize(
            p,
            &Act::ReadLedger {
                subject: p.own_subject(),
            },
        )?;
        let row = self
            .store
            .consent_event(id)
            .await?
            .ok_or(VaultError::NotFound("consent event"))?;
        self.authorize(
            p,
            &Act::ReadLedger {
                subject: Some(row.subject_id),
            },
        )?;
        let event = AuditEntry::from_bytes(&row.entry)
            .ok()
            .and_then(|e| e.consent)
            .filter(|e| e.id == id)
            .ok_or_else(|| {
                VaultError::Integrity(format!(
                    "consent event {id} is not the event it claims to be"
                ))
            })?;
        let index = self
            .find_subject_entry(row.subject_id, |e| {
                e.consent.as_ref().is_some_and(|e| e.id == id)
            })
            .await?
            .ok_or_else(|| {
                VaultError::Unavailable(
                    "the event is not in the audit log yet: retry shortly".into(),
                )
            })?;
        let (log, entry) = self.log_proof(index).await?;
        if entry.consent.as_ref() != Some(&event) {
            return Err(VaultError::Integrity(format!(
                "consent event {id} in the ledger differs from its audit entry: run custos audit verify"
            )));
        }
        let org = &self.inventory.organization;
        let purposes = event
            .purpose
            .as_deref()
            .and_then(|id| self.inventory.purpose(id))
            .map(|purpose| {
                let mut categories: Vec<String> = self
                    .inventory
                    .collections
                    .values()
                    .flat_map(|c| c.fields.values())
                    .filter(|f| f.serves(&purpose.id))
                    .map(|f| f.category.clone())
                    .collect();
                categories.sort();
                categories.dedup();
                let names: Vec<String> = purpose
                    .recipients
                    .iter()
                    .filter_map(|r| self.inventory.processors.iter().find(|p| p.id == *r))
                    .map(|p| format!("{} ({})", p.name, p.country))
                    .collect();
                let termination = match (purpose.legal_basis, purpose.consent_lapses_after) {
                    (LegalBasis::Consent, Some(l)) => {
                        format!("when withdrawn, or {l} after it was given, whichever is first")
                    }
                    (LegalBasis::Consent, None) => "when withdrawn".to_owned(),
                    _ => "when the subject objects".to_owned(),
                };
                ReceiptPurpose {
                    purpose: purpose.id.clone(),
                    description: purpose.description.clone(),
                    legal_basis: purpose.legal_basis.as_str().to_owned(),
                    pii_categories: categories,
                    third_party_disclosure: !names.is_empty(),
                    third_party_names: names,
                    termination,
                }
            })
            .into_iter()
            .collect();
        let receipt = Receipt {
            version: RECEIPT_VERSION.to_owned(),
            shaped_after: "ISO/IEC TS 27560:2023; Kantara Consent Receipt v1.1".to_owned(),
            receipt_id: id,
            issued_at: format_time_ms(self.now_ms()),
            pii_principal_id: event.subject_id,
            pii_controller: Controller {
                name: org.name.clone(),
                contact: org.contact.clone(),
            },
            policy_url: "/privacy".to_owned(),
            notice_version: event.notice_version.clone(),
            consent_timestamp: format_time_ms(event.at_ms),
            collection_method: event.source,
            state: receipt::state_of(event.choice).to_owned(),
            purposes,
            event,
            log,
            public_key: self.log_public_key(),
        };
        let jws = receipt::sign(&receipt, &self.keys.signer);
        Ok((receipt, jws))
    }
}
