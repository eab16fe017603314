//! Logs, traces and their propagation.
//!
//! Logs go through `tracing`: pretty on a terminal, JSON otherwise. Spans become
//! OpenTelemetry spans; they are exported over OTLP/gRPC only when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set, but trace ids exist
//! either way, so every response and error can name its trace. W3C `traceparent` is read
//! from every incoming call and written into every outgoing one.

use std::io::IsTerminal;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    Json,
    Pretty,
}

/// Keeps the tracer provider alive; [`Telemetry::shutdown`] flushes pending spans.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Flushes and stops the exporter. Runs off the async workers: the batch exporter's
    /// shutdown blocks, and can deadlock a runtime thread.
    pub async fn shutdown(self) {
        let p = self.provider;
        let _ = tokio::task::spawn_blocking(move || p.shutdown()).await;
    }

    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }
}

fn exporter_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
}

/// The tracer provider for `service`: exporting over OTLP when configured.
pub fn tracer_provider(service: &str) -> anyhow::Result<SdkTracerProvider> {
    let resource = Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    let mut b = SdkTracerProvider::builder().with_resource(resource);
    if exporter_configured() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?;
        b = b.with_batch_exporter(exporter);
    }
    Ok(b.build())
}

fn fmt_layer<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let base = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if json {
        base.json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed()
    } else {
        base.compact().boxed()
    }
}

/// The default filter: `info` for the suite, quieter for the libraries under it. SeaORM
/// stays at `info`: its statement spans are the database spans of every trace (it logs
/// no events at that level).
pub fn default_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,h2=warn,hyper=warn,tonic=warn,tower=warn,sqlx=warn,opentelemetry=warn")
    })
}

/// Installs logging and tracing for the process. Call once, inside the Tokio runtime.
pub fn init(service: &str, format: LogFormat) -> anyhow::Result<Telemetry> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = tracer_provider(service)?;
    let tracer = provider.tracer(service.to_owned());
    tracing_subscriber::registry()
        .with(default_filter())
        .with(fmt_layer(format))
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the tracing subscriber: {e}"))?;
    Ok(Telemetry { provider })
}

/// Reads W3C trace context from HTTP/2 headers (gRPC metadata).
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes W3C trace context into HTTP/2 headers (gRPC metadata).
pub struct HeaderInjector<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
        if let (Ok(k), Ok(v)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// The remote parent a caller sent, if any.
pub fn extract_context(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Puts the current span's context into outgoing headers.
pub fn inject_current(headers: &mut http::HeaderMap) {
    let cx = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderInjector(headers)));
}

/// The current span's W3C `traceparent`, to store beside an event so that its consumers
/// can link back to the change that caused it.
pub fn current_traceparent() -> String {
    let mut h = http::HeaderMap::new();
    inject_current(&mut h);
    h.get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The span context in a stored `traceparent`, to link a span to it.
pub fn span_context_of(traceparent: &str) -> Option<opentelemetry::trace::SpanContext> {
    let mut h = http::HeaderMap::new();
    h.insert(
        "traceparent",
        http::HeaderValue::from_str(traceparent).ok()?,
    );
    let cx = extract_context(&h);
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// The current trace id (32 hex digits), or empty when there is no trace.
pub fn current_trace_id() -> String {
    let sc = tracing::Span::current()
        .context()
        .span()
        .span_context()
        .clone();
    if sc.is_valid() {
        sc.trace_id().to_string()
    } else {
        String::new()
    }
}
