//! `tributary serve --manifests DIR`: streams and consumers declared with the same YAML that
//! Kubernetes users apply, created at start-up and idempotent across restarts.

use std::path::Path;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::StreamMode;
use tributary_tests::{kinesis_client as client, read_shard, Server};

#[tokio::test]
async fn the_repository_examples_create_their_streams_and_consumer_and_restart_idempotently() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/streams");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let args = [
        "--data-dir",
        &data,
        "--manifests",
        examples.to_str().unwrap(),
    ];
    let mut server = Server::start(&args).await.unwrap();
    let c = client(&server.api);

    let orders = c
        .describe_stream_summary()
        .stream_name("orders")
        .send()
        .await
        .unwrap();
    let orders = orders.stream_description_summary().unwrap();
    assert_eq!(orders.open_shard_count(), 2);
    assert_eq!(orders.consumer_count(), Some(1));
    let clicks = c
        .describe_stream_summary()
        .stream_name("clicks")
        .send()
        .await
        .unwrap();
    let clicks = clicks.stream_description_summary().unwrap();
    assert_eq!(
        clicks.stream_mode_details().unwrap().stream_mode(),
        &StreamMode::OnDemand
    );
    assert_eq!(clicks.retention_period_hours(), 48);
    let tags = c
        .list_tags_for_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags()[0].key(), "team");
    let consumers = c
        .list_stream_consumers()
        .stream_arn(orders.stream_arn())
        .send()
        .await
        .unwrap();
    assert_eq!(consumers.consumers()[0].consumer_name(), "dashboard");

    c.put_record()
        .stream_name("orders")
        .partition_key("k")
        .data(Blob::new("kept"))
        .send()
        .await
        .unwrap();

    // A restart with the same manifests and data leaves everything as it was.
    server.restart().await.unwrap();
    let c = client(&server.api);
    let listed = c.list_streams().send().await.unwrap();
    assert_eq!(listed.stream_names(), ["clicks", "orders"]);
    let mut n = 0;
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        n += read_shard(&c, "orders", shard).await.len();
    }
    assert_eq!(
        n, 1,
        "the record written before the restart is still there, once"
    );
}

#[tokio::test]
async fn an_invalid_manifest_stops_the_server_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: tributary.dev/v1alpha1\nkind: Stream\nmetadata: {name: bad}\nspec: {shardCount: 2, retentionPeriodHours: 2}\n",
    )
    .unwrap();
    let err = Server::start(&["--in-memory", "--manifests", dir.path().to_str().unwrap()])
        .await
        .err()
        .expect("the server refuses to start");
    assert!(err.to_string().contains("exited"), "{err}");
}
