//! Running a real referral service in-process on an ephemeral port, for tests.

use std::net::SocketAddr;
use std::path::Path;

use mosharekat_platform::config::ServerArgs;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Application, Cases, ReferralArgs, Settings};

/// A referral service serving on loopback until [`RunningReferral::stop`].
#[derive(Debug)]
pub struct RunningReferral {
    pub addr: SocketAddr,
    pub cases: Cases,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl RunningReferral {
    pub fn settings(
        database_url: &str,
        public_key: &Path,
        private_key: &Path,
        registry_url: &str,
    ) -> Settings {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut server =
            ServerArgs::local(any, any, database_url.to_owned(), public_key.to_owned());
        server.service_signing_key = Some(private_key.to_owned());
        Settings {
            server,
            referral: ReferralArgs::new(registry_url.to_owned()),
        }
    }

    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let app = Application::build(settings).await?;
        let addr = app.local_addr();
        let cases = app.cases().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Ok(Self {
            addr,
            cases,
            stop: Some(tx),
            task: Some(task),
        })
    }

    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

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

impl Drop for RunningReferral {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
