//! The markdown report: a summary with ratios, a table per scenario, and issue 7's targets.

use std::fmt::Write as _;

use crate::disk::Disk;
use crate::scenarios::{Measurement, Options, Scenario};
use crate::targets::Kind;

/// What happened to one target in one scenario.
#[derive(Debug, Clone)]
pub enum Outcome {
    Done(Measurement),
    Skipped(String),
    Failed(String),
}

/// One scenario across the targets.
pub struct Row {
    pub scenario: Scenario,
    pub results: Vec<(Kind, Outcome)>,
}

impl Row {
    pub fn get(&self, kind: Kind) -> Option<&Measurement> {
        self.results.iter().find_map(|(k, o)| match o {
            Outcome::Done(m) if *k == kind => Some(m),
            _ => None,
        })
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 10.0 => format!("{r:.0}×"),
        Some(r) => format!("{r:.2}×"),
        None => "—".into(),
    }
}

pub fn fmt_count(v: f64) -> String {
    if v >= 100.0 {
        let s = format!("{v:.0}");
        // Thousands separators, for reading at a glance.
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        format!("{v:.1}")
    }
}

/// A one-line description of the machine and the tools, read from `/proc` and `node`.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown CPU")
        .trim()
        .to_string();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({model}), {mem_gib:.0} GiB RAM, Linux {}",
        kernel.trim()
    )
}

/// The whole report.
pub fn markdown(
    rows: &[Row],
    targets: &[Kind],
    o: &Options,
    header: &str,
    disk: Option<&Disk>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{header}");
    summary(&mut s, rows, targets, disk);
    goals(&mut s, rows, disk);
    let _ = writeln!(s, "\n### Per scenario\n");
    let _ = writeln!(
        s,
        "MB/s counts decoded record data (1 KiB a record), 1 MB = 10^6 bytes. Latency is per call \
         (per record from producer to consumer in the `e2e-latency` scenarios). Server CPU is user + system \
         seconds of the server process during the timed phase; peak RSS is its `VmHWM` at the end \
         of the scenario; load-gen CPU is the benchmark's own CPU time in the same phase. Every \
         target is started fresh for every scenario."
    );
    for row in rows {
        detail(&mut s, row, o);
    }
    s
}

fn summary(s: &mut String, rows: &[Row], targets: &[Kind], disk: Option<&Disk>) {
    let peers: Vec<Kind> = targets
        .iter()
        .copied()
        .filter(|k| *k != Kind::Tributary)
        .collect();
    let _ = writeln!(
        s,
        "\n### Summary\n\nRecords per second (for the `e2e-latency` scenarios: p50 / p99 producer-to-consumer latency); ratios are Tributary / target.\n"
    );
    let mut head = String::from("| scenario |");
    let mut rule = String::from("| --- |");
    for k in targets {
        let _ = write!(head, " {k} |");
        rule.push_str(" ---: |");
    }
    for k in &peers {
        let _ = write!(head, " T/{k} |");
        rule.push_str(" ---: |");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for row in rows {
        let mut line = format!("| `{}` |", row.scenario.name());
        for k in targets {
            let cell = match row.results.iter().find(|(kk, _)| kk == k).map(|(_, o)| o) {
                Some(Outcome::Done(m)) if row.scenario.is_throughput() => {
                    fmt_count(m.records_per_s())
                }
                Some(Outcome::Done(m)) => {
                    format!("{:.1} / {:.1} ms", m.latency.p50, m.latency.p99)
                }
                Some(Outcome::Skipped(_)) => "n/a".into(),
                Some(Outcome::Failed(_)) => "failed".into(),
                None => "—".into(),
            };
            let _ = write!(line, " {cell} |");
        }
        for k in &peers {
            let r = if row.scenario.is_throughput() {
                ratio(
                    row.get(Kind::Tributary).map(Measurement::records_per_s),
                    row.get(*k).map(Measurement::records_per_s),
                )
            } else {
                None
            };
            let _ = write!(line, " {} |", fmt_ratio(r));
        }
        let _ = writeln!(s, "{line}");
    }
    if let Some(disk) = disk {
        let _ = writeln!(s, "\nDisk: {}.", disk.describe());
        let bound: Vec<String> = rows
            .iter()
            .filter(|r| matches!(r.scenario, Scenario::PutRecords { .. }))
            .filter_map(|r| {
                let t = r.get(Kind::Tributary)?.records_per_s();
                let mut cell = format!(
                    "`{}` {} of the disk's rate",
                    r.scenario.name(),
                    fmt_ratio(Some(t / disk.records_per_s()))
                );
                if let Some(share) = disk_share_of_ceiling(disk, r) {
                    let _ = write!(
                        cell,
                        " (that rate is {} of the ceiling)",
                        fmt_ratio(Some(share))
                    );
                }
                Some(cell)
            })
            .collect();
        if !bound.is_empty() {
            let _ = writeln!(s, "PutRecords against that rate: {}.", bound.join("; "));
        }
    }
}

/// The disk's synced rate in records/s as a share of the ceiling's rate in `row`: the most a
/// log that syncs before acknowledging can get of the ceiling there.
fn disk_share_of_ceiling(disk: &Disk, row: &Row) -> Option<f64> {
    ratio(
        Some(disk.records_per_s()),
        row.get(Kind::Ceiling).map(Measurement::records_per_s),
    )
}

/// Worst ratio Tributary/`peer` of `metric` over the rows matching `pick`.
fn worst<F, P>(rows: &[Row], pick: P, peer: Kind, metric: F) -> Option<(f64, String)>
where
    F: Fn(&Measurement) -> f64,
    P: Fn(&Scenario) -> bool,
{
    rows.iter()
        .filter(|r| pick(&r.scenario))
        .filter_map(|r| {
            ratio(
                r.get(Kind::Tributary).map(&metric),
                r.get(peer).map(&metric),
            )
            .map(|x| (x, r.scenario.name()))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

fn goals(s: &mut String, rows: &[Row], disk: Option<&Disk>) {
    let _ = writeln!(
        s,
        "\n### Issue 7 targets\n\n| target | measured | verdict |\n| --- | --- | --- |"
    );
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let mut line = |name: &str, v: Option<(String, bool)>| {
        let (measured, verdict) = match v {
            Some((m, ok)) => (m, verdict(ok).to_string()),
            None => ("not measured in this run".into(), "—".into()),
        };
        let _ = writeln!(s, "| {name} | {measured} | {verdict} |");
    };
    let puts = |sc: &Scenario| matches!(sc, Scenario::PutRecords { .. });
    let put = |sc: &Scenario| matches!(sc, Scenario::PutRecord { .. });
    let rate = |m: &Measurement| m.records_per_s();
    let at_least = |w: Option<(f64, String)>, goal: f64| {
        w.map(|(r, at)| {
            (
                format!("{} (lowest, `{at}`)", fmt_ratio(Some(r))),
                r >= goal,
            )
        })
    };
    line(
        "PutRecords throughput ≥ 25× kinesalite",
        at_least(worst(rows, puts, Kind::Kinesalite, rate), 25.0),
    );
    // Where the disk cannot take 0.6× the ceiling's records durably, say so: no log that
    // syncs before acknowledging can meet the target on that machine.
    let disk_short = |w: Option<(String, bool)>| {
        let (m, ok) = w?;
        let bound = disk.and_then(|d| {
            let lowest = rows
                .iter()
                .filter(|r| puts(&r.scenario))
                .filter_map(|r| disk_share_of_ceiling(d, r))
                .min_by(f64::total_cmp)?;
            (lowest < 0.6).then(|| {
                format!(
                    "; at the disk's synced rate a durable log gets about {} of the ceiling here",
                    fmt_ratio(Some(lowest))
                )
            })
        });
        Some((m + &bound.unwrap_or_default(), ok))
    };
    line(
        "PutRecords throughput ≥ 0.6× the ceiling",
        disk_short(at_least(worst(rows, puts, Kind::Ceiling, rate), 0.6)),
    );
    line(
        "PutRecord throughput ≥ 5× kinesalite at concurrency 16",
        at_least(worst(rows, put, Kind::Kinesalite, rate), 5.0),
    );
    let p99 = rows
        .iter()
        .filter(|r| put(&r.scenario))
        .filter_map(|r| r.get(Kind::Tributary).map(|m| m.latency.p99))
        .max_by(f64::total_cmp);
    line(
        "PutRecord p99 latency ≤ 5 ms",
        p99.map(|p| (format!("{p:.2} ms"), p <= 5.0)),
    );
    line(
        "GetRecords read-back ≥ 25× kinesalite",
        at_least(
            worst(
                rows,
                |sc| matches!(sc, Scenario::GetRecords),
                Kind::Kinesalite,
                rate,
            ),
            25.0,
        ),
    );
    // For memory, lower is better: the worst case is the highest Tributary/kinesalite ratio.
    let rss = rows
        .iter()
        .filter(|r| puts(&r.scenario))
        .filter_map(|r| {
            ratio(
                r.get(Kind::Tributary).map(|m| m.peak_rss_kib as f64),
                r.get(Kind::Kinesalite).map(|m| m.peak_rss_kib as f64),
            )
            .map(|x| (x, r.scenario.name()))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    line(
        "Peak RSS in PutRecords ≤ ¼ of kinesalite's",
        rss.map(|(r, at)| {
            (
                format!("{} (highest, `{at}`)", fmt_ratio(Some(r))),
                r <= 0.25,
            )
        }),
    );
    let flat = rows
        .iter()
        .filter(|r| matches!(r.scenario, Scenario::Retention))
        .find_map(|r| r.get(Kind::Tributary))
        .and_then(|m| m.rss.as_ref().map(|t| (m, t)));
    line(
        "RSS flat while retained data grows to several GiB",
        flat.map(|(m, t)| {
            let (a, b) = t.halves();
            (
                format!(
                    "{:.1} GiB retained; peak {a:.0} MiB in the first half, {b:.0} MiB in the second",
                    m.bytes as f64 / (1u64 << 30) as f64
                ),
                t.is_flat(),
            )
        }),
    );
}

fn detail(s: &mut String, row: &Row, o: &Options) {
    let _ = writeln!(
        s,
        "\n#### `{}`\n\n{}.\n\n| target | records/s | MB/s | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU s | server CPU µs/record | peak RSS MiB | load-gen CPU s | notes |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        row.scenario.name(),
        row.scenario.describe(o)
    );
    for (k, outcome) in &row.results {
        match outcome {
            Outcome::Done(m) => {
                let per_record = if m.records > 0 {
                    format!("{:.1}", m.server_cpu_s * 1e6 / m.records as f64)
                } else {
                    "—".into()
                };
                let _ = writeln!(
                    s,
                    "| {k} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {per_record} | {:.0} | {:.2} | {} |",
                    fmt_count(m.records_per_s()),
                    m.mb_per_s(),
                    m.latency.p50,
                    m.latency.p90,
                    m.latency.p99,
                    m.latency.max,
                    m.errors,
                    m.server_cpu_s,
                    m.peak_rss_kib as f64 / 1024.0,
                    m.loadgen_cpu_s,
                    m.note.replace('|', "/")
                );
            }
            Outcome::Skipped(why) => {
                let _ = writeln!(s, "| {k} | n/a | | | | | | | | | | | {why} |");
            }
            Outcome::Failed(e) => {
                let _ = writeln!(
                    s,
                    "| {k} | failed | | | | | | | | | | | {} |",
                    e.replace('|', "/").replace('\n', " ")
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_counts_get_thousands_separators() {
        assert_eq!(fmt_count(1234567.4), "1,234,567");
        assert_eq!(fmt_count(999.0), "999");
        assert_eq!(fmt_count(12.34), "12.3");
    }
}
