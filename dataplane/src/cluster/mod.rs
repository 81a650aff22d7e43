//! Cluster mode: one stream's shards spread over several `tributary serve` processes (the pods
//! of a StatefulSet), each serving the whole Kinesis API.
//!
//! - The **coordinator** (ordinal 0) holds the truth of every stream's metadata, including
//!   each shard's owner, and runs every control-plane call. It publishes numbered snapshots of
//!   the metadata; members long-poll them (`GET /_tributary/cluster/state?after=V`), which
//!   doubles as their acknowledgement of version V.
//! - **Members** (every pod, the coordinator too) hold the logs of the shards they own. A
//!   member keeps a replica of the metadata (its own `stream.json` files) to route writes and
//!   to answer at once when it owns the shard asked for.
//! - Any pod takes any call: control-plane calls go to the coordinator, records to their
//!   shard's owner (`/append`), GetShardIterator, GetRecords and SubscribeToShard to the owner.
//!
//! Internal endpoints and forwarded requests carry the shared secret in
//! `x-tributary-cluster-token`; the shard-iterator key is derived from it so every pod decodes
//! every pod's iterators.

pub mod http;
mod load;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Notify};

use crate::storage::RecordIn;
use crate::streams::placement::{AppendFailure, Placement};
use crate::streams::stream::{write_atomic, StreamMeta};
use crate::streams::{Stream, Streams};

/// Header carrying the cluster secret on internal endpoints and forwarded requests.
pub const TOKEN_HEADER: &str = "x-tributary-cluster-token";
/// Header of the coordinator's metadata version on answers to control-plane calls.
pub const VERSION_HEADER: &str = "x-tributary-cluster-version";

/// A long poll of the metadata answers within this long, changed or not.
const POLL_WAIT: Duration = Duration::from_secs(20);
/// A mutating control-plane call waits this long at most for live members to have its result.
const ACK_WAIT: Duration = Duration::from_secs(5);
/// A reshard gives up sealing a parent at its owner after this long (it holds the stream's
/// control lock meanwhile, and publication waits for it).
const SEAL_WAIT: Duration = Duration::from_secs(10);
/// A member that has not polled for this long (and is not polling) is not live. A poll in
/// progress counts as live until it is answered or its connection is closed or found dead.
const LIVE_WINDOW: Duration = Duration::from_secs(3);
/// Membership has settled once no member joined for this long ...
const SETTLE: Duration = Duration::from_secs(5);
/// ... or after this long in any case.
const SETTLE_MAX: Duration = Duration::from_secs(60);

/// Settings of cluster mode (`--cluster-*`).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// API URL of the coordinator (ordinal 0).
    pub coordinator: String,
    /// This pod's API URL as its peers reach it.
    pub advertise: String,
    pub ordinal: u32,
    pub secret: String,
}

impl ClusterConfig {
    /// The shard-iterator key every pod derives from the cluster secret.
    pub fn iterator_key(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"tributary shard iterator key\0");
        h.update(self.secret.as_bytes());
        h.finalize().into()
    }
}

/// The ordinal in a StatefulSet pod name: its trailing `-N`.
pub fn ordinal_of(pod_name: &str) -> Option<u32> {
    pod_name.rsplit_once('-')?.1.parse().ok()
}

/// A member as `GET /cluster` and the metadata snapshot describe it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub ordinal: u32,
    pub url: String,
    pub live: bool,
    #[serde(default)]
    pub open_shards: usize,
    #[serde(default)]
    pub closed_shards: usize,
}

/// What the coordinator knows of a member.
#[derive(Debug, Clone)]
struct Member {
    url: String,
    last_seen: Option<Instant>,
    /// The newest metadata version the member has applied.
    acked: u64,
    /// Long polls in progress.
    polling: usize,
}

#[derive(Serialize, Deserialize)]
struct MemberFile {
    members: Vec<MemberEntry>,
}

#[derive(Serialize, Deserialize)]
struct MemberEntry {
    ordinal: u32,
    url: String,
}

/// A metadata snapshot, as the coordinator serves it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The coordinator's cluster id (absent from a coordinator of an earlier release).
    #[serde(default)]
    pub cluster_id: Option<String>,
    pub version: u64,
    pub members: Vec<MemberView>,
    pub streams: Vec<StreamMeta>,
}

/// One pod's part in the cluster.
pub struct Cluster {
    pub cfg: ClusterConfig,
    engine: Arc<Streams>,
    data_dir: Option<PathBuf>,
    client: http::Client,
    /// Coordinator: the member table. Members: the coordinator's view from the last snapshot.
    members: Mutex<BTreeMap<u32, Member>>,
    replica_members: RwLock<Vec<MemberView>>,
    /// Coordinator: the published version. Members: the version applied to the replica.
    version: watch::Sender<u64>,
    /// Coordinator: the published streams (JSON) and a lock serialising publication.
    published: tokio::sync::Mutex<Bytes>,
    current: RwLock<Bytes>,
    acks: Notify,
    /// Serialises writes of `cluster.json`.
    persist: Mutex<()>,
    /// When a member last joined (or this process started).
    last_join: Mutex<Instant>,
    /// A member has applied the coordinator's metadata since it started.
    synced: std::sync::atomic::AtomicBool,
    /// Coordinator: the metadata has been published since it started.
    first_published: std::sync::atomic::AtomicBool,
    /// Coordinator: write rates of the shards other members hold, as they report them.
    loads: crate::streams::autoscale::RemoteLoads,
    /// Coordinator: this cluster's id (created once, kept in `cluster-id`). Members: the id
    /// of the coordinator they first joined (kept there too), `None` until they joined.
    cluster_id: RwLock<Option<String>>,
    /// Member: the coordinator answered with another cluster's id (see [`Cluster::adopt_id`]).
    foreign: std::sync::atomic::AtomicBool,
    /// A forwarded call's whole time ([`http::FORWARD_TIMEOUT`]; shorter in tests).
    forward_timeout: Duration,
}

/// File in the data directory holding the cluster id.
const CLUSTER_ID_FILE: &str = "cluster-id";

/// The cluster id kept in `dir`, if any.
fn read_cluster_id(dir: Option<&PathBuf>) -> Option<String> {
    let raw = std::fs::read_to_string(dir?.join(CLUSTER_ID_FILE)).ok()?;
    let id = raw.trim();
    (!id.is_empty()).then(|| id.to_string())
}

fn new_cluster_id() -> String {
    let b: [u8; 16] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Cluster {
    pub fn new(cfg: ClusterConfig, engine: Arc<Streams>, data_dir: Option<PathBuf>) -> Arc<Self> {
        // Versions only grow, across restarts of the coordinator too: they start at the
        // current time in milliseconds.
        let start = if cfg.ordinal == 0 {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(1)
        } else {
            0
        };
        let mut members = BTreeMap::new();
        // The member table (coordinator), or the members last replicated (members: so a
        // member restarted while the coordinator is away still reaches its peers).
        let file = data_dir
            .as_ref()
            .and_then(|d| std::fs::read(d.join("cluster.json")).ok())
            .and_then(|raw| serde_json::from_slice::<MemberFile>(&raw).ok());
        let mut replica_members = Vec::new();
        if cfg.ordinal != 0 {
            for m in file.iter().flat_map(|f| f.members.iter()) {
                replica_members.push(MemberView {
                    ordinal: m.ordinal,
                    url: m.url.clone(),
                    live: false,
                    open_shards: 0,
                    closed_shards: 0,
                });
            }
        }
        if cfg.ordinal == 0 {
            if let Some(file) = file {
                for m in file.members {
                    members.insert(
                        m.ordinal,
                        Member {
                            url: m.url,
                            last_seen: None,
                            acked: 0,
                            polling: 0,
                        },
                    );
                }
            }
            members.insert(
                0,
                Member {
                    url: cfg.advertise.clone(),
                    last_seen: None,
                    acked: 0,
                    polling: 0,
                },
            );
        }
        // The coordinator's id is created once with its data directory (every start without
        // one, `--in-memory` included, is a new cluster); a member's is the coordinator's.
        let mut cluster_id = read_cluster_id(data_dir.as_ref());
        if cfg.ordinal == 0 && cluster_id.is_none() {
            let id = new_cluster_id();
            if let Some(dir) = &data_dir {
                if let Err(e) = write_atomic(&dir.join(CLUSTER_ID_FILE), id.as_bytes()) {
                    tracing::error!(error = %e, "Could not keep the cluster id in the data directory.");
                }
            }
            cluster_id = Some(id);
        }
        let (version, _) = watch::channel(start);
        Arc::new(Cluster {
            cfg,
            engine,
            data_dir,
            client: http::Client::new(),
            members: Mutex::new(members),
            replica_members: RwLock::new(replica_members),
            version,
            published: tokio::sync::Mutex::new(Bytes::new()),
            current: RwLock::new(Bytes::from_static(b"[]")),
            acks: Notify::new(),
            persist: Mutex::new(()),
            last_join: Mutex::new(Instant::now()),
            synced: std::sync::atomic::AtomicBool::new(false),
            first_published: std::sync::atomic::AtomicBool::new(false),
            loads: Default::default(),
            cluster_id: RwLock::new(cluster_id),
            foreign: std::sync::atomic::AtomicBool::new(false),
            forward_timeout: http::FORWARD_TIMEOUT,
        })
    }

    /// The cluster id: the coordinator's own, or the one a member first joined.
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Member: checks the cluster id the coordinator answered with. The first one a member
    /// sees is kept (in its data directory); another one later means the coordinator is not
    /// the one this member's data belongs to (it lost its data directory, or runs
    /// `--in-memory` and restarted, or `--cluster-coordinator` names another cluster's pod):
    /// its metadata would delete every stream this member holds, so it is refused.
    fn adopt_id(&self, id: Option<&str>) -> Result<(), String> {
        // A coordinator of an earlier release sends none.
        let Some(id) = id else { return Ok(()) };
        let mut have = self.cluster_id.write().unwrap_or_else(|e| e.into_inner());
        match have.as_deref() {
            Some(mine) if mine == id => {}
            Some(mine) => {
                self.foreign
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                self.synced
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                return Err(format!(
                    "the coordinator belongs to cluster {id}, but this member's data belongs to cluster {mine}: \
                     refusing its metadata, which would delete the streams this member holds \
                     (the coordinator lost its data directory, or --cluster-coordinator names \
                     another cluster); serving the shards held here from the metadata kept here"
                ));
            }
            None => {
                if let Some(dir) = &self.data_dir {
                    write_atomic(&dir.join(CLUSTER_ID_FILE), id.as_bytes())
                        .map_err(|e| format!("keeping the cluster id failed: {e}"))?;
                }
                tracing::info!(cluster_id = id, "Joined the cluster.");
                *have = Some(id.to_string());
            }
        }
        self.foreign
            .store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    pub fn is_coordinator(&self) -> bool {
        self.cfg.ordinal == 0
    }

    /// Whether this pod may take clients' calls (`/readyz`): the coordinator at once, a member
    /// once it has the coordinator's metadata.
    pub fn is_ready(&self) -> bool {
        self.is_coordinator()
            || (self.synced.load(std::sync::atomic::Ordering::Relaxed)
                && !self.foreign.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    fn members(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Member>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The API URL of the pod with this ordinal.
    pub fn url_of(&self, ordinal: u32) -> Option<String> {
        if ordinal == 0 {
            return Some(self.cfg.coordinator.clone());
        }
        if ordinal == self.cfg.ordinal {
            return Some(self.cfg.advertise.clone());
        }
        if self.is_coordinator() {
            self.members().get(&ordinal).map(|m| m.url.clone())
        } else {
            self.replica_members
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|m| m.ordinal == ordinal)
                .map(|m| m.url.clone())
        }
    }

    fn is_live(&self, ordinal: u32, m: &Member, now: Instant) -> bool {
        ordinal == self.cfg.ordinal
            || m.polling > 0
            || m.last_seen.is_some_and(|t| now - t < LIVE_WINDOW)
    }

    /// Members and their shards, as this pod sees them (the coordinator's table, or the
    /// coordinator's view as last replicated).
    pub fn member_views(&self) -> Vec<MemberView> {
        let mut views: Vec<MemberView> = if self.is_coordinator() {
            let now = Instant::now();
            self.members()
                .iter()
                .map(|(&o, m)| MemberView {
                    ordinal: o,
                    url: m.url.clone(),
                    live: self.is_live(o, m, now),
                    open_shards: 0,
                    closed_shards: 0,
                })
                .collect()
        } else {
            self.replica_members
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|m| MemberView {
                    open_shards: 0,
                    closed_shards: 0,
                    ..m.clone()
                })
                .collect()
        };
        // Counted from this pod's metadata (the coordinator's, or its replica).
        for stream in self.engine.list() {
            for shard in stream.all_shards() {
                let owner = shard.owner.unwrap_or(0);
                let Some(v) = views.iter_mut().find(|v| v.ordinal == owner) else {
                    continue;
                };
                if shard.is_open() {
                    v.open_shards += 1;
                } else {
                    v.closed_shards += 1;
                }
            }
        }
        views
    }

    /// `GET /cluster` on the metrics listener.
    pub fn view_json(&self) -> serde_json::Value {
        let members = self.member_views();
        self.refresh_metrics(&members);
        serde_json::json!({
            "coordinator": self.is_coordinator(),
            "ordinal": self.cfg.ordinal,
            "version": self.version(),
            "members": members,
        })
    }

    fn refresh_metrics(&self, members: &[MemberView]) {
        let (count, owned) = gauges();
        count.set(members.iter().filter(|m| m.live).count() as i64);
        owned.reset();
        for stream in self.engine.list() {
            let (mut open, mut closed) = (0i64, 0i64);
            for shard in stream.all_shards() {
                if shard.owner.unwrap_or(0) != self.cfg.ordinal {
                    continue;
                }
                if shard.is_open() {
                    open += 1;
                } else {
                    closed += 1;
                }
            }
            owned.with_label_values(&[&stream.name, "open"]).set(open);
            owned
                .with_label_values(&[&stream.name, "closed"])
                .set(closed);
        }
    }

    // ---- Coordinator ----

    /// Publishes the current metadata as a new version if it changed; returns the version.
    pub async fn publish(&self) -> u64 {
        let mut last = self.published.lock().await;
        let mut metas = Vec::new();
        for stream in self.engine.list() {
            // Between control-plane changes: never half a reshard.
            let _c = stream.control.lock().await;
            metas.push(stream.meta());
        }
        let json = Bytes::from(serde_json::to_vec(&metas).unwrap_or_default());
        if json != *last {
            *last = json.clone();
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = json;
            self.version.send_modify(|v| *v += 1);
        }
        self.first_published
            .store(true, std::sync::atomic::Ordering::Release);
        self.version()
    }

    /// After a control-plane call that may have changed metadata: publishes, then waits
    /// (bounded) until every live member has the result. Returns the version answered.
    pub async fn publish_and_wait(&self) -> u64 {
        // Whether or not this publication found the change (the background publication may
        // have found it first), the call answers once members have the current version.
        let v = self.publish().await;
        self.wait_for_acks(v).await;
        v
    }

    /// Waits (bounded) until every live member has applied version `v`.
    pub async fn wait_for_acks(&self, v: u64) {
        let deadline = tokio::time::Instant::now() + ACK_WAIT;
        loop {
            let notified = self.acks.notified();
            let waiting: Vec<u32> = {
                let now = Instant::now();
                self.members()
                    .iter()
                    .filter(|(&o, m)| {
                        o != self.cfg.ordinal && self.is_live(o, m, now) && m.acked < v
                    })
                    .map(|(&o, _)| o)
                    .collect()
            };
            if waiting.is_empty() {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(version = v, members = ?waiting, "Members did not confirm the metadata in time.");
                return;
            }
        }
    }

    /// A member joins (or rejoins with a new URL).
    pub fn join(&self, ordinal: u32, url: String) -> Result<(), String> {
        if ordinal == self.cfg.ordinal {
            return Err("a member cannot have the coordinator's ordinal".into());
        }
        let file = {
            let mut members = self.members();
            let m = members.entry(ordinal).or_insert(Member {
                url: url.clone(),
                last_seen: None,
                acked: 0,
                polling: 0,
            });
            m.url = url.clone();
            m.last_seen = Some(Instant::now());
            *self.last_join.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            MemberFile {
                members: members
                    .iter()
                    .map(|(&o, m)| MemberEntry {
                        ordinal: o,
                        url: m.url.clone(),
                    })
                    .collect(),
            }
        };
        tracing::info!(ordinal, url = %url, "Cluster member joined.");
        self.write_members(&file)
    }

    /// Members: keeps the members last replicated in `cluster.json`.
    fn persist_members(&self) -> Result<(), String> {
        let file = MemberFile {
            members: self
                .replica_members
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|m| MemberEntry {
                    ordinal: m.ordinal,
                    url: m.url.clone(),
                })
                .collect(),
        };
        self.write_members(&file)
    }

    fn write_members(&self, file: &MemberFile) -> Result<(), String> {
        let Some(dir) = &self.data_dir else {
            return Ok(());
        };
        // One writer of the file at a time (members join concurrently).
        let _w = self.persist.lock().unwrap_or_else(|e| e.into_inner());
        write_atomic(
            &dir.join("cluster.json"),
            &serde_json::to_vec_pretty(file).unwrap_or_default(),
        )
        .map_err(|e| e.to_string())
    }

    /// Waits until membership has settled: every member known from an earlier run that holds
    /// shards is live and no member has joined for [`SETTLE`]; at most [`SETTLE_MAX`]. The coordinator applies
    /// `--manifests` after it, so new streams' shards spread over the pods starting with it.
    pub async fn wait_for_members(&self) {
        let started = Instant::now();
        loop {
            let now = Instant::now();
            // Members known from an earlier run that hold shards (others may be gone for good).
            let known_live = self
                .member_views()
                .iter()
                .all(|m| m.live || m.open_shards + m.closed_shards == 0);
            let quiet = now - *self.last_join.lock().unwrap_or_else(|e| e.into_inner()) >= SETTLE;
            if (known_live && quiet) || now - started >= SETTLE_MAX {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The long poll: records that member `ordinal` (if named) has `after`, then answers once
    /// a newer version is published (or after [`POLL_WAIT`]). `None` if the member named has
    /// not joined.
    pub async fn state(self: &Arc<Self>, ordinal: Option<u32>, after: u64) -> Option<Bytes> {
        // Before its first publication (just started) the coordinator has no snapshot: an
        // empty one would make members delete every stream they hold.
        // (A flag, not the publication lock: a publication waiting for a reshard must not hold
        // up the polls that confirm earlier versions.)
        if !self
            .first_published
            .load(std::sync::atomic::Ordering::Acquire)
        {
            self.publish().await;
        }
        // Versions restart from the clock: a member newer than this run has metadata of an
        // earlier run, none of this one (answered at once; it confirms nothing).
        let after = if after > self.version() { 0 } else { after };
        if let Some(ordinal) = ordinal {
            let mut members = self.members();
            let m = members.get_mut(&ordinal)?;
            m.acked = m.acked.max(after);
            m.last_seen = Some(Instant::now());
            m.polling += 1;
        }
        self.acks.notify_waiters();
        let mut guard = ordinal.map(|ordinal| PollGuard {
            cluster: self.clone(),
            ordinal,
            answered: false,
        });
        let mut rx = self.version.subscribe();
        let _ = tokio::time::timeout(POLL_WAIT, rx.wait_for(|v| *v > after)).await;
        if let Some(g) = guard.as_mut() {
            g.answered = true;
        }
        Some(self.snapshot_body())
    }

    fn snapshot_body(&self) -> Bytes {
        let version = self.version();
        let streams = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let members = serde_json::to_string(&self.member_views()).unwrap_or_default();
        let id = serde_json::to_string(&self.cluster_id()).unwrap_or_default();
        let mut out = format!(
            "{{\"clusterId\":{id},\"version\":{version},\"members\":{members},\"streams\":"
        )
        .into_bytes();
        out.extend_from_slice(&streams);
        out.push(b'}');
        Bytes::from(out)
    }

    /// Coordinator: publishes changes made outside control-plane calls (delays, retention,
    /// the autoscaler) and keeps the gauges current.
    pub async fn run_coordinator(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut ticks = 0u32;
        loop {
            self.publish().await;
            ticks += 1;
            if ticks.is_multiple_of(10) {
                let views = self.member_views();
                self.refresh_metrics(&views);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => break,
            }
        }
    }

    // ---- Member ----

    /// Member: joins the coordinator and keeps the replica current, until `stop`.
    pub async fn run_member(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut joined = false;
        loop {
            let step = async {
                if !joined {
                    let id = self
                        .client
                        .join(
                            &self.cfg,
                            self.cfg.ordinal,
                            &self.cfg.advertise,
                            self.cluster_id(),
                        )
                        .await?;
                    self.adopt_id(id.as_deref())?;
                    joined = true;
                }
                let snap = self
                    .client
                    .state(&self.cfg, self.cfg.ordinal, self.version())
                    .await?;
                self.apply(snap).await
            };
            let result = tokio::select! {
                r = step => r,
                _ = stop.changed() => return,
            };
            if let Err(e) = result {
                // Another cluster's coordinator: said loudly, and asked again less often.
                let foreign = self.foreign.load(std::sync::atomic::Ordering::Relaxed);
                if foreign {
                    tracing::error!(error = %e, coordinator = %self.cfg.coordinator, "Refusing the cluster coordinator's metadata.");
                } else {
                    tracing::warn!(error = %e, coordinator = %self.cfg.coordinator, "Cluster metadata poll failed; retrying.");
                }
                joined = false;
                let pause = Duration::from_secs(if foreign { 10 } else { 1 });
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// Applies a snapshot to the replica.
    pub async fn apply(&self, snap: Snapshot) -> Result<(), String> {
        // Before anything else: another cluster's metadata would delete this member's data.
        self.adopt_id(snap.cluster_id.as_deref())?;
        let urls = |ms: &[MemberView]| -> Vec<(u32, String)> {
            ms.iter().map(|m| (m.ordinal, m.url.clone())).collect()
        };
        let changed = {
            let mut members = self
                .replica_members
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let changed = urls(&members) != urls(&snap.members);
            *members = snap.members;
            changed
        };
        if changed {
            self.persist_members()?;
        }
        if snap.version != self.version() {
            self.engine
                .apply_replica(snap.streams)
                .await
                .map_err(|e| format!("applying the metadata failed: {e}"))?;
            self.version.send_replace(snap.version);
        }
        self.synced
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let views = self.member_views();
        self.refresh_metrics(&views);
        Ok(())
    }

    /// Waits (bounded) until the replica has version `v` (read-your-writes after a forwarded
    /// control-plane call).
    pub async fn wait_for_version(&self, v: u64) {
        let mut rx = self.version.subscribe();
        let _ = tokio::time::timeout(ACK_WAIT, rx.wait_for(|have| *have >= v)).await;
    }
}

/// Counts a long poll as in progress until dropped (the member disconnecting drops it; so
/// does a member that vanished without closing its connection, once TCP keepalive on the
/// coordinator's connections notices, within about 5 s: see `server::keep_alive`).
struct PollGuard {
    cluster: Arc<Cluster>,
    ordinal: u32,
    /// The poll was answered: the member was there until now. A poll cut off (its
    /// connection closed or found dead) says nothing newer than its start.
    answered: bool,
}

impl Drop for PollGuard {
    fn drop(&mut self) {
        if let Some(m) = self.cluster.members().get_mut(&self.ordinal) {
            m.polling = m.polling.saturating_sub(1);
            if self.answered {
                m.last_seen = Some(Instant::now());
            }
        }
    }
}

fn gauges() -> &'static (prometheus::IntGauge, prometheus::IntGaugeVec) {
    static G: OnceLock<(prometheus::IntGauge, prometheus::IntGaugeVec)> = OnceLock::new();
    G.get_or_init(|| {
        let r = &crate::metrics::global().registry;
        let members = prometheus::IntGauge::new(
            "tributary_cluster_members",
            "Live members of the cluster, as this pod sees them.",
        )
        .expect("valid metric");
        let owned = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "tributary_cluster_owned_shards",
                "Shards whose log this pod holds, by stream and state (open, closed).",
            ),
            &["stream", "state"],
        )
        .expect("valid metric");
        let _ = r.register(Box::new(members.clone()));
        let _ = r.register(Box::new(owned.clone()));
        (members, owned)
    })
}

impl Placement for Cluster {
    fn is_coordinator(&self) -> bool {
        Cluster::is_coordinator(self)
    }

    fn live_members(&self) -> Vec<u32> {
        self.member_views()
            .into_iter()
            .filter(|m| m.live)
            .map(|m| m.ordinal)
            .collect()
    }

    fn append(
        &self,
        owner: u32,
        stream: &Stream,
        shard: u32,
        records: Vec<RecordIn>,
        flags: u8,
    ) -> BoxFuture<'static, Result<Vec<Option<u64>>, AppendFailure>> {
        let url = self.url_of(owner);
        let client = self.client.clone();
        let token = self.cfg.secret.clone();
        let incarnation = stream.incarnation;
        Box::pin(async move {
            let Some(url) = url else {
                return Err(AppendFailure::Retry);
            };
            client
                .append(&url, &token, incarnation, shard, flags, records)
                .await
        })
    }

    fn seal(
        &self,
        owner: u32,
        stream: &Stream,
        shard: u32,
    ) -> BoxFuture<'static, Result<u64, String>> {
        let url = self.url_of(owner);
        let client = self.client.clone();
        let token = self.cfg.secret.clone();
        let incarnation = stream.incarnation;
        Box::pin(async move {
            let url = url.ok_or_else(|| format!("member {owner} is unknown"))?;
            // The reshard waits for the owner: the parent must be sealed before it is closed.
            // Bounded in all: a hung owner would otherwise hold the control lock (and every
            // publication) for 20 calls' timeouts.
            let deadline = Instant::now() + SEAL_WAIT;
            let mut last = String::new();
            for attempt in 0..20u64 {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match client.seal(&url, &token, incarnation, shard, left).await {
                    Ok(end) => return Ok(end),
                    Err(e) => last = e,
                }
                let pause = Duration::from_millis(100 * (attempt + 1).min(5));
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
            }
            Err(format!("the owner did not seal the shard in time: {last}"))
        })
    }

    fn remote_write_rate(
        &self,
        stream: &Stream,
        shard: &crate::streams::Shard,
    ) -> Option<(f64, f64)> {
        self.reported_rate(stream, shard)
    }

    fn read(
        &self,
        owner: u32,
        stream: &Stream,
        shard: u32,
        req: crate::streams::shard_read::ShardRead,
    ) -> BoxFuture<'static, Result<crate::streams::shard_read::ShardPage, String>> {
        self.read_at(owner, stream, shard, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_come_from_the_pod_name() {
        assert_eq!(ordinal_of("orders-0"), Some(0));
        assert_eq!(ordinal_of("my-orders-12"), Some(12));
        assert_eq!(ordinal_of("orders"), None);
        assert_eq!(ordinal_of("orders-x"), None);
    }

    #[test]
    fn every_pod_derives_the_same_iterator_key_from_the_secret() {
        let cfg = |secret: &str| ClusterConfig {
            coordinator: "http://a:1".into(),
            advertise: "http://b:1".into(),
            ordinal: 1,
            secret: secret.into(),
        };
        assert_eq!(cfg("s3cret").iterator_key(), cfg("s3cret").iterator_key());
        assert_ne!(cfg("s3cret").iterator_key(), cfg("other").iterator_key());
    }

    fn cfg(ordinal: u32) -> ClusterConfig {
        ClusterConfig {
            coordinator: "http://127.0.0.1:9".into(),
            advertise: format!("http://127.0.0.1:{}", 9 + ordinal),
            ordinal,
            secret: "s3cret".into(),
        }
    }

    /// An engine (ordinal 0) holding one stream "orders" with one shard.
    async fn coordinator_engine() -> Arc<Streams> {
        use crate::streams::stream::ShardMeta;
        use crate::streams::{StreamMode, StreamState, StreamStatus, StreamsConfig};
        let engine = Streams::open(
            StreamsConfig {
                cluster_ordinal: Some(0),
                iterator_key: Some([7; 32]),
                ..StreamsConfig::default()
            },
            crate::clock::Clock::default(),
        )
        .await
        .unwrap();
        let meta = StreamMeta {
            name: "orders".into(),
            incarnation: 77,
            created_ms: 1,
            state: StreamState {
                status: StreamStatus::Active,
                retention_hours: 24,
                mode: StreamMode::Provisioned,
                tags: Default::default(),
                encryption_key: None,
                enhanced_metrics: Default::default(),
                max_record_kib: 1024,
                consumers: Vec::new(),
                shard_count_updates: Vec::new(),
                next_shard_index: 1,
                policies: Default::default(),
                warm_throughput_mibps: None,
            },
            shards: vec![ShardMeta {
                index: 0,
                start_hash: "0".into(),
                end_hash: u128::MAX.to_string(),
                parent: None,
                adjacent_parent: None,
                created_ms: 1,
                closed: None,
                owner: Some(0),
            }],
        };
        engine.apply_replica(vec![meta]).await.unwrap();
        engine
    }

    fn snapshot(raw: &[u8]) -> Snapshot {
        serde_json::from_slice(raw).unwrap()
    }

    /// A change the background publication (every 500 ms) published before the call that made
    /// it did is still confirmed by every live member before that call answers.
    #[tokio::test]
    async fn a_call_waits_for_acks_even_when_its_change_was_published_already() {
        let cluster = Cluster::new(cfg(0), coordinator_engine().await, None);
        cluster.join(1, "http://127.0.0.1:10".into()).unwrap();
        let v0 = snapshot(&cluster.state(None, 0).await.unwrap()).version;
        // Member 1 has v0 and is polling for more.
        let poll = tokio::spawn({
            let c = cluster.clone();
            async move { c.state(Some(1), v0).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A call changes the metadata; the background task publishes it first.
        let stream = cluster.engine.get("orders").unwrap();
        stream.state().retention_hours = 48;
        let v1 = cluster.publish().await;
        assert!(v1 > v0);
        poll.await.unwrap();
        // The member has not confirmed v1 yet: the call's answer waits for it.
        let call = tokio::spawn({
            let c = cluster.clone();
            async move { c.publish_and_wait().await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !call.is_finished(),
            "answered before member 1 had the change"
        );
        // Member 1 applies v1 and polls again, confirming it.
        let poll = tokio::spawn({
            let c = cluster.clone();
            async move { c.state(Some(1), v1).await }
        });
        let answered = tokio::time::timeout(Duration::from_secs(2), call).await;
        assert_eq!(answered.expect("answered once confirmed").unwrap(), v1);
        poll.abort();
    }

    /// A reshard holds the stream's control lock while it seals a parent at its owner, and
    /// every publication waits for that lock: a hung owner must fail the reshard quickly, not
    /// stall every control-plane call for minutes.
    #[tokio::test]
    async fn sealing_at_a_hung_owner_gives_up_within_seconds() {
        // Accepts connections, never answers.
        let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = hung.local_addr().unwrap();
        let _accepting = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = hung.accept().await {
                held.push(conn);
            }
        });
        let cluster = Cluster::new(cfg(0), coordinator_engine().await, None);
        cluster.join(1, format!("http://{addr}")).unwrap();
        let stream = cluster.engine.get("orders").unwrap();
        let started = Instant::now();
        let sealed = tokio::time::timeout(
            Duration::from_secs(30),
            Placement::seal(&*cluster, 1, &stream, 0),
        )
        .await
        .expect("gave up in time");
        assert!(sealed.is_err());
        assert!(started.elapsed() <= SEAL_WAIT + Duration::from_secs(2));
    }

    /// Versions restart from the coordinator's clock: after a restart (on a node whose clock
    /// is behind, or within moments) a member may poll with a version from the earlier run,
    /// newer than any of this run. It has none of this run's metadata: it gets the snapshot at
    /// once, and its stale version confirms nothing.
    #[tokio::test]
    async fn a_member_ahead_of_a_restarted_coordinator_is_answered_at_once() {
        let cluster = Cluster::new(cfg(0), coordinator_engine().await, None);
        cluster.join(1, "http://127.0.0.1:10".into()).unwrap();
        let v = cluster.publish().await;
        let stale = v + 1_000_000;
        let answer = tokio::time::timeout(Duration::from_secs(2), cluster.state(Some(1), stale))
            .await
            .expect("answered at once");
        assert_eq!(snapshot(&answer.unwrap()).version, v);
        // The member is live but has not confirmed v: a call waits for it.
        let call = tokio::spawn({
            let c = cluster.clone();
            async move { c.wait_for_acks(v).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !call.is_finished(),
            "a version of an earlier run confirmed v"
        );
        call.abort();
    }

    /// A member asking for the metadata before the coordinator's first publication (the
    /// coordinator just restarted) must get its streams, not an empty list: a member applying
    /// an empty list deletes every stream it holds, logs included.
    #[tokio::test]
    async fn the_first_snapshot_lists_the_coordinators_streams() {
        let cluster = Cluster::new(cfg(0), coordinator_engine().await, None);
        let snap = snapshot(&cluster.state(None, 0).await.unwrap());
        assert_eq!(snap.streams.len(), 1, "the snapshot lists the stream");
        assert_eq!(snap.streams[0].name, "orders");
        assert_eq!(snap.version, cluster.version());
        // Publishing changes nothing more: the member already has this version.
        assert_eq!(cluster.publish().await, snap.version);
    }

    /// The coordinator creates its cluster id once and keeps it in its data directory; a
    /// coordinator without one (`--in-memory`, or a lost directory) is a new cluster.
    #[tokio::test]
    async fn the_coordinator_keeps_its_cluster_id() {
        let dir = tempfile::tempdir().unwrap();
        let first = Cluster::new(
            cfg(0),
            coordinator_engine().await,
            Some(dir.path().to_path_buf()),
        );
        let id = first.cluster_id().expect("an id");
        let snap = snapshot(&first.state(None, 0).await.unwrap());
        assert_eq!(snap.cluster_id.as_deref(), Some(id.as_str()));
        let again = Cluster::new(
            cfg(0),
            coordinator_engine().await,
            Some(dir.path().to_path_buf()),
        );
        assert_eq!(again.cluster_id().as_deref(), Some(id.as_str()));
        let lost = Cluster::new(cfg(0), coordinator_engine().await, None);
        assert_ne!(lost.cluster_id().as_deref(), Some(id.as_str()));
    }

    /// A coordinator restarted without its data publishes an empty stream list; a member
    /// applying it would delete every log it holds. The member sees another cluster id and
    /// refuses it: its streams stay, and it is not ready.
    #[tokio::test]
    async fn a_member_refuses_the_metadata_of_another_cluster() {
        use crate::streams::StreamsConfig;
        let dir = tempfile::tempdir().unwrap();
        let coordinator = Cluster::new(cfg(0), coordinator_engine().await, None);
        let member = Cluster::new(
            cfg(1),
            coordinator_engine().await,
            Some(dir.path().to_path_buf()),
        );
        let good = || async { snapshot(&coordinator.state(None, 0).await.unwrap()) };
        member.apply(good().await).await.unwrap();
        assert!(member.is_ready());
        assert_eq!(member.cluster_id(), coordinator.cluster_id());

        // The coordinator restarts with an empty data directory.
        let empty = Streams::open(
            StreamsConfig {
                cluster_ordinal: Some(0),
                iterator_key: Some([7; 32]),
                ..StreamsConfig::default()
            },
            crate::clock::Clock::default(),
        )
        .await
        .unwrap();
        let lost = Cluster::new(cfg(0), empty, None);
        let foreign = || async { snapshot(&lost.state(None, 0).await.unwrap()) };
        assert!(foreign().await.streams.is_empty());
        let refused = member.apply(foreign().await).await.unwrap_err();
        assert!(refused.contains("refusing"), "{refused}");
        assert!(member.engine.get("orders").is_ok(), "the stream was kept");
        assert!(!member.is_ready(), "a refusing member is not ready");

        // Restarted on the same data directory, the member still knows its cluster.
        let restarted = Cluster::new(
            cfg(1),
            coordinator_engine().await,
            Some(dir.path().to_path_buf()),
        );
        assert!(restarted.apply(foreign().await).await.is_err());
        assert!(restarted.engine.get("orders").is_ok());

        // Its own coordinator back: applied again, ready again.
        member.apply(good().await).await.unwrap();
        assert!(member.is_ready());
    }

    /// A member that vanished without closing its connection: its poll is dropped once TCP
    /// keepalive finds the connection dead, and it is not live from then on (its poll's start
    /// is its last sign of life), not for another live window.
    #[tokio::test]
    async fn a_poll_cut_off_does_not_keep_its_member_live() {
        let cluster = Cluster::new(cfg(0), coordinator_engine().await, None);
        cluster.join(1, "http://127.0.0.1:10".into()).unwrap();
        let v = cluster.publish().await;
        let poll = tokio::spawn({
            let c = cluster.clone();
            async move { c.state(Some(1), v).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let live = |c: &Cluster| c.live_members().contains(&1);
        assert!(live(&cluster), "a member polling is live");
        // The poll began a while ago, and its connection is now found dead.
        cluster.members().get_mut(&1).unwrap().last_seen = Some(Instant::now() - LIVE_WINDOW);
        poll.abort();
        let _ = poll.await;
        assert!(
            !live(&cluster),
            "a member whose poll was cut off is not live"
        );
        // A poll answered is a sign of life.
        let answered = cluster.clone();
        let last = tokio::spawn(async move { answered.state(Some(1), 0).await });
        assert!(last.await.unwrap().is_some());
        assert!(live(&cluster));
    }
}
