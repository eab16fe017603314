//! `mosharekat-bench`: the suite's speed against this machine's own limits, measured in
//! the same run. Starts the release binaries as processes, loads them over a few HTTP/2
//! connections, and prints throughput, latency percentiles, memory and start-up time
//! beside two ceilings: a bare tonic echo server and raw single-row insert transactions.
//! Run it with `scripts/bench.sh` (which builds the release binaries first).

mod echo;
mod load;
mod procs;
mod raw;
mod report;
mod suite;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use load::{Sample, Spec};
use procs::{Proc, free_port};
use report::{Report, Row};
use suite::{Backend, FreshDb, Suite};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Benchmarks of the mosharekat suite against this machine's own limits"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Runs of each measurement; the run with the median throughput is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Time per run (the default keeps the whole run under ten minutes on two cores).
    #[arg(long, default_value = "2s")]
    duration: humantime::Duration,
    /// Concurrent calls.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the calls share, per service.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Databases to run the services on.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<Backend>,
    /// Institutions for the first listing scenarios.
    #[arg(long, default_value_t = 10_000)]
    small: u64,
    /// Institutions for the large listing scenarios (0 skips them).
    #[arg(long, default_value_t = 1_000_000)]
    large: u64,
    /// Drafts and referrals made ahead of each write run (the run stops when they run out).
    #[arg(long, default_value_t = 2_000)]
    prepared: u64,
    /// Filings, referrals and licences made (with their timelines and histories) for the
    /// ListFilings, ListReferrals and ListLicences pages.
    #[arg(long, default_value_t = 500)]
    listed: u64,
    /// PostgreSQL server to create the benchmark databases in.
    #[arg(
        long,
        env = "MOSHAREKAT_TEST_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres: String,
    /// Folder for results.json and report.md.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Also write the figures into this Markdown file, between its bench markers.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// A few seconds only, SQLite only, small data: proves the generator still works.
    #[arg(long)]
    smoke: bool,
    /// Only the scenarios whose names contain one of these (for profiling one of them).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the bare echo baseline (the benchmark starts this itself).
    #[command(hide = true)]
    EchoServer {
        #[arg(long)]
        listen: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    if let Some(Command::EchoServer { listen }) = &cli.command {
        return echo::serve(listen).await;
    }
    if cli.smoke {
        cli.runs = 1;
        cli.duration = Duration::from_millis(700).into();
        cli.backends = vec![Backend::Sqlite];
        cli.small = 600;
        cli.large = 0;
        cli.prepared = 100;
        cli.listed = 100;
    }
    let started = Instant::now();
    let spec = Spec {
        concurrency: cli.concurrency,
        duration: cli.duration.into(),
        max_requests: u64::MAX,
    };
    let mut report = Report::new(&cli.backends, spec, cli.runs, cli.connections);
    let only = cli.only.clone();
    let want =
        move |scenario: &str| only.is_empty() || only.iter().any(|o| scenario.contains(o.as_str()));

    eprintln!("bench: echo baseline");
    let echo = echo_baseline(&cli, spec).await?;
    report
        .rows
        .push(Row::baseline("-", "echo (bare tonic)", echo.clone()));

    for &backend in &cli.backends {
        let b = backend.label();
        eprintln!("bench: {b}: raw driver ceilings");
        let dir = tempfile::tempdir()?;
        let raw_db = FreshDb::new(backend, dir.path(), "raw", &cli.postgres).await?;
        let raw = median(cli.runs, || raw::inserts(&raw_db.url, spec)).await?;
        report
            .rows
            .push(Row::baseline(b, "raw insert", raw.clone()));
        let shaped = median(cli.runs, || raw::service_shaped_writes(&raw_db.url, spec)).await?;
        report.rows.push(Row::vs(
            b,
            "raw 3 reads + 3 inserts, serialised like the services",
            shaped,
            &raw,
            "raw insert",
            0.0,
            None,
        ));
        let raw_read = median(cli.runs, || raw::keyed_reads(&raw_db.url, spec)).await?;
        report
            .rows
            .push(Row::baseline(b, "raw keyed read", raw_read.clone()));
        raw_db.drop_database().await?;

        eprintln!("bench: {b}: starting the services");
        let mut s = Suite::start(backend, &cli.postgres, cli.connections).await?;
        for (i, p) in s.procs.iter().enumerate() {
            report.processes.push(report::Process {
                backend: b.into(),
                service: suite::NAMES[i].into(),
                startup_ms: p.startup.as_secs_f64() * 1000.0,
                idle_rss_mib: s.idle[i].rss_mib,
                peak_rss_mib: 0.0,
            });
        }
        eprintln!("bench: {b}: {} institutions", cli.small);
        s.grow_registry(cli.small).await?;
        let small = short(cli.small);

        if want("Health") {
            let m = median(cli.runs, || async { Ok(s.health_check(spec).await) }).await?;
            report.rows.push(Row::vs(
                b,
                "Health/Check (edge only: no token, no database)",
                m,
                &echo,
                "echo",
                0.0,
                None,
            ));
        }
        if want("GetInstitution") {
            let m = median(cli.runs, || async { Ok(s.get_institution(spec).await) }).await?;
            report.rows.push(Row::vs(
                b,
                "GetInstitution",
                m.clone(),
                &echo,
                "echo",
                0.5,
                Some(5.0),
            ));
            report.rows.push(Row::vs(
                b,
                "GetInstitution, against the read ceiling",
                m,
                &raw_read,
                "raw keyed read",
                0.0,
                None,
            ));
        }
        if want("CheckEligibility") {
            let m = median(cli.runs, || async { Ok(s.check_eligibility(spec).await) }).await?;
            report.rows.push(Row::vs(
                b,
                "CheckEligibility",
                m,
                &echo,
                "echo",
                0.5,
                Some(5.0),
            ));
        }

        let mut first_small = Sample::default();
        // The other listings are judged against this first page, measured in the same run.
        let other_lists = ["ListFilings", "ListReferrals", "ListLicences"]
            .iter()
            .any(|l| want(l));
        if want("ListInstitutions") || other_lists {
            first_small = median(cli.runs, || async {
                Ok(s.list_institutions(spec, String::new()).await)
            })
            .await?;
            report.rows.push(Row::plain(
                b,
                &format!("ListInstitutions first page @{small}"),
                first_small.clone(),
            ));
        }
        if want("ListInstitutions") {
            let token = s.deep_page_token(0.9).await?;
            let m = median(cli.runs, || async {
                Ok(s.list_institutions(spec, token.clone()).await)
            })
            .await?;
            report.rows.push(Row::latency_vs(
                b,
                &format!("ListInstitutions deep page @{small}"),
                m,
                &first_small,
                &format!("first page @{small}"),
            ));
        }

        let vs_first = format!("ListInstitutions first page @{small}");
        if want("ListFilings") {
            eprintln!(
                "bench: {b}: {} filings, three timeline entries each",
                cli.listed
            );
            s.seed_filings(cli.listed, cli.concurrency).await?;
            let m = median(cli.runs, || async { Ok(s.list_filings(spec).await) }).await?;
            report.rows.push(Row::latency_vs(
                b,
                "ListFilings page of 50, by its institution",
                m,
                &first_small,
                &vs_first,
            ));
        }
        if want("ListReferrals") {
            eprintln!(
                "bench: {b}: {} referrals, four timeline entries each",
                cli.listed
            );
            s.seed_referrals(cli.listed, cli.concurrency).await?;
            for (by_centre, who) in [
                (false, "by its institution"),
                (true, "by the centre (reads recorded)"),
            ] {
                let m = median(cli.runs, || async {
                    Ok(s.list_referrals(spec, by_centre).await)
                })
                .await?;
                report.rows.push(Row::latency_vs(
                    b,
                    &format!("ListReferrals page of 50, {who}"),
                    m,
                    &first_small,
                    &vs_first,
                ));
            }
        }
        if want("ListLicences") {
            eprintln!(
                "bench: {b}: {} licences, four history entries each",
                cli.listed
            );
            s.seed_licences(cli.listed, cli.concurrency).await?;
            let token = s.licences_past_fixtures().await?;
            let m = median(cli.runs, || async {
                Ok(s.list_licences(spec, token.clone()).await)
            })
            .await?;
            report.rows.push(Row::latency_vs(
                b,
                "ListLicences page of 50, every institution",
                m,
                &first_small,
                &vs_first,
            ));
        }

        if want("CreateInstitution") {
            let m = median(cli.runs, || async { Ok(s.create_institution(spec).await) }).await?;
            report.rows.push(Row::vs(
                b,
                "CreateInstitution",
                m,
                &raw,
                "raw insert",
                0.5,
                None,
            ));
        }

        if want("SubmitFiling") {
            let mut runs = Vec::new();
            for _ in 0..cli.runs {
                let drafts = s.draft_filings(cli.prepared, cli.concurrency).await?;
                runs.push(s.submit_filings(spec, drafts).await);
            }
            report.rows.push(Row::vs(
                b,
                "SubmitFiling",
                pick_median(runs),
                &raw,
                "raw insert",
                0.5,
                None,
            ));
        }

        if want("AcceptReferral") {
            let mut runs = Vec::new();
            for _ in 0..cli.runs {
                let offered = s.offer_referrals(cli.prepared, cli.concurrency).await?;
                runs.push(s.accept_referrals(spec, offered).await);
            }
            report.rows.push(Row::vs(
                b,
                "AcceptReferral",
                pick_median(runs),
                &raw,
                "raw insert",
                0.0,
                None,
            ));
        }

        if want("Record") {
            let meetings = s.schedule_meetings(cli.concurrency).await?;
            let m = median(cli.runs, || async {
                Ok(s.record_attendance(spec, &meetings).await)
            })
            .await?;
            report.rows.push(Row::vs(
                b,
                "RecordAttendance",
                m,
                &raw,
                "raw insert",
                0.0,
                None,
            ));
            s.open_meetings(&meetings).await?;
            let m = median(cli.runs, || async {
                Ok(s.record_resolutions(spec, &meetings).await)
            })
            .await?;
            report.rows.push(Row::vs(
                b,
                "RecordResolution",
                m,
                &raw,
                "raw insert",
                0.0,
                None,
            ));
        }

        if cli.large > cli.small && want("ListInstitutions") {
            let large = short(cli.large);
            eprintln!(
                "bench: {b}: growing the registry to {} institutions",
                cli.large
            );
            let t = Instant::now();
            s.grow_registry(cli.large).await?;
            eprintln!("bench: {b}: grown in {:.0?}", t.elapsed());
            let m = median(cli.runs, || async {
                Ok(s.list_institutions(spec, String::new()).await)
            })
            .await?;
            report.rows.push(Row::latency_vs(
                b,
                &format!("ListInstitutions first page @{large}"),
                m,
                &first_small,
                &format!("first page @{small}"),
            ));
            let token = s.deep_page_token(0.9).await?;
            let m = median(cli.runs, || async {
                Ok(s.list_institutions(spec, token.clone()).await)
            })
            .await?;
            report.rows.push(Row::latency_vs(
                b,
                &format!("ListInstitutions deep page @{large}"),
                m,
                &first_small,
                &format!("first page @{small}"),
            ));
        }
        if want("Notify") {
            // The same change with and without its notices: CreateReferral (a notice on
            // the SMS and e-notice channels, and its answer time's reminders, in the
            // offer's transaction) on a referral service started with REFERRAL_NOTIFY=none,
            // then on one that notifies; each on a fresh database. Last, as it restarts
            // the referral service.
            let mut off = Vec::new();
            let mut on = Vec::new();
            s.restart_referral("none").await?;
            for _ in 0..cli.runs {
                off.push(s.create_referrals(spec).await);
            }
            s.restart_referral("sms,e-notice").await?;
            for _ in 0..cli.runs {
                on.push(s.create_referrals(spec).await);
            }
            let (off, on) = (pick_median(off), pick_median(on));
            eprintln!(
                "bench: {b}: CreateReferral with notices costs {:.2}x the same without ({:.0} vs {:.0} calls/s; target <= 1.2x)",
                off.throughput / on.throughput.max(f64::MIN_POSITIVE),
                on.throughput,
                off.throughput
            );
            report.rows.push(Row::plain(
                b,
                "CreateReferral, notifications off",
                off.clone(),
            ));
            // Costing at most 1.2x is a throughput of at least 1/1.2 of it.
            report.rows.push(Row::vs(
                b,
                "CreateReferral, notifications on",
                on,
                &off,
                "notifications off",
                1.0 / 1.2,
                None,
            ));
        }

        let peaks = s.memory();
        for (i, mem) in peaks.iter().enumerate() {
            if let Some(p) = report
                .processes
                .iter_mut()
                .find(|p| p.backend == b && p.service == suite::NAMES[i])
            {
                p.peak_rss_mib = mem.peak_mib;
            }
        }
        s.stop().await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.write(&cli.out, cli.markdown.as_deref())?;
    print!("{}", report.table());
    let errors: u64 = report.rows.iter().map(|r| r.sample.errors).sum();
    anyhow::ensure!(errors == 0, "{errors} calls failed; see the table");
    Ok(())
}

fn short(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

async fn echo_baseline(cli: &Cli, spec: Spec) -> anyhow::Result<Sample> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let exe = std::env::current_exe()?;
    let log = std::env::temp_dir().join(format!("mosharekat-bench-echo-{port}.log"));
    let p = Proc::start(
        "echo",
        &exe,
        &["echo-server", "--listen", &listen],
        &[],
        port,
        "",
        &log,
    )
    .await?;
    let channels = p.connections(cli.connections).await?;
    let m = median(cli.runs, || async {
        Ok(load::run(spec, &channels, |ch, _| async move {
            echo::pb::echo_service_client::EchoServiceClient::new(ch)
                .echo(echo::pb::EchoRequest {
                    payload: vec![7u8; 64],
                })
                .await
                .map(drop)
                .map_err(|s| s.to_string())
        })
        .await)
    })
    .await?;
    p.stop();
    Ok(m)
}

/// Runs `f` `runs` times and keeps the run with the median throughput.
async fn median<F, Fut>(runs: usize, mut f: F) -> anyhow::Result<Sample>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Sample>>,
{
    let mut all = Vec::new();
    for _ in 0..runs.max(1) {
        all.push(f().await?);
    }
    Ok(pick_median(all))
}

fn pick_median(mut all: Vec<Sample>) -> Sample {
    all.sort_by(|a, b| a.throughput.total_cmp(&b.throughput));
    let mid = all.len() / 2;
    all.swap_remove(mid)
}
