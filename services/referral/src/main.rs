//! The referral service's process.

use clap::Parser;
use mosharekat_platform::cli::{ServiceCommand, run_service};
use mosharekat_platform::config::ServerArgs;
use mosharekat_referral::{Application, DEFAULTS, ReferralArgs, Settings};

/// Filings and referrals between the judiciary and popular institutions (mosharekat).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<ServiceCommand>,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    referral: ReferralArgs,
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
                referral: cli.referral,
            })
            .await?;
            app.run_until_stopped(mosharekat_platform::server::shutdown_signal())
                .await
        },
        || async {
            mosharekat_referral::migrate(&server.with_defaults(DEFAULTS))
                .await
                .map(|_| ())
        },
    )
    .await
}
