//! A small typed client for the JSON 1.1 APIs of the data-plane pods: the control-plane calls
//! the operator makes to Kinesis (create, describe, reshard, retention, tags, encryption,
//! consumers, delete), Firehose (describe and delete a delivery stream) and Analytics
//! (describe and delete an application). Plain HTTP inside the cluster; no AWS SDK.

use std::{collections::BTreeMap, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Value};

/// `X-Amz-Target` prefix of the Kinesis Data Streams API.
const TARGET_PREFIX: &str = "Kinesis_20131202";
/// `X-Amz-Target` prefix of the Firehose API.
const FIREHOSE_PREFIX: &str = "Firehose_20150804";
/// `X-Amz-Target` prefix of the Kinesis Data Analytics (SQL, v1) API.
const ANALYTICS_PREFIX: &str = "KinesisAnalytics_20150814";

/// A failed data-plane call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection could be made, or the call timed out: the pods are starting, moving or
    /// gone.
    #[error("data plane unreachable: {0}")]
    Unreachable(String),
    /// The data plane answered with an AWS error body.
    #[error("{type_} (HTTP {status}): {message}")]
    Aws {
        /// HTTP status.
        status: u16,
        /// The bare AWS error name, for example `ResourceNotFoundException`.
        type_: String,
        /// AWS's message.
        message: String,
    },
    /// The answer was not the JSON the operation returns.
    #[error("unexpected response to {op}: {detail}")]
    Decode {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl ClientError {
    /// Whether this is AWS's `ResourceNotFoundException`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Aws { type_, .. } if type_ == "ResourceNotFoundException")
    }

    /// Whether this is AWS's `ResourceInUseException` (the stream is busy, for example
    /// UPDATING).
    pub fn is_in_use(&self) -> bool {
        matches!(self, ClientError::Aws { type_, .. } if type_ == "ResourceInUseException")
    }

    /// A bounded CamelCase label for metrics and conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            ClientError::Unreachable(_) => "DataPlaneUnreachable",
            ClientError::Decode { .. } => "DataPlaneProtocolError",
            ClientError::Aws { type_, .. } => match type_.as_str() {
                "ResourceNotFoundException" => "ResourceNotFound",
                "ResourceInUseException" => "ResourceInUse",
                "LimitExceededException" => "LimitExceeded",
                "InvalidArgumentException" => "InvalidArgument",
                "ValidationException" => "ValidationError",
                "ProvisionedThroughputExceededException" | "ThrottlingException" => "Throttled",
                _ => "DataPlaneError",
            },
        }
    }

    /// Whether a retry can succeed without a spec change: connection problems, throttling,
    /// busy streams and server errors are transient; validation errors are not.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable(_) | ClientError::Decode { .. } => true,
            ClientError::Aws { status, type_, .. } => {
                *status >= 500
                    || matches!(
                        type_.as_str(),
                        "ResourceInUseException"
                            | "LimitExceededException"
                            | "ResourceNotFoundException"
                            | "ProvisionedThroughputExceededException"
                            | "ThrottlingException"
                    )
            }
        }
    }
}

/// `StreamDescriptionSummary` of DescribeStreamSummary (the fields the operator reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSummary {
    /// Stream name.
    pub stream_name: String,
    /// Stream ARN.
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    /// CREATING, ACTIVE, UPDATING or DELETING.
    pub stream_status: String,
    /// Capacity mode.
    #[serde(default)]
    pub stream_mode_details: Option<StreamModeDetails>,
    /// Retention period in hours.
    pub retention_period_hours: i32,
    /// Number of open shards.
    pub open_shard_count: i32,
    /// Number of registered consumers.
    #[serde(default)]
    pub consumer_count: Option<i32>,
    /// `NONE` or `KMS`.
    #[serde(default)]
    pub encryption_type: Option<String>,
    /// KMS key id.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Largest accepted record, in KiB.
    #[serde(default, rename = "MaxRecordSizeInKiB")]
    pub max_record_size_in_kib: Option<i32>,
}

impl StreamSummary {
    /// `PROVISIONED` or `ON_DEMAND` (PROVISIONED when the data plane does not say).
    pub fn mode(&self) -> &str {
        self.stream_mode_details
            .as_ref()
            .map(|d| d.stream_mode.as_str())
            .unwrap_or("PROVISIONED")
    }
}

/// `StreamModeDetails`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    /// `PROVISIONED` or `ON_DEMAND`.
    pub stream_mode: String,
}

/// `ConsumerDescription` of DescribeStreamConsumer (and `Consumer` of RegisterStreamConsumer).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerDescription {
    /// Consumer name.
    pub consumer_name: String,
    /// Consumer ARN.
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    /// CREATING, ACTIVE or DELETING.
    pub consumer_status: String,
}

/// `GET /cluster` of a multi-pod stream's data plane: the coordinator's member table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    /// Whether the pod that answered is the coordinator (ordinal 0).
    pub coordinator: bool,
    /// Ordinal of the pod that answered.
    pub ordinal: i32,
    /// Version of the stream metadata the answer reflects.
    #[serde(default)]
    pub version: u64,
    /// Every pod that joined, live or not.
    #[serde(default)]
    pub members: Vec<ClusterMember>,
}

/// One pod of a multi-pod stream as the coordinator sees it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterMember {
    /// The pod's StatefulSet ordinal.
    pub ordinal: i32,
    /// Its advertised API URL.
    #[serde(default)]
    pub url: String,
    /// Whether it is heartbeating.
    #[serde(default)]
    pub live: bool,
    /// Open shards it owns.
    #[serde(default)]
    pub open_shards: i64,
    /// Closed shards (still within retention) it holds.
    #[serde(default)]
    pub closed_shards: i64,
}

impl ClusterState {
    /// The fewest replicas that keep every pod holding shard data: the highest ordinal owning
    /// an open or closed shard, plus one (0 when no pod holds any).
    pub fn data_holding_replicas(&self) -> i32 {
        self.members
            .iter()
            .filter(|m| m.open_shards + m.closed_shards > 0)
            .map(|m| m.ordinal + 1)
            .max()
            .unwrap_or(0)
    }

    /// Ordinals below `replicas` that are live members.
    pub fn live_below(&self, replicas: i32) -> i32 {
        self.members
            .iter()
            .filter(|m| m.live && m.ordinal < replicas)
            .count() as i32
    }
}

/// What CreateStream asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateStream<'a> {
    /// Stream name.
    pub name: &'a str,
    /// Shards, for PROVISIONED.
    pub shard_count: Option<i32>,
    /// `PROVISIONED` or `ON_DEMAND`.
    pub mode: &'a str,
    /// Tags set at creation.
    pub tags: &'a BTreeMap<String, String>,
}

/// Client for one data plane at a time; the endpoint is passed per call because every stream
/// has its own pods.
#[derive(Clone)]
pub struct DataPlaneClient {
    http: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    /// `host:port` an endpoint names → `addr:port` to connect to (`--dataplane-connect-to`).
    connect_to: BTreeMap<String, String>,
}

impl std::fmt::Debug for DataPlaneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlaneClient")
            .field("timeout", &self.timeout)
            .field("connect_to", &self.connect_to)
            .finish()
    }
}

impl DataPlaneClient {
    /// A client whose calls give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            connect_to: BTreeMap::new(),
        }
    }

    /// The same client, connecting to `addr:port` whenever an endpoint names a `host:port`
    /// (lowercase) that `map` holds; the request keeps the endpoint's `Host` header.
    pub fn with_connect_to(mut self, map: BTreeMap<String, String>) -> Self {
        self.connect_to = map;
        self
    }

    /// The URI to connect to for `endpoint`, and the `Host` header to send when it differs
    /// from that URI's authority.
    fn route(&self, endpoint: &str) -> Result<(http::Uri, Option<String>), ClientError> {
        let invalid = |e: &dyn std::fmt::Display| {
            ClientError::Unreachable(format!("invalid endpoint {endpoint}: {e}"))
        };
        let uri: http::Uri = endpoint.parse().map_err(|e| invalid(&e))?;
        let Some(authority) = uri.authority().cloned() else {
            return Ok((uri, None));
        };
        let key = format!(
            "{}:{}",
            authority.host().to_ascii_lowercase(),
            authority.port_u16().unwrap_or(80)
        );
        let Some(addr) = self.connect_to.get(&key) else {
            return Ok((uri, None));
        };
        let mut parts = uri.into_parts();
        parts.authority = Some(addr.parse().map_err(|e| invalid(&e))?);
        let uri = http::Uri::from_parts(parts).map_err(|e| invalid(&e))?;
        Ok((uri, Some(authority.to_string())))
    }

    /// Calls `op` on the Kinesis API at `endpoint` (for example `http://orders.default.svc:4567`).
    pub async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        op: &'static str,
        body: &Value,
    ) -> Result<T, ClientError> {
        self.call_api(endpoint, TARGET_PREFIX, op, body).await
    }

    /// Calls `op` of the API whose `X-Amz-Target` prefix is `prefix` (Kinesis, Firehose or
    /// Analytics; one data-plane port serves all three).
    pub async fn call_api<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        prefix: &str,
        op: &'static str,
        body: &Value,
    ) -> Result<T, ClientError> {
        let (uri, host) = self.route(endpoint)?;
        let mut req = http::Request::post(uri);
        if let Some(host) = host {
            req = req.header(http::header::HOST, host);
        }
        let req = req
            .header("X-Amz-Target", format!("{prefix}.{op}"))
            .header("Content-Type", "application/x-amz-json-1.1")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| ClientError::Unreachable(format!("invalid endpoint {endpoint}: {e}")))?;
        let fut = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| ClientError::Unreachable(format!("{endpoint}: {e}")))?;
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Unreachable(format!("{endpoint}: reading body: {e}")))?
                .to_bytes();
            Ok::<_, ClientError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ClientError::Unreachable(format!("{endpoint}: {op} timed out")))??;
        if status >= 300 {
            return Err(aws_error(status, &bytes));
        }
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"{}")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            op,
            detail: e.to_string(),
        })
    }

    /// `GET /cluster` on the metrics port of a multi-pod stream's pod (`endpoint` is
    /// `http://HOST:9567`): the coordinator's view of the stream's pods and the shards each
    /// holds. Read-only and unauthenticated; only the operator calls it.
    pub async fn cluster_state(&self, endpoint: &str) -> Result<ClusterState, ClientError> {
        const OP: &str = "GET /cluster";
        let url = format!("{}/cluster", endpoint.trim_end_matches('/'));
        let (uri, host) = self.route(&url)?;
        let mut req = http::Request::get(uri);
        if let Some(host) = host {
            req = req.header(http::header::HOST, host);
        }
        let req = req
            .header("Accept", "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Unreachable(format!("invalid endpoint {endpoint}: {e}")))?;
        let fut = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| ClientError::Unreachable(format!("{url}: {e}")))?;
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Unreachable(format!("{url}: reading body: {e}")))?
                .to_bytes();
            Ok::<_, ClientError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ClientError::Unreachable(format!("{url} timed out")))??;
        if status == 404 || status >= 500 {
            // Not (yet) in cluster mode, or not serving: the pods are starting or changing.
            return Err(ClientError::Unreachable(format!("{url}: HTTP {status}")));
        }
        if status >= 300 {
            return Err(ClientError::Decode {
                op: OP,
                detail: format!("HTTP {status}"),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            op: OP,
            detail: e.to_string(),
        })
    }

    /// CreateStream.
    pub async fn create_stream(
        &self,
        endpoint: &str,
        req: &CreateStream<'_>,
    ) -> Result<(), ClientError> {
        let mut body = json!({
            "StreamName": req.name,
            "StreamModeDetails": {"StreamMode": req.mode},
        });
        if let Some(n) = req.shard_count {
            body["ShardCount"] = json!(n);
        }
        if !req.tags.is_empty() {
            body["Tags"] = json!(req.tags);
        }
        self.call::<Value>(endpoint, "CreateStream", &body)
            .await
            .map(drop)
    }

    /// DescribeStreamSummary.
    pub async fn describe_stream_summary(
        &self,
        endpoint: &str,
        name: &str,
    ) -> Result<StreamSummary, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Out {
            stream_description_summary: StreamSummary,
        }
        let out: Out = self
            .call(
                endpoint,
                "DescribeStreamSummary",
                &json!({"StreamName": name}),
            )
            .await?;
        Ok(out.stream_description_summary)
    }

    /// UpdateShardCount with uniform scaling.
    pub async fn update_shard_count(
        &self,
        endpoint: &str,
        name: &str,
        target: i32,
    ) -> Result<(), ClientError> {
        let body = json!({"StreamName": name, "TargetShardCount": target, "ScalingType": "UNIFORM_SCALING"});
        self.call::<Value>(endpoint, "UpdateShardCount", &body)
            .await
            .map(drop)
    }

    /// UpdateStreamMode.
    pub async fn update_stream_mode(
        &self,
        endpoint: &str,
        arn: &str,
        mode: &str,
    ) -> Result<(), ClientError> {
        let body = json!({"StreamARN": arn, "StreamModeDetails": {"StreamMode": mode}});
        self.call::<Value>(endpoint, "UpdateStreamMode", &body)
            .await
            .map(drop)
    }

    /// IncreaseStreamRetentionPeriod or DecreaseStreamRetentionPeriod, whichever moves
    /// `current` to `target`.
    pub async fn set_retention(
        &self,
        endpoint: &str,
        name: &str,
        current: i32,
        target: i32,
    ) -> Result<(), ClientError> {
        let op = if target > current {
            "IncreaseStreamRetentionPeriod"
        } else {
            "DecreaseStreamRetentionPeriod"
        };
        let body = json!({"StreamName": name, "RetentionPeriodHours": target});
        self.call::<Value>(endpoint, op, &body).await.map(drop)
    }

    /// ListTagsForStream (all pages).
    pub async fn list_tags(
        &self,
        endpoint: &str,
        name: &str,
    ) -> Result<BTreeMap<String, String>, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Tag {
            key: String,
            #[serde(default)]
            value: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Out {
            tags: Vec<Tag>,
            #[serde(default)]
            has_more_tags: bool,
        }
        let mut tags = BTreeMap::new();
        let mut start: Option<String> = None;
        loop {
            let mut body = json!({"StreamName": name});
            if let Some(s) = &start {
                body["ExclusiveStartTagKey"] = json!(s);
            }
            let out: Out = self.call(endpoint, "ListTagsForStream", &body).await?;
            let last = out.tags.last().map(|t| t.key.clone());
            for t in out.tags {
                tags.insert(t.key, t.value.unwrap_or_default());
            }
            match (out.has_more_tags, last) {
                (true, Some(last)) => start = Some(last),
                _ => return Ok(tags),
            }
        }
    }

    /// AddTagsToStream.
    pub async fn add_tags(
        &self,
        endpoint: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ClientError> {
        let body = json!({"StreamName": name, "Tags": tags});
        self.call::<Value>(endpoint, "AddTagsToStream", &body)
            .await
            .map(drop)
    }

    /// RemoveTagsFromStream.
    pub async fn remove_tags(
        &self,
        endpoint: &str,
        name: &str,
        keys: &[String],
    ) -> Result<(), ClientError> {
        let body = json!({"StreamName": name, "TagKeys": keys});
        self.call::<Value>(endpoint, "RemoveTagsFromStream", &body)
            .await
            .map(drop)
    }

    /// StartStreamEncryption (KMS) or StopStreamEncryption.
    pub async fn set_encryption(
        &self,
        endpoint: &str,
        name: &str,
        kms_key: Option<&str>,
        current_key: Option<&str>,
    ) -> Result<(), ClientError> {
        match kms_key {
            Some(key) => {
                let body = json!({"StreamName": name, "EncryptionType": "KMS", "KeyId": key});
                self.call::<Value>(endpoint, "StartStreamEncryption", &body)
                    .await
                    .map(drop)
            }
            None => {
                let body = json!({"StreamName": name, "EncryptionType": "KMS", "KeyId": current_key.unwrap_or_default()});
                self.call::<Value>(endpoint, "StopStreamEncryption", &body)
                    .await
                    .map(drop)
            }
        }
    }

    /// UpdateMaxRecordSize.
    pub async fn update_max_record_size(
        &self,
        endpoint: &str,
        arn: &str,
        kib: i32,
    ) -> Result<(), ClientError> {
        let body = json!({"StreamARN": arn, "MaxRecordSizeInKiB": kib});
        self.call::<Value>(endpoint, "UpdateMaxRecordSize", &body)
            .await
            .map(drop)
    }

    /// DeleteStream, also deregistering its consumers.
    pub async fn delete_stream(&self, endpoint: &str, name: &str) -> Result<(), ClientError> {
        let body = json!({"StreamName": name, "EnforceConsumerDeletion": true});
        self.call::<Value>(endpoint, "DeleteStream", &body)
            .await
            .map(drop)
    }

    /// RegisterStreamConsumer.
    pub async fn register_consumer(
        &self,
        endpoint: &str,
        stream_arn: &str,
        name: &str,
    ) -> Result<ConsumerDescription, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Out {
            consumer: ConsumerDescription,
        }
        let body = json!({"StreamARN": stream_arn, "ConsumerName": name});
        let out: Out = self.call(endpoint, "RegisterStreamConsumer", &body).await?;
        Ok(out.consumer)
    }

    /// DescribeStreamConsumer.
    pub async fn describe_consumer(
        &self,
        endpoint: &str,
        stream_arn: &str,
        name: &str,
    ) -> Result<ConsumerDescription, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Out {
            consumer_description: ConsumerDescription,
        }
        let body = json!({"StreamARN": stream_arn, "ConsumerName": name});
        let out: Out = self.call(endpoint, "DescribeStreamConsumer", &body).await?;
        Ok(out.consumer_description)
    }

    /// DeregisterStreamConsumer.
    pub async fn deregister_consumer(
        &self,
        endpoint: &str,
        stream_arn: &str,
        name: &str,
    ) -> Result<(), ClientError> {
        let body = json!({"StreamARN": stream_arn, "ConsumerName": name});
        self.call::<Value>(endpoint, "DeregisterStreamConsumer", &body)
            .await
            .map(drop)
    }
}

impl DataPlaneClient {
    /// Firehose DescribeDeliveryStream.
    pub async fn describe_delivery_stream(
        &self,
        endpoint: &str,
        name: &str,
    ) -> Result<DeliveryStreamDescription, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Out {
            delivery_stream_description: DeliveryStreamDescription,
        }
        let out: Out = self
            .call_api(
                endpoint,
                FIREHOSE_PREFIX,
                "DescribeDeliveryStream",
                &json!({"DeliveryStreamName": name}),
            )
            .await?;
        Ok(out.delivery_stream_description)
    }

    /// Firehose DeleteDeliveryStream.
    pub async fn delete_delivery_stream(
        &self,
        endpoint: &str,
        name: &str,
    ) -> Result<(), ClientError> {
        self.call_api::<Value>(
            endpoint,
            FIREHOSE_PREFIX,
            "DeleteDeliveryStream",
            &json!({"DeliveryStreamName": name}),
        )
        .await
        .map(drop)
    }

    /// Analytics DescribeApplication.
    pub async fn describe_application(
        &self,
        endpoint: &str,
        name: &str,
    ) -> Result<ApplicationDetail, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Out {
            application_detail: ApplicationDetail,
        }
        let out: Out = self
            .call_api(
                endpoint,
                ANALYTICS_PREFIX,
                "DescribeApplication",
                &json!({"ApplicationName": name}),
            )
            .await?;
        Ok(out.application_detail)
    }

    /// Analytics DeleteApplication (which wants the creation time DescribeApplication reports).
    pub async fn delete_application(
        &self,
        endpoint: &str,
        name: &str,
        create_timestamp: f64,
    ) -> Result<(), ClientError> {
        self.call_api::<Value>(
            endpoint,
            ANALYTICS_PREFIX,
            "DeleteApplication",
            &json!({"ApplicationName": name, "CreateTimestamp": create_timestamp}),
        )
        .await
        .map(drop)
    }
}

/// `DeliveryStreamDescription` of DescribeDeliveryStream (the fields the operator reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeliveryStreamDescription {
    /// Delivery stream ARN.
    #[serde(rename = "DeliveryStreamARN")]
    pub delivery_stream_arn: String,
    /// CREATING, ACTIVE, DELETING, CREATING_FAILED or DELETING_FAILED.
    pub delivery_stream_status: String,
    /// Version of the destination configuration.
    #[serde(default)]
    pub version_id: Option<String>,
}

/// `ApplicationDetail` of DescribeApplication (the fields the operator reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApplicationDetail {
    /// Application ARN.
    #[serde(rename = "ApplicationARN")]
    pub application_arn: String,
    /// DELETING, STARTING, STOPPING, READY, RUNNING or UPDATING.
    pub application_status: String,
    /// Version of the configuration.
    #[serde(default)]
    pub application_version_id: Option<i64>,
    /// Creation time, epoch seconds (DeleteApplication needs it).
    #[serde(default)]
    pub create_timestamp: Option<f64>,
}

/// Parses an AWS JSON error body. `__type` may carry a namespace (`com.amazonaws...#Name`),
/// which AWS clients strip too.
fn aws_error(status: u16, body: &[u8]) -> ClientError {
    #[derive(Deserialize, Serialize)]
    struct Body {
        #[serde(rename = "__type", default)]
        type_: String,
        #[serde(default, alias = "Message")]
        message: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) if !b.type_.is_empty() => ClientError::Aws {
            status,
            type_: b.type_.rsplit('#').next().unwrap_or_default().to_string(),
            message: b.message,
        },
        _ => ClientError::Aws {
            status,
            type_: if status >= 500 {
                "InternalFailure"
            } else {
                "UnknownError"
            }
            .to_string(),
            message: String::from_utf8_lossy(body).chars().take(200).collect(),
        },
    }
}

/// The next shard count on the way from `current` to `target`: UpdateShardCount accepts at
/// most double or half the current open shards per call, so a larger change takes several
/// steps.
pub fn next_shard_step(current: i32, target: i32) -> i32 {
    if current <= 0 {
        return target;
    }
    if target > current {
        target.min(current.saturating_mul(2))
    } else {
        // Halving rounds up: from 5 shards, 3 is the smallest allowed count.
        target.max((current + 1) / 2)
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A tiny in-process Kinesis control plane: enough of the API for the client and the
    //! reconcilers' tests, on a real listener on port 0.

    use std::{
        collections::BTreeMap,
        convert::Infallible,
        net::SocketAddr,
        sync::{Arc, Mutex},
    };

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::{body::Incoming, service::service_fn, Request, Response};
    use hyper_util::rt::TokioIo;
    use serde_json::{json, Value};

    /// A stream as the fake keeps it.
    #[derive(Debug, Clone, PartialEq)]
    pub struct FakeStream {
        pub status: String,
        pub mode: String,
        pub shards: i32,
        pub retention: i32,
        pub tags: BTreeMap<String, String>,
        pub consumers: BTreeMap<String, String>,
    }

    /// Shared state plus the log of calls (operation names, in order).
    #[derive(Debug, Default)]
    pub struct FakeState {
        pub streams: BTreeMap<String, FakeStream>,
        /// Delivery streams by name → DeliveryStreamStatus.
        pub delivery_streams: BTreeMap<String, String>,
        /// Analytics applications by name → ApplicationStatus.
        pub applications: BTreeMap<String, String>,
        pub calls: Vec<String>,
        /// `Host` header of every request, in order.
        pub hosts: Vec<String>,
        /// The answer of `GET /cluster` (404 while `None`: not in cluster mode).
        pub cluster: Option<Value>,
    }

    /// Starts the fake and returns its endpoint and state.
    pub async fn start() -> (String, Arc<Mutex<FakeState>>) {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(sock), svc)
                        .await;
                });
            }
        });
        (format!("http://{addr}"), state)
    }

    fn arn(name: &str) -> String {
        format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}")
    }

    fn err(status: u16, type_: &str, msg: &str) -> (u16, Value) {
        (status, json!({"__type": type_, "message": msg}))
    }

    async fn handle(
        state: Arc<Mutex<FakeState>>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let target = req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        state.lock().unwrap().hosts.push(host);
        if req.method() == hyper::Method::GET && req.uri().path() == "/cluster" {
            let mut st = state.lock().unwrap();
            st.calls.push("GET /cluster".into());
            let (status, out) = match st.cluster.clone() {
                Some(v) => (200, v),
                None => (404, json!({"message": "not in cluster mode"})),
            };
            return Ok(Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(out.to_string())))
                .unwrap());
        }
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let input: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
        let (status, out) = if let Some(op) = target.strip_prefix("Firehose_20150804.") {
            dispatch_firehose(&mut state.lock().unwrap(), op, &input)
        } else if let Some(op) = target.strip_prefix("KinesisAnalytics_20150814.") {
            dispatch_analytics(&mut state.lock().unwrap(), op, &input)
        } else {
            let op = target.strip_prefix("Kinesis_20131202.").unwrap_or("");
            dispatch(&mut state.lock().unwrap(), op, &input)
        };
        Ok(Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.1")
            .body(Full::new(Bytes::from(out.to_string())))
            .unwrap())
    }

    fn name_of(input: &Value) -> String {
        input["StreamName"]
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                input["StreamARN"]
                    .as_str()
                    .map(|a| a.rsplit('/').next().unwrap().to_string())
            })
            .unwrap_or_default()
    }

    fn dispatch_firehose(st: &mut FakeState, op: &str, input: &Value) -> (u16, Value) {
        st.calls.push(op.to_string());
        let name = input["DeliveryStreamName"].as_str().unwrap_or_default();
        let Some(status) = st.delivery_streams.get(name).cloned() else {
            return err(
                400,
                "ResourceNotFoundException",
                &format!("Firehose {name} under account 000000000000 not found."),
            );
        };
        match op {
            "DescribeDeliveryStream" => (
                200,
                json!({"DeliveryStreamDescription": {
                    "DeliveryStreamName": name,
                    "DeliveryStreamARN": format!("arn:aws:firehose:us-east-1:000000000000:deliverystream/{name}"),
                    "DeliveryStreamStatus": status, "VersionId": "1",
                    "DeliveryStreamType": "KinesisStreamAsSource", "Destinations": [],
                    "HasMoreDestinations": false,
                }}),
            ),
            "DeleteDeliveryStream" => {
                st.delivery_streams.remove(name);
                (200, json!({}))
            }
            _ => err(400, "UnknownOperationException", op),
        }
    }

    fn dispatch_analytics(st: &mut FakeState, op: &str, input: &Value) -> (u16, Value) {
        st.calls.push(op.to_string());
        let name = input["ApplicationName"].as_str().unwrap_or_default();
        let Some(status) = st.applications.get(name).cloned() else {
            return err(
                400,
                "ResourceNotFoundException",
                &format!("Application {name} not found"),
            );
        };
        match op {
            "DescribeApplication" => (
                200,
                json!({"ApplicationDetail": {
                    "ApplicationName": name,
                    "ApplicationARN": format!("arn:aws:kinesisanalytics:us-east-1:000000000000:application/{name}"),
                    "ApplicationStatus": status, "ApplicationVersionId": 1,
                    "CreateTimestamp": 1.7e9,
                }}),
            ),
            "DeleteApplication" => {
                st.applications.remove(name);
                (200, json!({}))
            }
            _ => err(400, "UnknownOperationException", op),
        }
    }

    fn dispatch(st: &mut FakeState, op: &str, input: &Value) -> (u16, Value) {
        st.calls.push(op.to_string());
        let name = name_of(input);
        if op == "CreateStream" {
            if st.streams.contains_key(&name) {
                return err(400, "ResourceInUseException", "exists");
            }
            let tags = serde_json::from_value(input["Tags"].clone()).unwrap_or_default();
            st.streams.insert(
                name,
                FakeStream {
                    status: "ACTIVE".into(),
                    mode: input["StreamModeDetails"]["StreamMode"]
                        .as_str()
                        .unwrap_or("PROVISIONED")
                        .into(),
                    shards: input["ShardCount"].as_i64().unwrap_or(4) as i32,
                    retention: 24,
                    tags,
                    consumers: BTreeMap::new(),
                },
            );
            return (200, json!({}));
        }
        let Some(s) = st.streams.get_mut(&name) else {
            return err(
                400,
                "ResourceNotFoundException",
                &format!("Stream {name} under account 000000000000 not found."),
            );
        };
        match op {
            "DescribeStreamSummary" => (
                200,
                json!({"StreamDescriptionSummary": {
                    "StreamName": name, "StreamARN": arn(&name), "StreamStatus": s.status,
                    "StreamModeDetails": {"StreamMode": s.mode}, "RetentionPeriodHours": s.retention,
                    "OpenShardCount": s.shards, "ConsumerCount": s.consumers.len(),
                    "EncryptionType": "NONE", "StreamCreationTimestamp": 1.7e9,
                    "EnhancedMonitoring": [{"ShardLevelMetrics": []}]
                }}),
            ),
            "UpdateShardCount" => {
                let target = input["TargetShardCount"].as_i64().unwrap() as i32;
                if target > 100 {
                    return err(
                        400,
                        "InvalidArgumentException",
                        "TargetShardCount exceeds the shard limit of 100",
                    );
                }
                if target > s.shards * 2 || target * 2 < s.shards {
                    return err(
                        400,
                        "InvalidArgumentException",
                        "UpdateShardCount cannot scale more than double or below half",
                    );
                }
                s.shards = target;
                (
                    200,
                    json!({"StreamName": name, "CurrentShardCount": s.shards, "TargetShardCount": target}),
                )
            }
            "UpdateStreamMode" => {
                s.mode = input["StreamModeDetails"]["StreamMode"]
                    .as_str()
                    .unwrap()
                    .into();
                (200, json!({}))
            }
            "IncreaseStreamRetentionPeriod" | "DecreaseStreamRetentionPeriod" => {
                s.retention = input["RetentionPeriodHours"].as_i64().unwrap() as i32;
                (200, json!({}))
            }
            "ListTagsForStream" => {
                let tags: Vec<Value> = s
                    .tags
                    .iter()
                    .map(|(k, v)| json!({"Key": k, "Value": v}))
                    .collect();
                (200, json!({"Tags": tags, "HasMoreTags": false}))
            }
            "AddTagsToStream" => {
                let tags: BTreeMap<String, String> =
                    serde_json::from_value(input["Tags"].clone()).unwrap();
                s.tags.extend(tags);
                (200, json!({}))
            }
            "RemoveTagsFromStream" => {
                for k in input["TagKeys"].as_array().unwrap() {
                    s.tags.remove(k.as_str().unwrap());
                }
                (200, json!({}))
            }
            "DeleteStream" => {
                st.streams.remove(&name);
                (200, json!({}))
            }
            "RegisterStreamConsumer" => {
                let c = input["ConsumerName"].as_str().unwrap().to_string();
                if s.consumers.contains_key(&c) {
                    return err(400, "ResourceInUseException", "consumer exists");
                }
                let carn = format!("{}/consumer/{c}:1700000000", arn(&name));
                s.consumers.insert(c.clone(), carn.clone());
                (
                    200,
                    json!({"Consumer": {"ConsumerName": c, "ConsumerARN": carn, "ConsumerStatus": "CREATING", "ConsumerCreationTimestamp": 1.7e9}}),
                )
            }
            "DescribeStreamConsumer" => {
                let c = input["ConsumerName"].as_str().unwrap();
                match s.consumers.get(c) {
                    Some(carn) => (
                        200,
                        json!({"ConsumerDescription": {"ConsumerName": c, "ConsumerARN": carn, "ConsumerStatus": "ACTIVE", "ConsumerCreationTimestamp": 1.7e9, "StreamARN": arn(&name)}}),
                    ),
                    None => err(400, "ResourceNotFoundException", "consumer not found"),
                }
            }
            "DeregisterStreamConsumer" => {
                let c = input["ConsumerName"].as_str().unwrap();
                s.consumers.remove(c);
                (200, json!({}))
            }
            _ => err(400, "UnknownOperationException", op),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> DataPlaneClient {
        DataPlaneClient::new(Duration::from_secs(2))
    }

    #[tokio::test]
    async fn create_then_describe_reports_the_created_stream() {
        let (ep, _state) = fake::start().await;
        let tags = BTreeMap::from([("team".to_string(), "data".to_string())]);
        let c = client();
        c.create_stream(
            &ep,
            &CreateStream {
                name: "orders",
                shard_count: Some(2),
                mode: "PROVISIONED",
                tags: &tags,
            },
        )
        .await
        .unwrap();
        let s = c.describe_stream_summary(&ep, "orders").await.unwrap();
        assert_eq!(s.open_shard_count, 2);
        assert_eq!(s.stream_status, "ACTIVE");
        assert_eq!(s.mode(), "PROVISIONED");
        assert_eq!(
            s.stream_arn,
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
        );
        assert_eq!(c.list_tags(&ep, "orders").await.unwrap(), tags);
    }

    #[tokio::test]
    async fn aws_errors_come_back_typed() {
        let (ep, _state) = fake::start().await;
        let e = client()
            .describe_stream_summary(&ep, "missing")
            .await
            .unwrap_err();
        assert!(e.is_not_found(), "{e:?}");
        assert_eq!(e.reason(), "ResourceNotFound");
        let e = client()
            .update_shard_count(&ep, "missing", 2)
            .await
            .unwrap_err();
        assert!(e.is_not_found());
    }

    #[tokio::test]
    async fn requests_carry_the_kinesis_target_and_json_content_type() {
        let (ep, state) = fake::start().await;
        let c = client();
        let tags = BTreeMap::new();
        c.create_stream(
            &ep,
            &CreateStream {
                name: "s",
                shard_count: Some(1),
                mode: "PROVISIONED",
                tags: &tags,
            },
        )
        .await
        .unwrap();
        c.update_shard_count(&ep, "s", 2).await.unwrap();
        c.set_retention(&ep, "s", 24, 48).await.unwrap();
        let arn = c
            .describe_stream_summary(&ep, "s")
            .await
            .unwrap()
            .stream_arn;
        let consumer = c.register_consumer(&ep, &arn, "app").await.unwrap();
        assert!(consumer.consumer_arn.starts_with(&arn));
        assert_eq!(
            c.describe_consumer(&ep, &arn, "app")
                .await
                .unwrap()
                .consumer_status,
            "ACTIVE"
        );
        c.deregister_consumer(&ep, &arn, "app").await.unwrap();
        c.delete_stream(&ep, "s").await.unwrap();
        let calls = state.lock().unwrap().calls.clone();
        assert_eq!(
            calls,
            [
                "CreateStream",
                "UpdateShardCount",
                "IncreaseStreamRetentionPeriod",
                "DescribeStreamSummary",
                "RegisterStreamConsumer",
                "DescribeStreamConsumer",
                "DeregisterStreamConsumer",
                "DeleteStream"
            ]
        );
    }

    #[tokio::test]
    async fn a_connect_to_entry_reaches_the_service_address_at_a_local_one() {
        let (ep, state) = fake::start().await;
        let local = ep.strip_prefix("http://").unwrap().to_string();
        let c = client().with_connect_to(BTreeMap::from([(
            "orders.default.svc:4567".to_string(),
            local,
        )]));
        let e = c
            .describe_stream_summary("http://Orders.default.svc:4567", "orders")
            .await
            .unwrap_err();
        assert!(e.is_not_found(), "the call reached the fake: {e:?}");
        assert_eq!(
            state.lock().unwrap().hosts,
            ["Orders.default.svc:4567"],
            "the Host header keeps the Service address"
        );
        // Endpoints the map does not name are called as they are.
        let e = c
            .describe_stream_summary("http://127.0.0.1:9", "orders")
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Unreachable(_)), "{e:?}");
    }

    #[tokio::test]
    async fn the_cluster_view_says_which_pods_hold_data() {
        let (ep, state) = fake::start().await;
        let c = client();
        // Not in cluster mode (or not serving yet): treated like pods that are not there.
        let e = c.cluster_state(&ep).await.unwrap_err();
        assert!(matches!(e, ClientError::Unreachable(_)), "{e:?}");
        state.lock().unwrap().cluster = Some(json!({
            "coordinator": true, "ordinal": 0, "version": 7,
            "members": [
                {"ordinal": 0, "url": "http://s-0.s-pods.default.svc:4567", "live": true, "openShards": 2, "closedShards": 1},
                {"ordinal": 1, "url": "http://s-1.s-pods.default.svc:4567", "live": true, "openShards": 0, "closedShards": 3},
                {"ordinal": 2, "url": "http://s-2.s-pods.default.svc:4567", "live": false, "openShards": 0, "closedShards": 0},
            ],
        }));
        let view = c.cluster_state(&format!("{ep}/")).await.unwrap();
        assert!(view.coordinator);
        assert_eq!(view.version, 7);
        assert_eq!(
            view.data_holding_replicas(),
            2,
            "pod 1 still holds closed shards"
        );
        assert_eq!(view.live_below(3), 2);
        assert_eq!(view.live_below(1), 1);
        let empty = ClusterState {
            coordinator: true,
            ordinal: 0,
            version: 0,
            members: vec![],
        };
        assert_eq!(empty.data_holding_replicas(), 0);
    }

    #[tokio::test]
    async fn an_unreachable_data_plane_is_a_transient_error() {
        // Port 9 (discard) on localhost is closed on any sane test machine.
        let e = client()
            .describe_stream_summary("http://127.0.0.1:9", "s")
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Unreachable(_)), "{e:?}");
        assert!(e.is_transient());
    }

    #[test]
    fn namespaced_error_types_are_stripped() {
        let e = aws_error(
            400,
            br#"{"__type":"com.amazonaws.kinesis#LimitExceededException","message":"slow down"}"#,
        );
        assert_eq!(e.reason(), "LimitExceeded");
        assert!(e.is_transient());
        let e = aws_error(500, b"oops");
        assert!(e.is_transient());
    }

    #[test]
    fn reshard_steps_never_exceed_double_or_half() {
        assert_eq!(next_shard_step(2, 3), 3);
        assert_eq!(next_shard_step(2, 10), 4);
        assert_eq!(next_shard_step(4, 10), 8);
        assert_eq!(next_shard_step(8, 10), 10);
        assert_eq!(next_shard_step(10, 1), 5);
        assert_eq!(next_shard_step(5, 1), 3);
        assert_eq!(next_shard_step(3, 1), 2);
        assert_eq!(next_shard_step(2, 1), 1);
        assert_eq!(next_shard_step(4, 4), 4);
    }
}
