//! Request metrics in the Prometheus text format, one log line per request, and the time limit
//! every request runs under. Labels and log fields are the route template, method and status: never a path value or a query
//! string, which could carry an id or a personal value.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};

/// How long one request may take before it is answered with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A request series: method, route template, status.
type Series = (String, String, u16);

/// Counters per series: requests answered and seconds spent.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<Series, (u64, f64)>>,
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut m = self.requests.lock().expect("metrics lock");
        let e = m
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        e.0 += 1;
        e.1 += seconds;
    }

    /// The counters in the Prometheus text exposition format, with the audit tree size.
    pub fn render(&self, audit_size: u64) -> String {
        let m = self.requests.lock().expect("metrics lock");
        let mut out = String::new();
        out.push_str("# HELP custos_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE custos_http_requests_total counter\n");
        for ((method, route, status), (n, _)) in m.iter() {
            out.push_str(&format!(
                "custos_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}\n"
            ));
        }
        out.push_str(
            "# HELP custos_http_request_duration_seconds_sum Time spent answering HTTP requests.\n",
        );
        out.push_str("# TYPE custos_http_request_duration_seconds_sum counter\n");
        for ((method, route, status), (_, s)) in m.iter() {
            out.push_str(&format!(
                "custos_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {s:.6}\n"
            ));
        }
        out.push_str("# HELP custos_audit_tree_size Entries in the audit log's signed tree.\n");
        out.push_str("# TYPE custos_audit_tree_size gauge\n");
        out.push_str(&format!("custos_audit_tree_size {audit_size}\n"));
        out
    }
}

/// Counts and logs every request by its route template, and answers 503 in the usual error
/// shape when one takes longer than [`REQUEST_TIMEOUT`].
pub(crate) async fn track(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(ErrorCode::Timeout, "the request took too long; try again")
            .into_response(),
    };
    let status = resp.status().as_u16();
    let elapsed = start.elapsed().as_secs_f64();
    metrics.record(&method, &route, status, elapsed);
    tracing::debug!(target: "custos::http", %method, %route, status, ms = elapsed * 1e3, "request");
    resp
}
