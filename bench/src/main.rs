//! `tributary-bench`: Tributary side by side with kinesalite, kinesis-mock and a do-nothing
//! ceiling server, on one machine in one run (issue 7). `bench/run.sh` installs the peers,
//! builds release binaries and runs the full comparison; `--smoke` is the seconds-long run CI
//! uses to keep the harness working (it asserts correctness, never speed).

mod ceiling;
mod client;
mod report;
mod scenarios;
mod subscribe;
mod targets;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use report::{Outcome, Row};
use scenarios::{Options, Scenario};
use targets::{Kind, Programs, Server};

#[derive(Parser)]
#[command(
    name = "tributary-bench",
    about = "Benchmark Tributary against kinesalite, kinesis-mock and a do-nothing ceiling"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the ceiling: parse Kinesis writes and answer them without storing anything.
    Ceiling {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Seconds of load in each timed scenario.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Comma-separated targets: tributary, kinesalite, kinesis-mock, ceiling
    /// [default: all four; with --smoke, tributary,ceiling].
    #[arg(long)]
    targets: Option<String>,
    /// Comma-separated scenarios or families (put-records, put-record, get-records,
    /// e2e-latency, e2e-latency-subscribe, retention), or `all`.
    #[arg(long, default_value = "all")]
    scenarios: String,
    /// A run of a few seconds that checks the harness (CI): short phases, little data.
    #[arg(long)]
    smoke: bool,
    /// Records written and read back by `get-records` [default: 1000000; kinesis-mock at most
    /// 50000; with --smoke, 2000].
    #[arg(long)]
    readback_records: Option<u64>,
    /// GiB of data written by `retention`.
    #[arg(long)]
    retention_gib: Option<f64>,
    /// The `tributary` binary [default: next to this one].
    #[arg(long)]
    tributary_bin: Option<PathBuf>,
    /// Folder holding the npm packages `kinesalite` and `kinesis-local`.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/node_modules"))]
    node_modules: PathBuf,
    /// The Node.js executable for the npm peers.
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// Where Tributary keeps its data during the run (one fresh folder per scenario).
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Also write the markdown report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Ceiling { listen }) = cli.command {
        // Multi-threaded like Tributary's own runtime, so the ceiling gets the same cores.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return rt.block_on(ceiling::serve(&listen));
    }
    // The load generator runs on one thread: it only copies prebuilt bodies to sockets, and
    // leaves the other core to the server.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ok = rt.block_on(run(cli.run))?;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

async fn run(a: RunArgs) -> anyhow::Result<bool> {
    let targets: Vec<Kind> = a
        .targets
        .as_deref()
        .unwrap_or(if a.smoke {
            "tributary,ceiling"
        } else {
            "tributary,kinesalite,kinesis-mock,ceiling"
        })
        .split(',')
        .map(Kind::parse)
        .collect::<anyhow::Result<_>>()?;
    // Keep the report's column order stable whatever order the flag used.
    let targets: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| targets.contains(k))
        .collect();
    let mut scenarios = Vec::new();
    for s in a.scenarios.split(',') {
        for sc in Scenario::parse(s)? {
            if !scenarios.contains(&sc) {
                scenarios.push(sc);
            }
        }
    }
    let o = Options {
        duration: Duration::from_secs_f64(if a.smoke { 0.5 } else { a.duration }),
        readback_records: a
            .readback_records
            .unwrap_or(if a.smoke { 2_000 } else { 1_000_000 }),
        retention_bytes: (a
            .retention_gib
            .unwrap_or(if a.smoke { 1.0 / 32.0 } else { 6.0 })
            * (1u64 << 30) as f64) as u64,
    };
    let tributary = match a.tributary_bin {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .context("no parent folder")?
            .join("tributary"),
    };
    let programs = Programs {
        tributary,
        node_modules: a.node_modules,
        node: a.node,
        scratch: a.scratch.unwrap_or_else(std::env::temp_dir),
    };

    let mut rows = Vec::new();
    let mut ok = true;
    for &scenario in &scenarios {
        eprintln!("== {}: {}", scenario.name(), scenario.describe(&o));
        let mut results = Vec::new();
        for &kind in &targets {
            let outcome = match scenario.skip_reason(kind) {
                Some(why) => Outcome::Skipped(why.into()),
                None => match measure(scenario, kind, &programs, &o).await {
                    Ok(m) => {
                        eprintln!(
                            "   {kind:<13} {:>10.0} records/s {:>8.1} MB/s  p50 {:>7.2} ms  p99 {:>7.2} ms  cpu {:>6.2} s  rss {:>6.0} MiB  load-gen cpu {:.2} s  {}",
                            m.records_per_s(),
                            m.mb_per_s(),
                            m.latency.p50,
                            m.latency.p99,
                            m.server_cpu_s,
                            m.peak_rss_kib as f64 / 1024.0,
                            m.loadgen_cpu_s,
                            m.note
                        );
                        Outcome::Done(m)
                    }
                    Err(e) => {
                        eprintln!("   {kind:<13} FAILED: {e:#}");
                        // A peer that cannot run here is reported; our own servers must work.
                        if !kind.is_peer() {
                            ok = false;
                        }
                        Outcome::Failed(format!("{e:#}"))
                    }
                },
            };
            results.push((kind, outcome));
        }
        rows.push(Row { scenario, results });
    }

    let header = format!(
        "## Results\n\nMachine: {}. Targets: {}. {}",
        report::machine(),
        targets
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
        if a.smoke {
            "Smoke run: phases too short for the numbers to mean anything."
        } else {
            ""
        }
    );
    let md = report::markdown(&rows, &targets, &o, header.trim_end());
    println!("{md}");
    if let Some(out) = a.out {
        std::fs::write(&out, &md).with_context(|| format!("writing {}", out.display()))?;
    }
    let failed = rows
        .iter()
        .flat_map(|r| &r.results)
        .filter(|(k, o)| !k.is_peer() && matches!(o, Outcome::Failed(_)))
        .count();
    let done = rows
        .iter()
        .flat_map(|r| &r.results)
        .filter(|(_, o)| matches!(o, Outcome::Done(_)))
        .count();
    eprintln!("bench: {done} passed, {failed} failed");
    Ok(ok)
}

async fn measure(
    scenario: Scenario,
    kind: Kind,
    programs: &Programs,
    o: &Options,
) -> anyhow::Result<scenarios::Measurement> {
    let server = Server::start(kind, programs).await?;
    let result = scenarios::run(scenario, &server, o).await;
    server.stop().await;
    result
}
