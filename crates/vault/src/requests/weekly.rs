//! Requests counted per week, for the console's chart: received, completed, and fallen
//! overdue (the deadline passed that week with the request still open, or closed late).
//! Counts only: no subject, no reason.

use custos_core::principal::Act;
use custos_core::rights::RequestStatus;
use custos_store::{RequestQuery, RequestRow};
use serde::Serialize;

use crate::{Principal, Vault, VaultError};

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;
/// The most requests a report counts.
const MAX_COUNTED: usize = 100_000;

/// One week's counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeekCount {
    /// The Monday the week begins, 00:00 UTC, ms since the epoch.
    pub week_start_ms: i64,
    /// Requests received that week.
    pub received: u32,
    /// Requests completed that week.
    pub completed: u32,
    /// Requests whose deadline passed that week while they were open.
    pub overdue: u32,
}

/// The Monday 00:00 UTC at or before `ms` (1970-01-01 was a Thursday).
pub(crate) fn monday_of(ms: i64) -> i64 {
    let days = ms.div_euclid(DAY_MS);
    (days - (days + 3).rem_euclid(7)) * DAY_MS
}

/// `weeks` weeks of counts, the last the week `now_ms` falls in, oldest first.
pub(crate) fn weekly(rows: &[RequestRow], weeks: usize, now_ms: i64) -> Vec<WeekCount> {
    let last = monday_of(now_ms);
    let first = last - (weeks as i64 - 1) * WEEK_MS;
    let mut out: Vec<WeekCount> = (0..weeks as i64)
        .map(|i| WeekCount {
            week_start_ms: first + i * WEEK_MS,
            received: 0,
            completed: 0,
            overdue: 0,
        })
        .collect();
    let slot = |ms: i64| -> Option<usize> {
        (ms >= first && ms < last + WEEK_MS).then(|| ((ms - first) / WEEK_MS) as usize)
    };
    for r in rows {
        if let Some(i) = slot(r.received_ms) {
            out[i].received += 1;
        }
        if r.status == RequestStatus::Completed
            && let Some(i) = r.closed_ms.and_then(slot)
        {
            out[i].completed += 1;
        }
        let late = r.closed_ms.map_or(r.due_ms < now_ms, |c| c > r.due_ms);
        if late && let Some(i) = slot(r.due_ms) {
            out[i].overdue += 1;
        }
    }
    out
}

impl Vault {
    /// Requests received, completed and fallen overdue in each of the last `weeks` weeks
    /// (at most 52), oldest first.
    ///
    /// # Errors
    /// `Forbidden` without `read_reports`; store failures.
    pub async fn requests_per_week(
        &self,
        p: &Principal,
        weeks: usize,
    ) -> Result<Vec<WeekCount>, VaultError> {
        self.authorize(p, &Act::ReadReports)?;
        let rows = self
            .store
            .requests(&RequestQuery {
                limit: MAX_COUNTED,
                ..RequestQuery::default()
            })
            .await?;
        Ok(weekly(&rows, weeks.clamp(1, 52), self.now_ms()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_core::ids::{RequestId, SubjectId};
    use custos_core::rights::RequestKind;

    fn row(status: RequestStatus, received: i64, due: i64, closed: Option<i64>) -> RequestRow {
        RequestRow {
            id: RequestId::random(),
            subject_id: SubjectId::random(),
            kind: RequestKind::Access,
            status,
            due_ms: due,
            received_ms: received,
            closed_ms: closed,
            version: 1,
            body: Vec::new(),
            reasons: Default::default(),
        }
    }

    #[test]
    fn weeks_begin_on_monday_and_count_what_fell_in_them() {
        // 2026-12-02 is a Wednesday; its week began on Monday 2026-11-30.
        let now = 1_796_169_600_000 + 12 * 3_600_000; // 2026-12-02T12:00Z
        assert_eq!(monday_of(now), 1_795_996_800_000);
        let this_week = monday_of(now) + DAY_MS;
        let last_week = this_week - WEEK_MS;
        let rows = [
            row(RequestStatus::Received, this_week, now + WEEK_MS, None),
            row(
                RequestStatus::Completed,
                last_week,
                this_week + 10 * DAY_MS,
                Some(this_week),
            ),
            // Due last week, still open: overdue then.
            row(
                RequestStatus::InProgress,
                last_week - WEEK_MS,
                last_week,
                None,
            ),
            // Closed after its deadline: overdue in the week of the deadline.
            row(
                RequestStatus::Rejected,
                last_week,
                last_week + DAY_MS,
                Some(this_week),
            ),
        ];
        let w = weekly(&rows, 3, now);
        assert_eq!(w.len(), 3);
        assert_eq!(w[2].week_start_ms, monday_of(now));
        let counts: Vec<_> = w
            .iter()
            .map(|c| (c.received, c.completed, c.overdue))
            .collect();
        assert_eq!(counts, [(1, 0, 0), (2, 0, 2), (1, 1, 0)]);
    }
}
