//! The Rust AWS SDK (`aws-sdk-firehose`) against a real `tributary` process: the Firehose API,
//! delivery into a local directory and to a local HTTP endpoint, faults and restarts, and a
//! stream → delivery stream pipeline.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::{
    CompressionFormat, ContentEncoding, DeliveryStreamEncryptionConfigurationInput,
    ExtendedS3DestinationConfiguration, ExtendedS3DestinationUpdate, HttpEndpointCommonAttribute,
    HttpEndpointDestinationConfiguration, HttpEndpointRequestConfiguration, KeyType,
    ProcessingConfiguration, Processor, ProcessorType, Record, S3DestinationConfiguration, Tag,
};
use aws_sdk_firehose::Client;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tributary_tests::{
    buffering_hints, create_stream, create_stream_delivery, files, firehose_client as client,
    http_endpoint_config, kinesis_client as kinesis, metric, put_record_batch, s3_config,
    update_shard_count, wait_for, Server, FIREHOSE_ROLE,
};

/// A server whose S3 destinations write into `dir` (`file://` object store).
async fn start(dir: &Path, extra: &[&str]) -> (Server, Client) {
    let endpoint = format!("file://{}", dir.join("s3").display());
    let data = dir.join("data");
    let mut args = vec![
        "--no-limits",
        "--data-dir",
        data.to_str().unwrap(),
        "--s3-endpoint",
        &endpoint,
        "--delivery-retry-initial-ms",
        "100",
        "--delivery-retry-max-ms",
        "400",
    ];
    args.extend_from_slice(extra);
    let server = Server::start(&args).await.unwrap();
    let c = client(&server.api);
    (server, c)
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Lines of every delivered object under `root`, decompressed when the key ends in `.gz`.
fn delivered_lines(root: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for (key, body) in files(root) {
        let text = if key.ends_with(".gz") {
            gunzip(&body)
        } else {
            body
        };
        lines.extend(String::from_utf8(text).unwrap().lines().map(str::to_string));
    }
    lines
}

/// PutRecordBatch of `records`; every one is accepted and answered.
async fn put_batch(c: &Client, name: &str, records: &[String]) {
    let out = put_record_batch(c, name, records.iter().map(String::as_bytes)).await;
    assert_eq!(out.request_responses().len(), records.len());
}

#[tokio::test]
async fn delivery_stream_lifecycle_matches_firehose() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, c) = start(dir.path(), &[]).await;
    let arn = c
        .create_delivery_stream()
        .delivery_stream_name("orders-archive")
        .extended_s3_destination_configuration(s3_config("raw/", 300, true))
        .tags(Tag::builder().key("team").value("data").build().unwrap())
        .send()
        .await
        .unwrap()
        .delivery_stream_arn
        .unwrap();
    assert_eq!(
        arn,
        "arn:aws:firehose:us-east-1:000000000000:deliverystream/orders-archive"
    );

    let again = c
        .create_delivery_stream()
        .delivery_stream_name("orders-archive")
        .extended_s3_destination_configuration(s3_config("raw/", 300, true))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        again.into_service_error().meta().code(),
        Some("ResourceInUseException")
    );

    let d = c
        .describe_delivery_stream()
        .delivery_stream_name("orders-archive")
        .send()
        .await
        .unwrap()
        .delivery_stream_description
        .unwrap();
    assert_eq!(d.delivery_stream_status().as_str(), "ACTIVE");
    assert_eq!(d.delivery_stream_type().as_str(), "DirectPut");
    assert_eq!(d.version_id(), "1");
    let dest = &d.destinations()[0];
    assert_eq!(dest.destination_id(), "destinationId-000000000001");
    let s3 = dest.extended_s3_destination_description().unwrap();
    assert_eq!(s3.bucket_arn(), "arn:aws:s3:::landing");
    assert_eq!(s3.compression_format().as_str(), "GZIP");
    assert_eq!(s3.buffering_hints().unwrap().size_in_mbs(), Some(1));
    assert!(dest.s3_destination_description().is_some());

    let names = c.list_delivery_streams().send().await.unwrap();
    assert_eq!(names.delivery_stream_names(), ["orders-archive"]);
    assert!(!names.has_more_delivery_streams());

    c.tag_delivery_stream()
        .delivery_stream_name("orders-archive")
        .tags(Tag::builder().key("env").value("test").build().unwrap())
        .send()
        .await
        .unwrap();
    c.untag_delivery_stream()
        .delivery_stream_name("orders-archive")
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let tags = c
        .list_tags_for_delivery_stream()
        .delivery_stream_name("orders-archive")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = tags.tags().iter().map(|t| t.key()).collect();
    assert_eq!(keys, ["env"]);

    c.start_delivery_stream_encryption()
        .delivery_stream_name("orders-archive")
        .delivery_stream_encryption_configuration_input(
            DeliveryStreamEncryptionConfigurationInput::builder()
                .key_type(KeyType::AwsOwnedCmk)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let put = c
        .put_record()
        .delivery_stream_name("orders-archive")
        .record(Record::builder().data(Blob::new("x")).build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(put.encrypted(), Some(true));
    assert!(!put.record_id().is_empty());
    c.stop_delivery_stream_encryption()
        .delivery_stream_name("orders-archive")
        .send()
        .await
        .unwrap();

    let stale = c
        .update_destination()
        .delivery_stream_name("orders-archive")
        .current_delivery_stream_version_id("7")
        .destination_id("destinationId-000000000001")
        .extended_s3_destination_update(
            ExtendedS3DestinationUpdate::builder().prefix("v2/").build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        stale.into_service_error().meta().code(),
        Some("ConcurrentModificationException")
    );
    c.update_destination()
        .delivery_stream_name("orders-archive")
        .current_delivery_stream_version_id("1")
        .destination_id("destinationId-000000000001")
        .extended_s3_destination_update(
            ExtendedS3DestinationUpdate::builder().prefix("v2/").build(),
        )
        .send()
        .await
        .unwrap();
    let d = c
        .describe_delivery_stream()
        .delivery_stream_name("orders-archive")
        .send()
        .await
        .unwrap()
        .delivery_stream_description
        .unwrap();
    assert_eq!(d.version_id(), "2");
    let s3 = d.destinations()[0]
        .extended_s3_destination_description()
        .unwrap();
    // Same destination type: members merge, the untouched ones stay.
    assert_eq!(s3.prefix(), Some("v2/"));
    assert_eq!(s3.compression_format().as_str(), "GZIP");

    c.delete_delivery_stream()
        .delivery_stream_name("orders-archive")
        .send()
        .await
        .unwrap();
    let gone = c
        .describe_delivery_stream()
        .delivery_stream_name("orders-archive")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        gone.into_service_error().meta().code(),
        Some("ResourceNotFoundException")
    );
}

#[tokio::test]
async fn records_and_batches_over_firehose_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, c) = start(dir.path(), &[]).await;
    c.create_delivery_stream()
        .delivery_stream_name("limits")
        .extended_s3_destination_configuration(s3_config("l/", 300, false))
        .send()
        .await
        .unwrap();
    let big = c
        .put_record()
        .delivery_stream_name("limits")
        .record(
            Record::builder()
                .data(Blob::new(vec![b'a'; 1_024_001]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        big.into_service_error().meta().code(),
        Some("ValidationException")
    );
    let many: Vec<String> = (0..501).map(|i| i.to_string()).collect();
    let err = c
        .put_record_batch()
        .delivery_stream_name("limits")
        .set_records(Some(
            many.iter()
                .map(|r| {
                    Record::builder()
                        .data(Blob::new(r.as_bytes()))
                        .build()
                        .unwrap()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("ValidationException")
    );
    // Five records of 1,000,000 bytes: each is allowed, together they pass 4 MiB.
    let err = c
        .put_record_batch()
        .delivery_stream_name("limits")
        .set_records(Some(
            (0..5)
                .map(|_| {
                    Record::builder()
                        .data(Blob::new(vec![b'b'; 1_000_000]))
                        .build()
                        .unwrap()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("InvalidArgumentException")
    );
    let missing = c
        .put_record()
        .delivery_stream_name("nope")
        .record(Record::builder().data(Blob::new("x")).build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        missing.into_service_error().meta().code(),
        Some("ResourceNotFoundException")
    );
    let bad_prefix = c
        .create_delivery_stream()
        .delivery_stream_name("bad-prefix")
        .extended_s3_destination_configuration(
            ExtendedS3DestinationConfiguration::builder()
                .role_arn(FIREHOSE_ROLE)
                .bucket_arn("arn:aws:s3:::landing")
                .prefix("y=!{timestamp:yyyy}/")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        bad_prefix.into_service_error().meta().code(),
        Some("InvalidArgumentException")
    );
}

#[tokio::test]
async fn direct_put_records_land_gzipped_and_newline_delimited_under_the_evaluated_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, c) = start(dir.path(), &[]).await;
    c.create_delivery_stream()
        .delivery_stream_name("clicks")
        .extended_s3_destination_configuration(s3_config(
            "clicks/year=!{timestamp:yyyy}/r=!{firehose:random-string}/",
            1,
            true,
        ))
        .send()
        .await
        .unwrap();
    let records: Vec<String> = (0..300).map(|i| format!("{{\"click\":{i}}}")).collect();
    for chunk in records.chunks(100) {
        put_batch(&c, "clicks", chunk).await;
    }
    let root = dir.path().join("s3/landing");
    let lines = wait_for("delivery", Duration::from_secs(20), || {
        let l = delivered_lines(&root);
        (l.len() >= records.len()).then_some(l)
    })
    .await;
    let mut sorted = lines.clone();
    sorted.sort();
    let mut expected = records.clone();
    expected.sort();
    assert_eq!(sorted, expected, "every record, exactly once");
    let year = 1970
        + (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 31_556_952);
    for (key, _) in files(&root) {
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts[0], "clicks");
        assert_eq!(parts[1], format!("year={year}"));
        assert_eq!(parts[2].len(), "r=".len() + 11, "{key}");
        assert!(parts[3].starts_with("clicks-1-"), "{key}");
        assert!(key.ends_with(".gz"), "{key}");
    }
}

/// What a test HTTP endpoint saw.
#[derive(Default)]
struct Seen {
    requests: Vec<(http::HeaderMap, serde_json::Value)>,
    /// Status to answer with while `fail_remaining` > 0.
    fail_remaining: usize,
    fail_always: bool,
}

/// A local HTTP endpoint that answers like a Firehose HTTP endpoint destination.
async fn endpoint(listener: tokio::net::TcpListener, seen: Arc<Mutex<Seen>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(
                move |req: http::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let raw = body.collect().await.unwrap().to_bytes();
                        let raw = if parts
                            .headers
                            .get("content-encoding")
                            .is_some_and(|v| v == "gzip")
                        {
                            gunzip(&raw)
                        } else {
                            raw.to_vec()
                        };
                        let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
                        let request_id = json["requestId"].as_str().unwrap_or("").to_string();
                        let fail = {
                            let mut s = seen.lock().unwrap();
                            s.requests.push((parts.headers.clone(), json));
                            if s.fail_always {
                                true
                            } else if s.fail_remaining > 0 {
                                s.fail_remaining -= 1;
                                true
                            } else {
                                false
                            }
                        };
                        let (status, body) = if fail {
                            (
                                503,
                                serde_json::json!({"requestId": request_id, "timestamp": 0, "errorMessage": "down for maintenance"}),
                            )
                        } else {
                            (
                                200,
                                serde_json::json!({"requestId": request_id, "timestamp": 0}),
                            )
                        };
                        Ok::<_, Infallible>(
                            http::Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body.to_string())))
                                .unwrap(),
                        )
                    }
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// [`http_endpoint_config`] as Firehose documents it: a named endpoint, gzipped requests with
/// a common attribute, failures backed up by error type.
fn http_config(url: &str, retry_s: i32) -> HttpEndpointDestinationConfiguration {
    let mut config = http_endpoint_config(url, retry_s, "failed/!{firehose:error-output-type}/");
    if let Some(endpoint) = config.endpoint_configuration.as_mut() {
        endpoint.name = Some("test endpoint".to_string());
    }
    config.request_configuration = Some(
        HttpEndpointRequestConfiguration::builder()
            .content_encoding(ContentEncoding::Gzip)
            .common_attributes(
                HttpEndpointCommonAttribute::builder()
                    .attribute_name("env")
                    .attribute_value("test")
                    .build()
                    .unwrap(),
            )
            .build(),
    );
    config
}

fn decoded_records(seen: &Seen) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    seen.requests
        .iter()
        .flat_map(|(_, body)| body["records"].as_array().unwrap().clone())
        .map(|r| String::from_utf8(b64.decode(r["data"].as_str().unwrap()).unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn http_endpoint_receives_the_firehose_request_format_with_access_key_and_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, c) = start(dir.path(), &[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ingest", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    tokio::spawn(endpoint(listener, seen.clone()));
    c.create_delivery_stream()
        .delivery_stream_name("to-http")
        .http_endpoint_destination_configuration(http_config(&url, 60))
        .send()
        .await
        .unwrap();
    let records: Vec<String> = (0..50).map(|i| format!("event-{i}")).collect();
    put_batch(&c, "to-http", &records).await;
    wait_for("HTTP delivery", Duration::from_secs(20), || {
        (decoded_records(&seen.lock().unwrap()).len() >= 50).then_some(())
    })
    .await;
    let s = seen.lock().unwrap();
    assert_eq!(decoded_records(&s), records);
    let (headers, body) = &s.requests[0];
    assert_eq!(headers["x-amz-firehose-protocol-version"], "1.0");
    assert_eq!(headers["x-amz-firehose-access-key"], "sekret-key");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(
        headers["x-amz-firehose-request-id"].to_str().unwrap(),
        body["requestId"].as_str().unwrap()
    );
    let attrs: serde_json::Value = serde_json::from_str(
        headers["x-amz-firehose-common-attributes"]
            .to_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        attrs,
        serde_json::json!({"commonAttributes": {"env": "test"}})
    );
    // Milliseconds since the epoch.
    assert!(body["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
}

#[tokio::test]
async fn http_endpoint_down_then_back_gets_every_record_with_the_same_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, c) = start(dir.path(), &[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen {
        fail_remaining: 3,
        ..Seen::default()
    }));
    tokio::spawn(endpoint(listener, seen.clone()));
    c.create_delivery_stream()
        .delivery_stream_name("flaky")
        .http_endpoint_destination_configuration(http_config(&url, 120))
        .send()
        .await
        .unwrap();
    let records: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    put_batch(&c, "flaky", &records).await;
    wait_for("delivery after the outage", Duration::from_secs(30), || {
        (seen.lock().unwrap().requests.len() >= 4).then_some(())
    })
    .await;
    let s = seen.lock().unwrap();
    let ids: BTreeSet<&str> = s.requests[..4]
        .iter()
        .map(|(_, b)| b["requestId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "a retried request keeps its request id");
    // The last, successful attempt carried every record.
    let b64 = base64::engine::general_purpose::STANDARD;
    let last: Vec<String> = s.requests[3].1["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| String::from_utf8(b64.decode(r["data"].as_str().unwrap()).unwrap()).unwrap())
        .collect();
    assert_eq!(last, records);
    assert!(
        files(&dir.path().join("s3/backup")).is_empty(),
        "nothing went to the error prefix"
    );
}

#[tokio::test]
async fn http_failures_past_the_retry_duration_go_to_the_error_prefix_in_firehose_layout() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, c) = start(dir.path(), &[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen {
        fail_always: true,
        ..Seen::default()
    }));
    tokio::spawn(endpoint(listener, seen.clone()));
    c.create_delivery_stream()
        .delivery_stream_name("doomed")
        .http_endpoint_destination_configuration(http_config(&url, 1))
        .send()
        .await
        .unwrap();
    let records: Vec<String> = (0..5).map(|i| format!("lost-{i}")).collect();
    put_batch(&c, "doomed", &records).await;
    let root = dir.path().join("s3/backup");
    let objects = wait_for("error objects", Duration::from_secs(30), || {
        let f = files(&root);
        (!f.is_empty()).then_some(f)
    })
    .await;
    assert_eq!(objects.len(), 1);
    let (key, body) = &objects[0];
    assert!(key.starts_with("failed/http-endpoint-failed/"), "{key}");
    let b64 = base64::engine::general_purpose::STANDARD;
    let lines: Vec<serde_json::Value> = String::from_utf8(body.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    for (line, record) in lines.iter().zip(&records) {
        assert_eq!(line["errorCode"], "HttpEndpoint.DestinationException");
        assert!(line["errorMessage"].as_str().unwrap().contains("503"));
        assert!(line["attemptsMade"].as_u64().unwrap() >= 2);
        assert!(line["arrivalTimestamp"].as_i64().unwrap() > 0);
        assert!(
            line["attemptEndingTimestamp"].as_i64().unwrap()
                >= line["arrivalTimestamp"].as_i64().unwrap()
        );
        assert_eq!(
            b64.decode(line["rawData"].as_str().unwrap()).unwrap(),
            record.as_bytes()
        );
        assert!(line.get("dataId").is_some() && line.get("subsequenceNumber").is_some());
    }
}

#[tokio::test]
async fn acknowledged_records_survive_kill_9_and_are_delivered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, c) = start(dir.path(), &[]).await;
    // A 15-minute interval keeps everything buffered when the process dies.
    c.create_delivery_stream()
        .delivery_stream_name("durable")
        .extended_s3_destination_configuration(s3_config("d/", 900, false))
        .send()
        .await
        .unwrap();
    let records: Vec<String> = (0..400).map(|i| format!("rec-{i:04}")).collect();
    for chunk in records.chunks(50) {
        put_batch(&c, "durable", chunk).await;
    }
    server.kill9().await;
    server.restart().await.unwrap();
    let c = client(&server.api);
    let d = c
        .describe_delivery_stream()
        .delivery_stream_name("durable")
        .send()
        .await
        .unwrap()
        .delivery_stream_description
        .unwrap();
    c.update_destination()
        .delivery_stream_name("durable")
        .current_delivery_stream_version_id(d.version_id())
        .destination_id("destinationId-000000000001")
        .extended_s3_destination_update(
            ExtendedS3DestinationUpdate::builder()
                .buffering_hints(buffering_hints(1, 0))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let root = dir.path().join("s3/landing");
    let lines = wait_for("delivery after restart", Duration::from_secs(20), || {
        let l = delivered_lines(&root);
        (l.len() >= records.len()).then_some(l)
    })
    .await;
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(sorted, records);
    // Delivered records are not delivered again after another restart.
    server.restart().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(delivered_lines(&root).len(), records.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_feeds_a_delivery_stream_through_a_reshard_and_every_record_lands() {
    let dir = tempfile::tempdir().unwrap();
    let (server, c) = start(dir.path(), &[]).await;
    let k = kinesis(&server.api);
    create_stream(&k, "events", 2).await;
    create_stream_delivery(&c, "events-to-s3", "events", s3_config("events/", 1, true)).await;
    let put = |range: std::ops::Range<u32>| {
        let k = k.clone();
        async move {
            for i in range {
                k.put_record()
                    .stream_name("events")
                    .partition_key(format!("user-{}", i % 17))
                    .data(aws_sdk_kinesis::primitives::Blob::new(format!("e{i:04}")))
                    .send()
                    .await
                    .unwrap();
            }
        }
    };
    put(0..150).await;
    update_shard_count(&k, "events", 4).await;
    put(150..300).await;
    let root = dir.path().join("s3/landing");
    let lines = wait_for("pipeline delivery", Duration::from_secs(30), || {
        let l = delivered_lines(&root);
        (l.len() >= 300).then_some(l)
    })
    .await;
    let expected: BTreeSet<String> = (0..300).map(|i| format!("e{i:04}")).collect();
    let got: BTreeSet<String> = lines.iter().cloned().collect();
    assert_eq!(got, expected);
    assert_eq!(lines.len(), 300, "no duplicates");
    // Within an object, records of a partition key keep the order they were put in, across
    // the reshard (children are read only after their parents).
    for (key, body) in files(&root) {
        let text = String::from_utf8(gunzip(&body)).unwrap();
        let mut last: HashMap<u32, u32> = HashMap::new();
        for l in text.lines() {
            let i: u32 = l[1..].parse().unwrap();
            if let Some(prev) = last.insert(i % 17, i) {
                assert!(prev < i, "{key}: {prev} then {i}");
            }
        }
    }
}

#[tokio::test]
async fn manifests_create_a_delivery_stream_that_archives_its_stream() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/delivery");
    let (server, c) = start(dir.path(), &["--manifests", manifests.to_str().unwrap()]).await;
    let d = c
        .describe_delivery_stream()
        .delivery_stream_name("clicks-archive")
        .send()
        .await
        .unwrap()
        .delivery_stream_description
        .unwrap();
    assert_eq!(d.delivery_stream_type().as_str(), "KinesisStreamAsSource");
    let k = kinesis(&server.api);
    for i in 0..20 {
        k.put_record()
            .stream_name("clicks")
            .partition_key(format!("p{i}"))
            .data(aws_sdk_kinesis::primitives::Blob::new(format!("click-{i}")))
            .send()
            .await
            .unwrap();
    }
    let root = dir.path().join("s3/archive");
    let lines = wait_for("archived clicks", Duration::from_secs(20), || {
        let l = delivered_lines_with(&root, ".json.gz");
        (l.len() >= 20).then_some(l)
    })
    .await;
    let got: BTreeSet<String> = lines.into_iter().collect();
    let expected: BTreeSet<String> = (0..20).map(|i| format!("click-{i}")).collect();
    assert_eq!(got, expected);
    for (key, _) in files(&root) {
        assert!(key.starts_with("raw/clicks/"), "{key}");
        assert!(key.ends_with(".json.gz"), "{key}");
    }
}

/// Lines of every object whose key ends in `gz_suffix` (gunzipped).
fn delivered_lines_with(root: &Path, gz_suffix: &str) -> Vec<String> {
    files(root)
        .into_iter()
        .filter(|(k, _)| k.ends_with(gz_suffix))
        .flat_map(|(_, b)| {
            String::from_utf8(gunzip(&b))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A transformation function behind the Lambda Invoke API: upper-cases records, drops
/// `drop-*` ones and fails `fail-*` ones. Records every path it was called on.
async fn lambda(listener: tokio::net::TcpListener, paths: Arc<Mutex<Vec<String>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let paths = paths.clone();
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let paths = paths.clone();
                    async move {
                        paths.lock().unwrap().push(req.uri().path().to_string());
                        let raw = req.into_body().collect().await.unwrap().to_bytes();
                        let event: serde_json::Value = serde_json::from_slice(&raw).unwrap();
                        let b64 = base64::engine::general_purpose::STANDARD;
                        let records: Vec<serde_json::Value> = event["records"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|r| {
                                let data = b64.decode(r["data"].as_str().unwrap()).unwrap();
                                let text = String::from_utf8(data).unwrap();
                                let result = if text.starts_with("drop-") {
                                    "Dropped"
                                } else if text.starts_with("fail-") {
                                    "ProcessingFailed"
                                } else {
                                    "Ok"
                                };
                                serde_json::json!({
                                    "recordId": r["recordId"],
                                    "result": result,
                                    "data": b64.encode(text.to_uppercase()),
                                })
                            })
                            .collect();
                        let body = serde_json::json!({ "records": records }).to_string();
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body))))
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[tokio::test]
async fn lambda_transformation_delivers_ok_records_fails_others_and_backs_up_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lambda_url = format!("http://{}", listener.local_addr().unwrap());
    let paths = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(lambda(listener, paths.clone()));
    let (_server, c) = start(dir.path(), &["--lambda-endpoint", &lambda_url]).await;
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:upper";
    let mut config = s3_config("t/", 0, false);
    config.processing_configuration = Some(
        ProcessingConfiguration::builder()
            .enabled(true)
            .processors(
                Processor::builder()
                    .r#type(ProcessorType::Lambda)
                    .parameters(
                        aws_sdk_firehose::types::ProcessorParameter::builder()
                            .parameter_name(
                                aws_sdk_firehose::types::ProcessorParameterName::LambdaArn,
                            )
                            .parameter_value(arn)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .processors(
                Processor::builder()
                    .r#type(ProcessorType::AppendDelimiterToRecord)
                    .build()
                    .unwrap(),
            )
            .build(),
    );
    // Source record backup keeps the records as they arrived, before the transformation.
    config.s3_backup_mode = Some(aws_sdk_firehose::types::S3BackupMode::Enabled);
    config.s3_backup_configuration = Some(
        S3DestinationConfiguration::builder()
            .role_arn(FIREHOSE_ROLE)
            .bucket_arn("arn:aws:s3:::backup")
            .prefix("source/")
            .build()
            .unwrap(),
    );
    c.create_delivery_stream()
        .delivery_stream_name("transformed")
        .extended_s3_destination_configuration(config)
        .send()
        .await
        .unwrap();
    let records: Vec<String> = ["keep-1", "drop-2", "fail-3", "keep-4"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    put_batch(&c, "transformed", &records).await;
    let root = dir.path().join("s3/landing");
    let delivered = wait_for("transformed objects", Duration::from_secs(20), || {
        let l = delivered_lines(&root.join("t"));
        (l.len() >= 2).then_some(l)
    })
    .await;
    assert_eq!(delivered, ["KEEP-1", "KEEP-4"]);
    let errors = wait_for("processing-failed objects", Duration::from_secs(20), || {
        let f = files(&root.join("errors/processing-failed"));
        (!f.is_empty()).then_some(f)
    })
    .await;
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8(errors[0].1.clone()).unwrap().trim()).unwrap();
    assert_eq!(line["errorCode"], "Lambda.ProcessingFailed");
    assert_eq!(line["lambdaArn"], arn);
    assert_eq!(line["attemptsMade"], 1);
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(line["rawData"].as_str().unwrap())
            .unwrap(),
        b"fail-3"
    );
    assert_eq!(
        paths.lock().unwrap()[0],
        format!("/2015-03-31/functions/{arn}/invocations")
    );
    let backup = wait_for("source record backup", Duration::from_secs(20), || {
        let f = files(&dir.path().join("s3/backup/source"));
        (!f.is_empty()).then_some(f)
    })
    .await;
    assert_eq!(backup.len(), 1);
    assert_eq!(
        String::from_utf8(backup[0].1.clone()).unwrap(),
        records.concat(),
        "every source record, untransformed, dropped and failed ones included"
    );
}

/// A KPL aggregated record (magic, protobuf `AggregatedRecord`, MD5), built independently of
/// the server's parser.
fn kpl_aggregate(records: &[&str]) -> Vec<u8> {
    use md5::Digest;
    fn varint(mut v: usize, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn bytes_field(n: usize, payload: &[u8], out: &mut Vec<u8>) {
        varint(n << 3 | 2, out);
        varint(payload.len(), out);
        out.extend_from_slice(payload);
    }
    let mut body = Vec::new();
    bytes_field(1, b"agg-key", &mut body);
    for r in records {
        let mut rec = vec![0x08, 0x00]; // partition_key_index = 0
        bytes_field(3, r.as_bytes(), &mut rec);
        bytes_field(3, &rec, &mut body);
    }
    let mut out = vec![0xF3, 0x89, 0x9A, 0xC2];
    out.extend_from_slice(&body);
    out.extend_from_slice(&md5::Md5::digest(&body));
    out
}

#[tokio::test]
async fn kpl_aggregated_stream_records_are_delivered_as_their_sub_records() {
    let dir = tempfile::tempdir().unwrap();
    let (server, c) = start(dir.path(), &[]).await;
    let k = kinesis(&server.api);
    create_stream(&k, "kpl", 1).await;
    create_stream_delivery(&c, "kpl-to-s3", "kpl", s3_config("kpl/", 0, false)).await;
    for data in [kpl_aggregate(&["a1", "a2", "a3"]), b"plain".to_vec()] {
        k.put_record()
            .stream_name("kpl")
            .partition_key("p")
            .data(aws_sdk_kinesis::primitives::Blob::new(data))
            .send()
            .await
            .unwrap();
    }
    let root = dir.path().join("s3/landing");
    let lines = wait_for("de-aggregated records", Duration::from_secs(20), || {
        let l = delivered_lines(&root);
        (l.len() >= 4).then_some(l)
    })
    .await;
    let got: BTreeSet<String> = lines.into_iter().collect();
    let expected: BTreeSet<String> = ["a1", "a2", "a3", "plain"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn direct_put_beyond_five_mib_per_second_is_throttled_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("file://{}", dir.path().join("s3").display());
    let data = dir.path().join("data");
    // Limits on (no --no-limits): Firehose's 5 MiB/s DirectPut quota.
    let server = Server::start(&[
        "--data-dir",
        data.to_str().unwrap(),
        "--s3-endpoint",
        &endpoint,
    ])
    .await
    .unwrap();
    let c = client(&server.api);
    c.create_delivery_stream()
        .delivery_stream_name("quota")
        .extended_s3_destination_configuration(s3_config("q/", 300, false))
        .send()
        .await
        .unwrap();
    let record = || {
        Record::builder()
            .data(Blob::new(vec![b'q'; 1_000_000]))
            .build()
            .unwrap()
    };
    // Concurrent batches reach the quota check within a fraction of a second of each other,
    // so the test does not depend on how fast one request is served.
    let batches: Vec<_> = (0..12)
        .map(|_| {
            let c = c.clone();
            let records: Vec<Record> = (0..4).map(|_| record()).collect();
            tokio::spawn(async move {
                c.put_record_batch()
                    .delivery_stream_name("quota")
                    .set_records(Some(records))
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut outs = Vec::new();
    for b in batches {
        outs.push(b.await.unwrap());
    }
    let throttled: Vec<_> = outs.iter().filter(|o| o.failed_put_count() > 0).collect();
    assert!(
        !throttled.is_empty(),
        "48 MB put at once must exceed 5 MiB/s"
    );
    for out in throttled {
        assert_eq!(out.failed_put_count(), 4);
        for r in out.request_responses() {
            assert_eq!(r.error_code(), Some("ServiceUnavailableException"));
            assert_eq!(r.record_id(), None);
        }
    }
    let singles: Vec<_> = (0..30)
        .map(|_| {
            let c = c.clone();
            let r = record();
            tokio::spawn(async move {
                c.put_record()
                    .delivery_stream_name("quota")
                    .record(r)
                    .send()
                    .await
            })
        })
        .collect();
    let mut refused = None;
    for s in singles {
        if let Err(e) = s.await.unwrap() {
            refused = Some(e);
        }
    }
    let e = refused.expect("30 MB of single puts at once must exceed 5 MiB/s");
    assert_eq!(
        e.into_service_error().meta().code(),
        Some("ServiceUnavailableException")
    );
}

#[tokio::test]
async fn dynamic_partitioning_writes_one_object_per_jq_key_and_errors_unparsable_records() {
    use aws_sdk_firehose::types::{
        DynamicPartitioningConfiguration, ProcessorParameter, ProcessorParameterName,
    };
    let dir = tempfile::tempdir().unwrap();
    let (_server, c) = start(dir.path(), &[]).await;
    let param = |name: ProcessorParameterName, value: &str| {
        ProcessorParameter::builder()
            .parameter_name(name)
            .parameter_value(value)
            .build()
            .unwrap()
    };
    let config = ExtendedS3DestinationConfiguration::builder()
        .role_arn(FIREHOSE_ROLE)
        .bucket_arn("arn:aws:s3:::landing")
        .prefix("by-customer/customer=!{partitionKeyFromQuery:customer}/")
        .error_output_prefix("dp-errors/!{firehose:error-output-type}/")
        .buffering_hints(buffering_hints(1, 0))
        .dynamic_partitioning_configuration(
            DynamicPartitioningConfiguration::builder()
                .enabled(true)
                .build(),
        )
        .processing_configuration(
            ProcessingConfiguration::builder()
                .enabled(true)
                .processors(
                    Processor::builder()
                        .r#type(ProcessorType::MetadataExtraction)
                        .parameters(param(
                            ProcessorParameterName::MetadataExtractionQuery,
                            "{customer: .customer_id}",
                        ))
                        .parameters(param(ProcessorParameterName::JsonParsingEngine, "JQ-1.6"))
                        .build()
                        .unwrap(),
                )
                .processors(
                    Processor::builder()
                        .r#type(ProcessorType::AppendDelimiterToRecord)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .build()
        .unwrap();
    c.create_delivery_stream()
        .delivery_stream_name("partitioned")
        .extended_s3_destination_configuration(config)
        .send()
        .await
        .unwrap();
    let records: Vec<String> = [
        r#"{"customer_id":"acme","n":1}"#,
        r#"{"customer_id":"globex","n":2}"#,
        r#"{"customer_id":"acme","n":3}"#,
        "not json at all",
        r#"{"n":5}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    put_batch(&c, "partitioned", &records).await;
    let root = dir.path().join("s3/landing");
    let acme = wait_for("acme partition", Duration::from_secs(20), || {
        let l = delivered_lines(&root.join("by-customer/customer=acme"));
        (l.len() >= 2).then_some(l)
    })
    .await;
    assert_eq!(acme, [records[0].clone(), records[2].clone()]);
    let globex = delivered_lines(&root.join("by-customer/customer=globex"));
    assert_eq!(globex, [records[1].clone()]);
    let errors = wait_for("partitioning errors", Duration::from_secs(20), || {
        let f = files(&root.join("dp-errors/processing-failed"));
        (!f.is_empty()).then_some(f)
    })
    .await;
    let lines: Vec<serde_json::Value> = String::from_utf8(errors[0].1.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(
            l["errorCode"],
            "DynamicPartitioning.MetadataExtractionFailed"
        );
    }
    // Without `customer_id` the query yields null, which is a failure rather than an empty
    // key that would silently merge the record into another partition.
    let raw: BTreeSet<Vec<u8>> = lines
        .iter()
        .map(|l| {
            base64::engine::general_purpose::STANDARD
                .decode(l["rawData"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert!(raw.contains(b"not json at all".as_slice()));
    assert_eq!(
        metric(
            &_server,
            "firehose_partition_count{delivery_stream=\"partitioned\"}"
        )
        .await,
        2.0
    );
}

fn param(
    name: aws_sdk_firehose::types::ProcessorParameterName,
    value: &str,
) -> aws_sdk_firehose::types::ProcessorParameter {
    aws_sdk_firehose::types::ProcessorParameter::builder()
        .parameter_name(name)
        .parameter_value(value)
        .build()
        .unwrap()
}

fn processor(
    kind: ProcessorType,
    params: Vec<aws_sdk_firehose::types::ProcessorParameter>,
) -> Processor {
    Processor::builder()
        .r#type(kind)
        .set_parameters(Some(params))
        .build()
        .unwrap()
}

fn processing(processors: Vec<Processor>) -> ProcessingConfiguration {
    ProcessingConfiguration::builder()
        .enabled(true)
        .set_processors(Some(processors))
        .build()
}

fn s3_with(
    prefix: &str,
    size_mb: i32,
    p: ProcessingConfiguration,
) -> ExtendedS3DestinationConfiguration {
    ExtendedS3DestinationConfiguration::builder()
        .role_arn(FIREHOSE_ROLE)
        .bucket_arn("arn:aws:s3:::landing")
        .prefix(prefix)
        .error_output_prefix("errors/!{firehose:error-output-type}/")
        .buffering_hints(buffering_hints(size_mb, 0))
        .processing_configuration(p)
        .build()
        .unwrap()
}

/// The JSON error records of every object under `dir`.
fn error_records(dir: &Path) -> Vec<serde_json::Value> {
    files(dir)
        .iter()
        .flat_map(|(_, body)| {
            String::from_utf8(body.clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn raw_data(e: &serde_json::Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(e["rawData"].as_str().unwrap())
        .unwrap()
}

fn gzip(s: &str) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(s.as_bytes()).unwrap();
    e.finish().unwrap()
}

async fn put_raw(c: &Client, name: &str, records: Vec<Vec<u8>>) {
    let out = c
        .put_record_batch()
        .delivery_stream_name(name)
        .set_records(Some(
            records
                .into_iter()
                .map(|r| Record::builder().data(Blob::new(r)).build().unwrap())
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_put_count(), 0);
}

fn error_code<E, R>(e: aws_sdk_firehose::error::SdkError<E, R>) -> (String, String)
where
    E: aws_sdk_firehose::error::ProvideErrorMetadata,
{
    use aws_sdk_firehose::error::ProvideErrorMetadata;
    (
        e.code().unwrap_or_default().to_string(),
        e.message().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn cloudwatch_logs_subscription_data_is_decompressed_and_its_messages_extracted() {
    use aws_sdk_firehose::types::ProcessorParameterName as N;
    let dir = tempfile::tempdir().unwrap();
    let (_server, c) = start(dir.path(), &[]).await;
    let p = processing(vec![
        processor(
            ProcessorType::Decompression,
            vec![param(N::CompressionFormat, "GZIP")],
        ),
        processor(
            ProcessorType::CloudWatchLogProcessing,
            vec![param(N::DataMessageExtraction, "true")],
        ),
        processor(ProcessorType::AppendDelimiterToRecord, vec![]),
    ]);
    c.create_delivery_stream()
        .delivery_stream_name("cwl")
        .extended_s3_destination_configuration(s3_with("logs/", 1, p))
        .send()
        .await
        .unwrap();
    let data = |events: &[&str]| {
        let events: Vec<serde_json::Value> = events
            .iter()
            .enumerate()
            .map(|(i, m)| serde_json::json!({"id": i.to_string(), "timestamp": 1_700_000_000_000i64 + i as i64, "message": m}))
            .collect();
        gzip(
            &serde_json::json!({
                "messageType": "DATA_MESSAGE", "owner": "000000000000", "logGroup": "/app",
                "logStream": "web-1", "subscriptionFilters": ["all"], "logEvents": events,
            })
            .to_string(),
        )
    };
    let control = gzip(
        r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#,
    );
    put_raw(
        &c,
        "cwl",
        vec![
            data(&["GET /index.html 200", "GET /missing 404"]),
            control,
            b"not gzip".to_vec(),
            data(&["POST /login 302"]),
        ],
    )
    .await;
    let root = dir.path().join("s3/landing");
    let lines = wait_for("extracted messages", Duration::from_secs(20), || {
        let l = delivered_lines(&root.join("logs"));
        (l.len() >= 3).then_some(l)
    })
    .await;
    assert_eq!(
        lines,
        ["GET /index.html 200", "GET /missing 404", "POST /login 302"]
    );
    let errors = wait_for("decompression errors", Duration::from_secs(20), || {
        let e = error_records(&root.join("errors/decompression-failed"));
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(errors.len(), 1);
    assert_eq!(raw_data(&errors[0]), b"not gzip");
    assert_eq!(errors[0]["errorCode"], "Decompression.InvalidData");
    assert_eq!(
        metric(
            &_server,
            "firehose_failed_processing_records_total{delivery_stream=\"cwl\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn record_deaggregation_splits_json_and_delimited_records() {
    use aws_sdk_firehose::types::ProcessorParameterName as N;
    let dir = tempfile::tempdir().unwrap();
    let (_server, c) = start(dir.path(), &[]).await;
    let newline = processor(ProcessorType::AppendDelimiterToRecord, vec![]);
    c.create_delivery_stream()
        .delivery_stream_name("json-agg")
        .extended_s3_destination_configuration(s3_with(
            "json/",
            1,
            processing(vec![
                processor(
                    ProcessorType::RecordDeAggregation,
                    vec![param(N::SubRecordType, "JSON")],
                ),
                newline.clone(),
            ]),
        ))
        .send()
        .await
        .unwrap();
    c.create_delivery_stream()
        .delivery_stream_name("delimited-agg")
        .extended_s3_destination_configuration(s3_with(
            "delimited/",
            1,
            processing(vec![
                processor(
                    ProcessorType::RecordDeAggregation,
                    vec![
                        param(N::SubRecordType, "DELIMITED"),
                        // base64 of "####", as in Firehose's documentation.
                        param(N::Delimiter, "IyMjIw=="),
                    ],
                ),
                newline,
            ]),
        ))
        .send()
        .await
        .unwrap();
    put_raw(
        &c,
        "json-agg",
        vec![
            br#"{"a":1}{"b":{"c":2}}"#.to_vec(),
            b"{\"d\":3}\n{\"e\":4}\n".to_vec(),
            b"[1,2,3]".to_vec(),
        ],
    )
    .await;
    put_raw(&c, "delimited-agg", vec![b"x=1####y=2####z=3".to_vec()]).await;
    let root = dir.path().join("s3/landing");
    let json = wait_for("JSON sub-records", Duration::from_secs(20), || {
        let l = delivered_lines(&root.join("json"));
        (l.len() >= 4).then_some(l)
    })
    .await;
    assert_eq!(
        json,
        [r#"{"a":1}"#, r#"{"b":{"c":2}}"#, r#"{"d":3}"#, r#"{"e":4}"#]
    );
    let delimited = wait_for("delimited sub-records", Duration::from_secs(20), || {
        let l = delivered_lines(&root.join("delimited"));
        (l.len() >= 3).then_some(l)
    })
    .await;
    assert_eq!(delimited, ["x=1", "y=2", "z=3"]);
    let errors = wait_for("de-aggregation errors", Duration::from_secs(20), || {
        let e = error_records(&root.join("errors/processing-failed"));
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(errors.len(), 1);
    assert_eq!(raw_data(&errors[0]), b"[1,2,3]");
}

#[tokio::test]
async fn processor_parameters_are_checked_as_firehose_does() {
    use aws_sdk_firehose::types::ProcessorParameterName as N;
    let dir = tempfile::tempdir().unwrap();
    let (_server, c) = start(dir.path(), &[]).await;
    let cases: Vec<(Vec<Processor>, &str)> = vec![
        (
            vec![processor(
                ProcessorType::RecordDeAggregation,
                vec![param(N::SubRecordType, "CSV")],
            )],
            "SubRecordType CSV is invalid; valid values: JSON, DELIMITED.",
        ),
        (
            vec![processor(
                ProcessorType::RecordDeAggregation,
                vec![param(N::SubRecordType, "DELIMITED")],
            )],
            "SubRecordType DELIMITED requires the Delimiter parameter.",
        ),
        (
            vec![processor(
                ProcessorType::CloudWatchLogProcessing,
                vec![param(N::DataMessageExtraction, "true")],
            )],
            "The CloudWatchLogProcessing processor requires the Decompression processor.",
        ),
        (
            vec![processor(
                ProcessorType::Decompression,
                vec![param(N::CompressionFormat, "ZIP")],
            )],
            "CompressionFormat ZIP is invalid for processor type Decompression; valid values: GZIP.",
        ),
        (
            vec![processor(
                ProcessorType::Decompression,
                vec![param(N::LambdaArn, "arn:aws:lambda:us-east-1:000000000000:function:f")],
            )],
            "Processor parameter LambdaArn is not valid for processor type Decompression.",
        ),
        (
            vec![processor(
                ProcessorType::Lambda,
                vec![
                    param(N::LambdaArn, "arn:aws:lambda:us-east-1:000000000000:function:f"),
                    param(N::BufferSizeInMb, "5"),
                ],
            )],
            "BufferSizeInMBs value 5 is invalid for processor type Lambda: it must be a number between 0.2 and 3.",
        ),
        (
            vec![processor(
                ProcessorType::MetadataExtraction,
                vec![param(N::MetadataExtractionQuery, "{a: .a}")],
            )],
            "The MetadataExtraction processor requires the JsonParsingEngine parameter.",
        ),
    ];
    for (i, (processors, message)) in cases.into_iter().enumerate() {
        let e = c
            .create_delivery_stream()
            .delivery_stream_name(format!("bad-{i}"))
            .extended_s3_destination_configuration(s3_with("p/", 1, processing(processors)))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            error_code(e),
            ("InvalidArgumentException".to_string(), message.to_string())
        );
    }
    // Unknown processor types and parameter names fail the model's enum check.
    let e = c
        .create_delivery_stream()
        .delivery_stream_name("bad-enum")
        .extended_s3_destination_configuration(s3_with(
            "p/",
            1,
            processing(vec![processor(ProcessorType::from("Compress"), vec![])]),
        ))
        .send()
        .await
        .unwrap_err();
    let (code, message) = error_code(e);
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("Member must satisfy enum value set: [RecordDeAggregation, Decompression, CloudWatchLogProcessing, Lambda, MetadataExtraction, AppendDelimiterToRecord]"),
        "{message}"
    );
}

/// A Glue table as `aws glue get-table` prints it.
fn glue_table(dir: &Path) {
    std::fs::create_dir_all(dir.join("analytics")).unwrap();
    std::fs::write(
        dir.join("analytics/trades.json"),
        serde_json::json!({"Table": {
            "Name": "trades", "DatabaseName": "analytics",
            "StorageDescriptor": {"Columns": [
                {"Name": "ticker", "Type": "string"},
                {"Name": "price", "Type": "double"},
                {"Name": "qty", "Type": "int"},
                {"Name": "traded_at", "Type": "timestamp"},
                {"Name": "venue_id", "Type": "bigint"},
            ], "Location": "s3://landing/trades/"},
            "TableType": "EXTERNAL_TABLE",
        }})
        .to_string(),
    )
    .unwrap();
}

fn conversion(
    table: &str,
    compression: aws_sdk_firehose::types::ParquetCompression,
) -> aws_sdk_firehose::types::DataFormatConversionConfiguration {
    use aws_sdk_firehose::types::*;
    DataFormatConversionConfiguration::builder()
        .enabled(true)
        .schema_configuration(
            SchemaConfiguration::builder()
                .role_arn(FIREHOSE_ROLE)
                .database_name("analytics")
                .table_name(table)
                .region("us-east-1")
                .version_id("LATEST")
                .build(),
        )
        .input_format_configuration(
            InputFormatConfiguration::builder()
                .deserializer(
                    Deserializer::builder()
                        .open_x_json_ser_de(
                            OpenXJsonSerDe::builder()
                                .convert_dots_in_json_keys_to_underscores(true)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .output_format_configuration(
            OutputFormatConfiguration::builder()
                .serializer(
                    Serializer::builder()
                        .parquet_ser_de(ParquetSerDe::builder().compression(compression).build())
                        .build(),
                )
                .build(),
        )
        .build()
}

fn converted_s3(
    table: &str,
    size_mb: i32,
    compression: CompressionFormat,
) -> ExtendedS3DestinationConfiguration {
    ExtendedS3DestinationConfiguration::builder()
        .role_arn(FIREHOSE_ROLE)
        .bucket_arn("arn:aws:s3:::landing")
        .prefix("trades/")
        .error_output_prefix("errors/!{firehose:error-output-type}/")
        .buffering_hints(buffering_hints(size_mb, 0))
        .compression_format(compression)
        .data_format_conversion_configuration(conversion(
            table,
            aws_sdk_firehose::types::ParquetCompression::Snappy,
        ))
        .build()
        .unwrap()
}

#[tokio::test]
async fn json_records_are_converted_to_parquet_with_the_glue_table_schema() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tempfile::tempdir().unwrap();
    let glue = dir.path().join("glue");
    glue_table(&glue);
    let (_server, c) = start(dir.path(), &["--glue-catalog", glue.to_str().unwrap()]).await;
    c.create_delivery_stream()
        .delivery_stream_name("trades")
        .extended_s3_destination_configuration(converted_s3(
            "trades",
            64,
            CompressionFormat::Uncompressed,
        ))
        .send()
        .await
        .unwrap();
    let described = c
        .describe_delivery_stream()
        .delivery_stream_name("trades")
        .send()
        .await
        .unwrap();
    let d = described
        .delivery_stream_description()
        .unwrap()
        .destinations()[0]
        .extended_s3_destination_description()
        .unwrap()
        .data_format_conversion_configuration()
        .unwrap()
        .clone();
    assert_eq!(d.enabled(), Some(true));
    assert_eq!(
        d.schema_configuration().unwrap().table_name(),
        Some("trades")
    );
    put_batch(
        &c,
        "trades",
        &[
            r#"{"ticker":"AMZN","price":181.5,"qty":10,"traded_at":"2024-03-01T14:30:00Z","venue.id":7}"#.to_string(),
            // Keys match case-insensitively; numbers in strings and epoch seconds are read.
            r#"{"TICKER":"MSFT","Price":"402.25","qty":3,"traded_at":1709303400}"#.to_string(),
            // Two objects in one record are two rows.
            r#"{"ticker":"A","qty":1} {"ticker":"B","qty":2}"#.to_string(),
            r#"[{"ticker":"arrays are not records"}]"#.to_string(),
            r#"{"ticker":"BAD","qty":"many"}"#.to_string(),
        ],
    )
    .await;
    let root = dir.path().join("s3/landing");
    let objects = wait_for("the Parquet object", Duration::from_secs(20), || {
        let f = files(&root.join("trades"));
        (!f.is_empty()).then_some(f)
    })
    .await;
    assert_eq!(objects.len(), 1);
    let (key, body) = &objects[0];
    assert!(key.ends_with(".parquet"), "{key}");
    assert!(key.contains("trades-1-"), "{key}");
    let reader = SerializedFileReader::new(Bytes::from(body.clone())).unwrap();
    let schema: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    assert_eq!(schema, ["ticker", "price", "qty", "traded_at", "venue_id"]);
    assert_eq!(
        reader.metadata().row_group(0).column(0).compression(),
        parquet::basic::Compression::SNAPPY
    );
    let rows: Vec<serde_json::Value> = reader
        .get_row_iter(None)
        .unwrap()
        .map(|r| r.unwrap().to_json_value())
        .collect();
    assert_eq!(
        rows,
        vec![
            serde_json::json!({"ticker":"AMZN","price":181.5,"qty":10,"traded_at":"2024-03-01 14:30:00.000 +00:00","venue_id":7}),
            serde_json::json!({"ticker":"MSFT","price":402.25,"qty":3,"traded_at":"2024-03-01 14:30:00.000 +00:00","venue_id":null}),
            serde_json::json!({"ticker":"A","price":null,"qty":1,"traded_at":null,"venue_id":null}),
            serde_json::json!({"ticker":"B","price":null,"qty":2,"traded_at":null,"venue_id":null}),
        ]
    );
    let errors = wait_for("conversion errors", Duration::from_secs(20), || {
        let e = error_records(&root.join("errors/format-conversion-failed"));
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(errors.len(), 2);
    for e in &errors {
        assert_eq!(e["lastErrorCode"], "DataFormatConversion.MalformedData");
        assert_eq!(e["dataCatalogTable"]["databaseName"], "analytics");
        assert_eq!(e["dataCatalogTable"]["tableName"], "trades");
        assert_eq!(e["attemptsMade"], 1);
    }
    let raw: BTreeSet<Vec<u8>> = errors.iter().map(raw_data).collect();
    assert!(raw.contains(br#"{"ticker":"BAD","qty":"many"}"#.as_slice()));
    // Firehose's SucceedConversion.Records and FailedConversion.Records count records.
    let series =
        |m: &str| format!("firehose_{m}_conversion_records_total{{delivery_stream=\"trades\"}}");
    assert_eq!(metric(&_server, &series("succeed")).await, 3.0);
    assert_eq!(metric(&_server, &series("failed")).await, 2.0);
}

#[tokio::test]
async fn format_conversion_configurations_are_checked_as_firehose_does() {
    use aws_sdk_firehose::types::ParquetCompression;
    let dir = tempfile::tempdir().unwrap();
    let glue = dir.path().join("glue");
    glue_table(&glue);
    let (_server, c) = start(dir.path(), &["--glue-catalog", glue.to_str().unwrap()]).await;
    let cases = [
        (
            converted_s3("trades", 64, CompressionFormat::Gzip),
            "CompressionFormat must be UNCOMPRESSED when data format conversion is enabled; the serializer compresses the data.",
        ),
        (
            converted_s3("trades", 5, CompressionFormat::Uncompressed),
            "BufferingHints.SizeInMBs must be at least 64 when data format conversion is enabled.",
        ),
        (
            converted_s3("missing", 64, CompressionFormat::Uncompressed),
            "Table missing in database analytics not found.",
        ),
    ];
    for (i, (config, message)) in cases.into_iter().enumerate() {
        let e = c
            .create_delivery_stream()
            .delivery_stream_name(format!("conv-{i}"))
            .extended_s3_destination_configuration(config)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            error_code(e),
            ("InvalidArgumentException".to_string(), message.to_string())
        );
    }
    let mut bad = converted_s3("trades", 64, CompressionFormat::Uncompressed);
    bad.data_format_conversion_configuration =
        Some(conversion("trades", ParquetCompression::from("LZO")));
    let e = c
        .create_delivery_stream()
        .delivery_stream_name("conv-enum")
        .extended_s3_destination_configuration(bad)
        .send()
        .await
        .unwrap_err();
    let (code, message) = error_code(e);
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("Member must satisfy enum value set: [UNCOMPRESSED, GZIP, SNAPPY]"),
        "{message}"
    );
    // Enabled defaults to true, and the buffer to 128 MiB, as in Firehose.
    let mut defaults = converted_s3("trades", 64, CompressionFormat::Uncompressed);
    defaults.buffering_hints = None;
    defaults
        .data_format_conversion_configuration
        .as_mut()
        .unwrap()
        .enabled = None;
    c.create_delivery_stream()
        .delivery_stream_name("conv-defaults")
        .extended_s3_destination_configuration(defaults)
        .send()
        .await
        .unwrap();
    let d = c
        .describe_delivery_stream()
        .delivery_stream_name("conv-defaults")
        .send()
        .await
        .unwrap();
    let s3 = d.delivery_stream_description().unwrap().destinations()[0]
        .extended_s3_destination_description()
        .unwrap()
        .clone();
    assert_eq!(s3.buffering_hints().unwrap().size_in_mbs(), Some(128));
    assert_eq!(
        s3.data_format_conversion_configuration().unwrap().enabled(),
        Some(true)
    );
}

#[tokio::test]
async fn control_plane_calls_beyond_five_per_second_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("file://{}", dir.path().join("s3").display());
    let data = dir.path().join("data");
    // Limits on (no --no-limits).
    let server = Server::start(&[
        "--data-dir",
        data.to_str().unwrap(),
        "--s3-endpoint",
        &endpoint,
    ])
    .await
    .unwrap();
    let c = client(&server.api);
    let started = Instant::now();
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.list_delivery_streams().send().await })
        })
        .collect();
    let mut ok = 0;
    let mut throttled = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(
                    error_code(e),
                    (
                        "ThrottlingException".to_string(),
                        "Rate exceeded".to_string()
                    )
                );
                throttled += 1;
            }
        }
    }
    // 5 calls at once, then 5 per second while the burst lasts.
    let elapsed = started.elapsed().as_secs_f64();
    assert!(ok >= 5, "{ok} calls admitted");
    assert!(
        (ok as f64) <= 6.0 + 5.0 * elapsed,
        "{ok} calls admitted in {elapsed} s"
    );
    assert!(throttled >= 1, "{throttled} calls throttled");
    assert_eq!(
        metric(
            &server,
            "firehose_requests_total{operation=\"ListDeliveryStreams\",outcome=\"throttled\"}"
        )
        .await,
        throttled as f64
    );
    // Each operation has its own rate.
    c.describe_delivery_stream()
        .delivery_stream_name("none")
        .send()
        .await
        .map(|_| ())
        .or_else(|e| {
            let (code, _) = error_code(e);
            (code == "ResourceNotFoundException")
                .then_some(())
                .ok_or(code)
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.list_delivery_streams().send().await.unwrap();
}

#[tokio::test]
async fn a_manifest_http_endpoint_takes_its_access_key_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ingest", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    tokio::spawn(endpoint(listener, seen.clone()));
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(
        manifests.join("hook.yaml"),
        format!(
            "apiVersion: tributary.dev/v1alpha1
kind: DeliveryStream
metadata: {{name: hook}}
spec:
  httpEndpointDestinationConfiguration:
    endpointConfiguration:
      url: {url}
      accessKeySecretRef: {{name: hook-key}}
    bufferingHints: {{sizeInMBs: 1, intervalInSeconds: 1}}
    s3Configuration: {{bucketARN: 'arn:aws:s3:::failed'}}
"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = [
        "--no-limits",
        "--data-dir",
        data.to_str().unwrap(),
        "--manifests",
        manifests.to_str().unwrap(),
    ];
    // The manifest promises the key in the environment; without it the server refuses to start.
    let err = Server::start(&args).await.err().expect("refused");
    assert!(err.to_string().contains("exited"), "{err}");

    let server = Server::start_with_env(&args, &[("TRIBUTARY_HTTP_ACCESS_KEY", "from-a-secret")])
        .await
        .unwrap();
    let c = client(&server.api);
    let d = c
        .describe_delivery_stream()
        .delivery_stream_name("hook")
        .send()
        .await
        .unwrap();
    let described = format!("{d:?}");
    assert!(!described.contains("from-a-secret"), "{described}");
    put_batch(&c, "hook", &["one".to_string()]).await;
    wait_for("HTTP delivery", Duration::from_secs(20), || {
        (!seen.lock().unwrap().requests.is_empty()).then_some(())
    })
    .await;
    let s = seen.lock().unwrap();
    assert_eq!(
        s.requests[0].0["x-amz-firehose-access-key"],
        "from-a-secret"
    );
}
