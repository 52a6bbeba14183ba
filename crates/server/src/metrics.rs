//! `/metrics` in the Prometheus text format, with no metrics library: the handful of series
//! here are counters kept by this process and gauges read from the store at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// Counters of this process since it started.
#[derive(Default)]
pub(crate) struct Metrics {
    // A std Mutex: updates are short and never held across an await. The key space is bounded
    // (route templates, not raw paths; a fixed set of methods), so the map cannot grow without
    // bound whatever clients send.
    requests: Mutex<BTreeMap<(&'static str, String, u16), RequestStats>>,
    pub events_applied: AtomicU64,
    pub events_unchanged: AtomicU64,
}

#[derive(Default, Clone, Copy)]
struct RequestStats {
    count: u64,
    seconds: f64,
}

impl Metrics {
    fn record(&self, method: &'static str, route: String, status: u16, seconds: f64) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let stats = requests.entry((method, route, status)).or_default();
        stats.count += 1;
        stats.seconds += seconds;
    }

    pub fn count_events(&self, applied: usize, unchanged: usize) {
        self.events_applied
            .fetch_add(applied as u64, Ordering::Relaxed);
        self.events_unchanged
            .fetch_add(unchanged as u64, Ordering::Relaxed);
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Counts every request by route template and status, and logs it at debug level. Only the
/// method, the route template and the status are logged: never a path (ids), a query or a body.
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    tracing::debug!(method, route = %route, status, elapsed_ms = seconds * 1000.0, "request");
    state.metrics.record(method, route, status, seconds);
    response
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "Operations",
    operation_id = "metrics",
    summary = "Prometheus metrics",
    description = "Requests by route and status, events ingested, notifications by \
        status and channel, queue depth, dispatch lag, and this process's hand-offs by \
        channel and outcome with a histogram of their lateness (hand-off time minus \
        due time).",
    security(),
    responses((status = 200, description = "Prometheus text format 0.0.4.", content_type = "text/plain")),
)]
pub(crate) async fn render(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut out = String::new();
    let requests = state
        .metrics
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    out.push_str(
        "# HELP rappel_http_requests_total HTTP requests answered, by method, route and status.\n",
    );
    out.push_str("# TYPE rappel_http_requests_total counter\n");
    for ((method, route, status), stats) in &requests {
        let _ = writeln!(
            out,
            "rappel_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
            escape(route),
            stats.count
        );
    }
    // A summary without quantiles: its sum and count give the mean time per route.
    out.push_str("# HELP rappel_http_request_duration_seconds Time spent answering, by method, route and status.\n");
    out.push_str("# TYPE rappel_http_request_duration_seconds summary\n");
    for ((method, route, status), stats) in &requests {
        let labels = format!(
            "method=\"{method}\",route=\"{}\",status=\"{status}\"",
            escape(route)
        );
        let _ = writeln!(
            out,
            "rappel_http_request_duration_seconds_sum{{{labels}}} {:.6}",
            stats.seconds
        );
        let _ = writeln!(
            out,
            "rappel_http_request_duration_seconds_count{{{labels}}} {}",
            stats.count
        );
    }
    out.push_str(
        "# HELP rappel_events_ingested_total Events received through the API, by outcome.\n",
    );
    out.push_str("# TYPE rappel_events_ingested_total counter\n");
    let applied = state.metrics.events_applied.load(Ordering::Relaxed);
    let unchanged = state.metrics.events_unchanged.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "rappel_events_ingested_total{{outcome=\"applied\"}} {applied}"
    );
    let _ = writeln!(
        out,
        "rappel_events_ingested_total{{outcome=\"unchanged\"}} {unchanged}"
    );

    let counts = state.engine.notification_counts().await?;
    out.push_str("# HELP rappel_notifications Notifications in the store (all practices), by status and channel.\n");
    out.push_str("# TYPE rappel_notifications gauge\n");
    let mut pending = 0;
    for (status, channel, n) in &counts {
        if status == "pending" {
            pending += n;
        }
        let _ = writeln!(
            out,
            "rappel_notifications{{status=\"{}\",channel=\"{}\"}} {n}",
            escape(status),
            escape(channel)
        );
    }
    out.push_str("# HELP rappel_queue_depth Notifications waiting to be sent (status pending).\n");
    out.push_str("# TYPE rappel_queue_depth gauge\n");
    let _ = writeln!(out, "rappel_queue_depth {pending}");
    // How overdue the oldest due notification is right now: it grows as soon as dispatch
    // falls behind, in any process.
    let lag = state.engine.dispatch_lag().await?;
    out.push_str("# HELP rappel_dispatch_lag_seconds How long the most overdue notification has been due (0 when dispatch keeps up).\n");
    out.push_str("# TYPE rappel_dispatch_lag_seconds gauge\n");
    let _ = writeln!(out, "rappel_dispatch_lag_seconds {:.3}", lag.as_secs_f64());
    render_dispatch(&mut out, &state.engine.dispatch_metrics());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

/// This process's hand-offs and their lateness (hand-off time minus due time).
fn render_dispatch(out: &mut String, m: &rappel_engine::DispatchMetrics) {
    out.push_str("# HELP rappel_handoffs_total Messages this process handed to a channel, by channel and outcome (sent, retry, failed).\n");
    out.push_str("# TYPE rappel_handoffs_total counter\n");
    for ((channel, outcome), n) in &m.handoffs {
        let _ = writeln!(
            out,
            "rappel_handoffs_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    out.push_str("# HELP rappel_handoff_lateness_seconds How late this process handed accepted messages off: hand-off time minus due time.\n");
    out.push_str("# TYPE rappel_handoff_lateness_seconds histogram\n");
    for (bound, n) in rappel_engine::LATENESS_BUCKETS
        .iter()
        .zip(m.lateness_buckets)
    {
        let _ = writeln!(
            out,
            "rappel_handoff_lateness_seconds_bucket{{le=\"{bound}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "rappel_handoff_lateness_seconds_bucket{{le=\"+Inf\"}} {}",
        m.lateness_count
    );
    let _ = writeln!(
        out,
        "rappel_handoff_lateness_seconds_sum {:.3}",
        m.lateness_sum_seconds
    );
    let _ = writeln!(
        out,
        "rappel_handoff_lateness_seconds_count {}",
        m.lateness_count
    );
}

/// Label values escape backslash, double quote and newline (the exposition format's rules).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
