//! Pure manifest builders: the Kubernetes objects a `Stream` runs on, as functions of the
//! Stream and the operator settings. No client, no I/O; snapshot-tested.
//!
//! How shards map to pods: without `shardsPerPod` a Stream runs in **one** data-plane pod (a
//! StatefulSet with one replica) that owns every shard of the stream, so `shardCount` changes
//! reshard inside that pod through UpdateShardCount and never restart it. With `shardsPerPod`
//! the StatefulSet runs several pods in cluster mode (see [`cluster`]): pod 0 coordinates the
//! stream's metadata, each shard lives on one pod, every pod serves the whole Kinesis API and
//! forwards what it does not own; the pods find each other through the headless Service's
//! stable DNS names and authenticate with the per-Stream Secret `NAME-cluster`.

pub mod cluster;
pub mod configmap;
pub mod pdb;
pub mod pod;
pub mod service;
pub mod statefulset;
pub mod workload;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use tributary_api::Stream;

/// Port of the Kinesis, Firehose and Analytics APIs in a data-plane pod.
pub const API_PORT: i32 = 4567;
/// Port of `/metrics`, `/healthz` and `/readyz` in a data-plane pod.
pub const METRICS_PORT: i32 = 9567;
/// Where the Stream manifest is mounted (`tributary serve --manifests`).
pub const MANIFESTS_DIR: &str = "/etc/tributary/manifests";
/// Where the shard logs live (the pod's persistent volume).
pub const DATA_DIR: &str = "/var/lib/tributary";
/// Name of the data-plane container.
pub const CONTAINER: &str = "tributary";

/// Name of the headless Service that gives each pod a stable DNS name.
pub fn headless_service_name(stream: &Stream) -> String {
    format!("{}-pods", stream.name_any())
}

/// Name of the Secret holding a multi-pod stream's shared cluster token.
pub fn cluster_secret_name(stream: &Stream) -> String {
    format!("{}-cluster", stream.name_any())
}

/// Name of the ConfigMap holding the Stream manifest.
pub fn configmap_name(stream: &Stream) -> String {
    format!("{}-config", stream.name_any())
}

/// The `app.kubernetes.io/component` of the objects made for a kind: `stream`,
/// `delivery-stream`, `analytics-app`.
pub fn component<K: Resource<DynamicType = ()>>() -> String {
    let mut out = String::new();
    for (i, ch) in K::kind(&()).chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// Labels that select a resource's pods. They are part of the StatefulSet's (or Deployment's)
/// immutable selector, so they never change.
pub fn selector_labels<K: Resource<DynamicType = ()>>(obj: &K) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "tributary".to_string(),
        ),
        ("app.kubernetes.io/instance".to_string(), obj.name_any()),
        ("app.kubernetes.io/component".to_string(), component::<K>()),
    ])
}

/// The selector as a label-selector string, published in `status.selector` for `/scale`.
pub fn selector_string<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    selector_labels(obj)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Labels of every object made for a resource (`tributary.dev/stream: NAME` for a Stream,
/// `tributary.dev/delivery-stream: NAME` for a DeliveryStream...).
pub fn labels<K: Resource<DynamicType = ()>>(obj: &K) -> BTreeMap<String, String> {
    let mut l = selector_labels(obj);
    l.insert(
        "app.kubernetes.io/managed-by".into(),
        "tributary-operator".into(),
    );
    l.insert("app.kubernetes.io/part-of".into(), "tributary".into());
    l.insert(
        format!("tributary.dev/{}", component::<K>()),
        obj.name_any(),
    );
    l
}

/// Metadata of a child object: name, the resource's namespace, labels and a controller owner
/// reference, so Kubernetes garbage-collects children with their resource and the controller
/// is woken when they drift.
pub fn child_meta<K: Resource<DynamicType = ()>>(obj: &K, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: obj.namespace(),
        labels: Some(labels(obj)),
        owner_references: obj.controller_owner_ref(&()).map(|o| vec![o]),
        ..Default::default()
    }
}

#[cfg(test)]
pub(crate) mod snapshot {
    //! Golden-file checks of builder output. `UPDATE_SNAPSHOTS=1 cargo test` rewrites them.

    use std::path::PathBuf;

    /// Compares `value` as YAML with `src/resources/snapshots/<name>.yaml`.
    pub fn assert_snapshot<T: serde::Serialize>(name: &str, value: &T) {
        let yaml = serde_yaml::to_string(value).unwrap();
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("src/resources/snapshots")
            .join(format!("{name}.yaml"));
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &yaml).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "missing snapshot {}; run with UPDATE_SNAPSHOTS=1",
                path.display()
            )
        });
        assert!(
            expected == yaml,
            "snapshot {name} differs (UPDATE_SNAPSHOTS=1 to accept):\n--- expected\n{expected}\n--- actual\n{yaml}"
        );
    }
}
