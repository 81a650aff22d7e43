//! The `Stream` controller: runs each stream's data-plane pods and makes the stream in the data
//! plane match the spec (creation, shard count, mode, retention, tags, encryption, record size),
//! reverting drift on every resync.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ConfigMap, Secret, Service},
    policy::v1::PodDisruptionBudget,
};
use kube::{
    api::{Patch, PatchParams, PostParams},
    runtime::{controller::Action, events::EventType},
    Api, ResourceExt,
};
use serde_json::json;
use tracing::{debug, info, instrument};
use tributary_api::{
    DeletionPolicy, EncryptionType, Stream, StreamMode, StreamStatus, API_GROUP, API_VERSION,
};

use super::{is_paused, now, Context, FIELD_MANAGER};
use crate::{
    dataplane::{next_shard_step, ClientError, ClusterState, CreateStream, StreamSummary},
    error::{Error, Result},
    resources::{
        cluster::{self, PodsObserved},
        cluster_secret_name,
        configmap::configmap,
        pdb::pdb,
        selector_string, service,
        statefulset::statefulset,
    },
    status::{ready_reason, stream_status, Health, StreamObservation, StreamPhase},
};

/// The `kind` label of this controller's metrics.
const KIND: &str = "Stream";
/// How soon to look again while the data plane works on a change.
const PROGRESS_REQUEUE: Duration = Duration::from_secs(2);
/// How soon to look again while the pods start.
const PODS_REQUEUE: Duration = Duration::from_secs(5);

/// Reconciles one Stream: adds the finalizer, then applies (or, once deleted, cleans up).
#[instrument(skip_all, fields(stream = %stream.name_any(), namespace = stream.namespace().unwrap_or_default()))]
pub async fn reconcile(stream: Arc<Stream>, ctx: Arc<Context>) -> Result<Action> {
    super::reconcile_with_finalizer(stream, &ctx, KIND, |o| apply(o, &ctx), |o| cleanup(o, &ctx))
        .await
}

/// Requeue policy of failed reconciles.
pub fn error_policy(_stream: Arc<Stream>, err: &Error, ctx: Arc<Context>) -> Action {
    super::error_policy(err, &ctx.settings)
}

/// The stream name in the Kinesis API and the endpoint of its pods.
fn target(stream: &Stream, ctx: &Context) -> Result<(String, String)> {
    let ns = stream
        .namespace()
        .ok_or(Error::MissingObjectKey("namespace"))?;
    let name = stream.name_any();
    Ok((
        stream.spec.effective_name(&name).to_string(),
        ctx.settings.endpoint(&name, &ns),
    ))
}

/// Applies the spec:
///
/// 1. paused: report `Paused` and touch nothing else;
/// 2. server-side apply the ConfigMap, Services, StatefulSet and PodDisruptionBudget (drift in
///    them is reverted because the controller owns and watches them);
/// 3. converge the stream in the data plane, one change per pass;
/// 4. write the status if it changed, with an event when the Ready reason changes.
async fn apply(stream: Arc<Stream>, ctx: &Context) -> Result<Action> {
    let ns = stream
        .namespace()
        .ok_or(Error::MissingObjectKey("namespace"))?;
    let api: Api<Stream> = Api::namespaced(ctx.client.clone(), &ns);

    if is_paused(stream.as_ref()) {
        write_status(&api, &stream, None, &StreamPhase::Paused, None, ctx).await?;
        return Ok(Action::await_change());
    }

    let pods = apply_children(&stream, &ns, ctx).await?;

    let (phase, summary, err) = match converge(&stream, pods.as_ref(), ctx).await {
        Ok((phase, summary)) => (phase, summary, None),
        Err(e) => {
            let phase = if e.is_transient() {
                StreamPhase::Retrying {
                    reason: e.reason(),
                    message: e.to_string(),
                }
            } else {
                ctx.metrics.failure(KIND, e.reason());
                StreamPhase::Stalled {
                    reason: e.reason(),
                    message: e.to_string(),
                }
            };
            let transient = e.is_transient();
            (phase, None, transient.then_some(e))
        }
    };
    let reported = pods.as_ref().map(|p| (p.replicas, p.ready));
    write_status(&api, &stream, summary.as_ref(), &phase, reported, ctx).await?;
    if let Some(e) = err {
        return Err(e);
    }
    Ok(match phase {
        StreamPhase::Active | StreamPhase::Stalled { .. } => {
            Action::requeue(ctx.settings.sync_interval())
        }
        StreamPhase::WaitingForPods(_) => Action::requeue(PODS_REQUEUE),
        _ => Action::requeue(PROGRESS_REQUEUE),
    })
}

/// A multi-pod stream's pods as this reconcile left them.
#[derive(Debug, Clone)]
struct Pods {
    /// The StatefulSet's replicas just applied.
    replicas: i32,
    /// Its ready pods, as the API server reported them in the apply's answer.
    ready: Option<i32>,
    /// The coordinator's `GET /cluster`, when it answered (before the apply).
    cluster: Option<ClusterState>,
}

/// Server-side applies every child object with the operator's one field manager. For a
/// multi-pod stream it first makes sure the cluster Secret exists and asks the coordinator
/// which pods hold data, and returns how many pods it applied.
async fn apply_children(stream: &Stream, ns: &str, ctx: &Context) -> Result<Option<Pods>> {
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let c = &ctx.client;
    let cm = configmap(stream);
    Api::<ConfigMap>::namespaced(c.clone(), ns)
        .patch(&cm.name_any(), &pp, &Patch::Apply(&cm))
        .await?;
    let services: Api<Service> = Api::namespaced(c.clone(), ns);
    for svc in [
        service::headless_service(stream),
        service::client_service(stream),
    ] {
        services
            .patch(&svc.name_any(), &pp, &Patch::Apply(&svc))
            .await?;
    }
    let mut pods = None;
    let replicas = if cluster::is_multi_pod(stream) {
        ensure_cluster_secret(stream, ns, ctx).await?;
        let ep = ctx.settings.coordinator_metrics(&stream.name_any(), ns);
        let view = match ctx.dataplane.cluster_state(&ep).await {
            Ok(v) => Some(v),
            Err(e) => {
                debug!(error = %e, "The coordinator's /cluster did not answer.");
                None
            }
        };
        let observed = PodsObserved {
            current: stream.status.as_ref().and_then(|s| s.replicas),
            data_holding: view.as_ref().map(ClusterState::data_holding_replicas),
        };
        let replicas = cluster::desired_replicas(stream, &observed);
        pods = Some(Pods {
            replicas,
            ready: None,
            cluster: view,
        });
        replicas
    } else {
        1
    };
    let sts = statefulset(stream, &ctx.settings, replicas);
    let applied = Api::<StatefulSet>::namespaced(c.clone(), ns)
        .patch(&sts.name_any(), &pp, &Patch::Apply(&sts))
        .await?;
    if let Some(p) = pods.as_mut() {
        p.ready = applied.status.map(|st| st.ready_replicas.unwrap_or(0));
    }
    let budget = pdb(stream);
    Api::<PodDisruptionBudget>::namespaced(c.clone(), ns)
        .patch(&budget.name_any(), &pp, &Patch::Apply(&budget))
        .await?;
    Ok(pods)
}

/// Creates the Secret `NAME-cluster` with a random token when it does not exist. It is never
/// applied again (a token rotated under running pods would split the cluster) and is owned by
/// the Stream, so it goes with it. Only its metadata is ever read.
async fn ensure_cluster_secret(stream: &Stream, ns: &str, ctx: &Context) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let name = cluster_secret_name(stream);
    if api.get_metadata_opt(&name).await?.is_some() {
        return Ok(());
    }
    let token = cluster::random_token().map_err(Error::Token)?;
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api
        .create(&pp, &cluster::cluster_secret(stream, &token))
        .await
    {
        Ok(_) => {
            info!(secret = %name, "Created the cluster Secret.");
            Ok(())
        }
        // Created meanwhile (another reconcile, or by hand): keep that one.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether every pod of a multi-pod stream joined the cluster and is live; `None` when it has.
fn pods_missing(pods: Option<&Pods>) -> Option<String> {
    let pods = pods?;
    let Some(view) = pods.cluster.as_ref() else {
        return Some("the coordinator (pod 0) does not answer GET /cluster yet".into());
    };
    let live = view.live_below(pods.replicas);
    (live < pods.replicas).then(|| {
        format!(
            "{live} of {} pods are live members of the stream's cluster",
            pods.replicas
        )
    })
}

/// Brings the stream in the data plane one step closer to the spec and says where it stands.
/// Changes that make the stream UPDATING are made one per pass; the next pass looks again.
///
/// For a multi-pod stream, a reshard that adds shards waits until every pod of the (already
/// scaled-up) StatefulSet is a live member, so the coordinator places the new shards on the
/// new pods; and the stream is Ready only with every pod live.
async fn converge(
    stream: &Stream,
    pods: Option<&Pods>,
    ctx: &Context,
) -> Result<(StreamPhase, Option<StreamSummary>)> {
    let (name, ep) = target(stream, ctx)?;
    let spec = &stream.spec;
    let dp = &ctx.dataplane;
    let want_shards = match spec.stream_mode {
        StreamMode::Provisioned => spec.shard_count,
        StreamMode::OnDemand => None,
    };

    let summary = match dp.describe_stream_summary(&ep, &name).await {
        Ok(s) => s,
        Err(ClientError::Unreachable(m)) => return Ok((StreamPhase::WaitingForPods(m), None)),
        Err(e) if e.is_not_found() => {
            // A multi-pod stream is created once every pod joined: the coordinator places the
            // shards on the live pods.
            if let Some(m) = pods_missing(pods) {
                return Ok((
                    StreamPhase::WaitingForPods(format!("before creating the stream: {m}")),
                    None,
                ));
            }
            let create = CreateStream {
                name: &name,
                shard_count: want_shards,
                mode: spec.stream_mode.as_str(),
                tags: &spec.tags,
            };
            match dp.create_stream(&ep, &create).await {
                // In use: the data plane created it from its manifest meanwhile.
                Ok(()) => {}
                Err(e) if e.is_in_use() => {}
                Err(e) => return Err(e.into()),
            }
            return Ok((StreamPhase::Creating, None));
        }
        Err(e) => return Err(e.into()),
    };

    let open = summary.open_shard_count;
    let resharding = |step| StreamPhase::Resharding {
        from: open,
        target: want_shards.unwrap_or(open),
        step,
    };
    match summary.stream_status.as_str() {
        "ACTIVE" => {}
        "CREATING" => return Ok((StreamPhase::Creating, Some(summary))),
        "UPDATING" => {
            let phase = match want_shards {
                Some(t) if t != open => resharding(next_shard_step(open, t)),
                _ => StreamPhase::Updating("Updating"),
            };
            return Ok((phase, Some(summary)));
        }
        _ => return Ok((StreamPhase::Updating("Deleting"), Some(summary))),
    }

    if summary.mode() != spec.stream_mode.as_str() {
        dp.update_stream_mode(&ep, &summary.stream_arn, spec.stream_mode.as_str())
            .await?;
        return Ok((StreamPhase::Updating("ChangingMode"), Some(summary)));
    }

    if let Some(t) = want_shards.filter(|t| *t != open) {
        let step = next_shard_step(open, t);
        if step > open {
            if let Some(m) = pods_missing(pods) {
                return Ok((
                    StreamPhase::WaitingForPods(format!("before resharding to {step}: {m}")),
                    Some(summary),
                ));
            }
        }
        match dp.update_shard_count(&ep, &name, step).await {
            Ok(()) => {}
            Err(e) if e.is_in_use() => {}
            Err(e @ ClientError::Aws { .. }) if !e.is_transient() => {
                return Err(Error::InvalidSpec {
                    reason: "ReshardRejected",
                    message: format!("The data plane rejected UpdateShardCount to {step}: {e}"),
                })
            }
            Err(e) => return Err(e.into()),
        }
        return Ok((resharding(step), Some(summary)));
    }

    if summary.retention_period_hours != spec.retention_period_hours {
        dp.set_retention(
            &ep,
            &name,
            summary.retention_period_hours,
            spec.retention_period_hours,
        )
        .await?;
        return Ok((StreamPhase::Updating("ChangingRetention"), Some(summary)));
    }

    let want_kms = spec
        .encryption
        .as_ref()
        .filter(|e| e.encryption_type == EncryptionType::Kms)
        .and_then(|e| e.key_id.clone());
    let have_kms = (summary.encryption_type.as_deref() == Some("KMS"))
        .then(|| summary.key_id.clone().unwrap_or_default());
    if want_kms != have_kms {
        dp.set_encryption(&ep, &name, want_kms.as_deref(), have_kms.as_deref())
            .await?;
        return Ok((StreamPhase::Updating("ChangingEncryption"), Some(summary)));
    }

    if let (Some(want), Some(have)) = (spec.max_record_size_in_ki_b, summary.max_record_size_in_kib)
    {
        if want != have {
            dp.update_max_record_size(&ep, &summary.stream_arn, want)
                .await?;
            return Ok((
                StreamPhase::Updating("ChangingMaxRecordSize"),
                Some(summary),
            ));
        }
    }

    sync_tags(ctx, &ep, &name, &spec.tags).await?;
    if let Some(m) = pods_missing(pods) {
        return Ok((StreamPhase::WaitingForPods(m), Some(summary)));
    }
    Ok((StreamPhase::Active, Some(summary)))
}

/// Makes the stream's tags exactly the spec's: the Stream resource is the one source of truth.
async fn sync_tags(
    ctx: &Context,
    ep: &str,
    name: &str,
    want: &BTreeMap<String, String>,
) -> Result<()> {
    let have = ctx.dataplane.list_tags(ep, name).await?;
    let add: BTreeMap<String, String> = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove: Vec<String> = have
        .keys()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect();
    if !add.is_empty() {
        ctx.dataplane.add_tags(ep, name, &add).await?;
    }
    if !remove.is_empty() {
        ctx.dataplane.remove_tags(ep, name, &remove).await?;
    }
    Ok(())
}

/// Computes the status for `phase` and writes it when it changed, publishing an event when the
/// Ready reason changes (events on transitions, not on every reconcile).
async fn write_status(
    api: &Api<Stream>,
    stream: &Stream,
    summary: Option<&StreamSummary>,
    phase: &StreamPhase,
    pods: Option<(i32, Option<i32>)>,
    ctx: &Context,
) -> Result<()> {
    let (_, endpoint) = target(stream, ctx)?;
    let obs = StreamObservation {
        old: stream.status.as_ref(),
        generation: stream.metadata.generation,
        mode: stream.spec.stream_mode,
        summary,
        selector: selector_string(stream),
        endpoint,
        pods,
    };
    let new: StreamStatus = stream_status(&obs, phase, &now());
    let verdict = phase.verdict(summary);
    let key = format!(
        "{}/{}",
        stream.namespace().unwrap_or_default(),
        stream.name_any()
    );
    let ready = match verdict.health {
        Health::Ready => "True",
        Health::Paused => "Unknown",
        _ => "False",
    };
    ctx.metrics.set_ready(KIND, key, Some(ready));
    if stream.status.as_ref() == Some(&new) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": KIND,
        "status": new,
    });
    api.patch_status(
        &stream.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    let old_reason = stream
        .status
        .as_ref()
        .and_then(|s| ready_reason(&s.conditions));
    let type_ = match verdict.health {
        Health::Stalled => EventType::Warning,
        _ if matches!(phase, StreamPhase::Retrying { .. }) => EventType::Warning,
        _ => EventType::Normal,
    };
    ctx.announce(stream, old_reason, type_, verdict.reason, verdict.message)
        .await;
    Ok(())
}

/// Cleans up a deleted Stream according to `deletionPolicy`, then lets the finalizer go.
///
/// It never wedges a namespace: when the data plane is gone (pods deleted, namespace
/// terminating) there is nothing left to delete, so the finalizer is released with a warning
/// event. Only a stream that is busy (UPDATING) makes it wait and retry.
async fn cleanup(stream: Arc<Stream>, ctx: &Context) -> Result<Action> {
    let key = format!(
        "{}/{}",
        stream.namespace().unwrap_or_default(),
        stream.name_any()
    );
    ctx.metrics.set_ready(KIND, key, None);
    ctx.forget(stream.as_ref());
    let (name, ep) = target(&stream, ctx)?;
    if stream.spec.deletion_policy == DeletionPolicy::Retain {
        ctx.publish(
            stream.as_ref(),
            EventType::Normal,
            "Retained",
            format!("Stream {name} and its volumes are kept (deletionPolicy: Retain)"),
        )
        .await;
        return Ok(Action::await_change());
    }
    match ctx.dataplane.delete_stream(&ep, &name).await {
        Ok(()) => {
            ctx.publish(
                stream.as_ref(),
                EventType::Normal,
                "Deleted",
                format!("Deleted stream {name}"),
            )
            .await
        }
        Err(e) if e.is_not_found() => {}
        Err(e) if e.is_in_use() => return Err(e.into()),
        Err(e) => {
            ctx.publish(
                stream.as_ref(),
                EventType::Warning,
                "CleanupSkipped",
                format!(
                    "Could not delete stream {name} ({e}); its volumes go with its StatefulSet"
                ),
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
        dataplane::fake::{self, FakeStream},
        fixtures::{echo, stream, ApiServer},
        metrics::Metrics,
    };
    use tributary_api::status::{find_condition, ConditionStatus, READY, RECONCILING, STALLED};

    const STREAM_PATH: &str = "/apis/tributary.dev/v1alpha1/namespaces/default/streams/orders";

    /// A context whose data-plane endpoint is the fake at `ep`.
    fn context(client: kube::Client, ep: &str) -> Arc<Context> {
        let mut settings = Settings::test();
        settings.config.dataplane_endpoint = ep.to_string();
        settings.config.dataplane_coordinator_metrics = ep.to_string();
        Arc::new(Context::new(client, settings, Arc::new(Metrics::new())))
    }

    /// A mocked API server holding `s`.
    fn api_with(s: &Stream) -> (kube::Client, ApiServer) {
        ApiServer::start(echo(vec![(
            STREAM_PATH.into(),
            serde_json::to_value(s).unwrap(),
        )]))
    }

    fn fake_stream(shards: i32) -> FakeStream {
        FakeStream {
            status: "ACTIVE".into(),
            mode: "PROVISIONED".into(),
            shards,
            retention: 24,
            tags: Default::default(),
            consumers: Default::default(),
        }
    }

    fn children() -> Vec<&'static str> {
        vec![
            "PATCH /api/v1/namespaces/default/configmaps/orders-config",
            "PATCH /api/v1/namespaces/default/services/orders-pods",
            "PATCH /api/v1/namespaces/default/services/orders",
            "PATCH /apis/apps/v1/namespaces/default/statefulsets/orders",
            "PATCH /apis/policy/v1/namespaces/default/poddisruptionbudgets/orders",
        ]
    }

    fn status_patch(server: &ApiServer) -> serde_json::Value {
        let seen = server.requests();
        let p = seen
            .iter()
            .find(|s| s.uri.starts_with(&format!("{STREAM_PATH}/status")))
            .expect("a status patch");
        assert!(
            p.uri.contains("fieldManager=tributary-operator"),
            "{}",
            p.uri
        );
        assert!(p.uri.contains("force=true"));
        assert_eq!(p.content_type, "application/apply-patch+yaml");
        p.body["status"].clone()
    }

    fn cond(status: &serde_json::Value, t: &str) -> (String, String) {
        let c = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .unwrap();
        (
            c["status"].as_str().unwrap().into(),
            c["reason"].as_str().unwrap().into(),
        )
    }

    #[tokio::test]
    async fn a_stream_without_finalizer_only_gets_the_finalizer_added() {
        let (ep, dp) = fake::start().await;
        let mut s = stream("orders", 2);
        s.metadata.finalizers = None;
        let obj = serde_json::to_value(&s).unwrap();
        let (client, server) = ApiServer::start(echo(vec![(STREAM_PATH.into(), obj)]));
        reconcile(Arc::new(s), context(client, &ep)).await.unwrap();
        let seen = server.requests();
        assert_eq!(server.lines(), [format!("PATCH {STREAM_PATH}")]);
        assert_eq!(seen[0].content_type, "application/json-patch+json");
        assert!(seen[0].body.to_string().contains(FINALIZER));
        assert!(dp.lock().unwrap().calls.is_empty());
    }

    #[tokio::test]
    async fn a_new_stream_gets_its_children_and_is_created_in_the_data_plane() {
        let (ep, dp) = fake::start().await;
        let s = stream("orders", 2);
        let (client, server) = api_with(&s);
        let action = reconcile(Arc::new(s), context(client, &ep)).await.unwrap();
        assert_eq!(action, Action::requeue(PROGRESS_REQUEUE));

        let mut expected: Vec<String> = children().into_iter().map(String::from).collect();
        expected.push(format!("PATCH {STREAM_PATH}/status"));
        expected.push("POST /apis/events.k8s.io/v1/namespaces/default/events".into());
        assert_eq!(server.lines(), expected);
        assert_eq!(
            dp.lock().unwrap().calls,
            ["DescribeStreamSummary", "CreateStream"]
        );
        assert_eq!(dp.lock().unwrap().streams["orders"].shards, 2);

        let status = status_patch(&server);
        assert_eq!(cond(&status, READY), ("False".into(), "Creating".into()));
        assert_eq!(
            cond(&status, RECONCILING),
            ("True".into(), "Creating".into())
        );
        assert_eq!(status["observedGeneration"], 0);
        assert_eq!(status["endpoint"], ep.as_str());
        let event = &server.requests()[6].body;
        assert_eq!(event["reason"], "Creating");
        assert_eq!(event["regarding"]["name"], "orders");
    }

    #[tokio::test]
    async fn an_active_stream_that_matches_its_spec_becomes_ready() {
        let (ep, dp) = fake::start().await;
        dp.lock()
            .unwrap()
            .streams
            .insert("orders".into(), fake_stream(2));
        let s = stream("orders", 2);
        let (client, server) = api_with(&s);
        let action = reconcile(Arc::new(s), context(client, &ep)).await.unwrap();
        assert_eq!(action, Action::requeue(Duration::from_secs(60)));
        let status = status_patch(&server);
        assert_eq!(cond(&status, READY), ("True".into(), "Active".into()));
        assert_eq!(cond(&status, STALLED).0, "False");
        assert_eq!(status["observedGeneration"], 1);
        assert_eq!(status["openShardCount"], 2);
        assert_eq!(
            status["streamArn"],
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
        );
        assert_eq!(
            status["selector"],
            "app.kubernetes.io/component=stream,app.kubernetes.io/instance=orders,app.kubernetes.io/name=tributary"
        );
        assert_eq!(
            dp.lock().unwrap().calls,
            ["DescribeStreamSummary", "ListTagsForStream"]
        );
    }

    #[tokio::test]
    async fn a_converged_stream_writes_no_status_and_publishes_no_event() {
        let (ep, dp) = fake::start().await;
        dp.lock()
            .unwrap()
            .streams
            .insert("orders".into(), fake_stream(2));
        // First pass computes the status; the second starts from it.
        let mut s = stream("orders", 2);
        let (client, server) = api_with(&s);
        reconcile(Arc::new(s.clone()), context(client, &ep))
            .await
            .unwrap();
        s.status = Some(serde_json::from_value(status_patch(&server)).unwrap());

        let (client, server) = api_with(&s);
        reconcile(Arc::new(s), context(client, &ep)).await.unwrap();
        assert_eq!(server.lines(), children());
    }

    #[tokio::test]
    async fn a_larger_shard_count_reshards_in_steps_of_at_most_double() {
        let (ep, dp) = fake::start().await;
        dp.lock()
            .unwrap()
            .streams
            .insert("orders".into(), fake_stream(2));
        let mut s = stream("orders", 8);
        s.metadata.generation = Some(2);
        let (client, server) = api_with(&s);
        reconcile(Arc::new(s), context(client, &ep)).await.unwrap();
        assert_eq!(
            dp.lock().unwrap().calls,
            ["DescribeStreamSummary", "UpdateShardCount"]
        );
        assert_eq!(dp.lock().unwrap().streams["orders"].shards, 4);
        let status = status_patch(&server);
        assert_eq!(
            cond(&status, RECONCILING),
            ("True".into(), "Resharding".into())
        );
        assert_eq!(status["resharding"]["fromCount"], 2);
        assert_eq!(status["resharding"]["targetCount"], 8);
        assert_eq!(status["observedGeneration"], 0);
    }

    const SECRET_PATH: &str = "/api/v1/namespaces/default/secrets/orders-cluster";
    const STS_PATH: &str = "/apis/apps/v1/namespaces/default/statefulsets/orders";

    fn multi_pod(shards: i32, per_pod: i32) -> Stream {
        let mut s = stream("orders", shards);
        s.spec.shards_per_pod = Some(per_pod);
        s
    }

    /// `GET /cluster` with `members` as (live, open shards, closed shards) by ordinal.
    fn cluster_view(members: &[(bool, i32, i32)]) -> serde_json::Value {
        let members: Vec<_> = members
            .iter()
            .enumerate()
            .map(|(i, (live, open, closed))| {
                json!({"ordinal": i, "url": format!("http://orders-{i}.orders-pods.default.svc:4567"),
                       "live": live, "openShards": open, "closedShards": closed})
            })
            .collect();
        json!({"coordinator": true, "ordinal": 0, "version": 3, "members": members})
    }

    fn applied_replicas(server: &ApiServer) -> i64 {
        let seen = server.requests();
        let sts = seen
            .iter()
            .find(|s| s.line() == format!("PATCH {STS_PATH}"))
            .expect("the StatefulSet applied");
        sts.body["spec"]["replicas"].as_i64().unwrap()
    }

    #[tokio::test]
    async fn a_multi_pod_stream_gets_its_secret_once_and_a_pod_per_shards_per_pod() {
        let (ep, dp) = fake::start().await;
        {
            let mut st = dp.lock().unwrap();
            st.streams.insert("orders".into(), fake_stream(4));
            st.cluster = Some(cluster_view(&[(true, 2, 0), (true, 2, 0)]));
        }
        let s = multi_pod(4, 2);
        let (client, server) = api_with(&s);
        let action = reconcile(Arc::new(s.clone()), context(client, &ep))
            .await
            .unwrap();
        assert_eq!(action, Action::requeue(Duration::from_secs(60)));
        let mut expected: Vec<String> = children()[..3].iter().map(|l| l.to_string()).collect();
        expected.extend([
            format!("GET {SECRET_PATH}"),
            "POST /api/v1/namespaces/default/secrets".to_string(),
            format!("PATCH {STS_PATH}"),
            children()[4].to_string(),
            format!("PATCH {STREAM_PATH}/status"),
            "POST /apis/events.k8s.io/v1/namespaces/default/events".to_string(),
        ]);
        assert_eq!(server.lines(), expected);
        let secret = server.requests()[4].body.clone();
        assert_eq!(secret["metadata"]["name"], "orders-cluster");
        assert_eq!(secret["metadata"]["ownerReferences"][0]["kind"], "Stream");
        let token = secret["data"]["token"].as_str().unwrap();
        assert!(token.len() > 64, "a base64 32-byte hex token: {token}");
        assert_eq!(applied_replicas(&server), 2);
        let status = status_patch(&server);
        assert_eq!(cond(&status, READY), ("True".into(), "Active".into()));
        assert_eq!(status["replicas"], 2);

        // With the Secret there, it is left alone (never re-applied, so never rotated).
        let secret_obj = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "orders-cluster", "namespace": "default"}});
        let (client, server) = ApiServer::start(echo(vec![
            (STREAM_PATH.into(), serde_json::to_value(&s).unwrap()),
            (SECRET_PATH.into(), secret_obj),
        ]));
        reconcile(Arc::new(s), context(client, &ep)).await.unwrap();
        let lines = server.lines();
        assert!(lines.contains(&format!("GET {SECRET_PATH}")));
        assert!(!lines
            .iter()
            .any(|l| l.contains("secrets") && !l.starts_with("GET")));
    }

    #[tokio::test]
    async fn a_multi_pod_stream_is_created_once_every_pod_joined() {
        let (ep, dp) = fake::start().await;
        dp.lock().unwrap().cluster = Some(cluster_view(&[(true, 0, 0)]));
        let s = multi_pod(4, 2);
        let (client, server) = api_with(&s);
        reconcile(Arc::new(s.clone()), context(client, &ep))
            .await
            .unwrap();
        assert_eq!(applied_replicas(&server), 2);
        assert_eq!(
            dp.lock().unwrap().calls,
            ["GET /cluster", "DescribeStreamSummary"]
        );
        assert!(
            dp.lock().unwrap().streams.is_empty(),
            "not created with one pod"
        );
        let status = status_patch(&server);
        assert_eq!(
            cond(&status, READY),
            ("False".into(), "WaitingForPods".into())
        );

        dp.lock().unwrap().cluster = Some(cluster_view(&[(true, 0, 0), (true, 0, 0)]));
        let (client, _server) = api_with(&s);
        reconcile(Arc::new(s), context(client, &ep)).await.unwrap();
        assert_eq!(dp.lock().unwrap().streams["orders"].shards, 4);
    }

    #[tokio::test]
    async fn growing_a_multi_pod_stream_adds_pods_before_resharding() {
        let (ep, dp) = fake::start().await;
        {
            let mut st = dp.lock().unwrap();
            st.streams.insert("orders".into(), fake_stream(4));
            st.cluster = Some(cluster_view(&[(true, 2, 0), (true, 2, 0)]));
        }
        let mut s = multi_pod(6, 2);
        s.metadata.generation = Some(2);
        s.status = Some(StreamStatus {
            open_shard_count: Some(4),
            replicas: Some(2),
            ..Default::default()
        });
        let (client, server) = api_with(&s);
        let ctx = context(client, &ep);
        let action = reconcile(Arc::new(s.clone()), ctx).await.unwrap();
        assert_eq!(action, Action::requeue(PODS_REQUEUE));
        assert_eq!(applied_replicas(&server), 3, "the third pod first");
        assert_eq!(
            dp.lock().unwrap().calls,
            ["GET /cluster", "DescribeStreamSummary"],
            "no reshard before the new pod joined"
        );
        let status = status_patch(&server);
        assert_eq!(
            cond(&status, READY),
            ("False".into(), "WaitingForPods".into())
        );
        assert_eq!(status["replicas"], 3);

        // The third pod joined: now the reshard is asked for.
        dp.lock().unwrap().cluster =
            Some(cluster_view(&[(true, 2, 0), (true, 2, 0), (true, 0, 0)]));
        let (client, server) = api_with(&s);
        reconcile(Arc::new(s), context(client, &ep)).await.unwrap();
        assert_eq!(applied_replicas(&server), 3);
        assert_eq!(dp.lock().unwrap().streams["orders"].shards, 6);
        let status = status_patch(&server);
        assert_eq!(
            cond(&status, RECONCILING),
            ("True".into(), "Resharding".into())
        );
    }

    #[tokio::test]
    async fn a_multi_pod_stream_never_shrinks_below_its_data_holding_pods() {
        let (ep, dp) = fake::start().await;
        {
            let mut st = dp.lock().unwrap();
            st.streams.insert("orders".into(), fake_stream(2));
            // The reshard 6 → 2 finished; pod 2 still holds closed shards within retention.
            st.cluster = Some(cluster_view(&[(true, 1, 2), (true, 1, 2), (true, 0, 2)]));
        }
        let mut s = multi_pod(2, 2);
        s.status = Some(StreamStatus {
            open_shard_count: Some(2),
            replicas: Some(3),
            ..Default::default()
        });
        let (client, server) = api_with(&s);
        reconcile(Arc::new(s.clone()), context(client, &ep))
            .await
            .unwrap();
        assert_eq!(applied_replicas(&server), 3);
        assert_eq!(cond(&status_patch(&server), READY).0, "True");

        // Retention dropped pod 1's and pod 2's closed shards: down to the one pod 2 shards need.
        dp.lock().unwrap().cluster =
            Some(cluster_view(&[(true, 2, 0), (true, 0, 0), (true, 0, 0)]));
        let (client, server) = api_with(&s);
        reconcile(Arc::new(s.clone()), context(client, &ep))
            .await
            .unwrap();
        assert_eq!(applied_replicas(&server), 1);

        // Without an answer from the coordinator nothing is removed.
        dp.lock().unwrap().cluster = None;
        let (client, server) = api_with(&s);
        reconcile(Arc::new(s), context(client, &ep)).await.unwrap();
        assert_eq!(applied_replicas(&server), 3);
        assert_eq!(
            cond(&status_patch(&server), READY),
            ("False".into(), "WaitingForPods".into())
        );
    }

    #[tokio::test]
    async fn drift_in_retention_and_tags_is_reverted() {
        let (ep, dp) = fake::start().await;
        let mut drifted = fake_stream(2);
        drifted.retention = 48;
        drifted.tags.insert("added-by-hand".into(), "x".into());
        dp.lock().unwrap().streams.insert("orders".into(), drifted);
        let mut s = stream("orders", 2);
        s.spec.tags.insert("team".into(), "data".into());
        let ctx = context(api_with(&s).0, &ep);
        reconcile(Arc::new(s.clone()), ctx.clone()).await.unwrap();
        reconcile(Arc::new(s), ctx).await.unwrap();
        let st = dp.lock().unwrap();
        assert_eq!(st.streams["orders"].retention, 24);
        assert_eq!(
            st.streams["orders"].tags,
            BTreeMap::from([("team".to_string(), "data".to_string())])
        );
        assert!(st
            .calls
            .contains(&"DecreaseStreamRetentionPeriod".to_string()));
        assert!(st.calls.contains(&"RemoveTagsFromStream".to_string()));
    }

    #[tokio::test]
    async fn a_reshard_the_data_plane_rejects_stalls_the_stream() {
        let (ep, dp) = fake::start().await;
        dp.lock()
            .unwrap()
            .streams
            .insert("orders".into(), fake_stream(60));
        // The fake, like an account's shard quota, refuses more than 100 shards.
        let mut s = stream("orders", 120);
        s.metadata.generation = Some(5);
        let (client, server) = api_with(&s);
        let ctx = context(client, &ep);
        let action = reconcile(Arc::new(s), ctx.clone()).await.unwrap();
        assert_eq!(action, Action::requeue(Duration::from_secs(60)));
        let status = status_patch(&server);
        assert_eq!(
            cond(&status, STALLED),
            ("True".into(), "ReshardRejected".into())
        );
        assert_eq!(cond(&status, READY).0, "False");
        assert_eq!(status["observedGeneration"], 5);
        let event = server.requests().last().unwrap().body.clone();
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["reason"], "ReshardRejected");
    }

    #[tokio::test]
    async fn an_unreachable_data_plane_means_waiting_for_pods_not_failure() {
        let s = stream("orders", 2);
        let (client, server) = api_with(&s);
        let action = reconcile(Arc::new(s), context(client, "http://127.0.0.1:9"))
            .await
            .unwrap();
        assert_eq!(action, Action::requeue(PODS_REQUEUE));
        let status = status_patch(&server);
        assert_eq!(
            cond(&status, READY),
            ("False".into(), "WaitingForPods".into())
        );
        assert_eq!(cond(&status, RECONCILING).0, "True");
    }

    #[tokio::test]
    async fn a_paused_stream_only_reports_that_it_is_paused() {
        let (ep, dp) = fake::start().await;
        let mut s = stream("orders", 2);
        s.metadata.annotations = Some(
            [(
                super::super::PAUSE_ANNOTATION.to_string(),
                "true".to_string(),
            )]
            .into(),
        );
        let (client, server) = api_with(&s);
        let action = reconcile(Arc::new(s), context(client, &ep)).await.unwrap();
        assert_eq!(action, Action::await_change());
        assert_eq!(
            server.lines(),
            [
                format!("PATCH {STREAM_PATH}/status"),
                "POST /apis/events.k8s.io/v1/namespaces/default/events".to_string()
            ]
        );
        let status = status_patch(&server);
        assert_eq!(cond(&status, READY), ("Unknown".into(), "Paused".into()));
        assert!(dp.lock().unwrap().calls.is_empty());
    }

    fn deleted(mut s: Stream) -> Stream {
        s.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        s
    }

    #[tokio::test]
    async fn deleting_a_stream_deletes_it_in_the_data_plane_and_releases_the_finalizer() {
        let (ep, dp) = fake::start().await;
        dp.lock()
            .unwrap()
            .streams
            .insert("orders".into(), fake_stream(2));
        let s = deleted(stream("orders", 2));
        let obj = serde_json::to_value(&s).unwrap();
        let (client, server) = ApiServer::start(echo(vec![(STREAM_PATH.into(), obj)]));
        reconcile(Arc::new(s), context(client, &ep)).await.unwrap();
        assert!(dp.lock().unwrap().streams.is_empty());
        let lines = server.lines();
        assert_eq!(
            lines,
            [
                "POST /apis/events.k8s.io/v1/namespaces/default/events".to_string(),
                format!("PATCH {STREAM_PATH}")
            ]
        );
        let finalizer_patch = &server.requests()[1];
        assert_eq!(finalizer_patch.content_type, "application/json-patch+json");
        assert!(finalizer_patch.body.to_string().contains("remove"));
    }

    #[tokio::test]
    async fn a_retained_stream_is_left_in_the_data_plane() {
        let (ep, dp) = fake::start().await;
        dp.lock()
            .unwrap()
            .streams
            .insert("orders".into(), fake_stream(2));
        let mut s = deleted(stream("orders", 2));
        s.spec.deletion_policy = DeletionPolicy::Retain;
        let obj = serde_json::to_value(&s).unwrap();
        let (client, _server) = ApiServer::start(echo(vec![(STREAM_PATH.into(), obj)]));
        reconcile(Arc::new(s), context(client, &ep)).await.unwrap();
        assert!(dp.lock().unwrap().streams.contains_key("orders"));
        assert!(dp.lock().unwrap().calls.is_empty());
    }

    #[tokio::test]
    async fn deletion_never_waits_for_a_data_plane_that_is_gone() {
        let s = deleted(stream("orders", 2));
        let obj = serde_json::to_value(&s).unwrap();
        let (client, server) = ApiServer::start(echo(vec![(STREAM_PATH.into(), obj)]));
        reconcile(Arc::new(s), context(client, "http://127.0.0.1:9"))
            .await
            .unwrap();
        let seen = server.requests();
        assert_eq!(seen[0].body["reason"], "CleanupSkipped");
        assert_eq!(seen.last().unwrap().line(), format!("PATCH {STREAM_PATH}"));
    }

    #[test]
    fn the_status_condition_types_are_the_kstatus_ones() {
        let s = crate::status::conditions(
            &[],
            Some(1),
            &crate::status::Verdict::new(Health::Ready, "Active", ""),
            "t",
        );
        let types: Vec<_> = s.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [READY, RECONCILING, STALLED]);
        assert_eq!(
            find_condition(&s, READY).unwrap().status,
            ConditionStatus::True
        );
    }
}
