//! Reading the audit trail as staff do in the console: entries filtered by subject, actor,
//! purpose, action and time, newest first, a page at a time. Reading is itself audited.
//!
//! Entries are read back from the newest, a chunk at a time, and filtered here: a page scans
//! at most [`SCAN_LIMIT`] entries and says where to go on from, so a page of a rare filter on
//! a long log answers in bounded time. A subject's trail uses the subject index.

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::ids::SubjectId;
use custos_core::principal::Act;
use custos_core::time::format_time_ms;
use custos_store::{LeafRow, QueuedAudit};

use crate::audit::AuditRecord;
use crate::{Principal, Vault, VaultError};

/// Entries read from the store at a time.
const CHUNK: u64 = 1_000;
/// The most entries one page looks at.
pub const SCAN_LIMIT: u64 = 50_000;
/// The most entries one page holds.
pub const MAX_PAGE: usize = 200;

/// Which entries, and which page of them.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries about this subject.
    pub subject: Option<SubjectId>,
    /// Only entries by this actor (`apikey:NAME`, `operator:ID`, `cli`, ...).
    pub actor: Option<String>,
    /// Only entries for this purpose.
    pub purpose: Option<String>,
    /// Only entries of this action (`record.read`, `operator.login`, ...).
    pub action: Option<String>,
    /// Only entries at or after this instant, ms since the epoch.
    pub from_ms: Option<i64>,
    /// Only entries before this instant.
    pub to_ms: Option<i64>,
    /// Only entries with an index below this (the page's start; none for the newest).
    pub before: Option<u64>,
    /// How many entries a page holds (at most [`MAX_PAGE`]).
    pub limit: usize,
}

/// One page of entries, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditRecord>,
    /// Where the next page begins (its `before`), when there may be more.
    pub next_before: Option<u64>,
    /// How many entries the log holds.
    pub size: u64,
}

/// An action's name as entries carry it.
pub fn action_name(a: Action) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl AuditFilter {
    fn keeps(&self, e: &AuditEntry, from: Option<&str>, to: Option<&str>) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        eq(&self.actor, Some(&e.actor))
            && eq(&self.purpose, e.purpose.as_deref())
            && self
                .action
                .as_deref()
                .is_none_or(|a| action_name(e.action) == a)
            && self.subject.is_none_or(|s| e.subject_id == Some(s))
            && from.is_none_or(|f| e.time.as_str() >= f)
            && to.is_none_or(|t| e.time.as_str() < t)
    }
}

fn read(l: LeafRow) -> Result<AuditRecord, VaultError> {
    let entry = AuditEntry::from_bytes(&l.entry)
        .map_err(|_| VaultError::Integrity(format!("audit entry {} is unreadable", l.index)))?;
    Ok(AuditRecord {
        index: l.index,
        entry,
    })
}

impl Vault {
    /// A page of the audit trail under `filter`, newest first. The reading is audited,
    /// naming which conditions the filter gave (never their values).
    ///
    /// # Errors
    /// `Forbidden` without `read_audit`; `Integrity` for an unreadable entry; store failures.
    pub async fn audit_entries(
        &self,
        p: &Principal,
        filter: &AuditFilter,
    ) -> Result<AuditPage, VaultError> {
        self.authorize(p, &Act::ReadAudit)?;
        self.sequence_audit().await?;
        let size = self.store.tree_state().await?.size;
        let limit = filter.limit.clamp(1, MAX_PAGE);
        let from = filter.from_ms.map(format_time_ms);
        let to = filter.to_ms.map(format_time_ms);
        let top = filter.before.unwrap_or(size).min(size);
        let mut entries = Vec::new();
        let mut next_before = None;
        if let Some(subject) = filter.subject {
            let mut leaves = self.store.subject_leaves(subject).await?;
            leaves.retain(|l| l.index < top);
            leaves.reverse();
            for l in leaves {
                let r = read(l)?;
                if filter.keeps(&r.entry, from.as_deref(), to.as_deref()) {
                    if entries.len() == limit {
                        next_before = Some(r.index + 1);
                        break;
                    }
                    entries.push(r);
                }
            }
        } else {
            let mut hi = top;
            let floor = top.saturating_sub(SCAN_LIMIT);
            'scan: while hi > floor {
                let lo = hi.saturating_sub(CHUNK).max(floor);
                let mut chunk = self.store.leaves(lo, hi).await?;
                chunk.reverse();
                for l in chunk {
                    let r = read(l)?;
                    if filter.keeps(&r.entry, from.as_deref(), to.as_deref()) {
                        if entries.len() == limit {
                            next_before = Some(r.index + 1);
                            break 'scan;
                        }
                        entries.push(r);
                    }
                }
                hi = lo;
            }
            if next_before.is_none() && hi > 0 && hi == floor {
                next_before = Some(hi);
            }
        }
        let mut e = AuditEntry::new(p.actor(), Action::AuditRead, Outcome::Ok);
        e.subject_id = filter.subject;
        e.detail = Some(describe(filter));
        self.store
            .append_audit(vec![QueuedAudit {
                subject_id: filter.subject,
                entry: e.to_bytes(),
            }])
            .await?;
        Ok(AuditPage {
            entries,
            next_before,
            size,
        })
    }
}

/// The filter in words, for the audit entry of the reading: which conditions were given,
/// never what was typed (a person's address typed as an actor would stay in the log for
/// good).
fn describe(f: &AuditFilter) -> String {
    let given: Vec<&str> = [
        ("subject", f.subject.is_some()),
        ("actor", f.actor.is_some()),
        ("purpose", f.purpose.is_some()),
        ("action", f.action.is_some()),
        ("from", f.from_ms.is_some()),
        ("to", f.to_ms.is_some()),
    ]
    .into_iter()
    .filter(|(_, g)| *g)
    .map(|(k, _)| k)
    .collect();
    let mut text = "audit trail read".to_owned();
    if !given.is_empty() {
        text.push_str(&format!(", filtered by {}", given.join(", ")));
    }
    if let Some(b) = f.before {
        text.push_str(&format!(", before entry {b}"));
    }
    text
}
