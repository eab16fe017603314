//! The registry service's process.

use clap::Parser;
use mosharekat_platform::cli::{ServiceCommand, run_service};
use mosharekat_platform::config::ServerArgs;
use mosharekat_registry::{Application, DEFAULTS, RegistryArgs, Settings};

/// The registry of popular institutions and their licences (mosharekat).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<ServiceCommand>,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let server = cli.server.clone();
    run_service(
        DEFAULTS.name,
        cli.server.log_format,
        cli.command,
        || async {
            let app = Application::build(Settings {
                server: cli.server,
                registry: cli.registry,
            })
            .await?;
            app.run_until_stopped(mosharekat_platform::server::shutdown_signal())
                .await
        },
        || async {
            mosharekat_registry::migrate(&server.with_defaults(DEFAULTS))
                .await
                .map(|_| ())
        },
    )
    .await
}
