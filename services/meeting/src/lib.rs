//! The meeting service: the provincial working group of officials and six institution
//! representatives, its meetings (agenda, attendance, quorum), resolutions followed up
//! across meetings, and minutes that become immutable once approved.
//!
//! - [`domain`]: the resources as the service has them (typed names, enums, newtypes);
//! - [`api`]: the gRPC service: each RPC's role check, its request into domain types, the
//!   use case, the answer back into API messages;
//! - [`rules`]: seats, quorum, votes, life cycles — pure;
//! - [`canonical`]: the minutes' hash, its documented canonical form and its versions;
//! - [`names`]: the typed resource names, every segment checked;
//! - [`store`]: the tables, each record the service's own JSON under a schema version,
//!   each child loaded only under its own working group;
//! - [`app`]: the use cases, one per RPC: transactions, the change path, peers;
//! - [`error`]: the rules' refusals and their one conversion to the API's error;
//! - [`minutes`]: the printable right-to-left Persian HTML of the minutes;
//! - [`events`]: seats flagged vacant when an institution loses its licence;
//! - [`notices`]: what the members are told (meetings, resolutions, reminders of their
//!   deadlines), in the transaction of the change;
//! - [`public`]: the public register of adopted resolutions, behind its switch;
//! - [`migrations`]: the schema, and the conversion of the previous releases' rows;
//! - [`Application`]: the whole service built from its settings.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod canonical;
pub mod domain;
pub mod error;
pub mod events;
pub mod migrations;
pub mod minutes;
pub mod names;
pub mod notices;
pub mod public;
pub mod rules;
pub mod store;
// Starting the service in a test's process: for tests and the `tests/` crates only.
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

use std::net::SocketAddr;
use std::time::Duration;

use mosharekat_api::meeting::v1::meeting_service_server::MeetingServiceServer;
use mosharekat_api::meeting::v1::public_record_service_server::PublicRecordServiceServer;
use mosharekat_calendar::SharedCalendar;
use mosharekat_notify::NotificationApi;
use mosharekat_notify::email::SmtpArgs;
use mosharekat_platform::add_limited;
use mosharekat_platform::audit::AuditApi;
use mosharekat_platform::auth::{TokenSigner, TokenVerifier};
use mosharekat_platform::client::ServiceToken;
use mosharekat_platform::clock::Clock;
use mosharekat_platform::config::{ServerArgs, ServiceDefaults};
use mosharekat_platform::db::Db;
use mosharekat_platform::metrics::Metrics;
use mosharekat_platform::public::PublicArgs;
use mosharekat_platform::server::GrpcServer;
use mosharekat_platform::stalls::{LICENCE_EVENTS_HEALTH, Stalls};
use mosharekat_platform::tls::Tls;
use mosharekat_referral_client::ReferralPeer;
use mosharekat_registry_client::RegistryPeer;

pub use app::Meetings;

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "meeting",
    port: 50053,
    metrics_port: 9053,
    health_port: 50063,
};

/// The RPCs only the suite's services make of the meeting service: none (no service calls
/// it). Under mutual TLS a SERVICE token is still honoured only with its service's
/// client certificate.
pub const PEER_RPCS: &[&str] = &[];

/// The meeting service's own settings.
#[derive(Debug, Clone, clap::Args)]
pub struct MeetingArgs {
    /// The registry's address.
    #[arg(long, env = "REGISTRY_URL", default_value = "http://127.0.0.1:50051")]
    pub registry_url: String,
    /// The referral service's address.
    #[arg(long, env = "REFERRAL_URL", default_value = "http://127.0.0.1:50052")]
    pub referral_url: String,
    /// The longest a call to a peer may take (less when the caller's deadline is nearer).
    #[arg(long, env = "PEER_TIMEOUT", default_value = "3s")]
    pub peer_timeout: humantime::Duration,
    /// How often due deadline reminders are turned into notifications.
    #[arg(long, env = "REMINDER_INTERVAL", default_value = "60s")]
    pub reminder_interval: humantime::Duration,
    /// The e-mail channel (off without `--smtp-host`).
    #[command(flatten)]
    pub smtp: SmtpArgs,
    /// The public record (off by default).
    #[command(flatten)]
    pub public: PublicArgs,
}

impl MeetingArgs {
    pub fn new(registry_url: String, referral_url: String) -> Self {
        Self {
            registry_url,
            referral_url,
            peer_timeout: Duration::from_secs(3).into(),
            reminder_interval: Duration::from_secs(60).into(),
            smtp: SmtpArgs {
                host: None,
                port: 587,
                security: "starttls".into(),
                user: None,
                password: None,
                from: "notify@localhost".into(),
                timeout: Duration::from_secs(30).into(),
            },
            public: PublicArgs::default(),
        }
    }
}

/// Everything the meeting service needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerArgs,
    pub meeting: MeetingArgs,
}

/// Connects to the database and applies the meeting service's migrations.
pub async fn migrate(server: &ServerArgs) -> anyhow::Result<Db> {
    mosharekat_platform::db::connect_and_migrate::<migrations::Migrator>(server, DEFAULTS.name)
        .await
}

/// The meeting service, bound and ready to serve.
#[derive(Debug)]
pub struct Application {
    server: GrpcServer,
    meetings: Meetings,
    token: ServiceToken,
    registry: tonic::transport::Channel,
    stalls: Stalls,
    reminder_interval: Duration,
    mailer: Option<mosharekat_notify::email::Mailer>,
    /// The public HTTP port, with the public record on.
    public_addr: Option<SocketAddr>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Clock::system(), SharedCalendar::suite()).await
    }

    /// Built with `clock` as the time of everything it writes (a test's manual clock)
    /// and `calendar` as its legal calendar.
    pub async fn build_with(
        settings: Settings,
        clock: Clock,
        calendar: SharedCalendar,
    ) -> anyhow::Result<Self> {
        let server_args = settings.server.clone().with_defaults(DEFAULTS);
        let verifier = TokenVerifier::from_pem_files(&server_args.token_public_keys)?
            .for_service(DEFAULTS.name);
        // Keys added or retired take effect without a restart; the watcher ends with
        // the server that holds the verifier.
        drop(verifier.watch(server_args.token_keys_reload_interval.into()));
        let key = server_args.service_signing_key.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "--service-signing-key is required to call the registry and the referral service"
            )
        })?;
        // A token per peer, each for that peer alone (`aud`).
        let own = ServiceToken::new(TokenSigner::from_pem_file(key)?, DEFAULTS.name);
        let token = own.for_audience("registry");
        let tls = Tls::load(&server_args.tls, DEFAULTS.name)?;
        let db = migrate(&server_args).await?.with_clock(clock);
        let mailer = settings
            .meeting
            .smtp
            .settings()
            .map(|s| mosharekat_notify::email::Mailer::new(&s))
            .transpose()?;
        let timeout: Duration = settings.meeting.peer_timeout.into();
        let (registry_url, referral_url) = (
            &settings.meeting.registry_url,
            &settings.meeting.referral_url,
        );
        let registry_target = mosharekat_platform::client::PeerTarget::new(
            registry_url,
            tls.client_for(registry_url, "registry")?.as_ref(),
        )?;
        let referral_target = mosharekat_platform::client::PeerTarget::new(
            referral_url,
            tls.client_for(referral_url, "referral")?.as_ref(),
        )?;
        // The event stream keeps its own long-lived channel; calls go through the peer links.
        let registry = registry_target.connect_lazy();
        let meetings = Meetings {
            db: db.clone(),
            registry: RegistryPeer::new(registry_target, token.clone(), timeout),
            referral: ReferralPeer::new(referral_target, own.for_audience("referral"), timeout),
            calendar,
        };
        let metrics = Metrics::new(DEFAULTS.name);
        metrics.watch_writes(&db);
        let mut server = GrpcServer::bind(&server_args, verifier, metrics.clone(), &tls).await?;
        // A licence event that keeps failing: recorded here, reported, and resolved
        // through the StalledEventService.
        let stalls = Stalls::new(
            db.clone(),
            events::STREAM,
            LICENCE_EVENTS_HEALTH,
            metrics.clone(),
            Some(server.health()),
        );
        server.peer_rpcs(PEER_RPCS);
        add_limited!(&mut server;
            MeetingServiceServer::new(meetings.clone()),
            stalls.api().into_server(),
            NotificationApi::new(db.clone()).into_server(),
            AuditApi::new(db).into_server(),
        );
        // The public register: served, and let through without a token, only when on.
        let mut public_addr = None;
        if let Some(listen) = settings.meeting.public.listen(public::PUBLIC_HTTP_PORT) {
            add_limited!(&mut server; PublicRecordServiceServer::new(meetings.clone()));
            public_addr = Some(
                server
                    .public(public::methods(), listen, public::router(meetings.clone()))
                    .await?,
            );
        }
        Ok(Self {
            server,
            meetings,
            token,
            registry,
            stalls,
            reminder_interval: settings.meeting.reminder_interval.into(),
            mailer,
            public_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.server.metrics_addr()
    }

    /// The plaintext health port, when there is one (TLS on).
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.server.health_addr()
    }

    /// The public HTTP port (open-data CSV), with the public record on.
    pub fn public_addr(&self) -> Option<SocketAddr> {
        self.public_addr
    }

    pub fn meetings(&self) -> &Meetings {
        &self.meetings
    }

    /// The legal calendar the service counts deadlines by (shared: the calendar follower
    /// may update it).
    pub fn calendar(&self) -> &SharedCalendar {
        &self.meetings.calendar
    }

    /// A holiday or closure published after deadlines were set: see
    /// [`Meetings::apply_publication`]. The follower, which outlives `run_until_stopped`'s
    /// `self`, may hold `meetings().clone()` and call it there.
    pub async fn apply_publication(
        &self,
        publication: &mosharekat_calendar::Publication,
    ) -> Result<Vec<names::ResolutionName>, mosharekat_platform::error::ApiError> {
        self.meetings.apply_publication(publication).await
    }

    /// Serves until `shutdown` resolves, following the registry's licence events and its
    /// legal calendar meanwhile.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let db = self.meetings.db.clone();
        let consumer = tokio::spawn(mosharekat_registry_client::events::follow_licence_events(
            self.registry.clone(),
            self.token.clone(),
            events::VacateOnLicenceLoss,
            self.stalls.clone(),
        ));
        // A holiday or closure the registry publishes moves the open resolution deadlines
        // ending on it.
        let meetings = self.meetings.clone();
        let calendar = tokio::spawn(mosharekat_registry_client::calendar::follow_calendar(
            self.registry.clone(),
            self.token.clone(),
            db.clone(),
            self.meetings.calendar.clone(),
            move |p| {
                let meetings = meetings.clone();
                async move { meetings.apply_publication(&p).await.map(|_| ()) }
            },
        ));
        let reminders =
            mosharekat_notify::reminders::spawn_reminder_loop(db.clone(), self.reminder_interval);
        let email = self.mailer.clone().map(|m| {
            mosharekat_notify::email::spawn_email_delivery(
                db.clone(),
                m,
                mosharekat_notify::email::RetryPolicy::default(),
                self.reminder_interval.min(Duration::from_secs(10)),
            )
        });
        tracing::info!(addr = %self.local_addr(), metrics = %self.metrics_addr(), "meeting serving");
        let r = self.server.run_until_stopped(db, shutdown).await;
        consumer.abort();
        calendar.abort();
        reminders.abort();
        if let Some(e) = email {
            e.abort();
        }
        r
    }
}
