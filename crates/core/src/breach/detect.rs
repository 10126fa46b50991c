//! The rules that find unusual access in the audit log, as pure functions over counts.
//!
//! The detector counts, per caller, per hour and per collection, the records it read (reads,
//! search hits and exports). It sees only what the log holds: which caller read which records
//! when. It cannot see what a caller did with what it read, a caller that reads slowly and
//! steadily (staying under its own baseline), or reads through a key it usually uses that
//! much. A caller with little history is judged by the floor alone.

use std::collections::BTreeMap;

/// One hour: the window reads are counted in.
pub const WINDOW_MS: i64 = 3_600_000;

/// The thresholds, from `[breach]` in custos.toml.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// An hour's reads above this many times the caller's usual hour raise `read_volume`.
    pub factor: f64,
    /// ... and never fewer than this many.
    pub floor: u64,
    /// How many days of history the baseline covers.
    pub baseline_days: u32,
    /// A collection holding less than this share of the caller's past reads is rare for it.
    pub rare_share: f64,
    /// Reads of a rare collection in an hour that raise `rare_collection`.
    pub rare_floor: u64,
    /// Reads of history before the collection and hour rules judge a caller.
    pub min_history: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            factor: 10.0,
            floor: 100,
            baseline_days: 14,
            rare_share: 0.01,
            rare_floor: 20,
            min_history: 500,
        }
    }
}

/// The start of the window `ms` falls in.
pub fn window_of(ms: i64) -> i64 {
    ms.div_euclid(WINDOW_MS) * WINDOW_MS
}

/// A caller's past: records read per (window start, collection), over the baseline period
/// before the window judged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Reads per window and collection.
    pub reads: BTreeMap<(i64, String), u64>,
}

impl History {
    fn total(&self) -> u64 {
        self.reads.values().sum()
    }

    fn per_window(&self) -> BTreeMap<i64, u64> {
        let mut m = BTreeMap::new();
        for ((w, _), n) in &self.reads {
            *m.entry(*w).or_insert(0) += n;
        }
        m
    }

    /// The caller's usual hour: the mean of its hours that had reads, or 0 with none.
    pub fn baseline(&self) -> f64 {
        let w = self.per_window();
        if w.is_empty() {
            0.0
        } else {
            w.values().sum::<u64>() as f64 / w.len() as f64
        }
    }
}

/// What one window of one caller looks like now: reads per collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    /// The window's start.
    pub start: i64,
    /// Reads per collection in it so far.
    pub reads: BTreeMap<String, u64>,
}

/// A rule's finding.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// More reads in the window than `max(floor, factor x baseline)`.
    Volume {
        /// Reads in the window.
        reads: u64,
        /// The caller's usual hour.
        baseline: f64,
    },
    /// Many reads of a collection the caller rarely reads.
    RareCollection {
        /// The collection.
        collection: String,
        /// Reads of it in the window.
        reads: u64,
        /// Its share of the caller's past reads.
        share: f64,
    },
    /// Reads at an hour of the day the caller has never read at in its history.
    UnusualHour {
        /// The hour of the day (0-23, in the time zone given).
        hour: u32,
        /// Reads in the window.
        reads: u64,
    },
}

/// The rules over one window of one caller, against its history. `hour_of` gives the hour of
/// the day a window starts at, in the organization's time zone.
pub fn judge(
    t: &Thresholds,
    window: &Window,
    history: &History,
    hour_of: impl Fn(i64) -> u32,
) -> Vec<Finding> {
    let mut found = Vec::new();
    let reads: u64 = window.reads.values().sum();
    let baseline = history.baseline();
    let limit = (t.factor * baseline).max(t.floor as f64);
    if reads as f64 > limit {
        found.push(Finding::Volume { reads, baseline });
    }
    let total = history.total();
    if total < t.min_history {
        return found;
    }
    for (collection, n) in &window.reads {
        let past: u64 = history
            .reads
            .iter()
            .filter(|((_, c), _)| c == collection)
            .map(|(_, n)| n)
            .sum();
        let share = past as f64 / total as f64;
        if *n >= t.rare_floor && share < t.rare_share {
            found.push(Finding::RareCollection {
                collection: collection.clone(),
                reads: *n,
                share,
            });
        }
    }
    let hour = hour_of(window.start);
    let usual = history.per_window().keys().any(|w| hour_of(*w) == hour);
    if !usual && reads > 0 {
        found.push(Finding::UnusualHour { hour, reads });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc_hour(ms: i64) -> u32 {
        (ms.div_euclid(WINDOW_MS).rem_euclid(24)) as u32
    }

    fn history(rows: &[(i64, &str, u64)]) -> History {
        History {
            reads: rows
                .iter()
                .map(|(w, c, n)| ((w * WINDOW_MS, c.to_string()), *n))
                .collect(),
        }
    }

    fn window(start_hours: i64, rows: &[(&str, u64)]) -> Window {
        Window {
            start: start_hours * WINDOW_MS,
            reads: rows.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn volume_is_judged_against_the_baseline_and_never_below_the_floor() {
        let t = Thresholds::default();
        let h = history(&[(10, "customers", 20), (11, "customers", 40)]);
        assert_eq!(h.baseline(), 30.0);
        let calm = judge(&t, &window(12, &[("customers", 300)]), &h, utc_hour);
        assert!(calm.is_empty(), "{calm:?}");
        let burst = judge(&t, &window(12, &[("customers", 301)]), &h, utc_hour);
        assert_eq!(
            burst,
            vec![Finding::Volume {
                reads: 301,
                baseline: 30.0
            }]
        );
        // A new caller: the floor alone.
        let new = History::default();
        assert!(judge(&t, &window(12, &[("customers", 100)]), &new, utc_hour).is_empty());
        assert_eq!(
            judge(&t, &window(12, &[("customers", 101)]), &new, utc_hour).len(),
            1
        );
    }

    #[test]
    fn a_rarely_read_collection_and_an_unusual_hour_need_history() {
        let t = Thresholds::default();
        // 30 working hours (9:00-11:00 over ten days) of customers, one read of orders.
        let mut rows = Vec::new();
        for day in 0..10 {
            for h in 9..12 {
                rows.push((day * 24 + h, "customers", 30));
            }
        }
        rows.push((9, "orders", 1));
        let h = history(&rows);
        let at_ten = 10 * 24 + 10;
        let found = judge(&t, &window(at_ten, &[("orders", 25)]), &h, utc_hour);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            matches!(&found[0], Finding::RareCollection { collection, reads: 25, .. } if collection == "orders")
        );
        let at_three = 10 * 24 + 3;
        let found = judge(&t, &window(at_three, &[("customers", 5)]), &h, utc_hour);
        assert_eq!(found, vec![Finding::UnusualHour { hour: 3, reads: 5 }]);
        // Too little history: neither rule speaks.
        let thin = history(&[(9, "customers", 10)]);
        assert!(judge(&t, &window(at_three, &[("orders", 50)]), &thin, utc_hour).is_empty());
    }

    #[test]
    fn windows_are_hours() {
        assert_eq!(window_of(0), 0);
        assert_eq!(window_of(WINDOW_MS - 1), 0);
        assert_eq!(window_of(WINDOW_MS), WINDOW_MS);
        assert_eq!(window_of(-1), -WINDOW_MS);
    }
}
