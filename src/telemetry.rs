//! Logs and metrics.
//!
//! Each request runs in a span carrying a request id (also returned as `X-Request-Id`), the
//! method and the *route pattern* (`/api/v1/submissions/{id}`), never the concrete path or query
//! string: those can carry reference numbers, search terms or one-time codes. Bodies, names,
//! addresses, My Numbers and tokens are never logged.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use tracing::Instrument;
use uuid::Uuid;

use crate::config::{LogFormat, LogSettings};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Log targets that print SQL parameters (answers, emails, tokens) at debug level: capped at
/// info whatever the filter asks for.
const CAPPED_TARGETS: [&str; 2] = ["tokio_postgres", "diesel"];

/// The log filter from `RUST_LOG` or the settings, with the database driver capped.
pub fn log_filter(configured: &str) -> tracing_subscriber::EnvFilter {
    let mut filter = tracing_subscriber::EnvFilter::new(configured);
    for target in CAPPED_TARGETS {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Installs the global tracing subscriber. Safe to call more than once (tests do).
pub fn init_tracing(settings: &LogSettings) {
    let configured = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.filter.clone());
    let filter = log_filter(&configured);
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match settings.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Prometheus metrics of one app instance.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pub pool_size: IntGauge,
    pub pool_available: IntGauge,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("madoguchi".to_owned()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
            ),
            &["method", "route"],
        )?;
        let pool_size = IntGauge::new("db_pool_connections", "Open database connections")?;
        let pool_available =
            IntGauge::new("db_pool_available", "Idle database connections in the pool")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(pool_size.clone()))?;
        registry.register(Box::new(pool_available.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            pool_size,
            pool_available,
        })
    }
}

/// The method as a metrics label, from a fixed set: any other method a client invents is `other`,
/// so nobody can grow the label space.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Request span, request id and metrics, around every request.
pub async fn observe_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| value.len() <= 64 && value.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "(unmatched)".to_owned());
    let method = method_label(request.method());
    let metrics = request.app_data::<web::Data<Metrics>>().cloned();
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, route = %route);
    let started = Instant::now();

    let mut response = next.call(request).instrument(span.clone()).await?;

    let status = response.status();
    let elapsed = started.elapsed();
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            millis = elapsed.as_millis() as u64,
            "served"
        );
    });
    if let Some(metrics) = metrics {
        metrics
            .requests
            .with_label_values(&[method, route.as_str(), status.as_str()])
            .inc();
        metrics
            .latency
            .with_label_values(&[method, route.as_str()])
            .observe(elapsed.as_secs_f64());
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn debug_and_trace_filters_never_show_sql_parameters() {
        for configured in ["debug", "trace", "tokio_postgres=trace,debug"] {
            let captured = Captured::default();
            let writer = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(log_filter(configured))
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                tracing::debug!(target: "tokio_postgres::query", "parameters: [\"kaga@example.jp\"]");
                tracing::debug!(target: "madoguchi::submissions", "still shown");
                tracing::info!(target: "tokio_postgres::connection", "connection closed");
            });
            let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
            assert!(text.contains("still shown"), "{configured}: {text}");
            assert!(text.contains("connection closed"), "{configured}: {text}");
            assert!(!text.contains("kaga@example.jp"), "{configured}: {text}");
        }
    }
}
