//! Reading a shard's log wherever it lives, for the readers inside the server: delivery
//! streams (`KinesisStreamAsSource`) and analytics applications. On a single server, and for
//! the shards this pod holds in cluster mode, the log is read here; a shard another pod owns
//! is read at its owner through [`super::placement::Placement::read`] (an internal call with
//! the cluster secret). Positions are log offsets either way, so readers keep one
//! checkpoint format and follow lineage from the local metadata (on the coordinator, where
//! delivery streams and applications run, that metadata is the truth).

use std::sync::Arc;

use super::{Shard, Stream, Streams};
use crate::storage::{ReadBatch, ShardLog, StorageError};

/// What a read of one shard asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRead {
    /// First offset to read (moved up to the trim horizon).
    pub from: u64,
    /// Records at most (0 reads nothing: only the offsets are answered).
    pub limit: usize,
    /// About this many bytes at most (at least one record).
    pub max_bytes: usize,
    /// Also find the offset of the first record that arrived at or after this instant.
    pub at_ms: Option<i64>,
}

impl ShardRead {
    /// A read of up to `limit` records and `max_bytes` from `from`.
    pub fn records(from: u64, limit: usize, max_bytes: usize) -> ShardRead {
        ShardRead {
            from,
            limit,
            max_bytes,
            at_ms: None,
        }
    }

    /// Only the shard's offsets (trim horizon, tip, and the one at `at_ms`).
    pub fn offsets(at_ms: Option<i64>) -> ShardRead {
        ShardRead {
            from: 0,
            limit: 0,
            max_bytes: 0,
            at_ms,
        }
    }
}

/// The answer: the records read and where the shard's log starts.
#[derive(Debug)]
pub struct ShardPage {
    /// The trim horizon.
    pub start_offset: u64,
    /// The offset of the first record that arrived at or after `at_ms`, when asked.
    pub at_offset: Option<u64>,
    /// Records, next offset, tip.
    pub batch: ReadBatch,
}

/// Serves `req` from a log this process holds (blocking: file reads).
pub fn read_log(log: &ShardLog, req: ShardRead) -> Result<ShardPage, StorageError> {
    let at_offset = match req.at_ms {
        Some(ms) => Some(log.offset_for_timestamp(ms)?),
        None => None,
    };
    let batch = log.read(req.from, req.limit, req.max_bytes)?;
    Ok(ShardPage {
        start_offset: log.start_offset(),
        at_offset,
        batch,
    })
}

impl Streams {
    /// Reads shard `shard` of `stream`: here when this process holds its log, else at the pod
    /// that owns it. Errors are described for logs (the owner unreachable, a storage error).
    pub async fn read_shard(
        &self,
        stream: &Arc<Stream>,
        shard: &Arc<Shard>,
        req: ShardRead,
    ) -> Result<ShardPage, String> {
        match (&shard.log, self.placement.get()) {
            (Some(log), _) => {
                let log = log.clone();
                tokio::task::spawn_blocking(move || read_log(&log, req))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())
            }
            (None, Some(p)) => {
                let owner = shard.owner.unwrap_or(0);
                p.read(owner, stream, shard.index, req)
                    .await
                    .map_err(|e| format!("reading shard {} at member {owner}: {e}", shard.id))
            }
            (None, None) => Err(format!("shard {} has no log here", shard.id)),
        }
    }
}
