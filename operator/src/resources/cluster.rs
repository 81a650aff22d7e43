//! Multi-pod streams (`spec.shardsPerPod`): how many pods a stream runs on, the flags that put
//! its data plane in cluster mode, and the Secret its pods share.
//!
//! Sizing: `replicas = max(1, ceil(openShards / shardsPerPod), dataHolding)` where
//! `openShards = max(spec.shardCount, status.openShardCount)` (ON_DEMAND: the reported count, 4
//! until known) and `dataHolding` is the highest ordinal that owns an open or closed shard plus
//! one, from the coordinator's `GET /cluster`. Because the spec's count counts, pods are added
//! as soon as `shardCount` grows, before the operator asks for the reshard, so the new shards
//! land on the new pods. Pods are never removed while a reshard runs, while the coordinator
//! cannot be asked, or while they hold shard data (closed shards stay until retention drops
//! them).

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Secret, SecretKeySelector},
    ByteString,
};
use kube::ResourceExt;
use tributary_api::{Stream, StreamMode};

use super::{child_meta, cluster_secret_name, headless_service_name, API_PORT};

/// Key of the cluster token in the `NAME-cluster` Secret.
pub const TOKEN_KEY: &str = "token";
/// Open shards assumed for an ON_DEMAND stream whose count is not known yet (Kinesis creates
/// ON_DEMAND streams with 4).
pub const ON_DEMAND_INITIAL_SHARDS: i32 = 4;

/// What the operator observed about a multi-pod stream's pods before sizing them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodsObserved {
    /// Replicas applied by the previous reconcile (`status.replicas`), when known.
    pub current: Option<i32>,
    /// Highest data-holding ordinal + 1 from `GET /cluster`; `None` when the coordinator could
    /// not be asked.
    pub data_holding: Option<i32>,
}

/// Whether the stream runs on several pods in cluster mode.
pub fn is_multi_pod(stream: &Stream) -> bool {
    stream.spec.shards_per_pod.is_some()
}

/// The open shards the pods are sized for: the larger of what the spec asks and what the data
/// plane reported (ON_DEMAND streams: what the data plane reported, 4 until known).
pub fn open_shards(stream: &Stream) -> i32 {
    let reported = stream.status.as_ref().and_then(|s| s.open_shard_count);
    match stream.spec.stream_mode {
        StreamMode::Provisioned => stream
            .spec
            .shard_count
            .unwrap_or(1)
            .max(reported.unwrap_or(0)),
        StreamMode::OnDemand => reported.unwrap_or(ON_DEMAND_INITIAL_SHARDS),
    }
}

/// Pods needed to hold `shards` open shards at `per_pod` each (at least one).
pub fn pods_for(shards: i32, per_pod: i32) -> i32 {
    let per_pod = per_pod.max(1);
    ((shards.max(0) + per_pod - 1) / per_pod).max(1)
}

/// The StatefulSet's replicas (see the module docs). One for a single-pod stream.
pub fn desired_replicas(stream: &Stream, observed: &PodsObserved) -> i32 {
    let Some(per_pod) = stream.spec.shards_per_pod else {
        return 1;
    };
    let mut n = pods_for(open_shards(stream), per_pod);
    let current = observed.current.unwrap_or(0);
    match observed.data_holding {
        Some(holding) => n = n.max(holding),
        // Without the coordinator's view nothing is known about where data lives: keep pods.
        None => n = n.max(current),
    }
    let resharding = stream
        .status
        .as_ref()
        .is_some_and(|s| s.resharding.is_some());
    if resharding {
        // Scale down only once the reshard finished.
        n = n.max(current);
    }
    n
}

/// The cluster-mode arguments: pod 0's API as the coordinator and this pod's own stable
/// address (`$(POD_NAME)` is expanded by the kubelet from the environment).
pub fn cluster_args(stream: &Stream) -> Vec<String> {
    let name = stream.name_any();
    let ns = stream.namespace().unwrap_or_else(|| "default".into());
    let headless = headless_service_name(stream);
    vec![
        "--cluster-coordinator".into(),
        format!("http://{name}-0.{headless}.{ns}.svc:{API_PORT}"),
        "--cluster-advertise".into(),
        format!("http://$(POD_NAME).{headless}.{ns}.svc:{API_PORT}"),
    ]
}

/// The cluster-mode environment: `POD_NAME` from the downward API (it gives the ordinal) and
/// the shared token from the Secret.
pub fn cluster_env(stream: &Stream) -> Vec<EnvVar> {
    vec![
        EnvVar {
            name: "POD_NAME".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
        EnvVar {
            name: "TRIBUTARY_CLUSTER_SECRET".into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: cluster_secret_name(stream),
                    key: TOKEN_KEY.into(),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
    ]
}

/// The Secret `NAME-cluster` with `token`, owned by the Stream so it is garbage-collected
/// with it. Created once; never applied again, so the token is never rotated under running
/// pods.
pub fn cluster_secret(stream: &Stream, token: &str) -> Secret {
    Secret {
        metadata: child_meta(stream, cluster_secret_name(stream)),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            TOKEN_KEY.to_string(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        ..Default::default()
    }
}

/// A fresh random token: 32 bytes from the kernel's CSPRNG, hex-encoded.
pub fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::stream;
    use tributary_api::{ReshardingStatus, StreamStatus};

    fn multi(shards: i32, per_pod: i32) -> Stream {
        let mut s = stream("orders", shards);
        s.spec.shards_per_pod = Some(per_pod);
        s
    }

    fn with_open(mut s: Stream, open: i32) -> Stream {
        s.status = Some(StreamStatus {
            open_shard_count: Some(open),
            ..Default::default()
        });
        s
    }

    fn known(data_holding: i32, current: i32) -> PodsObserved {
        PodsObserved {
            current: Some(current),
            data_holding: Some(data_holding),
        }
    }

    #[test]
    fn a_single_pod_stream_always_has_one_replica() {
        let s = stream("orders", 64);
        assert_eq!(desired_replicas(&s, &known(3, 5)), 1);
        assert!(!is_multi_pod(&s));
    }

    #[test]
    fn pods_are_open_shards_over_shards_per_pod_rounded_up() {
        assert_eq!(desired_replicas(&multi(4, 2), &known(0, 0)), 2);
        assert_eq!(desired_replicas(&multi(5, 2), &known(0, 0)), 3);
        assert_eq!(desired_replicas(&multi(6, 2), &known(0, 0)), 3);
        assert_eq!(desired_replicas(&multi(1, 2), &known(0, 0)), 1);
        assert_eq!(desired_replicas(&multi(1000, 1000), &known(0, 0)), 1);
        assert_eq!(pods_for(0, 3), 1);
    }

    #[test]
    fn a_growing_shard_count_adds_pods_before_the_data_plane_has_the_shards() {
        // Spec says 6, the data plane still reports 4: size for 6 already.
        let s = with_open(multi(6, 2), 4);
        assert_eq!(desired_replicas(&s, &known(2, 2)), 3);
    }

    #[test]
    fn a_shrinking_shard_count_keeps_pods_until_the_data_plane_has_fewer_shards() {
        // Spec says 2 but 6 are still open: keep 3 pods.
        let s = with_open(multi(2, 2), 6);
        assert_eq!(desired_replicas(&s, &known(3, 3)), 3);
        // Done (2 open) but pod 2 still holds closed shards within retention.
        let s = with_open(multi(2, 2), 2);
        assert_eq!(desired_replicas(&s, &known(3, 3)), 3);
        // Retention dropped them: down to one pod.
        assert_eq!(desired_replicas(&s, &known(1, 3)), 1);
    }

    #[test]
    fn pods_are_never_removed_while_a_reshard_runs_or_the_coordinator_is_unknown() {
        let mut s = with_open(multi(2, 2), 2);
        assert_eq!(
            desired_replicas(
                &s,
                &PodsObserved {
                    current: Some(3),
                    data_holding: None
                }
            ),
            3
        );
        s.status.as_mut().unwrap().resharding = Some(ReshardingStatus {
            from_count: 6,
            target_count: 2,
            phase: "InProgress".into(),
            started_at: None,
            message: String::new(),
        });
        assert_eq!(desired_replicas(&s, &known(1, 3)), 3);
        // A first reconcile knows nothing and sizes from the spec.
        assert_eq!(desired_replicas(&multi(4, 2), &PodsObserved::default()), 2);
    }

    #[test]
    fn on_demand_streams_are_sized_from_the_reported_count() {
        let mut s = multi(1, 2);
        s.spec.shard_count = None;
        s.spec.stream_mode = StreamMode::OnDemand;
        assert_eq!(
            desired_replicas(&s, &known(0, 0)),
            2,
            "4 shards until known"
        );
        let s = with_open(s, 9);
        assert_eq!(desired_replicas(&s, &known(0, 0)), 5);
    }

    #[test]
    fn the_cluster_flags_name_pod_0_and_the_pod_s_own_stable_address() {
        assert_eq!(
            cluster_args(&multi(4, 2)),
            [
                "--cluster-coordinator",
                "http://orders-0.orders-pods.default.svc:4567",
                "--cluster-advertise",
                "http://$(POD_NAME).orders-pods.default.svc:4567",
            ]
        );
    }

    #[test]
    fn tokens_are_random_and_the_secret_is_owned_by_the_stream() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        let secret = cluster_secret(&multi(4, 2), &a);
        assert_eq!(secret.metadata.name.as_deref(), Some("orders-cluster"));
        assert_eq!(secret.data.unwrap()[TOKEN_KEY].0, a.as_bytes());
        let owner = &secret.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Stream", Some(true))
        );
    }
}
