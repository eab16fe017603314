//! The meeting service's process.

use clap::{Parser, Subcommand};
use mosharekat_meeting::{Application, DEFAULTS, MeetingArgs, Settings};
use mosharekat_platform::cli::{KeysArgs, TokenArgs};
use mosharekat_platform::config::ServerArgs;

/// The provincial working group: seats, meetings, resolutions and minutes (mosharekat).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    meeting: MeetingArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve gRPC (the default).
    Serve,
    /// Apply database migrations and exit (run as a Kubernetes Job before a rollout).
    Migrate,
    /// Create an Ed25519 key pair for signing tokens.
    Keys(KeysArgs),
    /// Mint a bearer token for a role.
    Token(TokenArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Keys(k) => k.run(),
        Command::Token(t) => t.run(),
        Command::Migrate => {
            let telemetry =
                mosharekat_platform::telemetry::init(DEFAULTS.name, cli.server.log_format)?;
            let r = mosharekat_meeting::migrate(&cli.server.with_defaults(DEFAULTS))
                .await
                .map(|_| ());
            telemetry.shutdown().await;
            r
        }
        Command::Serve => {
            let telemetry =
                mosharekat_platform::telemetry::init(DEFAULTS.name, cli.server.log_format)?;
            let r = match Application::build(Settings {
                server: cli.server,
                meeting: cli.meeting,
            })
            .await
            {
                Ok(app) => {
                    app.run_until_stopped(mosharekat_platform::server::shutdown_signal())
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = &r {
                tracing::error!(error = format!("{e:#}"), "meeting stopped with an error");
            }
            telemetry.shutdown().await;
            r
        }
    }
}
