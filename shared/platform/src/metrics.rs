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
                "gRPC calls handled, by method and status code",
            ),
            &["grpc_service", "grpc_method", "grpc_code"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "grpc_server_handling_seconds",
                "gRPC call latency, by method and status code",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["grpc_service", "grpc_method", "grpc_code"],
        )
        .expect("valid metric");
        let gauges = IntGaugeVec::new(
            Opts::new("gauge", "service gauges: database pool, event-stream lag"),
            &["name"],
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(gauges.clone()),
        ] {
            registry.register(c).expect("registered once");
        }
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                gauges,
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

    /// Sets a named gauge (e.g. `db_pool_idle`, `event_stream_lag`).
    pub fn set_gauge(&self, name: &str, value: i64) {
        self.inner.gauges.with_label_values(&[name]).set(value);
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
}
