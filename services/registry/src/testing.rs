//! Running a real registry in-process on an ephemeral port: for this crate's tests, the
//! other services' tests, benchmarks and the end-to-end suite.

use std::net::SocketAddr;
use std::path::Path;

use mosharekat_platform::config::ServerArgs;
use mosharekat_platform::server::Running;

use crate::{Application, Registry, RegistryArgs, Settings};

/// A registry serving on loopback until [`RunningRegistry::stop`].
#[derive(Debug)]
pub struct RunningRegistry {
    server: Running,
    pub registry: Registry,
    /// The plaintext health port (TLS on).
    pub health_addr: Option<SocketAddr>,
    /// The public HTTP port (the public record on).
    pub public_addr: Option<SocketAddr>,
}

impl std::ops::Deref for RunningRegistry {
    type Target = Running;
    fn deref(&self) -> &Running {
        &self.server
    }
}

impl RunningRegistry {
    /// Settings for loopback, ephemeral ports, the given database and token key.
    pub fn settings(database_url: &str, public_key: &Path) -> Settings {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Settings {
            server: ServerArgs::local(any, any, database_url.to_owned(), public_key.to_owned()),
            registry: RegistryArgs::default(),
        }
    }

    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let app = Application::build(settings).await?;
        let registry = app.registry().clone();
        let health_addr = app.health_addr();
        let public_addr = app.public_addr();
        let server = Running::spawn(app.local_addr(), app.metrics_addr(), |stopped| {
            app.run_until_stopped(stopped)
        });
        Ok(Self {
            server,
            registry,
            health_addr,
            public_addr,
        })
    }

    /// Stops it as SIGTERM would, and waits until it has.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.stop().await
    }
}
