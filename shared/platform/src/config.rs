//! Settings every service shares, from flags or environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::telemetry::LogFormat;
use crate::tls::TlsArgs;

/// How a service serves: ports, limits, shutdown, keys, database.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address the gRPC server listens on [default: 0.0.0.0 and the service's port:
    /// registry 50051, referral 50052, meeting 50053].
    #[arg(long = "listen", env = "LISTEN_ADDR")]
    pub listen: Option<SocketAddr>,

    /// Address of the Prometheus metrics endpoint, GET /metrics [default: 0.0.0.0 and the
    /// service's metrics port: registry 9051, referral 9052, meeting 9053].
    #[arg(long = "metrics-listen", env = "METRICS_ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Database URL: sqlite://path/to/file.db or postgres://user@host/db
    /// [default: sqlite://data/<service>.db].
    #[arg(long = "database-url", env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Largest number of pooled database connections.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 8)]
    pub db_max_connections: u32,

    /// PEM public keys (Ed25519 or RSA) that verify bearer tokens: comma-separated paths of
    /// files, or of folders whose *.pem public keys are all trusted. Read again every
    /// TOKEN_KEYS_RELOAD_INTERVAL: a key added is trusted, a key removed retired, without
    /// a restart. Tokens pick their key by `kid` (see the `keys` command).
    #[arg(
        long = "token-public-keys",
        env = "TOKEN_PUBLIC_KEYS",
        value_delimiter = ','
    )]
    pub token_public_keys: Vec<PathBuf>,

    /// Ed25519 PKCS#8 PEM private key this service signs its own SERVICE token with, to
    /// call its peers.
    #[arg(long = "service-signing-key", env = "SERVICE_SIGNING_KEY")]
    pub service_signing_key: Option<PathBuf>,

    /// Largest request or response message, in bytes.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Calls served at once; beyond it calls are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,

    /// The longest a call may take, whatever deadline its caller set.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s")]
    pub request_timeout: humantime::Duration,

    /// Connections older than this are closed gracefully, so clients rebalance.
    #[arg(long, env = "MAX_CONNECTION_AGE", default_value = "5m")]
    pub max_connection_age: humantime::Duration,

    /// After SIGTERM: how long health says NOT_SERVING before the listener closes.
    #[arg(long, env = "SHUTDOWN_DRAIN_DELAY", default_value = "1s")]
    pub shutdown_drain_delay: humantime::Duration,

    /// After the listener closes: how long in-flight calls may take to finish.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "20s")]
    pub shutdown_grace: humantime::Duration,

    /// How often health checks the database.
    #[arg(long, env = "HEALTH_CHECK_INTERVAL", default_value = "2s")]
    pub health_check_interval: humantime::Duration,

    /// Serve gRPC server reflection (v1 and v1alpha), for grpcurl.
    #[arg(long, env = "REFLECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub reflection: bool,

    /// Require a bearer token for reflection too (production).
    #[arg(long, env = "REFLECTION_REQUIRES_AUTH", default_value_t = false, action = clap::ArgAction::Set)]
    pub reflection_requires_auth: bool,

    /// Log format: auto (pretty on a terminal, JSON otherwise), json or pretty. Traces are
    /// exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; RUST_LOG filters logs.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// How often the files and folders of TOKEN_PUBLIC_KEYS are read again (0s: never).
    #[arg(long, env = "TOKEN_KEYS_RELOAD_INTERVAL", default_value = "5s")]
    pub token_keys_reload_interval: humantime::Duration,
}

/// What a service uses where a setting is not given.
#[derive(Debug, Clone, Copy)]
pub struct ServiceDefaults {
    pub name: &'static str,
    pub port: u16,
    pub metrics_port: u16,
    /// The plaintext health port, when TLS is on.
    pub health_port: u16,
}

impl ServerArgs {
    /// Fills what was not given with the service's defaults.
    pub fn with_defaults(mut self, d: ServiceDefaults) -> Self {
        let any = std::net::IpAddr::from([0, 0, 0, 0]);
        self.listen.get_or_insert(SocketAddr::new(any, d.port));
        self.metrics_listen
            .get_or_insert(SocketAddr::new(any, d.metrics_port));
        self.database_url
            .get_or_insert_with(|| format!("sqlite://data/{}.db", d.name));
        if self.tls.is_on() {
            self.tls
                .health_listen
                .get_or_insert(SocketAddr::new(any, d.health_port));
        }
        self
    }

    pub fn database_url(&self) -> anyhow::Result<&str> {
        self.database_url
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("no --database-url given"))
    }

    /// Settings for a test or the all-in-one launcher: given addresses and database.
    pub fn local(
        listen: SocketAddr,
        metrics_listen: SocketAddr,
        database_url: String,
        public_key: PathBuf,
    ) -> Self {
        Self {
            listen: Some(listen),
            metrics_listen: Some(metrics_listen),
            database_url: Some(database_url),
            db_max_connections: 8,
            token_public_keys: vec![public_key],
            service_signing_key: None,
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_requests: 512,
            request_timeout: std::time::Duration::from_secs(30).into(),
            max_connection_age: std::time::Duration::from_secs(300).into(),
            shutdown_drain_delay: std::time::Duration::from_millis(0).into(),
            shutdown_grace: std::time::Duration::from_secs(10).into(),
            health_check_interval: std::time::Duration::from_secs(1).into(),
            reflection: true,
            reflection_requires_auth: false,
            log_format: LogFormat::Auto,
            tls: TlsArgs::default(),

            token_keys_reload_interval: std::time::Duration::from_secs(5).into(),
        }
    }
}
