//! Controllers, one file per kind: the reconcile (apply) and cleanup of each, plus what they
//! share: the context, the finalizer, the pause annotation, events and the field manager.

pub mod analytics;
pub mod consumer;
pub mod delivery;
pub mod stream;
pub mod workload;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{future::BoxFuture, FutureExt, StreamExt};
use k8s_openapi::jiff::Timestamp;
use kube::{
    runtime::{
        controller::Action,
        events::{Event, EventType, Recorder, Reporter},
        watcher, Controller,
    },
    Api, Client, Resource, ResourceExt,
};
use tracing::{info, warn};
use tributary_api::{AnalyticsApp, DeliveryStream, Stream, StreamConsumer};

use crate::{config::Settings, dataplane::DataPlaneClient, error::Error, metrics::Metrics};

/// The one field manager of every server-side apply the controllers make.
pub const FIELD_MANAGER: &str = "tributary-operator";
/// Finalizer on every Tributary resource, removed once cleanup (per `deletionPolicy`) ran.
pub const FINALIZER: &str = "tributary.dev/cleanup";
/// Annotation that pauses reconciliation of a resource while `"true"`.
pub const PAUSE_ANNOTATION: &str = "tributary.dev/pause-reconciliation";

/// What every reconcile gets.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Publishes events.
    pub recorder: Recorder,
    /// Kinesis API client for the data planes.
    pub dataplane: DataPlaneClient,
    /// Validated settings.
    pub settings: Settings,
    /// Operator metrics.
    pub metrics: Arc<Metrics>,
    /// The `Ready` reason this process last announced with an event, per object UID. A
    /// reconcile can run on a cached object older than the status the previous reconcile
    /// wrote; remembering what was announced keeps such a reconcile from skipping (or
    /// repeating) the event of a transition.
    announced: Mutex<HashMap<String, &'static str>>,
}

impl Context {
    /// A context for `client`.
    pub fn new(client: Client, settings: Settings, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some(settings.config.identity.clone()),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            dataplane: DataPlaneClient::new(settings.dataplane_timeout())
                .with_connect_to(settings.connect_to.clone()),
            client,
            settings,
            metrics,
            announced: Mutex::default(),
        }
    }

    /// Publishes an event for a change of `obj`'s `Ready` reason to `reason`: only when it
    /// differs from the reason last announced for `obj`, or, before this process announced
    /// any, from `cached` (the reason in the status the reconcile started from).
    pub async fn announce<K>(
        &self,
        obj: &K,
        cached: Option<&str>,
        type_: EventType,
        reason: &'static str,
        note: String,
    ) where
        K: Resource<DynamicType = ()>,
    {
        let previous = {
            let mut announced = self.announced.lock().unwrap_or_else(|e| e.into_inner());
            announced.insert(obj.uid().unwrap_or_default(), reason)
        };
        if previous.or(cached) == Some(reason) {
            return;
        }
        info!(kind = K::kind(&()).as_ref(), reason, message = %note, "Changed state.");
        self.publish(obj, type_, reason, note).await;
    }

    /// Forgets what was announced for `obj` (it is being deleted).
    pub fn forget<K: Resource>(&self, obj: &K) {
        if let Some(uid) = obj.uid() {
            let mut announced = self.announced.lock().unwrap_or_else(|e| e.into_inner());
            announced.remove(&uid);
        }
    }

    /// Publishes an event about `obj`. A failure to publish is logged, never fatal: events are
    /// for humans, and a reconcile must not fail because of one.
    pub async fn publish<K>(&self, obj: &K, type_: EventType, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            warn!(error = %e, reason, "Could not publish an event.");
        }
    }
}

/// Whether `obj` carries the pause annotation.
pub fn is_paused<K: ResourceExt>(obj: &K) -> bool {
    obj.annotations().get(PAUSE_ANNOTATION).map(String::as_str) == Some("true")
}

/// Now, as an RFC 3339 timestamp (condition transition times).
pub fn now() -> String {
    Timestamp::now().to_string()
}

/// One reconcile of `obj` under the operator's finalizer: `apply` while the object lives,
/// `cleanup` once it is being deleted. Times the run and counts failures under `kind`.
pub async fn reconcile_with_finalizer<K, Ap, ApFut, Cl, ClFut>(
    obj: Arc<K>,
    ctx: &Context,
    kind: &'static str,
    apply: Ap,
    cleanup: Cl,
) -> crate::error::Result<Action>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    Ap: FnOnce(Arc<K>) -> ApFut,
    ApFut: std::future::Future<Output = crate::error::Result<Action>>,
    Cl: FnOnce(Arc<K>) -> ClFut,
    ClFut: std::future::Future<Output = crate::error::Result<Action>>,
{
    use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
    let _timer = ctx.metrics.reconcile(kind);
    let ns = workload::namespace(obj.as_ref())?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, obj, |event| async move {
        match event {
            FinalizerEvent::Apply(o) => apply(o).await,
            FinalizerEvent::Cleanup(o) => cleanup(o).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    if let Err(e) = &result {
        ctx.metrics.failure(kind, e.reason());
    }
    result
}

/// Requeue policy after a failed reconcile: transient errors retry soon, terminal ones at the
/// resync interval (their status already says `Stalled`).
pub fn error_policy(err: &Error, settings: &Settings) -> Action {
    if err.is_transient() {
        Action::requeue(Duration::from_secs(5))
    } else {
        Action::requeue(settings.sync_interval())
    }
}

/// The resources in `cache` of the Stream's namespace whose `refs` name the Stream `s`.
fn referencing<K>(
    cache: &kube::runtime::reflector::Store<K>,
    s: &Stream,
    refs: impl Fn(&K) -> Vec<String>,
) -> Vec<kube::runtime::reflector::ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let (ns, name) = (s.namespace(), s.name_any());
    cache
        .state()
        .into_iter()
        .filter(|o| o.namespace() == ns && refs(o).contains(&name))
        .map(|o| kube::runtime::reflector::ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// Runs the Stream, StreamConsumer, DeliveryStream and AnalyticsApp controllers until
/// `shutdown` resolves: one set per watched namespace, or one set for the whole cluster.
pub async fn run(ctx: Arc<Context>, shutdown: BoxFuture<'static, ()>) {
    let shutdown = shutdown.shared();
    let scopes: Vec<Option<String>> = match ctx.settings.namespaces() {
        Some(ns) => ns.into_iter().map(Some).collect(),
        None => vec![None],
    };
    let mut tasks = Vec::new();
    for scope in scopes {
        let api = |c: &Client| -> (Api<Stream>, Api<StreamConsumer>) {
            match &scope {
                Some(ns) => (
                    Api::namespaced(c.clone(), ns),
                    Api::namespaced(c.clone(), ns),
                ),
                None => (Api::all(c.clone()), Api::all(c.clone())),
            }
        };
        let (streams, consumers) = api(&ctx.client);
        let cfg = watcher::Config::default().any_semantic();
        let owned = |c: &Client| -> (
            Api<k8s_openapi::api::apps::v1::StatefulSet>,
            Api<k8s_openapi::api::core::v1::Service>,
            Api<k8s_openapi::api::core::v1::ConfigMap>,
        ) {
            match &scope {
                Some(ns) => (
                    Api::namespaced(c.clone(), ns),
                    Api::namespaced(c.clone(), ns),
                    Api::namespaced(c.clone(), ns),
                ),
                None => (
                    Api::all(c.clone()),
                    Api::all(c.clone()),
                    Api::all(c.clone()),
                ),
            }
        };
        let (sts, svc, cms) = owned(&ctx.client);
        let labelled =
            watcher::Config::default().labels("app.kubernetes.io/managed-by=tributary-operator");
        let stream_ctl = Controller::new(streams, cfg.clone())
            .owns(sts, labelled.clone())
            .owns(svc, labelled.clone())
            .owns(cms, labelled)
            .graceful_shutdown_on(shutdown.clone())
            .run(stream::reconcile, stream::error_policy, ctx.clone())
            .for_each(|r| async move {
                match r {
                    Ok((obj, _)) => tracing::debug!(stream = %obj.name, "Reconciled."),
                    Err(e) => warn!(error = %e, "Stream reconcile failed."),
                }
            });
        let scoped = |c: &Client| -> (Api<DeliveryStream>, Api<AnalyticsApp>) {
            match &scope {
                Some(ns) => (
                    Api::namespaced(c.clone(), ns),
                    Api::namespaced(c.clone(), ns),
                ),
                None => (Api::all(c.clone()), Api::all(c.clone())),
            }
        };
        let (deliveries, apps) = scoped(&ctx.client);
        let workload_children = |c: &Client| -> (
            Api<k8s_openapi::api::apps::v1::Deployment>,
            Api<k8s_openapi::api::core::v1::Service>,
            Api<k8s_openapi::api::core::v1::ConfigMap>,
        ) {
            match &scope {
                Some(ns) => (
                    Api::namespaced(c.clone(), ns),
                    Api::namespaced(c.clone(), ns),
                    Api::namespaced(c.clone(), ns),
                ),
                None => (
                    Api::all(c.clone()),
                    Api::all(c.clone()),
                    Api::all(c.clone()),
                ),
            }
        };
        // A Stream change (it got its endpoint, it went away) wakes the workloads naming it.
        let streams_api = |c: &Client| -> Api<Stream> {
            match &scope {
                Some(ns) => Api::namespaced(c.clone(), ns),
                None => Api::all(c.clone()),
            }
        };
        let labelled_for = |component: &str| {
            watcher::Config::default().labels(&format!(
                "app.kubernetes.io/managed-by=tributary-operator,app.kubernetes.io/component={component}"
            ))
        };
        let (deps, svcs, cfgs) = workload_children(&ctx.client);
        let delivery_ctl = Controller::new(deliveries, cfg.clone());
        let referrers = delivery_ctl.store();
        let delivery_ctl = delivery_ctl
            .watches(streams_api(&ctx.client), cfg.clone(), move |s: Stream| {
                referencing(&referrers, &s, |d: &DeliveryStream| {
                    crate::resources::workload::delivery_stream_ref(&d.spec)
                        .into_iter()
                        .collect()
                })
            })
            .owns(deps, labelled_for("delivery-stream"))
            .owns(svcs, labelled_for("delivery-stream"))
            .owns(cfgs, labelled_for("delivery-stream"))
            .graceful_shutdown_on(shutdown.clone())
            .run(delivery::reconcile, delivery::error_policy, ctx.clone())
            .for_each(|r| async move {
                match r {
                    Ok((obj, _)) => tracing::debug!(delivery_stream = %obj.name, "Reconciled."),
                    Err(e) => warn!(error = %e, "DeliveryStream reconcile failed."),
                }
            });
        let (deps, svcs, cfgs) = workload_children(&ctx.client);
        let analytics_ctl = Controller::new(apps, cfg.clone());
        let referrers = analytics_ctl.store();
        let analytics_ctl = analytics_ctl
            .watches(streams_api(&ctx.client), cfg.clone(), move |s: Stream| {
                referencing(&referrers, &s, |a: &AnalyticsApp| {
                    crate::resources::workload::analytics_stream_refs(&a.spec)
                })
            })
            .owns(deps, labelled_for("analytics-app"))
            .owns(svcs, labelled_for("analytics-app"))
            .owns(cfgs, labelled_for("analytics-app"))
            .graceful_shutdown_on(shutdown.clone())
            .run(analytics::reconcile, analytics::error_policy, ctx.clone())
            .for_each(|r| async move {
                match r {
                    Ok((obj, _)) => tracing::debug!(analytics_app = %obj.name, "Reconciled."),
                    Err(e) => warn!(error = %e, "AnalyticsApp reconcile failed."),
                }
            });
        let consumer_ctl = Controller::new(consumers, cfg)
            .graceful_shutdown_on(shutdown.clone())
            .run(consumer::reconcile, consumer::error_policy, ctx.clone())
            .for_each(|r| async move {
                match r {
                    Ok((obj, _)) => tracing::debug!(consumer = %obj.name, "Reconciled."),
                    Err(e) => warn!(error = %e, "StreamConsumer reconcile failed."),
                }
            });
        info!(
            namespace = scope.as_deref().unwrap_or("<all>"),
            "Starting controllers."
        );
        tasks.push(tokio::spawn(async move {
            futures::join!(stream_ctl, consumer_ctl, delivery_ctl, analytics_ctl);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{echo, stream, ApiServer};

    fn events(server: &ApiServer) -> Vec<String> {
        server
            .requests()
            .iter()
            .filter(|s| s.uri.contains("/events"))
            .map(|s| s.body["reason"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[tokio::test]
    async fn a_transition_is_announced_once_even_when_the_cached_status_is_stale() {
        let (client, server) = ApiServer::start(echo(vec![]));
        let ctx = Context::new(client, Settings::test(), Arc::new(Metrics::new()));
        let s = stream("orders", 2);
        let note = || "n".to_string();
        // Nothing announced yet: the cached status decides.
        ctx.announce(&s, Some("Active"), EventType::Normal, "Active", note())
            .await;
        assert!(events(&server).is_empty());
        ctx.announce(&s, Some("Active"), EventType::Normal, "Resharding", note())
            .await;
        // The next reconcile still sees the cached status from before the reshard began: the
        // return to Active is a transition all the same.
        ctx.announce(&s, Some("Active"), EventType::Normal, "Active", note())
            .await;
        // A reconcile on a cache that lags the other way does not repeat it.
        ctx.announce(&s, Some("Resharding"), EventType::Normal, "Active", note())
            .await;
        assert_eq!(events(&server), ["Resharding", "Active"]);
        // Another object has its own memory.
        let other = stream("payments", 1);
        ctx.announce(&other, None, EventType::Normal, "Active", note())
            .await;
        assert_eq!(events(&server), ["Resharding", "Active", "Active"]);
        // Once forgotten (deleted), the cached status decides again.
        ctx.forget(&s);
        ctx.announce(&s, Some("Active"), EventType::Normal, "Active", note())
            .await;
        assert_eq!(events(&server).len(), 3);
    }
}
