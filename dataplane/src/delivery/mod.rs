//! The delivery engine: Firehose delivery streams, their durable DirectPut buffers, the
//! checkpointed reader of a source stream, and the workers that buffer, compress and deliver
//! records to an object store or an HTTP endpoint.
//!
//! Each delivery stream has one worker task. A DirectPut stream's records are appended to its
//! own segment log (`storage::ShardLog`, fsynced before PutRecord answers); a
//! KinesisStreamAsSource stream reads the source stream's shard logs through the streams
//! engine, or, when the stream has a `--stream-endpoint`, through the Kinesis API of that
//! endpoint (`crate::remote`). The worker reads from the source's checkpoint, builds a batch until the buffering
//! size or interval is reached, delivers it (retrying), then moves and persists the
//! checkpoint. A crash between delivery and checkpoint redelivers the batch under the same
//! object key, so the object is overwritten, not duplicated (at-least-once for HTTP
//! endpoints, whose request id stays the same on a retry).
//!
//! On disk, under `DATA_DIR/firehose/<name>/`: `delivery.json` (metadata), `checkpoint.json`
//! (source position) and `buffer/` (the DirectPut log).

pub mod client;
pub mod compress;
pub mod config;
pub mod convert;
pub mod kpl;
pub mod partition;
pub mod postgres;
pub mod prefix;
pub mod processors;
mod source;
pub mod store;
pub mod transform;
mod worker;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::clock::Clock;
use crate::storage::{RecordIn, ShardLog, StorageConfig, StorageError};
use crate::streams::limits::TokenBucket;
use crate::streams::Streams;
pub use source::record_id;
pub use store::StoreConfig;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub region: String,
    pub account_id: String,
    /// Root of persisted data; `None` keeps metadata and buffers in memory.
    pub data_dir: Option<PathBuf>,
    /// Settings of the DirectPut buffer logs (their `dir` is set per delivery stream).
    pub storage: StorageConfig,
    /// The object store S3 destinations write to, unless a destination names its own endpoint.
    pub store: StoreConfig,
    /// First retry delay of a failed delivery; doubled per attempt up to `max_backoff_ms`.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Enforce Firehose's DirectPut throughput quotas.
    pub limits: bool,
    /// Base URL of a Lambda Invoke API for `Lambda` processors whose `LambdaArn` is an ARN.
    pub lambda_endpoint: Option<String>,
    /// Directory of Glue table definitions for record format conversion
    /// (`<database>/<table>.json`).
    pub glue_catalog: Option<PathBuf>,
}

/// Where a delivery stream's records come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    DirectPut,
    KinesisStreamAsSource,
}

impl SourceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceKind::DirectPut => "DirectPut",
            SourceKind::KinesisStreamAsSource => "KinesisStreamAsSource",
        }
    }
}

/// The one destination of a delivery stream, as the client configured it (Firehose JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Destination {
    ExtendedS3(serde_json::Value),
    HttpEndpoint(serde_json::Value),
    /// Redshift's configuration, delivered to PostgreSQL.
    Redshift(serde_json::Value),
}

impl Destination {
    pub fn config(&self) -> &serde_json::Value {
        match self {
            Destination::ExtendedS3(v)
            | Destination::HttpEndpoint(v)
            | Destination::Redshift(v) => v,
        }
    }
}

/// Server-side encryption settings (recorded; data at rest is not encrypted by this flag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Encryption {
    /// ENABLED, ENABLING, DISABLED...
    pub status: String,
    pub key_type: Option<String>,
    pub key_arn: Option<String>,
}

/// A Kinesis stream source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisSource {
    pub stream_arn: String,
    pub role_arn: Option<String>,
    /// Records that arrived at or after this instant are delivered.
    pub start_ms: i64,
}

/// Everything persisted about a delivery stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryMeta {
    pub name: String,
    pub arn: String,
    pub source: SourceKind,
    pub kinesis: Option<KinesisSource>,
    pub status: String,
    pub version_id: u64,
    pub create_ms: i64,
    pub update_ms: Option<i64>,
    pub destination: Destination,
    pub tags: BTreeMap<String, String>,
    pub encryption: Encryption,
    pub direct_put_hint_mbs: Option<i64>,
    /// Object store endpoint of this delivery stream's S3 destination (Tributary extension,
    /// set by `--manifests`); the server's `--s3-endpoint` when absent.
    pub store_endpoint: Option<String>,
}

/// Firehose's DirectPut quotas in its largest regions (us-east-1, us-west-2, eu-west-1):
/// 5 MiB/s, 500,000 records/s and 2,000 PutRecord/PutRecordBatch requests/s per delivery
/// stream. Buckets hold one second's worth and may go into debt, as the stream limits do.
pub struct PutLimits {
    pub bytes: TokenBucket,
    pub records: TokenBucket,
    pub requests: TokenBucket,
}

impl PutLimits {
    fn new(now_ms: i64) -> PutLimits {
        const MIB: f64 = 1024.0 * 1024.0;
        PutLimits {
            bytes: TokenBucket::new(5.0 * MIB, 5.0 * MIB, now_ms),
            records: TokenBucket::new(500_000.0, 500_000.0, now_ms),
            requests: TokenBucket::new(2000.0, 2000.0, now_ms),
        }
    }

    /// Admits a put of `records` records and `bytes` bytes, or refuses it whole.
    pub fn admit(&self, records: usize, bytes: usize, now_ms: i64) -> bool {
        if !self.bytes.has_tokens(now_ms)
            || !self.records.has_tokens(now_ms)
            || !self.requests.has_tokens(now_ms)
        {
            return false;
        }
        self.bytes.charge(bytes as f64, now_ms);
        self.records.charge(records as f64, now_ms);
        self.requests.charge(1.0, now_ms);
        true
    }
}

/// A live delivery stream.
pub struct DeliveryStream {
    meta: Mutex<DeliveryMeta>,
    dir: Option<PathBuf>,
    /// The durable buffer of a DirectPut stream.
    pub buffer: Option<ShardLog>,
    /// DirectPut throughput quotas, when limits are on.
    pub limits: Option<PutLimits>,
    /// The reader of a source stream served by another endpoint (`--stream-endpoint`), kept
    /// between reads for its shard iterators.
    remote_reader: tokio::sync::Mutex<Option<crate::remote::ShardReader>>,
    /// Poked after each put so a zero-interval stream delivers without polling delay.
    notify: Arc<Notify>,
    /// Buffer offsets other readers still need, by reader (analytics applications with a
    /// `KinesisFirehoseInput`): delivered records below them are kept. Persisted in
    /// `holds.json`, so they hold across restarts too.
    holds: Mutex<BTreeMap<String, u64>>,
    stop: watch::Sender<bool>,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl DeliveryStream {
    pub fn meta(&self) -> DeliveryMeta {
        self.meta.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn persist(&self, meta: &DeliveryMeta) -> Result<(), StorageError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        crate::streams::stream::write_atomic(
            &dir.join("delivery.json"),
            &serde_json::to_vec_pretty(meta).unwrap_or_default(),
        )
    }

    /// Appends records to the DirectPut buffer; returns the first offset and the arrival time
    /// once they are durable.
    pub async fn put(&self, records: Vec<bytes::Bytes>) -> Result<(u64, i64), StorageError> {
        let log = self.buffer.as_ref().ok_or(StorageError::Unavailable)?;
        let out = log
            .append(
                records
                    .into_iter()
                    .map(|data| RecordIn {
                        partition_key: bytes::Bytes::new(),
                        data,
                    })
                    .collect(),
                0,
            )
            .await?;
        self.notify.notify_one();
        Ok((out.first_offset, out.arrival_ms))
    }

    /// Keeps the DirectPut buffer from `offset` on for `reader`, which reads it besides the
    /// delivery worker.
    pub fn hold(&self, reader: &str, offset: u64) {
        let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        if holds.get(reader) == Some(&offset) {
            return;
        }
        holds.insert(reader.to_string(), offset);
        self.persist_holds(&holds);
    }

    /// Drops `reader`'s hold on the buffer.
    pub fn release(&self, reader: &str) {
        let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        if holds.remove(reader).is_some() {
            self.persist_holds(&holds);
        }
    }

    fn persist_holds(&self, holds: &BTreeMap<String, u64>) {
        let Some(dir) = &self.dir else { return };
        let path = dir.join("holds.json");
        if let Err(e) = crate::streams::stream::write_atomic(
            &path,
            &serde_json::to_vec(holds).unwrap_or_default(),
        ) {
            tracing::warn!(path = %path.display(), error = %e, "Could not save the buffer holds.");
        }
    }

    /// Where the buffer may be trimmed once records before `delivered` are delivered: not past
    /// any hold.
    fn trim_horizon(&self, delivered: u64) -> u64 {
        let holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        holds.values().copied().fold(delivered, u64::min)
    }

    async fn stop(&self) {
        let _ = self.stop.send(true);
        let handle = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.await;
        }
        if let Some(log) = &self.buffer {
            log.shutdown().await;
        }
    }
}

/// Every delivery stream of the account.
pub struct DeliveryStreams {
    pub cfg: DeliveryConfig,
    pub clock: Clock,
    pub streams: Arc<Streams>,
    client: client::HttpClient,
    map: RwLock<BTreeMap<String, Arc<DeliveryStream>>>,
    /// Serialises creation, update and deletion.
    pub lifecycle: tokio::sync::Mutex<()>,
}

impl DeliveryStreams {
    /// Opens the engine and restarts the workers of every persisted delivery stream.
    pub async fn open(
        cfg: DeliveryConfig,
        clock: Clock,
        streams: Arc<Streams>,
    ) -> Result<Arc<DeliveryStreams>, StorageError> {
        let engine = Arc::new(DeliveryStreams {
            cfg,
            clock,
            streams,
            client: client::HttpClient::default(),
            map: RwLock::new(BTreeMap::new()),
            lifecycle: tokio::sync::Mutex::new(()),
        });
        if let Some(root) = engine.root() {
            if root.exists() {
                let entries = std::fs::read_dir(&root).map_err(|e| StorageError::io(&root, e))?;
                for entry in entries.flatten() {
                    let dir = entry.path();
                    let path = dir.join("delivery.json");
                    let Ok(raw) = std::fs::read(&path) else {
                        // Creation never completed: nothing was acknowledged for it.
                        let _ = std::fs::remove_dir_all(&dir);
                        continue;
                    };
                    let meta: DeliveryMeta = serde_json::from_slice(&raw).map_err(|e| {
                        StorageError::io(
                            &path,
                            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                        )
                    })?;
                    if meta.status == "DELETING" {
                        let _ = std::fs::remove_dir_all(&dir);
                        continue;
                    }
                    engine.start(meta, Some(dir))?;
                }
            }
        }
        Ok(engine)
    }

    fn root(&self) -> Option<PathBuf> {
        self.cfg.data_dir.as_ref().map(|d| d.join("firehose"))
    }

    pub fn arn(&self, name: &str) -> String {
        format!(
            "arn:aws:firehose:{}:{}:deliverystream/{name}",
            self.cfg.region, self.cfg.account_id
        )
    }

    pub fn list(&self) -> Vec<Arc<DeliveryStream>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn find(&self, name: &str) -> Option<Arc<DeliveryStream>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub fn count(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Opens the buffer, starts the worker and registers the delivery stream.
    fn start(
        self: &Arc<Self>,
        meta: DeliveryMeta,
        dir: Option<PathBuf>,
    ) -> Result<Arc<DeliveryStream>, StorageError> {
        let checkpoint = source::Checkpoint::load(dir.as_deref());
        let holds: BTreeMap<String, u64> = dir
            .as_ref()
            .and_then(|d| std::fs::read(d.join("holds.json")).ok())
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .unwrap_or_default();
        let horizon = holds.values().copied().fold(checkpoint.offset, u64::min);
        let buffer = match meta.source {
            SourceKind::DirectPut => Some(ShardLog::open(
                StorageConfig {
                    dir: dir.as_ref().map(|d| d.join("buffer")),
                    ..self.cfg.storage.clone()
                },
                self.clock.clone(),
                horizon,
                false,
            )?),
            SourceKind::KinesisStreamAsSource => None,
        };
        let (stop, stop_rx) = watch::channel(false);
        let name = meta.name.clone();
        crate::metrics::global().firehose.init(&name);
        let ds = Arc::new(DeliveryStream {
            meta: Mutex::new(meta),
            dir,
            limits: (self.cfg.limits && buffer.is_some())
                .then(|| PutLimits::new(self.clock.now_ms())),
            buffer,
            remote_reader: tokio::sync::Mutex::new(None),
            notify: Arc::new(Notify::new()),
            holds: Mutex::new(holds),
            stop,
            worker: Mutex::new(None),
        });
        let handle = tokio::spawn(worker::run(
            self.clone(),
            ds.clone(),
            checkpoint,
            stop_rx,
            self.client.clone(),
        ));
        *ds.worker.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, ds.clone());
        Ok(ds)
    }

    /// Creates a delivery stream (the caller has validated it and checked the name is free).
    ///
    /// 1. Write `delivery.json` (fsynced, renamed into place): from here the stream exists.
    /// 2. Open its buffer and start its worker.
    pub fn create(self: &Arc<Self>, meta: DeliveryMeta) -> Result<(), StorageError> {
        let dir = self.root().map(|r| r.join(&meta.name));
        if let Some(d) = &dir {
            crate::streams::stream::write_atomic(
                &d.join("delivery.json"),
                &serde_json::to_vec_pretty(&meta).unwrap_or_default(),
            )?;
        }
        self.start(meta, dir)?;
        Ok(())
    }

    /// Changes a delivery stream's metadata and persists it; the worker picks the change up
    /// before its next batch.
    pub fn update<T>(
        &self,
        ds: &DeliveryStream,
        f: impl FnOnce(&mut DeliveryMeta) -> Result<T, crate::protocol::AwsError>,
    ) -> Result<T, crate::protocol::AwsError> {
        let mut guard = ds.meta.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = guard.clone();
        let out = f(&mut next)?;
        ds.persist(&next)
            .map_err(|e| crate::protocol::AwsError::internal(e.to_string()))?;
        *guard = next;
        Ok(out)
    }

    /// Deletes a delivery stream and its undelivered buffer.
    ///
    /// 1. Persist status DELETING, so a crash in between finishes the deletion at start-up.
    /// 2. Stop the worker (an in-flight delivery is abandoned) and unregister.
    /// 3. Remove the directory.
    pub async fn delete(&self, name: &str) -> Result<(), StorageError> {
        let Some(ds) = self.find(name) else {
            return Ok(());
        };
        {
            let mut m = ds.meta.lock().unwrap_or_else(|e| e.into_inner());
            m.status = "DELETING".into();
            ds.persist(&m)?;
        }
        ds.stop().await;
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        crate::metrics::global().firehose.remove(name);
        if let Some(dir) = &ds.dir {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(dir, e)),
            }
        }
        Ok(())
    }

    /// Stops every worker and flushes every buffer.
    pub async fn shutdown(&self) {
        for ds in self.list() {
            ds.stop().await;
        }
    }
}
