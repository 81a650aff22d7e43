//! Custom-resource types shared by the Tributary operator and data plane.
//!
//! The group is `tributary.dev`, version `v1alpha1`. The data plane reads these specs from YAML
//! (`tributary serve --manifests DIR`) without Kubernetes; the operator and the CRD generator
//! enable the `kube` feature for the `CustomResource` and `JsonSchema` derives, the CEL rules
//! (`x-kubernetes-validations`), printer columns and subresources.
//!
//! Field doc comments are written for users: they become the descriptions `kubectl explain` shows.

// kube-derive's `printcolumn(name = .., type_ = "string", ..)` repeats keys across columns,
// which clippy mistakes for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod analytics;
pub mod consumer;
pub mod delivery;
pub mod manifest;
#[cfg(feature = "kube")]
mod schema;
pub mod status;
pub mod stream;

pub use analytics::{AnalyticsAppSpec, AnalyticsAppStatus};
pub use consumer::{StreamConsumerSpec, StreamConsumerStatus, StreamRef};
pub use delivery::{DeliveryStreamSpec, DeliveryStreamStatus};
pub use manifest::{Manifest, ManifestError, API_GROUP, API_VERSION};
pub use status::{Condition, ConditionStatus, Quantity};
pub use stream::{
    DeletionPolicy, EncryptionSpec, EncryptionType, ReshardingStatus, ResourceRequirements,
    StorageSpec, StreamMode, StreamSpec, StreamStatus,
};

#[cfg(feature = "kube")]
pub use analytics::AnalyticsApp;
#[cfg(feature = "kube")]
pub use consumer::StreamConsumer;
#[cfg(feature = "kube")]
pub use delivery::DeliveryStream;
#[cfg(feature = "kube")]
pub use stream::Stream;

/// Every CustomResourceDefinition of the group, in a stable order (for `crds/` and the chart).
#[cfg(feature = "kube")]
pub fn crds(
) -> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    use kube::CustomResourceExt;
    vec![
        Stream::crd(),
        StreamConsumer::crd(),
        DeliveryStream::crd(),
        AnalyticsApp::crd(),
    ]
}
