//! Prometheus metrics of one service, served as text on its own HTTP port.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// The metrics of one service (each service of the all-in-one launcher has its own).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    gauges: IntGaugeVec,
    event_failures: IntCounterVec,
    event_stalled: IntGaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let registry = Registry::new_custom(
            Some("mosharekat".into()),
            Some([("service".to_owned(), service.to_owned())].into()),
        )
        .expect("a constant prefix and label are valid");
        let requests = IntCounterVec::new(
            Opts::new(
                "grpc_server_requests_total",
                "gRPC calls answered, by service, method and status code",
            ),
            &["grpc_service", "grpc_method", "grpc_code"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "grpc_server_handling_seconds",
                "gRPC call latency in seconds, by service, method and status code",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["grpc_service", "grpc_method", "grpc_code"],
        )
        .expect("valid metric");
        let gauges = IntGaugeVec::new(
            Opts::new(
                "gauge",
                "named gauges, by name: licence_events_handled (the last licence event sequence this service handled)",
            ),
            &["name"],
        )
        .expect("valid metric");
        let event_failures = IntCounterVec::new(
            Opts::new(
                "event_handling_failures_total",
                "failed attempts to handle an event of a followed stream, by stream",
            ),
            &["stream"],
        )
        .expect("valid metric");
        let event_stalled = IntGaugeVec::new(
            Opts::new(
                "event_stalled_sequence",
                "the sequence of the event a followed stream is stalled on, by stream; 0 when none",
            ),
            &["stream"],
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(gauges.clone()),
            Box::new(event_failures.clone()),
            Box::new(event_stalled.clone()),
        ] {
            registry.register(c).expect("registered once");
        }
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                gauges,
                event_failures,
                event_stalled,
            }),
        }
    }

    pub fn observe_rpc(&self, service: &str, method: &str, code: &str, elapsed: Duration) {
        let labels = [service, method, code];
        self.inner.requests.with_label_values(&labels).inc();
        self.inner
            .latency
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Sets a named gauge; the help text of `gauge` lists every name set, so a new one
    /// is added there too.
    pub fn set_gauge(&self, name: &str, value: i64) {
        self.inner.gauges.with_label_values(&[name]).set(value);
    }

    /// One failed attempt to handle an event of `stream`.
    pub fn event_failed(&self, stream: &str) {
        self.inner.event_failures.with_label_values(&[stream]).inc();
    }

    /// The sequence `stream` is stalled on (0: none).
    pub fn set_event_stalled(&self, stream: &str, sequence: i64) {
        self.inner
            .event_stalled
            .with_label_values(&[stream])
            .set(sequence);
    }

    /// Exports `db`'s writes per commit, as `db_write_batch_size` (its count is the
    /// commits, its sum the writes). A second call for the same database is refused by the
    /// registry and ignored.
    pub fn watch_writes(&self, db: &crate::db::Db) {
        let _ = self
            .inner
            .registry
            .register(Box::new(db.write_batch_sizes()));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.inner.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    pub fn router(&self) -> axum::Router {
        let m = self.clone();
        axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let m = m.clone();
                async move {
                    (
                        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        m.render(),
                    )
                }
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_histograms_by_method_and_code() {
        let m = Metrics::new("registry");
        m.observe_rpc(
            "mosharekat.registry.v1.RegistryService",
            "GetInstitution",
            "0",
            Duration::from_millis(2),
        );
        m.observe_rpc(
            "mosharekat.registry.v1.RegistryService",
            "GetInstitution",
            "5",
            Duration::from_millis(1),
        );
        let text = m.render();
        assert!(text.contains(r#"mosharekat_grpc_server_requests_total{grpc_code="0",grpc_method="GetInstitution""#), "{text}");
        assert!(
            text.contains("mosharekat_grpc_server_handling_seconds_bucket"),
            "{text}"
        );
        assert!(text.contains(r#"service="registry""#), "{text}");
    }

    /// Each help line claims only what is exported: these are all of them, and a metric
    /// or gauge name added must say what it is here.
    #[test]
    fn the_help_text_claims_only_what_is_exported() {
        let m = Metrics::new("referral");
        m.observe_rpc("s", "m", "0", Duration::from_millis(1));
        m.set_gauge("licence_events_handled", 3);
        m.event_failed("registry.licence_events");
        m.set_event_stalled("registry.licence_events", 7);
        let text = m.render();
        let help: Vec<_> = text.lines().filter(|l| l.starts_with("# HELP")).collect();
        assert_eq!(
            help,
            [
                "# HELP mosharekat_event_handling_failures_total failed attempts to handle an event of a followed stream, by stream",
                "# HELP mosharekat_event_stalled_sequence the sequence of the event a followed stream is stalled on, by stream; 0 when none",
                "# HELP mosharekat_gauge named gauges, by name: licence_events_handled (the last licence event sequence this service handled)",
                "# HELP mosharekat_grpc_server_handling_seconds gRPC call latency in seconds, by service, method and status code",
                "# HELP mosharekat_grpc_server_requests_total gRPC calls answered, by service, method and status code",
            ],
            "{text}"
        );
        assert!(
            text.contains(
                r#"mosharekat_gauge{name="licence_events_handled",service="referral"} 3"#
            ),
            "{text}"
        );
    }
}
