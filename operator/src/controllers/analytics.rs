//! The `AnalyticsApp` controller: validates the application's SQL at reconcile time (condition
//! `QueryValid`), runs each valid application in its own data-plane Deployment with every
//! input and output Stream reached through `--stream-endpoint`, and reports the application
//! status from DescribeApplication.

use std::{sync::Arc, time::Duration};

use kube::{
    runtime::{controller::Action, events::EventType},
    Api, ResourceExt,
};
use tracing::instrument;
use tributary_api::{AnalyticsApp, DeletionPolicy};

use super::{
    is_paused, now,
    workload::{apply_children, namespace, stream_endpoints, write_status},
    Context,
};
use crate::{
    dataplane::{ApplicationDetail, ClientError},
    error::{Error, Result},
    query::{self, QueryError},
    resources::workload::{analytics_name, analytics_stream_refs, analytics_workload},
    status::{analytics_status, WorkloadPhase},
};

/// The `kind` label of this controller's metrics.
const KIND: &str = "AnalyticsApp";
/// How soon to look again while waiting for Streams or the pod.
const WAIT_REQUEUE: Duration = Duration::from_secs(5);

/// Reconciles one AnalyticsApp: adds the finalizer, then applies (or, once deleted, cleans up).
#[instrument(skip_all, fields(analytics_app = %app.name_any(), namespace = app.namespace().unwrap_or_default()))]
pub async fn reconcile(app: Arc<AnalyticsApp>, ctx: Arc<Context>) -> Result<Action> {
    super::reconcile_with_finalizer(app, &ctx, KIND, |o| apply(o, &ctx), |o| cleanup(o, &ctx)).await
}

/// Requeue policy of failed reconciles.
pub fn error_policy(_a: Arc<AnalyticsApp>, err: &Error, ctx: Arc<Context>) -> Action {
    super::error_policy(err, &ctx.settings)
}

/// The application name and the endpoint of the application's Service.
fn target(app: &AnalyticsApp, ns: &str, ctx: &Context) -> (String, String) {
    (
        app.spec.effective_name(&app.name_any()).to_string(),
        ctx.settings.endpoint(&analytics_name(app), ns),
    )
}

/// Applies the spec:
///
/// 1. paused: report `Paused` and touch nothing else;
/// 2. parse and plan the SQL: invalid code is `QueryValid=False` and `Stalled`, with its
///    position, and nothing is (re)deployed;
/// 3. wait for every referenced Stream, then server-side apply the ConfigMap, Service and
///    Deployment;
/// 4. read the application status through the Service and write the status.
async fn apply(app: Arc<AnalyticsApp>, ctx: &Context) -> Result<Action> {
    let ns = namespace(app.as_ref())?;
    let api: Api<AnalyticsApp> = Api::namespaced(ctx.client.clone(), &ns);
    let report = |phase: WorkloadPhase,
                  detail: Option<ApplicationDetail>,
                  query: Option<Result<(), QueryError>>| {
        let app = app.clone();
        let api = api.clone();
        let ns = ns.clone();
        async move {
            let (_, endpoint) = target(&app, &ns, ctx);
            let old = app.status.as_ref();
            let new = analytics_status(
                old,
                app.metadata.generation,
                detail.as_ref(),
                &endpoint,
                query.as_ref(),
                &phase,
                &now(),
            );
            let conds = old.map(|s| s.conditions.as_slice()).unwrap_or_default();
            let warning = matches!(phase, WorkloadPhase::Retrying { .. });
            write_status(
                ctx,
                &api,
                app.as_ref(),
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

    if is_paused(app.as_ref()) {
        report(WorkloadPhase::Paused, None, None).await?;
        return Ok(Action::await_change());
    }
    if let Err(e) = query::validate(&app.spec) {
        let phase = WorkloadPhase::InvalidQuery(e.message.clone());
        report(phase, None, Some(Err(e))).await?;
        return Ok(Action::requeue(ctx.settings.sync_interval()));
    }
    let valid = Some(Ok(()));
    let endpoints = match stream_endpoints(ctx, &ns, &analytics_stream_refs(&app.spec)).await? {
        Ok(e) => e,
        Err(why) => {
            report(WorkloadPhase::WaitingForStream(why), None, valid).await?;
            return Ok(Action::requeue(WAIT_REQUEUE));
        }
    };
    let w = analytics_workload(&app, &endpoints);
    apply_children(app.as_ref(), &ns, &w, ctx).await?;

    let (name, ep) = target(&app, &ns, ctx);
    let (phase, detail) = match ctx.dataplane.describe_application(&ep, &name).await {
        Ok(d) if d.application_status == "RUNNING" => (WorkloadPhase::Active("RUNNING"), Some(d)),
        Ok(d) => (
            WorkloadPhase::Starting(d.application_status.clone()),
            Some(d),
        ),
        Err(ClientError::Unreachable(m)) => (WorkloadPhase::WaitingForPods(m), None),
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
    let settled = matches!(
        phase,
        WorkloadPhase::Active(_) | WorkloadPhase::Stalled { .. }
    );
    report(phase, detail, valid).await?;
    Ok(if settled {
        Action::requeue(ctx.settings.sync_interval())
    } else {
        Action::requeue(WAIT_REQUEUE)
    })
}

/// Deletes the application in its pod (`deletionPolicy: Delete`), then lets the finalizer go;
/// Kubernetes removes the Deployment, Service and ConfigMap with the resource. A pod that is
/// gone never blocks deletion.
async fn cleanup(app: Arc<AnalyticsApp>, ctx: &Context) -> Result<Action> {
    let ns = namespace(app.as_ref())?;
    ctx.metrics
        .set_ready(KIND, format!("{ns}/{}", app.name_any()), None);
    ctx.forget(app.as_ref());
    if app.spec.deletion_policy == DeletionPolicy::Retain {
        return Ok(Action::await_change());
    }
    let (name, ep) = target(&app, &ns, ctx);
    let dp = &ctx.dataplane;
    let deleted = match dp.describe_application(&ep, &name).await {
        Ok(d) => {
            dp.delete_application(&ep, &name, d.create_timestamp.unwrap_or_default())
                .await
        }
        Err(e) => Err(e),
    };
    match deleted {
        Ok(()) => {
            ctx.publish(
                app.as_ref(),
                EventType::Normal,
                "Deleted",
                format!("Deleted application {name}"),
            )
            .await
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            ctx.publish(
                app.as_ref(),
                EventType::Warning,
                "CleanupSkipped",
                format!("Could not delete application {name} ({e})"),
            )
            .await
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::Settings,
        dataplane::fake,
        fixtures::{analytics_app, echo, stream, ApiServer},
        metrics::Metrics,
    };
    use serde_json::{json, Value};

    const APP_PATH: &str = "/apis/tributary.dev/v1alpha1/namespaces/default/analyticsapps/tickers";
    const GOOD: &str = r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (TICKER VARCHAR(4), PRICE DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
SELECT STREAM TICKER, PRICE FROM "SOURCE_SQL_STREAM_001" WHERE PRICE > 10;
"#;

    fn context(client: kube::Client, ep: &str) -> Arc<Context> {
        let mut settings = Settings::test();
        settings.config.dataplane_endpoint = ep.to_string();
        Arc::new(Context::new(client, settings, Arc::new(Metrics::new())))
    }

    fn ready_stream(name: &str) -> (String, Value) {
        let mut s = serde_json::to_value(stream(name, 1)).unwrap();
        s["status"] = json!({
            "streamArn": format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}"),
            "endpoint": format!("http://{name}.default.svc:4567"),
        });
        (
            format!("/apis/tributary.dev/v1alpha1/namespaces/default/streams/{name}"),
            s,
        )
    }

    fn condition(status: &Value, t: &str) -> Value {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .unwrap()
            .clone()
    }

    fn status_of(server: &ApiServer) -> Value {
        server
            .requests()
            .iter()
            .find(|s| s.uri.starts_with(&format!("{APP_PATH}/status")))
            .expect("a status patch")
            .body["status"]
            .clone()
    }

    #[tokio::test]
    async fn bad_sql_is_query_valid_false_with_its_position_and_is_not_deployed() {
        let (ep, dp) = fake::start().await;
        let app = analytics_app("tickers", &GOOD.replace("WHERE PRICE", "WHERE PRIZE"));
        let obj = serde_json::to_value(&app).unwrap();
        let (client, server) = ApiServer::start(echo(vec![(APP_PATH.into(), obj)]));
        reconcile(Arc::new(app), context(client, &ep))
            .await
            .unwrap();
        assert_eq!(
            server.lines(),
            [
                format!("PATCH {APP_PATH}/status"),
                "POST /apis/events.k8s.io/v1/namespaces/default/events".to_string(),
            ]
        );
        let status = status_of(&server);
        let q = condition(&status, "QueryValid");
        assert_eq!(q["status"], "False");
        assert_eq!(q["reason"], "UnknownObject");
        let msg = q["message"].as_str().unwrap();
        assert!(msg.starts_with("From line 3, column "), "{msg}");
        assert!(msg.contains("PRIZE"), "{msg}");
        assert_eq!(condition(&status, "Stalled")["status"], "True");
        assert_eq!(condition(&status, "Ready")["reason"], "InvalidQuery");
        assert_eq!(status["observedGeneration"], 1);
        assert!(dp.lock().unwrap().calls.is_empty());
    }

    #[tokio::test]
    async fn a_valid_app_is_deployed_with_every_stream_wired_and_reports_running() {
        let (ep, dp) = fake::start().await;
        dp.lock()
            .unwrap()
            .applications
            .insert("tickers".into(), "RUNNING".into());
        let app = analytics_app("tickers", GOOD);
        let obj = serde_json::to_value(&app).unwrap();
        let (client, server) = ApiServer::start(echo(vec![
            (APP_PATH.into(), obj),
            ready_stream("orders"),
            ready_stream("summaries"),
        ]));
        let action = reconcile(Arc::new(app), context(client, &ep))
            .await
            .unwrap();
        assert_eq!(action, Action::requeue(Duration::from_secs(60)));
        let lines = server.lines();
        assert_eq!(
            lines[..5],
            [
                "GET /apis/tributary.dev/v1alpha1/namespaces/default/streams/orders".to_string(),
                "GET /apis/tributary.dev/v1alpha1/namespaces/default/streams/summaries".into(),
                "PATCH /api/v1/namespaces/default/configmaps/tickers-analytics-config".into(),
                "PATCH /api/v1/namespaces/default/services/tickers-analytics".into(),
                "PATCH /apis/apps/v1/namespaces/default/deployments/tickers-analytics".into(),
            ]
        );
        let dep = &server.requests()[4].body;
        let args: Vec<String> = serde_json::from_value(
            dep["spec"]["template"]["spec"]["containers"][0]["args"].clone(),
        )
        .unwrap();
        for (s, url) in [
            ("orders", "http://orders.default.svc:4567"),
            ("summaries", "http://summaries.default.svc:4567"),
        ] {
            assert!(args.contains(&format!("{s}={url}")), "{args:?}");
        }
        assert!(dep["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "data" && v.get("emptyDir").is_some()));
        let status = status_of(&server);
        assert_eq!(condition(&status, "QueryValid")["status"], "True");
        assert_eq!(condition(&status, "Ready")["status"], "True");
        assert_eq!(condition(&status, "Ready")["reason"], "Running");
        assert_eq!(status["applicationStatus"], "RUNNING");
        assert_eq!(status["applicationVersionId"], 1);
        assert_eq!(dp.lock().unwrap().calls, ["DescribeApplication"]);
    }

    #[tokio::test]
    async fn a_valid_app_waits_for_its_output_stream() {
        let (ep, _dp) = fake::start().await;
        let app = analytics_app("tickers", GOOD);
        let obj = serde_json::to_value(&app).unwrap();
        let (client, server) =
            ApiServer::start(echo(vec![(APP_PATH.into(), obj), ready_stream("orders")]));
        reconcile(Arc::new(app), context(client, &ep))
            .await
            .unwrap();
        let status = status_of(&server);
        assert_eq!(condition(&status, "Ready")["reason"], "WaitingForStream");
        assert_eq!(
            condition(&status, "Ready")["message"],
            "Stream summaries does not exist"
        );
        assert_eq!(condition(&status, "QueryValid")["status"], "True");
        assert!(!server.lines().iter().any(|l| l.contains("deployments")));
    }
}
