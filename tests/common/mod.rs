//! What the end-to-end tests share: free ports, the service binaries as processes, a test
//! OTLP collector, small HTTP and signal helpers, and (for the fault tests) services that
//! can be killed and restarted, and numbered writes with their accounting.

#![allow(dead_code)] // each test binary uses its own part of this module

pub mod collector;
pub mod procs;
pub mod workload;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tonic::Request;
use tonic::transport::Channel;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A request carrying `bearer` (`Bearer …`).
pub fn authed<T>(bearer: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", bearer.parse().unwrap());
    r
}

pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits up to `within` for `child` to exit.
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// A plain HTTP/1.1 GET, enough for the metrics endpoint.
pub async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// The folder holding the suite's binaries. The service binaries belong to their own
/// packages: `cargo nextest run --workspace` (the README's test command) builds them.
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_mosharekat"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn service_binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{name} is not built at {}; run the tests with --workspace",
        path.display()
    );
    path
}

/// Health of `service` ("" for the process) at `uri`, or `None` when it does not answer.
pub async fn health(uri: &str, service: &str) -> Option<i32> {
    let ch = Channel::from_shared(uri.to_owned())
        .ok()?
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .ok()?;
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
    let r = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .ok()?;
    Some(r.into_inner().status)
}

/// Waits until `uri` answers `SERVING` for `service`.
pub async fn wait_serving(uri: &str, service: &str, within: Duration) {
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    let start = Instant::now();
    while health(uri, service).await != Some(serving) {
        assert!(
            start.elapsed() < within,
            "{uri} is not SERVING {service:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits up to `within` for `uri` to answer `want` for `service`; how long it took, or
/// `None` if it did not.
pub async fn wait_health(
    uri: &str,
    service: &str,
    want: tonic_health::pb::health_check_response::ServingStatus,
    within: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if health(uri, service).await == Some(want as i32) {
            return Some(start.elapsed());
        }
        if start.elapsed() >= within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
