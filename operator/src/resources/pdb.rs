//! The PodDisruptionBudget of a stream's pods.

use k8s_openapi::{
    api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};
use kube::ResourceExt;
use tributary_api::Stream;

use super::{child_meta, selector_labels};

/// At most one data-plane pod of a stream is voluntarily evicted at a time. With the single
/// pod of today this lets node drains proceed (a `minAvailable: 1` budget would block them
/// forever); it starts protecting availability once shards spread over several pods.
/// `AlwaysAllow` lets a crash-looping pod be evicted so it cannot wedge a drain.
pub fn pdb(stream: &Stream) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: child_meta(stream, stream.name_any()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(stream)),
                ..Default::default()
            }),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::stream;
    use crate::resources::snapshot::assert_snapshot;

    #[test]
    fn pdb_matches_snapshot() {
        assert_snapshot("pdb", &pdb(&stream("orders", 2)));
    }
}
