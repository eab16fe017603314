//! The registry service: popular institutions (نهادهای مردمی), their licences from the
//! judiciary, eligibility, and the licence event stream other services follow.
//!
//! - [`api`]: the gRPC handlers: role, request → domain types ([`api::convert`]) →
//!   use case → response, nothing else;
//! - [`app`]: the use cases, one function per RPC, each in one transaction through the
//!   platform's change and create paths; the role tables;
//! - [`rules`]: the domain, free of I/O: institutions, licences, their history and events,
//!   the licence state machine, eligibility, the statute subset rule, expiry;
//! - [`store`]: the tables, read and written as domain types (the change path's
//!   repositories);
//! - [`names`]: typed ids and resource names, every segment checked;
//! - [`error`]: the registry's error enum and its one conversion to the API's;
//! - [`events`]: the event stream and the expiry sweep;
//! - [`calendar`]: the legal calendar the registry owns (served as `CalendarService`),
//!   its starting data and published changes; licence expiries are counted by it, and
//!   the institutions are notified of their licences (`NotificationService`, reminders,
//!   e-mail over SMTP when configured);
//! - [`public`]: the public record behind its switch (licence verification, the change
//!   feed and its CSV, the certificate);
//! - [`Application`]: the whole service built from its settings, as the binary, the
//!   launcher and the tests run it.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod calendar;
pub mod error;
pub mod events;
pub mod migrations;
pub mod names;
pub mod public;
pub mod rules;
pub mod seed;
pub mod store;
// Starting the service in a test's process: for tests and the `tests/` crates only.
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

use std::net::SocketAddr;
use std::time::Duration;

use mosharekat_api::registry::v1::calendar_service_server::CalendarServiceServer;
use mosharekat_api::registry::v1::public_record_service_server::PublicRecordServiceServer;
use mosharekat_api::registry::v1::registry_service_server::RegistryServiceServer;
use mosharekat_notify::NotificationApi;
use mosharekat_notify::email::{Mailer, RetryPolicy, SmtpArgs};
use mosharekat_platform::add_limited;
use mosharekat_platform::audit::AuditApi;
use mosharekat_platform::auth::TokenVerifier;
use mosharekat_platform::clock::Clock;
use mosharekat_platform::config::{ServerArgs, ServiceDefaults};
use mosharekat_platform::db::Db;
use mosharekat_platform::metrics::Metrics;
use mosharekat_platform::public::PublicArgs;
use mosharekat_platform::server::GrpcServer;
use mosharekat_platform::tls::Tls;

pub use app::Registry;

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "registry",
    port: 50051,
    metrics_port: 9051,
    health_port: 50061,
};

/// The RPCs only the suite's services make of the registry (the referral and meeting
/// services' eligibility and licence checks, and their licence event consumers): under
/// mutual TLS they need a client certificate signed by the suite's CA. The look-ups
/// (GetInstitution, ListInstitutions) are end users' reads too; a service making them is
/// held to its certificate by its SERVICE token.
pub const PEER_RPCS: &[&str] = &[
    "/mosharekat.registry.v1.RegistryService/CheckEligibility",
    "/mosharekat.registry.v1.RegistryService/BatchCheckEligibility",
    "/mosharekat.registry.v1.RegistryService/CheckLicensed",
    "/mosharekat.registry.v1.RegistryService/WatchLicenceEvents",
];

/// The registry's own settings.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// How often ACTIVE licences past their end are recorded as EXPIRED (with the event).
    #[arg(long, env = "EXPIRY_SWEEP_INTERVAL", default_value = "30s")]
    pub expiry_sweep_interval: humantime::Duration,
    /// How often due reminders (a licence's end approaching) are queued as notifications.
    #[arg(long, env = "REMINDER_INTERVAL", default_value = "30s")]
    pub reminder_interval: humantime::Duration,
    /// How often queued e-mail notifications are sent (with SMTP configured).
    #[arg(long, env = "EMAIL_DELIVERY_INTERVAL", default_value = "10s")]
    pub email_delivery_interval: humantime::Duration,
    #[command(flatten)]
    pub smtp: SmtpArgs,
    /// The public record (off by default).
    #[command(flatten)]
    pub public: PublicArgs,
    /// The time of day the registry reads (the system's; tests move a manual one).
    #[arg(skip)]
    pub clock: Clock,
}

impl Default for RegistryArgs {
    fn default() -> Self {
        Self {
            expiry_sweep_interval: Duration::from_secs(30).into(),
            reminder_interval: Duration::from_secs(30).into(),
            email_delivery_interval: Duration::from_secs(10).into(),
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
            clock: Clock::system(),
        }
    }
}

/// Everything the registry needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerArgs,
    pub registry: RegistryArgs,
}

/// Connects to the database and applies the registry's migrations.
pub async fn migrate(server: &ServerArgs) -> anyhow::Result<Db> {
    mosharekat_platform::db::connect_and_migrate::<migrations::Migrator>(server, DEFAULTS.name)
        .await
}

/// The registry, bound and ready to serve.
#[derive(Debug)]
pub struct Application {
    server: GrpcServer,
    registry: Registry,
    settings: Settings,
    /// The public HTTP port, with the public record on.
    public_addr: Option<SocketAddr>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let server_args = settings.server.clone().with_defaults(DEFAULTS);
        let verifier = TokenVerifier::from_pem_files(&server_args.token_public_keys)?
            .for_service(DEFAULTS.name);
        // Keys added or retired take effect without a restart; the watcher ends with
        // the server that holds the verifier.
        drop(verifier.watch(server_args.token_keys_reload_interval.into()));
        let tls = Tls::load(&server_args.tls, DEFAULTS.name)?;
        let db = migrate(&server_args)
            .await?
            .with_clock(settings.registry.clock.clone());
        let last_event = store::last_event_seq(db.conn())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let changes = store::calendar::all(db.conn())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let registry = Registry::new(
            db.clone(),
            last_event,
            calendar::LiveCalendar::new(&changes),
        );
        let metrics = Metrics::new(DEFAULTS.name);
        metrics.watch_writes(&db);
        let mut server = GrpcServer::bind(&server_args, verifier, metrics, &tls).await?;
        server.peer_rpcs(PEER_RPCS);
        add_limited!(&mut server;
            RegistryServiceServer::new(registry.clone()),
            CalendarServiceServer::new(registry.clone()),
            NotificationApi::new(db.clone()).into_server(),
            AuditApi::new(db).into_server(),
        );
        // The public record: served, and let through without a token, only when on.
        let mut public_addr = None;
        if let Some(listen) = settings.registry.public.listen(public::PUBLIC_HTTP_PORT) {
            add_limited!(&mut server; PublicRecordServiceServer::new(registry.clone()));
            public_addr = Some(
                server
                    .public(
                        public::methods(),
                        listen,
                        public::csv::router(registry.clone()),
                    )
                    .await?,
            );
        }
        Ok(Self {
            server,
            registry,
            settings,
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

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Serves until `shutdown` resolves, sweeping expiries meanwhile.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let sweeper = tokio::spawn(events::run_expiry_sweeper(
            self.registry.clone(),
            self.settings.registry.expiry_sweep_interval.into(),
        ));
        let db = self.registry.db().clone();
        let reminders = mosharekat_notify::reminders::spawn_reminder_loop(
            db.clone(),
            self.settings.registry.reminder_interval.into(),
        );
        let email = match self.settings.registry.smtp.settings() {
            Some(s) => Some(mosharekat_notify::email::spawn_email_delivery(
                db.clone(),
                Mailer::new(&s)?,
                RetryPolicy::default(),
                self.settings.registry.email_delivery_interval.into(),
            )),
            None => None,
        };
        tracing::info!(addr = %self.local_addr(), metrics = %self.metrics_addr(), "registry serving");
        let registry = self.registry.clone();
        let shutdown = async move {
            shutdown.await;
            registry.stop_streams();
        };
        let r = self.server.run_until_stopped(db, shutdown).await;
        sweeper.abort();
        reminders.abort();
        if let Some(e) = email {
            e.abort();
        }
        r
    }
}
