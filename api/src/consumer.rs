//! The `StreamConsumer` custom resource: a registered enhanced fan-out consumer.

use serde::{Deserialize, Serialize};

use crate::status::Condition;
use crate::stream::DeletionPolicy;

/// An enhanced fan-out consumer registered on a stream (Kinesis `RegisterStreamConsumer`).
/// Each consumer gets its own 2 MiB/s per shard through `SubscribeToShard` and its own ARN,
/// published in `status.consumerArn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::CustomResource, kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    kube(
        group = "tributary.dev",
        version = "v1alpha1",
        kind = "StreamConsumer",
        namespaced,
        status = "StreamConsumerStatus",
        shortname = "ksc",
        category = "tributary",
        doc = "An enhanced fan-out consumer registered on a Tributary Stream.",
        printcolumn(name = "Stream", type_ = "string", json_path = ".spec.streamRef.name"),
        printcolumn(
            name = "Consumer",
            type_ = "string",
            json_path = ".status.consumerStatus"
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
        printcolumn(
            name = "Age",
            type_ = "date",
            json_path = ".metadata.creationTimestamp"
        ),
        printcolumn(
            name = "ARN",
            type_ = "string",
            json_path = ".status.consumerArn",
            priority = 1
        )
    )
)]
#[cfg_attr(
    feature = "kube",
    x_kube(
        validation = Rule::new(
            "has(self.consumerName) == has(oldSelf.consumerName) && (!has(self.consumerName) || self.consumerName == oldSelf.consumerName)"
        )
        .message("consumerName is immutable")
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamConsumerSpec {
    /// The `Stream` resource, in the same namespace, to register the consumer on. Immutable.
    #[cfg_attr(
        feature = "kube",
        x_kube(validation = Rule::new("self == oldSelf").message("streamRef is immutable"))
    )]
    pub stream_ref: StreamRef,

    /// Name of the consumer in the Kinesis API. Defaults to the resource's `metadata.name`.
    /// Must match `[a-zA-Z0-9_.-]{1,128}`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 128), pattern(r"^[a-zA-Z0-9_.-]+$"))
    )]
    pub consumer_name: Option<String>,

    /// `Delete` deregisters the consumer when the resource is deleted; `Retain` leaves it
    /// registered.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

impl StreamConsumerSpec {
    /// The consumer name in the Kinesis API for a resource called `resource_name`.
    pub fn effective_name<'a>(&'a self, resource_name: &'a str) -> &'a str {
        self.consumer_name.as_deref().unwrap_or(resource_name)
    }
}

/// Reference to a `Stream` resource in the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamRef {
    /// `metadata.name` of the Stream resource.
    #[cfg_attr(feature = "kube", schemars(length(min = 1, max = 253)))]
    pub name: String,
}

/// Observed state of a stream consumer, written by the operator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "kube", schemars(transform = crate::schema::default_status))]
#[serde(rename_all = "camelCase")]
pub struct StreamConsumerStatus {
    /// The `metadata.generation` the status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `Reconciling` and `Stalled` (kstatus).
    #[serde(default)]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::status::conditions_schema")
    )]
    pub conditions: Vec<Condition>,

    /// The consumer's ARN, which `SubscribeToShard` takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_arn: Option<String>,

    /// The consumer's status in the Kinesis API: CREATING, ACTIVE or DELETING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_status: Option<String>,

    /// The ARN of the stream the consumer is registered on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}
