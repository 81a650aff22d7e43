//! A lean Kinesis client (JSON 1.1 over HTTP/1.1, SigV4-signed) for the few operations remote
//! streams need: ListShards, GetShardIterator, GetRecords, PutRecords, DescribeStreamSummary.
//!
//! Throttling (`ProvisionedThroughputExceededException`, `LimitExceededException`), server
//! errors and connection failures are retried a few times with jittered exponential backoff;
//! what still fails is returned, never panicked on, so the caller can back off longer.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::Credentials;
use crate::delivery::client::{amz_date_now, hex, sign_v4, HttpClient, Signer};

/// One call answers within this long or the attempt counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// A GetRecords answer holds at most 10 MiB of data, base64-encoded in JSON.
const MAX_RESPONSE: usize = 32 * 1024 * 1024;
/// Attempts per call for retryable failures, and the first backoff (doubled per attempt).
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// ListShards returns at most this many shards per page (AWS's maximum).
const LIST_PAGE: usize = 1000;

/// A failed call to a remote endpoint.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    /// The endpoint could not be reached or did not answer in time.
    #[error("{endpoint} is unreachable: {message}")]
    Unreachable { endpoint: String, message: String },
    /// The endpoint answered with an AWS error (`code` is the bare error name).
    #[error("{code}: {message}")]
    Aws {
        status: u16,
        code: String,
        message: String,
    },
    /// The TLS connection failed: most often the endpoint's certificate was refused.
    #[error("{endpoint}: {message}")]
    Tls { endpoint: String, message: String },
    /// The answer is not a Kinesis API answer.
    #[error("unexpected answer from {endpoint}: {message}")]
    Malformed { endpoint: String, message: String },
}

impl RemoteError {
    /// Whether trying again later can succeed without changing the request.
    pub fn is_transient(&self) -> bool {
        match self {
            // A certificate may be renewed or the CA bundle fixed; readers keep retrying.
            RemoteError::Unreachable { .. } | RemoteError::Tls { .. } => true,
            RemoteError::Aws { status, code, .. } => {
                *status >= 500
                    || matches!(
                        code.as_str(),
                        "ProvisionedThroughputExceededException"
                            | "LimitExceededException"
                            | "ThrottlingException"
                            | "KMSThrottlingException"
                    )
            }
            RemoteError::Malformed { .. } => false,
        }
    }

    /// The AWS error name, when the endpoint sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            RemoteError::Aws { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A shard as ListShards (or GetRecords' ChildShards) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: String,
    pub parent: Option<String>,
    pub adjacent_parent: Option<String>,
    /// The shard was closed by a split or merge (it has an ending sequence number).
    pub closed: bool,
}

impl ShardInfo {
    pub fn parents(&self) -> impl Iterator<Item = &String> {
        self.parent.iter().chain(self.adjacent_parent.iter())
    }
}

/// Where a shard iterator starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IteratorStart {
    TrimHorizon,
    Latest,
    /// The first record that arrived at or after this instant (milliseconds since the epoch).
    AtTimestamp(i64),
    AfterSequenceNumber(String),
    AtSequenceNumber(String),
}

/// A record read from a remote shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRecord {
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Bytes,
    /// ApproximateArrivalTimestamp, in milliseconds since the epoch.
    pub arrival_ms: i64,
}

/// One GetRecords answer.
#[derive(Debug, Clone, Default)]
pub struct RecordsPage {
    pub records: Vec<RemoteRecord>,
    /// Absent once a closed shard is read to its end.
    pub next_iterator: Option<String>,
    pub millis_behind_latest: i64,
    /// The shards that replaced this one, reported with its last page.
    pub child_shards: Vec<ShardInfo>,
}

/// DescribeStreamSummary's essentials.
#[derive(Debug, Clone)]
pub struct StreamSummary {
    pub status: String,
    pub open_shard_count: u64,
}

/// A record to write: partition key and data.
#[derive(Debug, Clone)]
pub struct PutRecord {
    pub partition_key: String,
    pub data: Bytes,
}

/// A Kinesis API endpoint, as used for one remote stream (the label of its metrics).
#[derive(Clone)]
pub struct KinesisClient {
    stream: String,
    endpoint: String,
    host: String,
    region: String,
    credentials: Credentials,
    http: HttpClient,
}

impl KinesisClient {
    /// A client for remote stream `stream` at `endpoint` (`http[s]://host:port`, validated by
    /// [`super::parse_endpoint`]).
    pub fn new(
        stream: &str,
        endpoint: &str,
        region: &str,
        credentials: Credentials,
        http: HttpClient,
    ) -> KinesisClient {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let host = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .unwrap_or(&endpoint)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        KinesisClient {
            stream: stream.to_string(),
            endpoint,
            host,
            region: region.to_string(),
            credentials,
            http,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Lists every shard of `stream` (all pages), oldest first as Kinesis returns them.
    pub async fn list_shards(&self, stream: &str) -> Result<Vec<ShardInfo>, RemoteError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            // With NextToken, ListShards refuses StreamName.
            let body = match &next {
                Some(token) => json!({"NextToken": token, "MaxResults": LIST_PAGE}),
                None => json!({"StreamName": stream, "MaxResults": LIST_PAGE}),
            };
            let page: ListShardsOut = self.call_as("ListShards", body).await?;
            out.extend(page.shards.into_iter().map(ShardInfo::from));
            match page.next_token {
                Some(t) if !t.is_empty() => next = Some(t),
                _ => return Ok(out),
            }
        }
    }

    pub async fn get_shard_iterator(
        &self,
        stream: &str,
        shard_id: &str,
        start: &IteratorStart,
    ) -> Result<String, RemoteError> {
        let mut body = json!({"StreamName": stream, "ShardId": shard_id});
        let o = body.as_object_mut().expect("object");
        let kind = match start {
            IteratorStart::TrimHorizon => "TRIM_HORIZON",
            IteratorStart::Latest => "LATEST",
            IteratorStart::AtTimestamp(ms) => {
                o.insert("Timestamp".into(), json!(*ms as f64 / 1000.0));
                "AT_TIMESTAMP"
            }
            IteratorStart::AfterSequenceNumber(s) => {
                o.insert("StartingSequenceNumber".into(), json!(s));
                "AFTER_SEQUENCE_NUMBER"
            }
            IteratorStart::AtSequenceNumber(s) => {
                o.insert("StartingSequenceNumber".into(), json!(s));
                "AT_SEQUENCE_NUMBER"
            }
        };
        o.insert("ShardIteratorType".into(), json!(kind));
        let out: GetShardIteratorOut = self.call_as("GetShardIterator", body).await?;
        out.shard_iterator.ok_or_else(|| RemoteError::Malformed {
            endpoint: self.endpoint.clone(),
            message: "GetShardIterator returned no ShardIterator".into(),
        })
    }

    pub async fn get_records(
        &self,
        iterator: &str,
        limit: usize,
    ) -> Result<RecordsPage, RemoteError> {
        let out: GetRecordsOut = self
            .call_as(
                "GetRecords",
                json!({"ShardIterator": iterator, "Limit": limit.clamp(1, 10_000)}),
            )
            .await?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut records = Vec::with_capacity(out.records.len());
        for r in out.records {
            let data = b64
                .decode(r.data.as_bytes())
                .map_err(|e| RemoteError::Malformed {
                    endpoint: self.endpoint.clone(),
                    message: format!("record {} has invalid base64 data: {e}", r.sequence_number),
                })?;
            records.push(RemoteRecord {
                sequence_number: r.sequence_number,
                partition_key: r.partition_key,
                data: Bytes::from(data),
                arrival_ms: (r.approximate_arrival_timestamp.unwrap_or(0.0) * 1000.0).round()
                    as i64,
            });
        }
        Ok(RecordsPage {
            records,
            next_iterator: out.next_shard_iterator.filter(|s| !s.is_empty()),
            millis_behind_latest: out.millis_behind_latest.unwrap_or(0),
            child_shards: out
                .child_shards
                .into_iter()
                .map(|c| ShardInfo {
                    // A child has every listed parent; the first is its parent, the second
                    // (after a merge) its adjacent parent.
                    parent: c.parent_shards.first().cloned(),
                    adjacent_parent: c.parent_shards.get(1).cloned(),
                    id: c.shard_id,
                    closed: false,
                })
                .collect(),
        })
    }

    /// Writes `records` in order, retrying only the entries that failed (throttled or
    /// internal errors) a few times; returns, per record, whether it was written. An error is
    /// returned only when no attempt reached the endpoint.
    pub async fn put_records(
        &self,
        stream: &str,
        records: &[PutRecord],
    ) -> Result<Vec<bool>, RemoteError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut written = vec![false; records.len()];
        let mut todo: Vec<usize> = (0..records.len()).collect();
        let mut backoff = FIRST_BACKOFF;
        for attempt in 0..ATTEMPTS {
            if todo.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(jitter(backoff)).await;
                backoff *= 2;
            }
            let entries: Vec<Value> = todo
                .iter()
                .map(|&i| {
                    json!({
                        "PartitionKey": records[i].partition_key,
                        "Data": b64.encode(&records[i].data),
                    })
                })
                .collect();
            let out: PutRecordsOut = match self
                .call_as(
                    "PutRecords",
                    json!({"StreamName": stream, "Records": entries}),
                )
                .await
            {
                Ok(out) => out,
                Err(e) if e.is_transient() && attempt + 1 < ATTEMPTS => continue,
                Err(e) if written.iter().any(|w| *w) => {
                    tracing::debug!(error = %e, "PutRecords retry failed; keeping the rest pending.");
                    break;
                }
                Err(e) => return Err(e),
            };
            if out.records.len() != todo.len() {
                return Err(RemoteError::Malformed {
                    endpoint: self.endpoint.clone(),
                    message: format!(
                        "PutRecords answered {} results for {} records",
                        out.records.len(),
                        todo.len()
                    ),
                });
            }
            let mut left = Vec::new();
            for (&i, r) in todo.iter().zip(&out.records) {
                if r.error_code.is_none() && r.sequence_number.is_some() {
                    written[i] = true;
                } else {
                    left.push(i);
                }
            }
            super::metrics::global()
                .put_entries_refused
                .with_label_values(&[&self.stream])
                .inc_by(left.len() as u64);
            todo = left;
        }
        Ok(written)
    }

    pub async fn describe_stream_summary(
        &self,
        stream: &str,
    ) -> Result<StreamSummary, RemoteError> {
        let out: DescribeSummaryOut = self
            .call_as("DescribeStreamSummary", json!({"StreamName": stream}))
            .await?;
        Ok(StreamSummary {
            status: out.stream_description_summary.stream_status,
            open_shard_count: out.stream_description_summary.open_shard_count,
        })
    }

    async fn call_as<T: for<'de> Deserialize<'de>>(
        &self,
        operation: &str,
        body: Value,
    ) -> Result<T, RemoteError> {
        let raw = self.call(operation, body).await?;
        serde_json::from_slice(&raw).map_err(|e| RemoteError::Malformed {
            endpoint: self.endpoint.clone(),
            message: format!("{operation}: {e}"),
        })
    }

    /// Sends one operation, retrying transient failures with backoff.
    async fn call(&self, operation: &str, body: Value) -> Result<Bytes, RemoteError> {
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send(operation, body.clone()).await;
            super::metrics::global().record(&self.stream, operation, result.as_ref().map(|_| ()));
            match result {
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tracing::debug!(operation, error = %e, "Retrying a remote Kinesis call.");
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff *= 2;
                }
                other => return other,
            }
        }
    }

    /// The signed HTTP request of one operation.
    fn request(&self, operation: &str, body: Bytes) -> Result<Request<Full<Bytes>>, RemoteError> {
        let amz_date = amz_date_now();
        let target = format!("Kinesis_20131202.{operation}");
        let content_type = "application/x-amz-json-1.1";
        let payload_hash = hex(&Sha256::digest(&body));
        let mut signed = vec![
            ("content-type", content_type),
            ("host", self.host.as_str()),
            ("x-amz-date", amz_date.as_str()),
            ("x-amz-target", target.as_str()),
        ];
        if let Some(t) = &self.credentials.session_token {
            signed.push(("x-amz-security-token", t.as_str()));
        }
        let authorization = sign_v4(
            &Signer {
                access_key_id: &self.credentials.access_key_id,
                secret_access_key: &self.credentials.secret_access_key,
                region: &self.region,
                service: "kinesis",
            },
            "POST",
            "/",
            &amz_date,
            &signed,
            &payload_hash,
        );
        let mut req = Request::post(format!("{}/", self.endpoint));
        for (k, v) in &signed {
            req = req.header(*k, *v);
        }
        req.header("authorization", authorization)
            .body(Full::new(body))
            .map_err(|e| RemoteError::Malformed {
                endpoint: self.endpoint.clone(),
                message: e.to_string(),
            })
    }

    async fn send(&self, operation: &str, body: Bytes) -> Result<Bytes, RemoteError> {
        let req = self.request(operation, body)?;
        let resp = self
            .http
            .send(req, CALL_TIMEOUT, MAX_RESPONSE)
            .await
            .map_err(|e| {
                let endpoint = self.endpoint.clone();
                if e.tls {
                    RemoteError::Tls {
                        endpoint,
                        message: e.message,
                    }
                } else {
                    RemoteError::Unreachable {
                        endpoint,
                        message: e.message,
                    }
                }
            })?;
        if resp.status.is_success() {
            return Ok(resp.body);
        }
        Err(aws_error(resp.status.as_u16(), &resp.headers, &resp.body))
    }
}

/// The error of a non-2xx answer: `__type` (possibly `namespace#Name`) and `message`, or the
/// `x-amzn-ErrorType` header.
fn aws_error(status: u16, headers: &http::HeaderMap, body: &[u8]) -> RemoteError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = v
        .get("__type")
        .and_then(Value::as_str)
        .or_else(|| {
            headers
                .get("x-amzn-errortype")
                .and_then(|h| h.to_str().ok())
        })
        .map(|t| {
            let t = t.split(':').next().unwrap_or(t);
            t.rsplit('#').next().unwrap_or(t).to_string()
        })
        .unwrap_or_else(|| format!("HTTP{status}"));
    let message = v
        .get("message")
        .or_else(|| v.get("Message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    RemoteError::Aws {
        status,
        code,
        message,
    }
}

/// ±20 % of `d`, so many readers backing off together do not retry in lockstep.
pub fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.8 + rand::random::<f64>() * 0.4)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListShardsOut {
    #[serde(default)]
    shards: Vec<ShardOut>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ShardOut {
    shard_id: String,
    parent_shard_id: Option<String>,
    adjacent_parent_shard_id: Option<String>,
    sequence_number_range: Option<SequenceRange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SequenceRange {
    ending_sequence_number: Option<String>,
}

impl From<ShardOut> for ShardInfo {
    fn from(s: ShardOut) -> ShardInfo {
        ShardInfo {
            closed: s
                .sequence_number_range
                .is_some_and(|r| r.ending_sequence_number.is_some()),
            id: s.shard_id,
            parent: s.parent_shard_id,
            adjacent_parent: s.adjacent_parent_shard_id,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetShardIteratorOut {
    shard_iterator: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetRecordsOut {
    #[serde(default)]
    records: Vec<RecordOut>,
    next_shard_iterator: Option<String>,
    millis_behind_latest: Option<i64>,
    #[serde(default)]
    child_shards: Vec<ChildShardOut>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordOut {
    sequence_number: String,
    #[serde(default)]
    partition_key: String,
    data: String,
    approximate_arrival_timestamp: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChildShardOut {
    shard_id: String,
    #[serde(default)]
    parent_shards: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsOut {
    records: Vec<PutResultOut>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutResultOut {
    sequence_number: Option<String>,
    error_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeSummaryOut {
    stream_description_summary: SummaryOut,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SummaryOut {
    stream_status: String,
    #[serde(default)]
    open_shard_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_lose_their_namespace_and_throttling_is_transient() {
        let e = aws_error(
            400,
            &http::HeaderMap::new(),
            br#"{"__type":"com.amazonaws.kinesis.v20131202#ProvisionedThroughputExceededException","message":"Rate exceeded for shard"}"#,
        );
        assert_eq!(e.code(), Some("ProvisionedThroughputExceededException"));
        assert!(e.is_transient());
        let e = aws_error(
            400,
            &http::HeaderMap::new(),
            br#"{"__type":"ResourceNotFoundException","message":"Stream orders under account 000000000000 not found."}"#,
        );
        assert_eq!(e.code(), Some("ResourceNotFoundException"));
        assert!(!e.is_transient());
        assert!(aws_error(503, &http::HeaderMap::new(), b"").is_transient());
    }

    #[test]
    fn requests_carry_a_signature_the_kinesis_verifier_accepts() {
        use crate::protocol::sigv4::{verify, KeyStore};
        let client = |secret: &str| {
            KinesisClient::new(
                "orders",
                "http://orders.team-a.svc:4567",
                "eu-west-1",
                Credentials {
                    access_key_id: "AKIDREMOTE".into(),
                    secret_access_key: secret.into(),
                    session_token: None,
                },
                HttpClient::default(),
            )
        };
        let mut keys = KeyStore::new();
        keys.insert("AKIDREMOTE", "right-secret", None);
        let body = Bytes::from_static(br#"{"StreamName":"orders"}"#);
        let check = |secret: &str| {
            let req = client(secret).request("ListShards", body.clone()).unwrap();
            assert_eq!(req.headers()["x-amz-target"], "Kinesis_20131202.ListShards");
            let (parts, _) = req.into_parts();
            verify(&parts, &body, &keys, std::time::SystemTime::now())
        };
        check("right-secret").unwrap();
        assert!(check("wrong-secret").is_err());
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_an_error_not_a_panic() {
        // Port 1 on loopback refuses connections.
        let c = KinesisClient::new(
            "orders",
            "http://127.0.0.1:1",
            "us-east-1",
            Credentials::default(),
            HttpClient::default(),
        );
        let e = c.list_shards("orders").await.unwrap_err();
        assert!(matches!(e, RemoteError::Unreachable { .. }), "{e}");
    }
}
