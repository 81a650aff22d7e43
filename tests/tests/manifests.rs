//! `tributary serve --manifests DIR`: streams and consumers declared with the same YAML that
//! Kubernetes users apply, created at start-up and idempotent across restarts.

use std::path::Path;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::StreamMode;
use tributary_tests::{
    analytics_client, firehose_client as firehose, kinesis_client as client, read_shard, Server,
};

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

fn delivery_manifest(prefix: &str, team: &str) -> String {
    format!(
        r#"apiVersion: tributary.dev/v1alpha1
kind: Stream
metadata: {{name: orders}}
spec: {{shardCount: 1}}
---
apiVersion: tributary.dev/v1alpha1
kind: DeliveryStream
metadata: {{name: archive}}
spec:
  deliveryStreamType: KinesisStreamAsSource
  kinesisStreamSourceConfiguration:
    streamRef: {{name: orders}}
  extendedS3DestinationConfiguration:
    bucketARN: arn:aws:s3:::archive
    prefix: {prefix}
    bufferingHints: {{sizeInMBs: 1, intervalInSeconds: 60}}
  tags: {{team: {team}}}
"#
    )
}

#[tokio::test]
async fn a_changed_delivery_stream_manifest_is_applied_like_update_destination() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let file = manifests.join("archive.yaml");
    std::fs::write(&file, delivery_manifest("raw/", "data")).unwrap();
    let data = dir.path().join("data");
    let s3 = format!("file://{}", dir.path().join("s3").display());
    let args = [
        "--data-dir",
        data.to_str().unwrap(),
        "--s3-endpoint",
        &s3,
        "--manifests",
        manifests.to_str().unwrap(),
    ];
    let mut server = Server::start(&args).await.unwrap();
    let describe = |endpoint: String| async move {
        firehose(&endpoint)
            .describe_delivery_stream()
            .delivery_stream_name("archive")
            .send()
            .await
            .unwrap()
            .delivery_stream_description
            .unwrap()
    };
    let prefix = |d: &aws_sdk_firehose::types::DeliveryStreamDescription| {
        d.destinations()[0]
            .extended_s3_destination_description()
            .unwrap()
            .prefix()
            .map(str::to_string)
    };
    let d = describe(server.api.clone()).await;
    assert_eq!(d.version_id(), "1");
    assert_eq!(prefix(&d).as_deref(), Some("raw/"));

    // The same manifest again: nothing changes, the version stays.
    server.restart().await.unwrap();
    let d = describe(server.api.clone()).await;
    assert_eq!(d.version_id(), "1");

    // A new prefix and a new tag: applied on start, the version advances once.
    std::fs::write(&file, delivery_manifest("v2/", "platform")).unwrap();
    server.restart().await.unwrap();
    let d = describe(server.api.clone()).await;
    assert_eq!(d.version_id(), "2");
    assert_eq!(prefix(&d).as_deref(), Some("v2/"));
    let buffering = d.destinations()[0]
        .extended_s3_destination_description()
        .unwrap()
        .buffering_hints()
        .unwrap();
    assert_eq!(buffering.interval_in_seconds(), Some(60));
    let tags = firehose(&server.api)
        .list_tags_for_delivery_stream()
        .delivery_stream_name("archive")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags()[0].key(), "team");
    assert_eq!(tags.tags()[0].value(), Some("platform"));
    server.restart().await.unwrap();
    assert_eq!(describe(server.api.clone()).await.version_id(), "2");
}

fn app_manifest(code: &str) -> String {
    format!(
        r#"apiVersion: tributary.dev/v1alpha1
kind: Stream
metadata: {{name: ticks}}
spec: {{shardCount: 1}}
---
apiVersion: tributary.dev/v1alpha1
kind: Stream
metadata: {{name: ticks-out}}
spec: {{shardCount: 1}}
---
apiVersion: tributary.dev/v1alpha1
kind: AnalyticsApp
metadata: {{name: prices}}
spec:
  applicationCode: "{code}"
  inputs:
  - namePrefix: SOURCE_SQL_STREAM
    kinesisStreamsInput: {{resourceRef: {{name: ticks}}}}
    inputSchema:
      recordFormat:
        recordFormatType: JSON
        mappingParameters: {{jsonMappingParameters: {{recordRowPath: "$"}}}}
      recordColumns:
      - {{name: TICKER, mapping: "$.ticker", sqlType: VARCHAR(4)}}
      - {{name: PRICE, mapping: "$.price", sqlType: DOUBLE}}
  outputs:
  - name: DESTINATION_SQL_STREAM
    kinesisStreamsOutput: {{resourceRef: {{name: ticks-out}}}}
    destinationSchema: {{recordFormatType: JSON}}
"#
    )
}

#[tokio::test]
async fn a_changed_analytics_app_code_is_applied_like_update_application() {
    let v1 = "CREATE OR REPLACE STREAM \\\"DESTINATION_SQL_STREAM\\\" (TICKER VARCHAR(4), PRICE DOUBLE); CREATE OR REPLACE PUMP \\\"P\\\" AS INSERT INTO \\\"DESTINATION_SQL_STREAM\\\" SELECT STREAM TICKER, PRICE FROM \\\"SOURCE_SQL_STREAM_001\\\";";
    let v2 = "CREATE OR REPLACE STREAM \\\"DESTINATION_SQL_STREAM\\\" (TICKER VARCHAR(4), PRICE DOUBLE); CREATE OR REPLACE PUMP \\\"P\\\" AS INSERT INTO \\\"DESTINATION_SQL_STREAM\\\" SELECT STREAM TICKER, PRICE FROM \\\"SOURCE_SQL_STREAM_001\\\" WHERE PRICE > 10;";
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let file = manifests.join("app.yaml");
    std::fs::write(&file, app_manifest(v1)).unwrap();
    let data = dir.path().join("data");
    let args = [
        "--data-dir",
        data.to_str().unwrap(),
        "--manifests",
        manifests.to_str().unwrap(),
    ];
    let mut server = Server::start(&args).await.unwrap();
    let describe = |endpoint: String| async move {
        let c = analytics_client(&endpoint);
        c.describe_application()
            .application_name("prices")
            .send()
            .await
            .unwrap()
            .application_detail
            .unwrap()
    };
    let d = describe(server.api.clone()).await;
    assert_eq!(d.application_version_id(), 1);
    assert!(!d.application_code().unwrap().contains("WHERE"));

    server.restart().await.unwrap();
    assert_eq!(
        describe(server.api.clone()).await.application_version_id(),
        1
    );

    std::fs::write(&file, app_manifest(v2)).unwrap();
    server.restart().await.unwrap();
    let d = describe(server.api.clone()).await;
    assert_eq!(d.application_version_id(), 2);
    assert!(d.application_code().unwrap().contains("WHERE PRICE > 10"));
    assert_eq!(d.application_status().as_str(), "RUNNING");
}

#[tokio::test]
async fn a_manifest_with_format_conversion_writes_parquet_with_the_catalog_table() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(
        manifests.join("trades.yaml"),
        r#"apiVersion: tributary.dev/v1alpha1
kind: DeliveryStream
metadata: {name: trades}
spec:
  extendedS3DestinationConfiguration:
    bucketARN: arn:aws:s3:::lake
    prefix: trades/
    bufferingHints: {sizeInMBs: 64, intervalInSeconds: 1}
    dataFormatConversionConfiguration:
      schemaConfiguration:
        databaseName: markets
        tableName: trades
        glueCatalogConfigMapRef: {name: glue-tables}
      inputFormatConfiguration:
        deserializer:
          openXJsonSerDe:
            columnToJsonKeyMappings: {ticker: Symbol}
      outputFormatConfiguration:
        serializer:
          parquetSerDe: {compression: SNAPPY}
"#,
    )
    .unwrap();
    // The layout the operator mounts from the ConfigMap key `markets.trades.json`.
    let catalog = dir.path().join("glue");
    std::fs::create_dir_all(catalog.join("markets")).unwrap();
    std::fs::write(
        catalog.join("markets/trades.json"),
        r#"{"Table": {"Name": "trades", "StorageDescriptor": {"Columns": [
            {"Name": "ticker", "Type": "string"}, {"Name": "price", "Type": "double"}]}}}"#,
    )
    .unwrap();
    let data = dir.path().join("data");
    let s3 = dir.path().join("s3");
    let s3_url = format!("file://{}", s3.display());
    let server = Server::start(&[
        "--data-dir",
        data.to_str().unwrap(),
        "--s3-endpoint",
        &s3_url,
        "--glue-catalog",
        catalog.to_str().unwrap(),
        "--manifests",
        manifests.to_str().unwrap(),
    ])
    .await
    .unwrap();
    let c = firehose(&server.api);
    let d = c
        .describe_delivery_stream()
        .delivery_stream_name("trades")
        .send()
        .await
        .unwrap()
        .delivery_stream_description
        .unwrap();
    let conv = d.destinations()[0]
        .extended_s3_destination_description()
        .unwrap()
        .data_format_conversion_configuration()
        .unwrap();
    let mappings = conv
        .input_format_configuration()
        .unwrap()
        .deserializer()
        .unwrap()
        .open_x_json_ser_de()
        .unwrap()
        .column_to_json_key_mappings()
        .unwrap();
    assert_eq!(mappings["ticker"], "Symbol", "map keys keep their case");
    assert_eq!(
        conv.schema_configuration().unwrap().table_name(),
        Some("trades")
    );
    c.put_record()
        .delivery_stream_name("trades")
        .record(
            aws_sdk_firehose::types::Record::builder()
                .data(aws_sdk_firehose::primitives::Blob::new(
                    r#"{"Symbol": "AMZN", "price": 12.5}"#,
                ))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let root = s3.join("lake");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let object = loop {
        let found = walk(&root)
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(".parquet"));
        if let Some(p) = found {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "no Parquet object");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let bytes = std::fs::read(&object).unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    assert!(object.strip_prefix(&root).unwrap().starts_with("trades"));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
