//! Segments: the files (or memory buffers) a shard log is made of.
//!
//! A segment is writable while it is the shard's active segment and read-only once sealed.
//! Only the writer task appends, and only at the durable end, so readers can read any byte
//! below `durable_len` without locks on the data itself.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::aligned::{self, align_down, align_up, Stage, ALIGN};
use super::format::{self, BatchHeader, Encoded, BATCH_HEADER_LEN};
use super::tags::{self, TagBatch, TagLists, TagMeta};
use super::StorageError;

/// One entry of the sparse index: the first offset of a batch, where the batch starts in the
/// segment, and its arrival time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexEntry {
    pub offset: u64,
    pub position: u64,
    pub arrival_ms: i64,
}

const INDEX_ENTRY_LEN: usize = 24;

enum Store {
    File {
        path: PathBuf,
        file: File,
        /// Opened with `O_DIRECT`: every read and write is block-aligned and bypasses the page
        /// cache (see `aligned`).
        direct: bool,
    },
    Memory(RwLock<Vec<u8>>),
}

/// Opens a segment file, with `O_DIRECT` when asked for and the filesystem allows it;
/// otherwise (tmpfs before Linux 6.6, for one) through the page cache.
fn open_file(path: &Path, create: bool, direct: bool) -> std::io::Result<(File, bool)> {
    let open = |flags: i32| -> std::io::Result<File> {
        let mut o = OpenOptions::new();
        o.read(true).write(true).custom_flags(flags);
        if create {
            o.create(true).truncate(true);
        }
        o.open(path)
    };
    if direct {
        let refused = |e: &std::io::Error| e.raw_os_error() == Some(libc::EINVAL);
        match open(libc::O_DIRECT) {
            // A filesystem may accept the flag yet want a coarser alignment than `ALIGN`: one
            // aligned block written to the new file (and cut off again), or read from the
            // existing one, tells before any record depends on it.
            Ok(f) => match probe_direct(&f, create) {
                Ok(()) => return Ok((f, true)),
                Err(e) if refused(&e) => {
                    tracing::debug!(path = %path.display(), "O_DIRECT I/O refused; using the page cache.");
                }
                Err(e) => return Err(e),
            },
            Err(e) if refused(&e) => {
                tracing::debug!(path = %path.display(), "O_DIRECT refused; using the page cache.");
            }
            Err(e) => return Err(e),
        }
    }
    open(0).map(|f| (f, false))
}

fn probe_direct(file: &File, new: bool) -> std::io::Result<()> {
    if new {
        let block = aligned::AlignedBuf::zeroed(ALIGN);
        std::os::unix::fs::FileExt::write_all_at(file, block.as_ref(), 0)?;
        file.set_len(0)
    } else {
        aligned::read_aligned(file, 0, ALIGN).map(|_| ())
    }
}

/// A segment of a shard log.
pub struct Segment {
    pub base_offset: u64,
    /// Unique in the process: keys the segment's lists in the [`tags`] cache.
    id: u64,
    store: Store,
    /// Bytes that are written and durable; readers never look past this.
    durable_len: AtomicU64,
    /// Offset after the last record in the segment.
    end_offset: AtomicU64,
    sealed: AtomicBool,
    meta: Mutex<SegmentMeta>,
    /// Held while the spilled lists are read back from the `.idx` file, so that readers
    /// missing the cache at once read it once.
    loading: Mutex<()>,
    /// Times the spilled lists were read back from the `.idx` file.
    index_loads: AtomicU64,
    /// The direct writer's last partial block (writer task only); dropped when the segment is
    /// sealed.
    stage: Mutex<Option<Stage>>,
    /// The window a direct-I/O segment reads ahead for the next sequential read.
    ahead: Mutex<Option<Ahead>>,
    /// A stream log's read-ahead windows, one per tag: each holds only its tag's batches.
    tag_ahead: Mutex<std::collections::HashMap<u32, Ahead>>,
    /// Reads served from `ahead`.
    ahead_hits: AtomicU64,
    /// Chunks and bytes read ahead.
    ahead_read: [AtomicU64; 2],
    /// End of the zeros written ahead of the data (see [`ZERO_AHEAD`]); writer task only.
    zeroed_to: AtomicU64,
    /// Tests: how many of the next direct writes, and of the next syncs, fail.
    #[cfg(test)]
    pub fail_next: [AtomicU64; 2],
}

/// Tests: takes one failure from `counter` if it has any.
#[cfg(test)]
fn injected(counter: &AtomicU64, path: &Path) -> Result<(), StorageError> {
    match counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)) {
        Ok(_) => Err(StorageError::io(
            path,
            std::io::Error::other("injected failure"),
        )),
        Err(_) => Ok(()),
    }
}

/// Bytes of zeros written past a small round's end. An append that grows a file allocates
/// blocks and changes its size, so the `fdatasync` that follows must also write the inode (a
/// third wait for the device, after the data and before the cache flush); appends into blocks
/// already written skip it. So a round of up to [`ZERO_AHEAD_ROUND_MAX`] bytes that ends past
/// the zeros writes this many more after itself, and the next rounds overwrite them. (PostgreSQL
/// zero-fills its WAL files for the same reason.) Sealing cuts the zeros off; recovery drops
/// them with any torn tail.
pub const ZERO_AHEAD: u64 = 256 << 10;
/// Largest round that zeroes ahead through the page cache: a larger round's inode write is a
/// small part of its sync, and zeroing ahead of it would add as much device traffic as it saves.
pub const ZERO_AHEAD_ROUND_MAX: usize = 64 << 10;
/// Largest direct round that zeroes ahead. A direct log's lane writes the zeros right after the
/// round, before the next one, while through the page cache they are only copied there: past
/// 16 KiB the extra write costs more than the inode write it saves (`put-records-c4-s8`, whose
/// rounds are about 66 KB, wrote more records in 9 of 11 alternated pairs).
pub const ZERO_AHEAD_DIRECT_ROUND_MAX: usize = 16 << 10;

/// Zero bytes for [`Segment::write_zeros`] (up to a block more than [`ZERO_AHEAD`]),
/// block-aligned for direct writes.
fn zeros() -> &'static [u8] {
    static ZEROS: std::sync::OnceLock<aligned::AlignedBuf> = std::sync::OnceLock::new();
    ZEROS
        .get_or_init(|| aligned::AlignedBuf::zeroed(ZERO_AHEAD as usize + ALIGN))
        .as_ref()
}

/// Bytes that read-ahead windows may hold at once, over every segment of the process.
const AHEAD_BUDGET: usize = 64 << 20;
/// Most bytes one read-ahead window covers.
const AHEAD_MAX: usize = 24 << 20;
/// A read-ahead window nobody took within this long is dropped by [`Segment::drop_stale_ahead`].
const AHEAD_STALE: Duration = Duration::from_secs(10);

static AHEAD_IN_USE: AtomicUsize = AtomicUsize::new(0);

/// Bytes reserved from [`AHEAD_BUDGET`], given back on drop.
struct AheadBudget(usize);

impl AheadBudget {
    fn reserve(n: usize) -> Option<AheadBudget> {
        AHEAD_IN_USE
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + n <= AHEAD_BUDGET).then_some(used + n)
            })
            .ok()
            .map(|_| AheadBudget(n))
    }
}

impl Drop for AheadBudget {
    fn drop(&mut self) {
        AHEAD_IN_USE.fetch_sub(self.0, Ordering::AcqRel);
    }
}

/// Reads started in the background (on the blocking pool) for the reader expected next: a
/// sliding window of chunks, each read once. A reader waits only for the chunk it needs; the
/// next read-ahead drops the chunks before its position, keeps the rest (read or still being
/// read) and adds chunks after them. Chunks start and end at batch boundaries (index entries,
/// or the durable length when they were added), so every batch lies whole in one chunk and
/// every byte of a chunk is final.
struct Ahead {
    chunks: VecDeque<AheadChunk>,
    /// When the window was last extended or read from.
    since: Instant,
}

impl Ahead {
    /// Moves the window to a reader now at `position`: drops the chunks before it, or all of
    /// them if the reader moved back.
    fn advance(&mut self, position: u64) {
        self.since = Instant::now();
        while self.chunks.front().is_some_and(|c| c.end <= position) {
            self.chunks.pop_front();
        }
        if self.chunks.front().is_some_and(|c| c.start > position) {
            self.chunks.clear();
        }
    }

    /// Adds chunks `[start, end)` after the window's, while the read-ahead budget lasts;
    /// returns the task that reads them.
    fn add(&mut self, chunks: impl IntoIterator<Item = (u64, u64)>) -> AheadTask {
        let mut task = AheadTask(VecDeque::new());
        for (start, end) in chunks {
            let Some(budget) = AheadBudget::reserve((align_up(end) - align_down(start)) as usize)
            else {
                break;
            };
            let chunk = Arc::new(ChunkSlot::default());
            self.chunks.push_back(AheadChunk {
                start,
                end,
                slot: chunk.clone(),
                _budget: budget,
            });
            task.0.push_back((start, end, chunk));
        }
        task
    }
}

/// One chunk of a read-ahead window: `[start, end)`, read from `start` rounded down to a block.
struct AheadChunk {
    start: u64,
    end: u64,
    slot: Arc<ChunkSlot>,
    _budget: AheadBudget,
}

/// A chunk's data once its read finished.
#[derive(Default)]
struct ChunkSlot {
    read: Mutex<Option<std::io::Result<Bytes>>>,
    cvar: Condvar,
}

impl ChunkSlot {
    fn fill(&self, read: std::io::Result<Bytes>) {
        let mut slot = self.read.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(read);
        }
        self.cvar.notify_all();
    }

    /// The chunk cut to `len` bytes, once read; `None` if its read failed: the reader then
    /// reads for itself and meets the error there.
    fn wait(&self, len: usize) -> Option<Bytes> {
        let mut slot = self.read.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match slot.as_ref() {
                Some(Ok(data)) => return Some(data.slice(..len.min(data.len()))),
                Some(Err(_)) => return None,
                None => slot = self.cvar.wait(slot).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }
}

/// The chunks one read-ahead task reads, in order. When dropped (the task done, or dropped
/// unrun as the runtime shuts down), chunks it never read count as failed, so that no reader
/// waits for them.
struct AheadTask(VecDeque<(u64, u64, Arc<ChunkSlot>)>);

impl AheadTask {
    fn run(mut self, seg: &Segment) {
        while let Some((start, end, slot)) = self.0.pop_front() {
            // Nobody else holds the slot: the window moved past this chunk before its turn.
            if Arc::strong_count(&slot) == 1 {
                continue;
            }
            let read = seg.read_window(align_down(start), align_up(end));
            if let Ok(data) = &read {
                seg.ahead_read[0].fetch_add(1, Ordering::Relaxed);
                seg.ahead_read[1].fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            slot.fill(read);
        }
    }
}

impl Drop for AheadTask {
    fn drop(&mut self) {
        for (_, _, slot) in self.0.drain(..) {
            slot.fill(Err(std::io::ErrorKind::Interrupted.into()));
        }
    }
}

/// Bytes a read-ahead chunk aims for (it ends at the first batch boundary past this).
const AHEAD_CHUNK: u64 = 2 << 20;

#[derive(Debug, Default)]
struct SegmentMeta {
    /// Sparse index of batch starts (a shard log's offsets; in a stream log only the
    /// positions count: read-ahead cuts its chunks there).
    index: Vec<IndexEntry>,
    /// A stream log's batches, by tag.
    tags: std::collections::BTreeMap<u32, TagMeta>,
    /// The tags' batch lists are in the `.idx` file and out of memory (see [`tags`]).
    spilled: bool,
    /// Position of the last index entry, to space entries `index_interval` apart.
    last_indexed_position: Option<u64>,
    first_arrival_ms: Option<i64>,
    last_arrival_ms: i64,
}

fn segment_name(base_offset: u64) -> String {
    format!("{base_offset:020}.log")
}

impl Segment {
    /// Creates a new empty segment in `dir` (or in memory), for direct I/O if `direct`.
    /// 1. create the file exclusively; 2. fsync the directory so the new name is durable before
    ///    any record acknowledged into it relies on it.
    pub fn create(
        dir: Option<&Path>,
        base_offset: u64,
        direct: bool,
    ) -> Result<Segment, StorageError> {
        let store = match dir {
            None => Store::Memory(RwLock::new(Vec::new())),
            Some(dir) => {
                let path = dir.join(segment_name(base_offset));
                let (file, direct) =
                    open_file(&path, true, direct).map_err(|e| StorageError::io(&path, e))?;
                sync_dir(dir)?;
                Store::File { path, file, direct }
            }
        };
        Ok(Segment::new(base_offset, store, 0))
    }

    fn new(base_offset: u64, store: Store, len: u64) -> Segment {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Segment {
            base_offset,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            store,
            durable_len: AtomicU64::new(len),
            end_offset: AtomicU64::new(base_offset),
            sealed: AtomicBool::new(false),
            meta: Mutex::new(SegmentMeta::default()),
            loading: Mutex::new(()),
            index_loads: AtomicU64::new(0),
            stage: Mutex::new(None),
            ahead: Mutex::new(None),
            tag_ahead: Mutex::new(Default::default()),
            ahead_hits: AtomicU64::new(0),
            ahead_read: [AtomicU64::new(0), AtomicU64::new(0)],
            zeroed_to: AtomicU64::new(0),
            #[cfg(test)]
            fail_next: Default::default(),
        }
    }

    /// Lists the segment files of `dir`, oldest first.
    pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(".log") {
                if let Ok(base) = stem.parse::<u64>() {
                    out.push((base, entry.path()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Opens an existing segment file and recovers it.
    ///
    /// 1. Load the `.idx` file if the segment was sealed cleanly and the index agrees with the
    ///    file's length; then trust the sealed segment as written.
    /// 2. Otherwise scan every batch from the start, checking magic, length, CRC and offset
    ///    continuity. The first batch that fails is a torn tail from a crash: truncate the file
    ///    there and fsync. Every acknowledged batch was fsynced whole before its ack, so a
    ///    truncated batch was never acknowledged.
    pub fn open(
        path: &Path,
        base_offset: u64,
        index_interval: u64,
        trust_index: bool,
        direct: bool,
    ) -> Result<Segment, StorageError> {
        let (file, direct) =
            open_file(path, false, direct).map_err(|e| StorageError::io(path, e))?;
        let len = file
            .metadata()
            .map_err(|e| StorageError::io(path, e))?
            .len();
        let seg = Segment::new(
            base_offset,
            Store::File {
                path: path.to_path_buf(),
                file,
                direct,
            },
            len,
        );
        if trust_index && seg.load_index(len)? {
            seg.sealed.store(true, Ordering::Release);
            return Ok(seg);
        }
        seg.scan_and_truncate(len, index_interval)?;
        Ok(seg)
    }

    fn index_path(&self) -> Option<PathBuf> {
        match &self.store {
            Store::File { path, .. } => Some(path.with_extension("idx")),
            Store::Memory(_) => None,
        }
    }

    fn load_index(&self, len: u64) -> Result<bool, StorageError> {
        let Some(ipath) = self.index_path() else {
            return Ok(false);
        };
        let mut raw = Vec::new();
        match File::open(&ipath) {
            Ok(mut f) => f
                .read_to_end(&mut raw)
                .map_err(|e| StorageError::io(&ipath, e))?,
            Err(_) => return Ok(false),
        };
        if raw.starts_with(tags::MAGIC) {
            return Ok(self.load_tag_index(&raw, len));
        }
        // Trailer: end offset u64, file length u64, first/last arrival i64 — then entries.
        if raw.len() < 32 || (raw.len() - 32) % INDEX_ENTRY_LEN != 0 {
            return Ok(false);
        }
        let rd = |i: usize| u64::from_be_bytes(raw[i..i + 8].try_into().unwrap_or_default());
        let (end_offset, file_len) = (rd(0), rd(8));
        let (first, last) = (rd(16) as i64, rd(24) as i64);
        if file_len != len {
            return Ok(false);
        }
        let index: Vec<IndexEntry> = raw[32..]
            .chunks_exact(INDEX_ENTRY_LEN)
            .map(|c| IndexEntry {
                offset: u64::from_be_bytes(c[0..8].try_into().unwrap_or_default()),
                position: u64::from_be_bytes(c[8..16].try_into().unwrap_or_default()),
                arrival_ms: i64::from_be_bytes(c[16..24].try_into().unwrap_or_default()),
            })
            .collect();
        if index.first().map(|e| e.offset) != Some(self.base_offset) {
            return Ok(false);
        }
        let mut meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        meta.last_indexed_position = index.last().map(|e| e.position);
        meta.index = index;
        meta.first_arrival_ms = Some(first);
        meta.last_arrival_ms = last;
        self.end_offset.store(end_offset, Ordering::Release);
        Ok(true)
    }

    fn scan_and_truncate(&self, len: u64, index_interval: u64) -> Result<(), StorageError> {
        let mut pos = 0u64;
        let mut expected = self.base_offset;
        let mut tag_ends: std::collections::HashMap<u32, u64> = Default::default();
        let mut reader = Windows::new(self, len);
        // Only bytes that were read and fail the checks are a torn tail; a failed read is an
        // error of its own and must not cut acknowledged batches off.
        while pos + BATCH_HEADER_LEN as u64 <= len {
            let header = reader
                .get(pos, BATCH_HEADER_LEN, u64::MAX)
                .map_err(|e| self.io_err(e))?;
            let Some(h) = BatchHeader::parse(&header) else {
                break;
            };
            // A shard log's offsets follow each other; a stream log's follow each other per
            // tag, from wherever the tag's batches before this segment ended.
            let continues = match h.tag {
                0 => h.base_offset == expected,
                tag => tag_ends.get(&tag).is_none_or(|&end| h.base_offset == end),
            };
            if !continues || pos + u64::from(h.len) > len {
                break;
            }
            let batch = reader
                .get(pos, h.len as usize, u64::MAX)
                .map_err(|e| self.io_err(e))?;
            if !format::verify(&h, &batch) {
                break;
            }
            self.note_batch(&h, pos, index_interval);
            pos += u64::from(h.len);
            match h.tag {
                0 => expected = h.next_offset(),
                tag => {
                    tag_ends.insert(tag, h.next_offset());
                }
            }
        }
        if pos < len {
            // A direct writer pads its last block with zeros, and small rounds write zeros
            // ahead of themselves (`ZERO_AHEAD`); those zeros are not damage.
            let padding = len - pos < ALIGN as u64 + ZERO_AHEAD
                && reader
                    .get(pos, (len - pos) as usize, 0)
                    .is_ok_and(|rest| rest.iter().all(|&b| b == 0));
            if !padding {
                tracing::warn!(
                    segment = %self.describe(),
                    valid_bytes = pos,
                    file_bytes = len,
                    "Truncating a torn or corrupt tail found during recovery."
                );
            }
            self.truncate(pos)?;
        }
        self.durable_len.store(pos, Ordering::Release);
        self.end_offset.store(expected, Ordering::Release);
        Ok(())
    }

    /// Records a batch written at `position` in the in-memory index and bounds.
    pub fn note_batch(&self, h: &BatchHeader, position: u64, index_interval: u64) {
        let mut meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        // A stream log finds batches through its tags' lists.
        let due = h.tag == 0
            && match meta.last_indexed_position {
                None => true,
                Some(p) => position >= p + index_interval,
            };
        if due {
            meta.index.push(IndexEntry {
                offset: h.base_offset,
                position,
                arrival_ms: h.arrival_ms,
            });
            meta.last_indexed_position = Some(position);
        }
        if meta.first_arrival_ms.is_none() {
            meta.first_arrival_ms = Some(h.arrival_ms);
        }
        meta.last_arrival_ms = meta.last_arrival_ms.max(h.arrival_ms);
        if h.tag != 0 {
            let batch = TagBatch {
                offset: h.base_offset,
                position,
                arrival_ms: h.arrival_ms,
                len: h.len,
            };
            meta.tags
                .entry(h.tag)
                .or_default()
                .push(batch, h.next_offset());
        }
    }

    /// Calls `f` with `tag`'s batches here (none if the tag has none), loading the segment's
    /// lists from its `.idx` file if they were spilled (see [`tags`]).
    fn with_tag_batches<R>(
        &self,
        tag: u32,
        f: impl FnOnce(&[TagBatch]) -> R,
    ) -> Result<R, StorageError> {
        {
            let meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
            if !meta.spilled {
                return Ok(f(meta.tags.get(&tag).map_or(&[], |t| &t.batches[..])));
            }
        }
        let lists = match tags::cached(self.id) {
            Some(lists) => lists,
            None => {
                // Another reader may be loading them: wait for it, then look again.
                let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(lists) = tags::cached(self.id) {
                    return Ok(f(lists.get(&tag).map_or(&[], |l| &l[..])));
                }
                let Some(ipath) = self.index_path() else {
                    return Err(StorageError::Unavailable);
                };
                let raw = std::fs::read(&ipath).map_err(|e| StorageError::io(&ipath, e))?;
                self.index_loads.fetch_add(1, Ordering::Relaxed);
                let (_, metas) = tags::decode(&raw).ok_or_else(|| {
                    StorageError::io(
                        &ipath,
                        std::io::Error::other("the segment's tag index is damaged"),
                    )
                })?;
                let lists: TagLists = metas.into_iter().map(|(t, m)| (t, m.batches)).collect();
                let lists = Arc::new(lists);
                tags::insert(self.id, lists.clone());
                lists
            }
        };
        Ok(f(lists.get(&tag).map_or(&[], |l| &l[..])))
    }

    /// Tests: times the spilled lists were read back from the `.idx` file.
    #[cfg(test)]
    pub fn index_loads(&self) -> u64 {
        self.index_loads.load(Ordering::Relaxed)
    }

    /// Tests: drops the segment's spilled lists from the cache.
    #[cfg(test)]
    pub fn evict_lists(&self) {
        tags::evict(self.id);
    }

    /// The tags of a stream log's segment with their first and end offsets here and when
    /// their last batch here arrived.
    pub fn tag_ranges(&self) -> Vec<(u32, u64, u64, i64)> {
        let meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        meta.tags
            .iter()
            .map(|(tag, t)| (*tag, t.first, t.end, t.last_arrival_ms))
            .collect()
    }

    /// `tag`'s first and end offsets and bytes in this segment, if it has batches here.
    pub fn tag_range(&self, tag: u32) -> Option<(u64, u64, u64)> {
        let meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        let t = meta.tags.get(&tag)?;
        Some((t.first, t.end, t.bytes))
    }

    /// The first offset of `tag` here that arrived at or after `ts`.
    pub fn tag_offset_for_timestamp(&self, tag: u32, ts: i64) -> Result<Option<u64>, StorageError> {
        self.with_tag_batches(tag, |batches| {
            let i = batches.partition_point(|e| e.arrival_ms < ts);
            batches.get(i).map(|e| e.offset)
        })
    }

    /// `tag`'s batches from the one holding `offset` on that end by `end`: at most
    /// `max_batches`, and while the ones before come to less than `max_bytes` (the first always).
    fn tag_batches_from(
        &self,
        tag: u32,
        offset: u64,
        max_batches: usize,
        max_bytes: usize,
        end: u64,
    ) -> Result<Vec<TagBatch>, StorageError> {
        self.with_tag_batches(tag, |batches| {
            let i = batches
                .partition_point(|b| b.offset <= offset)
                .saturating_sub(1);
            let mut sum = 0usize;
            batches[i..]
                .iter()
                .take(max_batches.max(1))
                .take_while(|b| {
                    let take =
                        (sum == 0 || sum < max_bytes) && b.position + u64::from(b.len) <= end;
                    sum += b.len as usize;
                    take
                })
                .copied()
                .collect()
        })
    }

    /// Like [`Segment::visit_batches`] for one tag of a stream log: visits only `tag`'s batches,
    /// from the one holding offset `from`, reading no other tag's batch (they may share a read
    /// window).
    pub fn visit_tag_batches(
        &self,
        tag: u32,
        from: u64,
        max_bytes: usize,
        max_records: usize,
        mut visit: impl FnMut(&BatchHeader, &Bytes, u64) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let end = self.durable_len();
        // Only what the limits may take: every batch holds a record at least.
        let entries = self.tag_batches_from(tag, from, max_records, max_bytes, end)?;
        let mut total = 0usize;
        let mut records = 0usize;
        let mut reader = Windows {
            tag,
            ..Windows::new(self, end)
        };
        for (i, e) in entries.iter().enumerate() {
            if total > 0 && (total >= max_bytes || records >= max_records) {
                break;
            }
            // A new window covers this batch and the ones of the tag right after it in the
            // file (a round writes a tag's batches together), within what the caller may still
            // read; not past them, where other tags' batches lie (measured: `get-records` with
            // two shards read 360k–390k records/s with windows across other tags' batches,
            // 500k–530k batch by batch).
            let budget = max_bytes.saturating_sub(total) as u64;
            let mut wanted = u64::from(e.len);
            let mut prev = e;
            for n in entries[i + 1..].iter() {
                if n.position != prev.position + u64::from(prev.len) || wanted >= budget {
                    break;
                }
                wanted += u64::from(n.len);
                prev = n;
            }
            let batch = reader
                .get(e.position, e.len as usize, wanted)
                .map_err(|err| self.io_err(err))?;
            let h = BatchHeader::parse(&batch).ok_or_else(|| self.corrupt(e.position))?;
            if h.tag != tag
                || h.base_offset != e.offset
                || h.len != e.len
                || !format::verify(&h, &batch)
            {
                return Err(self.corrupt(e.position));
            }
            total += batch.len();
            records += h.next_offset().saturating_sub(from.max(h.base_offset)) as usize;
            if !visit(&h, &batch, e.position)? {
                break;
            }
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        match &self.store {
            Store::File { path, .. } => path.display().to_string(),
            Store::Memory(_) => format!("memory segment {}", self.base_offset),
        }
    }

    /// Whether the segment's file is read and written with direct I/O.
    pub fn is_direct(&self) -> bool {
        matches!(self.store, Store::File { direct: true, .. })
    }

    pub fn durable_len(&self) -> u64 {
        self.durable_len.load(Ordering::Acquire)
    }

    pub fn end_offset(&self) -> u64 {
        self.end_offset.load(Ordering::Acquire)
    }

    /// The tags' batch lists are out of memory, in the `.idx` file.
    #[cfg(test)]
    pub fn tags_spilled(&self) -> bool {
        let meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        meta.spilled && meta.tags.values().all(|t| t.batches.is_empty())
    }

    /// No batch here is durable.
    pub fn is_empty(&self) -> bool {
        self.durable_len() == 0
    }

    pub fn first_arrival_ms(&self) -> Option<i64> {
        self.meta
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first_arrival_ms
    }

    pub fn last_arrival_ms(&self) -> i64 {
        self.meta
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_arrival_ms
    }

    /// Writes an encoded round at `pos` with vectored writes, straight from the records'
    /// buffers (writer task only; `pos` is the end of what it wrote so far). The bytes become
    /// durable with `sync` and visible to readers only through `publish`.
    ///
    /// Not for direct-I/O files, whose writes must be block-aligned: the log's writer copies
    /// their rounds with [`Segment::prepare_direct`] and its lane writes them with
    /// [`Segment::write_prepared`].
    pub fn write_encoded_at(
        &self,
        pos: u64,
        enc: &Encoded,
        zero_ahead: bool,
    ) -> Result<(), StorageError> {
        let end = pos + enc.len() as u64;
        let zero_ahead = zero_ahead && self.zeros_due(end, enc.len(), ZERO_AHEAD_ROUND_MAX);
        match &self.store {
            Store::File { path, file, .. } => {
                write_vectored_all_at(file, pos, enc).map_err(|e| StorageError::io(path, e))?;
                if zero_ahead {
                    self.write_zeros(file, end)
                        .map_err(|e| StorageError::io(path, e))?;
                }
                Ok(())
            }
            Store::Memory(buf) => {
                let mut buf = buf.write().unwrap_or_else(|e| e.into_inner());
                buf.truncate(pos as usize);
                buf.reserve(enc.len());
                for s in enc.slices() {
                    buf.extend_from_slice(s);
                }
                Ok(())
            }
        }
    }

    /// Copies an encoded round for appending at `pos` into `out` for a direct write (see
    /// [`Stage::prepare`]); returns the aligned position `out` is to be written at with
    /// [`Segment::write_prepared`]. Prepared rounds must be written in the order prepared.
    pub fn prepare_direct(
        &self,
        pos: u64,
        enc: &Encoded,
        out: &mut aligned::AlignedBuf,
    ) -> Result<u64, StorageError> {
        let Store::File { path, file, .. } = &self.store else {
            return Err(StorageError::Unavailable);
        };
        let mut slot = self.stage.lock().unwrap_or_else(|e| e.into_inner());
        let mut stage = match slot.take() {
            Some(s) if s.end() == pos => s,
            _ => Stage::load(file, pos).map_err(|e| StorageError::io(path, e))?,
        };
        let at = stage.prepare(enc.len(), out, |o| enc.copy_to(o));
        *slot = Some(stage);
        Ok(at)
    }

    /// Writes a round prepared by [`Segment::prepare_direct`] at `at`; `end` is the round's
    /// end in the segment, `round_len` its length. Writes zeros ahead of a small round as
    /// [`Segment::write_encoded_at`] does.
    pub fn write_prepared(
        &self,
        at: u64,
        buf: &aligned::AlignedBuf,
        end: u64,
        round_len: usize,
        zero_ahead: bool,
    ) -> Result<(), StorageError> {
        let Store::File { path, file, .. } = &self.store else {
            return Err(StorageError::Unavailable);
        };
        #[cfg(test)]
        injected(&self.fail_next[0], path)?;
        std::os::unix::fs::FileExt::write_all_at(file, buf.as_ref(), at)
            .map_err(|e| StorageError::io(path, e))?;
        if zero_ahead && self.zeros_due(end, round_len, ZERO_AHEAD_DIRECT_ROUND_MAX) {
            self.write_zeros(file, align_up(end))
                .map_err(|e| StorageError::io(path, e))?;
        }
        Ok(())
    }

    /// Whether a round of `round_len` bytes ending at `end` writes zeros ahead of itself: it is
    /// small (up to `max`) and ends past the zeros already written.
    fn zeros_due(&self, end: u64, round_len: usize, max: usize) -> bool {
        round_len <= max && end > self.zeroed_to.load(Ordering::Acquire)
    }

    /// Writes zeros from `from` up to [`ZERO_AHEAD`] past the block boundary at or after it.
    fn write_zeros(&self, file: &File, from: u64) -> std::io::Result<()> {
        let to = align_up(from) + ZERO_AHEAD;
        std::os::unix::fs::FileExt::write_all_at(file, &zeros()[..(to - from) as usize], from)?;
        self.zeroed_to.store(to, Ordering::Release);
        Ok(())
    }

    /// fdatasync: every byte written before this call is durable when it returns.
    pub fn sync(&self) -> Result<(), StorageError> {
        match &self.store {
            Store::File { path, file, .. } => {
                #[cfg(test)]
                injected(&self.fail_next[1], path)?;
                file.sync_data().map_err(|e| StorageError::io(path, e))
            }
            Store::Memory(_) => Ok(()),
        }
    }

    /// Makes `len` bytes and records up to `end_offset` visible to readers.
    pub fn publish(&self, len: u64, end_offset: u64) {
        self.end_offset.store(end_offset, Ordering::Release);
        self.durable_len.store(len, Ordering::Release);
    }

    /// Drops bytes past `len` (recovery, or a failed write).
    pub fn truncate(&self, len: u64) -> Result<(), StorageError> {
        *self.stage.lock().unwrap_or_else(|e| e.into_inner()) = None;
        match &self.store {
            Store::File { path, file, .. } => {
                file.set_len(len).map_err(|e| StorageError::io(path, e))?;
                file.sync_all().map_err(|e| StorageError::io(path, e))?;
                self.zeroed_to.store(len, Ordering::Release);
            }
            Store::Memory(buf) => buf
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .truncate(len as usize),
        }
        Ok(())
    }

    /// Seals the segment: fsync its data (an error here is returned: the data may not be
    /// durable), then write and fsync its index so recovery need not rescan it.
    pub fn seal(&self) -> Result<(), StorageError> {
        self.sealed.store(true, Ordering::Release);
        *self.stage.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let Store::File { path, file, direct } = &self.store else {
            return Ok(());
        };
        if *direct || self.zeroed_to.load(Ordering::Acquire) > self.durable_len() {
            // Cut the zeros after the last batch (a direct writer's padding, zeros written
            // ahead), so the length is the log's.
            file.set_len(self.durable_len())
                .map_err(|e| StorageError::io(path, e))?;
        }
        file.sync_all().map_err(|e| StorageError::io(path, e))?;
        // The index only spares recovery a rescan (a missing or mismatched one is ignored),
        // so failing to write it does not fail the seal. A stream log's index holds its tags'
        // batch lists, which then leave memory.
        let tagged = !self
            .meta
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tags
            .is_empty();
        if tagged {
            if let Err(e) = self.write_tag_index(path) {
                tracing::warn!(error = %e, "Could not write a sealed segment's index; its batch lists stay in memory and recovery will rescan it.");
            }
            return Ok(());
        }
        if let Err(e) = self.write_index(path) {
            tracing::warn!(error = %e, "Could not write a sealed segment's index; recovery will rescan it.");
        }
        Ok(())
    }

    /// Writes a stream log segment's `.idx` (see [`tags`]) and drops its batch lists from
    /// memory.
    /// Takes a stream log segment's bounds and tags' summaries from its `.idx` (see [`tags`])
    /// if it is whole and agrees with the file's length `len`; the lists stay on disk.
    fn load_tag_index(&self, raw: &[u8], len: u64) -> bool {
        let Some((bounds, mut metas)) = tags::decode(raw) else {
            return false;
        };
        if bounds.file_len != len || metas.is_empty() {
            return false;
        }
        for t in metas.values_mut() {
            t.batches = Vec::new();
        }
        let mut meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        meta.tags = metas;
        meta.spilled = true;
        meta.first_arrival_ms = Some(bounds.first_arrival_ms);
        meta.last_arrival_ms = bounds.last_arrival_ms;
        self.end_offset.store(bounds.end_offset, Ordering::Release);
        true
    }

    fn write_tag_index(&self, path: &Path) -> Result<(), StorageError> {
        let ipath = path.with_extension("idx");
        let raw = {
            let meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
            tags::encode(self.bounds(&meta), &meta.tags)
        };
        write_synced(&ipath, &raw)?;
        let mut meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        for t in meta.tags.values_mut() {
            t.batches = Vec::new();
        }
        meta.spilled = true;
        Ok(())
    }

    fn bounds(&self, meta: &SegmentMeta) -> tags::Bounds {
        tags::Bounds {
            end_offset: self.end_offset(),
            file_len: self.durable_len(),
            first_arrival_ms: meta.first_arrival_ms.unwrap_or(0),
            last_arrival_ms: meta.last_arrival_ms,
        }
    }

    fn write_index(&self, path: &Path) -> Result<(), StorageError> {
        let ipath = path.with_extension("idx");
        let meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        let mut raw = BytesMut::with_capacity(32 + meta.index.len() * INDEX_ENTRY_LEN);
        raw.extend_from_slice(&self.end_offset().to_be_bytes());
        raw.extend_from_slice(&self.durable_len().to_be_bytes());
        raw.extend_from_slice(&meta.first_arrival_ms.unwrap_or(0).to_be_bytes());
        raw.extend_from_slice(&meta.last_arrival_ms.to_be_bytes());
        for e in &meta.index {
            raw.extend_from_slice(&e.offset.to_be_bytes());
            raw.extend_from_slice(&e.position.to_be_bytes());
            raw.extend_from_slice(&e.arrival_ms.to_be_bytes());
        }
        write_synced(&ipath, &raw)
    }

    /// Deletes the segment's files (retention, stream deletion).
    pub fn remove(&self) -> Result<(), StorageError> {
        tags::evict(self.id);
        if let Store::File { path, .. } = &self.store {
            std::fs::remove_file(path).map_err(|e| StorageError::io(path, e))?;
            let _ = std::fs::remove_file(path.with_extension("idx"));
        }
        Ok(())
    }

    /// Reads the bytes from `start` up to `end` in one request (fewer at the end of the file or
    /// the memory buffer). Reads of a direct-I/O file are block-aligned (`start` and `end` must
    /// be) and bypass the page cache like its writes.
    fn read_window(&self, start: u64, end: u64) -> std::io::Result<Bytes> {
        match &self.store {
            Store::File {
                file, direct: true, ..
            } => {
                let buf = aligned::read_aligned(file, start, (end - start) as usize)?;
                Ok(Bytes::from_owner(buf))
            }
            Store::File { file, .. } => {
                // Read into the vector's spare capacity: no zeroing of what is overwritten.
                let len = (end - start) as usize;
                let mut buf = Vec::with_capacity(len);
                while buf.len() < len {
                    let at = start + buf.len() as u64;
                    match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at) {
                        Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                        Ok(_) => {}
                        Err(rustix::io::Errno::INTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                buf.truncate(len);
                Ok(Bytes::from(buf))
            }
            Store::Memory(data) => {
                let data = data.read().unwrap_or_else(|e| e.into_inner());
                let from = (start as usize).min(data.len());
                let to = (end as usize).min(data.len());
                Ok(Bytes::copy_from_slice(&data[from..to]))
            }
        }
    }

    /// Makes the read-ahead window cover about `len` bytes from `position` (a batch boundary),
    /// for a sequential reader expected to ask for them next (direct I/O only: the page cache
    /// does its own read-ahead): chunks before `position` are dropped, and chunks up to
    /// `position + len` are added after the ones kept and read in the background. Returns how
    /// many bytes from `position` the window covers: 0 when there is nothing durable there
    /// yet or no runtime is at hand; less than asked when read-ahead already holds
    /// [`AHEAD_BUDGET`] bytes.
    pub fn read_ahead(self: &Arc<Self>, position: u64, len: usize) -> u64 {
        if !self.is_direct() {
            return 0;
        }
        let durable = self.durable_len();
        let want_end = durable.min(position + len.min(AHEAD_MAX) as u64);
        if want_end <= position {
            return 0;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return 0;
        };
        let mut slot = self.ahead.lock().unwrap_or_else(|e| e.into_inner());
        let window = slot.get_or_insert_with(|| Ahead {
            chunks: VecDeque::new(),
            since: Instant::now(),
        });
        window.advance(position);
        let from = window.chunks.back().map_or(position, |c| c.end);
        let task = if from < want_end {
            window.add(self.ahead_chunks(from, want_end, durable))
        } else {
            AheadTask(VecDeque::new())
        };
        let covered = window
            .chunks
            .back()
            .map_or(0, |c| c.end.saturating_sub(position));
        drop(slot);
        if !task.0.is_empty() {
            let seg = self.clone();
            runtime.spawn_blocking(move || task.run(&seg));
        }
        covered
    }

    /// Cuts `[position, want_end)` into chunks of about [`AHEAD_CHUNK`] at index entries
    /// (batch starts). The last chunk ends at the last index entry at or before `want_end`, or
    /// at `durable` when that is `want_end`, so that no batch is cut.
    fn ahead_chunks(&self, position: u64, want_end: u64, durable: u64) -> Vec<(u64, u64)> {
        let meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        let mut chunks = Vec::new();
        let mut start = position;
        let mut last = position;
        let from = meta.index.partition_point(|e| e.position <= position);
        for e in &meta.index[from..] {
            if e.position > want_end {
                break;
            }
            last = e.position;
            if e.position - start >= AHEAD_CHUNK {
                chunks.push((start, e.position));
                start = e.position;
            }
        }
        if want_end == durable && start < durable {
            chunks.push((start, durable));
        } else if last > start {
            chunks.push((start, last));
        } else if chunks.is_empty() {
            // No batch boundary known before `want_end`: up to the durable end, within the cap.
            let end = durable.min(position + AHEAD_MAX as u64);
            if end > position {
                chunks.push((position, end));
            }
        }
        chunks
    }

    /// The read-ahead chunk holding `[pos, stop)` with the block-aligned position it starts
    /// at, once its read finished. The chunk stays in the window until a read-ahead starts
    /// past it: one call may read the segment in several passes.
    fn take_ahead(&self, tag: u32, pos: u64, stop: u64) -> Option<(u64, Bytes)> {
        let find = |a: &Ahead| {
            a.chunks
                .iter()
                .find(|c| c.start <= pos && stop <= c.end)
                .map(|c| (align_down(c.start), c.end, c.slot.clone()))
        };
        let (start, end, chunk) = if tag == 0 {
            find(
                self.ahead
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()?,
            )?
        } else {
            find(
                self.tag_ahead
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&tag)?,
            )?
        };
        let data = chunk.wait((end - start) as usize)?;
        self.ahead_hits.fetch_add(1, Ordering::Relaxed);
        Some((start, data))
    }

    /// How many reads the read-ahead served.
    #[cfg(test)]
    pub fn ahead_hits(&self) -> u64 {
        self.ahead_hits.load(Ordering::Relaxed)
    }

    /// How many chunks, and bytes, were read ahead.
    #[cfg(test)]
    pub fn ahead_read(&self) -> (u64, u64) {
        (
            self.ahead_read[0].load(Ordering::Relaxed),
            self.ahead_read[1].load(Ordering::Relaxed),
        )
    }

    /// Whether a read-ahead window is held.
    #[cfg(test)]
    pub fn has_ahead(&self) -> bool {
        self.ahead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|a| !a.chunks.is_empty())
    }

    /// Drops the read-ahead window (its reader moved on to a later segment).
    pub fn drop_ahead(&self) {
        *self.ahead.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Drops a read-ahead window nobody took for [`AHEAD_STALE`] (its reader went away).
    pub fn drop_stale_ahead(&self) {
        let mut slot = self.ahead.lock().unwrap_or_else(|e| e.into_inner());
        if slot
            .as_ref()
            .is_some_and(|a| a.since.elapsed() > AHEAD_STALE)
        {
            *slot = None;
        }
        drop(slot);
        self.tag_ahead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, a| a.since.elapsed() <= AHEAD_STALE);
    }

    /// Drops `tag`'s read-ahead window (its reader moved on to a later segment).
    pub fn drop_tag_ahead(&self, tag: u32) {
        self.tag_ahead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&tag);
    }

    /// [`Segment::read_ahead`] for a stream log's tag: the window holds `tag`'s batches from
    /// the one holding `offset` on, about `len` bytes of them, each batch a chunk of its own
    /// (they are not contiguous in the file). Returns the bytes of `tag`'s batches the window
    /// covers from there, so that a caller can read ahead into the next segment for the rest.
    pub fn read_ahead_tag(self: &Arc<Self>, tag: u32, offset: u64, len: usize) -> u64 {
        if !self.is_direct() {
            return 0;
        }
        let durable = self.durable_len();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return 0;
        };
        // Read-ahead is a guess: a list that cannot be loaded leaves the read to find out.
        let Ok(batches) =
            self.tag_batches_from(tag, offset, usize::MAX, len.min(AHEAD_MAX), durable)
        else {
            return 0;
        };
        let Some(first) = batches.first().map(|b| b.position) else {
            return 0;
        };
        let mut slots = self.tag_ahead.lock().unwrap_or_else(|e| e.into_inner());
        let window = slots.entry(tag).or_insert_with(|| Ahead {
            chunks: VecDeque::new(),
            since: Instant::now(),
        });
        window.advance(first);
        let have = window.chunks.back().map_or(0, |c| c.end);
        // Batches that follow each other in the file share a chunk, up to `AHEAD_CHUNK`.
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for b in batches.iter().filter(|b| b.position >= have) {
            let end = b.position + u64::from(b.len);
            match runs.last_mut() {
                Some(r) if r.1 == b.position && r.1 - r.0 < AHEAD_CHUNK => r.1 = end,
                _ => runs.push((b.position, end)),
            }
        }
        let task = window.add(runs);
        let covered_to = window.chunks.back().map_or(0, |c| c.end);
        drop(slots);
        if !task.0.is_empty() {
            let seg = self.clone();
            runtime.spawn_blocking(move || task.run(&seg));
        }
        batches
            .iter()
            .take_while(|b| b.position + u64::from(b.len) <= covered_to)
            .map(|b| u64::from(b.len))
            .sum()
    }

    /// The position to start reading from to find `offset`: the last index entry at or before it.
    pub fn position_for_offset(&self, offset: u64) -> u64 {
        let meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        let i = meta.index.partition_point(|e| e.offset <= offset);
        if i == 0 {
            0
        } else {
            meta.index[i - 1].position
        }
    }

    /// The position to start reading from to find the first record that arrived at or after
    /// `ts`, and the offset there.
    pub fn position_for_timestamp(&self, ts: i64) -> (u64, u64) {
        let meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        let i = meta.index.partition_point(|e| e.arrival_ms < ts);
        if i == 0 {
            (0, self.base_offset)
        } else {
            let e = meta.index[i - 1];
            (e.position, e.offset)
        }
    }

    /// Reads whole batches starting at `position`, up to about `max_bytes` (at least one batch)
    /// and no further than needed for `max_records` records at or after offset `from`, never
    /// past the durable length. Returns the verified batches with their positions.
    pub fn read_batches(
        &self,
        position: u64,
        max_bytes: usize,
        from: u64,
        max_records: usize,
    ) -> Result<Vec<(BatchHeader, Bytes)>, StorageError> {
        let mut out = Vec::new();
        self.visit_batches(position, max_bytes, from, max_records, |h, batch, _| {
            out.push((*h, batch.clone()));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Like [`Segment::read_batches`], but hands each batch to `visit` (with its position) as
    /// soon as it is verified, while its bytes are still in the CPU's cache; `visit` returns
    /// `false` to stop. Returns the position after the last batch visited.
    pub fn visit_batches(
        &self,
        mut position: u64,
        max_bytes: usize,
        from: u64,
        max_records: usize,
        mut visit: impl FnMut(&BatchHeader, &Bytes, u64) -> Result<bool, StorageError>,
    ) -> Result<u64, StorageError> {
        let end = self.durable_len();
        let mut total = 0usize;
        let mut records = 0usize;
        let mut reader = Windows::new(self, end);
        // `total` is 0 only before the first batch (a batch is never empty): at least one
        // batch is read whatever the limits.
        while position + BATCH_HEADER_LEN as u64 <= end
            && (total == 0 || (total < max_bytes && records < max_records))
        {
            let wanted = max_bytes.saturating_sub(total) as u64;
            let header = reader
                .get(position, BATCH_HEADER_LEN, wanted)
                .map_err(|e| self.io_err(e))?;
            let h = BatchHeader::parse(&header).ok_or_else(|| self.corrupt(position))?;
            if position + u64::from(h.len) > end {
                return Err(self.corrupt(position));
            }
            let batch = reader
                .get(position, h.len as usize, wanted)
                .map_err(|e| self.io_err(e))?;
            if !format::verify(&h, &batch) {
                return Err(self.corrupt(position));
            }
            total += batch.len();
            records += h.next_offset().saturating_sub(from.max(h.base_offset)) as usize;
            let at = position;
            position += u64::from(h.len);
            if !visit(&h, &batch, at)? {
                break;
            }
        }
        Ok(position)
    }

    fn io_err(&self, e: std::io::Error) -> StorageError {
        StorageError::Io {
            path: self.describe(),
            source: e,
        }
    }

    fn corrupt(&self, position: u64) -> StorageError {
        StorageError::Corrupt {
            path: self.describe(),
            position,
        }
    }
}

/// Most bytes one window reads. Direct reads of 1–2 MiB ran at the device's full speed on the
/// benchmark machine (about 2 GB/s); smaller ones paid the request latency more often, and
/// larger ones gained nothing.
const WINDOW: u64 = 2 << 20;

/// Sequential reads of a segment. A direct-I/O file is read through aligned windows of up to
/// [`WINDOW`], and batches are handed out as slices of the window they were read in, without
/// another copy; other segments are read exactly as asked (the page cache already makes small
/// reads cheap, and a window would copy the bytes after its last whole batch twice).
struct Windows<'a> {
    seg: &'a Segment,
    /// The stream log tag whose read-ahead window serves this reader (0: the segment's own).
    tag: u32,
    /// Readers never look at or past this.
    end: u64,
    start: u64,
    data: Bytes,
}

impl<'a> Windows<'a> {
    fn new(seg: &'a Segment, end: u64) -> Self {
        Windows {
            seg,
            tag: 0,
            end,
            start: 0,
            data: Bytes::new(),
        }
    }

    /// The `len` bytes at `pos` (which must end at or before `end`). A new window also covers
    /// up to `wanted` bytes from `pos` (what the caller may read next), within [`WINDOW`].
    fn get(&mut self, pos: u64, len: usize, wanted: u64) -> std::io::Result<Bytes> {
        let stop = pos + len as u64;
        let covered = pos >= self.start && stop <= self.start + self.data.len() as u64;
        if !covered {
            // Only direct-I/O segments read ahead.
            let ahead = self
                .seg
                .is_direct()
                .then(|| self.seg.take_ahead(self.tag, pos, stop));
            if let Some((start, data)) = ahead.flatten() {
                self.start = start;
                self.data = data;
            } else {
                let (start, window_end) = if self.seg.is_direct() {
                    let want = (len as u64).max(wanted.min(WINDOW));
                    (
                        align_down(pos),
                        align_up((pos + want).min(self.end).max(stop)),
                    )
                } else {
                    (pos, stop)
                };
                self.data = self.seg.read_window(start, window_end)?;
                self.start = start;
                if stop > start + self.data.len() as u64 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
        let from = (pos - self.start) as usize;
        Ok(self.data.slice(from..from + len))
    }
}

/// Creates (or replaces) the file at `path` with `raw` and fsyncs it.
fn write_synced(path: &Path, raw: &[u8]) -> Result<(), StorageError> {
    let mut f = File::create(path).map_err(|e| StorageError::io(path, e))?;
    f.write_all(raw).map_err(|e| StorageError::io(path, e))?;
    f.sync_all().map_err(|e| StorageError::io(path, e))
}

/// fsyncs a directory so that entries created or removed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

/// Most slices one `pwritev` takes (Linux's IOV_MAX).
const MAX_IOV: usize = 1024;

/// Writes every slice of `enc` at `pos` with `pwritev`, resuming after short writes.
fn write_vectored_all_at(file: &File, mut pos: u64, enc: &Encoded) -> std::io::Result<()> {
    let mut slices = enc.slices().filter(|s| !s.is_empty()).peekable();
    let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(MAX_IOV);
    while slices.peek().is_some() {
        iov.clear();
        iov.extend(slices.by_ref().take(MAX_IOV).map(IoSlice::new));
        let mut rest = &mut iov[..];
        while !rest.is_empty() {
            match rustix::io::pwritev(file, rest, pos) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    pos += n as u64;
                    IoSlice::advance_slices(&mut rest, n);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}
