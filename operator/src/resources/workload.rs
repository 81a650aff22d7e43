//! The objects a `DeliveryStream` or `AnalyticsApp` runs on: a ConfigMap holding the resource
//! (read by `tributary serve --manifests`), a one-replica Deployment of the data plane, a
//! Service in front of it and, for delivery streams, a PersistentVolumeClaim. Pure functions of
//! the resource, what the controller resolved (stream endpoints) and the settings.
//!
//! Volumes: a delivery stream keeps its DirectPut buffer and its source checkpoint (how far it
//! has read the source stream) in its data directory. Both must survive a restart: a lost
//! buffer loses acknowledged records, and a lost checkpoint makes the new pod start reading at
//! its own creation time, skipping whatever arrived while it was down. So every delivery stream
//! gets a PersistentVolumeClaim, whatever its source. An analytics application keeps nothing
//! durable (windows and pumps live in memory, and it reads its inputs from
//! `inputStartingPosition` when it starts), so it gets an `emptyDir`.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy},
        core::v1::{
            ConfigMap, ConfigMapVolumeSource, EmptyDirVolumeSource, EnvVar, EnvVarSource,
            KeyToPath, PersistentVolumeClaim, PersistentVolumeClaimSpec,
            PersistentVolumeClaimVolumeSource, PodTemplateSpec, SecretKeySelector, Service,
            ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
    },
};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde_json::json;
use tributary_api::{
    AnalyticsApp, AnalyticsAppSpec, DeletionPolicy, DeliveryStream, DeliveryStreamSpec, API_GROUP,
    API_VERSION,
};

use super::{child_meta, labels, pod, selector_labels, service, CONTAINER};
use crate::config::Settings;

/// Annotation on the pod template holding a hash of the mounted manifest, so a spec change
/// rolls the pod (the data plane reads its manifests at start-up).
pub const CONFIG_HASH_ANNOTATION: &str = "tributary.dev/config-hash";

/// An environment variable taken from a Secret key (`secretKeyRef`); the value never passes
/// through the operator or the ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEnv {
    /// Environment variable of the data plane.
    pub env: &'static str,
    /// Secret in the resource's namespace.
    pub secret: String,
    /// Key in the Secret.
    pub key: &'static str,
}

/// Where the data directory lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataVolume {
    /// A PersistentVolumeClaim `<name>-data`; `retain` keeps it when the resource is deleted.
    Claim {
        /// Requested size.
        size: String,
        /// Keep the claim after the resource is gone (`deletionPolicy: Retain`).
        retain: bool,
    },
    /// An `emptyDir`: nothing in it must survive the pod.
    EmptyDir,
}

/// A `Stream` resource a workload references, as the controller resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTarget {
    /// The stream's name in the Kinesis API (`spec.streamName`, or the resource name).
    pub stream_name: String,
    /// The Stream's `status.endpoint`.
    pub endpoint: String,
}

/// Referenced `Stream` resources by resource name.
pub type StreamTargets = BTreeMap<String, StreamTarget>;

/// Where the pod reads Glue table definitions (`--glue-catalog`): a ConfigMap whose keys
/// `<database>.<table>.json` are mounted as `<database>/<table>.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueCatalog {
    /// The ConfigMap.
    pub configmap: String,
    /// (key, path in the mounted directory).
    pub items: Vec<(String, String)>,
}

/// Mount path of the Glue catalog ConfigMap.
pub const GLUE_CATALOG_DIR: &str = "/etc/tributary/glue-catalog";

/// What a workload's children are built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Name of the Deployment, Service and ConfigMap prefix (`<name>-firehose`,
    /// `<name>-analytics`).
    pub name: String,
    /// File name of the manifest in the ConfigMap.
    pub manifest_file: &'static str,
    /// The resource as the data plane reads it.
    pub manifest: String,
    /// `--stream-endpoint NAME=URL` for each referenced Stream, by stream name.
    pub stream_endpoints: BTreeMap<String, String>,
    /// Environment variables from Secrets.
    pub secret_env: Vec<SecretEnv>,
    /// The data directory.
    pub data: DataVolume,
    /// Glue table definitions for record format conversion.
    pub glue_catalog: Option<GlueCatalog>,
}

impl Workload {
    /// Name of the ConfigMap.
    pub fn configmap_name(&self) -> String {
        format!("{}-config", self.name)
    }

    /// Name of the PersistentVolumeClaim.
    pub fn claim_name(&self) -> String {
        format!("{}-data", self.name)
    }
}

/// The resource as a manifest: apiVersion, kind, name and the spec, unchanged.
fn manifest<K: Resource<DynamicType = ()>, S: Serialize>(obj: &K, spec: &S) -> String {
    let m = json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": K::kind(&()),
        "metadata": {"name": obj.name_any()},
        "spec": spec,
    });
    serde_yaml::to_string(&m).expect("a resource always serializes")
}

/// Name of the children of a DeliveryStream (Deployment, Service; ConfigMap and claim add a
/// suffix).
pub fn delivery_name(ds: &DeliveryStream) -> String {
    format!("{}-firehose", ds.name_any())
}

/// Name of the children of an AnalyticsApp.
pub fn analytics_name(app: &AnalyticsApp) -> String {
    format!("{}-analytics", app.name_any())
}

/// Key of a Redshift destination's password in its `passwordSecretRef` Secret.
pub const PASSWORD_KEY: &str = "password";
/// Key of an HTTP endpoint's access key in its `accessKeySecretRef` Secret.
pub const ACCESS_KEY_KEY: &str = "accessKey";

/// The Secret references of a delivery stream as environment variables: object-store
/// credentials (`credentialsSecretRef`, keys `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`)
/// become the data plane's `TRIBUTARY_S3_ACCESS_KEY_ID` and `TRIBUTARY_S3_SECRET_ACCESS_KEY`,
/// a Redshift `passwordSecretRef` (key `password`) becomes `TRIBUTARY_REDSHIFT_PASSWORD`, and
/// an HTTP endpoint's `accessKeySecretRef` (key `accessKey`) `TRIBUTARY_HTTP_ACCESS_KEY`.
/// The data plane has one object-store credential, so the first reference wins; every
/// referenced Secret is listed by [`delivery_secrets`] and must exist.
pub fn delivery_secret_env(spec: &DeliveryStreamSpec) -> Vec<SecretEnv> {
    let secrets = delivery_secrets(spec);
    let mut out = Vec::new();
    if let Some(secret) = secrets
        .iter()
        .find(|(_, key)| *key == "AWS_ACCESS_KEY_ID")
        .map(|(s, _)| s.clone())
    {
        out.push(SecretEnv {
            env: "TRIBUTARY_S3_ACCESS_KEY_ID",
            secret: secret.clone(),
            key: "AWS_ACCESS_KEY_ID",
        });
        out.push(SecretEnv {
            env: "TRIBUTARY_S3_SECRET_ACCESS_KEY",
            secret,
            key: "AWS_SECRET_ACCESS_KEY",
        });
    }
    for (env, key) in [
        ("TRIBUTARY_REDSHIFT_PASSWORD", PASSWORD_KEY),
        ("TRIBUTARY_HTTP_ACCESS_KEY", ACCESS_KEY_KEY),
    ] {
        if let Some((secret, _)) = secrets.iter().find(|(_, k)| *k == key) {
            out.push(SecretEnv {
                env,
                secret: secret.clone(),
                key,
            });
        }
    }
    out
}

/// Every Secret a delivery stream references, with the key it needs, in spec order.
pub fn delivery_secrets(spec: &DeliveryStreamSpec) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    let mut creds = |r: Option<&tributary_api::delivery::SecretRef>| {
        if let Some(r) = r {
            out.push((r.name.clone(), "AWS_ACCESS_KEY_ID"));
            out.push((r.name.clone(), "AWS_SECRET_ACCESS_KEY"));
        }
    };
    if let Some(s3) = &spec.extended_s3_destination_configuration {
        creds(s3.credentials_secret_ref.as_ref());
        creds(
            s3.s3_backup_configuration
                .as_ref()
                .and_then(|b| b.credentials_secret_ref.as_ref()),
        );
    }
    if let Some(h) = &spec.http_endpoint_destination_configuration {
        creds(
            h.s3_configuration
                .as_ref()
                .and_then(|b| b.credentials_secret_ref.as_ref()),
        );
    }
    if let Some(r) = &spec.redshift_destination_configuration {
        creds(r.s3_configuration.credentials_secret_ref.as_ref());
        out.push((r.password_secret_ref.name.clone(), PASSWORD_KEY));
    }
    if let Some(r) = spec
        .http_endpoint_destination_configuration
        .as_ref()
        .and_then(|h| h.endpoint_configuration.access_key_secret_ref.as_ref())
    {
        out.push((r.name.clone(), ACCESS_KEY_KEY));
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|e| seen.insert(e.clone()));
    out
}

/// `--stream-endpoint` entries (stream name → endpoint) of the resolved Streams.
fn endpoint_flags(targets: &StreamTargets) -> BTreeMap<String, String> {
    targets
        .values()
        .map(|t| (t.stream_name.clone(), t.endpoint.clone()))
        .collect()
}

/// The name the data plane knows a referenced Stream resource by: its stream name.
fn mapped(targets: &StreamTargets, resource: &str) -> String {
    targets
        .get(resource)
        .map(|t| t.stream_name.clone())
        .unwrap_or_else(|| resource.to_string())
}

/// The Glue catalog a delivery stream's record format conversion reads, if it names a
/// ConfigMap.
pub fn delivery_glue_catalog(spec: &DeliveryStreamSpec) -> Option<GlueCatalog> {
    let s = spec
        .extended_s3_destination_configuration
        .as_ref()?
        .data_format_conversion_configuration
        .as_ref()?
        .schema_configuration
        .as_ref()?;
    let cm = s.glue_catalog_config_map_ref.as_ref()?;
    Some(GlueCatalog {
        configmap: cm.name.clone(),
        items: vec![(
            format!("{}.{}.json", s.database_name, s.table_name),
            format!("{}/{}.json", s.database_name, s.table_name),
        )],
    })
}

/// The workload of a DeliveryStream whose source Stream (if any) is resolved in `streams`.
/// The mounted manifest is the spec with the `streamRef` naming the stream (which differs
/// from the resource name when the Stream sets `spec.streamName`), since that is the name the
/// pod's `--stream-endpoint` knows.
pub fn delivery_workload(
    ds: &DeliveryStream,
    streams: &StreamTargets,
    settings: &Settings,
) -> Workload {
    let mut spec = ds.spec.clone();
    if let Some(r) = spec
        .kinesis_stream_source_configuration
        .as_mut()
        .and_then(|k| k.stream_ref.as_mut())
    {
        r.name = mapped(streams, &r.name);
    }
    Workload {
        name: delivery_name(ds),
        manifest_file: "delivery-stream.yaml",
        manifest: manifest(ds, &spec),
        stream_endpoints: endpoint_flags(streams),
        secret_env: delivery_secret_env(&ds.spec),
        data: DataVolume::Claim {
            size: settings.config.default_storage_size.clone(),
            retain: ds.spec.deletion_policy == DeletionPolicy::Retain,
        },
        glue_catalog: delivery_glue_catalog(&ds.spec),
    }
}

/// The workload of an AnalyticsApp whose input and output Streams are resolved in `streams`;
/// `resourceRef`s are rewritten to the stream names, as for delivery streams.
pub fn analytics_workload(app: &AnalyticsApp, streams: &StreamTargets) -> Workload {
    let mut spec = app.spec.clone();
    for r in spec
        .inputs
        .iter_mut()
        .filter_map(|i| i.kinesis_streams_input.as_mut())
        .chain(
            spec.outputs
                .iter_mut()
                .filter_map(|o| o.kinesis_streams_output.as_mut()),
        )
        .filter_map(|s| s.resource_ref.as_mut())
    {
        r.name = mapped(streams, &r.name);
    }
    Workload {
        name: analytics_name(app),
        manifest_file: "analytics-app.yaml",
        manifest: manifest(app, &spec),
        stream_endpoints: endpoint_flags(streams),
        secret_env: Vec::new(),
        data: DataVolume::EmptyDir,
        glue_catalog: None,
    }
}

/// Names of the `Stream` resources an AnalyticsApp's Kinesis inputs and outputs reference.
pub fn analytics_stream_refs(spec: &AnalyticsAppSpec) -> Vec<String> {
    let mut out: Vec<String> = spec
        .inputs
        .iter()
        .filter_map(|i| i.kinesis_streams_input.as_ref())
        .chain(
            spec.outputs
                .iter()
                .filter_map(|o| o.kinesis_streams_output.as_ref()),
        )
        .filter_map(|s| s.resource_ref.as_ref().map(|r| r.name.clone()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Name of the `Stream` resource a DeliveryStream reads, if it names one.
pub fn delivery_stream_ref(spec: &DeliveryStreamSpec) -> Option<String> {
    spec.kinesis_stream_source_configuration
        .as_ref()
        .and_then(|k| k.stream_ref.as_ref())
        .map(|r| r.name.clone())
}

/// The ConfigMap holding the manifest.
pub fn configmap<K: Resource<DynamicType = ()>>(obj: &K, w: &Workload) -> ConfigMap {
    ConfigMap {
        metadata: child_meta(obj, w.configmap_name()),
        data: Some(BTreeMap::from([(
            w.manifest_file.to_string(),
            w.manifest.clone(),
        )])),
        ..Default::default()
    }
}

/// The Service in front of the pod: the Firehose (or Analytics) API on 4567, metrics on 9567.
/// Delivery streams' DirectPut producers and the operator's Describe calls go through it.
pub fn service<K: Resource<DynamicType = ()>>(obj: &K, w: &Workload) -> Service {
    Service {
        metadata: child_meta(obj, w.name.clone()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(obj)),
            ports: Some(service::ports()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The claim of the data directory, when the workload has one. A retained claim has no owner,
/// so Kubernetes keeps it when the resource is deleted, and a new resource of the same name
/// adopts it.
pub fn claim<K: Resource<DynamicType = ()>>(
    obj: &K,
    w: &Workload,
) -> Option<PersistentVolumeClaim> {
    let DataVolume::Claim { size, retain } = &w.data else {
        return None;
    };
    let mut meta = child_meta(obj, w.claim_name());
    if *retain {
        meta.owner_references = None;
    }
    Some(PersistentVolumeClaim {
        metadata: meta,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(size.clone()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// FNV-1a, 64 bits: a hash that is the same in every build, unlike std's `DefaultHasher`.
fn fnv1a(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The Deployment: one replica of `tributary serve` with the manifest mounted, one
/// `--stream-endpoint` per referenced Stream, Secret-backed environment, the shared probes and
/// hardened security context, and the `Recreate` strategy (one writer per data directory; a
/// ReadWriteOnce claim cannot be mounted by two pods during a rolling update).
pub fn deployment<K: Resource<DynamicType = ()>>(
    obj: &K,
    w: &Workload,
    settings: &Settings,
) -> Deployment {
    let mut args = pod::serve_args(settings);
    for (name, url) in &w.stream_endpoints {
        args.push("--stream-endpoint".into());
        args.push(format!("{name}={url}"));
    }
    if w.glue_catalog.is_some() {
        args.push("--glue-catalog".into());
        args.push(GLUE_CATALOG_DIR.into());
    }
    let env = w
        .secret_env
        .iter()
        .map(|e| EnvVar {
            name: e.env.into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: e.secret.clone(),
                    key: e.key.into(),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let mut container = pod::container(settings, args, env, &settings.default_resources());
    let mut volumes = Vec::new();
    if let Some(g) = &w.glue_catalog {
        container
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: "glue-catalog".into(),
                mount_path: GLUE_CATALOG_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            });
        volumes.push(Volume {
            name: "glue-catalog".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: g.configmap.clone(),
                items: Some(
                    g.items
                        .iter()
                        .map(|(key, path)| KeyToPath {
                            key: key.clone(),
                            path: path.clone(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let data = match &w.data {
        DataVolume::Claim { .. } => Volume {
            name: "data".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: w.claim_name(),
                ..Default::default()
            }),
            ..Default::default()
        },
        DataVolume::EmptyDir => Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    };
    volumes.insert(0, data);
    let pod = pod::pod_spec(container, w.configmap_name(), volumes);
    Deployment {
        metadata: child_meta(obj, w.name.clone()),
        spec: DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector_labels(obj)),
                ..Default::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..Default::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(obj)),
                    annotations: Some(BTreeMap::from([
                        (
                            "kubectl.kubernetes.io/default-container".to_string(),
                            CONTAINER.to_string(),
                        ),
                        (CONFIG_HASH_ANNOTATION.to_string(), fnv1a(&w.manifest)),
                    ])),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{analytics_app, delivery_stream};
    use crate::resources::snapshot::assert_snapshot;
    use tributary_api::{AnalyticsAppSpec, Manifest};

    fn target(stream_name: &str, endpoint: &str) -> StreamTarget {
        StreamTarget {
            stream_name: stream_name.into(),
            endpoint: endpoint.into(),
        }
    }

    fn endpoints() -> StreamTargets {
        BTreeMap::from([(
            "orders".to_string(),
            target("orders", "http://orders.default.svc:4567"),
        )])
    }

    #[test]
    fn delivery_stream_objects_match_snapshots() {
        let ds = delivery_stream("archive", "orders");
        let w = delivery_workload(&ds, &endpoints(), &Settings::test());
        assert_snapshot(
            "delivery-deployment",
            &deployment(&ds, &w, &Settings::test()),
        );
        assert_snapshot("delivery-configmap", &configmap(&ds, &w));
        assert_snapshot("delivery-service", &service(&ds, &w));
        assert_snapshot("delivery-claim", &claim(&ds, &w).unwrap());
    }

    #[test]
    fn analytics_app_objects_match_snapshots() {
        let app = analytics_app("tickers", "SELECT 1");
        let w = analytics_workload(&app, &endpoints());
        assert_snapshot(
            "analytics-deployment",
            &deployment(&app, &w, &Settings::test()),
        );
        assert!(claim(&app, &w).is_none());
    }

    #[test]
    fn the_source_stream_is_reached_through_its_endpoint_flag() {
        let ds = delivery_stream("archive", "orders");
        let w = delivery_workload(&ds, &endpoints(), &Settings::test());
        let d = deployment(&ds, &w, &Settings::test());
        let args = d.spec.template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap();
        let i = args.iter().position(|a| a == "--stream-endpoint").unwrap();
        assert_eq!(args[i + 1], "orders=http://orders.default.svc:4567");
    }

    #[test]
    fn credentials_come_from_secret_key_refs_and_never_reach_the_configmap() {
        let mut ds = delivery_stream("archive", "orders");
        let s3 = ds
            .spec
            .extended_s3_destination_configuration
            .as_mut()
            .unwrap();
        s3.credentials_secret_ref = Some(tributary_api::delivery::SecretRef {
            name: "garage-keys".into(),
        });
        let w = delivery_workload(&ds, &endpoints(), &Settings::test());
        let d = deployment(&ds, &w, &Settings::test());
        let env = d.spec.template.spec.unwrap().containers[0]
            .env
            .clone()
            .unwrap();
        let from_secret: Vec<_> = env
            .iter()
            .filter_map(|e| {
                let r = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
                Some((e.name.as_str(), r.name.as_str(), r.key.as_str()))
            })
            .collect();
        assert_eq!(
            from_secret,
            [
                (
                    "TRIBUTARY_S3_ACCESS_KEY_ID",
                    "garage-keys",
                    "AWS_ACCESS_KEY_ID"
                ),
                (
                    "TRIBUTARY_S3_SECRET_ACCESS_KEY",
                    "garage-keys",
                    "AWS_SECRET_ACCESS_KEY"
                ),
            ]
        );
        assert!(env
            .iter()
            .all(|e| e.value.is_none() || e.name == "RUST_LOG"));
        // The ConfigMap holds the reference, not a value.
        let cm = configmap(&ds, &w);
        let text = &cm.data.unwrap()["delivery-stream.yaml"];
        assert!(text.contains("credentialsSecretRef"));
    }

    #[test]
    fn the_data_plane_reads_back_the_unchanged_spec() {
        let ds = delivery_stream("archive", "orders");
        let w = delivery_workload(&ds, &endpoints(), &Settings::test());
        let docs = Manifest::parse_all(&w.manifest).unwrap();
        assert_eq!(docs[0].kind, "DeliveryStream");
        assert_eq!(docs[0].metadata.name, "archive");
        assert_eq!(docs[0].spec::<DeliveryStreamSpec>().unwrap(), ds.spec);
    }

    #[test]
    fn a_spec_change_rolls_the_pod_and_a_retained_claim_has_no_owner() {
        let mut ds = delivery_stream("archive", "orders");
        let hash = |ds: &DeliveryStream| {
            let w = delivery_workload(ds, &endpoints(), &Settings::test());
            deployment(ds, &w, &Settings::test())
                .spec
                .template
                .metadata
                .unwrap()
                .annotations
                .unwrap()[CONFIG_HASH_ANNOTATION]
                .clone()
        };
        let before = hash(&ds);
        ds.spec.tags.insert("team".into(), "data".into());
        assert_ne!(before, hash(&ds));

        ds.spec.deletion_policy = DeletionPolicy::Retain;
        let w = delivery_workload(&ds, &endpoints(), &Settings::test());
        assert!(claim(&ds, &w).unwrap().metadata.owner_references.is_none());
    }

    #[test]
    fn a_stream_with_its_own_stream_name_is_referenced_by_that_name() {
        // The Stream resource `orders` creates the stream `orders-v2`.
        let streams = BTreeMap::from([(
            "orders".to_string(),
            target("orders-v2", "http://orders.default.svc:4567"),
        )]);
        let ds = delivery_stream("archive", "orders");
        let w = delivery_workload(&ds, &streams, &Settings::test());
        assert_eq!(
            w.stream_endpoints,
            BTreeMap::from([(
                "orders-v2".to_string(),
                "http://orders.default.svc:4567".to_string()
            )])
        );
        let spec: DeliveryStreamSpec = Manifest::parse_all(&w.manifest).unwrap()[0].spec().unwrap();
        let source = spec.kinesis_stream_source_configuration.unwrap();
        assert_eq!(source.stream_ref.unwrap().name, "orders-v2");

        let app = analytics_app("tickers", "SELECT 1");
        let streams = BTreeMap::from([
            ("orders".to_string(), target("orders-v2", "http://o:4567")),
            ("summaries".to_string(), target("sums", "http://s:4567")),
        ]);
        let w = analytics_workload(&app, &streams);
        let spec: AnalyticsAppSpec = Manifest::parse_all(&w.manifest).unwrap()[0].spec().unwrap();
        let input = spec.inputs[0].kinesis_streams_input.as_ref().unwrap();
        assert_eq!(input.resource_ref.as_ref().unwrap().name, "orders-v2");
        let output = spec.outputs[0].kinesis_streams_output.as_ref().unwrap();
        assert_eq!(output.resource_ref.as_ref().unwrap().name, "sums");
        let d = deployment(&app, &w, &Settings::test());
        let args = d.spec.template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap();
        assert!(args.contains(&"orders-v2=http://o:4567".to_string()));
        assert!(args.contains(&"sums=http://s:4567".to_string()));
    }

    /// The `secretKeyRef` environment of a deployment: (variable, Secret, key).
    fn secret_env(d: &Deployment) -> Vec<(String, String, String)> {
        d.spec.template.spec.as_ref().unwrap().containers[0]
            .env
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| {
                let r = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
                Some((e.name.clone(), r.name.clone(), r.key.clone()))
            })
            .collect()
    }

    #[test]
    fn a_redshift_password_and_an_http_access_key_come_from_secrets() {
        let spec = serde_json::from_value(serde_json::json!({
            "redshiftDestinationConfiguration": {
                "clusterJDBCURL": "jdbc:postgresql://pg.db.svc:5432/analytics",
                "copyCommand": {"dataTableName": "events"},
                "username": "loader",
                "passwordSecretRef": {"name": "pg-password"},
                "s3Configuration": {"bucketARN": "arn:aws:s3:::staging"},
            },
        }))
        .unwrap();
        let mut ds = DeliveryStream::new("loads", spec);
        ds.metadata.namespace = Some("default".into());
        let w = delivery_workload(&ds, &BTreeMap::new(), &Settings::test());
        let d = deployment(&ds, &w, &Settings::test());
        assert_eq!(
            secret_env(&d),
            [(
                "TRIBUTARY_REDSHIFT_PASSWORD".to_string(),
                "pg-password".to_string(),
                "password".to_string()
            )]
        );
        assert!(w.manifest.contains("passwordSecretRef"));
        assert_eq!(
            delivery_secrets(&ds.spec),
            [("pg-password".to_string(), "password")]
        );

        let spec = serde_json::from_value(serde_json::json!({
            "httpEndpointDestinationConfiguration": {
                "endpointConfiguration": {
                    "url": "https://collector.example.com/firehose",
                    "accessKeySecretRef": {"name": "collector-key"},
                },
                "s3Configuration": {"bucketARN": "arn:aws:s3:::failed"},
            },
        }))
        .unwrap();
        let mut ds = DeliveryStream::new("hook", spec);
        ds.metadata.namespace = Some("default".into());
        let w = delivery_workload(&ds, &BTreeMap::new(), &Settings::test());
        let d = deployment(&ds, &w, &Settings::test());
        assert_eq!(
            secret_env(&d),
            [(
                "TRIBUTARY_HTTP_ACCESS_KEY".to_string(),
                "collector-key".to_string(),
                "accessKey".to_string()
            )]
        );
        assert!(!w.manifest.contains("accessKey:"));
    }

    #[test]
    fn the_glue_catalog_configmap_is_mounted_as_the_catalog_directory() {
        let mut ds = delivery_stream("parquet", "orders");
        ds.spec
            .extended_s3_destination_configuration
            .as_mut()
            .unwrap()
            .data_format_conversion_configuration = Some(
            serde_json::from_value(serde_json::json!({
                "schemaConfiguration": {
                    "databaseName": "sales",
                    "tableName": "orders",
                    "glueCatalogConfigMapRef": {"name": "glue-tables"},
                },
                "inputFormatConfiguration": {"deserializer": {"openXJsonSerDe": {}}},
                "outputFormatConfiguration": {"serializer": {"parquetSerDe": {"compression": "SNAPPY"}}},
            }))
            .unwrap(),
        );
        let w = delivery_workload(&ds, &endpoints(), &Settings::test());
        let d = deployment(&ds, &w, &Settings::test());
        assert_snapshot("delivery-deployment-glue", &d);
        let pod = d.spec.template.spec.unwrap();
        let args = pod.containers[0].args.clone().unwrap();
        let i = args.iter().position(|a| a == "--glue-catalog").unwrap();
        assert_eq!(args[i + 1], GLUE_CATALOG_DIR);
        let vol = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "glue-catalog")
            .unwrap();
        let cm = vol.config_map.unwrap();
        assert_eq!(cm.name, "glue-tables");
        let items = cm.items.unwrap();
        assert_eq!(
            (items[0].key.as_str(), items[0].path.as_str()),
            ("sales.orders.json", "sales/orders.json")
        );
    }

    #[test]
    fn analytics_refs_cover_inputs_and_outputs() {
        let app = analytics_app("tickers", "SELECT 1");
        assert_eq!(analytics_stream_refs(&app.spec), ["orders", "summaries"]);
    }
}
