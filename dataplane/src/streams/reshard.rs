//! Resharding: SplitShard, MergeShards, UpdateShardCount.
//!
//! Every change is a sequence of splits and merges, each closing one or two parent shards and
//! opening children that name them, exactly the lineage Kinesis exposes. UpdateShardCount with
//! UNIFORM_SCALING splits at every target boundary and then merges the pieces of each target
//! range, so it may create short-lived intermediate shards, as AWS does.

use std::sync::Arc;

use super::{errors, hash, Shard, ShardMeta, Stream, StreamStatus, Streams};
use crate::protocol::AwsError;

impl Streams {
    /// Refuses a change unless the stream is ACTIVE (ResourceInUseException with AWS's text).
    pub(super) fn ensure_active(&self, stream: &Stream) -> Result<(), AwsError> {
        let status = stream.status();
        if status != StreamStatus::Active {
            return Err(errors::not_active(
                &stream.name,
                &self.cfg.account_id,
                status.as_str(),
            ));
        }
        Ok(())
    }

    /// Moves an ACTIVE stream to UPDATING for a reshard; other states are refused.
    fn begin_update(&self, stream: &Stream) -> Result<(), AwsError> {
        let mut st = stream.state();
        if st.status != StreamStatus::Active {
            return Err(errors::not_active(
                &stream.name,
                &self.cfg.account_id,
                st.status.as_str(),
            ));
        }
        st.status = StreamStatus::Updating;
        Ok(())
    }

    /// Returns the stream to ACTIVE, after the configured update delay.
    async fn end_update(&self, stream: &Arc<Stream>) {
        let finish = |stream: &Arc<Stream>| {
            {
                let mut st = stream.state();
                if st.status == StreamStatus::Updating {
                    st.status = StreamStatus::Active;
                }
            }
            let _ = stream.persist();
            stream.publish_shard_metrics();
        };
        if self.cfg.update_delay_ms == 0 {
            finish(stream);
        } else {
            let stream = stream.clone();
            let delay = self.cfg.update_delay_ms;
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                let _c = stream.control.lock().await;
                finish(&stream);
            });
        }
    }

    fn check_shard_quota(&self, extra: u64) -> Result<(), AwsError> {
        if !self.cfg.limits {
            return Ok(());
        }
        let (open, limit) = self.shard_limit_status();
        if open + extra > limit {
            return Err(errors::shard_limit(
                &self.cfg.account_id,
                &self.cfg.region,
                open,
                limit,
                extra,
            ));
        }
        Ok(())
    }

    fn next_index(&self, stream: &Stream) -> u32 {
        let mut st = stream.state();
        let i = st.next_shard_index;
        st.next_shard_index += 1;
        i
    }

    fn child(&self, stream: &Stream, start: u128, end: u128, parents: &[&Shard]) -> ShardMeta {
        ShardMeta {
            index: self.next_index(stream),
            start_hash: start.to_string(),
            end_hash: end.to_string(),
            parent: parents.first().map(|p| p.id.clone()),
            adjacent_parent: parents.get(1).map(|p| p.id.clone()),
            created_ms: self.clock.now_ms(),
            closed: None,
            owner: None,
        }
    }

    async fn split_inner(
        &self,
        stream: &Arc<Stream>,
        parent: &Arc<Shard>,
        key: u128,
    ) -> Result<(), AwsError> {
        let left = self.child(stream, parent.start_hash, key - 1, &[parent]);
        let right = self.child(stream, key, parent.end_hash, &[parent]);
        self.reshard(stream, std::slice::from_ref(parent), vec![left, right])
            .await
    }

    async fn merge_inner(
        &self,
        stream: &Arc<Stream>,
        a: &Arc<Shard>,
        b: &Arc<Shard>,
    ) -> Result<(), AwsError> {
        let child = self.child(stream, a.start_hash, b.end_hash, &[a, b]);
        self.reshard(stream, &[a.clone(), b.clone()], vec![child])
            .await
    }

    fn open_shard(&self, stream: &Stream, raw: &str) -> Result<Arc<Shard>, AwsError> {
        let not_found = || errors::could_not_find_shard(raw, &stream.name, &self.cfg.account_id);
        let index = super::parse_shard_id(raw).ok_or_else(not_found)?;
        let shard = stream.shard(index).ok_or_else(|| {
            errors::could_not_find_shard(
                &super::shard_id(index),
                &stream.name,
                &self.cfg.account_id,
            )
        })?;
        if !shard.is_open() {
            return Err(errors::invalid_argument(format!(
                "Shard {} in stream {} under account {} has already been merged or split, and thus is not eligible for merging or splitting.",
                shard.id, stream.name, self.cfg.account_id
            )));
        }
        Ok(shard)
    }

    /// SplitShard.
    pub async fn split_shard(
        &self,
        stream: &Arc<Stream>,
        shard: &str,
        key: u128,
    ) -> Result<(), AwsError> {
        let _c = stream.control.lock().await;
        self.ensure_active(stream)?;
        let parent = self.open_shard(stream, shard)?;
        self.check_shard_quota(1)?;
        if !(key > parent.start_hash.saturating_add(1) && key < parent.end_hash) {
            return Err(errors::invalid_argument(format!(
                "NewStartingHashKey {key} used in SplitShard() on shard {} in stream {} under account {} is not both greater than one plus the shard's StartingHashKey {} and less than the shard's EndingHashKey {}.",
                parent.id, stream.name, self.cfg.account_id, parent.start_hash, parent.end_hash
            )));
        }
        self.begin_update(stream)?;
        let result = self.split_inner(stream, &parent, key).await;
        self.end_update(stream).await;
        result
    }

    /// MergeShards: `a` must end exactly where `b` begins.
    pub async fn merge_shards(
        &self,
        stream: &Arc<Stream>,
        a: &str,
        b: &str,
    ) -> Result<(), AwsError> {
        let _c = stream.control.lock().await;
        self.ensure_active(stream)?;
        let first = self.open_shard(stream, a)?;
        let second = self.open_shard(stream, b)?;
        let (lo, hi) = if first.end_hash.checked_add(1) == Some(second.start_hash) {
            (first, second)
        } else if second.end_hash.checked_add(1) == Some(first.start_hash) {
            (second, first)
        } else {
            return Err(errors::invalid_argument(format!(
                "Shards {} and {} in stream {} under account {} are not an adjacent pair of shards eligible for merging",
                first.id, second.id, stream.name, self.cfg.account_id
            )));
        };
        self.begin_update(stream)?;
        let result = self.merge_inner(stream, &lo, &hi).await;
        self.end_update(stream).await;
        result
    }

    /// UpdateShardCount (UNIFORM_SCALING). Returns the open shard count before the change.
    ///
    /// 1. Check AWS's rules: at most double, at least half, within quota, at most 10 calls per
    ///    rolling 24 hours.
    /// 2. Split every open shard that contains a target boundary at that boundary.
    /// 3. Merge, left to right, the pieces that make up each target range.
    pub async fn update_shard_count(
        &self,
        stream: &Arc<Stream>,
        target: u32,
    ) -> Result<usize, AwsError> {
        let _c = stream.control.lock().await;
        self.ensure_active(stream)?;
        let current = stream.open_shard_count();
        let t = target as usize;
        let detail = format!("Current open shard count: {current}, Target shard count: {t}");
        if self.cfg.limits {
            let (open, limit) = self.shard_limit_status();
            if t as u64 > limit || (open + t as u64).saturating_sub(current as u64) > limit {
                return Err(errors::limit_exceeded(format!(
                    "Target shard count or number of open shards cannot be greater than {limit}. {detail}"
                )));
            }
            let now = self.clock.now_ms();
            let mut st = stream.state();
            st.shard_count_updates.retain(|&at| now - at < 86_400_000);
            if st.shard_count_updates.len() >= 10 {
                return Err(errors::limit_exceeded(format!(
                    "Exceeded the maximum number of UpdateShardCount calls (10) in a rolling 24-hour period for stream {} under account {}.",
                    stream.name, self.cfg.account_id
                )));
            }
        }
        if t > current * 2 {
            return Err(errors::limit_exceeded(format!(
                "UpdateShardCount cannot scale up over double your current open shard count. {detail}"
            )));
        }
        if t * 2 < current {
            return Err(errors::limit_exceeded(format!(
                "UpdateShardCount cannot scale down below half your current open shard count. {detail}"
            )));
        }
        self.begin_update(stream)?;
        stream.state().shard_count_updates.push(self.clock.now_ms());
        let result = self.rescale(stream, target).await;
        self.end_update(stream).await;
        result.map(|()| current)
    }

    /// A uniform rescale for callers that already hold the stream's control lock.
    pub(super) async fn rescale_locked(
        &self,
        stream: &Arc<Stream>,
        target: u32,
    ) -> Result<(), AwsError> {
        self.begin_update(stream)?;
        let result = self.rescale(stream, target).await;
        self.end_update(stream).await;
        result
    }

    async fn rescale(&self, stream: &Arc<Stream>, target: u32) -> Result<(), AwsError> {
        let ranges = hash::even_ranges(target);
        // 1. Split at every target boundary that falls inside an open shard.
        for &(start, _) in ranges.iter().skip(1) {
            let owner = stream.shard_set().route(start).cloned();
            if let Some(shard) = owner {
                if shard.start_hash != start {
                    self.split_inner(stream, &shard, start).await?;
                }
            }
        }
        // 2. Merge the pieces of each target range.
        for &(start, end) in &ranges {
            loop {
                let pieces: Vec<Arc<Shard>> = stream
                    .shard_set()
                    .open
                    .iter()
                    .filter(|s| s.start_hash >= start && s.end_hash <= end)
                    .cloned()
                    .collect();
                if pieces.len() < 2 {
                    break;
                }
                self.merge_inner(stream, &pieces[0], &pieces[1]).await?;
            }
        }
        Ok(())
    }
}
