//! The `DeliveryStream` controller: runs each delivery stream in its own data-plane Deployment
//! (the resource mounted as a manifest, the source Stream reached through `--stream-endpoint`,
//! destination credentials from Secrets) and reports its state from DescribeDeliveryStream.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use kube::{
    runtime::{
        controller::Action,
        events::EventType,
        finalizer::{finalizer, Event as FinalizerEvent},
    },
    Api, ResourceExt,
};
use tracing::instrument;
use tributary_api::{DeletionPolicy, DeliveryStream};

use super::{
    is_paused, now,
    workload::{apply_children, missing_secret, namespace, stream_endpoints, write_status},
    Context, FINALIZER,
};
use crate::{
    dataplane::{ClientError, DeliveryStreamDescription},
    error::{Error, Result},
    resources::workload::{
        delivery_name, delivery_secrets, delivery_stream_ref, delivery_workload,
    },
    status::{delivery_status, WorkloadPhase},
};

/// The `kind` label of this controller's metrics.
const KIND: &str = "DeliveryStream";
/// How soon to look again while waiting for a Stream, a Secret or the pod.
const WAIT_REQUEUE: Duration = Duration::from_secs(5);

/// Reconciles one DeliveryStream: adds the finalizer, then applies (or, once deleted, cleans
/// up).
#[instrument(skip_all, fields(delivery_stream = %ds.name_any(), namespace = ds.namespace().unwrap_or_default()))]
pub async fn reconcile(ds: Arc<DeliveryStream>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let ns = namespace(ds.as_ref())?;
    let api: Api<DeliveryStream> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, ds, |event| async {
        match event {
            FinalizerEvent::Apply(d) => apply(d, &ctx).await,
            FinalizerEvent::Cleanup(d) => cleanup(d, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    if let Err(e) = &result {
        ctx.metrics.failure(KIND, e.reason());
    }
    result
}

/// Requeue policy of failed reconciles.
pub fn error_policy(_d: Arc<DeliveryStream>, err: &Error, ctx: Arc<Context>) -> Action {
    super::error_policy(err, &ctx.settings)
}

/// The Firehose name and the endpoint of the delivery stream's Service.
fn target(ds: &DeliveryStream, ns: &str, ctx: &Context) -> (String, String) {
    (
        ds.spec.effective_name(&ds.name_any()).to_string(),
        ctx.settings.endpoint(&delivery_name(ds), ns),
    )
}

/// Applies the spec:
///
/// 1. paused: report `Paused` and touch nothing else;
/// 2. wait for the source Stream (its endpoint) and the referenced Secrets;
/// 3. server-side apply the ConfigMap, Service, claim and Deployment;
/// 4. read the delivery stream's state through the Service and write the status.
async fn apply(ds: Arc<DeliveryStream>, ctx: &Context) -> Result<Action> {
    let ns = namespace(ds.as_ref())?;
    let api: Api<DeliveryStream> = Api::namespaced(ctx.client.clone(), &ns);
    let report = |phase: WorkloadPhase, described: Option<DeliveryStreamDescription>| {
        let ds = ds.clone();
        let api = api.clone();
        let ns = ns.clone();
        async move {
            let (_, endpoint) = target(&ds, &ns, ctx);
            let old = ds.status.as_ref();
            let new = delivery_status(
                old,
                ds.metadata.generation,
                described.as_ref(),
                &endpoint,
                &phase,
                &now(),
            );
            let conds = old.map(|s| s.conditions.as_slice()).unwrap_or_default();
            let warning = matches!(phase, WorkloadPhase::Retrying { .. });
            write_status(
                ctx,
                &api,
                ds.as_ref(),
                KIND,
                old,
                conds,
                &new,
                &phase.verdict(),
                warning,
            )
            .await
        }
    };

    if is_paused(ds.as_ref()) {
        report(WorkloadPhase::Paused, None).await?;
        return Ok(Action::await_change());
    }
    if ds.spec.redshift_destination_configuration.is_some() {
        report(
            WorkloadPhase::Stalled {
                reason: "UnsupportedDestination",
                message: "The data plane cannot take a Redshift (PostgreSQL) password from a Secret yet; create this delivery stream with the Firehose API".into(),
            },
            None,
        )
        .await?;
        return Ok(Action::requeue(ctx.settings.sync_interval()));
    }
    let refs: Vec<String> = delivery_stream_ref(&ds.spec).into_iter().collect();
    let endpoints: BTreeMap<String, String> = match stream_endpoints(ctx, &ns, &refs).await? {
        Ok(e) => e,
        Err(why) => {
            report(WorkloadPhase::WaitingForStream(why), None).await?;
            return Ok(Action::requeue(WAIT_REQUEUE));
        }
    };
    if let Some(why) = missing_secret(ctx, &ns, &delivery_secrets(&ds.spec)).await? {
        report(WorkloadPhase::SecretNotFound(why), None).await?;
        return Ok(Action::requeue(WAIT_REQUEUE));
    }
    let w = delivery_workload(&ds, endpoints, &ctx.settings);
    apply_children(ds.as_ref(), &ns, &w, ctx).await?;

    let (name, ep) = target(&ds, &ns, ctx);
    let (phase, described) = match ctx.dataplane.describe_delivery_stream(&ep, &name).await {
        Ok(d) => match d.delivery_stream_status.as_str() {
            "ACTIVE" => (WorkloadPhase::Active("ACTIVE"), Some(d)),
            "CREATING_FAILED" | "DELETING_FAILED" => (
                WorkloadPhase::Stalled {
                    reason: "DeliveryStreamFailed",
                    message: format!("Delivery stream {name} is {}", d.delivery_stream_status),
                },
                Some(d),
            ),
            other => (WorkloadPhase::Starting(other.to_string()), Some(d)),
        },
        Err(ClientError::Unreachable(m)) => (WorkloadPhase::WaitingForPods(m), None),
        // The pod answers but has not created the delivery stream from its manifest yet.
        Err(e) if e.is_not_found() => (WorkloadPhase::WaitingForPods(e.to_string()), None),
        Err(e) => {
            let e = Error::from(e);
            let phase = if e.is_transient() {
                WorkloadPhase::Retrying {
                    reason: e.reason(),
                    message: e.to_string(),
                }
            } else {
                WorkloadPhase::Stalled {
                    reason: e.reason(),
                    message: e.to_string(),
                }
            };
            (phase, None)
        }
    };
    let ready = matches!(
        phase,
        WorkloadPhase::Active(_) | WorkloadPhase::Stalled { .. }
    );
    report(phase, described).await?;
    Ok(if ready {
        Action::requeue(ctx.settings.sync_interval())
    } else {
        Action::requeue(WAIT_REQUEUE)
    })
}

/// Deletes the delivery stream in its pod (`deletionPolicy: Delete`), then lets the finalizer
/// go; Kubernetes removes the Deployment, Service and ConfigMap with the resource, and the claim
/// unless it is retained. A pod that is gone never blocks deletion.
async fn cleanup(ds: Arc<DeliveryStream>, ctx: &Context) -> Result<Action> {
    let ns = namespace(ds.as_ref())?;
    ctx.metrics
        .set_ready(KIND, format!("{ns}/{}", ds.name_any()), None);
    let (name, ep) = target(&ds, &ns, ctx);
    if ds.spec.deletion_policy == DeletionPolicy::Retain {
        ctx.publish(
            ds.as_ref(),
            EventType::Normal,
            "Retained",
            format!("Delivery stream {name} keeps its volume (deletionPolicy: Retain)"),
        )
        .await;
        return Ok(Action::await_change());
    }
    match ctx.dataplane.delete_delivery_stream(&ep, &name).await {
        Ok(()) => {
            ctx.publish(
                ds.as_ref(),
                EventType::Normal,
                "Deleted",
                format!("Deleted delivery stream {name}"),
            )
            .await
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            ctx.publish(
                ds.as_ref(),
                EventType::Warning,
                "CleanupSkipped",
                format!("Could not delete delivery stream {name} ({e}); its volume goes with it"),
            )
            .await
        }
    }
    Ok(Action::await_change())
}
