//! The PodDisruptionBudget of a stream's pods.

use k8s_openapi::{
    api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};
use kube::ResourceExt;
use tributary_api::Stream;

use super::{child_meta, selector_labels};

/// At most one data-plane pod of a stream is voluntarily evicted at a time. For a single-pod
/// stream this lets node drains proceed (a `minAvailable: 1` budget would block them
/// forever). For a multi-pod stream (`shardsPerPod`) every pod owns its own shards, so each
/// eviction makes that pod's shards unavailable until it is back: one at a time keeps the rest
/// of the stream (and the coordinator, unless it is the one moving) serving while a drain walks
/// through the pods. `AlwaysAllow` lets a crash-looping pod be evicted so it cannot wedge a
/// drain.
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

    #[test]
    fn a_multi_pod_stream_lets_one_pod_at_a_time_go() {
        let mut s = stream("orders", 6);
        s.spec.shards_per_pod = Some(2);
        let spec = pdb(&s).spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(spec.min_available, None);
        assert_eq!(spec, pdb(&stream("orders", 6)).spec.unwrap());
    }
}
