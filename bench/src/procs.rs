//! The services (and the echo baseline) as separate processes: started from the release
//! binaries next to this one, timed to `SERVING`, and their resident memory read from
//! `/proc`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The folder of this executable: `cargo build --release --workspace --bins --exclude
/// mosharekat-testkit` puts the service binaries there too.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no folder for {}", exe.display()))?
        .to_owned())
}

/// A process under test.
#[derive(Debug)]
pub struct Proc {
    pub child: Child,
    pub port: u16,
    /// From spawn to `SERVING` for its gRPC service.
    pub startup: Duration,
}

/// Resident memory now and at its peak, in MiB.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Memory {
    pub rss_mib: f64,
    pub peak_mib: f64,
}

impl Proc {
    /// Starts `binary` with `env`, and waits until `health_service` is `SERVING`.
    pub async fn start(
        name: &str,
        binary: &Path,
        args: &[&str],
        env: &[(&str, String)],
        port: u16,
        health_service: &str,
        log: &Path,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            binary.exists(),
            "{} is missing: run `cargo build --release --workspace --bins --exclude mosharekat-testkit` first (scripts/bench.sh does)",
            binary.display()
        );
        let started = Instant::now();
        let mut cmd = Command::new(binary);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log)?))
            .spawn()?;
        let uri = format!("http://127.0.0.1:{port}");
        loop {
            if serving(&uri, health_service).await {
                break;
            }
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("{name} exited with {status}; see {}", log.display());
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "{name} did not start within a minute; see {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Self {
            startup: started.elapsed(),
            child,
            port,
        })
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `n` separate HTTP/2 connections to the process.
    pub async fn connections(&self, n: usize) -> anyhow::Result<Vec<Channel>> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(
                Endpoint::from_shared(self.uri())?
                    .tcp_nodelay(true)
                    .connect()
                    .await?,
            );
        }
        Ok(out)
    }

    pub fn memory(&self) -> Memory {
        memory_of(self.child.id())
    }

    /// SIGTERM, then wait for the exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
    }
}

async fn serving(uri: &str, service: &str) -> bool {
    let Ok(ep) = Endpoint::from_shared(uri.to_owned()) else {
        return false;
    };
    let Ok(ch) = ep.connect().await else {
        return false;
    };
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
    matches!(
        h.check(tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        })
        .await,
        Ok(r) if r.get_ref().status
            == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    )
}

/// `VmRSS` and `VmHWM` of a process, in MiB (zero where `/proc` has no answer).
pub fn memory_of(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Memory {
        rss_mib: kib("VmRSS:") / 1024.0,
        peak_mib: kib("VmHWM:") / 1024.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_memory() {
        let m = memory_of(std::process::id());
        assert!(m.rss_mib > 0.0 && m.peak_mib >= m.rss_mib, "{m:?}");
    }
}
