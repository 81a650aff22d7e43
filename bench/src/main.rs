//! `tributary-bench`: Tributary side by side with kinesalite, kinesis-mock and a do-nothing
//! ceiling server, on one machine in one run (issue 7). `bench/run.sh` installs the peers,
//! builds release binaries and runs the full comparison; `--smoke` is the seconds-long run CI
//! uses to keep the harness working (it asserts correctness, never speed).

mod ceiling;
mod client;
mod disk;
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
    /// Measure each scenario (except `retention`) this many times, the targets taking turns
    /// within each round, and report every target's median run: by records/s, or by p50
    /// latency in the `e2e-latency` scenarios. A virtual machine's disk and memory change speed
    /// from minute to minute; the median of alternated runs is less at their mercy than one run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=15))]
    repeat: u32,
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

    // What the disk allows a durable log, for reading the PutRecords ratios (the ceiling
    // never writes).
    let disk = if targets.contains(&Kind::Tributary)
        && scenarios
            .iter()
            .any(|s| matches!(s, Scenario::PutRecords { .. }))
    {
        let (rounds, total) = if a.smoke {
            (1, 8 << 20)
        } else {
            (3, 256 << 20)
        };
        let dir = programs.scratch.clone();
        let disk = tokio::task::spawn_blocking(move || disk::measure(&dir, rounds, total))
            .await?
            .context("measuring the disk")?;
        eprintln!("== disk: {}", disk.describe());
        Some(disk)
    } else {
        None
    };

    let mut rows = Vec::new();
    let mut ok = true;
    for &scenario in &scenarios {
        eprintln!("== {}: {}", scenario.name(), scenario.describe(&o));
        let repeat = if matches!(scenario, Scenario::Retention) {
            1
        } else {
            a.repeat
        };
        let mut runs: Vec<Vec<anyhow::Result<scenarios::Measurement>>> =
            targets.iter().map(|_| Vec::new()).collect();
        for round in 1..=repeat {
            for (i, &kind) in targets.iter().enumerate() {
                if scenario.skip_reason(kind).is_some()
                    || runs[i].last().is_some_and(|r| r.is_err())
                {
                    continue;
                }
                let run = measure(scenario, kind, &programs, &o).await;
                let tag = if repeat > 1 {
                    format!("{kind} #{round}")
                } else {
                    kind.to_string()
                };
                match &run {
                    Ok(m) => eprintln!(
                        "   {tag:<16} {:>10.0} records/s {:>8.1} MB/s  p50 {:>7.2} ms  p99 {:>7.2} ms  cpu {:>6.2} s  rss {:>6.0} MiB  load-gen cpu {:.2} s  {}",
                        m.records_per_s(),
                        m.mb_per_s(),
                        m.latency.p50,
                        m.latency.p99,
                        m.server_cpu_s,
                        m.peak_rss_kib as f64 / 1024.0,
                        m.loadgen_cpu_s,
                        m.note
                    ),
                    Err(e) => eprintln!("   {tag:<16} FAILED: {e:#}"),
                }
                runs[i].push(run);
            }
        }
        let mut results = Vec::new();
        for (&kind, runs) in targets.iter().zip(runs) {
            let outcome = if let Some(why) = scenario.skip_reason(kind) {
                Outcome::Skipped(why.into())
            } else {
                match median(scenario, runs) {
                    Ok(m) => Outcome::Done(m),
                    Err(e) => {
                        // A peer that cannot run here is reported; our own servers must work.
                        if !kind.is_peer() {
                            ok = false;
                        }
                        Outcome::Failed(format!("{e:#}"))
                    }
                }
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
    let md = report::markdown(&rows, &targets, &o, header.trim_end(), disk.as_ref());
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

/// The median of a target's runs of `scenario` (the lower middle one of an even number), with
/// every run's figure added to its notes; the first failure if any run failed.
fn median(
    scenario: Scenario,
    runs: Vec<anyhow::Result<scenarios::Measurement>>,
) -> anyhow::Result<scenarios::Measurement> {
    let mut done = Vec::new();
    for run in runs {
        done.push(run?);
    }
    let key = |m: &scenarios::Measurement| {
        if scenario.is_throughput() {
            m.records_per_s()
        } else {
            m.latency.p50
        }
    };
    done.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let n = done.len();
    let figures = done
        .iter()
        .map(|m| {
            if scenario.is_throughput() {
                format!("{:.0}", m.records_per_s())
            } else {
                format!("{:.2} ms", m.latency.p50)
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut m = done
        .into_iter()
        .nth(n.saturating_sub(1) / 2)
        .context("no run")?;
    if n > 1 {
        let what = if scenario.is_throughput() {
            "records/s"
        } else {
            "p50"
        };
        let runs = format!("median of {n} runs ({what}: {figures})");
        m.note = if m.note.is_empty() {
            runs
        } else {
            format!("{}; {runs}", m.note)
        };
    }
    Ok(m)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(records: u64, p50: f64) -> anyhow::Result<scenarios::Measurement> {
        Ok(scenarios::Measurement {
            records,
            secs: 1.0,
            latency: scenarios::Latency {
                p50,
                ..Default::default()
            },
            ..Default::default()
        })
    }

    #[test]
    fn the_median_run_is_reported_with_every_runs_figure() {
        let put = Scenario::parse("put-records-c4-s1").unwrap()[0];
        let m = median(put, vec![run(700, 1.0), run(500, 3.0), run(900, 2.0)]).unwrap();
        assert_eq!(m.records, 700);
        assert_eq!(m.note, "median of 3 runs (records/s: 500, 700, 900)");
        // Of an even number, the lower middle one.
        let m = median(put, vec![run(800, 0.0), run(600, 0.0)]).unwrap();
        assert_eq!(m.records, 600);
        // Latency scenarios go by p50.
        let e2e = Scenario::parse("e2e-latency").unwrap()[0];
        let m = median(e2e, vec![run(10, 4.0), run(30, 2.0), run(20, 3.0)]).unwrap();
        assert_eq!((m.records, m.latency.p50), (20, 3.0));
        assert_eq!(m.note, "median of 3 runs (p50: 2.00 ms, 3.00 ms, 4.00 ms)");
        // One run: as it was.
        let m = median(put, vec![run(5, 0.0)]).unwrap();
        assert!(m.note.is_empty());
        // A failed run fails the target.
        assert!(median(put, vec![run(5, 0.0), Err(anyhow::anyhow!("down"))]).is_err());
    }
}
