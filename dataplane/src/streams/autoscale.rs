//! ON_DEMAND capacity: shards are split when they run hot and merged when they run cold, so an
//! on-demand stream follows its load while consumers see ordinary reshards (closed parents,
//! ChildShards).
//!
//! Policy, checked every `check_interval_ms` for every ACTIVE on-demand stream:
//!
//! - A shard's load is the larger of its write bytes and write records over the last interval,
//!   as a fraction of the per-shard write limit (1 MiB/s, 1000 records/s).
//! - A shard whose load stays at or above `split_threshold` for `hot_window_ms` is split at the
//!   middle of its hash range (at most `max_shards` open shards per stream).
//! - Two adjacent shards whose loads both stay below `merge_threshold` for `cold_window_ms` are
//!   merged, as long as the stream keeps at least `min_shards` open shards.
//!
//! One reshard per stream per check, so each step is visible to consumers and the stream is
//! back to ACTIVE before the next one.
//!
//! In cluster mode the autoscaler runs on the coordinator. It measures the shards it holds
//! itself; every other pod reports the writes to the shards it holds (see [`RemoteLoads`]), so
//! the decision covers every shard of the stream whichever pod holds it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::stream::MIB;
use super::{Stream, StreamMode, StreamStatus, Streams};

/// Thresholds and timing of ON_DEMAND scaling.
#[derive(Debug, Clone)]
pub struct AutoscaleConfig {
    pub check_interval_ms: u64,
    pub split_threshold: f64,
    pub merge_threshold: f64,
    pub hot_window_ms: u64,
    pub cold_window_ms: u64,
    pub min_shards: usize,
    pub max_shards: usize,
}

impl Default for AutoscaleConfig {
    fn default() -> Self {
        AutoscaleConfig {
            check_interval_ms: 10_000,
            split_threshold: 0.8,
            merge_threshold: 0.1,
            hot_window_ms: 60_000,
            cold_window_ms: 600_000,
            min_shards: 4,
            max_shards: 1024,
        }
    }
}

/// Bytes and records written to a shard since the autoscaler last looked.
#[derive(Debug, Default)]
pub struct WriteMeter {
    bytes: AtomicU64,
    records: AtomicU64,
}

impl WriteMeter {
    pub fn add(&self, bytes: u64, records: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
    }

    /// Bytes and records written since the last call (cluster members report them).
    pub fn take(&self) -> (u64, u64) {
        (
            self.bytes.swap(0, Ordering::Relaxed),
            self.records.swap(0, Ordering::Relaxed),
        )
    }
}

/// Writes to one shard during a member's report interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShardWrites {
    pub incarnation: u64,
    pub shard: u32,
    pub bytes: u64,
    pub records: u64,
}

/// A report older than this many of its own intervals is no longer a measurement ...
const FRESH_INTERVALS: i64 = 3;
/// ... nor one older than this (a bound on what a report can claim).
const FRESH_MAX_MS: i64 = 30 * 60_000;
/// ... but one younger than this always is (a member reporting very often).
const FRESH_MIN_MS: i64 = 3_000;

#[derive(Debug, Clone, Copy)]
struct Reported {
    owner: u32,
    bytes_per_s: f64,
    records_per_s: f64,
    at_ms: i64,
    fresh_ms: i64,
}

/// Cluster mode, on the coordinator: the write rates of shards held by other pods, as their
/// owners last reported them.
///
/// - A report replaces everything its member reported before (rates are not added up, so a
///   report received twice counts once, and a shard the member stopped reporting is dropped).
/// - A rate counts only for the shard's owner as the metadata names it, so a shard is never
///   measured twice (the coordinator's own shards are measured by their meters).
/// - A rate ages out after three of its member's intervals, and counts only while its member
///   is live: a member that went away leaves its shards unmeasured (neither hot nor cold),
///   never hot forever.
#[derive(Debug, Default)]
pub struct RemoteLoads {
    by_shard: Mutex<HashMap<(u64, u32), Reported>>,
}

impl RemoteLoads {
    /// Records `owner`'s report: what was written to each of its shards during the
    /// `interval_ms` before `now_ms`.
    pub fn record(&self, owner: u32, interval_ms: u64, shards: &[ShardWrites], now_ms: i64) {
        let interval_ms = interval_ms.clamp(1, FRESH_MAX_MS as u64);
        let secs = interval_ms as f64 / 1000.0;
        let fresh_ms = (interval_ms as i64)
            .saturating_mul(FRESH_INTERVALS)
            .clamp(FRESH_MIN_MS, FRESH_MAX_MS);
        let mut map = self.by_shard.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, r| r.owner != owner && now_ms - r.at_ms <= r.fresh_ms);
        for w in shards {
            map.insert(
                (w.incarnation, w.shard),
                Reported {
                    owner,
                    bytes_per_s: w.bytes as f64 / secs,
                    records_per_s: w.records as f64 / secs,
                    at_ms: now_ms,
                    fresh_ms,
                },
            );
        }
    }

    /// The write rate (bytes/s, records/s) of a shard held by `owner`, if `owner` reported it
    /// recently and is `live`.
    pub fn rate(
        &self,
        incarnation: u64,
        shard: u32,
        owner: u32,
        live: bool,
        now_ms: i64,
    ) -> Option<(f64, f64)> {
        if !live {
            return None;
        }
        let map = self.by_shard.lock().unwrap_or_else(|e| e.into_inner());
        let r = map.get(&(incarnation, shard))?;
        (r.owner == owner && now_ms - r.at_ms <= r.fresh_ms)
            .then_some((r.bytes_per_s, r.records_per_s))
    }

    /// How many shards have a rate recorded (fresh or not yet pruned).
    pub fn len(&self) -> usize {
        self.by_shard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How long each shard has been hot or cold, by (stream incarnation, shard index).
#[derive(Default)]
pub struct Autoscaler {
    hot_since: HashMap<(u64, u32), i64>,
    cold_since: HashMap<(u64, u32), i64>,
}

impl Autoscaler {
    /// One pass over every on-demand stream.
    pub async fn check(&mut self, engine: &Arc<Streams>, cfg: &AutoscaleConfig) {
        let now = engine.clock.now_ms();
        let interval_s = cfg.check_interval_ms.max(1) as f64 / 1000.0;
        for stream in engine.list() {
            let (mode, status) = {
                let st = stream.state();
                (st.mode, st.status)
            };
            if mode != StreamMode::OnDemand {
                continue;
            }
            let open = stream.shard_set().open.clone();
            for shard in &open {
                let key = (stream.incarnation, shard.index);
                let (bytes_per_s, records_per_s) = if shard.log.is_some() {
                    let (bytes, records) = shard.meter.take();
                    (bytes as f64 / interval_s, records as f64 / interval_s)
                } else {
                    // Cluster mode: another pod holds this shard and reports its writes. Without
                    // a recent report from a live owner the load is unknown, and unknown is
                    // neither hot nor idle.
                    let reported = engine
                        .placement
                        .get()
                        .and_then(|p| p.remote_write_rate(&stream, shard));
                    let Some(rate) = reported else {
                        self.hot_since.remove(&key);
                        self.cold_since.remove(&key);
                        continue;
                    };
                    rate
                };
                let load = (bytes_per_s / MIB).max(records_per_s / 1000.0);
                if load >= cfg.split_threshold {
                    self.hot_since.entry(key).or_insert(now);
                } else {
                    self.hot_since.remove(&key);
                }
                if load < cfg.merge_threshold {
                    self.cold_since.entry(key).or_insert(now);
                } else {
                    self.cold_since.remove(&key);
                }
            }
            if status != StreamStatus::Active {
                continue;
            }
            self.act(engine, &stream, cfg, now).await;
        }
    }

    async fn act(
        &mut self,
        engine: &Arc<Streams>,
        stream: &Arc<Stream>,
        cfg: &AutoscaleConfig,
        now: i64,
    ) {
        let open = stream.shard_set().open.clone();
        let hot = open.iter().find(|s| {
            self.hot_since
                .get(&(stream.incarnation, s.index))
                .is_some_and(|t| now - t >= cfg.hot_window_ms as i64)
        });
        if let Some(shard) = hot {
            if open.len() < cfg.max_shards && shard.end_hash - shard.start_hash > 2 {
                let mid = shard.start_hash + (shard.end_hash - shard.start_hash) / 2 + 1;
                tracing::info!(stream = %stream.name, shard = %shard.id, "Splitting a hot shard of an on-demand stream.");
                self.hot_since.remove(&(stream.incarnation, shard.index));
                if let Err(e) = engine.split_shard(stream, &shard.id, mid).await {
                    tracing::warn!(stream = %stream.name, error = %e.message, "On-demand split failed.");
                }
                return;
            }
        }
        if open.len() <= cfg.min_shards {
            return;
        }
        let cold = |s: &super::Shard| {
            self.cold_since
                .get(&(stream.incarnation, s.index))
                .is_some_and(|t| now - t >= cfg.cold_window_ms as i64)
        };
        for pair in open.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.end_hash.checked_add(1) == Some(b.start_hash) && cold(a) && cold(b) {
                tracing::info!(stream = %stream.name, left = %a.id, right = %b.id, "Merging cold shards of an on-demand stream.");
                self.cold_since.remove(&(stream.incarnation, a.index));
                self.cold_since.remove(&(stream.incarnation, b.index));
                if let Err(e) = engine.merge_shards(stream, &a.id, &b.id).await {
                    tracing::warn!(stream = %stream.name, error = %e.message, "On-demand merge failed.");
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::streams::{CreateStream, StreamsConfig};

    async fn engine() -> Arc<Streams> {
        let cfg = StreamsConfig {
            limits: false,
            ..StreamsConfig::default()
        };
        Streams::open(cfg, Clock::default()).await.unwrap()
    }

    fn fast() -> AutoscaleConfig {
        AutoscaleConfig {
            check_interval_ms: 1000,
            hot_window_ms: 0,
            cold_window_ms: 0,
            ..AutoscaleConfig::default()
        }
    }

    fn writes(shard: u32, bytes: u64, records: u64) -> ShardWrites {
        ShardWrites {
            incarnation: 9,
            shard,
            bytes,
            records,
        }
    }

    #[test]
    fn reported_rates_replace_each_other_and_age_out() {
        let loads = RemoteLoads::default();
        // Member 1 wrote 2 MiB and 500 records to shard 3 in 2 s.
        loads.record(1, 2000, &[writes(3, 2 * 1024 * 1024, 500)], 10_000);
        assert_eq!(loads.rate(9, 3, 1, true, 10_000), Some((MIB, 250.0)));
        // The same report again, or a newer one, replaces it: never added up.
        loads.record(1, 2000, &[writes(3, 2 * 1024 * 1024, 500)], 10_500);
        assert_eq!(loads.rate(9, 3, 1, true, 10_500), Some((MIB, 250.0)));
        loads.record(1, 1000, &[writes(3, 1024, 10)], 11_000);
        assert_eq!(loads.rate(9, 3, 1, true, 11_000), Some((1024.0, 10.0)));
        // A rate counts only for the owner the metadata names, and only while it is live.
        assert_eq!(loads.rate(9, 3, 2, true, 11_000), None);
        assert_eq!(loads.rate(9, 3, 1, false, 11_000), None);
        // Three of its intervals later (at least 3 s) it no longer counts.
        assert!(loads.rate(9, 3, 1, true, 14_000).is_some());
        assert_eq!(loads.rate(9, 3, 1, true, 14_001), None);
        // A member's new report drops the shards it no longer reports (closed by a reshard),
        // and keeps other members' reports.
        loads.record(2, 1000, &[writes(5, 0, 0)], 14_000);
        loads.record(1, 1000, &[writes(4, 0, 0)], 14_000);
        assert_eq!(loads.rate(9, 3, 1, true, 14_000), None);
        assert_eq!(loads.rate(9, 4, 1, true, 14_000), Some((0.0, 0.0)));
        assert_eq!(loads.rate(9, 5, 2, true, 14_000), Some((0.0, 0.0)));
        // Stale reports of members that went quiet are pruned when others report.
        loads.record(1, 1000, &[writes(4, 0, 0)], 60_000);
        assert_eq!(loads.len(), 1);
    }

    /// A coordinator (ordinal 0) whose member 1 holds every other shard and reports their
    /// writes through `loads`.
    struct TwoPods {
        loads: RemoteLoads,
        live: std::sync::atomic::AtomicBool,
    }

    impl super::super::placement::Placement for TwoPods {
        fn is_coordinator(&self) -> bool {
            true
        }
        fn live_members(&self) -> Vec<u32> {
            vec![0, 1]
        }
        fn append(
            &self,
            _owner: u32,
            _stream: &Stream,
            _shard: u32,
            _records: Vec<crate::storage::RecordIn>,
            _flags: u8,
        ) -> futures_util::future::BoxFuture<
            'static,
            Result<Vec<Option<u64>>, super::super::placement::AppendFailure>,
        > {
            Box::pin(async { Err(super::super::placement::AppendFailure::Failed) })
        }
        fn seal(
            &self,
            _owner: u32,
            _stream: &Stream,
            _shard: u32,
        ) -> futures_util::future::BoxFuture<'static, Result<u64, String>> {
            Box::pin(async { Ok(0) })
        }
        fn remote_write_rate(
            &self,
            stream: &Stream,
            shard: &super::super::Shard,
        ) -> Option<(f64, f64)> {
            let live = self.live.load(Ordering::Relaxed);
            self.loads.rate(
                stream.incarnation,
                shard.index,
                shard.owner.unwrap_or(0),
                live,
                0,
            )
        }
    }

    #[tokio::test]
    async fn shards_held_by_other_pods_scale_on_their_reported_load() {
        let cfg = StreamsConfig {
            limits: false,
            cluster_ordinal: Some(0),
            iterator_key: Some([7; 32]),
            ..StreamsConfig::default()
        };
        let e = Streams::open(cfg, Clock::default()).await.unwrap();
        let pods = Arc::new(TwoPods {
            loads: RemoteLoads::default(),
            live: true.into(),
        });
        let _ = e.placement.set(pods.clone());
        e.create_stream(CreateStream {
            name: "od".into(),
            shard_count: None,
            mode: StreamMode::OnDemand,
            tags: Default::default(),
            max_record_kib: None,
            retention_hours: None,
        })
        .await
        .unwrap();
        let s = e.get("od").unwrap();
        let owners: Vec<Option<u32>> = s.shard_set().open.iter().map(|s| s.owner).collect();
        assert_eq!(owners, [Some(0), Some(1), Some(0), Some(1)]);
        let mut a = Autoscaler::default();
        let check = AutoscaleConfig {
            min_shards: 2,
            ..fast()
        };

        // Member 1 reports shard 1 hot, shard 3 idle; the coordinator's own shards are idle
        // and cannot merge with each other (not adjacent).
        let hot = [writes(1, 2 * 1024 * 1024, 10), writes(3, 0, 0)];
        let inc = s.incarnation;
        let hot: Vec<ShardWrites> = hot
            .iter()
            .map(|w| ShardWrites {
                incarnation: inc,
                ..*w
            })
            .collect();
        // A member that went away does not keep its shard hot.
        pods.live.store(false, Ordering::Relaxed);
        pods.loads.record(1, 1000, &hot, 0);
        a.check(&e, &check).await;
        assert_eq!(
            s.open_shard_count(),
            4,
            "no decision on an absent member's report"
        );
        pods.live.store(true, Ordering::Relaxed);
        a.check(&e, &check).await;
        assert_eq!(s.open_shard_count(), 5);
        assert!(
            !s.shard(1).unwrap().is_open(),
            "the hot shard held by member 1 was split"
        );

        // Everything idle now, member 1's shards included: cold neighbours merge, across pods.
        let idle: Vec<ShardWrites> = s
            .shard_set()
            .open
            .iter()
            .filter(|sh| sh.log.is_none())
            .map(|sh| ShardWrites {
                incarnation: inc,
                shard: sh.index,
                bytes: 0,
                records: 0,
            })
            .collect();
        pods.loads.record(1, 1000, &idle, 0);
        a.check(&e, &check).await;
        assert_eq!(s.open_shard_count(), 4, "a cold pair was merged");
    }

    #[tokio::test]
    async fn a_sustained_hot_shard_is_split_and_cold_pairs_merge_back() {
        let e = engine().await;
        e.create_stream(CreateStream {
            name: "od".into(),
            shard_count: None,
            mode: StreamMode::OnDemand,
            tags: Default::default(),
            max_record_kib: None,
            retention_hours: None,
        })
        .await
        .unwrap();
        let s = e.get("od").unwrap();
        assert_eq!(s.open_shard_count(), 4);
        let mut a = Autoscaler::default();
        // 2 MiB in one second on shard 0: twice its write limit.
        s.shard_set().open[0].meter.add(2 * 1024 * 1024, 2000);
        a.check(&e, &fast()).await;
        assert_eq!(s.open_shard_count(), 5);
        assert!(!s.shard(0).unwrap().is_open());
        // Idle from now on: cold neighbours merge back, never below the minimum.
        for _ in 0..6 {
            a.check(&e, &fast()).await;
        }
        assert_eq!(s.open_shard_count(), 4);
    }
}
