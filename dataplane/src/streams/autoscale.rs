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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

    fn take(&self) -> (u64, u64) {
        (
            self.bytes.swap(0, Ordering::Relaxed),
            self.records.swap(0, Ordering::Relaxed),
        )
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
            let mut loads = Vec::with_capacity(open.len());
            for shard in &open {
                if shard.log.is_none() {
                    // Cluster mode: another pod holds this shard and measures its writes; load
                    // this pod cannot see is not idleness, so such a shard is never merged.
                    let key = (stream.incarnation, shard.index);
                    self.hot_since.remove(&key);
                    self.cold_since.remove(&key);
                    loads.push(0.0);
                    continue;
                }
                let (bytes, records) = shard.meter.take();
                let load =
                    (bytes as f64 / interval_s / MIB).max(records as f64 / interval_s / 1000.0);
                loads.push(load);
                let key = (stream.incarnation, shard.index);
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
