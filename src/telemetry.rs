//! Logs and metrics.
//!
//! Each request runs in a span carrying a request id (also returned as `X-Request-Id`), the
//! method and the *route pattern* (`/api/v1/submissions/{id}`), never the concrete path or query
//! string: those can carry reference numbers, search terms or one-time codes. Bodies, names,
//! addresses, My Numbers and tokens are never logged.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use tracing::Instrument;
use uuid::Uuid;

use crate::config::{LogFormat, LogSettings};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request's id, in the request's extensions for middleware that answers on its own.
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

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
    use tracing_subscriber::util::SubscriberInitExt;
    let configured = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.filter.clone());
    // Colour only for a person at a terminal: a log redirected to a file or a collector gets
    // plain text, not escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let _ = subscriber(&configured, settings.format, ansi, std::io::stdout).try_init();
}

/// The subscriber: formatted output filtered by `filter`, writing to `writer`.
fn subscriber<W>(
    filter: &str,
    format: LogFormat,
    ansi: bool,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Clone + Send + Sync + 'static,
{
    use tracing_subscriber::filter::{FilterExt, LevelFilter, filter_fn};
    use tracing_subscriber::prelude::*;
    let output = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer.clone());
    let output = match format {
        LogFormat::Json => output.json().boxed(),
        LogFormat::Pretty => output.boxed(),
    };
    // Both filters carry a maximum level, so the subscriber's overall level is the configured
    // filter's (a filter without one makes it TRACE): then every `log` record of the database
    // driver (a few per statement) is dropped where it is made, not built and run through the
    // filters first.
    let not_dispatcher_error = filter_fn(|metadata| !is_dispatcher_error(metadata))
        .with_max_level_hint(LevelFilter::TRACE);
    let dispatcher_errors = DispatcherErrors { writer, format };
    tracing_subscriber::registry()
        .with(output.with_filter(log_filter(filter).and(not_dispatcher_error)))
        .with(
            dispatcher_errors.with_filter(
                filter_fn(is_dispatcher_error).with_max_level_hint(LevelFilter::ERROR),
            ),
        )
}

/// actix's HTTP/1 dispatcher logs a connection that ended in an error at ERROR, and most such
/// connections are a client's malformed request ("stream error: …"): not our failure.
fn is_dispatcher_error(metadata: &tracing::Metadata<'_>) -> bool {
    *metadata.level() == tracing::Level::ERROR
        && metadata.target() == "actix_http::h1::dispatcher"
        && metadata.is_event()
}

/// Writes the dispatcher's errors under our own target: a request the HTTP parser refused at
/// WARN (a client error), anything else still at ERROR; the output layer skips the originals.
/// The line is written here, in the output layer's shape, because tracing drops an event
/// emitted from inside another event's dispatch.
struct DispatcherErrors<W> {
    writer: W,
    format: LogFormat,
}

impl<S, W> tracing_subscriber::Layer<S> for DispatcherErrors<W>
where
    S: tracing::Subscriber,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        use std::io::Write;
        let mut message = MessageText::default();
        event.record(&mut message);
        let (level, text) = match message.0.strip_prefix("stream error: ") {
            Some(reason) => ("WARN", format!("refused a malformed request: {reason}")),
            None => ("ERROR", message.0),
        };
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let line = match self.format {
            LogFormat::Json => serde_json::json!({
                "timestamp": now,
                "level": level,
                "fields": { "message": text },
                "target": "madoguchi::http",
            })
            .to_string(),
            LogFormat::Pretty => format!("{now} {level:>5} madoguchi::http: {text}"),
        };
        let _ = writeln!(self.writer.make_writer(), "{line}");
    }
}

#[derive(Default)]
struct MessageText(String);

impl tracing::field::Visit for MessageText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// Prometheus metrics of one app instance.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pub pool_size: IntGauge,
    pub pool_available: IntGauge,
    /// Payments by provider and status, counted in the database at each scrape (so payments the
    /// worker settles are counted too).
    pub payments: IntGaugeVec,
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
        let payments = IntGaugeVec::new(
            Opts::new("payments", "Payments by provider and status"),
            &["provider", "status"],
        )?;
        registry.register(Box::new(payments.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            pool_size,
            pool_available,
            payments,
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

/// The most request paths one thread remembers the route of before it forgets them all: the
/// catalog's paths and a worker's recent ones by id fit, and a miss costs only the walk.
const ROUTES_PER_THREAD: usize = 4096;
/// Longer paths are not remembered, so a client sending long random paths cannot make a thread
/// hold more than about a megabyte of them.
const LONGEST_REMEMBERED_PATH: usize = 256;

thread_local! {
    /// Route patterns by request path, and the route table they were found in. actix-web finds a
    /// path's pattern by walking every route, about 3 % of the CPU an application costs; the
    /// answer depends on the path alone, so it is looked up once per path (docs/BENCHMARKS.md,
    /// session 10).
    static ROUTES: RefCell<(usize, HashMap<String, String>)> = RefCell::new((0, HashMap::new()));
}

/// The request's route pattern (`(unmatched)` when no route has the path), for the span and the
/// metrics.
fn route_pattern(request: &ServiceRequest) -> String {
    // A process that builds several apps (tests) may serve them on one thread: the table's
    // address tells them apart, and the remembered routes are forgotten when it changes.
    let table = std::ptr::from_ref(request.request().resource_map()) as usize;
    let path = request.path();
    ROUTES.with_borrow_mut(|(remembered_for, routes)| {
        if *remembered_for != table || routes.len() >= ROUTES_PER_THREAD {
            routes.clear();
            *remembered_for = table;
        }
        if let Some(pattern) = routes.get(path) {
            return pattern.clone();
        }
        let pattern = request
            .match_pattern()
            .unwrap_or_else(|| "(unmatched)".to_owned());
        if path.len() <= LONGEST_REMEMBERED_PATH {
            routes.insert(path.to_owned(), pattern.clone());
        }
        pattern
    })
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
    let route = route_pattern(&request);
    let method = method_label(request.method());
    let metrics = request.app_data::<web::Data<Metrics>>().cloned();
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, route = %route);
    let started = Instant::now();

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        request.extensions_mut().insert(RequestId(value));
    }
    // A middleware further in may refuse with an error rather than a response (the deadline's
    // 408 and 503); it is counted and logged all the same, and carries the id itself.
    let result = next.call(request).instrument(span.clone()).await;
    let status = match &result {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
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
    let mut response = result?;
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
            let subscriber =
                subscriber(configured, LogFormat::Pretty, false, move || writer.clone());
            tracing::subscriber::with_default(subscriber, || {
                tracing::debug!(target: "tokio_postgres::query", "parameters: [\"kaga@example.jp\"]");
                tracing::debug!(target: "madoguchi::submissions", "still shown");
                tracing::info!(target: "tokio_postgres::connection", "connection closed");
            });
            let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
            assert!(text.contains("still shown"), "{configured}: {text}");
            assert!(text.contains("connection closed"), "{configured}: {text}");
            assert!(!text.contains("kaga@example.jp"), "{configured}: {text}");
            assert!(
                !text.contains('\u{1b}'),
                "no colour codes off a terminal: {text:?}"
            );
        }
    }

    #[test]
    fn the_subscriber_reports_the_filters_level_so_finer_records_are_dropped_where_made() {
        use tracing::Subscriber as _;
        use tracing_subscriber::filter::LevelFilter;
        let level = |configured: &str| {
            subscriber(configured, LogFormat::Json, false, std::io::sink).max_level_hint()
        };
        // The database driver is capped at info, so nothing below info reaches the filters.
        assert_eq!(level("warn"), Some(LevelFilter::INFO));
        assert_eq!(level("info"), Some(LevelFilter::INFO));
        assert_eq!(level("debug"), Some(LevelFilter::DEBUG));
    }

    #[test]
    fn a_request_the_http_parser_refused_is_a_warning_and_other_dispatcher_errors_stay_errors() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = subscriber("info", LogFormat::Json, false, move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: {}", "parse error: invalid Header provided");
            tracing::error!(target: "actix_http::h1::dispatcher", "write zero; closing");
            tracing::trace!(target: "actix_http::h1::dispatcher", "not shown at info");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).expect("utf-8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON log line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["target"], "madoguchi::http");
        assert_eq!(
            lines[0]["fields"]["message"],
            "refused a malformed request: parse error: invalid Header provided"
        );
        assert_eq!(lines[1]["level"], "ERROR");
        assert_eq!(lines[1]["fields"]["message"], "write zero; closing");
    }

    #[actix_web::test]
    async fn each_request_is_counted_under_its_route_pattern_the_first_time_and_after() {
        use actix_web::{App, HttpResponse, middleware::from_fn, test};

        let metrics = web::Data::new(Metrics::new().unwrap());
        let app = test::init_service(
            App::new()
                .app_data(metrics.clone())
                .wrap(from_fn(observe_request))
                .route("/a/{id}", web::get().to(HttpResponse::Ok))
                .route("/b", web::get().to(HttpResponse::Ok)),
        )
        .await;
        for path in ["/a/1", "/a/1", "/a/2", "/b", "/b", "/c", "/a/1"] {
            test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        }
        let count = |route: &str| {
            metrics
                .requests
                .with_label_values(&[
                    "GET",
                    route,
                    if route == "(unmatched)" { "404" } else { "200" },
                ])
                .get()
        };
        assert_eq!(count("/a/{id}"), 4);
        assert_eq!(count("/b"), 2);
        assert_eq!(count("(unmatched)"), 1);
    }
}
