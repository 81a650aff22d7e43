//! The `StreamConsumer` controller: registers an enhanced fan-out consumer on its stream,
//! publishes its ARN and state, and deregisters it when the resource is deleted.

use std::{sync::Arc, time::Duration};

use kube::{
    api::{Patch, PatchParams},
    runtime::{controller::Action, events::EventType},
    Api, ResourceExt,
};
use serde_json::json;
use tracing::instrument;
use tributary_api::{DeletionPolicy, Stream, StreamConsumer, API_GROUP, API_VERSION};

use super::{is_paused, now, Context, FIELD_MANAGER};
use crate::{
    dataplane::{ClientError, ConsumerDescription},
    error::{Error, Result},
    status::{consumer_status, ready_reason, ConsumerPhase, Health},
};

/// The `kind` label of this controller's metrics.
const KIND: &str = "StreamConsumer";
/// How soon to look again while the consumer or its stream is not ready.
const WAIT_REQUEUE: Duration = Duration::from_secs(5);

/// Reconciles one StreamConsumer.
#[instrument(skip_all, fields(consumer = %consumer.name_any(), namespace = consumer.namespace().unwrap_or_default()))]
pub async fn reconcile(consumer: Arc<StreamConsumer>, ctx: Arc<Context>) -> Result<Action> {
    super::reconcile_with_finalizer(
        consumer,
        &ctx,
        KIND,
        |o| apply(o, &ctx),
        |o| cleanup(o, &ctx),
    )
    .await
}

/// Requeue policy of failed reconciles.
pub fn error_policy(_c: Arc<StreamConsumer>, err: &Error, ctx: Arc<Context>) -> Action {
    super::error_policy(err, &ctx.settings)
}

/// Where the consumer's stream is: its ARN and endpoint, once the Stream reports an ARN.
async fn locate_stream(
    consumer: &StreamConsumer,
    ctx: &Context,
) -> Result<Result<(String, String), String>> {
    let ns = consumer
        .namespace()
        .ok_or(Error::MissingObjectKey("namespace"))?;
    let stream_name = &consumer.spec.stream_ref.name;
    let streams: Api<Stream> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(stream) = streams.get_opt(stream_name).await? else {
        return Ok(Err(format!("Stream {stream_name} does not exist")));
    };
    match stream.status.as_ref().and_then(|s| s.stream_arn.clone()) {
        Some(arn) => Ok(Ok((arn, ctx.settings.endpoint(stream_name, &ns)))),
        None => Ok(Err(format!("Stream {stream_name} has no ARN yet"))),
    }
}

/// Registers the consumer if needed and reports its state.
async fn apply(consumer: Arc<StreamConsumer>, ctx: &Context) -> Result<Action> {
    let ns = consumer
        .namespace()
        .ok_or(Error::MissingObjectKey("namespace"))?;
    let api: Api<StreamConsumer> = Api::namespaced(ctx.client.clone(), &ns);
    if is_paused(consumer.as_ref()) {
        write_status(&api, &consumer, None, None, &ConsumerPhase::Paused, ctx).await?;
        return Ok(Action::await_change());
    }
    let (stream_arn, ep) = match locate_stream(&consumer, ctx).await? {
        Ok(found) => found,
        Err(why) => {
            write_status(
                &api,
                &consumer,
                None,
                None,
                &ConsumerPhase::WaitingForStream(why),
                ctx,
            )
            .await?;
            return Ok(Action::requeue(WAIT_REQUEUE));
        }
    };
    let name = consumer
        .spec
        .effective_name(&consumer.name_any())
        .to_string();
    let dp = &ctx.dataplane;
    let outcome = match dp.describe_consumer(&ep, &stream_arn, &name).await {
        Ok(d) => Ok(d),
        Err(e) if e.is_not_found() => dp.register_consumer(&ep, &stream_arn, &name).await,
        Err(e) => Err(e),
    };
    let (phase, described, err) = match outcome {
        Ok(d) if d.consumer_status == "ACTIVE" => (ConsumerPhase::Active, Some(d), None),
        Ok(d) => (ConsumerPhase::Registering, Some(d), None),
        Err(ClientError::Unreachable(m)) => (ConsumerPhase::WaitingForStream(m), None, None),
        Err(e) => {
            let e = Error::from(e);
            if e.is_transient() {
                (
                    ConsumerPhase::Retrying {
                        reason: e.reason(),
                        message: e.to_string(),
                    },
                    None,
                    Some(e),
                )
            } else {
                ctx.metrics.failure(KIND, e.reason());
                (
                    ConsumerPhase::Stalled {
                        reason: e.reason(),
                        message: e.to_string(),
                    },
                    None,
                    None,
                )
            }
        }
    };
    write_status(
        &api,
        &consumer,
        described.as_ref(),
        Some(&stream_arn),
        &phase,
        ctx,
    )
    .await?;
    if let Some(e) = err {
        return Err(e);
    }
    Ok(match phase {
        ConsumerPhase::Active | ConsumerPhase::Stalled { .. } => {
            Action::requeue(ctx.settings.sync_interval())
        }
        _ => Action::requeue(WAIT_REQUEUE),
    })
}

/// Writes the status if it changed; an event when the Ready reason changes.
async fn write_status(
    api: &Api<StreamConsumer>,
    consumer: &StreamConsumer,
    described: Option<&ConsumerDescription>,
    stream_arn: Option<&str>,
    phase: &ConsumerPhase,
    ctx: &Context,
) -> Result<()> {
    let new = consumer_status(
        consumer.status.as_ref(),
        consumer.metadata.generation,
        described,
        stream_arn,
        phase,
        &now(),
    );
    let verdict = phase.verdict();
    let key = format!(
        "{}/{}",
        consumer.namespace().unwrap_or_default(),
        consumer.name_any()
    );
    let ready = match verdict.health {
        Health::Ready => "True",
        Health::Paused => "Unknown",
        _ => "False",
    };
    ctx.metrics.set_ready(KIND, key, Some(ready));
    if consumer.status.as_ref() == Some(&new) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": KIND,
        "status": new,
    });
    api.patch_status(
        &consumer.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    let old_reason = consumer
        .status
        .as_ref()
        .and_then(|s| ready_reason(&s.conditions));
    let type_ = match verdict.health {
        Health::Stalled => EventType::Warning,
        _ => EventType::Normal,
    };
    ctx.announce(consumer, old_reason, type_, verdict.reason, verdict.message)
        .await;
    Ok(())
}

/// Deregisters the consumer (`deletionPolicy: Delete`), then lets the finalizer go. A stream
/// that is gone took its consumers with it, so that never blocks deletion.
async fn cleanup(consumer: Arc<StreamConsumer>, ctx: &Context) -> Result<Action> {
    let key = format!(
        "{}/{}",
        consumer.namespace().unwrap_or_default(),
        consumer.name_any()
    );
    ctx.metrics.set_ready(KIND, key, None);
    ctx.forget(consumer.as_ref());
    if consumer.spec.deletion_policy == DeletionPolicy::Retain {
        return Ok(Action::await_change());
    }
    let name = consumer
        .spec
        .effective_name(&consumer.name_any())
        .to_string();
    let stream_arn = consumer.status.as_ref().and_then(|s| s.stream_arn.clone());
    let located = match stream_arn {
        Some(arn) => {
            let ns = consumer.namespace().unwrap_or_default();
            Some((
                arn,
                ctx.settings.endpoint(&consumer.spec.stream_ref.name, &ns),
            ))
        }
        None => locate_stream(&consumer, ctx).await?.ok(),
    };
    let Some((arn, ep)) = located else {
        return Ok(Action::await_change());
    };
    match ctx.dataplane.deregister_consumer(&ep, &arn, &name).await {
        Ok(()) => {
            ctx.publish(
                consumer.as_ref(),
                EventType::Normal,
                "Deregistered",
                format!("Deregistered consumer {name}"),
            )
            .await
        }
        Err(e) if e.is_in_use() => return Err(e.into()),
        Err(_) => {}
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::Settings,
        dataplane::fake::{self, FakeStream},
        fixtures::{consumer, echo, stream, ApiServer},
        metrics::Metrics,
    };

    const CONSUMER_PATH: &str =
        "/apis/tributary.dev/v1alpha1/namespaces/default/streamconsumers/app";
    const STREAM_PATH: &str = "/apis/tributary.dev/v1alpha1/namespaces/default/streams/orders";
    const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";

    fn context(client: kube::Client, ep: &str) -> Arc<Context> {
        let mut settings = Settings::test();
        settings.config.dataplane_endpoint = ep.to_string();
        Arc::new(Context::new(client, settings, Arc::new(Metrics::new())))
    }

    fn ready_stream() -> serde_json::Value {
        let mut s = stream("orders", 1);
        s.status = Some(tributary_api::StreamStatus {
            stream_arn: Some(STREAM_ARN.into()),
            ..Default::default()
        });
        serde_json::to_value(s).unwrap()
    }

    fn api_with_stream() -> (kube::Client, ApiServer) {
        let c = serde_json::to_value(consumer("app", "orders")).unwrap();
        ApiServer::start(echo(vec![
            (STREAM_PATH.into(), ready_stream()),
            (CONSUMER_PATH.into(), c),
        ]))
    }

    async fn data_plane_with_stream() -> (String, std::sync::Arc<std::sync::Mutex<fake::FakeState>>)
    {
        let (ep, dp) = fake::start().await;
        dp.lock().unwrap().streams.insert(
            "orders".into(),
            FakeStream {
                status: "ACTIVE".into(),
                mode: "PROVISIONED".into(),
                shards: 1,
                retention: 24,
                tags: Default::default(),
                consumers: Default::default(),
            },
        );
        (ep, dp)
    }

    fn status_of(server: &ApiServer) -> serde_json::Value {
        server
            .requests()
            .into_iter()
            .find(|s| s.uri.starts_with(&format!("{CONSUMER_PATH}/status")))
            .expect("a status patch")
            .body["status"]
            .clone()
    }

    #[tokio::test]
    async fn a_consumer_waits_for_its_stream() {
        let (ep, dp) = data_plane_with_stream().await;
        let c = consumer("app", "orders");
        let (client, server) = ApiServer::start(echo(vec![(
            CONSUMER_PATH.into(),
            serde_json::to_value(&c).unwrap(),
        )]));
        let action = reconcile(Arc::new(c), context(client, &ep)).await.unwrap();
        assert_eq!(action, Action::requeue(WAIT_REQUEUE));
        assert_eq!(server.lines()[0], format!("GET {STREAM_PATH}"));
        let status = status_of(&server);
        assert_eq!(status["conditions"][0]["reason"], "WaitingForStream");
        assert!(dp.lock().unwrap().calls.is_empty());
    }

    #[tokio::test]
    async fn a_consumer_is_registered_and_publishes_its_arn() {
        let (ep, dp) = data_plane_with_stream().await;
        let (client, server) = api_with_stream();
        reconcile(Arc::new(consumer("app", "orders")), context(client, &ep))
            .await
            .unwrap();
        assert_eq!(
            dp.lock().unwrap().calls,
            ["DescribeStreamConsumer", "RegisterStreamConsumer"]
        );
        let status = status_of(&server);
        assert_eq!(status["consumerStatus"], "CREATING");
        assert!(status["consumerArn"]
            .as_str()
            .unwrap()
            .starts_with(STREAM_ARN));
        assert_eq!(status["streamArn"], STREAM_ARN);
        assert_eq!(
            server.lines(),
            [
                format!("GET {STREAM_PATH}"),
                format!("PATCH {CONSUMER_PATH}/status"),
                "POST /apis/events.k8s.io/v1/namespaces/default/events".into()
            ]
        );

        // The next pass sees it ACTIVE: Ready.
        let (client, server) = api_with_stream();
        reconcile(Arc::new(consumer("app", "orders")), context(client, &ep))
            .await
            .unwrap();
        let status = status_of(&server);
        assert_eq!(status["consumerStatus"], "ACTIVE");
        let ready = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True");
        assert_eq!(status["observedGeneration"], 1);
    }

    #[tokio::test]
    async fn a_deleted_consumer_is_deregistered_before_its_finalizer_goes() {
        let (ep, dp) = data_plane_with_stream().await;
        dp.lock()
            .unwrap()
            .streams
            .get_mut("orders")
            .unwrap()
            .consumers
            .insert("app".into(), format!("{STREAM_ARN}/consumer/app:1"));
        let mut c = consumer("app", "orders");
        c.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        c.status = Some(tributary_api::StreamConsumerStatus {
            stream_arn: Some(STREAM_ARN.into()),
            ..Default::default()
        });
        let obj = serde_json::to_value(&c).unwrap();
        let (client, server) = ApiServer::start(echo(vec![(CONSUMER_PATH.into(), obj)]));
        reconcile(Arc::new(c), context(client, &ep)).await.unwrap();
        assert!(dp.lock().unwrap().streams["orders"].consumers.is_empty());
        assert_eq!(
            server.lines().last().unwrap(),
            &format!("PATCH {CONSUMER_PATH}")
        );
    }

    #[tokio::test]
    async fn a_consumer_of_a_vanished_stream_is_released_at_once() {
        let mut c = consumer("app", "orders");
        c.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        let obj = serde_json::to_value(&c).unwrap();
        let (client, server) = ApiServer::start(echo(vec![(CONSUMER_PATH.into(), obj)]));
        reconcile(Arc::new(c), context(client, "http://127.0.0.1:9"))
            .await
            .unwrap();
        assert_eq!(
            server.lines(),
            [
                format!("GET {STREAM_PATH}"),
                format!("PATCH {CONSUMER_PATH}")
            ]
        );
    }
}
