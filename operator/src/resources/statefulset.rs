//! The StatefulSet running a stream's data-plane pods.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{
            StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
            StatefulSetUpdateStrategy,
        },
        core::v1::{
            PersistentVolumeClaim, PersistentVolumeClaimSpec, PodTemplateSpec,
            VolumeResourceRequirements,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
    },
};
use kube::ResourceExt;
use tributary_api::{DeletionPolicy, Stream};

use super::{
    child_meta, cluster, configmap_name, headless_service_name, labels, pod, selector_labels,
    CONTAINER,
};
use crate::config::Settings;

/// The StatefulSet of a stream: `replicas` pods (one without `shardsPerPod`; see the module
/// docs of [`super`] and [`cluster`] for how shards map to pods) running `tributary serve`
/// with:
///
/// 1. the Kinesis API on 4567 and metrics/health on 9567, bound to all interfaces;
/// 2. the Stream manifest mounted from the ConfigMap as `--manifests`, so a pod on a fresh
///    volume creates its stream before it serves;
/// 3. the shard logs on a PersistentVolumeClaim per pod, deleted with the Stream only when
///    `deletionPolicy: Delete`;
/// 4. startup, liveness and readiness probes on `/healthz` and `/readyz` (the startup probe
///    allows minutes of log recovery before liveness applies);
/// 5. the Pod Security Standards "restricted" profile, with a read-only root file system;
/// 6. with `shardsPerPod`: cluster mode (`--cluster-coordinator` pod 0, `--cluster-advertise`
///    the pod's own headless-Service name, `POD_NAME` from the downward API, the token from
///    the `NAME-cluster` Secret) and no `--manifests`: the operator creates the stream once
///    every pod joined, so its first shards spread over the pods. `replicas` is ignored
///    without `shardsPerPod`.
pub fn statefulset(stream: &Stream, settings: &Settings, replicas: i32) -> StatefulSet {
    let cfg = &settings.config;
    let storage = stream.spec.storage.clone().unwrap_or_default();
    let size = storage
        .size
        .map(|q| q.0)
        .unwrap_or_else(|| cfg.default_storage_size.clone());
    let resources = stream
        .spec
        .resources
        .clone()
        .unwrap_or_else(|| settings.default_resources());
    let when_deleted = match stream.spec.deletion_policy {
        DeletionPolicy::Delete => "Delete",
        DeletionPolicy::Retain => "Retain",
    };

    let (replicas, container) = if cluster::is_multi_pod(stream) {
        let mut args = pod::serve_args(settings);
        // Not `--manifests`: the coordinator would create the stream at start-up, alone, and
        // own every shard. The operator creates it once every pod joined, so the shards spread.
        if let Some(i) = args.iter().position(|a| a == "--manifests") {
            args.drain(i..i + 2);
        }
        args.extend(cluster::cluster_args(stream));
        let env = cluster::cluster_env(stream);
        (
            replicas.max(1),
            pod::container(settings, args, env, &resources),
        )
    } else {
        (
            1,
            pod::container(settings, pod::serve_args(settings), vec![], &resources),
        )
    };
    let pod = pod::pod_spec(container, configmap_name(stream), vec![]);

    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            labels: Some(selector_labels(stream)),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: storage.storage_class_name.filter(|c| !c.is_empty()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), Quantity(size))])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };

    StatefulSet {
        metadata: child_meta(stream, stream.name_any()),
        spec: StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(headless_service_name(stream)),
            selector: LabelSelector {
                match_labels: Some(selector_labels(stream)),
                ..Default::default()
            },
            // Pods of a stream are independent shard owners: start them together.
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                ..Default::default()
            }),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(when_deleted.into()),
                    when_scaled: Some("Retain".into()),
                },
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(stream)),
                    annotations: Some(BTreeMap::from([(
                        "kubectl.kubernetes.io/default-container".to_string(),
                        CONTAINER.to_string(),
                    )])),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            volume_claim_templates: Some(vec![claim]),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::stream;
    use crate::resources::snapshot::assert_snapshot;
    use tributary_api::{ResourceRequirements, StorageSpec, StreamSpec};

    #[test]
    fn statefulset_matches_snapshot() {
        assert_snapshot(
            "statefulset",
            &statefulset(&stream("orders", 2), &Settings::test(), 1),
        );
    }

    fn multi_pod(shards: i32, per_pod: i32) -> Stream {
        let mut s = stream("orders", shards);
        s.spec.shards_per_pod = Some(per_pod);
        s
    }

    #[test]
    fn multi_pod_statefulset_matches_snapshot() {
        assert_snapshot(
            "statefulset-multi-pod",
            &statefulset(&multi_pod(4, 2), &Settings::test(), 2),
        );
    }

    #[test]
    fn a_single_pod_stream_ignores_the_replica_count_and_has_no_cluster_flags() {
        let sts = statefulset(&stream("orders", 8), &Settings::test(), 4);
        assert_eq!(sts.spec.replicas, Some(1));
        assert_eq!(sts, statefulset(&stream("orders", 8), &Settings::test(), 1));
        let c = &sts.spec.template.spec.unwrap().containers[0];
        assert!(!c
            .args
            .as_ref()
            .unwrap()
            .iter()
            .any(|a| a.starts_with("--cluster")));
        assert!(c.env.as_ref().unwrap().iter().all(|e| e.name == "RUST_LOG"));
    }

    #[test]
    fn multi_pod_pods_run_in_cluster_mode_with_their_name_and_the_shared_secret() {
        let sts = statefulset(&multi_pod(6, 2), &Settings::test(), 3);
        let spec = sts.spec;
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        assert_eq!(spec.service_name.as_deref(), Some("orders-pods"));
        let c = &spec.template.spec.unwrap().containers[0];
        let args = c.args.clone().unwrap();
        let flag = |f: &str| args[args.iter().position(|a| a == f).unwrap() + 1].clone();
        assert_eq!(
            flag("--cluster-coordinator"),
            "http://orders-0.orders-pods.default.svc:4567"
        );
        assert_eq!(
            flag("--cluster-advertise"),
            "http://$(POD_NAME).orders-pods.default.svc:4567"
        );
        let env = c.env.clone().unwrap();
        let var = |n: &str| env.iter().find(|e| e.name == n).unwrap().clone();
        let from = var("POD_NAME").value_from.unwrap().field_ref.unwrap();
        assert_eq!(from.field_path, "metadata.name");
        let secret = var("TRIBUTARY_CLUSTER_SECRET")
            .value_from
            .unwrap()
            .secret_key_ref
            .unwrap();
        assert_eq!(
            (secret.name.as_str(), secret.key.as_str()),
            ("orders-cluster", "token")
        );
        // The token never appears in the pod spec itself.
        assert!(env
            .iter()
            .all(|e| e.name != "TRIBUTARY_CLUSTER_SECRET" || e.value.is_none()));
        // The operator creates the stream once every pod joined, not pod 0 from the manifest.
        assert!(!args.iter().any(|a| a == "--manifests"));
        // A multi-pod stream never runs on zero pods.
        let sts = statefulset(&multi_pod(6, 2), &Settings::test(), 0);
        assert_eq!(sts.spec.replicas, Some(1));
    }

    #[test]
    fn storage_and_resources_from_the_spec_win_over_defaults() {
        let mut s = stream("orders", 2);
        s.spec = StreamSpec {
            storage: Some(StorageSpec {
                size: Some("50Gi".into()),
                storage_class_name: Some("fast".into()),
            }),
            resources: Some(ResourceRequirements {
                limits: [("cpu".to_string(), "2".into())].into(),
                requests: Default::default(),
            }),
            ..s.spec
        };
        let sts = statefulset(&s, &Settings::test(), 1);
        let spec = sts.spec;
        let claim = spec.volume_claim_templates.unwrap().remove(0).spec.unwrap();
        assert_eq!(claim.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(
            claim.resources.unwrap().requests.unwrap()["storage"].0,
            "50Gi"
        );
        let c = &spec.template.spec.unwrap().containers[0];
        let res = c.resources.clone().unwrap();
        assert_eq!(res.limits.unwrap()["cpu"].0, "2");
        assert!(res.requests.is_none());
    }

    #[test]
    fn retained_streams_keep_their_volumes_when_deleted() {
        let mut s = stream("orders", 2);
        s.spec.deletion_policy = DeletionPolicy::Retain;
        let policy = statefulset(&s, &Settings::test(), 1)
            .spec
            .persistent_volume_claim_retention_policy
            .unwrap();
        assert_eq!(policy.when_deleted.as_deref(), Some("Retain"));
    }

    #[test]
    fn pods_serve_the_manifest_directory_the_configmap_is_mounted_at() {
        let sts = statefulset(&stream("orders", 2), &Settings::test(), 1);
        let pod = sts.spec.template.spec.unwrap();
        let c = &pod.containers[0];
        let args = c.args.clone().unwrap();
        let i = args.iter().position(|a| a == "--manifests").unwrap();
        let mount = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.mount_path == args[i + 1])
            .unwrap();
        let vol = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == mount.name)
            .unwrap();
        assert_eq!(vol.config_map.unwrap().name, "orders-config");
    }
}
