//! Cluster mode: three `tributary serve` processes on loopback (the coordinator, ordinal 0,
//! and members 1 and 2, each with its own data directory) serve one account's streams, the
//! shards spread over all three. Every pod is driven with aws-sdk-kinesis and must answer
//! every call as a single server would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ShardIteratorType, StartingPosition, SubscribeToShardEventStream,
};
use aws_sdk_kinesis::Client;
use serde_json::Value;
use tributary_tests::{
    analytics_client, create_on_demand_stream, create_stream, create_stream_delivery,
    firehose_client, free_port, http_request, json_schema, kinesis_client, list_shards,
    middle_hash_key, open_shard_count, put_record_batch, put_records, read_shard, read_shard_text,
    s3_config, shard_ids, start_application, stream_input, stream_output, update_shard_count,
    write_auth_file, write_load, Server,
};

const SECRET: &str = "cluster-test-secret";

struct Cluster {
    dir: tempfile::TempDir,
    pods: Vec<Server>,
    clients: Vec<Client>,
}

impl Cluster {
    fn data_dir(&self, ordinal: usize) -> PathBuf {
        self.dir.path().join(format!("pod-{ordinal}"))
    }
}

/// Starts the coordinator and two members on fixed loopback ports (a restarted member comes
/// back on its advertised address) and waits until all three are live.
async fn start() -> Cluster {
    start_with(&[]).await
}

/// [`start`] with extra flags for every pod. A port taken between choosing and binding it (by
/// a test running alongside) means starting over on other ports.
async fn start_with(extra: &[&str]) -> Cluster {
    for _ in 0..5 {
        if let Some(c) = try_start(extra).await {
            wait_live(&c, 3).await;
            return c;
        }
    }
    panic!("could not start a cluster");
}

async fn try_start(extra: &[&str]) -> Option<Cluster> {
    let dir = tempfile::tempdir().unwrap();
    let pods = start_pods(dir.path(), 3, extra).await?;
    let clients = pods.iter().map(|p| kinesis_client(&p.api)).collect();
    Some(Cluster { dir, pods, clients })
}

/// Starts `n` pods (ordinal 0 the coordinator) on free loopback ports, pod `i` on the data
/// directory `dir/pod-i`, each with `extra` flags; `None` when one of them fails to start.
async fn start_pods(dir: &Path, n: usize, extra: &[&str]) -> Option<Vec<Server>> {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let coordinator = format!("http://127.0.0.1:{}", ports[0]);
    let mut pods = Vec::new();
    for (ordinal, port) in ports.iter().enumerate() {
        let data = dir.join(format!("pod-{ordinal}"));
        let listen = format!("127.0.0.1:{port}");
        let advertise = format!("http://127.0.0.1:{port}");
        let ordinal = ordinal.to_string();
        let mut args = vec![
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &listen,
            "--cluster-coordinator",
            &coordinator,
            "--cluster-advertise",
            &advertise,
            "--cluster-ordinal",
            &ordinal,
            "--no-limits",
        ];
        args.extend_from_slice(extra);
        let pod = Server::start_with_env(&args, &[("TRIBUTARY_CLUSTER_SECRET", SECRET)])
            .await
            .ok()?;
        pods.push(pod);
    }
    Some(pods)
}

/// Waits until the coordinator sees `n` live members.
async fn wait_live(c: &Cluster, n: usize) {
    for _ in 0..200 {
        let view = cluster_view(&c.pods[0]).await;
        let live = view["members"]
            .as_array()
            .map(|m| m.iter().filter(|m| m["live"] == true).count())
            .unwrap_or(0);
        if live == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the cluster never had {n} live members");
}

/// `GET /cluster` on a pod's metrics listener.
async fn cluster_view(pod: &Server) -> Value {
    let (status, body) = http_request(&pod.metrics, "GET", "/cluster", &[], "").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Shard id → owner ordinal, from the coordinator's `stream.json`.
fn owners(data_dir: &Path, stream: &str) -> BTreeMap<String, u64> {
    for entry in std::fs::read_dir(data_dir.join("streams")).unwrap() {
        let path = entry.unwrap().path().join("stream.json");
        let Ok(raw) = std::fs::read(&path) else {
            continue;
        };
        let meta: Value = serde_json::from_slice(&raw).unwrap();
        if meta["name"] != stream {
            continue;
        }
        return meta["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    format!("shardId-{:012}", s["index"].as_u64().unwrap()),
                    s["owner"].as_u64().unwrap(),
                )
            })
            .collect();
    }
    panic!("no stream {stream} in {}", data_dir.display());
}

/// Writes `ids` through `k` (key `k{id % 40}`, data `r{id}`); returns each record's (id,
/// shard, sequence number).
async fn put(k: &Client, stream: &str, ids: std::ops::Range<u32>) -> Vec<(u32, String, String)> {
    let ids: Vec<u32> = ids.collect();
    let records = ids
        .iter()
        .map(|id| (format!("k{}", id % 40), format!("r{id}")));
    let placed = put_records(k, stream, records).await;
    ids.into_iter()
        .zip(placed)
        .map(|(id, (shard, seq))| (id, shard, seq))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stream_spread_over_three_pods() {
    // Requests must be signed: forwarded ones keep the client's signature.
    let keys = tempfile::NamedTempFile::new().unwrap();
    write_auth_file(keys.path(), &[]);
    let c = start_with(&["--auth-file", keys.path().to_str().unwrap()]).await;
    let [k0, k1, k2] = [&c.clients[0], &c.clients[1], &c.clients[2]];

    // Created through member 2, the stream's six shards land two on each pod.
    create_stream(k2, "orders", 6).await;
    let view = cluster_view(&c.pods[0]).await;
    assert_eq!(view["coordinator"], true);
    let members = view["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{view}");
    for m in members {
        assert_eq!(m["openShards"], 2, "{view}");
        assert_eq!(m["live"], true, "{view}");
    }
    for pod in &c.pods {
        assert_eq!(
            http_request(&pod.metrics, "GET", "/readyz", &[], "")
                .await
                .0,
            200
        );
    }
    let member_view = cluster_view(&c.pods[1]).await;
    assert_eq!(member_view["coordinator"], false);
    assert_eq!(member_view["ordinal"], 1);
    assert_eq!(
        member_view["members"], view["members"],
        "members see the coordinator's view"
    );
    let (_, metrics) = http_request(&c.pods[1].metrics, "GET", "/metrics", &[], "").await;
    assert!(metrics.contains("tributary_cluster_members 3"), "{metrics}");
    assert!(
        metrics.contains(r#"tributary_cluster_owned_shards{state="open",stream="orders"} 2"#),
        "{metrics}"
    );
    let by_owner: BTreeSet<u64> = owners(&c.data_dir(0), "orders").into_values().collect();
    assert_eq!(by_owner, BTreeSet::from([0, 1, 2]));

    // Every pod describes the stream identically (member 2 reads its own write at once).
    let shards = list_shards(k2, "orders").await;
    assert_eq!(shards.len(), 6);
    for k in [k0, k1] {
        assert_eq!(list_shards(k, "orders").await, shards);
    }
    let names: Vec<Vec<String>> = {
        let mut v = Vec::new();
        for k in [k0, k1, k2] {
            v.push(
                k.list_streams()
                    .send()
                    .await
                    .unwrap()
                    .stream_names()
                    .to_vec(),
            );
        }
        v
    };
    assert!(
        names.iter().all(|n| n == &["orders".to_string()]),
        "{names:?}"
    );

    // Records written through member 1 are read back through member 2, in order per shard.
    let written = put(k1, "orders", 0..600).await;
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, shard, _) in &written {
        expected
            .entry(shard.clone())
            .or_default()
            .push(format!("r{id}"));
    }
    assert_eq!(expected.len(), 6, "records reach every shard");
    for (shard, want) in &expected {
        let (got, children) = read_shard_text(k2, "orders", shard).await;
        assert_eq!(&got, want, "shard {shard}");
        assert!(children.is_empty());
    }
    // PutRecord through the coordinator, read through member 1 from its sequence number.
    let one = k0
        .put_record()
        .stream_name("orders")
        .partition_key("single")
        .data(Blob::new("single-record"))
        .send()
        .await
        .unwrap();
    let it = k1
        .get_shard_iterator()
        .stream_name("orders")
        .shard_id(one.shard_id())
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(one.sequence_number())
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let page = k1.get_records().shard_iterator(it).send().await.unwrap();
    assert_eq!(page.records()[0].data().as_ref(), b"single-record");
    expected
        .get_mut(one.shard_id())
        .unwrap()
        .push("single-record".into());

    // Resharding through member 1 merges shards held by different pods.
    update_shard_count(k1, "orders", 3).await;
    let after = list_shards(k1, "orders").await;
    for k in [k0, k2] {
        assert_eq!(
            list_shards(k, "orders").await,
            after,
            "every pod sees the reshard"
        );
    }
    let listed = k0.list_shards().stream_name("orders").send().await.unwrap();
    let open: Vec<String> = listed
        .shards()
        .iter()
        .filter(|s| {
            s.sequence_number_range()
                .unwrap()
                .ending_sequence_number()
                .is_none()
        })
        .map(|s| s.shard_id().to_string())
        .collect();
    assert_eq!(open.len(), 3);
    let later = put(k2, "orders", 600..900).await;
    for (id, shard, _) in &later {
        assert!(open.contains(shard), "new records go to open shards");
        expected
            .entry(shard.clone())
            .or_default()
            .push(format!("r{id}"));
    }
    // Every record is read back exactly once through the coordinator; each closed parent
    // ends with its children, wherever it was held.
    let mut seen = 0;
    for s in listed.shards() {
        let (got, children) = read_shard_text(k0, "orders", s.shard_id()).await;
        assert_eq!(
            Some(&got),
            expected.get(s.shard_id()).or(Some(&Vec::new())),
            "shard {}",
            s.shard_id()
        );
        seen += got.len();
        let closed = s
            .sequence_number_range()
            .unwrap()
            .ending_sequence_number()
            .is_some();
        if closed {
            assert!(
                !children.is_empty(),
                "closed shard {} reports its children",
                s.shard_id()
            );
            for child in &children {
                let parents: Vec<String> = listed
                    .shards()
                    .iter()
                    .filter(|x| x.shard_id() == child)
                    .flat_map(|x| {
                        x.parent_shard_id()
                            .into_iter()
                            .chain(x.adjacent_parent_shard_id())
                    })
                    .map(str::to_string)
                    .collect();
                assert!(parents.iter().any(|p| p == s.shard_id()));
            }
        }
    }
    assert_eq!(seen, 901);
    let view = cluster_view(&c.pods[0]).await;
    let closed: u64 = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["closedShards"].as_u64().unwrap())
        .sum();
    assert!(closed >= 6, "{view}");

    // SubscribeToShard through a pod that does not own the shard.
    let owner_of = owners(&c.data_dir(0), "orders");
    let (shard, owner) = open
        .iter()
        .map(|s| (s.clone(), owner_of[s]))
        .find(|(_, o)| *o != 1)
        .expect("an open shard held by another pod than 1");
    assert_ne!(owner, 1);
    let stream_arn = k1
        .describe_stream_summary()
        .stream_name("orders")
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
        .stream_arn;
    let consumer = k1
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name("fanout")
        .send()
        .await
        .unwrap()
        .consumer
        .unwrap()
        .consumer_arn;
    let mut sub = k1
        .subscribe_to_shard()
        .consumer_arn(&consumer)
        .shard_id(&shard)
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::TrimHorizon)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let want = expected[&shard].clone();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got.len() < want.len() && tokio::time::Instant::now() < deadline {
        let ev = tokio::time::timeout(Duration::from_secs(10), sub.event_stream.recv())
            .await
            .expect("an event in time")
            .unwrap();
        match ev {
            Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)) => {
                for r in e.records() {
                    got.push(String::from_utf8(r.data().as_ref().to_vec()).unwrap());
                }
            }
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(
        got, want,
        "the subscription streams the shard through pod 1"
    );
    drop(sub);

    // DeleteStream through member 2 removes the stream, and its data, from every pod.
    k2.deregister_stream_consumer()
        .consumer_arn(&consumer)
        .send()
        .await
        .unwrap();
    k2.delete_stream()
        .stream_name("orders")
        .enforce_consumer_deletion(true)
        .send()
        .await
        .unwrap();
    for (i, k) in [k0, k1, k2].into_iter().enumerate() {
        let err = k
            .describe_stream_summary()
            .stream_name("orders")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err.into_service_error().meta().code(),
            Some("ResourceNotFoundException"),
            "pod {i}"
        );
    }
    for ordinal in 0..3 {
        let dir = c.data_dir(ordinal).join("streams");
        for _ in 0..100 {
            if std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0),
            0,
            "pod {ordinal} removed the stream's data"
        );
    }
}

/// Writes batches of 50 through `k` until `stop`; returns the records acknowledged (id →
/// shard). Records that fail (their owner is down) are left out.
async fn keep_writing(
    k: Client,
    stream: &'static str,
    first: u32,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<(u32, String)> {
    let mut acked = Vec::new();
    let mut id = first;
    while !*stop.borrow() {
        let ids: Vec<u32> = (id..id + 50).collect();
        id += 50;
        let entries = ids
            .iter()
            .map(|id| {
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("k{}", id % 40))
                    .data(Blob::new(format!("r{id}")))
                    .build()
                    .unwrap()
            })
            .collect();
        let Ok(res) = k
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
        else {
            continue;
        };
        for (id, r) in ids.iter().zip(res.records()) {
            if let Some(shard) = r.shard_id() {
                acked.push((*id, shard.to_string()));
            }
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_killed_and_restarted_keeps_every_acknowledged_record() {
    let mut c = start().await;
    create_stream(&c.clients[0], "events", 3).await;
    let written = put(&c.clients[2], "events", 0..300).await;
    let owner_of = owners(&c.data_dir(0), "events");
    assert!(owner_of.values().any(|&o| o == 1));

    // Member 1 is killed while records keep arriving through member 2, and restarted.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let writer = tokio::spawn(keep_writing(
        c.clients[2].clone(),
        "events",
        100_000,
        stop_rx,
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.pods[1].kill9().await;
    // The coordinator notices at once: the member's long poll is cut.
    wait_live(&c, 2).await;
    c.pods[1].restart().await.unwrap();
    c.clients[1] = kinesis_client(&c.pods[1].api);
    wait_live(&c, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_tx.send(true).unwrap();
    let during = writer.await.unwrap();
    assert!(!during.is_empty());

    // Written through the restarted member, read through the coordinator and member 2.
    let more = put(&c.clients[1], "events", 300..400).await;
    let mut acked: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut ordered: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, shard, _) in written.iter().chain(&more) {
        ordered
            .entry(shard.clone())
            .or_default()
            .push(format!("r{id}"));
    }
    for (id, shard) in written
        .iter()
        .chain(&more)
        .map(|(id, s, _)| (*id, s.clone()))
        .chain(during)
    {
        acked.entry(shard).or_default().insert(format!("r{id}"));
    }
    for (shard, want) in &acked {
        for k in [&c.clients[0], &c.clients[2]] {
            let (got, _) = read_shard_text(k, "events", shard).await;
            let have: BTreeSet<String> = got.iter().cloned().collect();
            assert_eq!(have.len(), got.len(), "no record twice in {shard}");
            let lost: Vec<&String> = want.difference(&have).collect();
            assert!(
                lost.is_empty(),
                "shard {shard} (owner {}) lost {lost:?}",
                owner_of[shard]
            );
            // The records written before and after the restart keep their order.
            let before_after: Vec<&String> =
                got.iter().filter(|r| ordered[shard].contains(r)).collect();
            assert_eq!(before_after, ordered[shard].iter().collect::<Vec<_>>());
        }
    }

    // The coordinator killed: control-plane calls are refused as unavailable, records of the
    // members' shards still flow; restarted, it takes its members back.
    c.pods[0].kill9().await;
    let err = c.clients[1]
        .describe_stream_summary()
        .stream_name("events")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("ServiceUnavailable")
    );
    let member_shard = owner_of.iter().find(|(_, &o)| o == 2).unwrap().0.clone();
    let (got, _) = read_shard_text(&c.clients[1], "events", &member_shard).await;
    let have: BTreeSet<String> = got.into_iter().collect();
    let lost: Vec<&String> = acked[&member_shard].difference(&have).collect();
    assert!(lost.is_empty(), "lost {lost:?}");
    // A member started meanwhile serves from its replica but is not ready for new clients
    // until it has the coordinator's metadata.
    c.pods[1].restart().await.unwrap();
    assert_eq!(
        http_request(&c.pods[1].metrics, "GET", "/readyz", &[], "")
            .await
            .0,
        503
    );
    let (got, _) = read_shard_text(&c.clients[1], "events", &member_shard).await;
    assert!(!got.is_empty());
    c.pods[0].restart().await.unwrap();
    c.clients[0] = kinesis_client(&c.pods[0].api);
    wait_live(&c, 3).await;
    for _ in 0..50 {
        if http_request(&c.pods[1].metrics, "GET", "/readyz", &[], "")
            .await
            .0
            == 200
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        http_request(&c.pods[1].metrics, "GET", "/readyz", &[], "")
            .await
            .0,
        200
    );
    assert_eq!(open_shard_count(&c.clients[2], "events").await, 3);
    for (shard, want) in &acked {
        let (got, _) = read_shard_text(&c.clients[0], "events", shard).await;
        let have: BTreeSet<String> = got.into_iter().collect();
        let lost: Vec<&String> = want.difference(&have).collect();
        assert!(lost.is_empty(), "{shard} lost {lost:?}");
    }
}

/// A coordinator started again without its data (a lost volume) is a new cluster with no
/// streams: the members refuse its metadata instead of deleting every log they hold, keep
/// serving the shards they hold, and report not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_refuse_a_coordinator_that_lost_its_data() {
    let mut c = start().await;
    create_stream(&c.clients[0], "events", 3).await;
    let written = put(&c.clients[1], "events", 0..90).await;
    let owner_of = owners(&c.data_dir(0), "events");
    let member_shard = owner_of.iter().find(|(_, &o)| o == 1).unwrap().0.clone();

    c.pods[0].kill9().await;
    std::fs::remove_dir_all(c.data_dir(0)).unwrap();
    c.pods[0].restart().await.unwrap();
    c.clients[0] = kinesis_client(&c.pods[0].api);

    // Both members notice another cluster and stop being ready.
    for pod in [1, 2] {
        let mut status = 0;
        for _ in 0..100 {
            status = http_request(&c.pods[pod].metrics, "GET", "/readyz", &[], "")
                .await
                .0;
            if status == 503 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, 503, "member {pod} still ready");
    }
    // Well after the new coordinator's first snapshots, nothing is deleted: the member's
    // stream and every record of its shard are still there, served from its own replica.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(owners(&c.data_dir(1), "events"), owner_of);
    let want: BTreeSet<String> = written
        .iter()
        .filter(|(_, s, _)| *s == member_shard)
        .map(|(id, _, _)| format!("r{id}"))
        .collect();
    assert!(!want.is_empty());
    let (got, _) = read_shard_text(&c.clients[1], "events", &member_shard).await;
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    // The new coordinator has no such stream, and does not count the members in.
    let view = cluster_view(&c.pods[0]).await;
    let live = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["live"] == true)
        .count();
    assert_eq!(live, 1, "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_endpoints_need_the_cluster_token() {
    let c = start().await;
    let pod = &c.pods[1];
    // Every internal endpoint, on the pod that serves it: (pod, method, path, body).
    let internal = [
        (pod, "POST", "/_tributary/cluster/seal", "{}"),
        (
            &c.pods[0],
            "GET",
            "/_tributary/cluster/state?after=0&ordinal=1",
            "",
        ),
        (
            &c.pods[0],
            "POST",
            "/_tributary/cluster/join",
            r#"{"ordinal":7,"url":"http://127.0.0.1:1"}"#,
        ),
        (
            pod,
            "POST",
            "/_tributary/cluster/read",
            r#"{"incarnation":1,"shard":0,"from":0,"limit":10,"maxBytes":1000}"#,
        ),
    ];
    for headers in [vec![], vec![("x-tributary-cluster-token", "wrong")]] {
        for (server, method, path, body) in internal {
            let (status, answer) = http_request(&server.api, method, path, &headers, body).await;
            assert_eq!(status, 403, "{method} {path}: {answer}");
            assert!(
                answer.contains("AccessDeniedException"),
                "{method} {path}: {answer}"
            );
        }
    }
    // A Firehose or Kinesis request posing as a forwarded one with the wrong token is refused.
    for target in [
        "Firehose_20150804.ListDeliveryStreams",
        "Kinesis_20131202.ListStreams",
    ] {
        let (status, body) = http_request(
            &pod.api,
            "POST",
            "/",
            &[
                ("x-tributary-cluster-token", "wrong"),
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", target),
            ],
            "{}",
        )
        .await;
        assert_eq!(status, 403, "{target}: {body}");
    }
    // Only the coordinator runs control-plane and Firehose calls: one carrying the token that
    // reached a member (a misconfigured peer) is refused, not run on the member's replica
    // (where the next snapshot would silently drop what it created).
    for (target, body) in [
        (
            "Kinesis_20131202.CreateStream",
            r#"{"StreamName":"rogue","ShardCount":1}"#,
        ),
        (
            "Firehose_20150804.CreateDeliveryStream",
            r#"{"DeliveryStreamName":"rogue"}"#,
        ),
    ] {
        let (status, answer) = http_request(
            &pod.api,
            "POST",
            "/",
            &[
                ("x-tributary-cluster-token", SECRET),
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", target),
            ],
            body,
        )
        .await;
        assert_eq!(status, 503, "{target}: {answer}");
        assert!(answer.contains("ServiceUnavailable"), "{answer}");
    }
    for k in &c.clients {
        let streams = k.list_streams().send().await.unwrap();
        assert!(!streams.stream_names().contains(&"rogue".to_string()));
    }
    // With the token, the metadata answers at once for an old version.
    let (status, body) = http_request(
        &c.pods[0].api,
        "GET",
        "/_tributary/cluster/state?after=0",
        &[("x-tributary-cluster-token", SECRET)],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let snapshot: Value = serde_json::from_str(&body).unwrap();
    assert!(snapshot["version"].as_u64().unwrap() > 0);
    assert_eq!(snapshot["members"].as_array().unwrap().len(), 3);
    assert!(snapshot["streams"].is_array());
    // The refused member joined nothing, and every pod keeps serving.
    let view = cluster_view(&c.pods[0]).await;
    assert_eq!(view["members"].as_array().unwrap().len(), 3, "{view}");
    for k in &c.clients {
        k.list_streams().send().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_expired_closed_shards_on_every_pod() {
    let c = start_with(&["--test-hooks"]).await;
    let k = &c.clients[1];
    create_stream(k, "logs", 3).await;
    put(k, "logs", 0..90).await;
    // Split a shard held by a member, so its closed parent lives on that member's disk.
    let owner_of = owners(&c.data_dir(0), "logs");
    let (parent, owner) = owner_of
        .iter()
        .find(|(_, &o)| o != 0)
        .map(|(s, o)| (s.clone(), *o as usize))
        .unwrap();
    let listed = list_shards(k, "logs").await;
    let parent_shard = listed.iter().find(|s| s.shard_id() == parent).unwrap();
    k.split_shard()
        .stream_name("logs")
        .shard_to_split(&parent)
        .new_starting_hash_key(middle_hash_key(parent_shard))
        .send()
        .await
        .unwrap();
    let stream_dir = |ordinal: usize| {
        let streams = c.data_dir(ordinal).join("streams");
        std::fs::read_dir(&streams)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    };
    // The parent's records are in its owner's log of the stream (one log for the shards a pod
    // holds); no shard has a log directory of its own.
    assert!(
        stream_dir(owner).join("log").exists(),
        "the parent's log is on its owner"
    );
    assert!(!stream_dir(owner).join("shards").exists());
    for k in &c.clients {
        assert_eq!(list_shards(k, "logs").await.len(), 5);
    }

    // A day and more later (every pod's clock), the closed parent is gone everywhere.
    for pod in c.pods.iter().rev() {
        let (status, body) = http_request(
            &pod.metrics,
            "POST",
            "/test/advance-clock?ms=90000000",
            &[],
            "",
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    for (i, k) in c.clients.iter().enumerate() {
        let mut n = 0;
        for _ in 0..50 {
            n = list_shards(k, "logs").await.len();
            if n == 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(n, 4, "pod {i} forgot the expired parent");
    }
    // The parent's records went with the stream log's segments they shared with its
    // children: retention deletes those once every shard's records in them have expired.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_from_manifests_spread_over_the_members_that_joined() {
    let manifests = tempfile::tempdir().unwrap();
    std::fs::write(
        manifests.path().join("orders.yaml"),
        "apiVersion: tributary.dev/v1alpha1\nkind: Stream\nmetadata:\n  name: orders\nspec:\n  shardCount: 6\n",
    )
    .unwrap();
    std::fs::write(
        manifests.path().join("copies.yaml"),
        "apiVersion: tributary.dev/v1alpha1\nkind: Stream\nmetadata:\n  name: copies\nspec:\n  shardCount: 3\n",
    )
    .unwrap();
    std::fs::write(
        manifests.path().join("copier.yaml"),
        r#"apiVersion: tributary.dev/v1alpha1
kind: AnalyticsApp
metadata: {name: copier}
spec:
  applicationCode: |
    CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ID INTEGER);
    CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
      SELECT STREAM ID FROM "SOURCE_SQL_STREAM_001";
  inputs:
    - namePrefix: SOURCE_SQL_STREAM
      kinesisStreamsInput: {resourceRef: {name: orders}}
      inputStartingPosition: TRIM_HORIZON
      inputSchema:
        recordFormat:
          recordFormatType: JSON
          mappingParameters: {jsonMappingParameters: {recordRowPath: $}}
        recordColumns:
          - {name: ID, mapping: $.ID, sqlType: INTEGER}
  outputs:
    - name: DESTINATION_SQL_STREAM
      kinesisStreamsOutput: {resourceRef: {name: copies}}
      destinationSchema: {recordFormatType: JSON}
"#,
    )
    .unwrap();
    // Every pod gets the manifests (as the operator mounts them); the coordinator applies them
    // once its members have joined.
    let c = start_with(&["--manifests", manifests.path().to_str().unwrap()]).await;
    let mut names = Vec::new();
    for _ in 0..150 {
        names = c.clients[2]
            .list_streams()
            .send()
            .await
            .unwrap()
            .stream_names()
            .to_vec();
        if names.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(names, vec!["copies".to_string(), "orders".to_string()]);
    let view = cluster_view(&c.pods[0]).await;
    for m in view["members"].as_array().unwrap() {
        assert_eq!(m["openShards"], 3, "{view}");
    }

    // The AnalyticsApp manifest is applied by the coordinator alone, after the streams': the
    // application runs there, reads the shards of every pod and writes the clustered output.
    let a = analytics_client(&c.pods[1].api);
    let mut status = None;
    for _ in 0..150 {
        if let Ok(d) = a
            .describe_application()
            .application_name("copier")
            .send()
            .await
        {
            status = d.application_detail.map(|d| d.application_status);
            if status == Some(aws_sdk_kinesisanalytics::types::ApplicationStatus::Running) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        Some(aws_sdk_kinesisanalytics::types::ApplicationStatus::Running)
    );
    let records = (0..60u32).map(|i| (format!("key-{i}"), format!(r#"{{"ID":{i}}}"#)));
    let placed = put_records(&c.clients[2], "orders", records).await;
    let shards: BTreeSet<&str> = placed.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(shards.len(), 6, "records reach every shard");
    let mut ids = BTreeSet::new();
    for _ in 0..200 {
        ids.clear();
        for shard in 0..3 {
            let id = format!("shardId-{shard:012}");
            for r in read_shard(&c.clients[1], "copies", &id).await {
                let v: Value = serde_json::from_slice(r.data().as_ref()).unwrap();
                ids.insert(v["ID"].as_u64().unwrap());
            }
        }
        if ids.len() >= 60 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ids, (0..60).collect::<BTreeSet<u64>>());
    assert!(c.data_dir(0).join("analytics").join("copier").exists());
    for ordinal in [1, 2] {
        let dir = c.data_dir(ordinal).join("analytics");
        let apps = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert_eq!(apps, 0, "member {ordinal} runs no application");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_server_becomes_the_coordinator_of_a_cluster() {
    // A single server's stream, from before cluster mode was turned on ...
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pod-0");
    let single = Server::start(&["--data-dir", data.to_str().unwrap(), "--no-limits"])
        .await
        .unwrap();
    let k = kinesis_client(&single.api);
    create_stream(&k, "legacy", 2).await;
    let before = put(&k, "legacy", 0..100).await;
    single.stop().await.unwrap();

    // ... is held by the coordinator once the same data directory starts ordinal 0.
    let pods = start_pods(dir.path(), 2, &[])
        .await
        .expect("the coordinator and a member start");
    let member = kinesis_client(&pods[1].api);
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = member
            .list_streams()
            .send()
            .await
            .unwrap()
            .stream_names()
            .to_vec();
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed, vec!["legacy".to_string()]);
    let after = put(&member, "legacy", 100..200).await;
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, shard, _) in before.iter().chain(&after) {
        expected
            .entry(shard.clone())
            .or_default()
            .push(format!("r{id}"));
    }
    for (shard, want) in &expected {
        let (got, _) = read_shard_text(&member, "legacy", shard).await;
        assert_eq!(&got, want, "{shard}");
    }
    let view = cluster_view(&pods[0]).await;
    assert_eq!(view["members"][0]["openShards"], 2, "{view}");
    assert_eq!(view["members"][1]["openShards"], 0, "{view}");
    assert!(
        !dir.path().join("pod-1/streams").exists()
            || std::fs::read_dir(dir.path().join("pod-1/streams"))
                .unwrap()
                .all(|e| !e.unwrap().path().join("shards/000000").exists()),
        "the member holds no log of the coordinator's shards"
    );
}

/// One hand-built Kinesis call over h2c (HTTP/2 with prior knowledge), JSON or CBOR.
async fn h2c_call(pod: &Server, op: &str, cbor: bool, body: serde_json::Value) -> (u16, Value) {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<bytes::Bytes>>();
    let (content_type, raw) = if cbor {
        let mut out = Vec::new();
        ciborium::into_writer(&body, &mut out).unwrap();
        ("application/x-amz-cbor-1.1", out)
    } else {
        (
            "application/x-amz-json-1.1",
            serde_json::to_vec(&body).unwrap(),
        )
    };
    let req = http::Request::post(format!("{}/", pod.api))
        .header("x-amz-target", format!("Kinesis_20131202.{op}"))
        .header("content-type", content_type)
        .body(Full::new(bytes::Bytes::from(raw)))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let value = if body.is_empty() {
        Value::Null
    } else if cbor {
        let v: ciborium::Value = ciborium::from_reader(&body[..]).unwrap();
        // Blobs as byte arrays, which is all this test compares.
        serde_json::to_value(v).unwrap()
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (status, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_and_cbor_calls_are_forwarded_too() {
    let c = start().await;
    let (status, _) = h2c_call(
        &c.pods[2],
        "CreateStream",
        true,
        serde_json::json!({"StreamName": "wire", "ShardCount": 3}),
    )
    .await;
    assert_eq!(status, 200);
    let written = put(&c.clients[0], "wire", 0..60).await;
    let owner_of = owners(&c.data_dir(0), "wire");
    for (shard, owner) in &owner_of {
        let want = written.iter().filter(|(_, s, _)| s == shard).count();
        // Through a pod that does not hold the shard, once in JSON and once in CBOR.
        let pod = &c.pods[(*owner as usize + 1) % 3];
        for cbor in [false, true] {
            let (status, it) = h2c_call(
                pod,
                "GetShardIterator",
                cbor,
                serde_json::json!({"StreamName": "wire", "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
            )
            .await;
            assert_eq!(status, 200, "{it}");
            let (status, page) = h2c_call(
                pod,
                "GetRecords",
                cbor,
                serde_json::json!({"ShardIterator": it["ShardIterator"]}),
            )
            .await;
            assert_eq!(status, 200, "{page}");
            assert_eq!(page["Records"].as_array().unwrap().len(), want, "{shard}");
        }
    }
    let (status, listed) = h2c_call(
        &c.pods[1],
        "ListShards",
        true,
        serde_json::json!({"StreamName": "wire"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed["Shards"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reshard_whose_owner_is_down_fails_without_changing_anything() {
    let mut c = start().await;
    let k = c.clients[0].clone();
    create_stream(&k, "split", 3).await;
    let written = put(&k, "split", 0..60).await;
    let owner_of = owners(&c.data_dir(0), "split");
    let (shard, _) = owner_of.iter().find(|(_, &o)| o == 2).unwrap();
    let listed = list_shards(&k, "split").await;
    let middle = middle_hash_key(listed.iter().find(|s| s.shard_id() == shard).unwrap());

    c.pods[2].kill9().await;
    wait_live(&c, 2).await;
    let err = k
        .split_shard()
        .stream_name("split")
        .shard_to_split(shard)
        .new_starting_hash_key(&middle)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("InternalFailure")
    );
    assert_eq!(list_shards(&k, "split").await, listed, "nothing changed");

    // Back, the owner takes the split; no record was lost on the way.
    c.pods[2].restart().await.unwrap();
    wait_live(&c, 3).await;
    k.split_shard()
        .stream_name("split")
        .shard_to_split(shard)
        .new_starting_hash_key(&middle)
        .send()
        .await
        .unwrap();
    assert_eq!(list_shards(&c.clients[1], "split").await.len(), 5);
    let want: Vec<String> = written
        .iter()
        .filter(|(_, s, _)| s == shard)
        .map(|(id, _, _)| format!("r{id}"))
        .collect();
    let (got, children) = read_shard_text(&c.clients[1], "split", shard).await;
    assert_eq!(got, want);
    assert_eq!(children.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_during_reshards_across_pods_are_all_kept() {
    let c = start().await;
    create_stream(&c.clients[0], "busy", 4).await;
    // Two pods write while a third reshards 4 → 8 → 4, parents sealed on every pod.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let w1 = tokio::spawn(keep_writing(
        c.clients[1].clone(),
        "busy",
        100_000,
        stop_rx.clone(),
    ));
    let w2 = tokio::spawn(keep_writing(c.clients[2].clone(), "busy", 500_000, stop_rx));
    tokio::time::sleep(Duration::from_millis(200)).await;
    for target in [8, 4] {
        update_shard_count(&c.clients[0], "busy", target).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_tx.send(true).unwrap();
    let mut acked = w1.await.unwrap();
    acked.extend(w2.await.unwrap());
    assert!(acked.len() > 100, "{} records", acked.len());

    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, shard) in &acked {
        want.entry(shard.clone())
            .or_default()
            .insert(format!("r{id}"));
    }
    let listed = c.clients[0]
        .list_shards()
        .stream_name("busy")
        .send()
        .await
        .unwrap();
    let mut total = 0;
    for s in listed.shards() {
        let (got, children) = read_shard_text(&c.clients[2], "busy", s.shard_id()).await;
        let closed = s
            .sequence_number_range()
            .unwrap()
            .ending_sequence_number()
            .is_some();
        assert_eq!(closed, !children.is_empty(), "{}", s.shard_id());
        let have: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(have.len(), got.len(), "no record twice in {}", s.shard_id());
        let expected = want.remove(s.shard_id()).unwrap_or_default();
        assert_eq!(have, expected, "{}", s.shard_id());
        // Each writer's records of one key keep their order within a shard.
        let mut last: BTreeMap<(bool, u32), u32> = BTreeMap::new();
        for r in &got {
            let id: u32 = r[1..].parse().unwrap();
            let key = (id >= 500_000, id % 40);
            if let Some(prev) = last.insert(key, id) {
                assert!(prev < id, "{} out of order: {prev} then {id}", s.shard_id());
            }
        }
        total += got.len();
    }
    assert!(
        want.is_empty(),
        "records acknowledged in unlisted shards: {want:?}"
    );
    assert_eq!(total, acked.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_scales_on_demand_shards_held_by_every_pod() {
    let c = start_with(&[
        "--on-demand-check-ms",
        "500",
        "--on-demand-hot-window-ms",
        "1000",
        "--on-demand-cold-window-ms",
        "2000",
    ])
    .await;
    // Load reports need the cluster token, and come from members that joined.
    let report = r#"{"ordinal":7,"intervalMs":500,"shards":[]}"#;
    let (status, _) = http_request(
        &c.pods[0].api,
        "POST",
        "/_tributary/cluster/load",
        &[],
        report,
    )
    .await;
    assert_eq!(status, 403);
    let token = [("x-tributary-cluster-token", SECRET)];
    let (status, body) = http_request(
        &c.pods[0].api,
        "POST",
        "/_tributary/cluster/load",
        &token,
        report,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let k0 = &c.clients[0];
    create_on_demand_stream(k0, "od").await;
    let owner_of = owners(&c.data_dir(0), "od");
    assert_eq!(owner_of.len(), 4, "on-demand streams start with 4 shards");
    let (hot, _) = owner_of.iter().find(|(_, &o)| o == 1).unwrap();
    let hot = hot.clone();
    let listed = k0.list_shards().stream_name("od").send().await.unwrap();
    let key = listed
        .shards()
        .iter()
        .find(|s| s.shard_id() == hot)
        .unwrap()
        .hash_key_range()
        .unwrap()
        .starting_hash_key()
        .to_string();

    // About 2 MiB/s to the shard member 1 holds, written through member 2: twice the shard's
    // write limit, measured at its owner and reported to the coordinator.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let stop = stop_rx.clone();
            tokio::spawn(write_load(
                c.clients[2].clone(),
                "od".to_string(),
                w,
                Some(key.clone()),
                Duration::from_millis(400),
                move || *stop.borrow(),
            ))
        })
        .collect();
    let closed = |s: &aws_sdk_kinesis::types::Shard| {
        s.sequence_number_range()
            .and_then(|r| r.ending_sequence_number())
            .is_some()
    };
    let mut split = false;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let shards = k0.list_shards().stream_name("od").send().await.unwrap();
        if shards
            .shards()
            .iter()
            .any(|s| s.shard_id() == hot && closed(s))
        {
            split = true;
            break;
        }
    }
    stop_tx.send(true).unwrap();
    for w in writers {
        w.await.unwrap();
    }
    assert!(split, "the hot shard held by member 1 was split");
    let shards = k0.list_shards().stream_name("od").send().await.unwrap();
    let split_parents: BTreeSet<&str> = shards
        .shards()
        .iter()
        .filter(|s| s.adjacent_parent_shard_id().is_none())
        .filter_map(|s| s.parent_shard_id())
        .filter(|p| owner_of.contains_key(*p))
        .collect();
    assert_eq!(
        split_parents,
        BTreeSet::from([hot.as_str()]),
        "of the first four shards only the hot one was split: {:?}",
        list_shards(k0, "od").await
    );

    // Idle now, and five shards: cold neighbours merge back to four, whichever pods hold them
    // (every pair of neighbours has a shard held by a member).
    let mut merged = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let shards = k0.list_shards().stream_name("od").send().await.unwrap();
        if let Some(s) = shards
            .shards()
            .iter()
            .find(|s| s.adjacent_parent_shard_id().is_some())
        {
            merged = Some((
                s.parent_shard_id().unwrap().to_string(),
                s.adjacent_parent_shard_id().unwrap().to_string(),
            ));
            break;
        }
    }
    let (a, b) = merged.expect("a cold pair was merged");
    let owner_of = owners(&c.data_dir(0), "od");
    assert!(
        owner_of[&a] != 0 || owner_of[&b] != 0,
        "a shard held by a member took part in the merge ({a} on {}, {b} on {})",
        owner_of[&a],
        owner_of[&b]
    );
    // Back to four open shards, never fewer.
    let mut open = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        open = open_shard_count(k0, "od").await;
        assert!(open >= 4, "{open} open shards");
        if open == 4 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        (open, open_shard_count(k0, "od").await),
        (4, 4),
        "merged back to four open shards, and no further"
    );
    // Every pod sees the same shards.
    let want = list_shards(k0, "od").await;
    for k in &c.clients[1..] {
        assert_eq!(list_shards(k, "od").await, want);
    }
}

/// Lines of every object delivered under `root`, by object key.
fn delivered(root: &Path) -> Vec<(String, Vec<String>)> {
    tributary_tests::files(root)
        .into_iter()
        .map(|(key, body)| {
            let text = String::from_utf8(body).unwrap();
            (key, text.lines().map(str::to_string).collect())
        })
        .collect()
}

/// Waits until at least `n` lines were delivered under `root`; returns them by object.
async fn wait_delivered(root: &Path, n: usize) -> Vec<(String, Vec<String>)> {
    tributary_tests::wait_for("delivery", Duration::from_secs(60), || {
        let d = delivered(root);
        (d.iter().map(|(_, l)| l.len()).sum::<usize>() >= n).then_some(d)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_streams_live_on_the_coordinator_and_deliver_every_pods_shards() {
    use aws_sdk_firehose::types::{DeliveryStreamType, Record};
    let keys = tempfile::NamedTempFile::new().unwrap();
    write_auth_file(keys.path(), &[]);
    let store = tempfile::tempdir().unwrap();
    let endpoint = format!("file://{}", store.path().display());
    let c = start_with(&[
        "--auth-file",
        keys.path().to_str().unwrap(),
        "--s3-endpoint",
        &endpoint,
        "--delivery-retry-initial-ms",
        "100",
        "--delivery-retry-max-ms",
        "400",
    ])
    .await;
    let [k0, k1, _] = [&c.clients[0], &c.clients[1], &c.clients[2]];
    let f: Vec<aws_sdk_firehose::Client> = c.pods.iter().map(|p| firehose_client(&p.api)).collect();

    // Six shards, two on each pod; the delivery stream is created through member 2.
    create_stream(k1, "clicks", 6).await;
    create_stream_delivery(
        &f[2],
        "clicks-archive",
        "clicks",
        s3_config("clicks/", 1, false),
    )
    .await;

    // Every pod describes and lists the same delivery stream.
    let mut described = Vec::new();
    for fc in &f {
        let d = fc
            .describe_delivery_stream()
            .delivery_stream_name("clicks-archive")
            .send()
            .await
            .unwrap()
            .delivery_stream_description
            .unwrap();
        described.push((
            d.delivery_stream_arn().to_string(),
            d.create_timestamp().unwrap().secs(),
            d.delivery_stream_type().as_str().to_string(),
        ));
        let names = fc
            .list_delivery_streams()
            .send()
            .await
            .unwrap()
            .delivery_stream_names()
            .to_vec();
        assert_eq!(names, vec!["clicks-archive".to_string()]);
    }
    assert!(described.windows(2).all(|w| w[0] == w[1]), "{described:?}");
    assert_eq!(described[0].2, "KinesisStreamAsSource");

    // Records on every pod's shards are delivered, through a reshard whose children spread
    // over the pods too, each partition key in order.
    let written = put(k1, "clicks", 0..300).await;
    let shards: BTreeSet<&str> = written.iter().map(|(_, s, _)| s.as_str()).collect();
    assert_eq!(shards.len(), 6, "records reach every shard");
    update_shard_count(k0, "clicks", 12).await;
    put(k1, "clicks", 300..600).await;
    let owners_now: BTreeSet<u64> = owners(&c.data_dir(0), "clicks").into_values().collect();
    assert_eq!(owners_now, BTreeSet::from([0, 1, 2]));
    let root = store.path().join("landing");
    let objects = wait_delivered(&root.join("clicks"), 600).await;
    let lines: Vec<&String> = objects.iter().flat_map(|(_, l)| l).collect();
    let got: BTreeSet<&str> = lines.iter().map(|l| l.as_str()).collect();
    let want: BTreeSet<String> = (0..600).map(|i| format!("r{i}")).collect();
    assert_eq!(got, want.iter().map(String::as_str).collect());
    assert_eq!(lines.len(), 600, "no record is delivered twice");
    for (key, lines) in &objects {
        let mut last: BTreeMap<u32, u32> = BTreeMap::new();
        for l in lines {
            let i: u32 = l[1..].parse().unwrap();
            if let Some(prev) = last.insert(i % 40, i) {
                assert!(prev < i, "{key}: r{prev} then r{i}");
            }
        }
    }

    // A DirectPut delivery stream created through member 1 takes records through member 2.
    f[1].create_delivery_stream()
        .delivery_stream_name("direct")
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(s3_config("direct/", 1, false))
        .send()
        .await
        .unwrap();
    put_record_batch(&f[2], "direct", (0..50).map(|i| format!("d{i}"))).await;
    f[0].put_record()
        .delivery_stream_name("direct")
        .record(
            Record::builder()
                .data(aws_sdk_firehose::primitives::Blob::new("d50"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let objects = wait_delivered(&root.join("direct"), 51).await;
    let got: BTreeSet<String> = objects.into_iter().flat_map(|(_, l)| l).collect();
    assert_eq!(got, (0..51).map(|i| format!("d{i}")).collect());

    // Deleted through one pod, it is gone on every pod.
    f[0].delete_delivery_stream()
        .delivery_stream_name("direct")
        .send()
        .await
        .unwrap();
    for fc in &f {
        let err = fc
            .describe_delivery_stream()
            .delivery_stream_name("direct")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_resource_not_found_exception(), "{err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analytics_application_reads_every_pods_shards_and_writes_a_clustered_stream() {
    use aws_sdk_kinesisanalytics::types::{
        ApplicationStatus, InputStartingPosition, RecordFormatType,
    };
    let c = start().await;
    let [k0, k1, k2] = [&c.clients[0], &c.clients[1], &c.clients[2]];
    let a: Vec<aws_sdk_kinesisanalytics::Client> =
        c.pods.iter().map(|p| analytics_client(&p.api)).collect();
    for s in ["ticks", "tech"] {
        create_stream(k1, s, 3).await;
    }
    let by_owner: BTreeSet<u64> = owners(&c.data_dir(0), "ticks").into_values().collect();
    assert_eq!(by_owner, BTreeSet::from([0, 1, 2]));
    a[2].create_application()
        .application_name("tech-filter")
        .application_code(
            r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (id INTEGER);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
  SELECT STREAM id FROM "SOURCE_SQL_STREAM_001" WHERE sector = 'TECH';"#,
        )
        .inputs(stream_input(
            "ticks",
            json_schema(&[("ID", "INTEGER"), ("SECTOR", "VARCHAR(16)")]),
        ))
        .outputs(stream_output(
            "DESTINATION_SQL_STREAM",
            "tech",
            RecordFormatType::Json,
        ))
        .send()
        .await
        .unwrap();
    start_application(&a[1], "tech-filter", InputStartingPosition::TrimHorizon).await;
    // Every pod describes the application as running.
    for ac in &a {
        let d = ac
            .describe_application()
            .application_name("tech-filter")
            .send()
            .await
            .unwrap()
            .application_detail
            .unwrap();
        assert_eq!(d.application_status, ApplicationStatus::Running);
    }

    // 90 records spread over the three shards (one on each pod), a third of them TECH.
    let records = (0..90u32).map(|i| {
        let sector = if i % 3 == 0 { "TECH" } else { "ENERGY" };
        let data = format!(r#"{{"ID":{i},"SECTOR":"{sector}"}}"#);
        (format!("key-{i}"), data)
    });
    let placed = put_records(k2, "ticks", records).await;
    let shards: BTreeSet<&str> = placed.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(shards.len(), 3, "records reach every shard");

    // The output stream, read through the coordinator, gets every TECH row from every pod,
    // written over its shards on every pod.
    let tech_shards = shard_ids(k0, "tech").await;
    let mut ids = BTreeSet::new();
    let mut per_shard = Vec::new();
    for _ in 0..200 {
        ids.clear();
        per_shard.clear();
        for s in &tech_shards {
            let records = read_shard(k0, "tech", s).await;
            per_shard.push(records.len());
            for r in records {
                let v: Value = serde_json::from_slice(r.data().as_ref()).unwrap();
                ids.insert(v["ID"].as_u64().unwrap());
            }
        }
        if ids.len() >= 30 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ids, (0..90).step_by(3).collect::<BTreeSet<u64>>());
    assert_eq!(per_shard.iter().sum::<usize>(), 30, "{per_shard:?}");
    assert!(per_shard.iter().all(|n| *n > 0), "{per_shard:?}");
}
