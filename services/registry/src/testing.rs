//! Running a real registry in-process on an ephemeral port: for this crate's tests, the
//! other services' tests, benchmarks and the end-to-end suite.

use std::net::SocketAddr;
use std::path::Path;

use mosharekat_platform::config::ServerArgs;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Application, Registry, RegistryArgs, Settings};

/// A registry serving on loopback until [`RunningRegistry::stop`].
#[derive(Debug)]
pub struct RunningRegistry {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub registry: Registry,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
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
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let registry = app.registry().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Ok(Self {
            addr,
            metrics_addr,
            registry,
            stop: Some(tx),
            task: Some(task),
        })
    }

    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it as SIGTERM would, and waits until it has.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => t.await?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
