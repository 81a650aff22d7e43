//! The streams engine: stream and shard state, routing, iterators, limits and resharding, on
//! top of the shard logs in `storage`. Services call this; it knows nothing of HTTP or codecs.

pub mod autoscale;
pub mod errors;
pub mod fanout;
pub mod hash;
pub mod iterator;
pub mod limits;
pub mod placement;
mod reshard;
pub mod seq;
pub mod shard_read;
pub mod stream;

pub use stream::{
    parse_shard_id, shard_id, Consumer, ConsumerStatus, Shard, ShardMeta, Stream, StreamMode,
    StreamState, StreamStatus,
};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;

use crate::clock::Clock;
use crate::protocol::AwsError;
use crate::storage::{
    RecordIn, ShardLog, StorageConfig, StorageError, StoredRecord, StreamLog, FLAG_ENCRYPTED,
};
use iterator::{IteratorKey, IteratorToken, ITERATOR_TTL_MS};
use limits::TokenBucket;
use stream::{write_atomic, ShardSet, StreamMeta};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    pub region: String,
    pub account_id: String,
    /// Root of persisted data; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// Segment settings applied to every shard log (its `dir` is set per shard).
    pub storage: StorageConfig,
    /// Enforce Kinesis's throughput and control-plane limits.
    pub limits: bool,
    /// Open shards allowed per account.
    pub shard_limit: u64,
    /// ON_DEMAND streams allowed per account.
    pub on_demand_stream_limit: u64,
    /// Shards an ON_DEMAND stream starts with (AWS: 4).
    pub on_demand_initial_shards: u32,
    /// How long a stream stays CREATING, DELETING and UPDATING (0: transitions are immediate).
    pub create_delay_ms: u64,
    pub delete_delay_ms: u64,
    pub update_delay_ms: u64,
    /// How long a SubscribeToShard subscription lasts (AWS: 5 minutes).
    pub subscription_lifetime_ms: u64,
    /// Streams served by other endpoints (`--stream-endpoint`).
    pub remote: crate::remote::RemoteConfig,
    /// Cluster mode: this pod's ordinal (it holds the logs of the shards it owns).
    pub cluster_ordinal: Option<u32>,
    /// Key of shard iterators; `None` keeps one per data directory (`iterator.key`). In
    /// cluster mode every pod derives the same key from the cluster secret.
    pub iterator_key: Option<[u8; 32]>,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            data_dir: None,
            storage: StorageConfig::default(),
            limits: true,
            shard_limit: 20_000,
            on_demand_stream_limit: 50,
            on_demand_initial_shards: 4,
            create_delay_ms: 0,
            delete_delay_ms: 0,
            update_delay_ms: 0,
            subscription_lifetime_ms: 300_000,
            remote: crate::remote::RemoteConfig::default(),
            cluster_ordinal: None,
            iterator_key: None,
        }
    }
}

/// Parameters of CreateStream.
#[derive(Debug, Clone)]
pub struct CreateStream {
    pub name: String,
    pub shard_count: Option<u32>,
    pub mode: StreamMode,
    pub tags: BTreeMap<String, String>,
    pub max_record_kib: Option<u32>,
    pub retention_hours: Option<u32>,
}

/// A record to put (the partition key as UTF-8 bytes).
#[derive(Debug, Clone)]
pub struct PutEntry {
    pub partition_key: Bytes,
    pub data: Bytes,
    /// The hash key to route by: an ExplicitHashKey, or `None` for the MD5 of the partition
    /// key, which is only worked out when the stream has more than one open shard.
    pub hash: Option<u128>,
}

impl PutEntry {
    /// The hash key the record routes by.
    pub fn hash_key(&self) -> u128 {
        self.hash
            .unwrap_or_else(|| hash::hash_key_bytes(&self.partition_key))
    }
}

/// The outcome of one record of a put.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    /// The shard id is shared by the records of a put that landed in one shard.
    Ok {
        shard_id: Arc<str>,
        sequence: u128,
    },
    Failed {
        code: &'static str,
        message: String,
    },
}

/// Where a GetShardIterator call starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StartPosition {
    AtSequence(u128),
    AfterSequence(u128),
    TrimHorizon,
    Latest,
    AtTimestamp(i64),
}

/// A child shard as GetRecords reports it at the end of a closed shard.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildShard {
    pub shard_id: String,
    pub parents: Vec<String>,
    pub start_hash: u128,
    pub end_hash: u128,
}

/// Result of GetRecords.
pub struct RecordsOut {
    pub stream: Arc<Stream>,
    pub shard: Arc<Shard>,
    pub records: Vec<(u128, StoredRecord)>,
    pub next_iterator: Option<String>,
    pub millis_behind_latest: i64,
    pub child_shards: Option<Vec<ChildShard>>,
    pub bytes: usize,
}

/// Every stream of the account, by name.
pub struct Streams {
    pub cfg: StreamsConfig,
    pub clock: Clock,
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    by_incarnation: RwLock<HashMap<u64, Arc<Stream>>>,
    key: IteratorKey,
    control_rates: Mutex<HashMap<&'static str, TokenBucket>>,
    /// Serialises stream creation and deletion (names, quotas).
    lifecycle: tokio::sync::Mutex<()>,
    /// Live SubscribeToShard calls.
    pub subscriptions: fanout::Subscriptions,
    /// Account-level settings (the minimum throughput billing commitment).
    pub account_settings: Mutex<AccountSettings>,
    /// Streams served by other endpoints, read and written through the Kinesis API.
    pub remote: crate::remote::Remotes,
    /// Cluster mode: how shards held by other pods are written and sealed.
    pub placement: OnceLock<Arc<dyn placement::Placement>>,
    /// Cluster mode: shards (incarnation, index) sealed by the coordinator before this pod's
    /// metadata named them.
    sealed_early: Mutex<std::collections::HashSet<(u64, u32)>>,
    /// Cluster mode: held while a snapshot is applied, so a seal finds a shard either before
    /// the application (sealed early) or after it (sealed in its log), never in between.
    replica_apply: tokio::sync::Mutex<()>,
}

/// The account's minimum throughput billing commitment ("On-demand Advantage").
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AccountSettings {
    pub commitment_status: Option<String>,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub earliest_end_ms: Option<i64>,
}

impl AccountSettings {
    /// ENABLED, DISABLED or ENABLED_UNTIL_EARLIEST_ALLOWED_END as of `now`.
    pub fn status(&self, now: i64) -> &'static str {
        match self.commitment_status.as_deref() {
            Some("ENABLED") => "ENABLED",
            Some("ENDING") if self.earliest_end_ms.is_some_and(|t| now < t) => {
                "ENABLED_UNTIL_EARLIEST_ALLOWED_END"
            }
            _ => "DISABLED",
        }
    }
}

/// A stream has at most 20 registered consumers.
pub const MAX_CONSUMERS: usize = 20;

/// GetRecords returns at most 10 MiB per call.
pub const GET_RECORDS_MAX_BYTES: usize = 10 * 1024 * 1024;

impl Streams {
    /// Opens the engine, loading every persisted stream and recovering its shard logs.
    pub async fn open(cfg: StreamsConfig, clock: Clock) -> Result<Arc<Streams>, StorageError> {
        let key = match (&cfg.iterator_key, &cfg.data_dir) {
            (Some(key), _) => *key,
            (None, Some(dir)) => load_or_create_secret(dir)?,
            (None, None) => rand::random(),
        };
        let remote = crate::remote::Remotes::new(&cfg.remote);
        let engine = Arc::new(Streams {
            cfg,
            clock,
            streams: RwLock::new(BTreeMap::new()),
            by_incarnation: RwLock::new(HashMap::new()),
            key: IteratorKey::new(key),
            control_rates: Mutex::new(HashMap::new()),
            lifecycle: tokio::sync::Mutex::new(()),
            subscriptions: fanout::Subscriptions::default(),
            account_settings: Mutex::new(AccountSettings::default()),
            remote,
            placement: OnceLock::new(),
            sealed_early: Mutex::default(),
            replica_apply: tokio::sync::Mutex::new(()),
        });
        if let Some(dir) = &engine.cfg.data_dir {
            if let Ok(raw) = std::fs::read(dir.join("account.json")) {
                if let Ok(settings) = serde_json::from_slice(&raw) {
                    *engine
                        .account_settings
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = settings;
                }
            }
        }
        engine.load().await?;
        Ok(engine)
    }

    fn streams_dir(&self) -> Option<PathBuf> {
        self.cfg.data_dir.as_ref().map(|d| d.join("streams"))
    }

    async fn load(self: &Arc<Self>) -> Result<(), StorageError> {
        let Some(root) = self.streams_dir() else {
            return Ok(());
        };
        if !root.exists() {
            return Ok(());
        }
        let entries = std::fs::read_dir(&root).map_err(|e| StorageError::io(&root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(&root, e))?;
            let dir = entry.path();
            let meta_path = dir.join("stream.json");
            let Ok(raw) = std::fs::read(&meta_path) else {
                // A directory without metadata is a stream whose creation never completed.
                tracing::warn!(dir = %dir.display(), "Removing a stream directory without metadata.");
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            };
            let meta: StreamMeta = serde_json::from_slice(&raw).map_err(|e| {
                StorageError::io(
                    &meta_path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            })?;
            if meta.state.status == StreamStatus::Deleting {
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            }
            let stream = self.build_stream(meta, Some(dir))?;
            {
                let mut st = stream.state();
                if matches!(st.status, StreamStatus::Creating | StreamStatus::Updating) {
                    st.status = StreamStatus::Active;
                }
                for c in st.consumers.iter_mut() {
                    if c.status == ConsumerStatus::Creating {
                        c.status = ConsumerStatus::Active;
                    }
                }
                st.consumers
                    .retain(|c| c.status != ConsumerStatus::Deleting);
            }
            tracing::info!(stream = %stream.name, shards = stream.all_shards().len(), "Recovered stream.");
            stream.publish_shard_metrics();
            self.insert(stream);
        }
        Ok(())
    }

    fn build_stream(
        &self,
        meta: StreamMeta,
        dir: Option<PathBuf>,
    ) -> Result<Arc<Stream>, StorageError> {
        let now = self.clock.now_ms();
        let stream = Stream {
            arn: self.stream_arn(&meta.name),
            name: meta.name.clone(),
            incarnation: meta.incarnation,
            created_ms: meta.created_ms,
            dir,
            state: Mutex::new(meta.state.clone()),
            shards: RwLock::new(ShardSet::default()),
            control: tokio::sync::Mutex::new(()),
            log: Mutex::new(None),
        };
        let mut set = ShardSet::default();
        for sm in &meta.shards {
            let log = if self.holds(sm) {
                Some(self.open_log(&stream, sm.index, sm.closed.is_some())?)
            } else {
                None
            };
            set.all.push(Arc::new(Shard::new(sm, log, now)));
        }
        set.all.sort_by_key(|s| s.index);
        set.rebuild_open();
        *stream.shards.write().unwrap_or_else(|e| e.into_inner()) = set;
        Ok(Arc::new(stream))
    }

    fn open_log(
        &self,
        stream: &Stream,
        index: u32,
        closed: bool,
    ) -> Result<ShardLog, StorageError> {
        let mut cfg = self.cfg.storage.clone();
        // A shard with a log of its own (written before stream logs) keeps it.
        if let Some(dir) = stream.shard_dir(index).filter(|d| d.exists()) {
            cfg.dir = Some(dir);
            return ShardLog::open(cfg, self.clock.clone(), 0, closed);
        }
        let mut slot = stream.log.lock().unwrap_or_else(|e| e.into_inner());
        let log = match &*slot {
            Some(log) => log.clone(),
            None => {
                cfg.dir = stream.log_dir();
                slot.insert(StreamLog::open(cfg, self.clock.clone())?)
                    .clone()
            }
        };
        Ok(log.shard(index + 1, 0, closed))
    }

    fn insert(&self, stream: Arc<Stream>) {
        self.by_incarnation
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stream.incarnation, stream.clone());
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stream.name.clone(), stream);
    }

    pub fn account(&self) -> &str {
        &self.cfg.account_id
    }

    pub fn stream_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:kinesis:{}:{}:stream/{}",
            self.cfg.region, self.cfg.account_id, name
        )
    }

    /// Admits a control-plane call under AWS's per-account rate for `op` (calls per second).
    pub fn admit(&self, op: &'static str, per_second: f64) -> Result<(), AwsError> {
        if !self.cfg.limits {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let mut rates = self.control_rates.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = rates
            .entry(op)
            .or_insert_with(|| TokenBucket::new(per_second, per_second, now));
        if bucket.try_take(1.0, now) {
            Ok(())
        } else {
            Err(errors::rate_limited(op, &self.cfg.account_id))
        }
    }

    pub fn list(&self) -> Vec<Arc<Stream>> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn find(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub fn get(&self, name: &str) -> Result<Arc<Stream>, AwsError> {
        self.find(name)
            .ok_or_else(|| errors::stream_not_found(name, &self.cfg.account_id))
    }

    /// The stream named by `StreamName` or `StreamARN` (either may be given; if both, they
    /// must agree).
    pub fn resolve(&self, name: Option<&str>, arn: Option<&str>) -> Result<Arc<Stream>, AwsError> {
        let from_arn = match arn {
            Some(arn) => {
                let prefix = format!(
                    "arn:aws:kinesis:{}:{}:stream/",
                    self.cfg.region, self.cfg.account_id
                );
                match arn.strip_prefix(&prefix) {
                    Some(n) => Some(n),
                    None => {
                        return Err(errors::stream_not_found(
                            arn.rsplit('/').next().unwrap_or(arn),
                            &self.cfg.account_id,
                        ))
                    }
                }
            }
            None => None,
        };
        match (name, from_arn) {
            (Some(n), Some(a)) if n != a => Err(errors::invalid_argument(format!(
                "StreamName {n} and StreamARN {} do not refer to the same stream.",
                arn.unwrap_or_default()
            ))),
            (Some(n), _) => self.get(n),
            (None, Some(a)) => self.get(a),
            (None, None) => Err(errors::invalid_argument(
                "Either StreamName or StreamARN should be provided.",
            )),
        }
    }

    /// A stream that serves reads and writes (ACTIVE or UPDATING); otherwise not found, as AWS.
    pub fn resolve_for_data(
        &self,
        name: Option<&str>,
        arn: Option<&str>,
    ) -> Result<Arc<Stream>, AwsError> {
        let s = self.resolve(name, arn)?;
        if !s.status().serves_data() {
            return Err(errors::stream_not_found(&s.name, &self.cfg.account_id));
        }
        Ok(s)
    }

    fn open_shards_total(&self) -> u64 {
        self.list()
            .iter()
            .map(|s| s.open_shard_count() as u64)
            .sum()
    }

    pub fn on_demand_count(&self) -> u64 {
        self.list()
            .iter()
            .filter(|s| s.state().mode == StreamMode::OnDemand)
            .count() as u64
    }

    pub fn shard_limit_status(&self) -> (u64, u64) {
        (self.open_shards_total(), self.cfg.shard_limit)
    }

    /// CreateStream.
    ///
    /// 1. Under the lifecycle lock, refuse a taken name and check the shard quota.
    /// 2. Create the directory and every shard log, then persist `stream.json` (the commit
    ///    point: a directory without it is removed at the next start).
    /// 3. Publish the stream as CREATING, then ACTIVE after the configured delay.
    pub async fn create_stream(self: &Arc<Self>, req: CreateStream) -> Result<(), AwsError> {
        let _guard = self.lifecycle.lock().await;
        if self.find(&req.name).is_some() {
            return Err(errors::stream_exists(&req.name, &self.cfg.account_id));
        }
        let shard_count = match req.mode {
            StreamMode::OnDemand => self.cfg.on_demand_initial_shards,
            StreamMode::Provisioned => req.shard_count.unwrap_or(1),
        };
        if self.cfg.limits {
            let open = self.open_shards_total();
            if open + u64::from(shard_count) > self.cfg.shard_limit {
                return Err(errors::shard_limit(
                    &self.cfg.account_id,
                    &self.cfg.region,
                    open,
                    self.cfg.shard_limit,
                    u64::from(shard_count),
                ));
            }
            if req.mode == StreamMode::OnDemand
                && self.on_demand_count() >= self.cfg.on_demand_stream_limit
            {
                return Err(errors::limit_exceeded(format!(
                    "This request would exceed the on-demand stream count limit for the account {} in {}.",
                    self.cfg.account_id, self.cfg.region
                )));
            }
        }
        let now = self.clock.now_ms();
        let incarnation = loop {
            let v: u64 = rand::random();
            if v != 0
                && !self
                    .by_incarnation
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains_key(&v)
            {
                break v;
            }
        };
        let owners = self.choose_owners(&[], shard_count as usize);
        let shards = hash::even_ranges(shard_count)
            .into_iter()
            .enumerate()
            .map(|(i, (s, e))| ShardMeta {
                index: i as u32,
                start_hash: s.to_string(),
                end_hash: e.to_string(),
                parent: None,
                adjacent_parent: None,
                created_ms: now,
                closed: None,
                owner: owners.get(i).copied(),
            })
            .collect();
        let meta = StreamMeta {
            name: req.name.clone(),
            incarnation,
            created_ms: now,
            state: StreamState {
                status: if self.cfg.create_delay_ms == 0 {
                    StreamStatus::Active
                } else {
                    StreamStatus::Creating
                },
                retention_hours: req.retention_hours.unwrap_or(24),
                mode: req.mode,
                tags: req.tags,
                encryption_key: None,
                enhanced_metrics: BTreeSet::new(),
                max_record_kib: req.max_record_kib.unwrap_or(1024),
                consumers: Vec::new(),
                shard_count_updates: Vec::new(),
                next_shard_index: shard_count,
                policies: BTreeMap::new(),
                warm_throughput_mibps: None,
            },
            shards,
        };
        let dir = self
            .streams_dir()
            .map(|d| d.join(format!("{incarnation:016x}")));
        let stream = self.build_stream(meta, dir).map_err(storage_error)?;
        stream.persist().map_err(storage_error)?;
        stream.publish_shard_metrics();
        self.insert(stream.clone());
        if self.cfg.create_delay_ms > 0 {
            let delay = self.cfg.create_delay_ms;
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                let _c = stream.control.lock().await;
                {
                    let mut st = stream.state();
                    if st.status == StreamStatus::Creating {
                        st.status = StreamStatus::Active;
                    }
                }
                let _ = stream.persist();
            });
        }
        Ok(())
    }

    /// DeleteStream: DELETING at once (persisted), then the data is removed after the delay.
    pub async fn delete_stream(
        self: &Arc<Self>,
        stream: Arc<Stream>,
        enforce_consumer_deletion: bool,
    ) -> Result<(), AwsError> {
        let _guard = self.lifecycle.lock().await;
        {
            let mut st = stream.state();
            if !enforce_consumer_deletion && !st.consumers.is_empty() {
                return Err(errors::in_use(format!(
                    "Stream {} under account {} has registered consumers.",
                    stream.name, self.cfg.account_id
                )));
            }
            if st.status == StreamStatus::Deleting {
                return Ok(());
            }
            st.status = StreamStatus::Deleting;
            for c in st.consumers.iter_mut() {
                c.status = ConsumerStatus::Deleting;
            }
        }
        stream.persist().map_err(storage_error)?;
        let engine = self.clone();
        let delay = self.cfg.delete_delay_ms;
        let task = async move {
            if delay > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            }
            engine.remove(&stream).await;
        };
        if delay == 0 {
            task.await;
        } else {
            tokio::spawn(task);
        }
        Ok(())
    }

    async fn remove(&self, stream: &Arc<Stream>) {
        {
            let mut map = self.streams.write().unwrap_or_else(|e| e.into_inner());
            if map
                .get(&stream.name)
                .is_some_and(|s| Arc::ptr_eq(s, stream))
            {
                map.remove(&stream.name);
            }
        }
        self.by_incarnation
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&stream.incarnation);
        for shard in stream.all_shards() {
            let Some(log) = &shard.log else { continue };
            if let Err(e) = log.destroy().await {
                tracing::error!(error = %e, stream = %stream.name, "Could not delete shard data.");
            }
        }
        if let Some(log) = stream.opened_log() {
            log.shutdown().await;
        }
        if let Some(dir) = &stream.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Writes records, each to the open shard owning its hash key. Results are in request
    /// order. Records over a shard's write limit fail with ProvisionedThroughputExceeded; the
    /// others are durable when this returns. In cluster mode a shard another pod holds is
    /// written there; a refusal that a newer view of the shards can fix (the shard was sealed
    /// by a reshard, the owner does not know it yet) is routed again after a short wait.
    pub async fn put(&self, stream: &Arc<Stream>, entries: &[PutEntry]) -> Vec<PutOutcome> {
        let flags = if stream.state().encryption_key.is_some() {
            FLAG_ENCRYPTED
        } else {
            0
        };
        let clustered = self.placement.get().is_some();
        let internal = || PutOutcome::Failed {
            code: errors::INTERNAL_FAILURE,
            message: "Internal service failure.".into(),
        };
        let mut results: Vec<Option<PutOutcome>> = vec![None; entries.len()];
        let mut pending: Vec<usize> = (0..entries.len()).collect();
        // About 5 seconds of re-routing in cluster mode, however long each refusal takes (an
        // owner that cannot be reached takes a connect timeout to refuse).
        let attempts = if clustered { 100 } else { 20 };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        for attempt in 0..attempts {
            if pending.is_empty()
                || (clustered && attempt > 0 && std::time::Instant::now() >= deadline)
            {
                break;
            }
            // Group by shard, in request order within each shard.
            let mut groups: Vec<(Arc<Shard>, Vec<usize>)> = Vec::new();
            let mut again = Vec::new();
            {
                let set = stream.shard_set();
                // With one open shard over the whole key space, every record goes to it,
                // whatever its hash key.
                let only = set.only_open();
                for &i in &pending {
                    let Some(shard) = only.or_else(|| set.route(entries[i].hash_key())) else {
                        // Between a seal and the metadata naming the children.
                        if clustered {
                            again.push(i);
                        } else {
                            results[i] = Some(internal());
                        }
                        continue;
                    };
                    match groups.iter_mut().find(|(s, _)| s.index == shard.index) {
                        Some((_, v)) => v.push(i),
                        None => groups.push((shard.clone(), vec![i])),
                    }
                }
            }
            pending = again;
            let appends = groups.iter().map(|(shard, idx)| {
                let records: Vec<RecordIn> = idx
                    .iter()
                    .map(|&i| RecordIn {
                        partition_key: entries[i].partition_key.clone(),
                        data: entries[i].data.clone(),
                    })
                    .collect();
                self.append_to(stream, shard, records, flags)
            });
            let outcomes = futures_util::future::join_all(appends).await;
            for ((shard, idx), outcome) in groups.iter().zip(outcomes) {
                match outcome {
                    Ok(offsets) => {
                        let shard_id: Arc<str> = Arc::from(shard.id.as_str());
                        for (&i, offset) in idx.iter().zip(offsets) {
                            results[i] = Some(match offset {
                                Some(off) => PutOutcome::Ok {
                                    shard_id: shard_id.clone(),
                                    sequence: stream.sequence(shard.index, off),
                                },
                                None => PutOutcome::Failed {
                                    code: errors::THROUGHPUT_EXCEEDED,
                                    message: errors::rate_exceeded_for_shard(
                                        &shard.id,
                                        &stream.name,
                                        &self.cfg.account_id,
                                    ),
                                },
                            });
                        }
                    }
                    // The shard closed under a reshard: route again to its children.
                    Err(placement::AppendFailure::Retry) => pending.extend(idx.iter().copied()),
                    Err(placement::AppendFailure::Failed) => {
                        for &i in idx {
                            results[i] = Some(internal());
                        }
                    }
                }
            }
            pending.sort_unstable();
            if !pending.is_empty() {
                if clustered {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(internal))
            .collect()
    }

    /// Appends records to one shard: here when this process holds its log, otherwise at the
    /// pod that owns it. Each record gets its offset, or `None` when over the write limit.
    async fn append_to(
        &self,
        stream: &Arc<Stream>,
        shard: &Arc<Shard>,
        records: Vec<RecordIn>,
        flags: u8,
    ) -> Result<Vec<Option<u64>>, placement::AppendFailure> {
        match (&shard.log, self.placement.get()) {
            (None, Some(p)) => {
                p.append(
                    shard.owner.unwrap_or(0),
                    stream,
                    shard.index,
                    records,
                    flags,
                )
                .await
            }
            _ => self.append_local(stream, shard, records, flags).await,
        }
    }

    /// GetShardIterator.
    pub fn shard_iterator(
        &self,
        stream: &Arc<Stream>,
        shard: &Arc<Shard>,
        position: StartPosition,
        raw_sequence: Option<&str>,
    ) -> Result<String, AwsError> {
        shard.local_log()?;
        let now = self.clock.now_ms();
        if self.cfg.limits && !shard.iterator_calls.try_take(1.0, now) {
            return Err(errors::throughput_exceeded(
                &shard.id,
                &stream.name,
                &self.cfg.account_id,
            ));
        }
        let offset = self.start_offset(stream, shard, position, raw_sequence)?;
        Ok(self.key.encode(&IteratorToken {
            incarnation: stream.incarnation,
            shard_index: shard.index,
            offset,
            issued_ms: now,
        }))
    }

    /// The offset a reader starting at `position` begins at (GetShardIterator and
    /// SubscribeToShard share these rules).
    pub fn start_offset(
        &self,
        stream: &Arc<Stream>,
        shard: &Arc<Shard>,
        position: StartPosition,
        raw_sequence: Option<&str>,
    ) -> Result<u64, AwsError> {
        let log = shard.local_log()?;
        let now = self.clock.now_ms();
        let offset_of = |seq_num: u128| -> Result<u64, AwsError> {
            let raw = raw_sequence.unwrap_or_default();
            let invalid = || {
                errors::invalid_argument(format!(
                    "StartingSequenceNumber {raw} used in GetShardIterator on shard {} in stream {} under account {} is invalid.",
                    shard.id, stream.name, self.cfg.account_id
                ))
            };
            let (inc, idx, off) = seq::decode(seq_num).ok_or_else(invalid)?;
            if inc != stream.incarnation as u32 {
                return Err(errors::invalid_argument(format!(
                    "StartingSequenceNumber {raw} used in GetShardIterator on shard {} in stream {} under account {} is invalid because it did not come from this stream.",
                    shard.id, stream.name, self.cfg.account_id
                )));
            }
            if idx != shard.index {
                return Err(errors::invalid_argument(format!(
                    "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {}",
                    shard_id(idx),
                    shard.id
                )));
            }
            Ok(off)
        };
        let offset = match position {
            // Record k has number position(k + 1); the shard's starting number is position 0.
            StartPosition::AtSequence(s) => offset_of(s)?.saturating_sub(1),
            StartPosition::AfterSequence(s) => offset_of(s)?,
            StartPosition::TrimHorizon => log.start_offset(),
            StartPosition::Latest => log.end_offset(),
            StartPosition::AtTimestamp(ts) => {
                if ts > now {
                    return Err(errors::invalid_argument(format!(
                        "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: {ts}, currentTimestampInMillis: {now}"
                    )));
                }
                log.offset_for_timestamp(ts).map_err(storage_error)?
            }
        };
        Ok(offset)
    }

    /// Decodes an iterator, checking authenticity and expiry; returns its stream and shard.
    pub fn open_iterator(
        &self,
        token: &str,
    ) -> Result<(Arc<Stream>, Arc<Shard>, IteratorToken), AwsError> {
        let t = self
            .key
            .decode(token)
            .ok_or_else(errors::invalid_iterator)?;
        let now = self.clock.now_ms();
        if t.issued_ms > now + 1000 {
            return Err(errors::invalid_iterator());
        }
        if now - t.issued_ms > ITERATOR_TTL_MS {
            return Err(errors::expired_iterator(t.issued_ms, now));
        }
        let stream = self
            .by_incarnation
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&t.incarnation)
            .cloned()
            .ok_or_else(|| {
                AwsError::new(
                    errors::RESOURCE_NOT_FOUND,
                    format!(
                        "Shard {} in stream (deleted) under account {} does not exist",
                        shard_id(t.shard_index),
                        self.cfg.account_id
                    ),
                )
            })?;
        let shard = stream.shard(t.shard_index).ok_or_else(|| {
            errors::shard_does_not_exist(
                &shard_id(t.shard_index),
                &stream.name,
                &self.cfg.account_id,
            )
        })?;
        Ok((stream, shard, t))
    }

    /// GetRecords.
    pub async fn get_records(&self, token: &str, limit: usize) -> Result<RecordsOut, AwsError> {
        let (stream, shard, t) = self.open_iterator(token)?;
        let log = shard.local_log()?.clone();
        if !stream.status().serves_data() {
            return Err(errors::shard_does_not_exist(
                &shard.id,
                &stream.name,
                &self.cfg.account_id,
            ));
        }
        let now = self.clock.now_ms();
        if self.cfg.limits
            && (!shard.read_bytes.has_tokens(now) || !shard.read_calls.try_take(1.0, now))
        {
            crate::metrics::global().read_throttled(&stream, &shard.id);
            return Err(errors::throughput_exceeded(
                &shard.id,
                &stream.name,
                &self.cfg.account_id,
            ));
        }
        let batch =
            tokio::task::spawn_blocking(move || log.read(t.offset, limit, GET_RECORDS_MAX_BYTES))
                .await
                .map_err(|_| AwsError::internal(""))?
                .map_err(storage_error)?;
        let bytes = batch.bytes();
        if self.cfg.limits {
            shard.read_bytes.charge(bytes as f64, now);
        }
        let millis_behind_latest = batch.millis_behind_latest(now);
        let closed_end = shard.closed().map(|(end, _)| end);
        let children = match closed_end {
            Some(end) if batch.next_offset >= end => Some(self.children_of(&stream, &shard))
                // In cluster mode a shard is sealed at its owner before the metadata naming
                // its children arrives; until then the reader waits at the end.
                .filter(|c| !c.is_empty() || self.placement.get().is_none()),
            _ => None,
        };
        let (next_iterator, child_shards) = match children {
            Some(children) => (None, Some(children)),
            None => (
                Some(self.key.encode(&IteratorToken {
                    incarnation: stream.incarnation,
                    shard_index: shard.index,
                    offset: batch.next_offset,
                    issued_ms: now,
                })),
                None,
            ),
        };
        let records = batch
            .records
            .into_iter()
            .map(|r| (stream.sequence(shard.index, r.offset), r))
            .collect();
        Ok(RecordsOut {
            stream,
            shard,
            records,
            next_iterator,
            millis_behind_latest,
            child_shards,
            bytes,
        })
    }

    /// The shards that `shard` was split or merged into.
    pub fn children_of(&self, stream: &Stream, shard: &Shard) -> Vec<ChildShard> {
        stream
            .all_shards()
            .iter()
            .filter(|c| {
                c.parent.as_deref() == Some(&shard.id)
                    || c.adjacent_parent.as_deref() == Some(&shard.id)
            })
            .map(|c| ChildShard {
                shard_id: c.id.clone(),
                parents: c
                    .parent
                    .iter()
                    .chain(c.adjacent_parent.iter())
                    .cloned()
                    .collect(),
                start_hash: c.start_hash,
                end_hash: c.end_hash,
            })
            .collect()
    }

    /// Changes settings under the stream's control lock and persists them.
    pub async fn update_state<T>(
        &self,
        stream: &Arc<Stream>,
        f: impl FnOnce(&mut StreamState) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        let _c = stream.control.lock().await;
        let (out, backup) = {
            let mut st = stream.state();
            let backup = st.clone();
            (f(&mut st)?, backup)
        };
        if let Err(e) = stream.persist() {
            *stream.state() = backup;
            return Err(storage_error(e));
        }
        Ok(out)
    }

    /// Persists the account settings (`account.json`).
    pub fn persist_account_settings(&self) -> Result<(), AwsError> {
        let Some(dir) = &self.cfg.data_dir else {
            return Ok(());
        };
        let raw = serde_json::to_vec(
            &*self
                .account_settings
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
        .unwrap_or_default();
        write_atomic(&dir.join("account.json"), &raw).map_err(storage_error)
    }

    /// Reshards an ON_DEMAND stream up to at least `shards` open shards (warm throughput), as
    /// a series of uniform steps of at most double.
    pub async fn warm_up(&self, stream: &Arc<Stream>, shards: u32) -> Result<(), AwsError> {
        loop {
            let open = stream.open_shard_count() as u32;
            if open >= shards {
                return Ok(());
            }
            let target = shards.min(open * 2);
            let _c = stream.control.lock().await;
            self.ensure_active(stream)?;
            self.rescale_locked(stream, target).await?;
        }
    }

    /// RegisterStreamConsumer: adds a consumer, CREATING for the configured creation delay and
    /// then ACTIVE (at once with no delay).
    pub async fn register_consumer(
        self: &Arc<Self>,
        stream: &Arc<Stream>,
        name: &str,
    ) -> Result<Consumer, AwsError> {
        let now = self.clock.now_ms();
        let arn = format!("{}/consumer/{}:{}", stream.arn, name, now / 1000);
        let account = self.cfg.account_id.clone();
        let delay = self.cfg.create_delay_ms;
        let consumer = self
            .update_state(stream, |st| {
                if st.consumers.iter().any(|c| c.name == name) {
                    return Err(errors::in_use(format!(
                        "Consumer {name} under stream {} already exists for account {account}.",
                        stream.name
                    )));
                }
                if st.consumers.len() >= MAX_CONSUMERS {
                    return Err(errors::limit_exceeded(format!(
                        "Consumer limit of {MAX_CONSUMERS} has been reached for stream {} under account {account}.",
                        stream.name
                    )));
                }
                let c = Consumer {
                    name: name.to_string(),
                    arn,
                    created_ms: now,
                    status: if delay == 0 {
                        ConsumerStatus::Active
                    } else {
                        ConsumerStatus::Creating
                    },
                };
                st.consumers.push(c.clone());
                Ok(c)
            })
            .await?;
        if delay > 0 {
            let (engine, stream, arn) = (self.clone(), stream.clone(), consumer.arn.clone());
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                let _ = engine
                    .update_state(&stream, |st| {
                        for c in st.consumers.iter_mut().filter(|c| c.arn == arn) {
                            if c.status == ConsumerStatus::Creating {
                                c.status = ConsumerStatus::Active;
                            }
                        }
                        Ok(())
                    })
                    .await;
            });
        }
        Ok(consumer)
    }

    /// DeregisterStreamConsumer: DELETING for the configured deletion delay, then gone. Its
    /// subscriptions end at once.
    pub async fn deregister_consumer(
        self: &Arc<Self>,
        stream: &Arc<Stream>,
        arn: &str,
    ) -> Result<(), AwsError> {
        let delay = self.cfg.delete_delay_ms;
        self.update_state(stream, |st| {
            if delay == 0 {
                st.consumers.retain(|c| c.arn != arn);
            } else {
                for c in st.consumers.iter_mut().filter(|c| c.arn == arn) {
                    c.status = ConsumerStatus::Deleting;
                }
            }
            Ok(())
        })
        .await?;
        self.subscriptions.forget_consumer(arn);
        if delay > 0 {
            let (engine, stream, arn) = (self.clone(), stream.clone(), arn.to_string());
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                let _ = engine
                    .update_state(&stream, |st| {
                        st.consumers.retain(|c| c.arn != arn);
                        Ok(())
                    })
                    .await;
            });
        }
        Ok(())
    }

    /// Applies retention to every shard and forgets closed shards whose data has all expired.
    pub async fn enforce_retention(&self) {
        let now = self.clock.now_ms();
        for stream in self.list() {
            let retention_ms = i64::from(stream.state().retention_hours) * 3_600_000;
            let cutoff = now - retention_ms;
            let mut expired = Vec::new();
            for shard in stream.all_shards() {
                if let Some(log) = &shard.log {
                    if let Err(e) = log.trim(cutoff) {
                        tracing::error!(error = %e, stream = %stream.name, shard = %shard.id, "Retention trim failed.");
                    }
                }
                if let Some((_, closed_ms)) = shard.closed() {
                    if closed_ms < cutoff {
                        expired.push(shard);
                    }
                }
            }
            // Members forget closed shards when the coordinator's metadata drops them.
            if expired.is_empty() || self.placement.get().is_some_and(|p| !p.is_coordinator()) {
                continue;
            }
            let _c = stream.control.lock().await;
            {
                let mut set = stream.shards.write().unwrap_or_else(|e| e.into_inner());
                set.all
                    .retain(|s| !expired.iter().any(|x| x.index == s.index));
                set.rebuild_open();
            }
            let _ = stream.persist();
            for shard in expired {
                if let Some(log) = &shard.log {
                    let _ = log.destroy().await;
                }
            }
        }
    }

    /// Adds shards (from a reshard) and closes their parents.
    ///
    /// 0. Cluster mode: seal the parents other pods hold, at their owners (idempotent). Should
    ///    one not answer, the call fails before anything changed here; a parent sealed already
    ///    refuses writes until the reshard is tried again.
    /// 1. Open the children's logs and persist metadata listing them (parents still open):
    ///    after a crash here the children exist, empty, and the parents keep serving.
    /// 2. Swap routing so new writes go to the children.
    /// 3. Close each parent's log: the writer finishes every append queued before the close,
    ///    later appends bounce back to the router and land in a child.
    /// 4. Record each parent's end offset and persist again.
    pub async fn reshard(
        &self,
        stream: &Arc<Stream>,
        parents: &[Arc<Shard>],
        children: Vec<ShardMeta>,
    ) -> Result<(), AwsError> {
        let now = self.clock.now_ms();
        let closing: Vec<(u64, u32)> = parents
            .iter()
            .map(|p| (stream.incarnation, p.index))
            .collect();
        let owners = self.choose_owners(&closing, children.len());
        let mut sealed = HashMap::new();
        if let Some(p) = self.placement.get() {
            for parent in parents.iter().filter(|p| p.log.is_none()) {
                let owner = parent.owner.unwrap_or(0);
                let end = p.seal(owner, stream, parent.index).await.map_err(|e| {
                    tracing::error!(error = %e, stream = %stream.name, shard = %parent.id, owner, "Could not seal a shard at its owner.");
                    AwsError::internal("")
                })?;
                sealed.insert(parent.index, end);
            }
        }
        let mut new_shards = Vec::new();
        for (i, mut meta) in children.into_iter().enumerate() {
            meta.owner = owners.get(i).copied();
            let log = if self.holds(&meta) {
                Some(
                    self.open_log(stream, meta.index, false)
                        .map_err(storage_error)?,
                )
            } else {
                None
            };
            new_shards.push(Arc::new(Shard::new(&meta, log, now)));
        }
        {
            let mut set = stream.shards.write().unwrap_or_else(|e| e.into_inner());
            set.all.extend(new_shards.iter().cloned());
            set.all.sort_by_key(|s| s.index);
            set.open
                .retain(|s| !parents.iter().any(|p| p.index == s.index));
            set.open.extend(new_shards.iter().cloned());
            set.open.sort_by_key(|s| s.start_hash);
        }
        stream.persist().map_err(storage_error)?;
        for parent in parents {
            let end = match &parent.log {
                Some(log) => log.close().await.map_err(storage_error)?,
                None => sealed
                    .get(&parent.index)
                    .copied()
                    .ok_or_else(|| AwsError::internal(""))?,
            };
            parent.set_closed(end, self.clock.now_ms());
        }
        stream.persist().map_err(storage_error)?;
        crate::metrics::global().reshard(&stream.name);
        Ok(())
    }

    /// Flushes and stops every shard log.
    pub async fn shutdown(&self) {
        for stream in self.list() {
            for shard in stream.all_shards() {
                if let Some(log) = &shard.log {
                    log.shutdown().await;
                }
            }
            if let Some(log) = stream.opened_log() {
                log.shutdown().await;
            }
        }
    }
}

pub fn storage_error(e: StorageError) -> AwsError {
    tracing::error!(error = %e, "Storage failure.");
    AwsError::internal("")
}

fn load_or_create_secret(dir: &std::path::Path) -> Result<[u8; 32], StorageError> {
    let path = dir.join("iterator.key");
    if let Ok(raw) = std::fs::read(&path) {
        if let Ok(key) = <[u8; 32]>::try_from(raw.as_slice()) {
            return Ok(key);
        }
    }
    let key: [u8; 32] = rand::random();
    write_atomic(&path, &key)?;
    Ok(key)
}
