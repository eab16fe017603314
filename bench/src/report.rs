//! The results: a readable table, JSON, and Markdown for BENCHMARKS.md. Every ratio is
//! against a baseline measured in the same run.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::load::{Sample, Spec};
use crate::suite::Backend;

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
}

impl Machine {
    fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown".into(), |(_, v)| v.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_gib = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        }
    }
}

/// One measured scenario, with its ratio to a baseline and its target.
#[derive(Debug, Serialize)]
pub struct Row {
    pub backend: String,
    pub scenario: String,
    pub sample: Sample,
    /// e.g. "0.62× echo throughput" or "1.1× first page @10k p50".
    pub ratio: Option<f64>,
    pub against: Option<String>,
    pub target: Option<String>,
    pub met: Option<bool>,
}

impl Row {
    pub fn baseline(backend: &str, scenario: &str, sample: Sample) -> Self {
        Self::plain(backend, &format!("baseline: {scenario}"), sample)
    }

    pub fn plain(backend: &str, scenario: &str, sample: Sample) -> Self {
        Self {
            backend: backend.into(),
            scenario: scenario.into(),
            sample,
            ratio: None,
            against: None,
            target: None,
            met: None,
        }
    }

    /// Throughput as a share of `base`'s; a target when `at_least` > 0 (and a p99 bound
    /// when given).
    pub fn vs(
        backend: &str,
        scenario: &str,
        sample: Sample,
        base: &Sample,
        base_name: &str,
        at_least: f64,
        p99_under_ms: Option<f64>,
    ) -> Self {
        let ratio = sample.throughput / base.throughput.max(f64::MIN_POSITIVE);
        let (target, met) = if base.throughput <= 0.0 {
            // A failed baseline measures nothing; no target can be judged against it.
            (None, None)
        } else if at_least > 0.0 {
            // Two decimals at most: 1/1.2 reads 0.83, not 0.833333333333333.
            let shown = format!("{at_least:.2}");
            let shown = shown.trim_end_matches('0').trim_end_matches('.');
            let mut t = format!("≥ {shown}× {base_name}");
            let mut ok = ratio >= at_least;
            if let Some(p99) = p99_under_ms {
                let _ = write!(t, ", p99 < {p99} ms");
                ok &= sample.p99_ms < p99;
            }
            (Some(t), Some(ok))
        } else {
            (None, None)
        };
        Self {
            ratio: Some(ratio),
            against: Some(format!("{base_name} throughput")),
            target,
            met,
            ..Self::plain(backend, scenario, sample)
        }
    }

    /// Median latency as a multiple of `base`'s; the target is at most twice.
    pub fn latency_vs(
        backend: &str,
        scenario: &str,
        sample: Sample,
        base: &Sample,
        base_name: &str,
    ) -> Self {
        let ratio = sample.p50_ms / base.p50_ms.max(0.001);
        let judged = base.requests > 0 && sample.requests > 0;
        Self {
            ratio: Some(ratio),
            against: Some(format!("{base_name} p50")),
            target: Some(format!("p50 ≤ 2× {base_name}")),
            met: judged.then_some(ratio <= 2.0),
            ..Self::plain(backend, scenario, sample)
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Process {
    pub backend: String,
    pub service: String,
    pub startup_ms: f64,
    pub idle_rss_mib: f64,
    pub peak_rss_mib: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub backends: Vec<Backend>,
    pub concurrency: usize,
    pub connections: usize,
    pub seconds_per_run: f64,
    pub runs: usize,
    pub rows: Vec<Row>,
    pub processes: Vec<Process>,
    pub seconds: f64,
}

fn mark(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    }
}

impl Report {
    pub fn new(backends: &[Backend], spec: Spec, runs: usize, connections: usize) -> Self {
        Self {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine: Machine::read(),
            backends: backends.to_vec(),
            concurrency: spec.concurrency,
            connections,
            seconds_per_run: spec.duration.as_secs_f64(),
            runs,
            rows: Vec::new(),
            processes: Vec::new(),
            seconds: 0.0,
        }
    }

    fn ratio_text(r: &Row) -> String {
        match (r.ratio, &r.against) {
            (Some(x), Some(a)) => format!("{x:.2}× {a}"),
            _ => String::new(),
        }
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{:<9} {:<38} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6}  {:<34} target",
            "backend",
            "scenario",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "errors",
            "ratio",
        );
        for r in &self.rows {
            let s = &r.sample;
            let _ = writeln!(
                out,
                "{:<9} {:<38} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6}  {:<34} {} {}",
                r.backend,
                r.scenario,
                s.throughput,
                s.p50_ms,
                s.p90_ms,
                s.p99_ms,
                s.max_ms,
                s.errors,
                Self::ratio_text(r),
                r.target.as_deref().unwrap_or(""),
                mark(r.met)
            );
        }
        let _ = writeln!(
            out,
            "\n{:<9} {:<9} {:>12} {:>14} {:>14}",
            "backend", "service", "start-up ms", "idle RSS MiB", "peak RSS MiB"
        );
        for p in &self.processes {
            let _ = writeln!(
                out,
                "{:<9} {:<9} {:>12.0} {:>14.1} {:>14.1}  {}",
                p.backend,
                p.service,
                p.startup_ms,
                p.idle_rss_mib,
                p.peak_rss_mib,
                self.process_verdict(p)
            );
        }
        let _ = writeln!(out, "\nall of it in {:.0} s", self.seconds);
        out
    }

    fn process_verdict(&self, p: &Process) -> String {
        let mut missed = Vec::new();
        if p.startup_ms >= 1000.0 {
            missed.push("start-up ≥ 1 s");
        }
        if p.idle_rss_mib >= 30.0 {
            missed.push("idle ≥ 30 MiB");
        }
        if p.peak_rss_mib >= 150.0 {
            missed.push("peak ≥ 150 MiB");
        }
        if missed.is_empty() {
            "targets met".into()
        } else {
            format!("MISSED: {}", missed.join(", "))
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "Measured {} on {} ({} cores, {:.0} GiB, Linux {}): {} concurrent calls over {} HTTP/2 \
             connections per service, {} run(s) of {:.0} s per figure, the median run reported; {:.0} s in all.\n",
            self.date,
            m.cpu,
            m.cores,
            m.memory_gib,
            m.kernel,
            self.concurrency,
            self.connections,
            self.runs,
            self.seconds_per_run,
            self.seconds
        );
        let _ = writeln!(
            out,
            "| database | scenario | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | ratio | target |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---|---|");
        for r in &self.rows {
            let s = &r.sample;
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} {} |",
                r.backend,
                r.scenario,
                s.throughput,
                s.p50_ms,
                s.p90_ms,
                s.p99_ms,
                s.max_ms,
                s.errors,
                Self::ratio_text(r),
                r.target.as_deref().unwrap_or(""),
                match r.met {
                    Some(true) => "✅",
                    Some(false) => "❌",
                    None => "",
                }
            );
        }
        let _ = writeln!(
            out,
            "\n| database | service | start-up to SERVING (ms) | idle RSS (MiB) | peak RSS (MiB) | targets (< 1 s, < 30 MiB, < 150 MiB) |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---|");
        for p in &self.processes {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.1} | {:.1} | {} |",
                p.backend,
                p.service,
                p.startup_ms,
                p.idle_rss_mib,
                p.peak_rss_mib,
                self.process_verdict(p)
            );
        }
        out
    }

    /// Writes `results.json` and `report.md` into `dir`, and the Markdown between the
    /// `<!-- bench:begin -->` and `<!-- bench:end -->` markers of `markdown`, if given.
    pub fn write(&self, dir: &Path, markdown: Option<&Path>) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("results.json"),
            serde_json::to_string_pretty(self)?,
        )?;
        let md = self.markdown();
        std::fs::write(dir.join("report.md"), &md)?;
        if let Some(path) = markdown {
            let text = std::fs::read_to_string(path)?;
            let (begin, end) = ("<!-- bench:begin -->", "<!-- bench:end -->");
            let (Some(a), Some(b)) = (text.find(begin), text.find(end)) else {
                anyhow::bail!("{} has no {begin} … {end} markers", path.display());
            };
            let updated = format!("{}{begin}\n{md}{}", &text[..a], &text[b..]);
            std::fs::write(path, updated)?;
        }
        Ok(())
    }
}
