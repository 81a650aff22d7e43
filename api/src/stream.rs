//! The `Stream` custom resource: a Kinesis data stream.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::status::{Condition, Quantity};

/// Desired state of a Kinesis data stream.
///
/// On Kubernetes the operator runs the stream in a StatefulSet of data-plane pods with a
/// persistent volume each, and reports the stream's state in `status`. Locally,
/// `tributary serve --manifests DIR` creates the same stream from this resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::CustomResource, kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    kube(
        group = "tributary.dev",
        version = "v1alpha1",
        kind = "Stream",
        namespaced,
        status = "StreamStatus",
        shortname = "ks",
        category = "tributary",
        doc = "A Kinesis data stream served by Tributary data-plane pods.",
        scale(
            spec_replicas_path = ".spec.shardCount",
            status_replicas_path = ".status.openShardCount",
            label_selector_path = ".status.selector"
        ),
        printcolumn(name = "Mode", type_ = "string", json_path = ".spec.streamMode"),
        printcolumn(name = "Shards", type_ = "integer", json_path = ".spec.shardCount"),
        printcolumn(name = "Open", type_ = "integer", json_path = ".status.openShardCount"),
        printcolumn(
            name = "Pods",
            type_ = "integer",
            json_path = ".status.replicas",
            description = "Data-plane pods of a multi-pod stream (shardsPerPod)",
            priority = 1
        ),
        printcolumn(
            name = "Retention",
            type_ = "integer",
            json_path = ".spec.retentionPeriodHours",
            description = "Retention period in hours"
        ),
        printcolumn(
            name = "Ready",
            type_ = "string",
            json_path = ".status.conditions[?(@.type==\"Ready\")].status"
        ),
        printcolumn(
            name = "Status",
            type_ = "string",
            json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
        ),
        printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
        printcolumn(
            name = "Observed",
            type_ = "integer",
            json_path = ".status.observedGeneration",
            priority = 1
        ),
        printcolumn(name = "ARN", type_ = "string", json_path = ".status.streamArn", priority = 1),
        validation = Rule::new(
            "self.metadata.name.size() <= 52 && self.metadata.name.matches('^[a-z]')"
        )
        .message(
            "a Stream's name must start with a letter and be at most 52 characters: it also names its StatefulSet and Services"
        )
    )
)]
#[cfg_attr(
    feature = "kube",
    x_kube(
        validation = Rule::new("self.streamMode != 'ON_DEMAND' || !has(self.shardCount)")
            .message("shardCount is only allowed for PROVISIONED streams: ON_DEMAND streams size themselves"),
        validation = Rule::new("self.streamMode != 'PROVISIONED' || has(self.shardCount)")
            .message("a PROVISIONED stream needs shardCount"),
        validation = Rule::new(
            "has(self.streamName) == has(oldSelf.streamName) && (!has(self.streamName) || self.streamName == oldSelf.streamName)"
        )
        .message("streamName is immutable"),
        validation = Rule::new(
            "has(self.storage) == has(oldSelf.storage) && (!has(self.storage) || self.storage == oldSelf.storage)"
        )
        .message("storage is immutable: the volumes of a stream's pods cannot be resized or moved by the operator"),
        validation = Rule::new("has(self.shardsPerPod) == has(oldSelf.shardsPerPod)")
            .message("shardsPerPod can be changed but not added to or removed from an existing Stream: it decides between one pod and a cluster of pods that own the shards")
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamSpec {
    /// Name of the stream in the Kinesis API. Defaults to the resource's `metadata.name`.
    /// Must match `[a-zA-Z0-9_.-]{1,128}`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 128), pattern(r"^[a-zA-Z0-9_.-]+$"))
    )]
    pub stream_name: Option<String>,

    /// Number of shards of a PROVISIONED stream (1 to 10000). Changing it reshards the stream
    /// with UpdateShardCount semantics (at most double or halve per step). Not allowed for
    /// ON_DEMAND streams, which size themselves. Also set through the `/scale` subresource, so
    /// `kubectl scale stream/NAME --replicas=N` and autoscalers work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 1, max = 10000)))]
    pub shard_count: Option<i32>,

    /// Spread the stream over several data-plane pods, at most this many open shards per pod
    /// (1 to 1000). Unset: one pod owns every shard. Set: the StatefulSet runs
    /// `max(1, ceil(openShards / shardsPerPod))` pods, where `openShards` is the larger of
    /// `shardCount` and the open shards the data plane reports (ON_DEMAND streams: the reported
    /// count, 4 until known); pod 0 coordinates the stream's metadata, each shard lives on the
    /// pod that was least loaded when the shard was created, and every pod serves the whole
    /// Kinesis API. Pods are added before a reshard that needs them and removed only once the
    /// reshard finished and no shard (open, or closed but within retention) lives on them. Can
    /// be changed, but not added to or removed from an existing Stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 1, max = 1000)))]
    pub shards_per_pod: Option<i32>,

    /// Capacity mode: PROVISIONED (fixed `shardCount`) or ON_DEMAND (shards follow load).
    #[serde(default)]
    pub stream_mode: StreamMode,

    /// How long records stay readable, in hours (24 to 8760).
    #[serde(default = "default_retention")]
    #[cfg_attr(feature = "kube", schemars(range(min = 24, max = 8760)))]
    pub retention_period_hours: i32,

    /// Largest record (data plus partition key) the stream accepts, in KiB (1024 to 10240).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 1024, max = 10240)))]
    pub max_record_size_in_ki_b: Option<i32>,

    /// Tags of the stream (at most 50).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        x_kube(validation = Rule::new("self.size() <= 50").message("a stream has at most 50 tags"))
    )]
    pub tags: BTreeMap<String, String>,

    /// Server-side encryption setting, recorded and reported as Kinesis does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionSpec>,

    /// What happens to the stream's data when the resource is deleted: `Delete` removes the
    /// stream, `Retain` keeps it (and its volumes) for a later resource to adopt.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Persistent volume of each data-plane pod, where the shard logs live. Defaults to the
    /// operator's configured size and the cluster's default storage class. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,

    /// CPU and memory of each data-plane pod. Defaults to the operator's configured resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

fn default_retention() -> i32 {
    24
}

impl StreamSpec {
    /// The stream name in the Kinesis API for a resource called `resource_name`.
    pub fn effective_name<'a>(&'a self, resource_name: &'a str) -> &'a str {
        self.stream_name.as_deref().unwrap_or(resource_name)
    }
}

/// Capacity mode of a stream: `PROVISIONED` (a fixed number of shards, set by `shardCount`) or
/// `ON_DEMAND` (shards are split and merged automatically as load changes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamMode {
    #[default]
    Provisioned,
    OnDemand,
}

impl StreamMode {
    /// The mode as the Kinesis API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioned => "PROVISIONED",
            Self::OnDemand => "ON_DEMAND",
        }
    }
}

/// Server-side encryption of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    x_kube(validation = Rule::new("self.type != 'KMS' || has(self.keyId)").message("KMS encryption needs a keyId"))
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionSpec {
    /// `KMS` or `NONE`.
    #[serde(rename = "type")]
    pub encryption_type: EncryptionType,
    /// The KMS key identifier reported by DescribeStream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// Encryption type as Kinesis names it: `NONE` or `KMS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EncryptionType {
    #[default]
    None,
    Kms,
}

/// What to do with the backing resource when the custom resource is deleted: `Delete` removes it
/// and its data, `Retain` keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub enum DeletionPolicy {
    #[default]
    Delete,
    Retain,
}

/// Persistent storage of a stream's data-plane pods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageSpec {
    /// Size of each pod's volume, for example `10Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// Storage class of the volumes. Empty uses the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// Compute resources of a container, as in a Pod spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRequirements {
    /// Most the container may use, for example `{cpu: "2", memory: 2Gi}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Quantity>,
    /// What the scheduler reserves for the container, for example `{cpu: 250m, memory: 512Mi}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, Quantity>,
}

/// Observed state of a stream, written by the operator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "kube", schemars(transform = crate::schema::default_status))]
#[serde(rename_all = "camelCase")]
pub struct StreamStatus {
    /// The `metadata.generation` the status was computed for. It moves only once that
    /// generation's spec is fully applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `Reconciling` and `Stalled` (kstatus).
    #[serde(default)]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::status::conditions_schema")
    )]
    pub conditions: Vec<Condition>,

    /// The stream's status in the Kinesis API: CREATING, ACTIVE, UPDATING or DELETING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_status: Option<String>,

    /// The stream's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,

    /// Number of open shards as the data plane reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_shard_count: Option<i32>,

    /// Retention period in hours as the data plane reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_period_hours: Option<i32>,

    /// Label selector of the stream's pods (for the `/scale` subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,

    /// Address of the Kinesis API for this stream inside the cluster, for example
    /// `http://orders.default.svc:4567`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,

    /// Data-plane pods the stream runs on (the StatefulSet's replicas); only for a multi-pod
    /// stream (`shardsPerPod`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,

    /// Data-plane pods that are ready; only for a multi-pod stream (`shardsPerPod`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,

    /// Progress of a shard-count change, present while one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resharding: Option<ReshardingStatus>,
}

/// A shard-count change in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReshardingStatus {
    /// Open shards when the change started.
    pub from_count: i32,
    /// Open shards the change is heading for (`spec.shardCount`).
    pub target_count: i32,
    /// `Pending` (not yet requested from the data plane) or `InProgress` (the stream is
    /// UPDATING).
    pub phase: String,
    /// When the operator requested the change (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Detail, for example the intermediate step of a change larger than double or half.
    #[serde(default)]
    pub message: String,
}
