//! The detector: reads the audit log from where it stopped, counts each caller's reads per
//! hour and collection, raises an alert for every read of a canary and for each hour a rule
//! of `core::breach::detect` finds unusual, and moves its position, all in one transaction.
//! Run by `serve` after each round of the sequencer.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Timelike};
use custos_core::audit::{Action, AuditEntry};
use custos_core::breach::blast::is_exposure;
use custos_core::breach::detect::{Finding, History, WINDOW_MS, Window, judge, window_of};
use custos_core::breach::{Alert, AlertKind};
use custos_core::ids::{AlertId, SubjectId};
use custos_core::time::format_time_ms;
use custos_store::{CanaryRow, DetectorStep, NewAlert, StoreError, WindowCount};

use crate::{Vault, VaultError};

/// Entries one round judges at most.
pub const DETECTOR_BATCH: u64 = 4096;

/// When an entry was made, ms since the epoch.
fn entry_ms(e: &AuditEntry) -> Option<i64> {
    DateTime::parse_from_rfc3339(&e.time)
        .ok()
        .map(|t| t.timestamp_millis())
}

impl Vault {
    /// One round of the detector over the entries integrated since its last round (at most
    /// [`DETECTOR_BATCH`]); the number judged. A round that lost to another server's is
    /// not an error: that server judged them.
    ///
    /// # Errors
    /// When the store cannot be read or written.
    pub async fn detect(&self) -> Result<usize, VaultError> {
        let from = self.store.detector_position().await?;
        let size = self.store.tree_state().await?.size;
        if from >= size {
            return Ok(0);
        }
        let to = size.min(from + DETECTOR_BATCH);
        let leaves = self.store.leaves(from, to).await?;
        let canaries: HashMap<SubjectId, CanaryRow> = self
            .store
            .canaries()
            .await?
            .into_iter()
            .map(|c| (c.subject_id, c))
            .collect();
        let mut counts: BTreeMap<(String, i64, String), u64> = BTreeMap::new();
        let mut alerts = Vec::new();
        for l in &leaves {
            let Ok(e) = AuditEntry::from_bytes(&l.entry) else {
                continue; // `audit verify` names an unreadable entry
            };
            if !is_exposure(&e) {
                continue;
            }
            let subject = e.subject_id.expect("a read names its subject");
            if let Some(c) = canaries.get(&subject) {
                alerts.push(self.canary_alert(&e, l.index, c).await?);
                continue;
            }
            let (Some(at), Some(collection)) = (entry_ms(&e), read_collection(&e)) else {
                continue;
            };
            *counts
                .entry((e.actor.clone(), window_of(at), collection))
                .or_insert(0) += 1;
        }
        let increments: Vec<WindowCount> = counts
            .iter()
            .map(|((actor, window_ms, collection), reads)| WindowCount {
                actor: actor.clone(),
                window_ms: *window_ms,
                collection: collection.clone(),
                reads: *reads,
            })
            .collect();
        let touched: BTreeSet<(String, i64)> =
            counts.keys().map(|(a, w, _)| (a.clone(), *w)).collect();
        // Only recent hours are judged: a log copied into a new database, or entries
        // sequenced long after they were made, are counted but raise no alert about the past.
        let recent = window_of(self.now_ms()) - 2 * WINDOW_MS;
        for (actor, window) in touched.into_iter().filter(|(_, w)| *w >= recent) {
            alerts.extend(self.judge_window(&actor, window, &increments).await?);
        }
        let step = DetectorStep {
            from,
            to,
            counts: increments,
            alerts: alerts.clone(),
        };
        match self.store.advance_detector(step).await {
            Ok(new) => {
                let raised: Vec<NewAlert> = alerts
                    .into_iter()
                    .filter(|a| new.contains(&a.row.id))
                    .collect();
                for a in &raised {
                    tracing::warn!(alert = %a.row.id, kind = %a.row.kind, actor = %a.row.actor, "alert raised");
                }
                self.suspend_for(&raised).await;
                Ok((to - from) as usize)
            }
            Err(StoreError::Conflict(_)) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    async fn canary_alert(
        &self,
        e: &AuditEntry,
        index: u64,
        c: &CanaryRow,
    ) -> Result<NewAlert, VaultError> {
        let (kind, how) = match e.action {
            Action::RecordSearch => (AlertKind::CanaryValue, "found by a search for its value"),
            Action::SubjectExport => (AlertKind::CanaryTouched, "exported"),
            _ => (AlertKind::CanaryTouched, "read"),
        };
        let alert = Alert {
            id: AlertId::random(),
            kind,
            raised_at: format_time_ms(self.now_ms()),
            actor: e.actor.clone(),
            summary: format!(
                "Canary record {} of {} was {how} by {} (audit entry {index}). No legitimate caller touches a canary.",
                c.record_id, c.collection, e.actor
            ),
            collection: Some(c.collection.clone()),
            record_id: Some(c.record_id),
            subject_id: Some(c.subject_id),
            audit_index: Some(index),
            reads: None,
            baseline: None,
            suspended: false,
        };
        self.new_alert(alert, format!("canary:{index}")).await
    }

    /// The unusual-access rules over one caller's window, its stored counts and this
    /// round's together, against its history.
    async fn judge_window(
        &self,
        actor: &str,
        window: i64,
        increments: &[WindowCount],
    ) -> Result<Vec<NewAlert>, VaultError> {
        let t = self.inventory.breach.thresholds;
        let since = window - i64::from(t.baseline_days) * 24 * WINDOW_MS;
        let stored = self
            .store
            .access_counts(actor, since, window + WINDOW_MS)
            .await?;
        let mut history = History::default();
        let mut now = Window {
            start: window,
            reads: BTreeMap::new(),
        };
        for w in stored {
            if w.window_ms == window {
                *now.reads.entry(w.collection).or_insert(0) += w.reads;
            } else {
                history.reads.insert((w.window_ms, w.collection), w.reads);
            }
        }
        for w in increments
            .iter()
            .filter(|w| w.actor == actor && w.window_ms == window)
        {
            *now.reads.entry(w.collection.clone()).or_insert(0) += w.reads;
        }
        let tz = self.inventory.breach.time_zone;
        let hour_of = |ms: i64| {
            DateTime::from_timestamp_millis(ms).map_or(0, |t| t.with_timezone(&tz).hour())
        };
        let mut out = Vec::new();
        for f in judge(&t, &now, &history, hour_of) {
            let (kind, dedup, summary, collection, reads, baseline) = match f {
                Finding::Volume { reads, baseline } => (
                    AlertKind::ReadVolume,
                    format!("read_volume:{actor}:{window}"),
                    format!(
                        "{actor} read {reads} records in the hour from {}, against {baseline:.1} in its usual hour (threshold: {} times that, at least {}).",
                        format_time_ms(window),
                        t.factor,
                        t.floor
                    ),
                    None,
                    reads,
                    Some(baseline),
                ),
                Finding::RareCollection {
                    collection,
                    reads,
                    share,
                } => (
                    AlertKind::RareCollection,
                    format!("rare_collection:{actor}:{window}:{collection}"),
                    format!(
                        "{actor} read {reads} records of {collection} in the hour from {}; {collection} was {:.2}% of its reads before.",
                        format_time_ms(window),
                        share * 100.0
                    ),
                    Some(collection),
                    reads,
                    None,
                ),
                Finding::UnusualHour { hour, reads } => (
                    AlertKind::UnusualHour,
                    format!("unusual_hour:{actor}:{window}"),
                    format!(
                        "{actor} read {reads} records at {hour:02}:00 ({}), an hour it has not read at in the last {} days.",
                        tz.name(),
                        t.baseline_days
                    ),
                    None,
                    reads,
                    None,
                ),
            };
            let alert = Alert {
                id: AlertId::random(),
                kind,
                raised_at: format_time_ms(self.now_ms()),
                actor: actor.to_owned(),
                summary,
                collection,
                record_id: None,
                subject_id: None,
                audit_index: None,
                reads: Some(reads),
                baseline,
                suspended: false,
            };
            out.push(self.new_alert(alert, dedup).await?);
        }
        Ok(out)
    }
}

/// The collection a read was of: the entry's, or an export's first field's.
fn read_collection(e: &AuditEntry) -> Option<String> {
    e.collection.clone().or_else(|| {
        e.fields
            .first()
            .and_then(|f| f.split_once('.'))
            .map(|(c, _)| c.to_owned())
    })
}
