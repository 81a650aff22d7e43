//! `tributary serve` settings: command-line flags, each also read from a `TRIBUTARY_*`
//! environment variable. Defaults make `tributary serve` useful on a laptop.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::delivery::{DeliveryConfig, StoreConfig};
use crate::remote::{Credentials, RemoteConfig};
use crate::storage::StorageConfig;
use crate::streams::StreamsConfig;

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address of the AWS API listener (Kinesis; HTTP/1.1 and h2c).
    #[arg(long, env = "TRIBUTARY_LISTEN", default_value = "127.0.0.1:4567")]
    pub listen: String,

    /// Address of the metrics and health listener (/metrics, /healthz, /readyz).
    #[arg(
        long,
        env = "TRIBUTARY_METRICS_LISTEN",
        default_value = "127.0.0.1:9567"
    )]
    pub metrics_listen: String,

    /// Address of an additional API listener speaking TLS (h2 and HTTP/1.1 by ALPN).
    #[arg(long, env = "TRIBUTARY_TLS_LISTEN")]
    pub tls_listen: Option<String>,

    /// PEM certificate chain for the TLS listener (a self-signed one is generated if absent).
    #[arg(long, env = "TRIBUTARY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for the TLS listener.
    #[arg(long, env = "TRIBUTARY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM bundle of CA certificates trusted by outgoing `https://` connections (S3 endpoints,
    /// HTTP endpoint destinations, transformation endpoints, `--stream-endpoint`), in addition
    /// to the system's roots: a private CA, or another server's self-signed certificate.
    #[arg(long, env = "TRIBUTARY_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// Directory where stream data and metadata are kept.
    #[arg(long, env = "TRIBUTARY_DATA_DIR", default_value = "./tributary-data")]
    pub data_dir: PathBuf,

    /// Keep everything in memory (nothing survives a restart).
    #[arg(long, env = "TRIBUTARY_IN_MEMORY")]
    pub in_memory: bool,

    /// A stream served by another Kinesis endpoint, as NAME=URL (repeatable; the environment
    /// variable takes a comma-separated list). Delivery streams and analytics applications that
    /// name stream NAME read and write it through the Kinesis API at URL (SigV4-signed with
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and --region); it need not exist locally.
    #[arg(
        long = "stream-endpoint",
        env = "TRIBUTARY_STREAM_ENDPOINTS",
        value_name = "NAME=URL",
        value_delimiter = ','
    )]
    pub stream_endpoints: Vec<String>,

    /// Create the Stream resources described by the YAML files in this directory.
    #[arg(long, env = "TRIBUTARY_MANIFESTS")]
    pub manifests: Option<PathBuf>,

    /// Turn off Kinesis's throughput and control-plane limits and Firehose's DirectPut quotas.
    #[arg(long, env = "TRIBUTARY_NO_LIMITS")]
    pub no_limits: bool,

    /// Region reported in ARNs.
    #[arg(long, env = "TRIBUTARY_REGION", default_value = "us-east-1")]
    pub region: String,

    /// Account id reported in ARNs and messages.
    #[arg(long, env = "TRIBUTARY_ACCOUNT_ID", default_value = "000000000000")]
    pub account_id: String,

    /// Cluster mode: API URL of the coordinator, the pod with ordinal 0 (e.g.
    /// `http://orders-0.orders-headless.default.svc:4567`). Setting it turns cluster mode on:
    /// the streams' shards are spread over the pods, and every pod serves every call.
    #[arg(long, env = "TRIBUTARY_CLUSTER_COORDINATOR")]
    pub cluster_coordinator: Option<String>,

    /// Cluster mode: this pod's API URL as the other pods reach it (default for ordinal 0:
    /// --cluster-coordinator).
    #[arg(long, env = "TRIBUTARY_CLUSTER_ADVERTISE")]
    pub cluster_advertise: Option<String>,

    /// Cluster mode: this pod's ordinal (default: the trailing `-N` of $POD_NAME, else of
    /// $HOSTNAME). Ordinal 0 is the coordinator.
    #[arg(long, env = "TRIBUTARY_CLUSTER_ORDINAL")]
    pub cluster_ordinal: Option<u32>,

    /// Cluster mode: file holding the secret shared by the pods (else the environment
    /// variable TRIBUTARY_CLUSTER_SECRET). Required in cluster mode.
    #[arg(long, env = "TRIBUTARY_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,

    /// YAML file of access keys; when given, requests must carry a valid SigV4 signature.
    #[arg(long, env = "TRIBUTARY_AUTH_FILE")]
    pub auth_file: Option<PathBuf>,

    /// Acknowledge writes without waiting for fsync (faster; a power loss may lose the last
    /// writes, a killed process does not).
    #[arg(long, env = "TRIBUTARY_NO_FSYNC")]
    pub no_fsync: bool,

    /// Read and write shard logs with direct I/O (`O_DIRECT`, where the filesystem supports
    /// it; elsewhere, and with `--direct-io=false`, through the kernel's page cache): less CPU
    /// per byte written and no page cache charged to the pod's memory; sequential readers are
    /// served by Tributary's own read-ahead.
    #[arg(
        long,
        env = "TRIBUTARY_DIRECT_IO",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub direct_io: bool,

    /// Size at which a shard's segment file is sealed and a new one started.
    #[arg(long, env = "TRIBUTARY_SEGMENT_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub segment_bytes: u64,

    /// Open shards allowed across all streams.
    #[arg(long, env = "TRIBUTARY_SHARD_LIMIT", default_value_t = 20_000)]
    pub shard_limit: u64,

    /// Milliseconds a new stream stays CREATING.
    #[arg(long, env = "TRIBUTARY_CREATE_DELAY_MS", default_value_t = 0)]
    pub create_delay_ms: u64,

    /// Milliseconds a deleted stream stays DELETING.
    #[arg(long, env = "TRIBUTARY_DELETE_DELAY_MS", default_value_t = 0)]
    pub delete_delay_ms: u64,

    /// Milliseconds a resharded stream stays UPDATING.
    #[arg(long, env = "TRIBUTARY_UPDATE_DELAY_MS", default_value_t = 0)]
    pub update_delay_ms: u64,

    /// How often ON_DEMAND streams are checked for hot and cold shards, in milliseconds.
    #[arg(long, env = "TRIBUTARY_ON_DEMAND_CHECK_MS", default_value_t = 10_000)]
    pub on_demand_check_ms: u64,

    /// An ON_DEMAND shard is split once its write load stays at or above this fraction of the
    /// per-shard limit (1 MiB/s, 1000 records/s) for --on-demand-hot-window-ms.
    #[arg(
        long,
        env = "TRIBUTARY_ON_DEMAND_SPLIT_THRESHOLD",
        default_value_t = 0.8
    )]
    pub on_demand_split_threshold: f64,

    /// Adjacent ON_DEMAND shards are merged once both stay below this fraction of the limit for
    /// --on-demand-cold-window-ms.
    #[arg(
        long,
        env = "TRIBUTARY_ON_DEMAND_MERGE_THRESHOLD",
        default_value_t = 0.1
    )]
    pub on_demand_merge_threshold: f64,

    /// How long a shard must stay hot before it is split, in milliseconds.
    #[arg(
        long,
        env = "TRIBUTARY_ON_DEMAND_HOT_WINDOW_MS",
        default_value_t = 60_000
    )]
    pub on_demand_hot_window_ms: u64,

    /// How long two neighbours must stay cold before they are merged, in milliseconds.
    #[arg(
        long,
        env = "TRIBUTARY_ON_DEMAND_COLD_WINDOW_MS",
        default_value_t = 600_000
    )]
    pub on_demand_cold_window_ms: u64,

    /// How long a SubscribeToShard subscription lasts, in milliseconds (AWS: 5 minutes).
    #[arg(
        long,
        env = "TRIBUTARY_SUBSCRIPTION_LIFETIME_MS",
        default_value_t = 300_000,
        hide = true
    )]
    pub subscription_lifetime_ms: u64,

    /// Enable test hooks on the metrics listener (POST /test/advance-clock?ms=N).
    #[arg(long, env = "TRIBUTARY_TEST_HOOKS", hide = true)]
    pub test_hooks: bool,

    /// Object store of delivery streams' S3 destinations: `http://host:port` or
    /// `https://host:port` of an S3-compatible server (path-style requests, SigV4; see
    /// `--ca-file` for a private CA), or `file:///dir` to write objects as
    /// files `dir/<bucket>/<key>`. Default: `file://<data-dir>/s3`.
    #[arg(long, env = "TRIBUTARY_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Region used to sign requests to the S3 endpoint.
    #[arg(long, env = "TRIBUTARY_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// Access key id for the S3 endpoint.
    #[arg(long, env = "TRIBUTARY_S3_ACCESS_KEY_ID", default_value = "")]
    pub s3_access_key_id: String,

    /// Secret access key for the S3 endpoint.
    #[arg(
        long,
        env = "TRIBUTARY_S3_SECRET_ACCESS_KEY",
        default_value = "",
        hide_default_value = true
    )]
    pub s3_secret_access_key: String,

    /// Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`) that runs the
    /// `Lambda` record-transformation processors of delivery streams; a `LambdaArn` that is an
    /// `http://` or `https://` URL is called directly instead.
    #[arg(long, env = "TRIBUTARY_LAMBDA_ENDPOINT")]
    pub lambda_endpoint: Option<String>,

    /// Directory of Glue table definitions for Firehose record format conversion: the schema
    /// of `SchemaConfiguration` {DatabaseName, TableName} is read from
    /// `DIR/<DatabaseName>/<TableName>.json` (the output of `aws glue get-table`).
    #[arg(long, env = "TRIBUTARY_GLUE_CATALOG")]
    pub glue_catalog: Option<PathBuf>,

    /// First delay before a failed delivery is retried, in milliseconds (doubles per attempt).
    #[arg(
        long,
        env = "TRIBUTARY_DELIVERY_RETRY_INITIAL_MS",
        default_value_t = 1000,
        hide = true
    )]
    pub delivery_retry_initial_ms: u64,

    /// Longest delay between delivery retries, in milliseconds (Firehose: 120 s).
    #[arg(
        long,
        env = "TRIBUTARY_DELIVERY_RETRY_MAX_MS",
        default_value_t = 120_000,
        hide = true
    )]
    pub delivery_retry_max_ms: u64,

    /// How often retention is applied, in seconds.
    #[arg(long = "retention-check-seconds", env = "TRIBUTARY_RETENTION_CHECK_SECONDS", default_value = "60", value_parser = parse_secs)]
    pub retention_check_interval: Duration,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|e| e.to_string())
}

impl ServeConfig {
    /// Checks settings that flags alone cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "--account-id must be 12 digits, got {:?}",
                self.account_id
            ));
        }
        if !(self.on_demand_merge_threshold < self.on_demand_split_threshold
            && self.on_demand_merge_threshold >= 0.0)
        {
            return Err(
                "--on-demand-merge-threshold must be below --on-demand-split-threshold".into(),
            );
        }
        if let Some(e) = &self.s3_endpoint {
            // Refusing a bad scheme here beats failing every delivery later.
            if !(e.starts_with("http://") || e.starts_with("https://") || e.starts_with("file://"))
            {
                return Err(format!(
                    "--s3-endpoint must start with http://, https:// or file://, got {e:?}"
                ));
            }
        }
        if self.segment_bytes < 64 * 1024 {
            return Err("--segment-bytes must be at least 65536".into());
        }
        self.remote_config()?;
        Ok(())
    }

    pub fn autoscale_config(&self) -> crate::streams::autoscale::AutoscaleConfig {
        crate::streams::autoscale::AutoscaleConfig {
            check_interval_ms: self.on_demand_check_ms.max(100),
            split_threshold: self.on_demand_split_threshold,
            merge_threshold: self.on_demand_merge_threshold,
            hot_window_ms: self.on_demand_hot_window_ms,
            cold_window_ms: self.on_demand_cold_window_ms,
            ..Default::default()
        }
    }

    pub fn delivery_config(&self) -> DeliveryConfig {
        let data_dir = (!self.in_memory).then(|| self.data_dir.clone());
        let endpoint = self.s3_endpoint.clone().unwrap_or_else(|| {
            let dir = std::path::absolute(self.data_dir.join("s3"))
                .unwrap_or_else(|_| self.data_dir.join("s3"));
            format!("file://{}", dir.display())
        });
        DeliveryConfig {
            region: self.region.clone(),
            account_id: self.account_id.clone(),
            data_dir,
            storage: StorageConfig {
                dir: None,
                fsync: !self.no_fsync && !self.in_memory,
                segment_bytes: self.segment_bytes,
                direct_io: self.direct_io,
                ..StorageConfig::default()
            },
            store: StoreConfig {
                endpoint,
                region: self.s3_region.clone(),
                access_key_id: self.s3_access_key_id.clone(),
                secret_access_key: self.s3_secret_access_key.clone(),
            },
            initial_backoff_ms: self.delivery_retry_initial_ms,
            max_backoff_ms: self.delivery_retry_max_ms,
            lambda_endpoint: self.lambda_endpoint.clone(),
            glue_catalog: self.glue_catalog.clone(),
            limits: !self.no_limits,
        }
    }

    /// Cluster mode settings, or `None` without --cluster-coordinator.
    pub fn cluster_config(&self) -> anyhow::Result<Option<crate::cluster::ClusterConfig>> {
        let Some(coordinator) = self.cluster_coordinator.clone().filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let ordinal = match self.cluster_ordinal {
            Some(o) => o,
            None => ["POD_NAME", "HOSTNAME"]
                .iter()
                .filter_map(|v| std::env::var(v).ok())
                .find_map(|name| crate::cluster::ordinal_of(&name))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "cluster mode needs --cluster-ordinal, or POD_NAME or HOSTNAME ending in -N"
                    )
                })?,
        };
        let secret = match &self.cluster_secret_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                .trim()
                .to_string(),
            None => std::env::var("TRIBUTARY_CLUSTER_SECRET").unwrap_or_default(),
        };
        if secret.is_empty() {
            anyhow::bail!(
                "cluster mode needs a secret: TRIBUTARY_CLUSTER_SECRET or --cluster-secret-file"
            );
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            anyhow::bail!("the cluster secret must be printable ASCII without spaces");
        }
        let advertise = match (&self.cluster_advertise, ordinal) {
            (Some(a), _) if !a.is_empty() => a.clone(),
            (_, 0) => coordinator.clone(),
            _ => anyhow::bail!("cluster mode needs --cluster-advertise (this pod's API URL)"),
        };
        if self.in_memory && ordinal != 0 {
            tracing::warn!("A cluster member with --in-memory loses its shards when restarted.");
        }
        Ok(Some(crate::cluster::ClusterConfig {
            coordinator: coordinator.trim_end_matches('/').to_string(),
            advertise: advertise.trim_end_matches('/').to_string(),
            ordinal,
            secret,
        }))
    }

    /// The remote streams of `--stream-endpoint`; a stream named twice is an error.
    pub fn remote_config(&self) -> Result<RemoteConfig, String> {
        let mut endpoints = std::collections::BTreeMap::new();
        for spec in self
            .stream_endpoints
            .iter()
            .filter(|s| !s.trim().is_empty())
        {
            let (name, url) = crate::remote::parse_endpoint(spec)?;
            if endpoints.insert(name.clone(), url).is_some() {
                return Err(format!("--stream-endpoint names stream {name} twice"));
            }
        }
        Ok(RemoteConfig {
            endpoints,
            region: self.region.clone(),
            credentials: Credentials::from_env(),
        })
    }

    pub fn streams_config(&self) -> StreamsConfig {
        StreamsConfig {
            region: self.region.clone(),
            account_id: self.account_id.clone(),
            data_dir: (!self.in_memory).then(|| self.data_dir.clone()),
            storage: StorageConfig {
                dir: None,
                fsync: !self.no_fsync && !self.in_memory,
                segment_bytes: self.segment_bytes,
                direct_io: self.direct_io,
                ..StorageConfig::default()
            },
            limits: !self.no_limits,
            shard_limit: self.shard_limit,
            create_delay_ms: self.create_delay_ms,
            delete_delay_ms: self.delete_delay_ms,
            update_delay_ms: self.update_delay_ms,
            subscription_lifetime_ms: self.subscription_lifetime_ms,
            remote: self.remote_config().unwrap_or_default(),
            ..StreamsConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeConfig,
    }

    #[test]
    fn documented_defaults_parse_and_validate() {
        let cli = Cli::try_parse_from(["tributary"]).unwrap();
        let c = cli.serve;
        assert_eq!(c.listen, "127.0.0.1:4567");
        assert_eq!(c.metrics_listen, "127.0.0.1:9567");
        assert_eq!(c.data_dir, PathBuf::from("./tributary-data"));
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.account_id, "000000000000");
        assert!(!c.no_limits && !c.in_memory);
        c.validate().unwrap();
        let s = c.streams_config();
        assert!(s.limits && s.storage.fsync && s.storage.direct_io);
        let d = c.delivery_config();
        assert!(d.store.endpoint.starts_with("file:///"));
        assert!(d.store.endpoint.ends_with("tributary-data/s3"));
        assert_eq!((d.initial_backoff_ms, d.max_backoff_ms), (1000, 120_000));
    }

    #[test]
    fn direct_io_is_on_unless_turned_off() {
        let direct = |args: &[&str]| {
            let mut argv = vec!["tributary"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).unwrap().serve.direct_io
        };
        assert!(direct(&[]));
        assert!(direct(&["--direct-io"]));
        assert!(direct(&["--direct-io=true"]));
        assert!(!direct(&["--direct-io=false"]));
        assert!(Cli::try_parse_from(["tributary", "--direct-io=maybe"]).is_err());
    }

    #[test]
    fn s3_endpoints_must_be_http_https_or_a_directory() {
        for (endpoint, ok) in [
            ("http://127.0.0.1:3900", true),
            ("file:///var/lib/objects", true),
            ("https://s3.amazonaws.com", true),
            ("ftp://s3.example.com", false),
            ("s3.example.com", false),
        ] {
            let cli = Cli::try_parse_from(["tributary", "--s3-endpoint", endpoint]).unwrap();
            assert_eq!(cli.serve.validate().is_ok(), ok, "{endpoint}");
        }
    }

    #[test]
    fn cluster_flags_turn_cluster_mode_on() {
        let cli = Cli::try_parse_from(["tributary"]).unwrap();
        assert!(cli.serve.cluster_config().unwrap().is_none());

        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("token");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let args = |extra: &[&str]| {
            let mut v = vec![
                "tributary",
                "--cluster-coordinator",
                "http://orders-0.orders-headless.default.svc:4567/",
                "--cluster-secret-file",
                secret.to_str().unwrap(),
            ];
            v.extend_from_slice(extra);
            Cli::try_parse_from(v).unwrap().serve.cluster_config()
        };
        let member = args(&[
            "--cluster-ordinal",
            "2",
            "--cluster-advertise",
            "http://orders-2.orders-headless.default.svc:4567",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(member.ordinal, 2);
        assert_eq!(member.secret, "s3cret");
        assert_eq!(
            member.coordinator,
            "http://orders-0.orders-headless.default.svc:4567"
        );
        // Ordinal 0 advertises the coordinator URL by default; a member must say its URL.
        let coordinator = args(&["--cluster-ordinal", "0"]).unwrap().unwrap();
        assert_eq!(coordinator.advertise, coordinator.coordinator);
        assert!(args(&["--cluster-ordinal", "1"]).is_err());
        std::fs::write(&secret, "").unwrap();
        assert!(
            args(&["--cluster-ordinal", "0"]).is_err(),
            "a secret is required"
        );
    }

    #[test]
    fn bad_account_id_is_rejected() {
        let cli = Cli::try_parse_from(["tributary", "--account-id", "12"]).unwrap();
        assert!(cli.serve.validate().is_err());
    }

    #[test]
    fn stream_endpoints_are_repeatable_and_validated() {
        let cli = Cli::try_parse_from([
            "tributary",
            "--stream-endpoint",
            "orders=http://orders.team-a.svc:4567",
            "--stream-endpoint",
            "totals=http://127.0.0.1:4568/",
            "--stream-endpoint",
            "clicks=https://kinesis.example.com",
        ])
        .unwrap();
        cli.serve.validate().unwrap();
        let r = cli.serve.remote_config().unwrap();
        assert_eq!(r.endpoints["orders"], "http://orders.team-a.svc:4567");
        assert_eq!(r.endpoints["totals"], "http://127.0.0.1:4568");
        assert_eq!(r.endpoints["clicks"], "https://kinesis.example.com");
        for bad in [
            vec!["--stream-endpoint", "orders"],
            vec!["--stream-endpoint", "orders=ftp://x:21"],
            vec![
                "--stream-endpoint",
                "orders=http://a:1",
                "--stream-endpoint",
                "orders=http://b:1",
            ],
        ] {
            let cli = Cli::try_parse_from(std::iter::once("tributary").chain(bad.clone())).unwrap();
            assert!(cli.serve.validate().is_err(), "{bad:?}");
        }
    }
}
