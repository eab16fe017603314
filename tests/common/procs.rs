//! One service binary as a process the test can kill, stop, continue and start again on
//! the same port and database, as an operator (or the kernel) would.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mosharekat_platform::testing::TestKeys;
use tonic::transport::{Channel, Endpoint};

use super::{free_port, service_binary, wait_serving};

/// The gRPC service name each binary reports in health.
pub fn grpc_name(binary: &str) -> &'static str {
    match binary {
        "registry" => "mosharekat.registry.v1.RegistryService",
        "referral" => "mosharekat.referral.v1.ReferralService",
        "meeting" => "mosharekat.meeting.v1.MeetingService",
        other => panic!("no service binary {other}"),
    }
}

/// Where a service finds its peers (ports that may have nothing behind them).
#[derive(Debug, Clone, Copy)]
pub struct Peers {
    pub registry: u16,
    pub referral: u16,
}

impl Peers {
    /// Ports nothing listens on: for a service tested alone.
    pub fn nowhere() -> Self {
        Self {
            registry: free_port(),
            referral: free_port(),
        }
    }
}

/// A service binary run as its own process. Started again by [`Service::start`] with the
/// same port, database and settings; its log (stderr, JSON lines) accumulates across starts.
pub struct Service {
    pub binary: &'static str,
    pub port: u16,
    pub metrics_port: u16,
    pub database_url: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    stopped: bool,
}

impl Service {
    /// A service that is not yet started. `env` and `args` add to (or override) the
    /// defaults: a quick health check, no drain delay, JSON logs.
    pub fn new(
        binary: &'static str,
        database_url: &str,
        keys: &TestKeys,
        peers: Peers,
        log_dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let port = match binary {
            "registry" => peers.registry,
            "referral" => peers.referral,
            _ => free_port(),
        };
        let metrics_port = free_port();
        let mut all: Vec<(String, String)> = vec![
            ("LISTEN_ADDR".into(), format!("127.0.0.1:{port}")),
            ("METRICS_ADDR".into(), format!("127.0.0.1:{metrics_port}")),
            ("DATABASE_URL".into(), database_url.to_owned()),
            (
                "TOKEN_PUBLIC_KEYS".into(),
                keys.public_key.display().to_string(),
            ),
            (
                "SERVICE_SIGNING_KEY".into(),
                keys.private_key.display().to_string(),
            ),
            (
                "REGISTRY_URL".into(),
                format!("http://127.0.0.1:{}", peers.registry),
            ),
            (
                "REFERRAL_URL".into(),
                format!("http://127.0.0.1:{}", peers.referral),
            ),
            ("SHUTDOWN_DRAIN_DELAY".into(), "0s".into()),
            ("HEALTH_CHECK_INTERVAL".into(), "200ms".into()),
            ("LOG_FORMAT".into(), "json".into()),
        ];
        for (k, v) in env {
            all.retain(|(key, _)| key != k);
            all.push(((*k).to_owned(), (*v).to_owned()));
        }
        Self {
            binary,
            port,
            metrics_port,
            database_url: database_url.to_owned(),
            env: all,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            log: log_dir.join(format!("{binary}-{port}.log")),
            child: None,
            stopped: false,
        }
    }

    /// Starts the process (again), without waiting for it to serve.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.binary);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(service_binary(self.binary));
        cmd.args(&self.args)
            .env_remove("RUST_LOG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().unwrap());
        self.stopped = false;
    }

    /// Starts the process (again) and waits until it is `SERVING`; returns how long that took.
    pub async fn start(&mut self) -> Duration {
        let t = Instant::now();
        self.spawn();
        wait_serving(&self.uri(), grpc_name(self.binary), Duration::from_secs(60)).await;
        t.elapsed()
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn grpc_name(&self) -> &'static str {
        grpc_name(self.binary)
    }

    /// A channel that connects when first used and again after the process is restarted.
    pub fn channel(&self) -> Channel {
        Endpoint::from_shared(self.uri())
            .unwrap()
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .connect_lazy()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the service runs").id()
    }

    /// SIGKILL: the process ends at once, mid-call and mid-commit; reaped before returning.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.stopped = false;
    }

    /// SIGSTOP: the process hangs, its sockets open; the kernel still accepts connections.
    pub fn freeze(&mut self) {
        signal(self.pid(), "STOP");
        self.stopped = true;
    }

    /// SIGCONT after [`Service::freeze`].
    pub fn thaw(&mut self) {
        signal(self.pid(), "CONT");
        self.stopped = false;
    }

    /// Its log so far, over every start.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.stopped
            && let Some(c) = &self.child
        {
            signal(c.id(), "CONT");
        }
        self.kill9();
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pid}");
}
