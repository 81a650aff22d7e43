//! Shared helpers for the black-box tests: start the real `tributary` binary on port 0, find
//! its addresses, kill it, restart it on the same data directory; build AWS SDK clients for it
//! and make the calls many tests repeat (see the modules, re-exported here).

mod analytics;
mod firehose;
mod http;
mod kinesis;

pub use analytics::{
    analytics_client, discover_input_schema, json_schema, start_application, stream_input,
    stream_output, KDA_ROLE,
};
pub use firehose::{
    buffering_hints, create_stream_delivery, firehose_client, http_endpoint_config,
    put_record_batch, s3_config, FIREHOSE_ROLE,
};
pub use http::{
    free_port, http_request, metric, metric_sum, metric_value, scrape_metrics, write_auth_file,
};
pub use kinesis::{
    create_on_demand_stream, create_stream, list_shards, list_shards_paged, middle_hash_key,
    open_shard_count, put_records, read_shard, read_shard_text, read_stream, read_stream_until,
    record_text, shard_ids, stream_arn, update_shard_count, write_load, ReadUntil,
};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Path of the `tributary` binary: `$TRIBUTARY_BIN`, else the workspace's debug build (built
/// on demand).
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("TRIBUTARY_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin = target.join("debug").join("tributary");
    if !bin.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "tributary"])
            .current_dir(&root)
            .status()
            .expect("cargo build runs");
        assert!(status.success(), "building tributary failed");
    }
    bin
}

/// A running `tributary serve` process.
pub struct Server {
    pub child: Child,
    pub api: String,
    pub metrics: String,
    /// `host:port` of the `--tls-listen` listener, when there is one.
    pub tls: Option<String>,
    pub data_dir: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Server {
    /// Starts the server with `args` (plus ports 0) and waits until it listens.
    pub async fn start(args: &[&str]) -> anyhow::Result<Server> {
        Self::start_with_env(args, &[]).await
    }

    /// [`Server::start`] with extra environment variables (kept for restarts).
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Server> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let data_dir = args
            .iter()
            .position(|a| a == "--data-dir")
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from);
        Self::spawn(args, data_dir, env).await
    }

    async fn spawn(
        args: Vec<String>,
        data_dir: Option<PathBuf>,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<Server> {
        // Port 0 unless the test fixes the API address (to restart on the same one).
        let listen = if args.iter().any(|a| a == "--listen") {
            vec![]
        } else {
            vec!["--listen", "127.0.0.1:0"]
        };
        let mut child = Command::new(binary())
            .arg("serve")
            .args(listen)
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(&args)
            .env("TRIBUTARY_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await??
            .ok_or_else(|| anyhow::anyhow!("server exited before listening"))?;
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(str::to_string)
                .ok_or_else(|| anyhow::anyhow!("unexpected start line: {line}"))
        };
        let api = format!("http://{}", field("api=")?);
        let metrics = format!("http://{}", field("metrics=")?);
        let tls = field("tls=").ok();
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server {
            child,
            api,
            metrics,
            tls,
            data_dir,
            args,
            env,
        })
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub async fn kill9(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Starts a new process with the same arguments (and data directory).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9().await;
        let fresh = Self::spawn(self.args.clone(), self.data_dir.clone(), self.env.clone()).await?;
        *self = fresh;
        Ok(())
    }

    /// SIGTERM and wait for a clean exit.
    pub async fn stop(mut self) -> anyhow::Result<std::process::ExitStatus> {
        if let Some(pid) = self.child.id() {
            std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()?;
        }
        Ok(tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??)
    }
}

/// The configuration builder of an AWS SDK client (`local_config!(aws_sdk_firehose, endpoint)`)
/// for a local server: test credentials, plain HTTP (HTTP/1.1) and no retries, so every error a
/// test provokes reaches it.
#[macro_export]
macro_rules! local_config {
    ($sdk:ident, $endpoint:expr) => {
        $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("us-east-1"))
            .endpoint_url($endpoint)
            .credentials_provider($sdk::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .http_client(::aws_smithy_http_client::Builder::new().build_http())
            .retry_config($sdk::config::retry::RetryConfig::disabled())
    };
}

/// An `aws-sdk-kinesis` client for a local server (see [`local_config!`]).
pub fn kinesis_client(endpoint: &str) -> aws_sdk_kinesis::Client {
    kinesis_client_with(endpoint, |b| b)
}

/// [`kinesis_client`] with extra settings (timeouts, for example).
pub fn kinesis_client_with(
    endpoint: &str,
    configure: impl FnOnce(aws_sdk_kinesis::config::Builder) -> aws_sdk_kinesis::config::Builder,
) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::from_conf(configure(local_config!(aws_sdk_kinesis, endpoint)).build())
}

/// Every file under `dir` (relative path, contents), sorted, hidden temporaries left out.
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.file_name().unwrap().to_string_lossy().starts_with('.') {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Polls `f` every 100 ms until it returns a value; panics naming `what` after `timeout`.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
