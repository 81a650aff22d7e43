//! Resharding under load and ON_DEMAND scaling, with the Rust SDK.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::Shard;
use aws_sdk_kinesis::Client;
use tributary_tests::{
    create_on_demand_stream, create_stream, kinesis_client as client, list_shards_paged,
    open_shard_count, read_shard, record_text, update_shard_count, write_load, Server,
};

/// Every shard of `stream`, three a ListShards page so the listing follows `NextToken`.
async fn all_shards(c: &Client, stream: &str) -> Vec<Shard> {
    list_shards_paged(c, stream, Some(3)).await
}

/// Shards ordered so every shard comes after its parents, as a KCL-style consumer reads them.
fn lineage_order(shards: &[Shard]) -> Vec<String> {
    let mut done: HashSet<String> = HashSet::new();
    let mut order = Vec::new();
    while order.len() < shards.len() {
        for s in shards {
            if done.contains(s.shard_id()) {
                continue;
            }
            let ready = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .all(|p| done.contains(p) || !shards.iter().any(|x| x.shard_id() == p));
            if ready {
                done.insert(s.shard_id().to_string());
                order.push(s.shard_id().to_string());
            }
        }
    }
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_1_2_4_2_resharding_lose_nothing_and_keep_key_order() {
    let server = Server::start(&["--in-memory", "--no-limits"])
        .await
        .unwrap();
    let c = client(&server.api);
    create_stream(&c, "live", 1).await;

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<BTreeMap<String, Vec<u32>>>> = Arc::default();
    let producers: Vec<_> = (0..6)
        .map(|p| {
            let (c, stop, acked) = (c.clone(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                let key = format!("key-{p}");
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    c.put_record()
                        .stream_name("live")
                        .partition_key(&key)
                        .data(Blob::new(format!("{key}:{n:06}")))
                        .send()
                        .await
                        .expect("puts succeed throughout resharding");
                    acked
                        .lock()
                        .unwrap()
                        .entry(key.clone())
                        .or_default()
                        .push(n);
                    n += 1;
                }
            })
        })
        .collect();
    for target in [2, 4, 2] {
        tokio::time::sleep(Duration::from_millis(300)).await;
        update_shard_count(&c, "live", target).await;
        assert_eq!(open_shard_count(&c, "live").await, target);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for p in producers {
        p.await.unwrap();
    }

    let shards = all_shards(&c, "live").await;
    let mut per_key: HashMap<String, Vec<u32>> = HashMap::new();
    for shard in lineage_order(&shards) {
        for rec in read_shard(&c, "live", &shard).await {
            let rec = record_text(&rec);
            let (key, n) = rec.split_once(':').unwrap();
            per_key
                .entry(key.to_string())
                .or_default()
                .push(n.parse().unwrap());
        }
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 6);
    for (key, sent) in acked {
        assert!(sent.len() > 10, "{key} kept writing");
        assert_eq!(
            per_key.get(&key),
            Some(&sent),
            "{key}: every record once, in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_load_on_an_on_demand_stream_splits_its_shards() {
    let server = Server::start(&[
        "--in-memory",
        "--no-limits",
        "--on-demand-check-ms",
        "500",
        "--on-demand-hot-window-ms",
        "1000",
    ])
    .await
    .unwrap();
    let c = client(&server.api);
    create_on_demand_stream(&c, "od").await;
    assert_eq!(
        open_shard_count(&c, "od").await,
        4,
        "on-demand streams start with 4 shards"
    );

    // About 4 MiB/s spread over every shard, above 80% of each shard's 1 MiB/s.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let stop = stop.clone();
            tokio::spawn(write_load(
                c.clone(),
                "od".to_string(),
                w,
                None,
                Duration::ZERO,
                move || stop.load(Ordering::Relaxed),
            ))
        })
        .collect();
    let mut grown = 4;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        grown = open_shard_count(&c, "od").await;
        if grown > 4 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    assert!(grown > 4, "hot shards were split (open shards: {grown})");
    let shards = all_shards(&c, "od").await;
    assert!(
        shards.iter().any(|s| s.parent_shard_id().is_some()),
        "children name their parents, as after any reshard"
    );
}
