//! The Rust AWS SDK (`aws-sdk-kinesis`) against a real `tributary` process.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use tributary_tests::{
    create_stream, kinesis_client as client, list_shards, open_shard_count, put_records,
    read_shard, record_text, update_shard_count, Server,
};

async fn start() -> (Server, Client) {
    let server = Server::start(&["--in-memory", "--no-limits"])
        .await
        .unwrap();
    let c = client(&server.api);
    (server, c)
}

fn md5_hash(pk: &str) -> u128 {
    // The shard a record lands in is decided by MD5(partition key); computed here with the
    // server's own helper-free arithmetic so the test checks routing independently.
    let digest = md5_digest(pk.as_bytes());
    u128::from_be_bytes(digest)
}

/// A small MD5 (RFC 1321) so routing is checked against an independent implementation.
fn md5_digest(input: &[u8]) -> [u8; 16] {
    let s: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32)
        .collect();
    let (mut a0, mut b0, mut c0, mut d0) =
        (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    let mut msg = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f2 = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f2.rotate_left(s[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, v) in [a0, b0, c0, d0].iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    out
}

#[tokio::test]
async fn put_records_route_by_md5_and_read_back_intact_in_order() {
    let (_server, c) = start().await;
    create_stream(&c, "orders", 4).await;
    let shard_list = list_shards(&c, "orders").await;
    assert_eq!(shard_list.len(), 4);
    let ranges: HashMap<String, (u128, u128)> = shard_list
        .iter()
        .map(|s| {
            let r = s.hash_key_range().unwrap();
            (
                s.shard_id().to_string(),
                (
                    r.starting_hash_key().parse().unwrap(),
                    r.ending_hash_key().parse().unwrap(),
                ),
            )
        })
        .collect();
    let mut sent = Vec::new();
    for batch in 0..3 {
        let records: Vec<(String, Vec<u8>)> = (0..500)
            .map(|i| {
                let pk = format!("key-{batch}-{i}-{}", rand::random::<u32>());
                let data: Vec<u8> = (0..64).map(|j| ((i + j + batch) % 256) as u8).collect();
                sent.push((pk.clone(), data.clone()));
                (pk, data)
            })
            .collect();
        let placed = put_records(&c, "orders", records).await;
        let start = batch * 500;
        for (k, (shard, _)) in placed.iter().enumerate() {
            let (pk, _) = &sent[start + k];
            let (lo, hi) = ranges[shard.as_str()];
            let h = md5_hash(pk);
            assert!(lo <= h && h <= hi, "record {pk} routed to the wrong shard");
        }
    }
    let mut got: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for s in &shard_list {
        let recs = read_shard(&c, "orders", s.shard_id()).await;
        let seqs: Vec<u128> = recs
            .iter()
            .map(|r| r.sequence_number().parse().unwrap())
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "sequence numbers increase"
        );
        for r in recs {
            got.insert(r.partition_key.unwrap_or_default(), r.data.into_inner());
        }
    }
    assert_eq!(got.len(), sent.len());
    for (pk, data) in &sent {
        assert_eq!(got.get(pk), Some(data), "record {pk} came back intact");
    }
}

#[tokio::test]
async fn missing_stream_is_resource_not_found() {
    let (_server, c) = start().await;
    let err = c
        .describe_stream_summary()
        .stream_name("nope")
        .send()
        .await
        .unwrap_err();
    let e = err.into_service_error();
    assert!(e.is_resource_not_found_exception());
    assert_eq!(
        e.meta().message(),
        Some("Stream nope under account 000000000000 not found.")
    );
}

#[tokio::test]
async fn reshards_keep_every_record_readable_exactly_once_through_lineage() {
    let (_server, c) = start().await;
    create_stream(&c, "r", 1).await;
    let mut written = Vec::new();
    let mut put = |n: usize, tag: &str| {
        let records: Vec<(String, String)> = (0..n)
            .map(|i| {
                let pk = format!("{tag}-{i}");
                written.push(pk.clone());
                (pk.clone(), pk)
            })
            .collect();
        let c = c.clone();
        async move {
            put_records(&c, "r", records).await;
        }
    };
    put(50, "a").await;
    c.split_shard()
        .stream_name("r")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    put(50, "b").await;
    c.merge_shards()
        .stream_name("r")
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await
        .unwrap();
    put(50, "c").await;
    for target in [2, 4, 2] {
        let out = update_shard_count(&c, "r", target).await;
        assert_eq!(out.target_shard_count(), Some(target));
        put(50, &format!("n{target}")).await;
    }
    assert_eq!(open_shard_count(&c, "r").await, 2);

    let all = list_shards(&c, "r").await;
    let parent = all
        .iter()
        .find(|s| s.shard_id() == "shardId-000000000001")
        .unwrap();
    assert_eq!(parent.parent_shard_id(), Some("shardId-000000000000"));
    let merged = all
        .iter()
        .find(|s| s.shard_id() == "shardId-000000000003")
        .unwrap();
    assert_eq!(
        merged.adjacent_parent_shard_id(),
        Some("shardId-000000000002")
    );
    assert!(all[0]
        .sequence_number_range()
        .unwrap()
        .ending_sequence_number()
        .is_some());

    // Read every shard; closed shards end with ChildShards and no next iterator.
    let mut seen: Vec<String> = Vec::new();
    for s in &all {
        seen.extend(
            read_shard(&c, "r", s.shard_id())
                .await
                .iter()
                .map(record_text),
        );
    }
    seen.sort();
    let mut expected = written.clone();
    expected.sort();
    assert_eq!(seen, expected, "every record exactly once");
}

#[tokio::test]
async fn closed_shard_read_to_its_end_names_its_children() {
    let (_server, c) = start().await;
    create_stream(&c, "kids", 1).await;
    c.put_record()
        .stream_name("kids")
        .partition_key("k")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    c.split_shard()
        .stream_name("kids")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("1000")
        .send()
        .await
        .unwrap();
    let it = c
        .get_shard_iterator()
        .stream_name("kids")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let r = c.get_records().shard_iterator(it).send().await.unwrap();
    assert_eq!(r.records().len(), 1);
    assert!(r.next_shard_iterator().is_none());
    let kids: Vec<&str> = r.child_shards().iter().map(|k| k.shard_id()).collect();
    assert_eq!(kids, vec!["shardId-000000000001", "shardId-000000000002"]);
    assert_eq!(
        r.child_shards()[0].parent_shards(),
        ["shardId-000000000000"]
    );
}

#[tokio::test]
async fn streams_list_with_pagination_and_summaries() {
    let (_server, c) = start().await;
    for i in 0..5 {
        create_stream(&c, &format!("s{i}"), 1).await;
    }
    let first = c.list_streams().limit(2).send().await.unwrap();
    assert_eq!(first.stream_names(), ["s0", "s1"]);
    assert!(first.has_more_streams());
    assert_eq!(first.stream_summaries().len(), 2);
    let token = first.next_token().unwrap().to_string();
    let second = c
        .list_streams()
        .next_token(token)
        .limit(10)
        .send()
        .await
        .unwrap();
    assert_eq!(second.stream_names(), ["s2", "s3", "s4"]);
    assert!(!second.has_more_streams());
}

#[tokio::test]
async fn settings_round_trip_through_the_sdk() {
    let (_server, c) = start().await;
    create_stream(&c, "cfg", 1).await;
    c.add_tags_to_stream()
        .stream_name("cfg")
        .tags("team", "data")
        .send()
        .await
        .unwrap();
    let tags = c
        .list_tags_for_stream()
        .stream_name("cfg")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags()[0].key(), "team");
    c.increase_stream_retention_period()
        .stream_name("cfg")
        .retention_period_hours(48)
        .send()
        .await
        .unwrap();
    c.start_stream_encryption()
        .stream_name("cfg")
        .encryption_type(aws_sdk_kinesis::types::EncryptionType::Kms)
        .key_id("alias/aws/kinesis")
        .send()
        .await
        .unwrap();
    let d = c.describe_stream().stream_name("cfg").send().await.unwrap();
    let d = d.stream_description().unwrap();
    assert_eq!(d.retention_period_hours(), 48);
    assert_eq!(d.key_id(), Some("alias/aws/kinesis"));
    let put = c
        .put_record()
        .stream_name("cfg")
        .partition_key("k")
        .data(Blob::new("v"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.encryption_type(),
        Some(&aws_sdk_kinesis::types::EncryptionType::Kms)
    );
    let limits = c.describe_limits().send().await.unwrap();
    assert_eq!(limits.open_shard_count(), 1);
}
