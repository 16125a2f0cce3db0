//! Request metrics in the Prometheus text format, and the access log.
//!
//! Counted per route template (`/api/v1/places/{id}`, never the concrete URL) and
//! status, so neither ids nor query strings — which could hold personal data —
//! reach the metrics or the log.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

const BUCKETS_MS: [f64; 10] = [1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency_buckets: [AtomicU64; 10],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    pub in_flight: AtomicU64,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, elapsed_ms: f64) {
        {
            let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *m.entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
        }
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if elapsed_ms <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add((elapsed_ms * 1000.0) as u64, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP lianxin_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE lianxin_http_requests_total counter\n");
        for ((method, route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            out.push_str(&format!(
                "lianxin_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}\n",
                route.replace('"', "")
            ));
        }
        out.push_str("# HELP lianxin_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE lianxin_http_request_duration_seconds histogram\n");
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            out.push_str(&format!(
                "lianxin_http_request_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                b / 1000.0,
                self.latency_buckets[i].load(Ordering::Relaxed)
            ));
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        out.push_str(&format!(
            "lianxin_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n"
        ));
        out.push_str(&format!(
            "lianxin_http_request_duration_seconds_sum {}\n",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        ));
        out.push_str(&format!(
            "lianxin_http_request_duration_seconds_count {count}\n"
        ));
        out.push_str("# HELP lianxin_http_requests_in_flight Requests being answered now.\n");
        out.push_str("# TYPE lianxin_http_requests_in_flight gauge\n");
        out.push_str(&format!(
            "lianxin_http_requests_in_flight {}\n",
            self.in_flight.load(Ordering::Relaxed)
        ));
        out
    }
}

/// Middleware: times the request, counts it, and writes one structured log line.
pub async fn track(State(state): State<crate::AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    state.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let resp = next.run(req).await;
    state.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let status = resp.status().as_u16();
    state.metrics.observe(&method, &route, status, ms);
    tracing::info!(target: "lianxin::access", method, route, status, ms = (ms * 100.0).round() / 100.0, "request");
    resp
}
