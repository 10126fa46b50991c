//! Consent across subjects, for the console: per declared purpose, how many subjects have
//! consent usable now (for a purpose based on consent) or object now (for one based on
//! legitimate interests or a public task); withdrawals per week; and Global Privacy Control
//! opt-outs. Counts only: no subject is named.
//!
//! Computed from the whole ledger, read through in pages: fine for the ledgers of tens of
//! thousands of subjects this is measured on (BENCHMARKS.md); a ledger of millions wants the
//! counts kept as events are recorded.

use std::collections::BTreeMap;

use custos_core::audit::AuditEntry;
use custos_core::consent::{Choice, ConsentEvent, ConsentStatus, Source};
use custos_core::ids::SubjectId;
use custos_core::inventory::LegalBasis;
use custos_core::principal::Act;
use custos_store::{CopyRow, Table};
use serde::Serialize;

use crate::requests::monday_of;
use crate::{Principal, Vault, VaultError};

const PAGE: usize = 2_000;
const WEEK_MS: i64 = 7 * 86_400_000;

/// One purpose's count.
#[derive(Debug, Clone, Serialize)]
pub struct PurposeCount {
    /// The purpose.
    pub purpose: String,
    /// Its legal basis.
    pub legal_basis: LegalBasis,
    /// For a purpose based on consent: subjects whose consent holds now; on legitimate
    /// interests or a public task: subjects objecting now; on any other basis, nothing to
    /// count (no choice of the subject's bears on it).
    pub count: Option<u64>,
}

/// Consent across subjects.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentSummary {
    /// Subjects with anything in the ledger.
    pub subjects: u64,
    /// Per declared purpose.
    pub purposes: Vec<PurposeCount>,
    /// Withdrawals of consent per week, oldest first: (the week's Monday, ms; count).
    pub withdrawals: Vec<(i64, u32)>,
    /// Withdrawals recorded from a browser's Global Privacy Control signal.
    pub gpc_withdrawals: u64,
    /// Subjects with at least one.
    pub gpc_subjects: u64,
}

impl Vault {
    /// Every ledger event, read through in pages, by subject in the order recorded; each
    /// event is shown to `each` as it is read. Also how many withdrawals came from Global
    /// Privacy Control.
    async fn ledger_by_subject(
        &self,
        mut each: impl FnMut(&ConsentEvent),
    ) -> Result<(BTreeMap<SubjectId, Vec<ConsentEvent>>, u64), VaultError> {
        let mut by_subject: BTreeMap<SubjectId, Vec<ConsentEvent>> = BTreeMap::new();
        let (mut gpc_withdrawals, mut cursor) = (0, None);
        loop {
            let rows = self
                .store
                .export(Table::ConsentEvents, cursor, PAGE)
                .await?;
            let Some(last) = rows.last() else { break };
            cursor = Some(last.cursor());
            let full = rows.len() == PAGE;
            for row in rows {
                let CopyRow::Consent(row) = row else { continue };
                let event = AuditEntry::from_bytes(&row.entry)
                    .ok()
                    .and_then(|e| e.consent)
                    .filter(|e| e.id == row.id)
                    .ok_or_else(|| {
                        VaultError::Integrity(format!(
                            "consent event {} is not the event it claims to be",
                            row.id
                        ))
                    })?;
                if event.choice == Choice::Withdraw && event.source == Source::Gpc {
                    gpc_withdrawals += 1;
                }
                each(&event);
                by_subject.entry(event.subject_id).or_default().push(event);
            }
            if !full {
                break;
            }
        }
        Ok((by_subject, gpc_withdrawals))
    }

    /// Consent across subjects as of now, with `weeks` weeks of withdrawals.
    ///
    /// # Errors
    /// `Forbidden` without `read_reports`; `Integrity` for a ledger row that is not its
    /// event; store failures.
    pub async fn consent_summary(
        &self,
        p: &Principal,
        weeks: usize,
    ) -> Result<ConsentSummary, VaultError> {
        self.authorize(p, &Act::ReadReports)?;
        let now = self.now_ms();
        let weeks = weeks.clamp(1, 52);
        let first = monday_of(now) - (weeks as i64 - 1) * WEEK_MS;
        let mut withdrawals: Vec<(i64, u32)> = (0..weeks as i64)
            .map(|i| (first + i * WEEK_MS, 0))
            .collect();
        let (by_subject, gpc_withdrawals) = self
            .ledger_by_subject(|e| {
                if e.choice == Choice::Withdraw && e.at_ms >= first && e.at_ms <= now {
                    withdrawals[((e.at_ms - first) / WEEK_MS) as usize].1 += 1;
                }
            })
            .await?;
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        let mut gpc_subjects = 0;
        for events in by_subject.values() {
            if events
                .iter()
                .any(|e| e.source == Source::Gpc && e.choice == Choice::Withdraw)
            {
                gpc_subjects += 1;
            }
            let state = self.state_of(events, now);
            for purpose in &self.inventory.purposes {
                let s = state.purpose(&purpose.id);
                let counted = match purpose.legal_basis {
                    LegalBasis::Consent => matches!(s.consent, ConsentStatus::Granted { .. }),
                    LegalBasis::LegitimateInterests | LegalBasis::PublicTask => s.objected,
                    _ => false,
                };
                if counted {
                    *counts.entry(purpose.id.as_str()).or_default() += 1;
                }
            }
        }
        Ok(ConsentSummary {
            subjects: by_subject.len() as u64,
            purposes: self
                .inventory
                .purposes
                .iter()
                .map(|p| PurposeCount {
                    purpose: p.id.clone(),
                    legal_basis: p.legal_basis,
                    count: matches!(
                        p.legal_basis,
                        LegalBasis::Consent
                            | LegalBasis::LegitimateInterests
                            | LegalBasis::PublicTask
                    )
                    .then(|| counts.get(p.id.as_str()).copied().unwrap_or(0)),
                })
                .collect(),
            withdrawals,
            gpc_withdrawals,
            gpc_subjects,
        })
    }
}
