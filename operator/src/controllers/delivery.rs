//! The `DeliveryStream` controller: runs each delivery stream in its own data-plane Deployment
//! (the resource mounted as a manifest, the source Stream reached through `--stream-endpoint`,
//! destination credentials from Secrets) and reports its state from DescribeDeliveryStream.

use std::{sync::Arc, time::Duration};

use kube::{
    runtime::{controller::Action, events::EventType},
    Api, ResourceExt,
};
use tracing::instrument;
use tributary_api::{DeletionPolicy, DeliveryStream};

use super::{
    is_paused, now,
    workload::{apply_children, missing_secret, namespace, stream_endpoints, write_status},
    Context,
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
    super::reconcile_with_finalizer(ds, &ctx, KIND, |o| apply(o, &ctx), |o| cleanup(o, &ctx)).await
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
    let refs: Vec<String> = delivery_stream_ref(&ds.spec).into_iter().collect();
    let streams = match stream_endpoints(ctx, &ns, &refs).await? {
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
    let w = delivery_workload(&ds, &streams, &ctx.settings);
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
    ctx.forget(ds.as_ref());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::FINALIZER;
    use crate::{
        config::Settings,
        dataplane::fake,
        fixtures::{delivery_stream, echo, stream, ApiServer},
        metrics::Metrics,
    };
    use serde_json::{json, Value};

    const DS_PATH: &str = "/apis/tributary.dev/v1alpha1/namespaces/default/deliverystreams/archive";
    const STREAM_PATH: &str = "/apis/tributary.dev/v1alpha1/namespaces/default/streams/orders";
    const SECRET_PATH: &str = "/api/v1/namespaces/default/secrets/garage-keys";

    fn context(client: kube::Client, ep: &str) -> Arc<Context> {
        let mut settings = Settings::test();
        settings.config.dataplane_endpoint = ep.to_string();
        Arc::new(Context::new(client, settings, Arc::new(Metrics::new())))
    }

    /// The Stream `orders` once its stream exists: ARN and endpoint in its status.
    fn ready_stream() -> Value {
        let mut s = serde_json::to_value(stream("orders", 2)).unwrap();
        s["status"] = json!({
            "streamArn": "arn:aws:kinesis:us-east-1:000000000000:stream/orders",
            "endpoint": "http://orders.default.svc:4567",
        });
        s
    }

    fn status_of(server: &ApiServer) -> Value {
        server
            .requests()
            .iter()
            .find(|s| s.uri.starts_with(&format!("{DS_PATH}/status")))
            .expect("a status patch")
            .body["status"]
            .clone()
    }

    fn cond(status: &Value, t: &str) -> (String, String, String) {
        let c = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .unwrap();
        (
            c["status"].as_str().unwrap().into(),
            c["reason"].as_str().unwrap().into(),
            c["message"].as_str().unwrap().into(),
        )
    }

    #[tokio::test]
    async fn a_delivery_stream_waits_for_its_source_stream_without_deploying() {
        let (ep, dp) = fake::start().await;
        let ds = delivery_stream("archive", "orders");
        let obj = serde_json::to_value(&ds).unwrap();
        let (client, server) = ApiServer::start(echo(vec![(DS_PATH.into(), obj)]));
        let action = reconcile(Arc::new(ds), context(client, &ep)).await.unwrap();
        assert_eq!(action, Action::requeue(WAIT_REQUEUE));
        assert_eq!(
            server.lines(),
            [
                format!("GET {STREAM_PATH}"),
                format!("PATCH {DS_PATH}/status"),
                "POST /apis/events.k8s.io/v1/namespaces/default/events".into(),
            ]
        );
        let (status, reason, message) = cond(&status_of(&server), "Ready");
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "WaitingForStream")
        );
        assert_eq!(message, "Stream orders does not exist");
        assert!(dp.lock().unwrap().calls.is_empty());
    }

    #[tokio::test]
    async fn a_ready_source_gets_the_deployment_wired_to_it_and_the_arn_is_published() {
        let (ep, dp) = fake::start().await;
        dp.lock()
            .unwrap()
            .delivery_streams
            .insert("archive".into(), "ACTIVE".into());
        let ds = delivery_stream("archive", "orders");
        let obj = serde_json::to_value(&ds).unwrap();
        let (client, server) = ApiServer::start(echo(vec![
            (DS_PATH.into(), obj),
            (STREAM_PATH.into(), ready_stream()),
        ]));
        let action = reconcile(Arc::new(ds), context(client, &ep)).await.unwrap();
        assert_eq!(action, Action::requeue(Duration::from_secs(60)));
        assert_eq!(
            server.lines(),
            [
                format!("GET {STREAM_PATH}"),
                "PATCH /api/v1/namespaces/default/configmaps/archive-firehose-config".into(),
                "PATCH /api/v1/namespaces/default/services/archive-firehose".into(),
                "PATCH /api/v1/namespaces/default/persistentvolumeclaims/archive-firehose-data"
                    .into(),
                "PATCH /apis/apps/v1/namespaces/default/deployments/archive-firehose".into(),
                format!("PATCH {DS_PATH}/status"),
                "POST /apis/events.k8s.io/v1/namespaces/default/events".into(),
            ]
        );
        let seen = server.requests();
        for r in &seen[1..5] {
            assert!(
                r.uri.contains("fieldManager=tributary-operator"),
                "{}",
                r.uri
            );
            assert_eq!(r.content_type, "application/apply-patch+yaml");
        }
        let args = seen[4].body["spec"]["template"]["spec"]["containers"][0]["args"].clone();
        let args: Vec<String> = serde_json::from_value(args).unwrap();
        assert!(args
            .windows(2)
            .any(|w| w == ["--stream-endpoint", "orders=http://orders.default.svc:4567"]));
        let status = status_of(&server);
        assert_eq!(cond(&status, "Ready").0, "True");
        assert_eq!(cond(&status, "Ready").1, "Active");
        assert_eq!(
            status["deliveryStreamArn"],
            "arn:aws:firehose:us-east-1:000000000000:deliverystream/archive"
        );
        assert_eq!(status["deliveryStreamStatus"], "ACTIVE");
        assert_eq!(status["observedGeneration"], 1);
        assert_eq!(status["endpoint"], ep.as_str());
        assert_eq!(dp.lock().unwrap().calls, ["DescribeDeliveryStream"]);
    }

    #[tokio::test]
    async fn a_missing_secret_stalls_with_a_clear_message_and_nothing_is_deployed() {
        let (ep, _dp) = fake::start().await;
        let mut ds = delivery_stream("archive", "orders");
        ds.spec
            .extended_s3_destination_configuration
            .as_mut()
            .unwrap()
            .credentials_secret_ref = Some(tributary_api::delivery::SecretRef {
            name: "garage-keys".into(),
        });
        let obj = serde_json::to_value(&ds).unwrap();
        let (client, server) = ApiServer::start(echo(vec![
            (DS_PATH.into(), obj.clone()),
            (STREAM_PATH.into(), ready_stream()),
        ]));
        reconcile(Arc::new(ds.clone()), context(client, &ep))
            .await
            .unwrap();
        assert_eq!(
            server.lines(),
            [
                format!("GET {STREAM_PATH}"),
                format!("GET {SECRET_PATH}"),
                format!("PATCH {DS_PATH}/status"),
                "POST /apis/events.k8s.io/v1/namespaces/default/events".into(),
            ]
        );
        let status = status_of(&server);
        let (st, reason, message) = cond(&status, "Stalled");
        assert_eq!((st.as_str(), reason.as_str()), ("True", "SecretNotFound"));
        assert_eq!(
            message,
            "Secret garage-keys does not exist (it must hold the key AWS_ACCESS_KEY_ID)"
        );
        let event = &server.requests()[3].body;
        assert_eq!(event["type"], "Warning");

        // Once the Secret exists (only its metadata is read), the pod is deployed.
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "garage-keys", "namespace": "default"},
            "data": {"AWS_ACCESS_KEY_ID": "eA==", "AWS_SECRET_ACCESS_KEY": "eA=="}});
        let (client, server) = ApiServer::start(echo(vec![
            (DS_PATH.into(), obj),
            (STREAM_PATH.into(), ready_stream()),
            (SECRET_PATH.into(), secret),
        ]));
        reconcile(Arc::new(ds), context(client, &ep)).await.unwrap();
        let lines = server.lines();
        assert!(lines.contains(
            &"PATCH /apis/apps/v1/namespaces/default/deployments/archive-firehose".to_string()
        ));
        let get = &server.requests()[1];
        assert!(get.uri.starts_with(SECRET_PATH));
    }

    #[tokio::test]
    async fn a_redshift_destination_waits_for_its_password_secret_then_runs_with_it() {
        const PG_PATH: &str = "/api/v1/namespaces/default/secrets/pg-password";
        let (ep, dp) = fake::start().await;
        dp.lock()
            .unwrap()
            .delivery_streams
            .insert("loads".into(), "ACTIVE".into());
        let spec = serde_json::from_value(json!({
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
        ds.metadata.generation = Some(1);
        ds.metadata.finalizers = Some(vec![FINALIZER.into()]);
        let path = "/apis/tributary.dev/v1alpha1/namespaces/default/deliverystreams/loads";
        let obj = serde_json::to_value(&ds).unwrap();
        let (client, server) = ApiServer::start(echo(vec![(path.into(), obj.clone())]));
        reconcile(Arc::new(ds.clone()), context(client, &ep))
            .await
            .unwrap();
        let status = server
            .requests()
            .iter()
            .find(|r| r.uri.starts_with(&format!("{path}/status")))
            .unwrap()
            .body["status"]
            .clone();
        let (st, reason, message) = cond(&status, "Stalled");
        assert_eq!((st.as_str(), reason.as_str()), ("True", "SecretNotFound"));
        assert_eq!(
            message,
            "Secret pg-password does not exist (it must hold the key password)"
        );

        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "pg-password", "namespace": "default"},
            "data": {"password": "eA=="}});
        let (client, server) =
            ApiServer::start(echo(vec![(path.into(), obj), (PG_PATH.into(), secret)]));
        reconcile(Arc::new(ds), context(client, &ep)).await.unwrap();
        let seen = server.requests();
        let dep = seen
            .iter()
            .find(|r| r.uri.contains("/deployments/loads-firehose"))
            .expect("the Deployment is applied");
        let env = &dep.body["spec"]["template"]["spec"]["containers"][0]["env"];
        assert!(env
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "TRIBUTARY_REDSHIFT_PASSWORD"
                && e["valueFrom"]["secretKeyRef"]
                    == json!({"name": "pg-password", "key": "password", "optional": false})));
        let status = seen
            .iter()
            .find(|r| r.uri.starts_with(&format!("{path}/status")))
            .unwrap()
            .body["status"]
            .clone();
        assert_eq!(cond(&status, "Ready").1, "Active");
    }

    #[tokio::test]
    async fn deleting_a_delivery_stream_deletes_it_in_its_pod_and_releases_the_finalizer() {
        let (ep, dp) = fake::start().await;
        dp.lock()
            .unwrap()
            .delivery_streams
            .insert("archive".into(), "ACTIVE".into());
        let mut ds = delivery_stream("archive", "orders");
        ds.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        let obj = serde_json::to_value(&ds).unwrap();
        let (client, server) = ApiServer::start(echo(vec![(DS_PATH.into(), obj)]));
        reconcile(Arc::new(ds), context(client, &ep)).await.unwrap();
        assert!(dp.lock().unwrap().delivery_streams.is_empty());
        assert_eq!(
            server.lines(),
            [
                "POST /apis/events.k8s.io/v1/namespaces/default/events".to_string(),
                format!("PATCH {DS_PATH}"),
            ]
        );
        assert_eq!(server.requests()[0].body["reason"], "Deleted");
    }

    #[tokio::test]
    async fn a_paused_delivery_stream_only_reports_that_it_is_paused() {
        let (ep, dp) = fake::start().await;
        let mut ds = delivery_stream("archive", "orders");
        ds.metadata.annotations = Some(
            [(
                super::super::PAUSE_ANNOTATION.to_string(),
                "true".to_string(),
            )]
            .into(),
        );
        let obj = serde_json::to_value(&ds).unwrap();
        let (client, server) = ApiServer::start(echo(vec![(DS_PATH.into(), obj)]));
        let action = reconcile(Arc::new(ds), context(client, &ep)).await.unwrap();
        assert_eq!(action, Action::await_change());
        assert_eq!(server.lines()[0], format!("PATCH {DS_PATH}/status"));
        assert_eq!(cond(&status_of(&server), "Ready").1, "Paused");
        assert!(dp.lock().unwrap().calls.is_empty());
    }
}
