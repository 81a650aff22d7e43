//! Streams reached through another data plane (`--stream-endpoint NAME=URL`): a lean Kinesis
//! JSON client ([`client`]) and a checkpointable reader of a remote stream's shards that
//! follows their lineage ([`reader`]). Delivery streams and analytics applications whose
//! source, input or output names such a stream use these instead of the local engine; the
//! stream does not need to exist locally.

pub mod client;
pub mod metrics;
pub mod reader;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use client::{KinesisClient, RemoteError};
pub use reader::{Position, ShardReader};

use crate::delivery::client::HttpClient;

/// The access key pair requests to remote endpoints are signed with when the environment has
/// none: a Tributary endpoint without `--auth-file` accepts any well-formed signature.
pub const DUMMY_ACCESS_KEY_ID: &str = "AKIDTRIBUTARYREMOTE";
pub const DUMMY_SECRET_ACCESS_KEY: &str = "tributary-remote-streams";

/// Credentials requests to remote endpoints are signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Sent as `x-amz-security-token` (temporary credentials).
    pub session_token: Option<String>,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            access_key_id: DUMMY_ACCESS_KEY_ID.into(),
            secret_access_key: DUMMY_SECRET_ACCESS_KEY.into(),
            session_token: None,
        }
    }
}

impl Credentials {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`; the dummy pair when
    /// the key pair is not set.
    pub fn from_env() -> Credentials {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => Credentials {
                access_key_id,
                secret_access_key,
                session_token: var("AWS_SESSION_TOKEN"),
            },
            _ => Credentials::default(),
        }
    }
}

/// Settings of the remote streams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteConfig {
    /// Base URL of the Kinesis endpoint serving each remote stream, by stream name.
    pub endpoints: BTreeMap<String, String>,
    /// Region requests are signed for.
    pub region: String,
    pub credentials: Credentials,
}

/// Parses one `NAME=URL` of `--stream-endpoint`.
pub fn parse_endpoint(spec: &str) -> Result<(String, String), String> {
    let (name, url) = spec
        .split_once('=')
        .ok_or_else(|| format!("--stream-endpoint takes NAME=URL, got {spec:?}"))?;
    let (name, url) = (name.trim(), url.trim().trim_end_matches('/'));
    if !crate::services::validate::is_name(name) || name.len() > 128 {
        return Err(format!(
            "--stream-endpoint {spec:?}: stream names match [a-zA-Z0-9_.-]{{1,128}}"
        ));
    }
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return Err(format!(
            "--stream-endpoint {spec:?}: the URL must start with http:// or https://"
        ));
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("--stream-endpoint {spec:?}: {e}"))?;
    if uri.host().is_none() || rest.is_empty() {
        return Err(format!("--stream-endpoint {spec:?}: the URL has no host"));
    }
    Ok((name.to_string(), url.to_string()))
}

/// A stream served by another endpoint.
pub struct RemoteStream {
    pub name: String,
    pub client: KinesisClient,
}

/// Every remote stream, by name.
#[derive(Default)]
pub struct Remotes {
    streams: BTreeMap<String, Arc<RemoteStream>>,
}

impl Remotes {
    pub fn new(cfg: &RemoteConfig) -> Remotes {
        let http = HttpClient::default();
        Remotes {
            streams: cfg
                .endpoints
                .iter()
                .map(|(name, url)| {
                    metrics::global().init(name);
                    let client = KinesisClient::new(
                        name,
                        url,
                        &cfg.region,
                        cfg.credentials.clone(),
                        http.clone(),
                    );
                    (
                        name.clone(),
                        Arc::new(RemoteStream {
                            name: name.clone(),
                            client,
                        }),
                    )
                })
                .collect(),
        }
    }

    /// The remote stream called `name`, when it has an endpoint.
    pub fn get(&self, name: &str) -> Option<Arc<RemoteStream>> {
        self.streams.get(name).cloned()
    }

    /// The remote stream an ARN (or a bare name) refers to.
    pub fn by_arn(&self, arn: &str) -> Option<Arc<RemoteStream>> {
        self.get(arn.rsplit('/').next().unwrap_or_default())
    }

    pub fn list(&self) -> impl Iterator<Item = &Arc<RemoteStream>> {
        self.streams.values()
    }

    /// Logs, once, whether each remote stream can be reached (DescribeStreamSummary). Only
    /// informative: readers and writers retry until the endpoint answers.
    pub fn probe(&self) {
        for s in self.list() {
            let s = s.clone();
            tokio::spawn(async move {
                match s.client.describe_stream_summary(&s.name).await {
                    Ok(sum) => tracing::info!(
                        stream = %s.name,
                        endpoint = %s.client.endpoint(),
                        status = %sum.status,
                        open_shards = sum.open_shard_count,
                        "Remote stream is reachable."
                    ),
                    Err(e) => tracing::warn!(
                        stream = %s.name,
                        endpoint = %s.client.endpoint(),
                        error = %e,
                        "Remote stream is not reachable yet; reads and writes will retry."
                    ),
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_as_name_equals_http_url() {
        assert_eq!(
            parse_endpoint("orders=http://orders.team-a.svc:4567/").unwrap(),
            (
                "orders".to_string(),
                "http://orders.team-a.svc:4567".to_string()
            )
        );
        assert!(parse_endpoint("orders").is_err());
        assert_eq!(
            parse_endpoint("orders=https://orders.example.com")
                .unwrap()
                .1,
            "https://orders.example.com"
        );
        assert!(parse_endpoint("orders=ftp://x:21").is_err());
        assert!(parse_endpoint("orders=https://").is_err());
        assert!(parse_endpoint("bad name=http://x:1").is_err());
        assert!(parse_endpoint("orders=http://").is_err());
    }

    #[test]
    fn streams_are_found_by_name_or_arn() {
        let remotes = Remotes::new(&RemoteConfig {
            endpoints: BTreeMap::from([("orders".into(), "http://127.0.0.1:1".into())]),
            region: "us-east-1".into(),
            credentials: Credentials::default(),
        });
        assert!(remotes
            .by_arn("arn:aws:kinesis:us-east-1:000000000000:stream/orders")
            .is_some());
        assert!(remotes.get("orders").is_some());
        assert!(remotes.get("other").is_none());
    }
}
