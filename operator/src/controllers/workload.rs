//! What the `DeliveryStream` and `AnalyticsApp` controllers share: both run the data plane as a
//! one-replica Deployment with the resource mounted as a manifest, reach their Streams through
//! `--stream-endpoint`, and report their state from a Describe call through their Service.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service},
};
use kube::{
    api::{Patch, PatchParams},
    runtime::events::EventType,
    Api, Resource, ResourceExt,
};
use serde::Serialize;
use serde_json::json;
use tributary_api::{status::Condition, Stream, API_GROUP, API_VERSION};

use super::{Context, FIELD_MANAGER};
use crate::{
    error::{Error, Result},
    resources::workload::{self, StreamTarget, StreamTargets, Workload},
    status::{ready_reason, Health, Verdict},
};

/// The `Stream` resources `refs` resolved to their stream names and `status.endpoint`s (what
/// `--stream-endpoint` and the mounted manifest need), or why they cannot be yet: a Stream
/// that does not exist or has not created its stream (no ARN) yet.
pub async fn stream_endpoints(
    ctx: &Context,
    ns: &str,
    refs: &[String],
) -> Result<Result<StreamTargets, String>> {
    let streams: Api<Stream> = Api::namespaced(ctx.client.clone(), ns);
    let mut out = BTreeMap::new();
    for r in refs {
        let Some(stream) = streams.get_opt(r).await? else {
            return Ok(Err(format!("Stream {r} does not exist")));
        };
        let status = stream.status.as_ref();
        let (Some(_), Some(endpoint)) = (
            status.and_then(|s| s.stream_arn.as_ref()),
            status.and_then(|s| s.endpoint.clone()),
        ) else {
            return Ok(Err(format!("Stream {r} has not created its stream yet")));
        };
        out.insert(
            r.clone(),
            StreamTarget {
                stream_name: stream.spec.effective_name(r).to_string(),
                endpoint,
            },
        );
    }
    Ok(Ok(out))
}

/// The first referenced Secret that does not exist, as a message. Only the Secret's metadata
/// is read: the operator never sees the values, which reach the pod through `secretKeyRef`.
pub async fn missing_secret(
    ctx: &Context,
    ns: &str,
    secrets: &[(String, &'static str)],
) -> Result<Option<String>> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let mut checked = std::collections::BTreeSet::new();
    for (name, key) in secrets {
        if !checked.insert(name.clone()) {
            continue;
        }
        if api.get_metadata_opt(name).await?.is_none() {
            return Ok(Some(format!(
                "Secret {name} does not exist (it must hold the key {key})"
            )));
        }
    }
    Ok(None)
}

/// Server-side applies the ConfigMap, Service, claim (if any) and Deployment of `w` with the
/// operator's one field manager.
pub async fn apply_children<K>(obj: &K, ns: &str, w: &Workload, ctx: &Context) -> Result<()>
where
    K: Resource<DynamicType = ()>,
{
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let c = &ctx.client;
    let cm = workload::configmap(obj, w);
    Api::<ConfigMap>::namespaced(c.clone(), ns)
        .patch(&cm.name_any(), &pp, &Patch::Apply(&cm))
        .await?;
    let svc = workload::service(obj, w);
    Api::<Service>::namespaced(c.clone(), ns)
        .patch(&svc.name_any(), &pp, &Patch::Apply(&svc))
        .await?;
    if let Some(pvc) = workload::claim(obj, w) {
        Api::<PersistentVolumeClaim>::namespaced(c.clone(), ns)
            .patch(&pvc.name_any(), &pp, &Patch::Apply(&pvc))
            .await?;
    }
    let d = workload::deployment(obj, w, &ctx.settings);
    Api::<Deployment>::namespaced(c.clone(), ns)
        .patch(&d.name_any(), &pp, &Patch::Apply(&d))
        .await?;
    Ok(())
}

/// Writes `new` as the status of `obj` when it differs from `old`, and publishes an event
/// when the `Ready` reason changes (events on transitions, not on every reconcile). Updates
/// the `resources` metric either way.
#[allow(clippy::too_many_arguments)]
pub async fn write_status<K, S>(
    ctx: &Context,
    api: &Api<K>,
    obj: &K,
    kind: &'static str,
    old: Option<&S>,
    old_conditions: &[Condition],
    new: &S,
    verdict: &Verdict,
    warning: bool,
) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    let ready = match verdict.health {
        Health::Ready => "True",
        Health::Paused => "Unknown",
        _ => "False",
    };
    ctx.metrics.set_ready(kind, key, Some(ready));
    if old == Some(new) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": kind,
        "status": new,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    let type_ = if warning || verdict.health == Health::Stalled {
        EventType::Warning
    } else {
        EventType::Normal
    };
    ctx.announce(
        obj,
        ready_reason(old_conditions),
        type_,
        verdict.reason,
        verdict.message.clone(),
    )
    .await;
    Ok(())
}

/// The namespace of `obj` (always set on objects from a watch).
pub fn namespace<K: Resource>(obj: &K) -> Result<String> {
    obj.meta()
        .namespace
        .clone()
        .ok_or(Error::MissingObjectKey("namespace"))
}
