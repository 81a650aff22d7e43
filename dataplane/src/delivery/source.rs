//! Reading a delivery stream's source from its checkpoint: the DirectPut buffer log, or the
//! shards of a source stream (following splits and merges: a child shard is read only once
//! all its parents are read to their end, so records of one partition key stay in order).
//! A source stream with a `--stream-endpoint` is read through that endpoint's Kinesis API
//! with the same lineage rule; its position is kept per remote shard id. In cluster mode the
//! shards another pod holds are read at their owner (`Streams::read_shard`), so every shard
//! is delivered wherever it lives.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{DeliveryStream, DeliveryStreams, KinesisSource};
use crate::remote::{Position, ShardReader};
use crate::storage::{ShardLog, StorageError};
use crate::streams::shard_read::ShardRead;

/// A record waiting to be delivered.
#[derive(Debug, Clone)]
pub struct Pending {
    pub data: Bytes,
    pub arrival_ms: i64,
    /// A stable identifier: the record id (DirectPut) or sequence number (stream source).
    pub id: String,
    /// Partition keys a Lambda transformation returned in `metadata.partitionKeys`.
    pub lambda_keys: Option<super::partition::Keys>,
}

/// The durable source position: everything before it has been delivered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// Next DirectPut buffer offset.
    #[serde(default)]
    pub offset: u64,
    /// Next offset per source shard index.
    #[serde(default)]
    pub shards: BTreeMap<u32, u64>,
    /// Source shards read to their end.
    #[serde(default)]
    pub finished: BTreeSet<u32>,
    /// Position in a source stream served by another endpoint (absent otherwise, so local
    /// checkpoints, and the object keys seeded from them, are unchanged).
    #[serde(default, skip_serializing_if = "Position::is_empty")]
    pub remote: Position,
}

impl Checkpoint {
    pub fn load(dir: Option<&Path>) -> Checkpoint {
        dir.and_then(|d| std::fs::read(d.join("checkpoint.json")).ok())
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .unwrap_or_default()
    }

    /// A seed identifying the batch that starts at this checkpoint: it names the object a
    /// batch is delivered to, so it must be the same when the batch is delivered again.
    pub fn seed(&self, create_ms: i64) -> u128 {
        let mut h = Sha256::new();
        h.update(create_ms.to_be_bytes());
        h.update(serde_json::to_vec(self).unwrap_or_default());
        let d = h.finalize();
        u128::from_be_bytes(d[..16].try_into().expect("16 bytes"))
    }

    pub fn save(&self, dir: Option<&Path>) -> Result<(), StorageError> {
        let Some(dir) = dir else { return Ok(()) };
        crate::streams::stream::write_atomic(
            &dir.join("checkpoint.json"),
            &serde_json::to_vec(self).unwrap_or_default(),
        )
    }
}

/// Records per read call; bounded so one read never holds more than a few MiB.
const READ_RECORDS: usize = 1000;
const READ_BYTES: usize = 4 * 1024 * 1024;

/// Reads records after `cursor` into `out` until `out` holds `max_bytes` or the source has no
/// more; moves `cursor` past what was read.
pub async fn fill(
    engine: &Arc<DeliveryStreams>,
    ds: &DeliveryStream,
    kinesis: Option<&KinesisSource>,
    cursor: &mut Checkpoint,
    out: &mut Vec<Pending>,
    out_bytes: &mut usize,
    max_bytes: usize,
) -> Result<(), String> {
    if let Some(log) = &ds.buffer {
        return fill_log(log, cursor, out, out_bytes, max_bytes);
    }
    let Some(src) = kinesis else { return Ok(()) };
    if let Some(remote) = engine.streams.remote.by_arn(&src.stream_arn) {
        let mut reader = ds.remote_reader.lock().await;
        let reader = reader.get_or_insert_with(|| ShardReader::new(remote));
        return fill_remote(reader, src, cursor, out, out_bytes, max_bytes).await;
    }
    let stream_name = src.stream_arn.rsplit('/').next().unwrap_or_default();
    let Some(stream) = engine.streams.find(stream_name) else {
        return Err(format!("source stream {stream_name} does not exist"));
    };
    let shards = stream.all_shards();
    let known: BTreeSet<&str> = shards.iter().map(|s| s.id.as_str()).collect();
    // A shard that cannot be read now (in cluster mode, its owner is down) is skipped: the
    // others keep being delivered, and it is read again on the next fill.
    let mut failed: Option<String> = None;
    for shard in &shards {
        if *out_bytes >= max_bytes {
            break;
        }
        if cursor.finished.contains(&shard.index) {
            continue;
        }
        // A shard whose parent still exists and is unfinished waits for it.
        let waiting = shard
            .parent
            .iter()
            .chain(shard.adjacent_parent.iter())
            .filter(|p| known.contains(p.as_str()))
            .filter_map(|p| shards.iter().find(|s| &s.id == p))
            .any(|p| !cursor.finished.contains(&p.index));
        if waiting {
            continue;
        }
        // The shard's log is read here, or at the pod holding it in cluster mode.
        let mut pos = match cursor.shards.get(&shard.index) {
            Some(p) => *p,
            None => match engine
                .streams
                .read_shard(&stream, shard, ShardRead::offsets(Some(src.start_ms)))
                .await
            {
                Ok(page) => page.at_offset.unwrap_or(page.batch.end_offset),
                Err(e) => {
                    failed = Some(e);
                    continue;
                }
            },
        };
        loop {
            let req = ShardRead::records(pos, READ_RECORDS, READ_BYTES.min(max_bytes));
            let batch = match engine.streams.read_shard(&stream, shard, req).await {
                Ok(page) => page.batch,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            for r in &batch.records {
                let sequence = stream.sequence(shard.index, r.offset).to_string();
                push_record(out, out_bytes, &r.data, r.arrival_ms, &sequence);
            }
            pos = batch.next_offset;
            if batch.records.is_empty() || *out_bytes >= max_bytes {
                break;
            }
        }
        cursor.shards.insert(shard.index, pos);
        if let Some((end, _)) = shard.closed() {
            if pos >= end {
                cursor.finished.insert(shard.index);
                cursor.shards.remove(&shard.index);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// [`fill`] from a remote stream: pages of every readable shard until `out` is full or every
/// shard is caught up. Records are handed over with the position that passes them, so a
/// failed read (kept in the error) loses nothing.
async fn fill_remote(
    reader: &mut ShardReader,
    src: &KinesisSource,
    cursor: &mut Checkpoint,
    out: &mut Vec<Pending>,
    out_bytes: &mut usize,
    max_bytes: usize,
) -> Result<(), String> {
    // Shards never read start where the local source starts: records that arrived at or
    // after the delivery stream's creation.
    cursor.remote.start_ms.get_or_insert(src.start_ms);
    while *out_bytes < max_bytes {
        let batch = reader.read(&mut cursor.remote, READ_RECORDS).await;
        for (_, records) in &batch.shards {
            for r in records {
                push_record(out, out_bytes, &r.data, r.arrival_ms, &r.sequence_number);
            }
        }
        if let Some(e) = batch.error {
            return Err(format!(
                "reading remote stream {} failed: {e}",
                reader.stream_name()
            ));
        }
        if !batch.more {
            break;
        }
    }
    Ok(())
}

/// Adds a source-stream record, de-aggregating KPL records as Firehose does before processing.
fn push_record(
    out: &mut Vec<Pending>,
    out_bytes: &mut usize,
    data: &Bytes,
    arrival_ms: i64,
    sequence: &str,
) {
    match super::kpl::deaggregate(data) {
        Some(subs) => {
            for (i, data) in subs.into_iter().enumerate() {
                *out_bytes += data.len();
                out.push(Pending {
                    data,
                    arrival_ms,
                    id: format!("{sequence}:{i}"),
                    lambda_keys: None,
                });
            }
        }
        None => {
            *out_bytes += data.len();
            out.push(Pending {
                data: data.clone(),
                arrival_ms,
                id: sequence.to_string(),
                lambda_keys: None,
            });
        }
    }
}

fn fill_log(
    log: &ShardLog,
    cursor: &mut Checkpoint,
    out: &mut Vec<Pending>,
    out_bytes: &mut usize,
    max_bytes: usize,
) -> Result<(), String> {
    while *out_bytes < max_bytes {
        let batch = tokio::task::block_in_place(|| {
            log.read(cursor.offset, READ_RECORDS, READ_BYTES.min(max_bytes))
        })
        .map_err(|e| e.to_string())?;
        if batch.records.is_empty() {
            break;
        }
        for r in &batch.records {
            *out_bytes += r.data.len();
            out.push(Pending {
                data: r.data.clone(),
                arrival_ms: r.arrival_ms,
                id: record_id(r.offset, r.arrival_ms),
                lambda_keys: None,
            });
        }
        cursor.offset = batch.next_offset;
    }
    Ok(())
}

/// The RecordId PutRecord returns for the record at `offset`: unique per delivery stream and
/// stable, so error objects can name the record the producer was told about.
pub fn record_id(offset: u64, arrival_ms: i64) -> String {
    format!(
        "{arrival_ms:016x}{offset:016x}{:032x}",
        (offset as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    )
}
