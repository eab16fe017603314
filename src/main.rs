//! The whole suite in one process, for development and trial: each service on its own
//! port with its own SQLite file under `./data/`, a signing key made on first start, and
//! an administrator token written to `./data/admin.token`. With `--tls`, TLS and mutual
//! TLS on every service, with a local CA and certificates made in `./data/tls/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};
use mosharekat_platform::auth::{Role, TokenRequest, TokenSigner, ensure_keypair};
use mosharekat_platform::cli::TokenArgs;
use mosharekat_platform::config::ServerArgs;
use mosharekat_platform::telemetry::LogFormat;
use mosharekat_platform::tls::TlsArgs;
use mosharekat_platform::tls::local::LocalCa;

/// Runs every service of mosharekat in one process.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Folder for the databases, the signing key pair and the admin token.
    #[arg(long, env = "MOSHAREKAT_DATA", default_value = "data")]
    data: PathBuf,
    /// Address the services listen on; each takes its own port.
    #[arg(long, env = "MOSHAREKAT_HOST", default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Registry gRPC port.
    #[arg(long, default_value_t = 50051)]
    registry_port: u16,
    /// Referral gRPC port.
    #[arg(long, default_value_t = 50052)]
    referral_port: u16,
    /// Meeting gRPC port.
    #[arg(long, default_value_t = 50053)]
    meeting_port: u16,
    /// The registry's metrics port; the referral service's is the next, the meeting
    /// service's the one after.
    #[arg(long, default_value_t = 9051)]
    metrics_port: u16,
    /// Log format: auto, json or pretty.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
    /// TLS and mutual TLS on every service: a local CA and a certificate per service (and
    /// one for the operator's grpcurl) are made in <data>/tls on first start.
    #[arg(long, env = "MOSHAREKAT_TLS", default_value_t = false)]
    tls: bool,
    /// With --tls: the registry's plaintext health port; the referral service's is the
    /// next, the meeting service's the one after.
    #[arg(long, default_value_t = 50061)]
    health_port: u16,
    /// The public record (licence verification, the feed of licence changes, the register
    /// of resolutions: no token needed) and its CSV over HTTP. On for the local suite, so
    /// that the story shows it; each service alone has it off unless told.
    #[arg(long, env = "MOSHAREKAT_PUBLIC_RECORD", default_value_t = true, action = clap::ArgAction::Set)]
    public_record: bool,
    /// The registry's public HTTP port (CSV); the meeting service's is two after (0: any
    /// free port for each).
    #[arg(long, default_value_t = 8051)]
    public_port: u16,
}

/// The public record's settings of the service whose public HTTP port is `port`.
fn public(cli: &Cli, port: u16) -> mosharekat_platform::public::PublicArgs {
    mosharekat_platform::public::PublicArgs {
        public_record: cli.public_record,
        public_listen: Some(SocketAddr::new(cli.host, port)),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mint a bearer token for a role, signed with the suite's key in the data folder.
    Token(TokenArgs),
}

fn args(cli: &Cli, port: u16, metrics_port: u16, name: &str, public_key: &Path) -> ServerArgs {
    let mut args = ServerArgs::local(
        SocketAddr::new(cli.host, port),
        SocketAddr::new(cli.host, metrics_port),
        format!("sqlite://{}", cli.data.join(format!("{name}.db")).display()),
        public_key.to_owned(),
    );
    if cli.tls {
        let dir = tls_dir(cli);
        let offset = match name {
            "registry" => 0,
            "referral" => 1,
            _ => 2,
        };
        args.tls = TlsArgs {
            tls_cert: Some(dir.join(format!("{name}.pem"))),
            tls_key: Some(dir.join(format!("{name}.key.pem"))),
            tls_ca: Some(dir.join("ca.pem")),
            mtls: true,
            health_listen: Some(SocketAddr::new(cli.host, cli.health_port + offset)),
        };
    }
    args
}

fn tls_dir(cli: &Cli) -> PathBuf {
    cli.data.join("tls")
}

/// The certificates that `--tls` uses, made with a new local CA unless all are there
/// already. The CA's key is not kept: a missing file means a new CA and new certificates.
fn ensure_local_pki(cli: &Cli) -> anyhow::Result<()> {
    let dir = tls_dir(cli);
    let holders = ["registry", "referral", "meeting", "operator"];
    let all_there = dir.join("ca.pem").exists()
        && holders.iter().all(|h| {
            dir.join(format!("{h}.pem")).exists() && dir.join(format!("{h}.key.pem")).exists()
        });
    if all_there {
        return Ok(());
    }
    let ca = LocalCa::new("mosharekat local CA")?;
    ca.write_ca(&dir.join("ca.pem"))?;
    let host = cli.host.to_string();
    for h in holders {
        // Its own name first (its identity), then what grpcurl and the peers dial.
        let mut names = vec![h, "localhost", "127.0.0.1"];
        if !names.contains(&host.as_str()) {
            names.push(&host);
        }
        ca.issue_files(&dir, h, &names)?;
    }
    Ok(())
}

/// How often the local suite's services fire due reminders.
const LOCAL_REMINDER_INTERVAL: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Token(t)) = &cli.command {
        return t.run();
    }
    let telemetry = mosharekat_platform::telemetry::init("mosharekat", cli.log_format)?;
    let (private_key, public_key) = ensure_keypair(&cli.data)?;
    let signer = TokenSigner::from_pem_file(&private_key)?;
    let admin = signer.mint(
        Role::Admin,
        &TokenRequest {
            subject: "admin".into(),
            lifetime: Duration::from_secs(30 * 24 * 3600),
            ..Default::default()
        },
    )?;
    let token_file = cli.data.join("admin.token");
    std::fs::write(&token_file, &admin)?;
    if cli.tls {
        ensure_local_pki(&cli)?;
    }
    let scheme = if cli.tls { "https" } else { "http" };

    let mut registry_args = args(
        &cli,
        cli.registry_port,
        cli.metrics_port,
        "registry",
        &public_key,
    );
    registry_args.service_signing_key = Some(private_key.clone());
    registry_args.log_format = cli.log_format;
    // The local suite is for trying things: its reminders fire within seconds of falling
    // due (a deployment's services default to 30-60 s), so a walk-through sees them.
    let reminders_every: humantime::Duration = LOCAL_REMINDER_INTERVAL.into();
    let registry = mosharekat_registry::Application::build(mosharekat_registry::Settings {
        server: registry_args,
        registry: mosharekat_registry::RegistryArgs {
            public: public(&cli, cli.public_port),
            reminder_interval: reminders_every,
            ..Default::default()
        },
    })
    .await?;
    let registry_addr = registry.local_addr();

    let mut referral_args = args(
        &cli,
        cli.referral_port,
        cli.metrics_port + 1,
        "referral",
        &public_key,
    );
    referral_args.service_signing_key = Some(private_key.clone());
    referral_args.log_format = cli.log_format;
    let referral = mosharekat_referral::Application::build(mosharekat_referral::Settings {
        server: referral_args,
        referral: mosharekat_referral::ReferralArgs {
            reminder_interval: reminders_every,
            ..mosharekat_referral::ReferralArgs::new(format!("{scheme}://{registry_addr}"))
        },
    })
    .await?;
    let referral_addr = referral.local_addr();

    let mut meeting_args = args(
        &cli,
        cli.meeting_port,
        cli.metrics_port + 2,
        "meeting",
        &public_key,
    );
    meeting_args.service_signing_key = Some(private_key.clone());
    meeting_args.log_format = cli.log_format;
    let meeting = mosharekat_meeting::Application::build(mosharekat_meeting::Settings {
        server: meeting_args,
        meeting: mosharekat_meeting::MeetingArgs {
            public: public(
                &cli,
                match cli.public_port {
                    0 => 0,
                    p => p + 2,
                },
            ),
            reminder_interval: reminders_every,
            ..mosharekat_meeting::MeetingArgs::new(
                format!("{scheme}://{registry_addr}"),
                format!("{scheme}://{referral_addr}"),
            )
        },
    })
    .await?;
    let meeting_addr = meeting.local_addr();
    if let (Some(r), Some(m)) = (registry.public_addr(), meeting.public_addr()) {
        let g = if cli.tls {
            "-cacert data/tls/ca.pem"
        } else {
            "-plaintext"
        };
        println!(
            "\nThe public record is on (no token needed; --public-record=false turns it off):\n  \
             grpcurl {g} -d '{{\"code\":\"<code on a certificate>\"}}' {registry_addr} mosharekat.registry.v1.PublicRecordService/VerifyLicence\n  \
             curl -OJ http://{r}/public/licence-changes.csv\n  \
             curl -OJ http://{m}/public/resolutions.csv"
        );
    }

    if cli.tls {
        let dir = tls_dir(&cli);
        let ca = dir.join("ca.pem");
        let (cert, key) = (dir.join("operator.pem"), dir.join("operator.key.pem"));
        let health = [
            registry.health_addr(),
            referral.health_addr(),
            meeting.health_addr(),
        ]
        .map(|a| a.map_or_else(String::new, |a| a.to_string()));
        println!(
            "\nmosharekat is running with TLS and mutual TLS (CA {ca}).\n\n  registry  {registry_addr}   (health for probes, plaintext, no reflection: {h0}; metrics http://{}/metrics)\n  referral  {referral_addr}   (health for probes, plaintext, no reflection: {h1}; metrics http://{}/metrics)\n  meeting   {meeting_addr}   (health for probes, plaintext, no reflection: {h2}; metrics http://{}/metrics)\n\n\
             admin token: {tok}  (valid 30 days; mint others with `cargo run --release -- token --role REGISTRY_OFFICER`)\n\
             Peer RPCs (CheckEligibility, BatchCheckEligibility, CheckLicensed, WatchLicenceEvents, GetStatistics) need a client certificate: -cert {cert} -key {key}.\n\n\
             Try:\n  \
             grpcurl -cacert {ca} {registry_addr} list\n  \
             grpcurl -cacert {ca} {registry_addr} grpc.health.v1.Health/Check\n  \
             grpcurl -cacert {ca} -H \"authorization: Bearer $(cat {tok})\" -d '{{\"query\":\"خانواده\"}}' {registry_addr} mosharekat.registry.v1.RegistryService/ListInstitutions\n  \
             grpcurl -cacert {ca} -cert {cert} -key {key} -H \"authorization: Bearer $(cat {tok})\" -d '{{\"institution\":\"institutions/<id>\",\"action\":\"PERMITTED_ACTION_FILE_COMPLAINT\",\"activity_area\":\"ACTIVITY_AREA_MEDIATION\"}}' {registry_addr} mosharekat.registry.v1.RegistryService/CheckEligibility\n",
            registry.metrics_addr(),
            referral.metrics_addr(),
            meeting.metrics_addr(),
            ca = ca.display(),
            cert = cert.display(),
            key = key.display(),
            tok = token_file.display(),
            h0 = health[0],
            h1 = health[1],
            h2 = health[2],
        );
    } else {
        println!(
            "\nmosharekat is running.\n\n  registry  {registry_addr}   (metrics http://{}/metrics)\n  referral  {referral_addr}   (metrics http://{}/metrics)\n  meeting   {meeting_addr}   (metrics http://{}/metrics)\n\n\
         admin token: {}  (valid 30 days; mint others with `cargo run --release -- token --role REGISTRY_OFFICER`)\n\n\
         Try:\n  \
         grpcurl -plaintext {registry_addr} list\n  \
         grpcurl -plaintext {registry_addr} grpc.health.v1.Health/Check\n  \
         grpcurl -plaintext -H \"authorization: Bearer $(cat {tok})\" -d '{{\"request_id\":\"try-1\",\"institution\":{{\"display_name\":\"انجمن حمایت از خانواده\",\"kind\":\"INSTITUTION_KIND_NGO\",\"national_id\":\"10380284790\",\"registration_number\":\"1234\",\"registering_authority\":\"اداره ثبت شرکت‌ها\",\"province\":\"اردبیل\",\"city\":\"اردبیل\",\"activity_areas\":[\"ACTIVITY_AREA_FAMILY\",\"ACTIVITY_AREA_MEDIATION\"]}}}}' {registry_addr} mosharekat.registry.v1.RegistryService/CreateInstitution\n  \
         grpcurl -plaintext -H \"authorization: Bearer $(cat {tok})\" -d '{{\"query\":\"خانواده\"}}' {registry_addr} mosharekat.registry.v1.RegistryService/ListInstitutions\n",
            registry.metrics_addr(),
            referral.metrics_addr(),
            meeting.metrics_addr(),
            token_file.display(),
            tok = token_file.display(),
        );
    }

    // One SIGTERM or Ctrl-C stops every service, each draining its own calls; each runs on
    // its own task.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let services = [
        tokio::spawn(registry.run_until_stopped(stopped(stop_rx.clone()))),
        tokio::spawn(referral.run_until_stopped(stopped(stop_rx.clone()))),
        tokio::spawn(meeting.run_until_stopped(stopped(stop_rx.clone()))),
    ];
    mosharekat_platform::server::shutdown_signal().await;
    let _ = stop_tx.send(true);
    let mut result = Ok(());
    for s in services {
        result = result.and(s.await?);
    }
    telemetry.shutdown().await;
    result
}
