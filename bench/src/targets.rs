//! The servers under test: how each is started on loopback, found ready, measured and stopped.

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::client::Conn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tributary,
    Kinesalite,
    KinesisMock,
    Ceiling,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Tributary,
        Kind::Kinesalite,
        Kind::KinesisMock,
        Kind::Ceiling,
    ];

    pub fn parse(s: &str) -> anyhow::Result<Kind> {
        Ok(match s.trim() {
            "tributary" => Kind::Tributary,
            "kinesalite" => Kind::Kinesalite,
            "kinesis-mock" => Kind::KinesisMock,
            "ceiling" => Kind::Ceiling,
            other => {
                bail!("unknown target {other:?} (tributary, kinesalite, kinesis-mock, ceiling)")
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Tributary => "tributary",
            Kind::Kinesalite => "kinesalite",
            Kind::KinesisMock => "kinesis-mock",
            Kind::Ceiling => "ceiling",
        }
    }

    /// Peers are third-party servers; a failure of theirs is reported, not fatal.
    pub fn is_peer(self) -> bool {
        matches!(self, Kind::Kinesalite | Kind::KinesisMock)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the target programs are.
#[derive(Debug, Clone)]
pub struct Programs {
    pub tributary: PathBuf,
    pub node_modules: PathBuf,
    pub node: PathBuf,
    /// Directory for Tributary's data; each run gets a fresh subdirectory.
    pub scratch: PathBuf,
}

/// A running target.
pub struct Server {
    pub kind: Kind,
    pub addr: SocketAddr,
    child: Child,
    _data: Option<tempfile::TempDir>,
}

/// CPU time and memory of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// User plus system CPU seconds of all the process's threads so far.
    pub cpu_s: f64,
    /// Resident set now, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set so far, KiB (`VmHWM`).
    pub hwm_kib: u64,
}

/// Linux reports `/proc/*/stat` CPU times in clock ticks of `USER_HZ`, which is 100 on every
/// architecture Linux builds with its default configuration (x86-64, arm64, …).
const TICKS_PER_SECOND: f64 = 100.0;

/// Samples process `pid`; `None` once it is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(ProcSample {
        cpu_s: cpu_from_stat(&stat)?,
        rss_kib: status_kib(&status, "VmRSS:").unwrap_or(0),
        hwm_kib: status_kib(&status, "VmHWM:").unwrap_or(0),
    })
}

/// CPU seconds (utime + stime) from a `/proc/PID/stat` line. The command name, field 2, may
/// hold spaces and parentheses, so fields are counted from the last `)`.
fn cpu_from_stat(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// CPU seconds this process (the load generator) has used, all threads.
pub fn self_cpu_s() -> f64 {
    sample(std::process::id()).map(|s| s.cpu_s).unwrap_or(0.0)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    pub fn sample(&self) -> ProcSample {
        sample(self.pid()).unwrap_or_default()
    }

    /// Starts `kind` on loopback and waits until it answers `ListStreams`.
    pub async fn start(kind: Kind, programs: &Programs) -> anyhow::Result<Server> {
        let (child, data, addr) = match kind {
            Kind::Tributary => {
                std::fs::create_dir_all(&programs.scratch)?;
                let data = tempfile::Builder::new()
                    .prefix("tributary-bench-")
                    .tempdir_in(&programs.scratch)?;
                let mut cmd = Command::new(&programs.tributary);
                cmd.args(["serve", "--data-dir"])
                    .arg(data.path())
                    .args([
                        "--no-limits",
                        "--listen",
                        "127.0.0.1:0",
                        "--metrics-listen",
                        "127.0.0.1:0",
                    ])
                    .env("TRIBUTARY_LOG", "warn");
                let (child, addr) = spawn_announcing(cmd, &programs.tributary).await?;
                (child, Some(data), addr)
            }
            Kind::Ceiling => {
                let exe = std::env::current_exe()?;
                let mut cmd = Command::new(&exe);
                cmd.args(["ceiling", "--listen", "127.0.0.1:0"]);
                let (child, addr) = spawn_announcing(cmd, &exe).await?;
                (child, None, addr)
            }
            Kind::Kinesalite => {
                let dir = programs.node_modules.join("kinesalite");
                need(&dir)?;
                let port = free_port()?;
                // The CLI listens on every interface; the library lets us bind loopback only.
                // No creation delays, so a benchmark never waits on CREATING.
                let script = format!(
                    "require({dir:?})({{createStreamMs:0,deleteStreamMs:0,updateStreamMs:0,shardLimit:1000}}).listen({port},'127.0.0.1',()=>console.log('ready'))",
                    dir = dir.display().to_string()
                );
                let mut cmd = Command::new(&programs.node);
                cmd.args(["-e", &script]);
                (spawn_quiet(cmd)?, None, ([127, 0, 0, 1], port).into())
            }
            Kind::KinesisMock => {
                let dir = programs.node_modules.join("kinesis-local");
                need(&dir)?;
                let port = free_port()?;
                let tls_port = free_port()?;
                let mut cmd = Command::new(&programs.node);
                // main.js reads its TLS certificate (server.json) from the working directory.
                cmd.arg(dir.join("main.js"))
                    .current_dir(&dir)
                    .env("KINESIS_MOCK_PLAIN_PORT", port.to_string())
                    .env("KINESIS_MOCK_TLS_PORT", tls_port.to_string())
                    .env("LOG_LEVEL", "ERROR")
                    .env("SHARD_LIMIT", "1000");
                for var in [
                    "CREATE_STREAM_DURATION",
                    "DELETE_STREAM_DURATION",
                    "UPDATE_SHARD_COUNT_DURATION",
                    "REGISTER_STREAM_CONSUMER_DURATION",
                    "DEREGISTER_STREAM_CONSUMER_DURATION",
                ] {
                    cmd.env(var, "0ms");
                }
                (spawn_quiet(cmd)?, None, ([127, 0, 0, 1], port).into())
            }
        };
        let mut server = Server {
            kind,
            addr,
            child,
            _data: data,
        };
        server.wait_ready(Duration::from_secs(90)).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited during start-up: {status}", self.kind);
            }
            if let Ok(mut conn) = Conn::connect(self.addr).await {
                if let Ok(r) = conn.call_json("ListStreams", serde_json::json!({})).await {
                    if r.status == 200 {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("{} did not answer within {limit:?}", self.kind);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server (SIGKILL: nothing of the run needs to survive) and removes its data.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn need(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        bail!(
            "{} is not installed (bench/run.sh installs the npm peers)",
            dir.display()
        );
    }
    Ok(())
}

/// Starts a peer with its output discarded: kinesis-mock warns on stderr whenever its event
/// loop lags, which under a benchmark is always. A peer that fails shows up as not answering.
fn spawn_quiet(mut cmd: Command) -> anyhow::Result<Child> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    cmd.spawn().context("starting node")
}

/// Spawns a program that prints `listening api=ADDR …` once it serves, and returns ADDR.
async fn spawn_announcing(mut cmd: Command, program: &Path) -> anyhow::Result<(Child, SocketAddr)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .context("no `listening` line within 60 s")??
        .context("exited before listening")?;
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("api="))
        .with_context(|| format!("unexpected first line {line:?}"))?
        .parse()?;
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 2 3";
        assert_eq!(cpu_from_stat(stat), Some(3.0));
    }

    #[test]
    fn this_process_has_a_resident_set() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
    }
}
