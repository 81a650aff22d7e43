//! The data-plane pod every workload runs (Stream StatefulSets, DeliveryStream and AnalyticsApp
//! Deployments): one `tributary serve` container with the same ports, probes, mounts and the
//! Pod Security Standards "restricted" profile, so every kind is hardened the same way.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
        EnvVar, HTTPGetAction, PodSecurityContext, PodSpec, Probe, SeccompProfile, SecurityContext,
        Volume, VolumeMount,
    },
    apimachinery::pkg::{api::resource::Quantity, util::intstr::IntOrString},
};
use tributary_api::ResourceRequirements;

use super::{API_PORT, CONTAINER, DATA_DIR, MANIFESTS_DIR, METRICS_PORT};
use crate::config::Settings;

/// UID and GID of the data-plane process (the distroless `nonroot` user).
pub const RUN_AS: i64 = 65532;

/// `tributary serve` with the API on 4567 and metrics/health on 9567 (all interfaces), the
/// data directory on the `data` volume and the manifests from the mounted ConfigMap.
pub fn serve_args(settings: &Settings) -> Vec<String> {
    let cfg = &settings.config;
    vec![
        "serve".to_string(),
        "--listen".into(),
        format!("0.0.0.0:{API_PORT}"),
        "--metrics-listen".into(),
        format!("0.0.0.0:{METRICS_PORT}"),
        "--data-dir".into(),
        format!("{DATA_DIR}/data"),
        "--manifests".into(),
        MANIFESTS_DIR.into(),
        "--region".into(),
        cfg.region.clone(),
        "--account-id".into(),
        cfg.account_id.clone(),
    ]
}

fn probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("metrics".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Default::default()
    }
}

/// The data-plane container: `args`, `RUST_LOG=info` then `env`, startup, liveness and
/// readiness probes on `/healthz` and `/readyz`, a read-only root file system and the `data`,
/// `manifests` and `tmp` mounts.
pub fn container(
    settings: &Settings,
    args: Vec<String>,
    env: Vec<EnvVar>,
    resources: &ResourceRequirements,
) -> Container {
    let cfg = &settings.config;
    let mut all_env = vec![EnvVar {
        name: "RUST_LOG".into(),
        value: Some("info".into()),
        ..Default::default()
    }];
    all_env.extend(env);
    Container {
        name: CONTAINER.into(),
        image: Some(cfg.dataplane_image.clone()),
        image_pull_policy: Some(cfg.dataplane_pull_policy.clone()),
        args: Some(args),
        ports: Some(vec![
            ContainerPort {
                name: Some("kinesis".into()),
                container_port: API_PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
            ContainerPort {
                name: Some("metrics".into()),
                container_port: METRICS_PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
        ]),
        env: Some(all_env),
        resources: Some(container_resources(resources)),
        // Recovery of a large log on start-up may take minutes: up to 5 minutes before the
        // liveness probe may restart the pod.
        startup_probe: Some(probe("/healthz", 5, 60)),
        liveness_probe: Some(probe("/healthz", 10, 3)),
        readiness_probe: Some(probe("/readyz", 5, 2)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "data".into(),
                mount_path: DATA_DIR.into(),
                ..Default::default()
            },
            VolumeMount {
                name: "manifests".into(),
                mount_path: MANIFESTS_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    }
}

/// The pod around `container`: the restricted security context, no service-account token, the
/// ConfigMap `configmap` as the `manifests` volume, a small `tmp`, and `extra` volumes (the
/// `data` volume of a Deployment; a StatefulSet's comes from its claim template).
pub fn pod_spec(container: Container, configmap: String, extra: Vec<Volume>) -> PodSpec {
    let mut volumes = vec![
        Volume {
            name: "manifests".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: configmap,
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity("64Mi".into())),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    volumes.extend(extra);
    PodSpec {
        containers: vec![container],
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            fs_group: Some(RUN_AS),
            fs_group_change_policy: Some("OnRootMismatch".into()),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        // Enough for the data plane to finish in-flight requests and fsync.
        termination_grace_period_seconds: Some(30),
        volumes: Some(volumes),
        ..Default::default()
    }
}

/// The spec's requests and limits as Kubernetes quantities.
pub fn container_resources(
    r: &ResourceRequirements,
) -> k8s_openapi::api::core::v1::ResourceRequirements {
    let conv = |m: &BTreeMap<String, tributary_api::Quantity>| {
        (!m.is_empty()).then(|| {
            m.iter()
                .map(|(k, v)| (k.clone(), Quantity(v.0.clone())))
                .collect::<BTreeMap<_, _>>()
        })
    };
    k8s_openapi::api::core::v1::ResourceRequirements {
        limits: conv(&r.limits),
        requests: conv(&r.requests),
        ..Default::default()
    }
}
