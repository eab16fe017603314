//! Running a real meeting service in-process on an ephemeral port, for tests.

use std::net::SocketAddr;
use std::path::Path;

use mosharekat_platform::config::ServerArgs;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Application, MeetingArgs, Meetings, Settings};

/// A meeting service serving on loopback until [`RunningMeeting::stop`].
#[derive(Debug)]
pub struct RunningMeeting {
    pub addr: SocketAddr,
    pub meetings: Meetings,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl RunningMeeting {
    pub fn settings(
        database_url: &str,
        public_key: &Path,
        private_key: &Path,
        registry_url: &str,
        referral_url: &str,
    ) -> Settings {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut server =
            ServerArgs::local(any, any, database_url.to_owned(), public_key.to_owned());
        server.service_signing_key = Some(private_key.to_owned());
        Settings {
            server,
            meeting: MeetingArgs::new(registry_url.to_owned(), referral_url.to_owned()),
        }
    }

    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let app = Application::build(settings).await?;
        let addr = app.local_addr();
        let meetings = app.meetings().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Ok(Self {
            addr,
            meetings,
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

impl Drop for RunningMeeting {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
