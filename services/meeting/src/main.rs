//! The meeting service's process.

use clap::Parser;
use mosharekat_meeting::{Application, DEFAULTS, MeetingArgs, Settings};
use mosharekat_platform::cli::{ServiceCommand, run_service};
use mosharekat_platform::config::ServerArgs;

/// The provincial working group: seats, meetings, resolutions and minutes (mosharekat).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<ServiceCommand>,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    meeting: MeetingArgs,
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
                meeting: cli.meeting,
            })
            .await?;
            app.run_until_stopped(mosharekat_platform::server::shutdown_signal())
                .await
        },
        || async {
            mosharekat_meeting::migrate(&server.with_defaults(DEFAULTS))
                .await
                .map(|_| ())
        },
    )
    .await
}
