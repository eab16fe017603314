//! The case-referral service: filings that licensed institutions make directly with the
//! judiciary, and referrals the judiciary (above all the Dispute Resolution Development
//! centre) makes to institutions for reconciliation.
//!
//! - [`api`]: the gRPC service — each RPC checks the caller's role, reads its request into
//!   domain types, calls its use case and writes the response (masking sealed parties);
//! - [`app`]: the use cases, one per RPC, on domain types: transactions through the
//!   platform's change path, peer calls before the write turn;
//! - [`rules`]: pure domain — life cycles, who sees and does what, the consent rule,
//!   sealing, due times, overdue, ranking;
//! - [`model`]: the domain types; [`names`]: typed resource names;
//! - [`store`]: the tables, read and written as domain types (a versioned JSON document
//!   per filing or referral; the repositories of the change path);
//! - [`error`]: [`error::ReferralError`] and its one conversion to the API's error;
//! - [`peers`]: the registry, its answers turned into this service's terms;
//! - [`reads`]: who read what; [`events`]: recalls on licence loss;
//! - [`migrations`]: the schema, and the conversion of the v1 storage;
//! - [`Application`]: the whole service built from its settings.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod error;
pub mod events;
pub mod migrations;
pub mod model;
pub mod names;
pub mod notices;
pub mod peers;
pub mod reads;
pub mod rules;
pub mod store;
// Starting the service in a test's process: for tests and the `tests/` crates only.
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mosharekat_api::referral::v1::referral_service_server::ReferralServiceServer;
use mosharekat_calendar::SharedCalendar;
use mosharekat_platform::add_limited;
use mosharekat_platform::audit::AuditApi;
use mosharekat_platform::auth::{TokenSigner, TokenVerifier};
use mosharekat_platform::client::ServiceToken;
use mosharekat_platform::config::{ServerArgs, ServiceDefaults};
use mosharekat_platform::db::Db;
use mosharekat_platform::metrics::Metrics;
use mosharekat_platform::server::GrpcServer;
use mosharekat_platform::stalls::{LICENCE_EVENTS_HEALTH, Stalls};
use mosharekat_platform::tls::Tls;

pub use app::App;

pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "referral",
    port: 50052,
    metrics_port: 9052,
    health_port: 50062,
};

/// The RPCs only the suite's services make of the referral service (the meeting
/// service's standing report): under mutual TLS they need a client certificate signed by
/// the suite's CA. The look-ups the meeting service makes (GetFiling, GetReferral) are end
/// users' reads too; a service making them is held to its certificate by its SERVICE token.
pub const PEER_RPCS: &[&str] = &["/mosharekat.referral.v1.ReferralService/GetStatistics"];

/// The referral service's own settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ReferralArgs {
    /// The registry's address.
    #[arg(long, env = "REGISTRY_URL", default_value = "http://127.0.0.1:50051")]
    pub registry_url: String,
    /// The longest a call to the registry may take (less when the caller's deadline is nearer).
    #[arg(long, env = "PEER_TIMEOUT", default_value = "3s")]
    pub peer_timeout: humantime::Duration,
    /// Days allowed from acceptance per referral kind, counted on the legal calendar, as
    /// KIND=DAYS,… e.g. VICTIM_SUPPORT=30,LEGAL_AID=45. Mediation and reconciliation take
    /// three months (90 days, art. 443) unless set shorter (art. 82 allows no more).
    #[arg(long, env = "REFERRAL_DUE_DAYS", default_value = "")]
    pub due_days: String,
    /// Days allowed for a kind not named in --due-days.
    #[arg(long, env = "REFERRAL_DEFAULT_DUE_DAYS", default_value_t = 60)]
    pub default_due_days: u32,
    /// The most days the one extension may add (mediation regulation art. 28: three months).
    #[arg(long, env = "REFERRAL_EXTENSION_DAYS", default_value_t = 90)]
    pub extension_days: u32,
    /// Days an institution has to accept or decline an offer, per kind, as KIND=DAYS,….
    #[arg(long, env = "REFERRAL_ANSWER_DAYS", default_value = "")]
    pub answer_days: String,
    /// Days to answer an offer of a kind not named in --answer-days.
    #[arg(long, env = "REFERRAL_DEFAULT_ANSWER_DAYS", default_value_t = 7)]
    pub default_answer_days: u32,
    /// The channels notices go out on: sms, e-notice (comma-separated), or none.
    #[arg(long, env = "REFERRAL_NOTIFY", default_value = "sms,e-notice")]
    pub notify: String,
    /// How often due reminders are fired.
    #[arg(long, env = "REMINDER_INTERVAL", default_value = "60s")]
    pub reminder_interval: humantime::Duration,
    #[command(flatten)]
    pub smtp: mosharekat_notify::email::SmtpArgs,
}

impl ReferralArgs {
    pub fn new(registry_url: String) -> Self {
        Self {
            registry_url,
            peer_timeout: Duration::from_secs(3).into(),
            due_days: String::new(),
            default_due_days: 60,
            extension_days: 90,
            answer_days: String::new(),
            default_answer_days: 7,
            notify: "sms,e-notice".into(),
            reminder_interval: Duration::from_secs(60).into(),
            smtp: mosharekat_notify::email::SmtpArgs {
                host: None,
                port: 587,
                security: "starttls".into(),
                user: None,
                password: None,
                from: "notify@localhost".into(),
                timeout: Duration::from_secs(30).into(),
            },
        }
    }
}

/// Everything the referral service needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerArgs,
    pub referral: ReferralArgs,
}

/// Connects to the database and applies the referral service's migrations.
pub async fn migrate(server: &ServerArgs) -> anyhow::Result<Db> {
    mosharekat_platform::db::connect_and_migrate::<migrations::Migrator>(server, DEFAULTS.name)
        .await
}

/// The referral service, bound and ready to serve.
#[derive(Debug)]
pub struct Application {
    server: GrpcServer,
    app: App,
    token: ServiceToken,
    registry: tonic::transport::Channel,
    stalls: Stalls,
    reminder_interval: Duration,
    mailer: Option<mosharekat_notify::email::Mailer>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, mosharekat_platform::clock::Clock::system()).await
    }

    /// As [`Application::build`], the service reading the time of day from `clock` (a
    /// test's manual clock).
    pub async fn build_with_clock(
        settings: Settings,
        clock: mosharekat_platform::clock::Clock,
    ) -> anyhow::Result<Self> {
        Self::build_with(settings, clock, SharedCalendar::suite()).await
    }

    /// As [`Application::build_with_clock`], deadlines counted on `calendar` (which the
    /// registry's calendar follower updates, through [`App::apply_publication`]).
    pub async fn build_with(
        settings: Settings,
        clock: mosharekat_platform::clock::Clock,
        calendar: SharedCalendar,
    ) -> anyhow::Result<Self> {
        let server_args = settings.server.clone().with_defaults(DEFAULTS);
        let verifier = TokenVerifier::from_pem_files(&server_args.token_public_keys)?
            .for_service(DEFAULTS.name);
        // Keys added or retired take effect without a restart; the watcher ends with
        // the server that holds the verifier.
        drop(verifier.watch(server_args.token_keys_reload_interval.into()));
        let key = server_args.service_signing_key.as_ref().ok_or_else(|| {
            anyhow::anyhow!("--service-signing-key is required to call the registry")
        })?;
        // Its one peer is the registry: its token is for the registry alone.
        let token = ServiceToken::new(TokenSigner::from_pem_file(key)?, DEFAULTS.name)
            .for_audience("registry");
        let a = &settings.referral;
        let due = rules::DuePolicy::parse(rules::DueSpec {
            due_days: &a.due_days,
            default_due_days: a.default_due_days,
            extension_days: a.extension_days,
            answer_days: &a.answer_days,
            default_answer_days: a.default_answer_days,
        })
        .map_err(|e| anyhow::anyhow!("the referral periods: {e}"))?;
        let notify = Arc::new(
            notices::Notify::parse(&a.notify).map_err(|e| anyhow::anyhow!("--notify: {e}"))?,
        );
        let mailer = match a.smtp.settings() {
            Some(s) => Some(mosharekat_notify::email::Mailer::new(&s)?),
            None => None,
        };
        let tls = Tls::load(&server_args.tls, DEFAULTS.name)?;
        let db = migrate(&server_args).await?.with_clock(clock);
        let registry_url = &settings.referral.registry_url;
        let registry_target = mosharekat_platform::client::PeerTarget::new(
            registry_url,
            tls.client_for(registry_url, "registry")?.as_ref(),
        )?;
        // The event stream keeps its own long-lived channel; calls go through the peer link.
        let registry = registry_target.connect_lazy();
        let app = App {
            db: db.clone(),
            registry: mosharekat_registry_client::RegistryPeer::new(
                registry_target,
                token.clone(),
                settings.referral.peer_timeout.into(),
            ),
            due: Arc::new(due),
            reads: reads::ReadLog::start(db.clone()),
            calendar,
            notify,
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
            ReferralServiceServer::new(app.clone()),
            stalls.api().into_server(),
            AuditApi::new(db.clone()).into_server(),
            mosharekat_notify::NotificationApi::new(db).into_server(),
        );
        Ok(Self {
            server,
            app,
            token,
            registry,
            stalls,
            reminder_interval: settings.referral.reminder_interval.into(),
            mailer,
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

    pub fn app(&self) -> &App {
        &self.app
    }

    /// Serves until `shutdown` resolves, following the registry's licence events and its
    /// legal calendar meanwhile.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let db = self.app.db.clone();
        let consumer = tokio::spawn(mosharekat_registry_client::events::follow_licence_events(
            self.registry.clone(),
            self.token.clone(),
            events::RecallOnLicenceLoss {
                notify: self.app.notify.clone(),
            },
            self.stalls.clone(),
        ));
        // A holiday or closure the registry publishes moves the open deadlines ending on it.
        let app = self.app.clone();
        let calendar = tokio::spawn(mosharekat_registry_client::calendar::follow_calendar(
            self.registry.clone(),
            self.token.clone(),
            db.clone(),
            self.app.calendar.clone(),
            move |p| {
                let app = app.clone();
                async move {
                    app.apply_publication(&p)
                        .await
                        .map(|_| ())
                        .map_err(mosharekat_platform::error::ApiError::from)
                }
            },
        ));
        let reminders =
            mosharekat_notify::reminders::spawn_reminder_loop(db.clone(), self.reminder_interval);
        let email = self.mailer.clone().map(|m| {
            mosharekat_notify::email::spawn_email_delivery(
                db.clone(),
                m,
                mosharekat_notify::email::RetryPolicy::default(),
                self.reminder_interval,
            )
        });
        tracing::info!(addr = %self.local_addr(), metrics = %self.metrics_addr(), "referral serving");
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
