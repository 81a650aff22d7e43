//! Kinesis calls the tests share: create a stream, put records, list shards, read shards and
//! streams back, all through `aws-sdk-kinesis`.

use std::time::Duration;

use aws_sdk_kinesis::operation::update_shard_count::UpdateShardCountOutput;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, Record, ScalingType, Shard, ShardIteratorType, StreamMode,
    StreamModeDetails, StreamStatus,
};
use aws_sdk_kinesis::Client;

/// Creates `name` with `shards` provisioned shards and waits until it is ACTIVE.
pub async fn create_stream(c: &Client, name: &str, shards: i32) {
    c.create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("CreateStream");
    wait_active(c, name).await;
}

/// Creates `name` in ON_DEMAND mode (4 shards to start with) and waits until it is ACTIVE.
pub async fn create_on_demand_stream(c: &Client, name: &str) {
    c.create_stream()
        .stream_name(name)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .expect("stream mode details"),
        )
        .send()
        .await
        .expect("CreateStream");
    wait_active(c, name).await;
}

/// Waits (up to 30 s) until DescribeStreamSummary reports `name` ACTIVE.
async fn wait_active(c: &Client, name: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = c
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .expect("DescribeStreamSummary")
            .stream_description_summary
            .expect("a stream summary")
            .stream_status;
        if status == StreamStatus::Active {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream {name} still {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes `records` (partition key, data) with PutRecords, in order, 500 to a call, and
/// asserts that none failed; returns each record's (shard id, sequence number).
pub async fn put_records<D: Into<Vec<u8>>>(
    c: &Client,
    stream: &str,
    records: impl IntoIterator<Item = (String, D)>,
) -> Vec<(String, String)> {
    let entries: Vec<PutRecordsRequestEntry> = records
        .into_iter()
        .map(|(key, data)| {
            PutRecordsRequestEntry::builder()
                .partition_key(key)
                .data(Blob::new(data))
                .build()
                .expect("a record entry")
        })
        .collect();
    let mut out = Vec::with_capacity(entries.len());
    for chunk in entries.chunks(500) {
        let res = c
            .put_records()
            .stream_name(stream)
            .set_records(Some(chunk.to_vec()))
            .send()
            .await
            .expect("PutRecords");
        assert_eq!(res.failed_record_count(), Some(0), "{res:?}");
        out.extend(res.records().iter().map(|r| {
            (
                r.shard_id().expect("a shard id").to_string(),
                r.sequence_number().expect("a sequence number").to_string(),
            )
        }));
    }
    out
}

/// The ARN of Kinesis stream `stream` in the test account and region.
pub fn stream_arn(stream: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:000000000000:stream/{stream}")
}

/// UpdateShardCount of `stream` to `target` open shards (UNIFORM_SCALING).
pub async fn update_shard_count(c: &Client, stream: &str, target: i32) -> UpdateShardCountOutput {
    c.update_shard_count()
        .stream_name(stream)
        .target_shard_count(target)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .expect("UpdateShardCount")
}

/// Every shard of `stream`, following ListShards' `NextToken`.
pub async fn list_shards(c: &Client, stream: &str) -> Vec<Shard> {
    list_shards_paged(c, stream, None).await
}

/// [`list_shards`] with `page_size` shards a ListShards call (`MaxResults`; the server's
/// default when `None`).
pub async fn list_shards_paged(c: &Client, stream: &str, page_size: Option<i32>) -> Vec<Shard> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let req = c.list_shards().set_max_results(page_size);
        let req = match &token {
            Some(t) => req.next_token(t),
            None => req.stream_name(stream),
        };
        let page = req.send().await.expect("ListShards");
        out.extend(page.shards().iter().cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return out;
        }
    }
}

/// The ids of every shard of `stream`, in ListShards order.
pub async fn shard_ids(c: &Client, stream: &str) -> Vec<String> {
    list_shards(c, stream)
        .await
        .iter()
        .map(|s| s.shard_id().to_string())
        .collect()
}

/// The open shard count DescribeStreamSummary reports for `stream`.
pub async fn open_shard_count(c: &Client, stream: &str) -> i32 {
    c.describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .expect("DescribeStreamSummary")
        .stream_description_summary()
        .expect("a stream summary")
        .open_shard_count()
}

/// Every record of one shard, from TRIM_HORIZON to its end (a closed shard) or to the tip (an
/// open one), following each page's `NextShardIterator`.
pub async fn read_shard(c: &Client, stream: &str, shard: &str) -> Vec<Record> {
    read_shard_and_children(c, stream, shard).await.0
}

/// Where a read of a shard stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadUntil {
    /// An empty page without child shards (the tip of an open shard), or the end of a closed
    /// shard.
    EmptyPage,
    /// The first page that reports `MillisBehindLatest` 0, or the end of a closed shard: one
    /// GetRecords call fewer than [`ReadUntil::EmptyPage`] for tests that poll a server
    /// enforcing the 5 reads a second of a shard.
    CaughtUp,
}

/// [`read_shard`], and the child shards a closed shard names at its end (none for an open
/// one).
async fn read_shard_and_children(
    c: &Client,
    stream: &str,
    shard: &str,
) -> (Vec<Record>, Vec<String>) {
    read_shard_until(c, stream, shard, ReadUntil::EmptyPage).await
}

/// Every record of one shard from TRIM_HORIZON, following each page's `NextShardIterator`
/// until `until`, and the child shards named on the way.
async fn read_shard_until(
    c: &Client,
    stream: &str,
    shard: &str,
    until: ReadUntil,
) -> (Vec<Record>, Vec<String>) {
    let mut it = c
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator;
    let mut records = Vec::new();
    let mut children = Vec::new();
    while let Some(i) = it {
        let page = c
            .get_records()
            .shard_iterator(i)
            .send()
            .await
            .expect("GetRecords");
        children.extend(page.child_shards().iter().map(|c| c.shard_id().to_string()));
        // An empty page of an open shard is its tip; a closed shard ends with ChildShards and
        // no next iterator.
        let at_tip = match until {
            ReadUntil::EmptyPage => page.records().is_empty() && page.child_shards().is_empty(),
            ReadUntil::CaughtUp => page.millis_behind_latest() == Some(0),
        };
        it = page.next_shard_iterator;
        records.extend(page.records);
        if at_tip {
            break;
        }
    }
    (records, children)
}

/// [`read_shard_and_children`] with each record's data as UTF-8 text.
pub async fn read_shard_text(c: &Client, stream: &str, shard: &str) -> (Vec<String>, Vec<String>) {
    let (records, children) = read_shard_and_children(c, stream, shard).await;
    (records.iter().map(record_text).collect(), children)
}

/// Every record of every shard of `stream`, shard by shard in ListShards order (parents
/// before their children), each read with [`read_shard`].
pub async fn read_stream(c: &Client, stream: &str) -> Vec<Record> {
    read_stream_until(c, stream, ReadUntil::EmptyPage).await
}

/// [`read_stream`], each shard read until `until`.
pub async fn read_stream_until(c: &Client, stream: &str, until: ReadUntil) -> Vec<Record> {
    let mut out = Vec::new();
    for shard in shard_ids(c, stream).await {
        out.extend(read_shard_until(c, stream, &shard, until).await.0);
    }
    out
}

/// A record's data as UTF-8 text.
pub fn record_text(r: &Record) -> String {
    String::from_utf8(r.data().as_ref().to_vec()).expect("record data is UTF-8")
}

/// The hash key halfway through `shard`'s hash key range: where SplitShard cuts it in two
/// equal halves.
pub fn middle_hash_key(shard: &Shard) -> String {
    let range = shard.hash_key_range().expect("a hash key range");
    let start: u128 = range.starting_hash_key().parse().unwrap();
    let end: u128 = range.ending_hash_key().parse().unwrap();
    (start + (end - start) / 2).to_string()
}

/// Write load (for on-demand scaling): PutRecords calls of 16 records of 64 KiB each, 1 MiB a
/// call, to `stream` until `stop` answers true, waiting `pause` after each call; refused calls
/// are ignored. Writer `writer`'s partition keys are `w{writer}-{call}-{n}`; with `hash_key`
/// every record goes to the shard holding that hash key.
pub async fn write_load(
    c: Client,
    stream: String,
    writer: usize,
    hash_key: Option<String>,
    pause: Duration,
    stop: impl Fn() -> bool,
) {
    let data = vec![7u8; 64 * 1024];
    let mut i = 0u64;
    while !stop() {
        let entries = (0..16)
            .map(|n| {
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("w{writer}-{i}-{n}"))
                    .set_explicit_hash_key(hash_key.clone())
                    .data(Blob::new(data.clone()))
                    .build()
                    .unwrap()
            })
            .collect();
        let _ = c
            .put_records()
            .stream_name(&stream)
            .set_records(Some(entries))
            .send()
            .await;
        i += 1;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}
