//! What the load generators share: a phase's figures and how they are printed.

use std::time::{Duration, Instant};

/// One timed phase of a load run.
pub(crate) struct Phase {
    pub(crate) name: &'static str,
    pub(crate) ok: usize,
    pub(crate) errors: usize,
    pub(crate) elapsed: Duration,
    pub(crate) latencies_us: Vec<u64>,
}

impl Phase {
    /// Prints throughput and the p50 and p99 latencies.
    pub(crate) fn print(&mut self) {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| {
            let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
            self.latencies_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
        };
        println!(
            "{:<7} {:>8} ok {:>5} errors  {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
            self.name,
            self.ok,
            self.errors,
            self.ok as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99)
        );
    }
}

/// A per-task xorshift generator: which record to read next.
pub(crate) fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Runs `concurrency` tasks for `duration`; each calls `op(task, iteration)`, which says
/// whether the request succeeded, and the latency of each success is kept.
pub(crate) async fn phase<F, Fut>(
    name: &'static str,
    concurrency: usize,
    duration: Duration,
    op: F,
) -> Phase
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut i) = (Vec::new(), 0, 0u64);
            while start.elapsed() < duration {
                i += 1;
                let t0 = Instant::now();
                if op(t, i).await {
                    lat.push(t0.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut p = Phase {
        name,
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        let (l, e) = t.await.unwrap();
        p.ok += l.len();
        p.latencies_us.extend(l);
        p.errors += e;
    }
    p.elapsed = start.elapsed();
    p
}
