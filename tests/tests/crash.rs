//! Durability under `kill -9`: concurrent producers write while the server is killed at a
//! random moment; after a restart on the same data directory every acknowledged record is read
//! back intact, in order per shard, with no corrupt or phantom records.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_kinesis::Client;
use tributary_tests::{create_stream, read_shard, shard_ids, Server};

fn client(endpoint: &str) -> Client {
    tributary_tests::kinesis_client_with(endpoint, |b| {
        b.timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
    })
}

/// data → (shard id, sequence number) of every acknowledged record.
type Acked = Arc<Mutex<HashMap<String, (String, String)>>>;

async fn produce(
    c: Client,
    round: u32,
    producer: u32,
    acked: Acked,
    attempted: Arc<Mutex<HashSet<String>>>,
) {
    let mut n = 0u32;
    loop {
        let batch: Vec<String> = (0..10)
            .map(|i| format!("r{round}-p{producer}-{:06}", n + i))
            .collect();
        n += 10;
        attempted.lock().unwrap().extend(batch.iter().cloned());
        let result = if producer.is_multiple_of(3) {
            // Single-record puts, one after another.
            let mut out = Vec::new();
            for d in &batch {
                match c
                    .put_record()
                    .stream_name("crash")
                    .partition_key(format!("p{producer}"))
                    .data(Blob::new(d.clone().into_bytes()))
                    .send()
                    .await
                {
                    Ok(r) => out.push((
                        d.clone(),
                        r.shard_id().to_string(),
                        r.sequence_number().to_string(),
                    )),
                    Err(_) => {
                        acked
                            .lock()
                            .unwrap()
                            .extend(out.into_iter().map(|(d, s, q)| (d, (s, q))));
                        return;
                    }
                }
            }
            Ok(out)
        } else {
            let entries: Vec<_> = batch
                .iter()
                .map(|d| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(format!("p{producer}-{d}"))
                        .data(Blob::new(d.clone().into_bytes()))
                        .build()
                        .unwrap()
                })
                .collect();
            c.put_records()
                .stream_name("crash")
                .set_records(Some(entries))
                .send()
                .await
                .map(|r| {
                    r.records()
                        .iter()
                        .zip(&batch)
                        .filter_map(|(e, d)| {
                            Some((
                                d.clone(),
                                e.shard_id()?.to_string(),
                                e.sequence_number()?.to_string(),
                            ))
                        })
                        .collect::<Vec<_>>()
                })
        };
        match result {
            Ok(out) => acked
                .lock()
                .unwrap()
                .extend(out.into_iter().map(|(d, s, q)| (d, (s, q)))),
            Err(_) => return,
        }
    }
}

async fn read_all(c: &Client) -> BTreeMap<String, Vec<(u128, String)>> {
    let mut out = BTreeMap::new();
    for shard in shard_ids(c, "crash").await {
        let recs = read_shard(c, "crash", &shard)
            .await
            .into_iter()
            .map(|rec| {
                let data =
                    String::from_utf8(rec.data.into_inner()).expect("record data is intact UTF-8");
                (rec.sequence_number.parse::<u128>().unwrap(), data)
            })
            .collect();
        out.insert(shard, recs);
    }
    out
}

/// Segment files written and read with direct I/O (the default), whose last block is padded
/// and rewritten by every round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9_at_random_moments() {
    kill_9_keeps_every_acknowledged_record(&[]).await;
}

/// The same through the page cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9_through_the_page_cache() {
    kill_9_keeps_every_acknowledged_record(&["--direct-io=false"]).await;
}

async fn kill_9_keeps_every_acknowledged_record(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap().to_string();
    let mut args = vec![
        "--data-dir",
        &data_arg,
        "--no-limits",
        "--segment-bytes",
        "262144",
    ];
    args.extend_from_slice(extra);
    let mut server = Server::start(&args).await.unwrap();
    create_stream(&client(&server.api), "crash", 4).await;

    let acked: Acked = Arc::new(Mutex::new(HashMap::new()));
    let attempted = Arc::new(Mutex::new(HashSet::new()));
    for round in 0..3u32 {
        let c = client(&server.api);
        let producers: Vec<_> = (0..8)
            .map(|p| {
                tokio::spawn(produce(
                    c.clone(),
                    round,
                    p,
                    acked.clone(),
                    attempted.clone(),
                ))
            })
            .collect();
        let wait = 300 + rand::random::<u64>() % 1200;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.kill9().await;
        for p in producers {
            let _ = p.await;
        }
        server.restart().await.unwrap();

        let c = client(&server.api);
        let stored = read_all(&c).await;
        let acked_now = acked.lock().unwrap().clone();
        let attempted_now = attempted.lock().unwrap().clone();
        assert!(
            acked_now.len() > 50,
            "round {round}: producers made progress ({} acked)",
            acked_now.len()
        );
        let mut found: HashMap<String, (String, u128)> = HashMap::new();
        for (shard, recs) in &stored {
            assert!(
                recs.windows(2).all(|w| w[0].0 < w[1].0),
                "round {round}: sequence numbers increase in {shard}"
            );
            // Per producer, records keep the order they were written in.
            let mut last: HashMap<String, String> = HashMap::new();
            for (seq, data) in recs {
                assert!(
                    attempted_now.contains(data),
                    "round {round}: phantom record {data:?}"
                );
                let producer = data.rsplit_once('-').unwrap().0.to_string();
                if let Some(prev) = last.insert(producer, data.clone()) {
                    assert!(
                        prev < *data,
                        "round {round}: {prev} before {data} in {shard}"
                    );
                }
                assert!(
                    found.insert(data.clone(), (shard.clone(), *seq)).is_none(),
                    "round {round}: record {data} stored twice"
                );
            }
        }
        for (data, (shard, seq)) in &acked_now {
            let got = found
                .get(data)
                .unwrap_or_else(|| panic!("round {round}: acknowledged record {data} lost"));
            assert_eq!(&got.0, shard, "round {round}: {data} moved shards");
            assert_eq!(
                got.1.to_string(),
                *seq,
                "round {round}: {data} changed sequence number"
            );
        }
        eprintln!(
            "round {round}: killed after {wait} ms; {} acknowledged, {} stored",
            acked_now.len(),
            found.len()
        );
    }
    server.stop().await.unwrap();
}
