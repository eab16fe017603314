//! Running a real meeting service in-process on an ephemeral port, for tests.

use std::net::SocketAddr;
use std::path::Path;

use mosharekat_calendar::SharedCalendar;
use mosharekat_platform::clock::Clock;
use mosharekat_platform::config::ServerArgs;
use mosharekat_platform::server::Running;

use crate::{Application, MeetingArgs, Meetings, Settings};

/// A meeting service serving on loopback until [`RunningMeeting::stop`].
#[derive(Debug)]
pub struct RunningMeeting {
    server: Running,
    pub meetings: Meetings,
    /// The public HTTP port (the public record on).
    pub public_addr: Option<SocketAddr>,
}

impl std::ops::Deref for RunningMeeting {
    type Target = Running;
    fn deref(&self) -> &Running {
        &self.server
    }
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
        Self::start_with(settings, Clock::system(), SharedCalendar::suite()).await
    }

    /// Started with `clock` (a test's manual clock) and `calendar`.
    pub async fn start_with(
        settings: Settings,
        clock: Clock,
        calendar: SharedCalendar,
    ) -> anyhow::Result<Self> {
        let app = Application::build_with(settings, clock, calendar).await?;
        let meetings = app.meetings().clone();
        let public_addr = app.public_addr();
        let server = Running::spawn(app.local_addr(), app.metrics_addr(), |stopped| {
            app.run_until_stopped(stopped)
        });
        Ok(Self {
            server,
            meetings,
            public_addr,
        })
    }

    /// Stops it as SIGTERM would, and waits until it has.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.stop().await
    }
}
