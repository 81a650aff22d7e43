//! Where shards live in cluster mode, seen from the engine: which pod holds a shard's log,
//! how owners are chosen, how a shard held elsewhere is written and sealed, and how a
//! metadata snapshot from the coordinator is applied to this pod's replica.
//!
//! The engine stays free of HTTP: the cluster module implements [`Placement`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::stream::{ShardMeta, StreamMeta};
use super::{storage_error, AwsError, Shard, Stream, Streams};
use crate::storage::{RecordIn, StorageError};

/// Why an append to a shard failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendFailure {
    /// The shard no longer takes writes (sealed by a reshard) or its owner does not know it
    /// yet: route again with newer metadata.
    Retry,
    /// The write failed; the records fail with InternalFailure.
    Failed,
}

/// What the engine needs from the cluster.
pub trait Placement: Send + Sync {
    /// Whether this pod runs control-plane changes (ordinal 0).
    fn is_coordinator(&self) -> bool;
    /// Ordinals of the members that can take new shards now.
    fn live_members(&self) -> Vec<u32>;
    /// Appends records to shard `shard` of `stream`, held by `owner`. Each record gets its
    /// offset, or `None` when refused for the shard's write limit.
    fn append(
        &self,
        owner: u32,
        stream: &Stream,
        shard: u32,
        records: Vec<RecordIn>,
        flags: u8,
    ) -> BoxFuture<'static, Result<Vec<Option<u64>>, AppendFailure>>;
    /// Closes shard `shard` of `stream` at `owner` for writes; returns its end offset.
    fn seal(
        &self,
        owner: u32,
        stream: &Stream,
        shard: u32,
    ) -> BoxFuture<'static, Result<u64, String>>;
    /// The write rate (bytes/s, records/s) of a shard another pod holds, as its owner last
    /// reported it to the coordinator; `None` when unknown (no recent report, owner not live).
    fn remote_write_rate(&self, _stream: &Stream, _shard: &Shard) -> Option<(f64, f64)> {
        None
    }
    /// Reads shard `shard` of `stream` at `owner` (for delivery streams and analytics
    /// applications reading a clustered stream; see [`super::shard_read`]).
    fn read(
        &self,
        owner: u32,
        stream: &Stream,
        shard: u32,
        req: super::shard_read::ShardRead,
    ) -> BoxFuture<'static, Result<super::shard_read::ShardPage, String>> {
        let _ = (owner, stream, shard, req);
        Box::pin(async { Err("reading shards held elsewhere is not supported".to_string()) })
    }
}

/// Owners for `n` new shards: each goes to the live member with the fewest open shards, ties
/// to the lowest ordinal. `open` counts open shards per ordinal.
pub fn choose_owners(live: &[u32], open: &BTreeMap<u32, usize>, n: usize) -> Vec<u32> {
    let mut counts: BTreeMap<u32, usize> = live
        .iter()
        .map(|&o| (o, open.get(&o).copied().unwrap_or(0)))
        .collect();
    if counts.is_empty() {
        counts.insert(0, 0);
    }
    (0..n)
        .map(|_| {
            let (&o, _) = counts
                .iter()
                .min_by_key(|(&o, &c)| (c, o))
                .unwrap_or((&0, &0));
            *counts.entry(o).or_default() += 1;
            o
        })
        .collect()
}

impl Streams {
    /// Whether this process holds the log of the shard `meta` describes.
    /// In cluster mode a shard without an owner (created by a single server before cluster
    /// mode was turned on) belongs to the coordinator.
    pub(super) fn holds(&self, meta: &ShardMeta) -> bool {
        match self.cfg.cluster_ordinal {
            Some(me) => meta.owner.unwrap_or(0) == me,
            None => true,
        }
    }

    /// Owners for `n` new shards (none outside cluster mode). Shards in `closing`
    /// (incarnation, index) are about to close and do not count.
    pub(super) fn choose_owners(&self, closing: &[(u64, u32)], n: usize) -> Vec<u32> {
        let Some(p) = self.placement.get() else {
            return Vec::new();
        };
        let mut open: BTreeMap<u32, usize> = BTreeMap::new();
        for stream in self.list() {
            for shard in stream.shard_set().open.iter() {
                if closing.contains(&(stream.incarnation, shard.index)) {
                    continue;
                }
                *open.entry(shard.owner.unwrap_or(0)).or_default() += 1;
            }
        }
        choose_owners(&p.live_members(), &open, n)
    }

    /// The stream with this incarnation.
    pub fn by_incarnation(&self, incarnation: u64) -> Option<Arc<Stream>> {
        self.by_incarnation
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&incarnation)
            .cloned()
    }

    /// Appends to a shard whose log this process holds, charging its write limit per record.
    pub async fn append_local(
        &self,
        stream: &Arc<Stream>,
        shard: &Arc<Shard>,
        records: Vec<RecordIn>,
        flags: u8,
    ) -> Result<Vec<Option<u64>>, AppendFailure> {
        let Some(log) = &shard.log else {
            return Err(AppendFailure::Retry);
        };
        let now = self.clock.now_ms();
        let mut admitted = Vec::with_capacity(records.len());
        let mut accepted = Vec::with_capacity(records.len());
        let mut bytes = 0usize;
        for r in records {
            let size = r.data.len() + r.partition_key.len();
            if self.cfg.limits && !shard.write_limit.try_take(size as f64, 1.0, now) {
                crate::metrics::global().write_throttled(stream, &shard.id);
                accepted.push(false);
                continue;
            }
            bytes += size;
            accepted.push(true);
            admitted.push(r);
        }
        if admitted.is_empty() {
            return Ok(vec![None; accepted.len()]);
        }
        let n = admitted.len() as u64;
        match log.append(admitted, flags).await {
            Ok(out) => {
                shard.meter.add(bytes as u64, n);
                let mut next = out.first_offset;
                Ok(accepted
                    .into_iter()
                    .map(|ok| {
                        ok.then(|| {
                            next += 1;
                            next - 1
                        })
                    })
                    .collect())
            }
            Err(StorageError::Closed) => Err(AppendFailure::Retry),
            Err(e) => {
                tracing::error!(error = %e, stream = %stream.name, shard = %shard.id, "Write failed.");
                Err(AppendFailure::Failed)
            }
        }
    }

    /// Closes a shard held here for writes (the coordinator seals a reshard's parents at their
    /// owners); returns its end offset. Sealing again returns the same offset.
    ///
    /// A shard this pod has not heard of yet (an intermediate shard of an UpdateShardCount,
    /// created and sealed within one call) has taken no record: appends to an unknown shard
    /// are refused. It ends at offset 0, and the metadata that names it arrives closed.
    pub async fn seal_local(&self, incarnation: u64, index: u32) -> Result<u64, AwsError> {
        let early = || {
            self.sealed_early
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((incarnation, index));
            Ok(0)
        };
        let (stream, shard) = {
            // Not in the middle of a snapshot's application: one that has looked at the shards
            // sealed early but not yet added this shard would leave it open for writes.
            let _applying = self.replica_apply.lock().await;
            let Some(stream) = self.by_incarnation(incarnation) else {
                return early();
            };
            let Some(shard) = stream.shard(index) else {
                return early();
            };
            (stream, shard)
        };
        let log = shard.local_log()?.clone();
        let _c = stream.control.lock().await;
        if let Some((end, _)) = shard.closed() {
            return Ok(end);
        }
        let end = log.close().await.map_err(storage_error)?;
        shard.set_closed(end, self.clock.now_ms());
        stream
            .shards
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .rebuild_open();
        stream.persist().map_err(storage_error)?;
        Ok(end)
    }

    /// Makes this pod's streams match the coordinator's metadata: new streams and shards are
    /// added (opening the logs this pod owns), settings and closures copied, and streams and
    /// shards the coordinator no longer lists are forgotten with their local data.
    pub async fn apply_replica(&self, metas: Vec<StreamMeta>) -> Result<(), StorageError> {
        let _applying = self.replica_apply.lock().await;
        let wanted: HashSet<u64> = metas.iter().map(|m| m.incarnation).collect();
        for stream in self.list() {
            if !wanted.contains(&stream.incarnation) {
                tracing::info!(stream = %stream.name, "Removing a stream the coordinator no longer lists.");
                let shards: Vec<String> =
                    stream.all_shards().iter().map(|s| s.id.clone()).collect();
                self.remove(&stream).await;
                crate::metrics::global().remove_stream(&stream.name, &shards);
            }
        }
        for meta in metas {
            let Some(stream) = self.by_incarnation(meta.incarnation) else {
                let dir = self
                    .streams_dir()
                    .map(|d| d.join(format!("{:016x}", meta.incarnation)));
                let stream = self.build_stream(meta, dir)?;
                self.close_sealed_early(&stream).await?;
                stream.persist()?;
                crate::metrics::global().init_stream(&stream.name);
                stream.publish_shard_metrics();
                self.insert(stream);
                continue;
            };
            let _c = stream.control.lock().await;
            // Most snapshots change one stream: leave the others (and their files) alone.
            if serde_json::to_value(stream.meta()).ok() == serde_json::to_value(&meta).ok() {
                continue;
            }
            *stream.state() = meta.state.clone();
            let now = self.clock.now_ms();
            let mut dropped = Vec::new();
            let mut to_close = Vec::new();
            let mut added = Vec::new();
            for sm in &meta.shards {
                if stream.shard(sm.index).is_none() {
                    let log = if self.holds(sm) {
                        Some(self.open_log(&stream, sm.index, sm.closed.is_some())?)
                    } else {
                        None
                    };
                    added.push(Arc::new(Shard::new(sm, log, now)));
                }
            }
            {
                let mut set = stream.shards.write().unwrap_or_else(|e| e.into_inner());
                set.all.retain(|s| {
                    let keep = meta.shards.iter().any(|m| m.index == s.index);
                    if !keep {
                        dropped.push(s.clone());
                    }
                    keep
                });
                set.all.extend(added);
                set.all.sort_by_key(|s| s.index);
                for s in &set.all {
                    let Some(m) = meta.shards.iter().find(|m| m.index == s.index) else {
                        continue;
                    };
                    if let Some((end, at)) = m.closed {
                        if s.closed() != Some((end, at)) {
                            s.set_closed(end, at);
                        }
                        if s.log.as_ref().is_some_and(|l| !l.is_closed()) {
                            to_close.push(s.clone());
                        }
                    }
                }
                set.rebuild_open();
            }
            for s in to_close {
                if let Some(log) = &s.log {
                    log.close().await?;
                }
            }
            for s in dropped {
                if let Some(log) = &s.log {
                    let _ = log.destroy().await;
                }
            }
            self.close_sealed_early(&stream).await?;
            stream.persist()?;
            stream.publish_shard_metrics();
        }
        Ok(())
    }

    /// Closes the shards of `stream` that were sealed before this pod heard of them, should
    /// the metadata still list them open.
    async fn close_sealed_early(&self, stream: &Arc<Stream>) -> Result<(), StorageError> {
        let early: Vec<u32> = self
            .sealed_early
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(inc, _)| *inc == stream.incarnation)
            .map(|(_, i)| *i)
            .collect();
        let mut changed = false;
        for index in early {
            let Some(shard) = stream.shard(index) else {
                continue;
            };
            let Some(log) = &shard.log else { continue };
            if shard.is_open() {
                let end = log.close().await?;
                shard.set_closed(end, self.clock.now_ms());
                changed = true;
            }
        }
        if changed {
            stream
                .shards
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .rebuild_open();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::streams::{StreamMode, StreamState, StreamStatus, StreamsConfig};
    use bytes::Bytes;

    fn shard(index: u32, owner: u32, range: (u128, u128), parents: &[u32]) -> ShardMeta {
        ShardMeta {
            index,
            start_hash: range.0.to_string(),
            end_hash: range.1.to_string(),
            parent: parents.first().map(|p| super::super::shard_id(*p)),
            adjacent_parent: parents.get(1).map(|p| super::super::shard_id(*p)),
            created_ms: 1,
            closed: None,
            owner: Some(owner),
        }
    }

    fn meta(shards: Vec<ShardMeta>) -> StreamMeta {
        StreamMeta {
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
                next_shard_index: shards.len() as u32,
                policies: Default::default(),
                warm_throughput_mibps: None,
            },
            shards,
        }
    }

    async fn member(dir: &std::path::Path) -> Arc<Streams> {
        let cfg = StreamsConfig {
            data_dir: Some(dir.to_path_buf()),
            cluster_ordinal: Some(1),
            iterator_key: Some([7; 32]),
            ..StreamsConfig::default()
        };
        Streams::open(cfg, Clock::default()).await.unwrap()
    }

    fn record(data: &'static str) -> RecordIn {
        RecordIn {
            partition_key: Bytes::from_static(b"k"),
            data: Bytes::from_static(data.as_bytes()),
        }
    }

    #[tokio::test]
    async fn a_member_applies_snapshots_holding_only_its_own_logs() {
        let dir = tempfile::tempdir().unwrap();
        let engine = member(dir.path()).await;
        let third = u128::MAX / 3;
        let v1 = meta(vec![
            shard(0, 0, (0, third), &[]),
            shard(1, 1, (third + 1, 2 * third), &[]),
            shard(2, 2, (2 * third + 1, u128::MAX), &[]),
        ]);
        engine.apply_replica(vec![v1.clone()]).await.unwrap();
        let stream = engine.get("orders").unwrap();
        let held: Vec<bool> = stream
            .all_shards()
            .iter()
            .map(|s| s.log.is_some())
            .collect();
        assert_eq!(held, vec![false, true, false]);
        let shard_dir = |i: u32| {
            dir.path()
                .join(format!("streams/{:016x}/shards/{i:06}", 77))
        };
        // The held shard is written to the stream's log; no shard has a log of its own.
        let log_dir = dir.path().join(format!("streams/{:016x}/log", 77));
        assert!(log_dir.exists() && !shard_dir(0).exists() && !shard_dir(1).exists());
        // A shard held elsewhere sends callers to its owner.
        let Err(err) = stream.shard(2).unwrap().local_log() else {
            panic!("shard 2 is held by ordinal 2");
        };
        assert_eq!(crate::streams::errors::not_local_owner(&err), Some(2));

        // Records land in the held shard; the coordinator seals it for a split whose children
        // go to ordinals 1 and 2.
        let s1 = stream.shard(1).unwrap();
        let out = engine
            .append_local(&stream, &s1, vec![record("a"), record("b")], 0)
            .await
            .unwrap();
        assert_eq!(out, vec![Some(0), Some(1)]);
        assert_eq!(engine.seal_local(77, 1).await.unwrap(), 2);
        assert_eq!(
            engine.seal_local(77, 1).await.unwrap(),
            2,
            "sealing is idempotent"
        );
        assert_eq!(
            engine
                .append_local(&stream, &s1, vec![record("c")], 0)
                .await,
            Err(AppendFailure::Retry)
        );
        let mut v2 = v1.clone();
        v2.shards[1].closed = Some((2, 5));
        let mid = third + third / 2;
        v2.shards.push(shard(3, 1, (third + 1, mid), &[1]));
        v2.shards.push(shard(4, 2, (mid + 1, 2 * third), &[1]));
        engine.apply_replica(vec![v2.clone()]).await.unwrap();
        assert_eq!(stream.shard(1).unwrap().closed(), Some((2, 5)));
        assert!(stream.shard(3).unwrap().log.is_some());
        assert!(stream.shard(4).unwrap().log.is_none());
        let open: Vec<u32> = stream.shard_set().open.iter().map(|s| s.index).collect();
        assert_eq!(open, vec![0, 3, 4, 2]);
        let children: Vec<String> = engine
            .children_of(&stream, &stream.shard(1).unwrap())
            .into_iter()
            .map(|c| c.shard_id)
            .collect();
        assert_eq!(
            children,
            vec!["shardId-000000000003", "shardId-000000000004"]
        );

        // Restarted, the member reloads its replica and its logs.
        engine.shutdown().await;
        drop(stream);
        drop(engine);
        let engine = member(dir.path()).await;
        let stream = engine.get("orders").unwrap();
        assert_eq!(stream.all_shards().len(), 5);
        assert_eq!(
            stream.shard(1).unwrap().log.as_ref().unwrap().end_offset(),
            2
        );

        // Retention dropped the closed parent; then the stream was deleted.
        let mut v3 = v2.clone();
        v3.shards.retain(|s| s.index != 1);
        engine.apply_replica(vec![v3]).await.unwrap();
        assert!(stream.shard(1).is_none());
        engine.apply_replica(vec![]).await.unwrap();
        assert!(engine.find("orders").is_none());
        assert!(!dir.path().join(format!("streams/{:016x}", 77)).exists());
    }

    #[tokio::test]
    async fn a_shard_sealed_before_the_member_heard_of_it_arrives_closed() {
        let dir = tempfile::tempdir().unwrap();
        let engine = member(dir.path()).await;
        // An intermediate shard of an UpdateShardCount: sealed, then named (still open).
        assert_eq!(engine.seal_local(77, 0).await.unwrap(), 0);
        engine
            .apply_replica(vec![meta(vec![shard(0, 1, (0, u128::MAX), &[])])])
            .await
            .unwrap();
        let stream = engine.get("orders").unwrap();
        let s0 = stream.shard(0).unwrap();
        assert!(!s0.is_open());
        assert_eq!(
            engine
                .append_local(&stream, &s0, vec![record("x")], 0)
                .await,
            Err(AppendFailure::Retry)
        );
    }

    /// The coordinator seals a shard while this member is applying the snapshot that first
    /// names it (a split right after CreateStream). Whatever end the seal answers, the shard
    /// must take no record after it: an acknowledged record past the end the coordinator
    /// recorded is lost to every reader.
    #[tokio::test]
    async fn a_seal_during_a_snapshot_application_is_never_followed_by_writes() {
        let dir = tempfile::tempdir().unwrap();
        let engine = member(dir.path()).await;
        // Shard 1 was sealed before the member heard of it: applying the snapshot closes its
        // log, which lets other tasks run midway through the application.
        assert_eq!(engine.seal_local(77, 1).await.unwrap(), 0);
        let seal = tokio::spawn({
            let engine = engine.clone();
            async move { engine.seal_local(77, 0).await }
        });
        let half = u128::MAX / 2;
        engine
            .apply_replica(vec![meta(vec![
                shard(0, 1, (0, half), &[]),
                shard(1, 1, (half + 1, u128::MAX), &[]),
            ])])
            .await
            .unwrap();
        let end = seal.await.unwrap().unwrap();
        let stream = engine.get("orders").unwrap();
        let s0 = stream.shard(0).unwrap();
        assert_eq!(
            engine
                .append_local(&stream, &s0, vec![record("late")], 0)
                .await,
            Err(AppendFailure::Retry),
            "shard 0 was sealed at offset {end} but took a record"
        );
    }

    /// A member whose peers' owner never takes the records (it answers "not writable here"
    /// slowly, as an owner does while its metadata lags or a black-holed one does when every
    /// connection attempt times out).
    struct SlowRefusals;

    impl Placement for SlowRefusals {
        fn is_coordinator(&self) -> bool {
            false
        }
        fn live_members(&self) -> Vec<u32> {
            vec![0, 1, 2]
        }
        fn append(
            &self,
            _owner: u32,
            _stream: &Stream,
            _shard: u32,
            _records: Vec<RecordIn>,
            _flags: u8,
        ) -> BoxFuture<'static, Result<Vec<Option<u64>>, AppendFailure>> {
            Box::pin(async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                Err(AppendFailure::Retry)
            })
        }
        fn seal(
            &self,
            _owner: u32,
            _stream: &Stream,
            _shard: u32,
        ) -> BoxFuture<'static, Result<u64, String>> {
            Box::pin(async { Ok(0) })
        }
    }

    /// Records whose owner keeps refusing are routed again for about 5 seconds, however long
    /// each refusal takes, then fail with InternalFailure: a PutRecords must answer well within
    /// an SDK's timeout.
    #[tokio::test]
    async fn routing_again_stops_after_about_five_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let engine = member(dir.path()).await;
        let _ = engine.placement.set(Arc::new(SlowRefusals));
        engine
            .apply_replica(vec![meta(vec![shard(0, 2, (0, u128::MAX), &[])])])
            .await
            .unwrap();
        let stream = engine.get("orders").unwrap();
        let started = std::time::Instant::now();
        let out = engine
            .put(
                &stream,
                &[crate::streams::PutEntry {
                    partition_key: Bytes::from_static(b"k"),
                    data: Bytes::from_static(b"x"),
                    hash: Some(1),
                }],
            )
            .await;
        let took = started.elapsed();
        assert!(
            matches!(&out[0], crate::streams::PutOutcome::Failed { code, .. } if *code == crate::streams::errors::INTERNAL_FAILURE),
            "{out:?}"
        );
        assert!(
            took < std::time::Duration::from_secs(8),
            "answered after {took:?}"
        );
    }

    #[test]
    fn owners_go_to_the_least_loaded_live_member_lowest_ordinal_first() {
        let none = BTreeMap::new();
        assert_eq!(choose_owners(&[0, 1, 2], &none, 6), vec![0, 1, 2, 0, 1, 2]);
        let open = BTreeMap::from([(0, 3), (1, 1), (2, 2)]);
        assert_eq!(choose_owners(&[0, 1, 2], &open, 3), vec![1, 1, 2]);
        // A member that is not live takes nothing, whatever its load.
        assert_eq!(choose_owners(&[0, 2], &none, 3), vec![0, 2, 0]);
        // With no live member known, the coordinator takes the shards.
        assert_eq!(choose_owners(&[], &none, 2), vec![0, 0]);
    }
}
