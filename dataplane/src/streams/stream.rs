//! A stream, its shards, and the metadata persisted for them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::limits::{PairBucket, TokenBucket};
use super::seq;
use crate::storage::{ShardLog, StorageError};

/// Stream status as Kinesis reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Creating => "CREATING",
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Updating => "UPDATING",
            StreamStatus::Deleting => "DELETING",
        }
    }

    /// Reads and writes are served while ACTIVE and while UPDATING (resharding).
    pub fn serves_data(self) -> bool {
        matches!(self, StreamStatus::Active | StreamStatus::Updating)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

impl StreamMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }
}

/// A registered enhanced fan-out consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consumer {
    pub name: String,
    pub arn: String,
    pub created_ms: i64,
    pub status: ConsumerStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsumerStatus {
    Creating,
    Active,
    Deleting,
}

impl ConsumerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerStatus::Creating => "CREATING",
            ConsumerStatus::Active => "ACTIVE",
            ConsumerStatus::Deleting => "DELETING",
        }
    }
}

/// Mutable stream settings, guarded by the stream's mutex and persisted on every change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamState {
    pub status: StreamStatus,
    pub retention_hours: u32,
    pub mode: StreamMode,
    pub tags: BTreeMap<String, String>,
    /// KMS key id while server-side encryption is on.
    pub encryption_key: Option<String>,
    pub enhanced_metrics: BTreeSet<String>,
    pub max_record_kib: u32,
    pub consumers: Vec<Consumer>,
    /// Times of recent UpdateShardCount calls (AWS allows 10 per rolling 24 hours).
    #[serde(default)]
    pub shard_count_updates: Vec<i64>,
    /// Next shard index to hand out; indexes are never reused.
    pub next_shard_index: u32,
    /// Resource policies (JSON text) by the stream's or a consumer's ARN.
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    /// Warm throughput an ON_DEMAND stream keeps ready, MiB/s.
    #[serde(default)]
    pub warm_throughput_mibps: Option<u32>,
}

/// What is persisted per shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardMeta {
    pub index: u32,
    pub start_hash: String,
    pub end_hash: String,
    pub parent: Option<String>,
    pub adjacent_parent: Option<String>,
    pub created_ms: i64,
    /// End offset and time when the shard was closed by a reshard.
    pub closed: Option<(u64, i64)>,
    /// Cluster mode: the ordinal of the pod that holds this shard's log (chosen when the
    /// shard is created; shards never move). Absent on a single server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<u32>,
}

/// The persisted form of a stream (`stream.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamMeta {
    pub name: String,
    pub incarnation: u64,
    pub created_ms: i64,
    pub state: StreamState,
    pub shards: Vec<ShardMeta>,
}

pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// Resolves a shard id as Kinesis does: the part after the first `-` (or the whole string),
/// all digits, at most 2147483647. `shardId-000000000001`, `shard-1` and `1` all name index 1.
pub fn parse_shard_id(s: &str) -> Option<u32> {
    let digits = s.split_once('-').map(|(_, d)| d).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = digits.trim_start_matches('0').parse().unwrap_or(0);
    if digits.len() > 20 || v > i32::MAX as u64 {
        return None;
    }
    Some(v as u32)
}

/// One shard: its place in the key space, its lineage, its log and its rate limits.
pub struct Shard {
    pub index: u32,
    pub id: String,
    pub start_hash: u128,
    pub end_hash: u128,
    pub parent: Option<String>,
    pub adjacent_parent: Option<String>,
    pub created_ms: i64,
    /// Cluster mode: the pod holding this shard's log (`None` on a single server).
    pub owner: Option<u32>,
    /// The shard's log, when this process holds it; `None` for a shard another pod owns.
    pub log: Option<ShardLog>,
    closed: Mutex<Option<(u64, i64)>>,
    /// 1 MiB/s and 1000 records/s in.
    pub write_limit: PairBucket,
    /// 5 GetRecords calls/s.
    pub read_calls: TokenBucket,
    /// 2 MiB/s out through GetRecords.
    pub read_bytes: TokenBucket,
    /// 5 GetShardIterator calls/s.
    pub iterator_calls: TokenBucket,
    /// Writes since the on-demand autoscaler last looked.
    pub meter: super::autoscale::WriteMeter,
}

pub const MIB: f64 = 1024.0 * 1024.0;

impl Shard {
    pub fn new(meta: &ShardMeta, log: Option<ShardLog>, now_ms: i64) -> Shard {
        Shard {
            index: meta.index,
            id: shard_id(meta.index),
            start_hash: meta.start_hash.parse().unwrap_or(0),
            end_hash: meta.end_hash.parse().unwrap_or(u128::MAX),
            parent: meta.parent.clone(),
            adjacent_parent: meta.adjacent_parent.clone(),
            created_ms: meta.created_ms,
            owner: meta.owner,
            log,
            closed: Mutex::new(meta.closed),
            write_limit: PairBucket {
                bytes: TokenBucket::new(MIB, MIB, now_ms),
                records: TokenBucket::new(1000.0, 1000.0, now_ms),
            },
            read_calls: TokenBucket::new(5.0, 5.0, now_ms),
            read_bytes: TokenBucket::new(2.0 * MIB, 2.0 * MIB, now_ms),
            iterator_calls: TokenBucket::new(5.0, 5.0, now_ms),
            meter: Default::default(),
        }
    }

    pub fn meta(&self) -> ShardMeta {
        ShardMeta {
            index: self.index,
            start_hash: self.start_hash.to_string(),
            end_hash: self.end_hash.to_string(),
            parent: self.parent.clone(),
            adjacent_parent: self.adjacent_parent.clone(),
            created_ms: self.created_ms,
            closed: self.closed(),
            owner: self.owner,
        }
    }

    /// The shard's log, or the error that sends the request to the pod that owns it.
    pub fn local_log(&self) -> Result<&ShardLog, crate::protocol::AwsError> {
        self.log
            .as_ref()
            .ok_or_else(|| super::errors::not_local(self.owner.unwrap_or(0)))
    }

    /// End offset and close time, once closed by a reshard.
    pub fn closed(&self) -> Option<(u64, i64)> {
        *self.closed.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_open(&self) -> bool {
        self.closed().is_none()
    }

    pub fn set_closed(&self, end_offset: u64, at_ms: i64) {
        *self.closed.lock().unwrap_or_else(|e| e.into_inner()) = Some((end_offset, at_ms));
    }

    pub fn contains(&self, hash: u128) -> bool {
        self.start_hash <= hash && hash <= self.end_hash
    }
}

/// The shards of a stream: every shard still listed, and the open ones sorted by hash range.
#[derive(Default)]
pub struct ShardSet {
    pub all: Vec<Arc<Shard>>,
    pub open: Vec<Arc<Shard>>,
}

impl ShardSet {
    pub fn rebuild_open(&mut self) {
        let mut open: Vec<Arc<Shard>> = self.all.iter().filter(|s| s.is_open()).cloned().collect();
        open.sort_by_key(|s| s.start_hash);
        self.open = open;
    }

    /// The one open shard, when there is one and it covers the whole key space.
    pub fn only_open(&self) -> Option<&Arc<Shard>> {
        match &self.open[..] {
            [s] if s.start_hash == 0 && s.end_hash == u128::MAX => Some(s),
            _ => None,
        }
    }

    /// The open shard whose hash range contains `hash`.
    pub fn route(&self, hash: u128) -> Option<&Arc<Shard>> {
        let i = self.open.partition_point(|s| s.start_hash <= hash);
        let s = self.open.get(i.checked_sub(1)?)?;
        s.contains(hash).then_some(s)
    }

    pub fn by_index(&self, index: u32) -> Option<&Arc<Shard>> {
        let i = self.all.binary_search_by_key(&index, |s| s.index).ok()?;
        self.all.get(i)
    }
}

/// A Kinesis data stream.
pub struct Stream {
    pub name: String,
    pub arn: String,
    pub incarnation: u64,
    pub created_ms: i64,
    pub dir: Option<PathBuf>,
    pub state: Mutex<StreamState>,
    pub shards: RwLock<ShardSet>,
    /// Serialises control-plane changes of this stream (reshards, settings) with persistence.
    pub control: tokio::sync::Mutex<()>,
    /// The log of the shards this node holds, opened with the first of them (shards whose
    /// own log directory exists, from before the stream log, keep using it).
    /// Opened under the lock, so that two callers never open the directory twice.
    pub log: Mutex<Option<crate::storage::StreamLog>>,
}

impl Stream {
    pub fn state(&self) -> std::sync::MutexGuard<'_, StreamState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn shard_set(&self) -> std::sync::RwLockReadGuard<'_, ShardSet> {
        self.shards.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn status(&self) -> StreamStatus {
        self.state().status
    }

    pub fn all_shards(&self) -> Vec<Arc<Shard>> {
        self.shard_set().all.clone()
    }

    /// Sets the open and closed shard gauges of this stream.
    pub fn publish_shard_metrics(&self) {
        let m = crate::metrics::global();
        let set = self.shard_set();
        m.open_shards
            .with_label_values(&[&self.name])
            .set(set.open.len() as i64);
        m.closed_shards
            .with_label_values(&[&self.name])
            .set((set.all.len() - set.open.len()) as i64);
    }

    pub fn open_shard_count(&self) -> usize {
        self.shard_set().open.len()
    }

    pub fn shard(&self, index: u32) -> Option<Arc<Shard>> {
        self.shard_set().by_index(index).cloned()
    }

    /// The sequence number of the record at `offset`. Record numbers start one above the
    /// shard's StartingSequenceNumber, so "after the starting number" is the first record and a
    /// continuation point can always be written as a sequence number.
    pub fn sequence(&self, shard_index: u32, offset: u64) -> u128 {
        seq::encode(self.incarnation, shard_index, offset + 1)
    }

    /// The sequence number just before the record at `offset` (a continuation point:
    /// AFTER_SEQUENCE_NUMBER with it resumes at `offset`).
    pub fn position(&self, shard_index: u32, offset: u64) -> u128 {
        seq::encode(self.incarnation, shard_index, offset)
    }

    /// The sequence number ranges Kinesis reports for a shard.
    pub fn sequence_range(&self, shard: &Shard) -> (u128, Option<u128>) {
        let start = self.position(shard.index, 0);
        let end = shard
            .closed()
            .map(|(end, _)| self.position(shard.index, end));
        (start, end)
    }

    pub fn meta(&self) -> StreamMeta {
        StreamMeta {
            name: self.name.clone(),
            incarnation: self.incarnation,
            created_ms: self.created_ms,
            state: self.state().clone(),
            shards: self.shard_set().all.iter().map(|s| s.meta()).collect(),
        }
    }

    /// Writes `stream.json` atomically: temporary file, fsync, rename, fsync of the directory.
    pub fn persist(&self) -> Result<(), StorageError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let meta = self.meta();
        write_atomic(
            &dir.join("stream.json"),
            &serde_json::to_vec_pretty(&meta).unwrap_or_default(),
        )
    }

    /// The stream log, if it was opened.
    pub fn opened_log(&self) -> Option<crate::storage::StreamLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Where the stream log of the shards held here lives.
    pub fn log_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("log"))
    }

    pub fn shard_dir(&self, index: u32) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join("shards").join(format!("{index:06}")))
    }
}

pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StorageError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
    f.write_all(data).map_err(|e| StorageError::io(&tmp, e))?;
    f.sync_all().map_err(|e| StorageError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| StorageError::io(path, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_resolve_like_kinesis() {
        assert_eq!(parse_shard_id("shardId-000000000001"), Some(1));
        assert_eq!(parse_shard_id("shard-5"), Some(5));
        assert_eq!(parse_shard_id("7"), Some(7));
        assert_eq!(parse_shard_id("-00002147483647"), Some(2147483647));
        assert_eq!(parse_shard_id("2147483648"), None);
        assert_eq!(parse_shard_id("ABKLFD8"), None);
        assert_eq!(parse_shard_id("shardId-"), None);
        assert_eq!(shard_id(3), "shardId-000000000003");
    }

    /// A stream with one open shard sends every record to it without hashing its partition
    /// key; once it has more, records route by the MD5 of their key or by their explicit hash
    /// key, as in Kinesis.
    #[tokio::test]
    async fn one_open_shard_takes_every_record_and_more_route_by_hash_key() {
        use crate::clock::Clock;
        use crate::streams::{hash, CreateStream, PutEntry, PutOutcome, Streams, StreamsConfig};
        use bytes::Bytes;

        let engine = Streams::open(StreamsConfig::default(), Clock::default())
            .await
            .unwrap();
        engine
            .create_stream(CreateStream {
                name: "r".into(),
                shard_count: Some(1),
                mode: StreamMode::Provisioned,
                tags: Default::default(),
                max_record_kib: None,
                retention_hours: None,
            })
            .await
            .unwrap();
        let stream = engine.get("r").unwrap();
        // Keys on either side of the middle of the key space.
        let low = (0..)
            .map(|i| format!("k{i}"))
            .find(|k| hash::hash_key(k) < 1 << 127)
            .unwrap();
        let high = (0..)
            .map(|i| format!("k{i}"))
            .find(|k| hash::hash_key(k) >= 1 << 127)
            .unwrap();
        let entry = |key: &str, hash: Option<u128>| PutEntry {
            partition_key: Bytes::from(key.to_string()),
            data: Bytes::from_static(b"x"),
            hash,
        };
        let shards = |out: Vec<PutOutcome>| -> Vec<String> {
            out.into_iter()
                .map(|o| match o {
                    PutOutcome::Ok { shard_id, .. } => shard_id.to_string(),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        assert!(stream.shard_set().only_open().is_some());
        let out = engine
            .put(&stream, &[entry(&low, None), entry(&high, None)])
            .await;
        assert_eq!(shards(out), ["shardId-000000000000"; 2]);

        let wait = std::time::Instant::now();
        while engine
            .split_shard(&stream, "shardId-000000000000", 1 << 127)
            .await
            .is_err()
        {
            assert!(
                wait.elapsed().as_secs() < 10,
                "the stream never became active"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(stream.shard_set().only_open().is_none());
        let out = engine
            .put(
                &stream,
                &[
                    entry(&low, None),
                    entry(&high, None),
                    entry(&low, Some(u128::MAX)),
                    entry(&high, Some(0)),
                ],
            )
            .await;
        assert_eq!(
            shards(out),
            [
                "shardId-000000000001",
                "shardId-000000000002",
                "shardId-000000000002",
                "shardId-000000000001"
            ]
        );
        assert_eq!(entry(&low, None).hash_key(), hash::hash_key(&low));
    }

    /// Streams written before the stream log have a log per shard: they keep it, and their
    /// records stay readable and writable; new streams write one log.
    #[tokio::test]
    async fn a_shard_with_a_log_of_its_own_keeps_it_and_new_streams_write_one_log() {
        use crate::clock::Clock;
        use crate::storage::{RecordIn, StorageConfig};
        use crate::streams::{CreateStream, PutEntry, PutOutcome, Streams, StreamsConfig};
        use bytes::Bytes;

        let dir = tempfile::tempdir().unwrap();
        let cfg = StreamsConfig {
            data_dir: Some(dir.path().to_path_buf()),
            iterator_key: Some([7; 32]),
            ..StreamsConfig::default()
        };
        let create = |name: &str| CreateStream {
            name: name.into(),
            shard_count: Some(1),
            mode: StreamMode::Provisioned,
            tags: Default::default(),
            max_record_kib: None,
            retention_hours: None,
        };
        let put = |engine: Arc<Streams>, name: &'static str, data: &'static str| async move {
            let stream = engine.get(name).unwrap();
            let entry = PutEntry {
                partition_key: Bytes::from_static(b"k"),
                data: Bytes::from_static(data.as_bytes()),
                hash: Some(1),
            };
            let out = engine.put(&stream, &[entry]).await;
            assert!(matches!(out[0], PutOutcome::Ok { .. }), "{out:?}");
        };
        let data = |engine: &Streams, name: &str| -> Vec<Bytes> {
            let stream = engine.get(name).unwrap();
            let shard = stream.shard(0).unwrap();
            let log = shard.local_log().unwrap();
            let batch = log.read(0, 100, 1 << 20).unwrap();
            batch.records.into_iter().map(|r| r.data).collect()
        };

        let engine = Streams::open(cfg.clone(), Clock::default()).await.unwrap();
        engine.create_stream(create("legacy")).await.unwrap();
        engine.create_stream(create("current")).await.unwrap();
        let legacy = engine.get("legacy").unwrap().dir.clone().unwrap();
        let current = engine.get("current").unwrap().dir.clone().unwrap();
        put(engine.clone(), "current", "c0").await;
        engine.shutdown().await;
        drop(engine);

        // "legacy" as an older version left it: shard 0's records in a log of its own.
        std::fs::remove_dir_all(legacy.join("log")).unwrap();
        let storage = StorageConfig {
            dir: Some(legacy.join("shards/000000")),
            ..StorageConfig::default()
        };
        let own = crate::storage::ShardLog::open(storage, Clock::default(), 0, false).unwrap();
        let rec = |d: &'static str| RecordIn {
            partition_key: Bytes::from_static(b"k"),
            data: Bytes::from_static(d.as_bytes()),
        };
        own.append(vec![rec("l0"), rec("l1")], 0).await.unwrap();
        own.shutdown().await;
        drop(own);

        let engine = Streams::open(cfg, Clock::default()).await.unwrap();
        put(engine.clone(), "legacy", "l2").await;
        put(engine.clone(), "current", "c1").await;
        assert_eq!(data(&engine, "legacy"), ["l0", "l1", "l2"]);
        assert_eq!(data(&engine, "current"), ["c0", "c1"]);
        // Each stream kept its layout.
        assert!(!legacy.join("log").exists());
        assert!(current.join("log").exists() && !current.join("shards/000000").exists());
        engine.shutdown().await;
    }
}
