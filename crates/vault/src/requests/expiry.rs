//! The records of closed requests, kept 24 months after they closed and then deleted by the
//! retention sweep: the step of `Vault::retention` that is about requests.

use custos_core::audit::{Action, AuditEntry, Outcome};
use custos_core::rights::RECORD_KEPT_MONTHS;
use custos_core::time::format_time_ms;
use custos_store::{QueuedAudit, RequestQuery, StoreError};

use super::stored::decode;
use crate::{Principal, Vault, VaultError};

/// Requests read per page while sweeping.
const PAGE: usize = 500;

impl Vault {
    /// Deletes the record of every request closed longer ago than it is kept
    /// ([`custos_core::rights::RECORD_KEPT_MONTHS`] after it closed, never earlier), each
    /// deletion its own audit entry; counts them. Whether the subject still exists does not
    /// matter: the record holds nothing personal.
    pub(crate) async fn expire_requests(
        &self,
        p: &Principal,
        now: i64,
        dry_run: bool,
    ) -> Result<u64, VaultError> {
        // Every request that may be due, and a few days more: the exact rule is checked on
        // each, since months counted back are not months counted forward.
        let closed_before = chrono::DateTime::from_timestamp_millis(now)
            .and_then(|t| t.checked_sub_months(chrono::Months::new(RECORD_KEPT_MONTHS)))
            .map_or(i64::MIN, |t| t.timestamp_millis() + 4 * 86_400_000);
        let mut query = RequestQuery {
            closed_before: Some(closed_before),
            limit: PAGE,
            ..RequestQuery::default()
        };
        let mut deleted = 0;
        loop {
            let page = self.store.requests(&query).await?;
            let Some(last) = page.last() else { break };
            query.after = Some((last.due_ms, last.id));
            for row in page {
                let r = decode(&row)?.request;
                if r.kept_until().is_none_or(|until| until > now) {
                    continue;
                }
                if !dry_run {
                    let mut e =
                        AuditEntry::new(p.actor(), Action::RetentionRequestDelete, Outcome::Ok);
                    e.subject_id = Some(r.subject);
                    e.request_id = Some(r.id);
                    e.detail = Some(format!(
                        "{} request {}; closed {}, kept {RECORD_KEPT_MONTHS} months; as of {}",
                        r.kind,
                        r.status,
                        r.closed_at.map(format_time_ms).unwrap_or_default(),
                        format_time_ms(now)
                    ));
                    let audit = QueuedAudit {
                        subject_id: e.subject_id,
                        entry: e.to_bytes(),
                    };
                    match self.store.delete_request(r.id, row.version, audit).await {
                        Ok(()) => {}
                        Err(StoreError::NotFound | StoreError::Conflict(_)) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}
