//! Operator settings: flags of `tributary-operator run`, each also read from the environment
//! (`TRIBUTARY_OPERATOR_<FLAG>`), validated once at start-up.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use tributary_api::{Quantity, ResourceRequirements};

/// Settings of a running operator.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Data-plane image run by each Stream's StatefulSet.
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_DATAPLANE_IMAGE",
        default_value = "ghcr.io/tributary-dev/tributary:latest"
    )]
    pub dataplane_image: String,

    /// Pull policy of the data-plane image.
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_DATAPLANE_PULL_POLICY",
        default_value = "IfNotPresent"
    )]
    pub dataplane_pull_policy: String,

    /// Volume size of a data-plane pod when the Stream does not set `storage.size`.
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_DEFAULT_STORAGE_SIZE",
        default_value = "10Gi"
    )]
    pub default_storage_size: String,

    /// CPU request of a data-plane pod when the Stream does not set `resources`.
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_DEFAULT_CPU_REQUEST",
        default_value = "100m"
    )]
    pub default_cpu_request: String,

    /// Memory request (and limit) of a data-plane pod when the Stream does not set `resources`.
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_DEFAULT_MEMORY",
        default_value = "256Mi"
    )]
    pub default_memory: String,

    /// AWS region the data plane reports in ARNs.
    #[arg(long, env = "TRIBUTARY_OPERATOR_REGION", default_value = "us-east-1")]
    pub region: String,

    /// AWS account id the data plane reports in ARNs.
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_ACCOUNT_ID",
        default_value = "000000000000"
    )]
    pub account_id: String,

    /// How the operator reaches a stream's Kinesis API; `{name}` and `{namespace}` are replaced
    /// by the Stream's. Change it only to run the operator outside the cluster.
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_DATAPLANE_ENDPOINT",
        default_value = "http://{name}.{namespace}.svc:4567"
    )]
    pub dataplane_endpoint: String,

    /// How the operator reaches the metrics port of pod 0 (the coordinator) of a multi-pod
    /// stream (`shardsPerPod`), whose `GET /cluster` says which pods hold shards; `{name}` and
    /// `{namespace}` are replaced by the Stream's. Change it only to run the operator outside
    /// the cluster.
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_DATAPLANE_COORDINATOR_METRICS",
        default_value = "http://{name}-0.{name}-pods.{namespace}.svc:9567"
    )]
    pub dataplane_coordinator_metrics: String,

    /// Connect somewhere else than a data-plane endpoint names, like `curl --connect-to`:
    /// comma-separated `HOST:PORT=ADDR:PORT` entries. A call to an endpoint whose host and port
    /// are `HOST:PORT` connects to `ADDR:PORT`; the `Host` header and `status.endpoint` keep the
    /// Service's address. Only for an operator outside the cluster (port-forwards) and the local
    /// end-to-end test; empty in a cluster.
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_DATAPLANE_CONNECT_TO",
        value_delimiter = ',',
        default_value = ""
    )]
    pub dataplane_connect_to: Vec<String>,

    /// Timeout of one data-plane call, in seconds.
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_DATAPLANE_TIMEOUT_SECONDS",
        default_value_t = 10
    )]
    pub dataplane_timeout_seconds: u64,

    /// Namespaces to watch, comma-separated; empty watches all namespaces.
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub watch_namespaces: Vec<String>,

    /// Seconds between resyncs of a converged resource (drift in the data plane is reverted on
    /// resync).
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_SYNC_INTERVAL_SECONDS",
        default_value_t = 60
    )]
    pub sync_interval_seconds: u64,

    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_METRICS_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_listen: SocketAddr,

    /// Run only while holding the Lease `--lease-name` (needed when more than one replica runs).
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_LEADER_ELECTION",
        default_value_t = false
    )]
    pub leader_election: bool,

    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "TRIBUTARY_OPERATOR_LEASE_NAME",
        default_value = "tributary-operator"
    )]
    pub lease_name: String,

    /// Namespace of the Lease (the operator's own namespace; `POD_NAMESPACE` in the chart).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,

    /// Identity in the Lease and in events (the pod name; `POD_NAME` in the chart).
    #[arg(long, env = "POD_NAME", default_value = "tributary-operator")]
    pub identity: String,
}

/// A `Config` whose values were checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The raw flags.
    pub config: Config,
    /// `--dataplane-connect-to`, parsed: `host:port` as an endpoint names it → `addr:port` to
    /// connect to.
    pub connect_to: BTreeMap<String, String>,
}

/// An invalid setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {flag}: {message}")]
pub struct ConfigError {
    /// The flag.
    pub flag: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Config {
    /// Checks the values once, at start-up.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        if self.dataplane_image.trim().is_empty() {
            return Err(ConfigError {
                flag: "--dataplane-image",
                message: "must not be empty".into(),
            });
        }
        if !self.dataplane_endpoint.starts_with("http://") {
            return Err(ConfigError {
                flag: "--dataplane-endpoint",
                message: "must be an http:// URL template".into(),
            });
        }
        if !self.dataplane_coordinator_metrics.starts_with("http://") {
            return Err(ConfigError {
                flag: "--dataplane-coordinator-metrics",
                message: "must be an http:// URL template".into(),
            });
        }
        if !matches!(
            self.dataplane_pull_policy.as_str(),
            "Always" | "IfNotPresent" | "Never"
        ) {
            return Err(ConfigError {
                flag: "--dataplane-pull-policy",
                message: "must be Always, IfNotPresent or Never".into(),
            });
        }
        if self.sync_interval_seconds == 0 {
            return Err(ConfigError {
                flag: "--sync-interval-seconds",
                message: "must be positive".into(),
            });
        }
        if self.dataplane_timeout_seconds == 0 {
            return Err(ConfigError {
                flag: "--dataplane-timeout-seconds",
                message: "must be positive".into(),
            });
        }
        let connect_to = parse_connect_to(&self.dataplane_connect_to)?;
        Ok(Settings {
            config: self,
            connect_to,
        })
    }
}

/// Parses `--dataplane-connect-to` entries (`HOST:PORT=ADDR:PORT`; blanks ignored). Hosts are
/// case-insensitive, so keys are lowercased.
fn parse_connect_to(entries: &[String]) -> Result<BTreeMap<String, String>, ConfigError> {
    let bad = |entry: &str, why: &str| ConfigError {
        flag: "--dataplane-connect-to",
        message: format!("{entry:?}: {why}; expected HOST:PORT=ADDR:PORT"),
    };
    let host_port = |s: &str| -> bool {
        s.rsplit_once(':').is_some_and(|(h, p)| {
            !h.is_empty() && !h.contains(['/', '=', ' ']) && p.parse::<u16>().is_ok_and(|p| p > 0)
        })
    };
    let mut map = BTreeMap::new();
    for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let (from, to) = entry.split_once('=').ok_or_else(|| bad(entry, "no '='"))?;
        if !host_port(from) {
            return Err(bad(entry, "the left side is not HOST:PORT"));
        }
        if !host_port(to) {
            return Err(bad(entry, "the right side is not ADDR:PORT"));
        }
        if map
            .insert(from.to_ascii_lowercase(), to.to_string())
            .is_some()
        {
            return Err(bad(entry, "HOST:PORT given twice"));
        }
    }
    Ok(map)
}

impl Settings {
    /// The Kinesis endpoint of a stream's pods.
    pub fn endpoint(&self, name: &str, namespace: &str) -> String {
        self.config
            .dataplane_endpoint
            .replace("{name}", name)
            .replace("{namespace}", namespace)
    }

    /// The metrics endpoint of pod 0 of a multi-pod stream.
    pub fn coordinator_metrics(&self, name: &str, namespace: &str) -> String {
        self.config
            .dataplane_coordinator_metrics
            .replace("{name}", name)
            .replace("{namespace}", namespace)
    }

    /// Resync period of converged resources.
    pub fn sync_interval(&self) -> Duration {
        Duration::from_secs(self.config.sync_interval_seconds)
    }

    /// Data-plane call timeout.
    pub fn dataplane_timeout(&self) -> Duration {
        Duration::from_secs(self.config.dataplane_timeout_seconds)
    }

    /// Namespaces to watch; `None` for all.
    pub fn namespaces(&self) -> Option<Vec<String>> {
        let ns: Vec<String> = self
            .config
            .watch_namespaces
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        (!ns.is_empty()).then_some(ns)
    }

    /// Resources of a data-plane pod when the Stream sets none.
    pub fn default_resources(&self) -> ResourceRequirements {
        let c = &self.config;
        ResourceRequirements {
            requests: [
                (
                    "cpu".to_string(),
                    Quantity::from(c.default_cpu_request.as_str()),
                ),
                (
                    "memory".to_string(),
                    Quantity::from(c.default_memory.as_str()),
                ),
            ]
            .into(),
            limits: [(
                "memory".to_string(),
                Quantity::from(c.default_memory.as_str()),
            )]
            .into(),
        }
    }

    /// Settings for tests: every default.
    #[cfg(test)]
    pub fn test() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        Cli::parse_from(["test"]).config.validate().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_defaults_parse_and_validate() {
        let s = Settings::test();
        assert_eq!(s.endpoint("orders", "prod"), "http://orders.prod.svc:4567");
        assert_eq!(
            s.coordinator_metrics("orders", "prod"),
            "http://orders-0.orders-pods.prod.svc:9567"
        );
        assert_eq!(s.namespaces(), None);
        assert_eq!(s.sync_interval(), Duration::from_secs(60));
    }

    #[test]
    fn connect_to_entries_map_service_addresses_to_local_ones() {
        let mut c = Settings::test().config;
        c.dataplane_connect_to = vec![
            "Orders.default.svc:4567=127.0.0.1:40001".into(),
            " clicks.default.svc:4567=[::1]:40002 ".into(),
            "".into(),
        ];
        let s = c.validate().unwrap();
        assert_eq!(
            s.connect_to,
            BTreeMap::from([
                (
                    "clicks.default.svc:4567".to_string(),
                    "[::1]:40002".to_string()
                ),
                (
                    "orders.default.svc:4567".to_string(),
                    "127.0.0.1:40001".to_string()
                ),
            ])
        );
        assert!(Settings::test().connect_to.is_empty());
    }

    #[test]
    fn malformed_connect_to_entries_are_rejected_at_start_up() {
        for bad in [
            "orders.default.svc:4567",
            "orders.default.svc=127.0.0.1:1",
            "orders.default.svc:4567=127.0.0.1",
            "orders.default.svc:4567=127.0.0.1:0",
            "http://orders:4567=127.0.0.1:1",
        ] {
            let mut c = Settings::test().config;
            c.dataplane_connect_to = vec![bad.into()];
            let e = c.validate().unwrap_err();
            assert_eq!(e.flag, "--dataplane-connect-to", "{bad}");
        }
        let mut c = Settings::test().config;
        c.dataplane_connect_to = vec!["a:1=b:2".into(), "A:1=c:3".into()];
        assert!(c.validate().unwrap_err().message.contains("twice"));
    }

    #[test]
    fn an_https_endpoint_template_is_rejected() {
        let mut c = Settings::test().config;
        c.dataplane_endpoint = "https://{name}:4567".into();
        assert_eq!(c.validate().unwrap_err().flag, "--dataplane-endpoint");
    }
}
