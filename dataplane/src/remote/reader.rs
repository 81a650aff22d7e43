//! Reading a remote stream's shards from a checkpointable [`Position`], with the guarantees of
//! the local readers: a child shard is read only once every parent still listed is read to its
//! end (lineage from ListShards' parent ids), so records of one partition key stay in order
//! across splits and merges; the position only names records handed to the caller.
//!
//! One [`ShardReader::read`] call:
//! 1. Skips everything while backing off after a failure.
//! 2. Lists the shards again when the list is old, a shard ended or GetRecords reported child
//!    shards; forgets finished shards no longer listed (trimmed by retention).
//! 3. For each unfinished shard whose parents are finished and that is not resting (it was
//!    caught up less than [`IDLE_POLL`] ago), reads one page: with the cached iterator when it
//!    continues from the position, else with a new one (AFTER_SEQUENCE_NUMBER of the position,
//!    else the start).
//! 4. Moves the position past the page's records; a page without NextShardIterator finishes
//!    the shard.
//!
//! Iterators expire after 5 minutes (a slow destination can hold a reader that long); an
//! expired one is replaced from the position.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::client::{jitter, IteratorStart, RemoteRecord, ShardInfo};
use super::{RemoteError, RemoteStream};

/// A caught-up shard is polled again after this long (AWS's advice: once per second per
/// shard, which leaves room under the 5 GetRecords/s limit for other readers).
pub const IDLE_POLL: Duration = Duration::from_secs(1);
/// The shard list is refreshed at least this often (to see splits and merges).
const LIST_EVERY: Duration = Duration::from_secs(5);
/// Backoff after a failed read: doubled per failure up to the maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The durable position of a reader of a remote stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    /// Shards without a position start at the first record that arrived at or after this
    /// instant (ms since the epoch); at their trim horizon when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<i64>,
    /// The last sequence number handed over, by shard id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub after: BTreeMap<String, String>,
    /// Shards read to their end.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub finished: BTreeSet<String>,
}

impl Position {
    pub fn is_empty(&self) -> bool {
        self == &Position::default()
    }
}

/// What one read produced.
#[derive(Debug, Default)]
pub struct Batch {
    /// Records per shard id, in shard order.
    pub shards: Vec<(String, Vec<RemoteRecord>)>,
    /// Some shard is behind its tip: read again right away.
    pub more: bool,
    /// The largest MillisBehindLatest seen.
    pub lag_ms: i64,
    /// Why some shards could not be read (the reader backs off before trying again).
    pub error: Option<RemoteError>,
}

impl Batch {
    pub fn records(&self) -> usize {
        self.shards.iter().map(|(_, r)| r.len()).sum()
    }
}

/// A shard iterator and the position it continues from.
struct Cached {
    iterator: String,
    after: Option<String>,
}

/// The in-memory side of a reader: shard list, iterators, pacing.
pub struct ShardReader {
    stream: Arc<RemoteStream>,
    shards: Vec<ShardInfo>,
    listed: Option<Instant>,
    iterators: HashMap<String, Cached>,
    resting: HashMap<String, Instant>,
    retry_at: Option<Instant>,
    failures: u32,
}

impl ShardReader {
    pub fn new(stream: Arc<RemoteStream>) -> ShardReader {
        ShardReader {
            stream,
            shards: Vec::new(),
            listed: None,
            iterators: HashMap::new(),
            resting: HashMap::new(),
            retry_at: None,
            failures: 0,
        }
    }

    pub fn stream_name(&self) -> &str {
        &self.stream.name
    }

    /// Reads at most one page of `limit` records from every readable shard and moves `pos`
    /// past them.
    pub async fn read(&mut self, pos: &mut Position, limit: usize) -> Batch {
        let mut batch = Batch::default();
        let now = Instant::now();
        if self.retry_at.is_some_and(|t| now < t) {
            return batch;
        }
        if let Err(e) = self.read_shards(pos, limit, &mut batch).await {
            self.failures += 1;
            let backoff = FIRST_BACKOFF
                .saturating_mul(1 << self.failures.min(6))
                .min(MAX_BACKOFF);
            self.retry_at = Some(Instant::now() + jitter(backoff));
            batch.error = Some(e);
        } else {
            self.failures = 0;
            self.retry_at = None;
        }
        batch
    }

    async fn read_shards(
        &mut self,
        pos: &mut Position,
        limit: usize,
        batch: &mut Batch,
    ) -> Result<(), RemoteError> {
        let name = self.stream.name.clone();
        let client = self.stream.client.clone();
        if self.listed.is_none_or(|t| t.elapsed() >= LIST_EVERY) {
            self.shards = client.list_shards(&name).await?;
            self.listed = Some(Instant::now());
            let listed: BTreeSet<&str> = self.shards.iter().map(|s| s.id.as_str()).collect();
            pos.finished.retain(|id| listed.contains(id.as_str()));
            pos.after.retain(|id, _| listed.contains(id.as_str()));
        }
        let known: BTreeSet<String> = self.shards.iter().map(|s| s.id.clone()).collect();
        let shards = self.shards.clone();
        for shard in &shards {
            if pos.finished.contains(&shard.id) {
                continue;
            }
            let waiting = shard
                .parents()
                .any(|p| known.contains(p) && !pos.finished.contains(p));
            if waiting {
                continue;
            }
            if self
                .resting
                .get(&shard.id)
                .is_some_and(|t| Instant::now() < *t)
            {
                continue;
            }
            let after = pos.after.get(&shard.id).cloned();
            let mut fresh = false;
            let iterator = match self.iterators.remove(&shard.id) {
                Some(c) if c.after == after => c.iterator,
                _ => {
                    fresh = true;
                    self.new_iterator(&name, &shard.id, pos).await?
                }
            };
            let page = match client.get_records(&iterator, limit).await {
                Ok(p) => p,
                Err(e) if e.code() == Some("ExpiredIteratorException") && !fresh => {
                    let iterator = self.new_iterator(&name, &shard.id, pos).await?;
                    client.get_records(&iterator, limit).await?
                }
                Err(e) => return Err(e),
            };
            let caught_up = page.millis_behind_latest == 0;
            batch.lag_ms = batch.lag_ms.max(page.millis_behind_latest);
            if let Some(last) = page.records.last() {
                pos.after
                    .insert(shard.id.clone(), last.sequence_number.clone());
            }
            let got = !page.records.is_empty();
            if got {
                batch.shards.push((shard.id.clone(), page.records));
            }
            match page.next_iterator {
                Some(next) => {
                    self.iterators.insert(
                        shard.id.clone(),
                        Cached {
                            iterator: next,
                            after: pos.after.get(&shard.id).cloned(),
                        },
                    );
                    if caught_up && !got {
                        self.resting
                            .insert(shard.id.clone(), Instant::now() + IDLE_POLL);
                    } else {
                        batch.more = true;
                    }
                }
                None => {
                    // The shard is closed and read to its end: its children may begin.
                    pos.finished.insert(shard.id.clone());
                    pos.after.remove(&shard.id);
                    self.resting.remove(&shard.id);
                    // Its children may not be listed yet: list again on the next read.
                    self.listed = None;
                    batch.more = true;
                }
            }
        }
        Ok(())
    }

    async fn new_iterator(
        &self,
        stream: &str,
        shard_id: &str,
        pos: &Position,
    ) -> Result<String, RemoteError> {
        let start = match (pos.after.get(shard_id), pos.start_ms) {
            (Some(seq), _) => IteratorStart::AfterSequenceNumber(seq.clone()),
            (None, Some(ms)) => IteratorStart::AtTimestamp(ms),
            (None, None) => IteratorStart::TrimHorizon,
        };
        self.stream
            .client
            .get_shard_iterator(stream, shard_id, &start)
            .await
    }
}

/// The number in a shard id (`shardId-000000000007` → 7), to spread shards over in-application
/// streams as the local reader does by index.
pub fn shard_number(id: &str) -> u64 {
    let digits: String = id
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_numbers_come_from_the_id() {
        assert_eq!(shard_number("shardId-000000000007"), 7);
        assert_eq!(shard_number("odd"), 0);
    }

    #[test]
    fn an_empty_position_is_not_serialized_and_reads_back() {
        assert_eq!(serde_json::to_string(&Position::default()).unwrap(), "{}");
        let p = Position {
            start_ms: Some(5),
            after: BTreeMap::from([("shardId-000000000000".into(), "49".into())]),
            finished: BTreeSet::from(["shardId-000000000001".into()]),
        };
        let back: Position = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
