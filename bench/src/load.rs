//! The load generator: `concurrency` workers share a few clients (HTTP/2 connections),
//! each calling in a loop until the request budget or the time is spent, recording every
//! latency in an HDR histogram.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// How much load.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub concurrency: usize,
    pub duration: Duration,
    pub max_requests: u64,
}

/// What one run measured. Latencies in milliseconds, of successful calls.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

fn histogram() -> Histogram<u64> {
    // Microseconds, 1 µs to 10 min, three significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Runs `call(client, n)` for n = 0, 1, 2, … from `spec.concurrency` workers; worker `w`
/// uses `clients[w % clients.len()]`.
pub async fn run<C, F, Fut>(spec: Spec, clients: &[C], call: F) -> Sample
where
    C: Clone + Send + 'static,
    F: Fn(C, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + spec.duration;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..spec.concurrency {
        let client = clients[w % clients.len()].clone();
        let call = call.clone();
        let next = next.clone();
        let max = spec.max_requests;
        workers.spawn(async move {
            let mut h = histogram();
            let mut errors = 0u64;
            let mut first_error = None;
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= max {
                    break;
                }
                let t = Instant::now();
                match call(client.clone(), n).await {
                    Ok(()) => {
                        let us = t.elapsed().as_micros().max(1) as u64;
                        let _ = h.record(us.min(h.high()));
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (h, errors, first_error)
        });
    }
    let mut all = histogram();
    let mut errors = 0;
    let mut first_error = None;
    while let Some(r) = workers.join_next().await {
        let (h, e, f) = r.expect("a load worker panicked");
        let _ = all.add(&h);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    Sample {
        requests: all.len(),
        errors,
        seconds,
        throughput: all.len() as f64 / seconds,
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p99_ms: ms(0.99),
        max_ms: all.max() as f64 / 1000.0,
        first_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stops_at_the_request_budget_and_counts_errors() {
        let s = run(
            Spec {
                concurrency: 4,
                duration: Duration::from_secs(30),
                max_requests: 100,
            },
            &[(), ()],
            |_, n| async move {
                if n % 10 == 0 {
                    Err(format!("call {n} failed"))
                } else {
                    Ok(())
                }
            },
        )
        .await;
        assert_eq!(s.requests, 90);
        assert_eq!(s.errors, 10);
        assert!(s.first_error.unwrap().ends_with("failed"));
    }

    #[tokio::test]
    async fn stops_at_the_time_budget() {
        let s = run(
            Spec {
                concurrency: 2,
                duration: Duration::from_millis(200),
                max_requests: u64::MAX,
            },
            &[()],
            |_, _| async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(())
            },
        )
        .await;
        assert!(s.requests > 0 && s.requests < 100, "{s:?}");
        assert!(s.p50_ms >= 10.0, "{s:?}");
    }
}
