//! Streams reached through another data plane (`--stream-endpoint NAME=URL`): process A owns
//! the streams `orders` and `totals`; process B runs, from manifests, a delivery stream that
//! archives `orders` into a directory object store and an analytics application that reads
//! `orders` and writes `totals`, both through A's Kinesis API. Records are written to and read
//! from A with aws-sdk-kinesis.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use serde_json::Value;
use tributary_tests::{
    analytics_client, create_stream, discover_input_schema, free_port, kinesis_client, metric_sum,
    metric_value, put_records, read_stream_until, scrape_metrics, start_application, stream_arn,
    stream_input, stream_output, write_auth_file, ReadUntil, Server,
};

/// `examples/remote/pipeline.yaml`: a DeliveryStream archiving `orders` and an AnalyticsApp
/// copying it to `totals`, both naming streams B does not have.
fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/remote")
}

struct Env {
    _dir: tempfile::TempDir,
    a: Server,
    b: Server,
    kinesis: Client,
    objects: PathBuf,
}

/// Starts A (owning `orders` with two shards and `totals`), then B reading and writing them
/// through A.
async fn start() -> Env {
    start_with(false, &[]).await
}

/// [`start`]; with `auth`, A requires SigV4 signatures from listed keys and B signs with a
/// key pair from its environment; `owner_args` are A's extra flags.
async fn start_with(auth: bool, owner_args: &[&str]) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let a_data = dir.path().join("a");
    let a_listen = format!("127.0.0.1:{}", free_port());
    let auth_file = dir.path().join("auth.yaml");
    write_auth_file(&auth_file, &[("AKIDREADER", "reader-secret")]);
    let mut a_args = vec![
        "--data-dir",
        a_data.to_str().unwrap(),
        "--listen",
        &a_listen,
    ];
    if auth {
        a_args.extend(["--auth-file", auth_file.to_str().unwrap()]);
    }
    a_args.extend_from_slice(owner_args);
    let a = Server::start(&a_args).await.unwrap();
    let kinesis = kinesis_client(&a.api);
    for (name, shards) in [("orders", 2), ("totals", 1)] {
        create_stream(&kinesis, name, shards).await;
    }
    let manifests = manifests();
    let b_data = dir.path().join("b");
    let store = dir.path().join("s3");
    let store_url = format!("file://{}", store.display());
    let orders = format!("orders={}", a.api);
    let totals = format!("totals={}", a.api);
    let env: &[(&str, &str)] = if auth {
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDREADER"),
            ("AWS_SECRET_ACCESS_KEY", "reader-secret"),
        ]
    } else {
        &[]
    };
    let b = Server::start_with_env(
        &[
            "--data-dir",
            b_data.to_str().unwrap(),
            "--s3-endpoint",
            &store_url,
            "--stream-endpoint",
            &orders,
            "--stream-endpoint",
            &totals,
            "--manifests",
            manifests.to_str().unwrap(),
            "--delivery-retry-initial-ms",
            "100",
            "--delivery-retry-max-ms",
            "400",
        ],
        env,
    )
    .await
    .unwrap();
    Env {
        objects: store.join("archive"),
        _dir: dir,
        a,
        b,
        kinesis,
    }
}

/// Writes orders `ids` (key `k{id % keys}`, `n` counting per key from `first_n`) to A.
async fn put_orders(k: &Client, ids: std::ops::Range<u32>, keys: u32) {
    let records = ids.map(|id| {
        let key = format!("k{}", id % keys);
        let body = format!("{{\"id\":{id},\"key\":\"{key}\",\"n\":{}}}\n", id / keys);
        (key, body)
    });
    put_records(k, "orders", records).await;
}

/// Every delivered record, objects in the order they were written (file modification time).
fn delivered(root: &Path) -> Vec<Value> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if !e.file_name().to_string_lossy().starts_with('.') {
                let mtime = e.metadata().unwrap().modified().unwrap();
                files.push((mtime, p));
            }
        }
    }
    files.sort();
    files
        .iter()
        .flat_map(|(_, p)| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Waits until every id of `0..n` was delivered; returns the delivered records.
async fn wait_delivered(root: &Path, n: u32, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let got = delivered(root);
        let ids: BTreeSet<u64> = got.iter().map(|v| v["id"].as_u64().unwrap()).collect();
        if ids.len() == n as usize {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records delivered",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Every record of `stream` as JSON, shard by shard (parents before children), each shard
/// read until it is caught up (these streams are polled under the read limits).
async fn read_json(k: &Client, stream: &str) -> Vec<Value> {
    read_stream_until(k, stream, ReadUntil::CaughtUp)
        .await
        .iter()
        .map(|r| serde_json::from_slice(r.data().as_ref()).unwrap())
        .collect()
}

/// Waits until the application wrote a row for every id of `0..n` to `totals` on A.
async fn wait_output(k: &Client, n: u32, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let got = read_json(k, "totals").await;
        let ids: BTreeSet<u64> = got.iter().map(|v| v["ID"].as_u64().unwrap()).collect();
        if ids.len() == n as usize {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} output rows on A",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The per-key counters in the order they appear, and whether each key's run is increasing.
fn ordered_per_key(records: &[Value], key: &str, n: &str) -> bool {
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    records.iter().all(|v| {
        let k = v[key].as_str().unwrap().to_string();
        let n = v[n].as_i64().unwrap();
        let prev = last.insert(k, n).unwrap_or(-1);
        n > prev
    })
}

#[tokio::test]
async fn records_written_to_the_owner_reach_the_remote_delivery_stream_and_application() {
    let env = start().await;
    put_orders(&env.kinesis, 0..300, 10).await;

    let got = wait_delivered(&env.objects, 300, Duration::from_secs(60)).await;
    assert_eq!(got.len(), 300, "each record is delivered once");
    assert!(ordered_per_key(&got, "key", "n"));

    let rows = wait_output(&env.kinesis, 300, Duration::from_secs(60)).await;
    assert_eq!(rows.len(), 300, "each row is written once");
    assert!(ordered_per_key(&rows, "K", "N"));
    assert_eq!(rows[0].as_object().unwrap().len(), 3, "{}", rows[0]);
    drop(env.b);
}

/// Sends `signal` (STOP, CONT) to a server process.
fn signal(server: &Server, signal: &str) {
    let pid = server.child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn resharding_the_owner_while_it_is_read_loses_nothing_and_keeps_key_order() {
    // Without throughput limits on A, so a backlog of more than one GetRecords page (1000
    // records) per shard can be written quickly.
    let env = start_with(false, &["--no-limits"]).await;
    put_orders(&env.kinesis, 0..200, 32).await;
    // Split the first shard while B reads it.
    env.kinesis
        .split_shard()
        .stream_name("orders")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("85070591730234615865843651857942052864")
        .send()
        .await
        .unwrap();
    put_orders(&env.kinesis, 200..400, 32).await;
    wait_delivered(&env.objects, 400, Duration::from_secs(60)).await;
    // With B paused, parents and children both hold unread records when it goes on (the
    // parents more than one page): it must finish each parent (the split halves) before their
    // merged child.
    signal(&env.b, "STOP");
    put_orders(&env.kinesis, 400..6400, 32).await;
    env.kinesis
        .merge_shards()
        .stream_name("orders")
        .shard_to_merge("shardId-000000000002")
        .adjacent_shard_to_merge("shardId-000000000003")
        .send()
        .await
        .unwrap();
    put_orders(&env.kinesis, 6400..7000, 32).await;
    // Long enough for B's shard lists to be stale, so B sees the merged child at once.
    tokio::time::sleep(Duration::from_secs(6)).await;
    signal(&env.b, "CONT");

    let got = wait_delivered(&env.objects, 7000, Duration::from_secs(90)).await;
    assert_eq!(got.len(), 7000);
    assert!(ordered_per_key(&got, "key", "n"), "key order in delivery");
    let rows = wait_output(&env.kinesis, 7000, Duration::from_secs(90)).await;
    assert_eq!(rows.len(), 7000);
    assert!(ordered_per_key(&rows, "K", "N"), "key order in output");
    drop(env.b);
}

#[tokio::test]
async fn a_killed_remote_reader_resumes_from_its_checkpoint() {
    let mut env = start().await;
    // Two deliveries, so a restart that lost the checkpoint would deliver the second again.
    put_orders(&env.kinesis, 0..100, 10).await;
    wait_delivered(&env.objects, 100, Duration::from_secs(60)).await;
    put_orders(&env.kinesis, 100..200, 10).await;
    wait_delivered(&env.objects, 200, Duration::from_secs(60)).await;
    wait_output(&env.kinesis, 200, Duration::from_secs(60)).await;

    env.b.kill9().await;
    put_orders(&env.kinesis, 200..400, 10).await;
    env.b.restart().await.unwrap();
    put_orders(&env.kinesis, 400..500, 10).await;

    let got = wait_delivered(&env.objects, 500, Duration::from_secs(60)).await;
    // A batch delivered again after the kill goes to the same object key, replacing it: the
    // directory holds each record once.
    let mut times: BTreeMap<u64, u32> = BTreeMap::new();
    for v in &got {
        *times.entry(v["id"].as_u64().unwrap()).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, &t)| t > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert!(ordered_per_key(&got, "key", "n"));
    // The application resumes from its checkpoint: at most the last second of input is
    // written again, not everything since TRIM_HORIZON.
    let rows = wait_output(&env.kinesis, 500, Duration::from_secs(60)).await;
    assert!(rows.len() < 700, "{} rows written for 500", rows.len());
}

#[tokio::test]
async fn the_reader_keeps_serving_while_the_owner_is_down_and_resumes_after() {
    let mut env = start().await;
    put_orders(&env.kinesis, 0..100, 5).await;
    wait_delivered(&env.objects, 100, Duration::from_secs(60)).await;

    env.a.kill9().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // B still answers its own API while its source is unreachable.
    let b = kinesis_client(&env.b.api);
    b.list_streams().send().await.unwrap();
    assert!(
        env.b.child.try_wait().unwrap().is_none(),
        "B is still running"
    );
    // ... and shows the outage on its metrics.
    let unreachable = metric_sum(
        &scrape_metrics(&env.b).await,
        "remote_kinesis_requests_total",
        &["outcome=\"unreachable\",stream=\"orders\""],
    );
    assert!(unreachable > 0.0);

    env.a.restart().await.unwrap();
    let kinesis = kinesis_client(&env.a.api);
    put_orders(&kinesis, 100..250, 5).await;
    let got = wait_delivered(&env.objects, 250, Duration::from_secs(60)).await;
    assert_eq!(got.len(), 250);
    // Rows a killed A took but never acknowledged are written again: at least once.
    wait_output(&kinesis, 250, Duration::from_secs(60)).await;
}

#[tokio::test]
async fn an_owner_that_requires_signatures_accepts_the_key_pair_from_the_environment() {
    let env = start_with(true, &[]).await;
    put_orders(&env.kinesis, 0..50, 5).await;
    let got = wait_delivered(&env.objects, 50, Duration::from_secs(60)).await;
    assert_eq!(got.len(), 50);
    let rows = wait_output(&env.kinesis, 50, Duration::from_secs(60)).await;
    assert_eq!(rows.len(), 50);
}

#[tokio::test]
async fn throttled_remote_writes_are_retried_without_loss_or_duplicates() {
    // A enforces Kinesis's limits (1000 records/s written per shard). With B paused, a backlog
    // builds up; when B goes on it reads it as fast as it can and the application writes 3000
    // rows to the one-shard `totals`, so PutRecords entries are refused with
    // ProvisionedThroughputExceededException and must be retried.
    let env = start().await;
    signal(&env.b, "STOP");
    for start in (0..3000).step_by(500) {
        put_orders(&env.kinesis, start..start + 500, 16).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    signal(&env.b, "CONT");

    let got = wait_delivered(&env.objects, 3000, Duration::from_secs(90)).await;
    assert_eq!(got.len(), 3000);
    assert!(ordered_per_key(&got, "key", "n"));
    let rows = wait_output(&env.kinesis, 3000, Duration::from_secs(90)).await;
    assert_eq!(rows.len(), 3000, "only refused entries are written again");
    let metrics = scrape_metrics(&env.a).await;
    assert!(
        metric_value(
            &metrics,
            "kinesis_write_provisioned_throughput_exceeded_total{stream=\"totals\"}"
        ) > 0.0,
        "the application's writes were throttled"
    );
    // B shows the refusals it retried.
    let b_metrics = scrape_metrics(&env.b).await;
    let refused = metric_value(
        &b_metrics,
        "remote_kinesis_put_entries_refused_total{stream=\"totals\"}",
    );
    assert!(refused > 0.0, "{b_metrics}");
}

/// Every record of B's local stream `counts`.
async fn wait_counts(k: &Client, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = read_json(k, "counts").await;
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "only {} of {n} rows", got.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn discover_samples_a_remote_stream_and_a_restarted_sliding_window_replays_it() {
    use aws_sdk_kinesisanalytics::types::{InputStartingPosition, RecordFormatType};
    let mut env = start().await;
    put_orders(&env.kinesis, 0..20, 2).await;
    // B samples `orders` through A's Kinesis API.
    let kda = analytics_client(&env.b.api);
    let found = discover_input_schema(&kda, &stream_arn("orders")).await;
    assert_eq!(found.raw_input_records().len(), 20);
    let schema = found.input_schema.unwrap();
    let columns: Vec<(String, String)> = schema
        .record_columns()
        .iter()
        .map(|c| {
            (
                c.mapping().unwrap_or_default().to_string(),
                c.sql_type().to_string(),
            )
        })
        .collect();
    assert!(
        columns.contains(&("$.id".into(), "INTEGER".into())),
        "{columns:?}"
    );
    assert!(
        columns.contains(&("$.n".into(), "INTEGER".into())),
        "{columns:?}"
    );

    // A sliding count per key over the remote stream, written to B's own stream `counts`.
    let kb = kinesis_client(&env.b.api);
    create_stream(&kb, "counts", 1).await;
    let code = r#"
CREATE OR REPLACE STREAM "COUNTS" (K VARCHAR(8), N INTEGER, RECENT INTEGER);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "COUNTS"
  SELECT STREAM K, N, COUNT(*) OVER (PARTITION BY K RANGE INTERVAL '10' MINUTE PRECEDING)
  FROM "SOURCE_SQL_STREAM_001";
"#;
    let col = |n: &str, m: &str, t: &str| {
        aws_sdk_kinesisanalytics::types::RecordColumn::builder()
            .name(n)
            .mapping(m)
            .sql_type(t)
            .build()
            .unwrap()
    };
    let mut schema = schema;
    schema.record_columns = vec![col("K", "$.key", "VARCHAR(8)"), col("N", "$.n", "INTEGER")];
    kda.create_application()
        .application_name("sliding")
        .application_code(code)
        .inputs(stream_input("orders", schema))
        .outputs(stream_output("COUNTS", "counts", RecordFormatType::Json))
        .send()
        .await
        .unwrap();
    start_application(&kda, "sliding", InputStartingPosition::TrimHorizon).await;
    assert_eq!(wait_counts(&kb, 20).await.len(), 20);
    // Let the checkpoint follow the output, then kill B mid-window.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    env.b.restart().await.unwrap();
    let kb = kinesis_client(&env.b.api);
    put_orders(&env.kinesis, 20..24, 2).await;
    let rows = wait_counts(&kb, 24).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        read_json(&kb, "counts").await.len(),
        24,
        "no row written twice"
    );
    // The counts after the restart include the ten rows per key read before it.
    let mut after: Vec<(String, i64, i64)> = rows[20..]
        .iter()
        .map(|v| {
            (
                v["K"].as_str().unwrap().to_string(),
                v["N"].as_i64().unwrap(),
                v["RECENT"].as_i64().unwrap(),
            )
        })
        .collect();
    after.sort();
    assert_eq!(
        after,
        vec![
            ("k0".to_string(), 10, 11),
            ("k0".to_string(), 11, 12),
            ("k1".to_string(), 10, 11),
            ("k1".to_string(), 11, 12),
        ]
    );
}
