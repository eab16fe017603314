//! Running a real referral service in-process on an ephemeral port, for tests.

use std::net::SocketAddr;
use std::path::Path;

use mosharekat_platform::clock::Clock;
use mosharekat_platform::config::ServerArgs;
use mosharekat_platform::server::Running;

use crate::{App, Application, ReferralArgs, Settings};

/// A referral service serving on loopback until [`RunningReferral::stop`].
#[derive(Debug)]
pub struct RunningReferral {
    server: Running,
    pub app: App,
}

impl std::ops::Deref for RunningReferral {
    type Target = Running;
    fn deref(&self) -> &Running {
        &self.server
    }
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
        Self::start_with_clock(settings, Clock::system()).await
    }

    /// As [`RunningReferral::start`], the service's time of day read from `clock`.
    pub async fn start_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let app = Application::build_with_clock(settings, clock).await?;
        let handle = app.app().clone();
        let server = Running::spawn(app.local_addr(), app.metrics_addr(), |stopped| {
            app.run_until_stopped(stopped)
        });
        Ok(Self {
            server,
            app: handle,
        })
    }

    /// Stops it as SIGTERM would, and waits until it has.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.stop().await
    }
}

impl RunningReferral {
    /// Its database, for a test that writes through the change path by hand (a change
    /// rolled back after its notices were written).
    pub fn db(&self) -> &mosharekat_platform::db::Db {
        &self.app.db
    }
}
