//! Storage engine: one append-only segment log per shard.
//!
//! A shard's log is a directory of segment files, each holding CRC-checked batches of records
//! (one batch per acknowledged write request). Writes go through one writer task per shard,
//! which group-commits: every request queued while the previous fsync ran is written and
//! fsynced together, and no request is acknowledged before its bytes are durable. Readers see
//! only durable records. Retention drops whole sealed segments. Memory per shard is a sparse
//! index (one entry per `index_interval_bytes` of log) plus a small amount per segment; record
//! data is never cached by the process, reads go to the page cache. With `direct_io`, segment
//! files use `O_DIRECT` where the filesystem allows it: writes (through a staging buffer of at
//! most 1 MiB per segment being written) and reads bypass the page cache.
//!
//! The on-disk format is documented in `docs/storage.md`.

mod aligned;
mod format;
mod log;
mod segment;
mod tags;

pub use bytes_utils::Str;
pub use format::{RecordIn, StoredRecord, BATCH_HEADER_LEN, FLAG_ENCRYPTED};
pub use log::{AppendOutcome, ReadBatch, ShardLog, StreamLog};

use std::path::PathBuf;

/// How shard logs are stored.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Directory of the shard's segments; `None` keeps segments in memory (tests, `--in-memory`).
    pub dir: Option<PathBuf>,
    /// fsync before acknowledging a write. Off trades durability after power loss for latency;
    /// a killed process loses nothing either way, as written bytes are in the page cache.
    pub fsync: bool,
    /// A segment is sealed and a new one started once it reaches this size.
    pub segment_bytes: u64,
    /// A segment is sealed once its first record is this old, so retention can drop it.
    pub segment_max_age_ms: i64,
    /// Distance in bytes between sparse index entries.
    pub index_interval_bytes: u64,
    /// Writes waiting for the writer task before producers wait (back-pressure).
    pub queue_depth: usize,
    /// Open segment files with `O_DIRECT` where the filesystem supports it (`--direct-io`).
    pub direct_io: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            dir: None,
            fsync: true,
            segment_bytes: 64 * 1024 * 1024,
            segment_max_age_ms: 60 * 60 * 1000,
            index_interval_bytes: 64 * 1024,
            queue_depth: 256,
            direct_io: false,
        }
    }
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O call on a segment or its directory failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A batch failed its CRC or framing check while being read (not at the tail, where
    /// recovery truncates instead).
    #[error("corrupt batch in {path} at byte {position}")]
    Corrupt { path: String, position: u64 },
    /// The shard was closed by a reshard; the caller routes the write to a child shard.
    #[error("shard is closed")]
    Closed,
    /// The writer stopped after an unrecoverable I/O error or at shutdown.
    #[error("shard log is not accepting writes")]
    Unavailable,
}

impl StorageError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
