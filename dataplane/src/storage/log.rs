//! A shard's log: segments, the writer task that group-commits appends, and readers.
//!
//! A log is either a shard's own (every batch untagged, tag 0) or a stream's: one engine (one
//! writer, lane, sync task and set of segments) for every shard of a stream on this node, each
//! batch tagged with its shard, so that one write and one sync carry the appends of every
//! shard (see `docs/stream-log.md`). A [`ShardLog`] is a handle on one tag of an engine.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{mpsc, oneshot, watch};

use super::aligned::AlignedBuf;
use super::format::{self, BatchHeader, Encoded, RecordIn, StoredRecord};
use super::segment::{sync_dir, Segment};
use super::{StorageConfig, StorageError};
use crate::clock::Clock;

/// Where an appended request landed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppendOutcome {
    /// Offset of the request's first record; the others follow contiguously.
    pub first_offset: u64,
    pub arrival_ms: i64,
}

/// Records read from a shard.
#[derive(Debug, Default)]
pub struct ReadBatch {
    pub records: Vec<StoredRecord>,
    /// Where the next read continues: after the last record returned, or where this read
    /// started (moved up to the trim horizon) when it returned nothing.
    pub next_offset: u64,
    /// Offset after the newest durable record (the tip).
    pub end_offset: u64,
    /// Arrival time of the newest durable record, 0 when the shard is empty.
    pub last_arrival_ms: i64,
}

impl ReadBatch {
    /// Bytes of partition keys and data returned (what Kinesis's read limits count).
    pub fn bytes(&self) -> usize {
        self.records
            .iter()
            .map(|r| r.data.len() + r.partition_key.len())
            .sum()
    }

    /// Kinesis's MillisBehindLatest: 0 when the read reached the tip, otherwise how old the
    /// last record returned is.
    pub fn millis_behind_latest(&self, now_ms: i64) -> i64 {
        if self.next_offset >= self.end_offset {
            return 0;
        }
        self.records
            .last()
            .map(|r| (now_ms - r.arrival_ms).max(0))
            .unwrap_or(0)
    }
}

enum Msg {
    Append {
        tag: u32,
        records: Vec<RecordIn>,
        flags: u8,
        reply: oneshot::Sender<Result<AppendOutcome, StorageError>>,
    },
    /// Close the shard after every append queued before this message is durable; replies with
    /// the end offset (offset after the last record).
    Close(u32, oneshot::Sender<u64>),
    /// Seal the active segment so retention can drop it.
    Roll,
    /// Finish the queued appends, fsync, and stop.
    Shutdown(oneshot::Sender<()>),
}

impl Msg {
    fn is_append(&self) -> bool {
        matches!(self, Msg::Append { .. })
    }
}

struct View {
    segments: Vec<Arc<Segment>>,
    /// Each shard's (tag's) state: one, tag 0, in a shard's own log.
    tags: std::collections::HashMap<u32, TagView>,
}

impl View {
    fn tag(&self, tag: u32) -> Option<&TagView> {
        self.tags.get(&tag)
    }
}

struct TagView {
    /// Trim horizon: the oldest readable offset.
    start_offset: u64,
    /// Offset after the newest durable record.
    end_offset: u64,
    last_arrival_ms: i64,
    closed: bool,
    /// Moves with `end_offset`, for push consumers.
    tip: watch::Sender<u64>,
}

impl TagView {
    fn new(start_offset: u64, end_offset: u64, last_arrival_ms: i64, closed: bool) -> TagView {
        TagView {
            start_offset,
            end_offset,
            last_arrival_ms,
            closed,
            tip: watch::channel(end_offset).0,
        }
    }
}

struct Inner {
    /// Set when an fsync failed: nothing more is acknowledged.
    failed: std::sync::atomic::AtomicBool,
    cfg: StorageConfig,
    dir: Option<PathBuf>,
    clock: Clock,
    view: RwLock<View>,
    /// A stream's log (tagged batches, segments named by a counter).
    stream: bool,
    /// Aligned buffers of direct rounds, kept for the next rounds (at most [`LANE_DEPTH`]).
    spares: Mutex<Vec<AlignedBuf>>,
}

impl Inner {
    fn take_spare(&self) -> AlignedBuf {
        self.spares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| AlignedBuf::zeroed(0))
    }

    fn give_spare(&self, buf: AlignedBuf) {
        let mut spares = self.spares.lock().unwrap_or_else(|e| e.into_inner());
        if spares.len() < LANE_DEPTH as usize {
            spares.push(buf);
        }
    }

    /// Gives back the memory of the spare buffers (an idle or closed log's).
    fn release_spares(&self) {
        self.spares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// Handle to a shard log, or to one shard of a stream's log. Cheap to clone.
#[derive(Clone)]
pub struct ShardLog {
    inner: Arc<Inner>,
    tx: mpsc::Sender<Msg>,
    writer: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    tag: u32,
}

/// A stream's log on this node: one engine for all its shards here, handed out per shard by
/// [`StreamLog::shard`].
#[derive(Clone)]
pub struct StreamLog {
    engine: ShardLog,
}

impl StreamLog {
    /// Opens (recovering) or creates the stream log stored in `cfg.dir`, or an in-memory one.
    ///
    /// 1. Create the directory if needed and fsync its parent.
    /// 2. Open every segment oldest first. Sealed segments load their index (each tag's
    ///    summary; the batch lists stay on disk until read); the newest one, and any whose
    ///    index is missing or damaged, is scanned and its torn tail, if any, truncated.
    /// 3. Each tag's offsets run from its first batch in the oldest segment to its last batch.
    /// 4. Start the writer task.
    pub fn open(cfg: StorageConfig, clock: Clock) -> Result<StreamLog, StorageError> {
        let segments = open_segments(&cfg, 0)?;
        let mut tags: std::collections::HashMap<u32, TagView> = Default::default();
        for seg in &segments {
            for (tag, first, end, last) in seg.tag_ranges() {
                let t = tags
                    .entry(tag)
                    .or_insert_with(|| TagView::new(first, end, last, false));
                t.end_offset = end;
                t.last_arrival_ms = last;
            }
        }
        for t in tags.values_mut() {
            t.tip.send_replace(t.end_offset);
        }
        Ok(StreamLog {
            engine: ShardLog::start(cfg, clock, segments, tags, true, 0),
        })
    }

    /// The log of shard `tag` (1 or more): its records from `start_offset` on (its trim
    /// horizon, as for [`ShardLog::open`]); a `closed` shard takes no more appends.
    pub fn shard(&self, tag: u32, start_offset: u64, closed: bool) -> ShardLog {
        debug_assert!((1..=format::MAX_TAG).contains(&tag));
        {
            let mut v = self
                .engine
                .inner
                .view
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let t = v
                .tags
                .entry(tag)
                .or_insert_with(|| TagView::new(start_offset, start_offset, 0, closed));
            t.start_offset = t.start_offset.max(start_offset).min(t.end_offset);
            t.closed |= closed;
        }
        ShardLog {
            tag,
            ..self.engine.clone()
        }
    }

    /// Stops the writer after it has made every queued append durable.
    pub async fn shutdown(&self) {
        self.engine.shutdown().await;
    }
}

impl ShardLog {
    /// Opens (recovering) or creates the log stored in `cfg.dir`, or an in-memory log.
    ///
    /// 1. Create the directory if needed and fsync its parent.
    /// 2. Open every segment oldest first. Sealed segments load their index; the newest one is
    ///    scanned and its torn tail, if any, truncated.
    /// 3. A gap between segments means the older one lost its tail to corruption; later offsets
    ///    still stand, so the log continues from the newest segment.
    /// 4. Start the writer task.
    pub fn open(
        cfg: StorageConfig,
        clock: Clock,
        start_offset: u64,
        closed: bool,
    ) -> Result<ShardLog, StorageError> {
        let segments = open_segments(&cfg, start_offset)?;
        let last = segments.last().expect("at least one segment");
        let end_offset = last.end_offset();
        let first = segments.first().expect("at least one segment");
        let start = start_offset.max(first.base_offset).min(end_offset);
        let last_arrival_ms = segments
            .iter()
            .rev()
            .find(|s| !s.is_empty())
            .map(|s| s.last_arrival_ms())
            .unwrap_or(0);
        let tags = [(0, TagView::new(start, end_offset, last_arrival_ms, closed))];
        Ok(ShardLog::start(cfg, clock, segments, tags.into(), false, 0))
    }

    fn start(
        cfg: StorageConfig,
        clock: Clock,
        segments: Vec<Arc<Segment>>,
        tags: std::collections::HashMap<u32, TagView>,
        stream: bool,
        tag: u32,
    ) -> ShardLog {
        let inner = Arc::new(Inner {
            failed: std::sync::atomic::AtomicBool::new(false),
            dir: cfg.dir.clone(),
            cfg: cfg.clone(),
            clock,
            view: RwLock::new(View { segments, tags }),
            stream,
            spares: Mutex::new(Vec::new()),
        });
        let (tx, rx) = mpsc::channel(cfg.queue_depth.max(1));
        let handle = tokio::spawn(writer(inner.clone(), rx));
        ShardLog {
            inner,
            tx,
            writer: Arc::new(Mutex::new(Some(handle))),
            tag,
        }
    }

    /// Appends `records` as one batch; returns once they are durable.
    pub async fn append(
        &self,
        records: Vec<RecordIn>,
        flags: u8,
    ) -> Result<AppendOutcome, StorageError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Append {
                tag: self.tag,
                records,
                flags,
                reply,
            })
            .await
            .map_err(|_| StorageError::Unavailable)?;
        rx.await.map_err(|_| StorageError::Unavailable)?
    }

    /// Closes the shard for writes once every earlier append is durable. Returns the end offset.
    pub async fn close(&self) -> Result<u64, StorageError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Close(self.tag, reply))
            .await
            .map_err(|_| StorageError::Unavailable)?;
        rx.await.map_err(|_| StorageError::Unavailable)
    }

    fn view(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.inner.view.read().unwrap_or_else(|e| e.into_inner())
    }

    /// This shard's start, end, last arrival and closed flag (a dropped shard of a stream log
    /// reads as empty and closed).
    fn state(&self) -> (u64, u64, i64, bool) {
        self.view().tag(self.tag).map_or((0, 0, 0, true), |t| {
            (t.start_offset, t.end_offset, t.last_arrival_ms, t.closed)
        })
    }

    pub fn start_offset(&self) -> u64 {
        self.state().0
    }

    pub fn end_offset(&self) -> u64 {
        self.state().1
    }

    pub fn is_closed(&self) -> bool {
        self.state().3
    }

    pub fn last_arrival_ms(&self) -> i64 {
        self.state().2
    }

    /// Bytes held by the log's segments (for a stream log's shard: its batches).
    pub fn size_bytes(&self) -> u64 {
        let v = self.view();
        if self.inner.stream {
            v.segments
                .iter()
                .filter_map(|s| s.tag_range(self.tag))
                .map(|(_, _, bytes)| bytes)
                .sum()
        } else {
            v.segments.iter().map(|s| s.durable_len()).sum()
        }
    }

    /// A receiver that changes whenever the tip moves (for push consumers).
    pub fn watch_tip(&self) -> watch::Receiver<u64> {
        match self.view().tag(self.tag) {
            Some(t) => t.tip.subscribe(),
            None => watch::channel(0).1,
        }
    }

    /// Reads up to `max_records` records and about `max_bytes` of data (partition keys and
    /// data, at least one record) starting at `from`.
    pub fn read(
        &self,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<ReadBatch, StorageError> {
        let segments = self.view().segments.clone();
        let (start, end, last_arrival_ms, _) = self.state();
        let from = from.max(start);
        let mut out = ReadBatch {
            records: Vec::new(),
            next_offset: from,
            end_offset: end,
            last_arrival_ms,
        };
        if from >= end || max_records == 0 {
            return Ok(out);
        }
        let mut c = Collect::new(from, end, max_records, max_bytes);
        let first_read = if self.inner.stream {
            self.collect_tagged(&segments, from, &mut c)?
        } else {
            collect(&segments, from, &mut c)?
        };
        let bytes = c.bytes;
        out.records = c.records;
        out.records.retain(|r| r.offset < end);
        if let Some(last) = out.records.last() {
            out.next_offset = last.offset + 1;
        }
        if out.next_offset < end && bytes > 0 {
            // A reader that filled its call is likely to come back for what follows: keep
            // about its next [`AHEAD_CALLS`] calls read ahead, into the next segments if need
            // be (direct I/O only). Windows of the segments this call read and left are
            // dropped: they would hold their share of the read-ahead budget until they went
            // stale.
            let want = (AHEAD_CALLS * bytes + (128 << 10)) as u64;
            let segments = &segments[first_read..];
            if self.inner.stream {
                self.read_ahead_tagged(segments, out.next_offset, want);
            } else {
                read_ahead(segments, out.next_offset, want);
            }
        }
        Ok(out)
    }

    /// Collects a stream log's shard's records from `from` on: only this tag's batches are
    /// read. Returns the index of the segment the read started in.
    fn collect_tagged(
        &self,
        segments: &[Arc<Segment>],
        from: u64,
        c: &mut Collect,
    ) -> Result<usize, StorageError> {
        let tag = self.tag;
        let mut first_read = None;
        'segments: for (i, seg) in segments.iter().enumerate() {
            let tag_end = match seg.tag_range(tag) {
                Some((_, tag_end, _)) if tag_end > from => tag_end,
                _ => continue,
            };
            first_read.get_or_insert(i);
            // One visit stops at its own byte and record limits, which count whole batches:
            // go on in this segment from where it stopped until the read is full.
            let mut seg_from = from;
            loop {
                let mut visited_to = None;
                seg.visit_tag_batches(
                    tag,
                    seg_from,
                    c.bytes_left(),
                    c.records_left(),
                    |h, batch, at| {
                        visited_to = Some(h.next_offset());
                        c.take(seg, h, batch, at)
                    },
                )?;
                if c.stop {
                    break 'segments;
                }
                match visited_to {
                    Some(next) if next < tag_end && next > seg_from => seg_from = next,
                    _ => break,
                }
            }
        }
        Ok(first_read.unwrap_or(segments.len()))
    }

    /// [`read_ahead`] for a stream log's shard: its batches only, from offset `next` on.
    fn read_ahead_tagged(&self, segments: &[Arc<Segment>], mut next: u64, mut want: u64) {
        let tag = self.tag;
        for seg in segments {
            match seg.tag_range(tag) {
                Some((_, tag_end, _)) if tag_end > next => {
                    let covered = seg.read_ahead_tag(tag, next, want as usize);
                    if covered == 0 || covered >= want {
                        break;
                    }
                    want -= covered;
                    next = tag_end;
                }
                _ => seg.drop_tag_ahead(tag),
            }
        }
    }

    /// The offset of the first record that arrived at or after `ts` (the tip if none).
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<u64, StorageError> {
        let segments = self.view().segments.clone();
        let (start, end, _, _) = self.state();
        if self.inner.stream {
            for seg in &segments {
                if seg.is_empty() || seg.last_arrival_ms() < ts {
                    continue;
                }
                if let Some(offset) = seg.tag_offset_for_timestamp(self.tag, ts)? {
                    return Ok(offset.max(start).min(end));
                }
            }
            return Ok(end);
        }
        for seg in &segments {
            if seg.is_empty() || seg.last_arrival_ms() < ts {
                continue;
            }
            let (mut position, _) = seg.position_for_timestamp(ts);
            loop {
                let batches = seg.read_batches(position, 1 << 20, 0, usize::MAX)?;
                if batches.is_empty() {
                    break;
                }
                for (h, _) in &batches {
                    if h.arrival_ms >= ts {
                        return Ok(h.base_offset.max(start));
                    }
                    position += u64::from(h.len);
                }
            }
        }
        Ok(end)
    }

    /// Applies retention: records that arrived before `cutoff_ms` become unreadable and sealed
    /// segments holding only such records are deleted.
    ///
    /// 1. Move the trim horizon to the first record at or after the cutoff (readers skip below).
    /// 2. Delete sealed segments that end at or below the horizon, oldest first.
    /// 3. If the active segment holds only expired records, ask the writer to seal it so a later
    ///    pass can delete it.
    ///
    /// It also gives back the write buffers of a direct-I/O log idle for a minute.
    pub fn trim(&self, cutoff_ms: i64) -> Result<(), StorageError> {
        let active = self.view().segments.last().cloned();
        if let Some(active) = active {
            if self.inner.clock.now_ms() - active.last_arrival_ms() > IDLE_STAGE_MS {
                self.inner.release_spares();
            }
        }
        let horizon = self.offset_for_timestamp(cutoff_ms)?;
        self.trim_to_offset(horizon)
    }

    /// Makes records below `horizon` unreadable and deletes sealed segments holding only such
    /// records (a consumer that keeps its own checkpoint, such as a delivery stream's buffer,
    /// releases what it has delivered). Steps 1-3 of [`ShardLog::trim`] with a given horizon.
    /// Also drops read-ahead windows nobody used for a while.
    pub fn trim_to_offset(&self, horizon: u64) -> Result<(), StorageError> {
        let segments = self.view().segments.clone();
        segments.iter().for_each(|s| s.drop_stale_ahead());
        let mut doomed = Vec::new();
        let roll = {
            let mut v = self.inner.view.write().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = v.tags.get_mut(&self.tag) {
                let horizon = horizon.min(t.end_offset);
                if horizon > t.start_offset {
                    t.start_offset = horizon;
                }
            }
            // A segment goes once every shard's records in it are below that shard's horizon
            // (a shard dropped from a stream log holds nothing back).
            let expired = |v: &View, seg: &Segment| {
                if !self.inner.stream {
                    return v.tag(0).is_some_and(|t| seg.end_offset() <= t.start_offset);
                }
                seg.tag_ranges()
                    .iter()
                    .all(|(tag, _, end, _)| v.tag(*tag).is_none_or(|t| *end <= t.start_offset))
            };
            while v.segments.len() > 1 && expired(&v, &v.segments[0]) {
                doomed.push(v.segments.remove(0));
            }
            let active = v.segments.last().expect("active segment");
            !active.is_empty() && expired(&v, active)
        };
        for seg in doomed {
            seg.remove()?;
        }
        if roll {
            let _ = self.tx.try_send(Msg::Roll);
        }
        Ok(())
    }

    /// Stops the writer after it has made every queued append durable (and, without per-write
    /// fsync, after a final fsync).
    pub async fn shutdown(&self) {
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let (reply, rx) = oneshot::channel();
            if self.tx.send(Msg::Shutdown(reply)).await.is_ok() {
                let _ = rx.await;
            }
            let _ = handle.await;
        }
    }

    /// Shuts the log down and deletes its files. A shard of a stream log is dropped from it
    /// instead: its records go with the segments they share, and the other shards go on.
    pub async fn destroy(&self) -> Result<(), StorageError> {
        if self.inner.stream {
            self.inner
                .view
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .tags
                .remove(&self.tag);
            return Ok(());
        }
        self.shutdown().await;
        if let Some(dir) = &self.inner.dir {
            remove_dir(dir)?;
        }
        Ok(())
    }
}

/// Opens (recovering) the segments of the log in `cfg.dir`, creating the directory if need be
/// (and fsyncing its parent): sealed segments load their index, the newest one is scanned. A
/// log with none gets a first segment at `first_base`.
fn open_segments(cfg: &StorageConfig, first_base: u64) -> Result<Vec<Arc<Segment>>, StorageError> {
    let mut segments = Vec::new();
    if let Some(dir) = &cfg.dir {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let files = Segment::list(dir)?;
        let last = files.len().saturating_sub(1);
        for (i, (base, path)) in files.iter().enumerate() {
            let seg = Segment::open(
                path,
                *base,
                cfg.index_interval_bytes,
                i < last,
                cfg.direct_io,
            )?;
            segments.push(Arc::new(seg));
        }
    }
    if segments.is_empty() {
        segments.push(Arc::new(Segment::create(
            cfg.dir.as_deref(),
            first_base,
            cfg.direct_io,
        )?));
    }
    Ok(segments)
}

/// Collects a shard log's records from `from` on. Returns the index of the segment the read
/// started in.
fn collect(segments: &[Arc<Segment>], from: u64, c: &mut Collect) -> Result<usize, StorageError> {
    let first_read = segments
        .partition_point(|s| s.base_offset <= from)
        .saturating_sub(1);
    for seg in &segments[first_read..] {
        let mut position = seg.position_for_offset(from.max(seg.base_offset));
        loop {
            // Each batch is decoded as soon as it is read and verified, while it is still in
            // the CPU's cache (decoding touches every record's header).
            let after = seg.visit_batches(
                position,
                c.bytes_left(),
                from,
                c.records_left(),
                |h, batch, at| c.take(seg, h, batch, at),
            )?;
            if c.stop {
                return Ok(first_read);
            }
            // No batch left in this segment.
            if after == position {
                break;
            }
            position = after;
        }
    }
    Ok(first_read)
}

/// Reads about `want` bytes of a shard log ahead from offset `next` on, through `segments`
/// (from the first one the last read touched); windows of segments before `next`'s are dropped.
fn read_ahead(segments: &[Arc<Segment>], next: u64, mut want: u64) {
    let first = segments
        .partition_point(|s| s.base_offset <= next)
        .saturating_sub(1);
    for seg in segments[..first].iter().filter(|s| s.is_direct()) {
        seg.drop_ahead();
    }
    for (i, seg) in segments.iter().enumerate().skip(first) {
        if !seg.is_direct() {
            break;
        }
        let at = if i == first {
            seg.position_for_offset(next)
        } else {
            0
        };
        let covered = seg.read_ahead(at, want as usize);
        if covered == 0 || covered >= want {
            break;
        }
        want -= covered;
    }
}

/// A read's records, taken from the batches it visits until its limits are reached.
struct Collect {
    records: Vec<StoredRecord>,
    from: u64,
    end: u64,
    max_records: usize,
    max_bytes: usize,
    /// Partition key and data bytes taken so far.
    bytes: usize,
    /// The read is full.
    stop: bool,
}

impl Collect {
    fn new(from: u64, end: u64, max_records: usize, max_bytes: usize) -> Collect {
        Collect {
            records: Vec::new(),
            from,
            end,
            max_records,
            max_bytes,
            bytes: 0,
            stop: false,
        }
    }

    fn bytes_left(&self) -> usize {
        self.max_bytes.saturating_sub(self.bytes)
    }

    fn records_left(&self) -> usize {
        self.max_records.saturating_sub(self.records.len())
    }

    /// Takes the records of a verified batch at `at` of `seg` that are at or after `from` and
    /// below `end`, within the limits (at least one record); `Ok(false)` once the read is full.
    fn take(
        &mut self,
        seg: &Segment,
        h: &BatchHeader,
        batch: &bytes::Bytes,
        at: u64,
    ) -> Result<bool, StorageError> {
        if h.next_offset() <= self.from || h.base_offset >= self.end {
            return Ok(true);
        }
        let before = self.records.len();
        format::decode_records(h, batch, self.from, &mut self.records, self.max_records)
            .ok_or_else(|| StorageError::Corrupt {
                path: seg.describe(),
                position: at + u64::from(h.len),
            })?;
        for i in before..self.records.len() {
            let r = &self.records[i];
            let size = r.data.len() + r.partition_key.len();
            if self.bytes + size > self.max_bytes && i > 0 {
                self.records.truncate(i);
                self.stop = true;
                return Ok(false);
            }
            self.bytes += size;
        }
        if self.records.len() >= self.max_records || self.bytes >= self.max_bytes {
            self.stop = true;
            return Ok(false);
        }
        Ok(true)
    }
}

fn remove_dir(dir: &Path) -> Result<(), StorageError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::io(dir, e)),
    }
    if let Some(parent) = dir.parent() {
        let _ = sync_dir(parent);
    }
    Ok(())
}

/// A direct-I/O log idle this long gives back the buffers its rounds were copied into.
const IDLE_STAGE_MS: i64 = 60_000;

/// Rounds up to this size are written from the writer task itself.
const INLINE_WRITE_BYTES: usize = 256 * 1024;

/// How many calls of the size of the last one a sequential reader's read-ahead covers. With
/// one, a reader of the benchmark's read-back still waited for the device on every call (the
/// device reads about as fast as a reader consumes, so the read for the next call could not
/// finish while this one was answered); with two, it almost never waits.
const AHEAD_CALLS: usize = 2;

/// Most bytes one group commit gathers before writing.
const GROUP_BYTES: usize = 4 << 20;

/// Direct rounds of at least this many bytes are handed to the lane while it writes the round
/// before them; smaller ones wait until it has finished (see [`writer`]).
const OVERLAP_BYTES: usize = 128 << 10;

type Waiters = Vec<(
    oneshot::Sender<Result<AppendOutcome, StorageError>>,
    AppendOutcome,
)>;

/// Fails appends: none of them is acknowledged.
fn refuse(waiters: Waiters) {
    for (reply, _) in waiters {
        let _ = reply.send(Err(StorageError::Unavailable));
    }
}

/// A round failed before any of it was acknowledged: each tag in it starts again from its
/// first offset in the round.
fn rewind(next: &mut std::collections::HashMap<u32, u64>, headers: &[(BatchHeader, usize)]) {
    for (h, _) in headers.iter().rev() {
        next.insert(h.tag, h.base_offset);
    }
}

/// A written round on its way to being published (by the lane or the sync task).
struct Round {
    segment: Arc<Segment>,
    /// Segment length after the round.
    len: u64,
    /// Each tag's end offset after the round.
    ends: Vec<(u32, u64)>,
    last_arrival: i64,
    waiters: Waiters,
}

impl Round {
    fn new(
        segment: Arc<Segment>,
        len: u64,
        ends: Vec<(u32, u64)>,
        last_arrival: i64,
        waiters: Waiters,
    ) -> Round {
        Round {
            segment,
            len,
            ends,
            last_arrival,
            waiters,
        }
    }
}

enum SyncMsg {
    Round(Round),
    /// Answered once every earlier round is published (or failed).
    Barrier(oneshot::Sender<()>),
    /// Marks a tag closed once every earlier round is published; answers its end offset.
    Close(u32, oneshot::Sender<u64>),
}

/// A direct round copied into an aligned buffer, waiting for the lane to write it.
struct Job {
    buf: AlignedBuf,
    /// Aligned file position of `buf`.
    at: u64,
    /// The round's start and length in the segment.
    pos: u64,
    round_len: usize,
    /// fsync before acknowledging (and zero ahead of small rounds).
    sync: bool,
    index_interval: u64,
    /// Each batch's header and position in the segment.
    headers: Vec<(BatchHeader, u64)>,
    round: Round,
    /// The round's request buffers, freed on the lane's thread.
    encoded: Encoded,
    /// Returned to the writer once the round is published or refused.
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Direct rounds a log's writer may have handed to its lane and not yet seen written and
/// synced: one being written and the next one ready, so the device does not wait for the
/// writer between rounds.
const LANE_DEPTH: u32 = 2;

struct LaneState {
    jobs: std::collections::VecDeque<Job>,
    /// A blocking thread is working through `jobs`.
    running: bool,
    /// A write failed: the lane refuses every round queued behind it until the writer has
    /// started again from the durable end.
    broken: bool,
}

/// Writes and syncs a direct log's rounds in order, on a blocking thread that keeps going while
/// rounds are queued, and publishes each one as soon as it is durable. The writer copies a
/// large round N+1 into its aligned buffer while the lane writes round N; a small one waits
/// for round N to be published, gathering the appends that arrive meanwhile (see [`writer`]).
///
/// The lane publishes its rounds itself rather than handing them to the sync task: that saves
/// a task wake-up per round, which is most of what a round of single-record appends costs
/// besides its write. Order still holds, because the writer sends the sync task a barrier or a
/// close only after the lane has drained, and a log's rounds go either all through the lane
/// (direct segments) or all through the sync task.
struct Lane {
    state: Mutex<LaneState>,
    permits: Arc<tokio::sync::Semaphore>,
    inner: Arc<Inner>,
}

impl Lane {
    fn new(inner: Arc<Inner>) -> Arc<Lane> {
        Arc::new(Lane {
            state: Mutex::new(LaneState {
                jobs: Default::default(),
                running: false,
                broken: false,
            }),
            permits: Arc::new(tokio::sync::Semaphore::new(LANE_DEPTH as usize)),
            inner,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A permit to hand the lane one more round.
    async fn permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.permits.clone().acquire_owned().await.ok()
    }

    fn push(self: &Arc<Self>, job: Job) {
        let mut st = self.state();
        st.jobs.push_back(job);
        if !st.running {
            st.running = true;
            let lane = self.clone();
            tokio::task::spawn_blocking(move || lane.run());
        }
    }

    fn run(&self) {
        loop {
            let (job, refused) = {
                let mut st = self.state();
                let Some(job) = st.jobs.pop_front() else {
                    st.running = false;
                    return;
                };
                let failed = self.inner.failed.load(std::sync::atomic::Ordering::Acquire);
                (job, st.broken || failed)
            };
            let Job {
                buf,
                at,
                pos,
                round_len,
                sync,
                index_interval,
                headers,
                round,
                encoded,
                _permit,
            } = job;
            drop(encoded);
            let written = if refused {
                Err(StorageError::Unavailable)
            } else {
                round
                    .segment
                    .write_prepared(at, &buf, pos + round_len as u64, round_len, sync)
            };
            self.inner.give_spare(buf);
            if let Err(e) = written {
                if !refused {
                    tracing::error!(error = %e, "Append failed; the round's writes are refused.");
                    self.state().broken = true;
                }
                refuse(round.waiters);
                continue;
            }
            if sync {
                if let Err(e) = round.segment.sync() {
                    // Rounds before this one are durable and were published; this one and every
                    // one after it are refused.
                    tracing::error!(error = %e, "fsync failed; the log stops accepting writes.");
                    self.inner
                        .failed
                        .store(true, std::sync::atomic::Ordering::Release);
                    refuse(round.waiters);
                    continue;
                }
            }
            for (h, p) in &headers {
                round.segment.note_batch(h, *p, index_interval);
            }
            publish(&self.inner, round);
        }
    }

    /// Waits, holding one permit, until every round handed to the lane is written and
    /// published (or refused).
    async fn idle(&self) {
        if let Ok(rest) = self.permits.acquire_many(LANE_DEPTH - 1).await {
            drop(rest);
        }
    }

    /// Waits until every round handed to the lane is written and published (or refused).
    async fn drain(&self) {
        if let Ok(all) = self.permits.acquire_many(LANE_DEPTH).await {
            drop(all);
        }
    }
}

/// Record bytes of an append (none for other messages).
fn append_bytes(m: &Msg) -> usize {
    match m {
        Msg::Append { records, .. } => records.iter().map(format::record_len).sum(),
        _ => 0,
    }
}

/// Takes every message already queued into `group`, until the appends in it reach
/// [`GROUP_BYTES`].
fn gather(rx: &mut mpsc::Receiver<Msg>, group: &mut Vec<Msg>, bytes: &mut usize) {
    while *bytes < GROUP_BYTES {
        match rx.try_recv() {
            Ok(m) => {
                *bytes += append_bytes(&m);
                group.push(m);
            }
            Err(_) => break,
        }
    }
}

/// The writer task: the only code that appends to a shard's segments.
///
/// Through the page cache, writing and syncing are pipelined: while the sync task fsyncs round
/// N, the writer already gathers and writes round N+1. A direct write waits for the device
/// itself, so the lane syncs it in the same blocking call and publishes it: every append that
/// arrived during the write and sync goes into the next round, covered by one fdatasync. Each
/// round:
/// 1. Wait for one message, then take every message already queued (up to `GROUP_BYTES`). A
///    direct round of appends smaller than `OVERLAP_BYTES` then waits until the lane has
///    published the round before it and takes in every append queued meanwhile.
/// 2. Give appends their offsets and one arrival time each (never earlier than the previous
///    batch's, so the timestamp index stays sorted) and encode them: headers, length prefixes
///    and partition keys into one buffer, while record data stays in the requests' buffers.
/// 3. Seal the active segment first if the buffer would overflow it or it is too old (after a
///    barrier, so the sealed segment's index and length are final).
/// 4. Write the round after the previous round's bytes (large and direct rounds off a runtime
///    thread): through the page cache with vectored writes, so record data is copied once,
///    into the page cache, and hand the round to the sync task; with direct I/O through the
///    segment's staging buffer, synced and published by the lane. On a write failure, cut the
///    segment back and fail the round's appends: nothing was acknowledged. On a sync failure,
///    stop accepting writes.
/// 5. Close and shutdown requests travel behind the rounds queued before them.
async fn writer(inner: Arc<Inner>, mut rx: mpsc::Receiver<Msg>) {
    let cfg = inner.cfg.clone();
    let (sync_tx, sync_rx) = mpsc::channel::<SyncMsg>(64);
    let syncer = tokio::spawn(sync_task(inner.clone(), sync_rx));
    // Each tag's next offset, taken from the view when the tag is first written (and again
    // after a failed write); tags closed for writes.
    let mut next: std::collections::HashMap<u32, u64> = Default::default();
    let mut closed: std::collections::HashSet<u32> = Default::default();
    let (mut last_arrival, mut active) = {
        let v = inner.view.read().unwrap_or_else(|e| e.into_inner());
        (
            v.tags
                .values()
                .map(|t| t.last_arrival_ms)
                .max()
                .unwrap_or(0),
            v.segments.last().expect("active segment").clone(),
        )
    };
    let mut written_len = active.durable_len();
    let mut sync_failed = false;
    let lane = Lane::new(inner.clone());
    let barrier = |sync_tx: mpsc::Sender<SyncMsg>| async move {
        let (tx, rx) = oneshot::channel();
        if sync_tx.send(SyncMsg::Barrier(tx)).await.is_ok() {
            let _ = rx.await;
        }
    };
    while let Some(first) = rx.recv().await {
        if lane.state().broken {
            // A direct write failed, and the lane refused every round after it. Once it has
            // finished and every round written before is published, go on from the end of
            // what is durable.
            lane.drain().await;
            barrier(sync_tx.clone()).await;
            written_len = active.durable_len();
            let _ = active.truncate(written_len);
            next.clear();
            lane.state().broken = false;
        }
        // A direct log waits for the lane to have room before gathering, so that appends
        // arriving meanwhile join this round.
        let mut permit = None;
        if active.is_direct() && first.is_append() {
            permit = lane.permit().await;
        }
        let mut bytes = append_bytes(&first);
        let mut group = vec![first];
        gather(&mut rx, &mut group, &mut bytes);
        // A small direct round handed to the lane now would only wait behind the round being
        // written, and the appends arriving during that write would wait behind both. So it
        // waits for the lane to be empty and takes in what arrived meanwhile: one write and
        // one sync for all of them. A large round is copied while the lane writes the one
        // before it, so the device does not wait for the copy.
        if permit.is_some() && bytes < OVERLAP_BYTES && group.iter().all(Msg::is_append) {
            lane.idle().await;
            gather(&mut rx, &mut group, &mut bytes);
        }
        // In a stream log, each shard's batches of a round go next to each other (in the
        // order they came), so that its readers read them in one piece. Only a round of
        // appends alone is reordered: a close must stay behind the appends before it.
        if inner.stream && group.iter().all(Msg::is_append) {
            group.sort_by_key(|m| match m {
                Msg::Append { tag, .. } => *tag,
                _ => 0,
            });
        }

        let now = inner.clock.now_ms().max(last_arrival);
        let mut buf = Encoded::default();
        if active.is_direct() {
            buf.defer_crcs();
        }
        let mut headers: Vec<(BatchHeader, usize)> = Vec::new();
        let mut waiters = Vec::new();
        let mut closers = Vec::new();
        // Each tag's end offset after this round.
        let mut ends: Vec<(u32, u64)> = Vec::new();
        let mut roll = false;
        let mut stop = None;
        let failed = sync_failed || inner.failed.load(std::sync::atomic::Ordering::Acquire);
        for msg in group {
            match msg {
                Msg::Append { reply, .. } if stop.is_some() || failed => {
                    let _ = reply.send(Err(StorageError::Unavailable));
                }
                Msg::Append { tag, reply, .. } if closed.contains(&tag) => {
                    let _ = reply.send(Err(StorageError::Closed));
                }
                Msg::Append {
                    tag,
                    records,
                    flags,
                    reply,
                } => {
                    let first = match next.get(&tag) {
                        Some(n) => *n,
                        None => {
                            let v = inner.view.read().unwrap_or_else(|e| e.into_inner());
                            match v.tag(tag) {
                                Some(t) if !t.closed => t.end_offset,
                                // Closed, or not a shard of this log (any more).
                                _ => {
                                    drop(v);
                                    closed.insert(tag);
                                    let _ = reply.send(Err(StorageError::Closed));
                                    continue;
                                }
                            }
                        }
                    };
                    let pos = buf.len();
                    let n = records.len() as u64;
                    let h = buf.push_batch(first, now, flags, tag, records);
                    headers.push((h, pos));
                    waiters.push((
                        reply,
                        AppendOutcome {
                            first_offset: first,
                            arrival_ms: now,
                        },
                    ));
                    next.insert(tag, first + n);
                    match ends.iter_mut().find(|(t, _)| *t == tag) {
                        Some((_, end)) => *end = first + n,
                        None => ends.push((tag, first + n)),
                    }
                    last_arrival = now;
                }
                Msg::Close(tag, reply) => {
                    closed.insert(tag);
                    closers.push((tag, reply));
                }
                Msg::Roll => roll = true,
                Msg::Shutdown(reply) => stop = Some(reply),
            }
        }

        let too_big = written_len + buf.len() as u64 > cfg.segment_bytes;
        let too_old = active
            .first_arrival_ms()
            .is_some_and(|t| now - t > cfg.segment_max_age_ms);
        if written_len > 0 && (roll || ((too_big || too_old) && !buf.is_empty())) {
            permit = None;
            lane.drain().await;
            barrier(sync_tx.clone()).await;
            match roll_segment(&inner, &active).await {
                Ok(seg) => {
                    active = seg;
                    written_len = 0;
                }
                Err(RollError::Seal(e)) => {
                    // Sealing fsyncs the segment: after a failed fsync nothing more is taken.
                    tracing::error!(error = %e, "Could not seal a segment; the log stops accepting writes.");
                    sync_failed = true;
                    inner
                        .failed
                        .store(true, std::sync::atomic::Ordering::Release);
                }
                Err(RollError::Create(e)) => {
                    tracing::error!(error = %e, "Could not start a new segment; continuing in the old one.")
                }
            }
        }

        if !buf.is_empty() && active.is_direct() {
            // Direct rounds: copy into an aligned buffer here and let the lane write and sync
            // it, while this task goes on with the next round.
            let permit = match permit.take() {
                Some(p) => p,
                None => lane
                    .permit()
                    .await
                    .expect("the lane's semaphore is never closed"),
            };
            let round_len = buf.len();
            let pos = written_len;
            let mut out = inner.take_spare();
            match active.prepare_direct(pos, &buf, &mut out) {
                Ok(at) => {
                    written_len += round_len as u64;
                    let round = Round::new(
                        active.clone(),
                        written_len,
                        std::mem::take(&mut ends),
                        last_arrival,
                        waiters,
                    );
                    lane.push(Job {
                        buf: out,
                        at,
                        pos,
                        round_len,
                        sync: cfg.fsync,
                        index_interval: cfg.index_interval_bytes,
                        headers: headers.iter().map(|(h, p)| (*h, pos + *p as u64)).collect(),
                        round,
                        encoded: buf,
                        _permit: permit,
                    });
                }
                Err(e) => {
                    tracing::error!(error = %e, "Append failed; the round's writes are refused.");
                    inner.give_spare(out);
                    rewind(&mut next, &headers);
                    refuse(waiters);
                }
            }
        } else if !buf.is_empty() {
            // Through the page cache (or in memory): the sync task syncs the round, behind the
            // next write. (A roll may have left a direct round's CRCs to compute.)
            buf.finish_crcs();
            let round_len = buf.len();
            let seg = active.clone();
            let pos = written_len;
            // Zeros ahead only pay off when each round is synced.
            let zero_ahead = cfg.fsync;
            // A small write through the page cache only copies into it (microseconds): doing it
            // here saves a hand-off to the blocking pool per round. Large ones go to a blocking
            // thread.
            let write = if round_len <= INLINE_WRITE_BYTES {
                seg.write_encoded_at(pos, &buf, zero_ahead)
            } else {
                tokio::task::spawn_blocking(move || seg.write_encoded_at(pos, &buf, zero_ahead))
                    .await
                    .unwrap_or(Err(StorageError::Unavailable))
            };
            match write {
                Ok(()) => {
                    for (h, p) in &headers {
                        active.note_batch(h, written_len + *p as u64, cfg.index_interval_bytes);
                    }
                    written_len += round_len as u64;
                    let round = Round::new(
                        active.clone(),
                        written_len,
                        std::mem::take(&mut ends),
                        last_arrival,
                        waiters,
                    );
                    if let Err(mpsc::error::SendError(SyncMsg::Round(r))) =
                        sync_tx.send(SyncMsg::Round(round)).await
                    {
                        refuse(r.waiters);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "Append failed; the round's writes are refused.");
                    let _ = active.truncate(written_len);
                    rewind(&mut next, &headers);
                    refuse(waiters);
                }
            }
        }
        if !closers.is_empty() || stop.is_some() {
            drop(permit);
            lane.drain().await;
        }
        if !closers.is_empty() {
            inner.release_spares();
        }
        for (tag, reply) in closers {
            let _ = sync_tx.send(SyncMsg::Close(tag, reply)).await;
        }
        if let Some(reply) = stop {
            barrier(sync_tx.clone()).await;
            let seg = active.clone();
            let _ = tokio::task::spawn_blocking(move || seg.sync()).await;
            // The sync task ends once every sender is gone.
            drop(sync_tx);
            drop(lane);
            let _ = syncer.await;
            let _ = reply.send(());
            return;
        }
    }
}

/// The sync task: makes written rounds durable and only then publishes them to readers and
/// acknowledges their appends, in order.
///
/// 1. Take every round queued (they were all written before this point).
/// 2. fdatasync each segment they touched once (skipped with `--no-fsync`): one sync covers
///    every round written before it started.
/// 3. Publish each round's end to readers, then answer its appends; answer barriers and closes
///    in queue order. If a sync fails, nothing after the last published round is acknowledged
///    and the log refuses further writes.
async fn sync_task(inner: Arc<Inner>, mut rx: mpsc::Receiver<SyncMsg>) {
    while let Some(first) = rx.recv().await {
        let mut msgs = vec![first];
        while let Ok(m) = rx.try_recv() {
            msgs.push(m);
        }
        let mut segments: Vec<Arc<Segment>> = Vec::new();
        for m in &msgs {
            if let SyncMsg::Round(r) = m {
                if !segments.iter().any(|s| Arc::ptr_eq(s, &r.segment)) {
                    segments.push(r.segment.clone());
                }
            }
        }
        let mut ok = !inner.failed.load(std::sync::atomic::Ordering::Acquire);
        if ok && inner.cfg.fsync && !segments.is_empty() {
            let synced =
                tokio::task::spawn_blocking(move || segments.iter().try_for_each(|s| s.sync()))
                    .await;
            if let Ok(Err(e)) | Err(e) = synced.map_err(|_| StorageError::Unavailable) {
                tracing::error!(error = %e, "fsync failed; the log stops accepting writes.");
                ok = false;
                inner
                    .failed
                    .store(true, std::sync::atomic::Ordering::Release);
            }
        }
        for m in msgs {
            match m {
                SyncMsg::Round(r) if ok => publish(&inner, r),
                SyncMsg::Round(r) => {
                    refuse(r.waiters);
                }
                SyncMsg::Barrier(reply) => {
                    let _ = reply.send(());
                }
                SyncMsg::Close(tag, reply) => {
                    let end = {
                        let mut v = inner.view.write().unwrap_or_else(|e| e.into_inner());
                        v.tags.get_mut(&tag).map_or(0, |t| {
                            t.closed = true;
                            t.end_offset
                        })
                    };
                    let _ = reply.send(end);
                }
            }
        }
    }
}

/// Makes a durable round visible to readers and answers its appends.
fn publish(inner: &Inner, r: Round) {
    // A shard log's segment ends at its tag's end; a stream log's segments keep their offsets
    // per tag.
    let seg_end = match r.ends.iter().find(|(tag, _)| *tag == 0) {
        Some((_, end)) => *end,
        None => r.segment.end_offset(),
    };
    r.segment.publish(r.len, seg_end);
    {
        let mut v = inner.view.write().unwrap_or_else(|e| e.into_inner());
        for (tag, end) in &r.ends {
            if let Some(t) = v.tags.get_mut(tag) {
                t.end_offset = *end;
                t.last_arrival_ms = r.last_arrival;
                t.tip.send_replace(*end);
            }
        }
    }
    for (reply, outcome) in r.waiters {
        let _ = reply.send(Ok(outcome));
    }
}

/// Why a segment roll failed: sealing (which fsyncs) or creating the next segment.
enum RollError {
    Seal(StorageError),
    Create(StorageError),
}

/// Seals `active` and starts a new segment after it.
async fn roll_segment(
    inner: &Arc<Inner>,
    active: &Arc<Segment>,
) -> Result<Arc<Segment>, RollError> {
    let sealed = active.clone();
    let dir = inner.dir.clone();
    // A shard log's segments are named by their first offset, a stream log's by a counter.
    let base = if inner.stream {
        active.base_offset + 1
    } else {
        active.end_offset()
    };
    let direct = inner.cfg.direct_io;
    let seg = tokio::task::spawn_blocking(move || {
        sealed.seal().map_err(RollError::Seal)?;
        Segment::create(dir.as_deref(), base, direct).map_err(RollError::Create)
    })
    .await
    .map_err(|_| RollError::Seal(StorageError::Unavailable))??;
    let seg = Arc::new(seg);
    inner
        .view
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .segments
        .push(seg.clone());
    Ok(seg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::tags;
    use bytes::Bytes;

    fn recs(n: usize, size: usize) -> Vec<RecordIn> {
        (0..n)
            .map(|i| RecordIn {
                partition_key: Bytes::from(format!("pk{i}")),
                data: Bytes::from(vec![i as u8; size]),
            })
            .collect()
    }

    fn cfg(dir: Option<&Path>) -> StorageConfig {
        StorageConfig {
            dir: dir.map(|d| d.join("shard")),
            segment_bytes: 4096,
            index_interval_bytes: 512,
            ..StorageConfig::default()
        }
    }

    #[tokio::test]
    async fn appended_records_read_back_in_order_across_segments() {
        for tmp in [Some(tempfile::tempdir().unwrap()), None] {
            let log = ShardLog::open(
                cfg(tmp.as_ref().map(|t| t.path())),
                Clock::default(),
                0,
                false,
            )
            .unwrap();
            for i in 0..50u64 {
                let out = log.append(recs(3, 100), 0).await.unwrap();
                assert_eq!(out.first_offset, i * 3);
            }
            assert_eq!(log.end_offset(), 150);
            assert!(log.view().segments.len() > 1, "segments rolled");
            let mut from = 0;
            let mut seen = 0;
            loop {
                let b = log.read(from, 7, 1 << 20).unwrap();
                if b.records.is_empty() {
                    break;
                }
                for r in &b.records {
                    assert_eq!(r.offset, seen);
                    assert_eq!(r.partition_key, format!("pk{}", seen % 3));
                    seen += 1;
                }
                from = b.next_offset;
            }
            assert_eq!(seen, 150);
            let mid = log.read(77, 1, 1 << 20).unwrap();
            assert_eq!(mid.records[0].offset, 77);
        }
    }

    /// Reads every record of `log` from its start.
    fn read_all(log: &ShardLog) -> Vec<StoredRecord> {
        let mut out = Vec::new();
        let mut from = log.start_offset();
        loop {
            let b = log.read(from, 7, 1 << 20).unwrap();
            if b.records.is_empty() {
                return out;
            }
            from = b.next_offset;
            out.extend(b.records);
        }
    }

    #[tokio::test]
    async fn a_stream_logs_sealed_segments_keep_their_batch_lists_on_disk_and_recovery_trusts_them()
    {
        for direct in [true, false] {
            let tmp = tempfile::tempdir().unwrap();
            let c = StorageConfig {
                direct_io: direct,
                ..cfg(Some(tmp.path()))
            };
            let stream = StreamLog::open(c.clone(), Clock::default()).unwrap();
            let shards: Vec<ShardLog> = (1..=2).map(|t| stream.shard(t, 0, false)).collect();
            // Single-record appends, one batch each, as PutRecord writes them.
            for _ in 0..120 {
                for s in &shards {
                    s.append(recs(1, 60), 0).await.unwrap();
                }
            }
            let check = |shards: &[ShardLog]| {
                for s in shards {
                    let all = read_all(s);
                    assert_eq!(all.len(), 120);
                    assert!(all.iter().enumerate().all(|(k, r)| r.offset == k as u64));
                    // A timestamp lookup goes through the lists too.
                    let at = s.offset_for_timestamp(all[7].arrival_ms).unwrap();
                    assert!(at <= 7 && all[at as usize].arrival_ms == all[7].arrival_ms);
                }
            };
            let segments = stream.engine.view().segments.clone();
            assert!(segments.len() > 4, "segments rolled");
            let (active, sealed) = segments.split_last().unwrap();
            assert!(sealed.iter().all(|s| s.tags_spilled()));
            assert!(!active.tags_spilled());
            check(&shards);
            assert!(tags::cached_bytes() <= tags::CACHE_BYTES);
            // Readers that miss the cache for the same segment at once read its index once.
            let first = &sealed[0];
            first.evict_lists();
            let loads = first.index_loads();
            let start = std::sync::Barrier::new(4);
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| {
                        start.wait();
                        assert!(!shards[0].read(0, 10, 1 << 20).unwrap().records.is_empty());
                    });
                }
            });
            assert_eq!(first.index_loads(), loads + 1);
            stream.shutdown().await;

            // Reopened: the sealed segments take their summaries from their index and keep
            // the lists on disk; reads and ends are as before.
            let stream = StreamLog::open(c.clone(), Clock::default()).unwrap();
            let again: Vec<ShardLog> = (1..=2).map(|t| stream.shard(t, 0, false)).collect();
            let segments = stream.engine.view().segments.clone();
            let (_, sealed) = segments.split_last().unwrap();
            assert!(sealed.iter().all(|s| s.tags_spilled()));
            assert!(again.iter().all(|s| s.end_offset() == 120));
            check(&again);
            stream.shutdown().await;

            // A damaged index is not trusted: that segment is scanned again.
            let idx = Segment::list(c.dir.as_ref().unwrap()).unwrap()[1]
                .1
                .with_extension("idx");
            let mut raw = std::fs::read(&idx).unwrap();
            raw[20] ^= 0xff;
            std::fs::write(&idx, raw).unwrap();
            let stream = StreamLog::open(c, Clock::default()).unwrap();
            let again: Vec<ShardLog> = (1..=2).map(|t| stream.shard(t, 0, false)).collect();
            let segments = stream.engine.view().segments.clone();
            assert!(!segments[1].tags_spilled());
            assert!(segments[2].tags_spilled());
            check(&again);
            stream.shutdown().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_log_shard_reads_ahead_its_own_batches_only() {
        let tmp = tempfile::tempdir().unwrap();
        if !supports_direct(tmp.path()) {
            return;
        }
        let c = StorageConfig {
            dir: Some(tmp.path().join("log")),
            segment_bytes: 1 << 20,
            direct_io: true,
            ..StorageConfig::default()
        };
        let stream = StreamLog::open(c, Clock::default()).unwrap();
        let shards: Vec<Arc<ShardLog>> = (1..=2)
            .map(|t| Arc::new(stream.shard(t, 0, false)))
            .collect();
        // The two shards' batches of 32 KiB alternate in the file.
        for _ in 0..100 {
            for s in &shards {
                s.append(recs(32, 1000), 0).await.unwrap();
            }
        }
        let reader = shards[0].clone();
        let mut from = 0u64;
        let mut got = 0usize;
        while from < reader.end_offset() {
            let log = reader.clone();
            let b = tokio::task::spawn_blocking(move || log.read(from, 10_000, 100_000).unwrap())
                .await
                .unwrap();
            assert!(b
                .records
                .iter()
                .enumerate()
                .all(|(i, r)| r.offset == from + i as u64));
            got += b.records.len();
            from = b.next_offset;
        }
        assert_eq!(got, 3200);
        let segments = stream.engine.view().segments.clone();
        assert!(segments.len() > 3, "segments rolled");
        let hits: u64 = segments.iter().map(|s| s.ahead_hits()).sum();
        let (chunks, ahead_bytes) = segments
            .iter()
            .map(|s| s.ahead_read())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let own = reader.size_bytes();
        let logged: u64 = segments.iter().map(|s| s.durable_len()).sum();
        assert!(hits > 0 && chunks > 0, "read-ahead served the reader");
        // What was read ahead is this shard's batches (each chunk rounded out to whole
        // blocks), not the other half of the file.
        assert!(logged > 2 * own - 4096);
        assert!(
            ahead_bytes <= own + chunks * 2 * crate::storage::aligned::ALIGN as u64,
            "read {ahead_bytes} bytes ahead in {chunks} chunks for a shard of {own} bytes"
        );
        stream.shutdown().await;
    }

    #[tokio::test]
    async fn a_stream_log_keeps_each_shards_offsets_reads_and_close_apart() {
        for direct in [true, false] {
            for tmp in [Some(tempfile::tempdir().unwrap()), None] {
                let c = StorageConfig {
                    direct_io: direct,
                    ..cfg(tmp.as_ref().map(|t| t.path()))
                };
                let stream = StreamLog::open(c.clone(), Clock::default()).unwrap();
                let shards: Vec<ShardLog> = (1..=3).map(|t| stream.shard(t, 0, false)).collect();
                // Appends of the three shards, concurrently, so that rounds carry several.
                for round in 0..20u64 {
                    let outs = futures_util::future::join_all(
                        shards
                            .iter()
                            .enumerate()
                            .map(|(i, s)| s.append(recs(i + 1, 100), 0)),
                    )
                    .await;
                    for (i, out) in outs.into_iter().enumerate() {
                        assert_eq!(out.unwrap().first_offset, round * (i as u64 + 1));
                    }
                }
                assert!(stream.engine.view().segments.len() > 1, "segments rolled");
                for (i, s) in shards.iter().enumerate() {
                    let n = 20 * (i as u64 + 1);
                    assert_eq!((s.start_offset(), s.end_offset()), (0, n));
                    let all = read_all(s);
                    assert_eq!(all.len() as u64, n);
                    for (k, r) in all.iter().enumerate() {
                        assert_eq!(r.offset, k as u64);
                        assert_eq!(r.partition_key, format!("pk{}", k % (i + 1)));
                        assert_eq!(r.data.len(), 100);
                    }
                    // A read from the middle starts at the record asked for.
                    let mid = s.read(n / 2, 1, 1 << 20).unwrap();
                    assert_eq!(mid.records[0].offset, n / 2);
                }
                // Closing one shard leaves the others writable.
                assert_eq!(shards[0].close().await.unwrap(), 20);
                assert!(matches!(
                    shards[0].append(recs(1, 1), 0).await,
                    Err(StorageError::Closed)
                ));
                assert_eq!(
                    shards[1].append(recs(1, 1), 0).await.unwrap().first_offset,
                    40
                );
                let size: u64 = shards.iter().map(|s| s.size_bytes()).sum();
                let total: u64 = stream
                    .engine
                    .view()
                    .segments
                    .iter()
                    .map(|s| s.durable_len())
                    .sum();
                assert_eq!(size, total);
                stream.shutdown().await;
                let Some(tmp) = tmp else { continue };
                // Reopened: every shard's records and ends are back, and the closed shard stays
                // closed when its owner says so.
                let stream = StreamLog::open(c, Clock::default()).unwrap();
                let again: Vec<ShardLog> = (1..=3).map(|t| stream.shard(t, 0, t == 1)).collect();
                assert_eq!(
                    again.iter().map(|s| s.end_offset()).collect::<Vec<_>>(),
                    vec![20, 41, 60]
                );
                assert_eq!(read_all(&again[1]).len(), 41);
                assert!(again[0].is_closed());
                assert_eq!(
                    again[2].append(recs(1, 1), 0).await.unwrap().first_offset,
                    60
                );
                stream.shutdown().await;
                drop(tmp);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_log_read_limited_by_batch_bytes_goes_on_in_the_same_segment() {
        // A read's byte limit counts record data and keys, while each visit of a segment also
        // counts batch headers and length prefixes, so a visit can stop first: the read must
        // go on in the same segment, not skip to the next one.
        let tmp = tempfile::tempdir().unwrap();
        let c = StorageConfig {
            direct_io: true,
            segment_bytes: 256 << 10,
            index_interval_bytes: 4 << 10,
            ..cfg(Some(tmp.path()))
        };
        let stream = StreamLog::open(c, Clock::default()).unwrap();
        let shards: Vec<ShardLog> = (1..=2).map(|t| stream.shard(t, 0, false)).collect();
        let keyed = |n: usize| -> Vec<RecordIn> {
            (0..n)
                .map(|i| RecordIn {
                    partition_key: Bytes::from(format!("{i:016x}")),
                    data: Bytes::from(vec![i as u8; 100]),
                })
                .collect()
        };
        let mut writers = Vec::new();
        for _ in 0..4 {
            let shards = shards.clone();
            writers.push(tokio::spawn(async move {
                for _ in 0..10 {
                    let outs = futures_util::future::join_all(
                        shards.iter().map(|s| s.append(keyed(250), 0)),
                    )
                    .await;
                    outs.into_iter().for_each(|o| {
                        o.unwrap();
                    });
                }
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        assert!(stream.engine.view().segments.len() > 4, "segments rolled");
        for s in &shards {
            let mut from = 0;
            let mut n = 0;
            loop {
                let b = s.read(from, 10_000, 64 << 10).unwrap();
                if b.records.is_empty() {
                    break;
                }
                for r in &b.records {
                    assert_eq!(r.offset, n, "records follow each other");
                    n += 1;
                }
                from = b.next_offset;
            }
            assert_eq!(n, 10_000);
        }
        stream.shutdown().await;
    }

    #[tokio::test]
    async fn reopening_recovers_every_record_and_truncates_a_torn_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cfg(Some(tmp.path()));
        {
            let log = ShardLog::open(c.clone(), Clock::default(), 0, false).unwrap();
            for _ in 0..30 {
                log.append(recs(2, 200), 0).await.unwrap();
            }
            log.shutdown().await;
        }
        // Simulate a crash in the middle of writing a batch: garbage after the last batch.
        let files = Segment::list(c.dir.as_ref().unwrap()).unwrap();
        let (_, last) = files.last().unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(last).unwrap();
        std::io::Write::write_all(&mut f, b"TRB1\0\0\x10\0partial").unwrap();
        drop(f);

        let log = ShardLog::open(c.clone(), Clock::default(), 0, false).unwrap();
        assert_eq!(log.end_offset(), 60);
        let b = log.read(0, 1000, 1 << 24).unwrap();
        assert_eq!(b.records.len(), 60);
        let out = log.append(recs(1, 10), 0).await.unwrap();
        assert_eq!(out.first_offset, 60);
    }

    #[tokio::test]
    async fn retention_trims_by_timestamp_and_deletes_whole_segments() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = Clock::default();
        let log = ShardLog::open(cfg(Some(tmp.path())), clock.clone(), 0, false).unwrap();
        for _ in 0..20 {
            log.append(recs(2, 300), 0).await.unwrap();
        }
        let old_segments = log.view().segments.len();
        clock.advance(10_000);
        let cutoff = clock.now_ms() - 5_000;
        log.append(recs(1, 10), 0).await.unwrap();
        log.trim(cutoff).unwrap();
        assert_eq!(log.start_offset(), 40);
        assert!(log.view().segments.len() < old_segments);
        let b = log.read(0, 100, 1 << 20).unwrap();
        assert_eq!(b.records.len(), 1);
        assert_eq!(b.records[0].offset, 40);
        let files = Segment::list(&tmp.path().join("shard")).unwrap();
        assert_eq!(files.len(), log.view().segments.len());
    }

    #[tokio::test]
    async fn timestamp_lookup_finds_first_record_at_or_after() {
        let clock = Clock::default();
        let log = ShardLog::open(cfg(None), clock.clone(), 0, false).unwrap();
        log.append(recs(5, 10), 0).await.unwrap();
        clock.advance(1000);
        let t = clock.now_ms();
        let second = log.append(recs(5, 10), 0).await.unwrap();
        assert_eq!(log.offset_for_timestamp(t).unwrap(), second.first_offset);
        assert_eq!(log.offset_for_timestamp(0).unwrap(), 0);
        // Nothing arrived after the second batch (whose time may be a millisecond past `t`).
        assert_eq!(log.offset_for_timestamp(second.arrival_ms + 1).unwrap(), 10);
    }

    #[tokio::test]
    async fn large_rounds_of_many_records_are_written_whole_and_recovered() {
        // Rounds over the inline-write size and over IOV_MAX slices (several requests of 600
        // records each), with distinct data per record, survive a reopen byte for byte.
        let tmp = tempfile::tempdir().unwrap();
        let c = StorageConfig {
            dir: Some(tmp.path().join("shard")),
            ..StorageConfig::default()
        };
        let record = |n: usize| RecordIn {
            partition_key: Bytes::from(format!("key-{n}")),
            data: Bytes::from(
                (0..(n % 900))
                    .map(|i| (i * 31 + n) as u8)
                    .collect::<Vec<u8>>(),
            ),
        };
        {
            let log = ShardLog::open(c.clone(), Clock::default(), 0, false).unwrap();
            let appends = (0..4).map(|r| {
                let log = log.clone();
                async move {
                    let recs = (r * 600..(r + 1) * 600).map(record).collect();
                    log.append(recs, 0).await.unwrap()
                }
            });
            let outs = futures_util::future::join_all(appends).await;
            let mut firsts: Vec<u64> = outs.iter().map(|o| o.first_offset).collect();
            firsts.sort_unstable();
            assert_eq!(firsts, vec![0, 600, 1200, 1800]);
            log.shutdown().await;
        }
        let log = ShardLog::open(c, Clock::default(), 0, false).unwrap();
        assert_eq!(log.end_offset(), 2400);
        let b = log.read(0, 10_000, 64 << 20).unwrap();
        assert_eq!(b.records.len(), 2400);
        // Requests may land in any order; each keeps its records together and in order.
        for chunk in b.records.chunks(600) {
            let first: usize = chunk[0].partition_key[4..].parse().unwrap();
            for (i, r) in chunk.iter().enumerate() {
                let want = record(first + i);
                assert_eq!(r.partition_key.as_bytes(), &want.partition_key[..]);
                assert_eq!(r.data, want.data);
            }
        }
    }

    /// Whether files in `dir` can be opened with `O_DIRECT` (not on tmpfs, for one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_and_large_appends_racing_into_a_direct_log_each_land_once_in_order() {
        // Small appends wait for the lane to be empty and large ones are handed to it while it
        // writes; many tasks mixing both, across segment rolls, must each get their own
        // offsets, in the order each task sent them, and every byte must survive a reopen.
        let tmp = tempfile::tempdir().unwrap();
        let c = StorageConfig {
            dir: Some(tmp.path().join("shard")),
            segment_bytes: 1 << 20,
            direct_io: true,
            ..StorageConfig::default()
        };
        let record = |task: usize, seq: usize, i: usize| RecordIn {
            partition_key: Bytes::from(format!("{task}/{seq}/{i}")),
            data: Bytes::from(
                (0..(task * 131 + seq * 17 + i) % 900)
                    .map(|b| (b ^ task ^ seq) as u8)
                    .collect::<Vec<u8>>(),
            ),
        };
        // Every fifth append of a task is about 200 KB, the rest one or two small records.
        let size = |task: usize, seq: usize| {
            if (task + seq).is_multiple_of(5) {
                250
            } else {
                1 + seq % 2
            }
        };
        let (tasks, per_task) = (16, 24);
        let total: usize = (0..tasks)
            .flat_map(|t| (0..per_task).map(move |s| size(t, s)))
            .sum();
        let spans = {
            let log = ShardLog::open(c.clone(), Clock::default(), 0, false).unwrap();
            assert_eq!(
                log.view().segments[0].is_direct(),
                supports_direct(tmp.path())
            );
            let mut handles = Vec::new();
            for task in 0..tasks {
                let log = log.clone();
                handles.push(tokio::spawn(async move {
                    let mut firsts = Vec::new();
                    for seq in 0..per_task {
                        let recs = (0..size(task, seq)).map(|i| record(task, seq, i)).collect();
                        firsts.push(log.append(recs, 0).await.unwrap().first_offset);
                    }
                    firsts
                }));
            }
            let mut spans = Vec::new();
            for (task, h) in handles.into_iter().enumerate() {
                let firsts = h.await.unwrap();
                assert!(
                    firsts.windows(2).all(|w| w[0] < w[1]),
                    "task {task} in order"
                );
                spans.extend(
                    firsts
                        .iter()
                        .enumerate()
                        .map(|(seq, f)| (*f, size(task, seq), task, seq)),
                );
            }
            spans.sort_unstable();
            let mut next = 0u64;
            for &(first, n, ..) in &spans {
                assert_eq!(first, next, "offsets neither overlap nor leave gaps");
                next += n as u64;
            }
            assert_eq!(next, total as u64);
            assert!(
                log.view().segments.len() > 1,
                "the appends crossed segment rolls"
            );
            log.shutdown().await;
            spans
        };
        let log = ShardLog::open(c, Clock::default(), 0, false).unwrap();
        assert_eq!(log.end_offset(), total as u64);
        let mut got = Vec::new();
        while got.len() < total {
            let b = log.read(got.len() as u64, 10_000, 8 << 20).unwrap();
            assert!(!b.records.is_empty());
            got.extend(b.records);
        }
        // Each append's records sit at the offsets it was acknowledged with.
        for (first, n, task, seq) in spans {
            for i in 0..n {
                let r = &got[first as usize + i];
                let want = record(task, seq, i);
                assert_eq!(r.partition_key.as_bytes(), &want.partition_key[..]);
                assert_eq!(r.data, want.data, "record {}", r.partition_key);
            }
        }
    }

    fn supports_direct(dir: &Path) -> bool {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(dir.join("probe"))
            .is_ok()
    }

    #[tokio::test]
    async fn a_failed_direct_write_refuses_the_rounds_behind_it_and_the_log_goes_on() {
        let tmp = tempfile::tempdir().unwrap();
        if !supports_direct(tmp.path()) {
            return;
        }
        let c = StorageConfig {
            direct_io: true,
            segment_bytes: 1 << 20,
            ..cfg(Some(tmp.path()))
        };
        let log = ShardLog::open(c.clone(), Clock::default(), 0, false).unwrap();
        let data = |from: usize, n: usize| -> Vec<RecordIn> {
            (from..from + n)
                .map(|i| RecordIn {
                    partition_key: Bytes::from(format!("k{i}")),
                    data: Bytes::from(vec![i as u8; 700 + i % 300]),
                })
                .collect()
        };
        assert_eq!(log.append(data(0, 3), 0).await.unwrap().first_offset, 0);
        let active = log.view().segments.last().unwrap().clone();
        assert!(active.is_direct());

        // The next write fails. Appends sent together land in the failed round or in rounds
        // queued behind it: none is acknowledged, whatever the lane got to.
        active.fail_next[0].store(1, std::sync::atomic::Ordering::Release);
        let failed =
            futures_util::future::join_all((0..6).map(|i| log.append(data(100 + i * 10, 5), 0)))
                .await;
        assert!(
            failed.iter().any(|r| r.is_err()),
            "the injected failure refused an append: {failed:?}"
        );
        // The acknowledged ones (sent after the writer started again) follow on without a
        // gap over the refused ones.
        let mut acked: Vec<u64> = failed
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|o| o.first_offset))
            .collect();
        acked.sort_unstable();
        assert_eq!(
            acked,
            (0..acked.len() as u64)
                .map(|i| 3 + 5 * i)
                .collect::<Vec<_>>()
        );
        assert_eq!(log.end_offset(), 3 + 5 * acked.len() as u64);

        // The log goes on from its durable end, without a gap.
        let end = log.end_offset();
        assert_eq!(log.append(data(200, 4), 0).await.unwrap().first_offset, end);
        let read = log.read(0, 1000, 1 << 20).unwrap();
        assert_eq!(read.records.len() as u64, end + 4);
        assert_eq!(read.records.last().unwrap().partition_key[..], *"k203");
        log.shutdown().await;

        // And so does a restart: nothing refused was kept on disk.
        let log = ShardLog::open(c.clone(), Clock::default(), 0, false).unwrap();
        assert_eq!(log.end_offset(), end + 4);
        let again = log.read(0, 1000, 1 << 20).unwrap();
        assert_eq!(again.records, read.records);

        // A failed fsync stops the log: the round is not acknowledged, nor anything after it,
        // and what was acknowledged before survives a restart.
        let active = log.view().segments.last().unwrap().clone();
        active.fail_next[1].store(1, std::sync::atomic::Ordering::Release);
        assert!(log.append(data(300, 2), 0).await.is_err());
        assert!(log.append(data(400, 2), 0).await.is_err());
        assert_eq!(log.end_offset(), end + 4);
        log.shutdown().await;
        let log = ShardLog::open(c, Clock::default(), 0, false).unwrap();
        let after = log.read(0, 1000, 1 << 20).unwrap();
        assert_eq!(&after.records[..read.records.len()], &read.records[..]);
        log.shutdown().await;
    }

    #[tokio::test]
    async fn direct_and_buffered_logs_keep_every_byte_across_restarts_mid_block() {
        // Direct I/O on the disk, the page cache on request, and direct I/O asked for where
        // the filesystem refuses it (tmpfs), which must fall back to the page cache.
        let disk = tempfile::tempdir().unwrap();
        let shm = std::path::Path::new("/dev/shm");
        let tmpfs = shm.is_dir().then(|| tempfile::tempdir_in(shm).unwrap());
        let mut cases = vec![
            (disk.path().join("direct"), true),
            (disk.path().join("buffered"), false),
        ];
        if let Some(t) = &tmpfs {
            cases.push((t.path().join("fallback"), true));
        }
        let record = |n: usize| RecordIn {
            partition_key: Bytes::from(format!("k{n}")),
            data: Bytes::from(
                (0..(n * 37 % 1500))
                    .map(|i| (i ^ n) as u8)
                    .collect::<Vec<u8>>(),
            ),
        };
        for (dir, direct_io) in cases {
            let c = StorageConfig {
                dir: Some(dir.clone()),
                segment_bytes: 64 * 1024,
                index_interval_bytes: 4096,
                direct_io,
                ..StorageConfig::default()
            };
            let expect_direct = direct_io && supports_direct(dir.parent().unwrap());
            let mut next = 0usize;
            // Each restart resumes in the middle of a block of the active segment; the last
            // round of each run is a lone small record.
            for run in 0..4 {
                let log = ShardLog::open(c.clone(), Clock::default(), 0, false).unwrap();
                assert_eq!(
                    log.end_offset(),
                    next as u64,
                    "run {run} recovered every record"
                );
                let active = log.view().segments.last().unwrap().clone();
                assert_eq!(active.is_direct(), expect_direct, "{}", dir.display());
                for round in 0..40 {
                    let n = if round == 39 { 1 } else { 1 + round % 5 };
                    let out = log
                        .append((next..next + n).map(record).collect(), 0)
                        .await
                        .unwrap();
                    assert_eq!(out.first_offset, next as u64);
                    next += n;
                }
                log.shutdown().await;
            }
            let log = ShardLog::open(c.clone(), Clock::default(), 0, false).unwrap();
            let segments = log.view().segments.clone();
            assert!(segments.len() > 2, "segments rolled");
            // Sealed segments carry no padding, so their index is trusted on reopening.
            for (i, (_, path)) in Segment::list(&dir).unwrap().iter().enumerate() {
                if i + 1 < segments.len() {
                    assert_eq!(
                        std::fs::metadata(path).unwrap().len(),
                        segments[i].durable_len()
                    );
                }
            }
            let mut from = 0;
            let mut seen = 0usize;
            loop {
                let b = log.read(from, 100, 1 << 20).unwrap();
                if b.records.is_empty() {
                    break;
                }
                for r in &b.records {
                    let want = record(seen);
                    assert_eq!(r.offset, seen as u64);
                    assert_eq!(r.partition_key.as_bytes(), &want.partition_key[..]);
                    assert_eq!(r.data, want.data, "record {seen} in {}", dir.display());
                    seen += 1;
                }
                from = b.next_offset;
            }
            assert_eq!(seen, next);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn direct_sequential_reads_are_served_by_read_ahead_and_never_see_past_the_durable_end() {
        let tmp = tempfile::tempdir().unwrap();
        if !supports_direct(tmp.path()) {
            return;
        }
        let c = StorageConfig {
            dir: Some(tmp.path().join("shard")),
            segment_bytes: 1 << 20,
            index_interval_bytes: 4096,
            direct_io: true,
            ..StorageConfig::default()
        };
        let log = Arc::new(ShardLog::open(c, Clock::default(), 0, false).unwrap());
        let record = |n: usize| RecordIn {
            partition_key: Bytes::from(format!("k{n}")),
            data: Bytes::from((0..1000).map(|i| (i * 7 + n) as u8).collect::<Vec<u8>>()),
        };
        let mut next = 0usize;
        let mut append = |n: usize| {
            let batch: Vec<RecordIn> = (next..next + n).map(record).collect();
            next += n;
            let log = log.clone();
            async move { log.append(batch, 0).await.unwrap() }
        };
        for _ in 0..80 {
            append(50).await;
        }
        // Reads run on the blocking pool, as the API's do.
        let read = |from: u64| {
            let log = log.clone();
            tokio::task::spawn_blocking(move || log.read(from, 10_000, 150_000).unwrap())
        };
        let check = |b: &ReadBatch, from: u64| {
            for (i, r) in b.records.iter().enumerate() {
                let want = record(from as usize + i);
                assert_eq!(r.offset, from + i as u64);
                assert_eq!(r.data, want.data, "record {}", r.offset);
            }
        };
        let mut from = 0u64;
        let mut calls = 0;
        while from < 4000 {
            let b = read(from).await.unwrap();
            check(&b, from);
            from = b.next_offset;
            calls += 1;
        }
        let hits =
            |log: &ShardLog| -> u64 { log.view().segments.iter().map(|s| s.ahead_hits()).sum() };
        assert!(log.view().segments.len() > 3, "segments rolled");
        // The segments the reader left hold no read-ahead (nor its budget).
        let segs = log.view().segments.clone();
        assert!(segs[..segs.len() - 2].iter().all(|s| !s.has_ahead()));
        assert!(segs.iter().any(|s| s.has_ahead()));
        assert!(
            hits(&log) >= calls as u64 / 2,
            "{} of {calls} calls used read-ahead",
            hits(&log)
        );
        // Each call's read-ahead overlaps the next one's; what was read ahead is kept, not
        // read again (beyond rounding each chunk out to whole blocks).
        let (chunks, ahead_bytes) = log
            .view()
            .segments
            .iter()
            .map(|s| s.ahead_read())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let logged: u64 = log.view().segments.iter().map(|s| s.durable_len()).sum();
        assert!(chunks > 0);
        assert!(
            ahead_bytes <= logged + chunks * 2 * crate::storage::aligned::ALIGN as u64,
            "read {ahead_bytes} bytes ahead in {chunks} chunks of a {logged}-byte log"
        );
        // A read-ahead started at the durable end covers nothing; records appended after it
        // are read from the file, whole.
        for _ in 0..3 {
            append(7).await;
            let b = read(from).await.unwrap();
            assert_eq!(b.records.len(), 7);
            check(&b, from);
            from = b.next_offset;
        }
        // A read-ahead window ends where the durable data ended when it started.
        append(50).await;
        let b = read(from).await.unwrap();
        check(&b, from);
        append(50).await;
        let b2 = read(b.next_offset).await.unwrap();
        check(&b2, b.next_offset);
        assert_eq!(b2.next_offset as usize, next);
    }

    #[tokio::test]
    async fn small_synced_rounds_write_zeros_ahead_that_sealing_and_recovery_cut_off() {
        let disk = tempfile::tempdir().unwrap();
        let mut cases = vec![(disk.path().join("buffered"), false, true)];
        if supports_direct(disk.path()) {
            cases.push((disk.path().join("direct"), true, true));
        }
        cases.push((disk.path().join("unsynced"), false, false));
        for (dir, direct_io, fsync) in cases {
            let c = StorageConfig {
                dir: Some(dir.clone()),
                segment_bytes: 1 << 20,
                index_interval_bytes: 4096,
                direct_io,
                fsync,
                ..StorageConfig::default()
            };
            let file_len = |log: &ShardLog| {
                let active = log.view().segments.last().unwrap().clone();
                let (_, path) = Segment::list(&dir).unwrap().pop().unwrap();
                (std::fs::read(path).unwrap(), active.durable_len())
            };
            let log = ShardLog::open(c.clone(), Clock::default(), 0, false).unwrap();
            for _ in 0..20 {
                log.append(recs(3, 100), 0).await.unwrap();
            }
            let (bytes, durable) = file_len(&log);
            if fsync {
                // The zeros reach past the last block written by up to `ZERO_AHEAD`.
                let ahead = bytes.len() as u64 - durable;
                assert!(
                    ahead > 4096 && ahead <= crate::storage::segment::ZERO_AHEAD + 4096,
                    "{}: {} bytes in the file, {durable} durable",
                    dir.display(),
                    bytes.len()
                );
                assert!(bytes[durable as usize..].iter().all(|&b| b == 0));
            } else {
                assert_eq!(bytes.len() as u64, durable, "no zeros without fsync");
            }
            // A restart (here without sealing, as after a crash) drops the zeros and keeps
            // every record; appends go on from there.
            drop(log);
            let log = ShardLog::open(c.clone(), Clock::default(), 0, false).unwrap();
            assert_eq!(log.end_offset(), 60);
            let (bytes, durable) = file_len(&log);
            assert_eq!(bytes.len() as u64, durable, "{}", dir.display());
            for _ in 0..10 {
                log.append(recs(3, 100), 0).await.unwrap();
            }
            // A large round zeroes nothing; a roll seals the segment without its zeros.
            log.append(recs(100, 1000), 0).await.unwrap();
            let sealed = log.view().segments.last().unwrap().clone();
            log.append(recs(1, 10), 0).await.unwrap();
            for _ in 0..1100 {
                log.append(recs(1, 1000), 0).await.unwrap();
                if !Arc::ptr_eq(log.view().segments.last().unwrap(), &sealed) {
                    break;
                }
            }
            assert!(
                !Arc::ptr_eq(log.view().segments.last().unwrap(), &sealed),
                "rolled"
            );
            let (_, path) = Segment::list(&dir).unwrap().remove(0);
            assert_eq!(std::fs::metadata(path).unwrap().len(), sealed.durable_len());
            let end = log.end_offset();
            log.shutdown().await;
            let log = ShardLog::open(c, Clock::default(), 0, false).unwrap();
            assert_eq!(log.end_offset(), end);
            let b = log.read(0, 10_000, 64 << 20).unwrap();
            assert_eq!(b.records.len() as u64, end);
            assert_eq!(b.records[150].data, Bytes::from(vec![60u8; 1000]));
        }
    }

    #[tokio::test]
    async fn rounds_of_tens_of_kilobytes_zero_ahead_through_the_page_cache_only() {
        let disk = tempfile::tempdir().unwrap();
        let mut cases = vec![(disk.path().join("buffered"), false)];
        if supports_direct(disk.path()) {
            cases.push((disk.path().join("direct"), true));
        }
        for (dir, direct_io) in cases {
            let c = StorageConfig {
                dir: Some(dir.clone()),
                segment_bytes: 1 << 20,
                direct_io,
                ..StorageConfig::default()
            };
            let log = ShardLog::open(c, Clock::default(), 0, false).unwrap();
            for _ in 0..4 {
                // About 31 KB a round: between the direct and the page cache thresholds.
                log.append(recs(30, 1000), 0).await.unwrap();
            }
            let durable = log.view().segments.last().unwrap().durable_len();
            let (_, path) = Segment::list(&dir).unwrap().pop().unwrap();
            let ahead = std::fs::metadata(path).unwrap().len() - durable;
            if direct_io {
                assert!(ahead < 4096, "only the last block's padding: {ahead}");
            } else {
                assert!(ahead > 4096, "zeros ahead: {ahead}");
            }
            log.shutdown().await;
        }
    }

    #[tokio::test]
    async fn reads_fetch_only_the_batches_their_record_limit_needs() {
        let tmp = tempfile::tempdir().unwrap();
        let c = StorageConfig {
            dir: Some(tmp.path().join("shard")),
            ..StorageConfig::default()
        };
        let log = ShardLog::open(c, Clock::default(), 0, false).unwrap();
        for _ in 0..100 {
            log.append(recs(10, 100), 0).await.unwrap();
        }
        let seg = log.view().segments.last().unwrap().clone();
        // 15 records from offset 0 need two batches; from offset 5, the first batch holds
        // only 5 of them, so three.
        let counts = |from, n| {
            seg.read_batches(0, 10 << 20, from, n)
                .unwrap()
                .iter()
                .map(|(h, _)| h.count)
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(0, 15), vec![10, 10]);
        assert_eq!(counts(5, 15), vec![10, 10]);
        assert_eq!(counts(5, 16), vec![10, 10, 10]);
        assert_eq!(counts(0, usize::MAX).len(), 100);
        // The log's reads still return exactly what was asked for.
        let b = log.read(3, 1, 10 << 20).unwrap();
        assert_eq!(b.records.len(), 1);
        assert_eq!(b.records[0].offset, 3);
        let b = log.read(3, 250, 10 << 20).unwrap();
        assert_eq!(b.records.len(), 250);
        assert_eq!(b.next_offset, 253);
    }

    #[tokio::test]
    async fn closed_log_refuses_appends_after_earlier_ones_land() {
        let log = ShardLog::open(cfg(None), Clock::default(), 0, false).unwrap();
        log.append(recs(4, 10), 0).await.unwrap();
        assert_eq!(log.close().await.unwrap(), 4);
        assert!(matches!(
            log.append(recs(1, 10), 0).await,
            Err(StorageError::Closed)
        ));
        assert!(log.is_closed());
    }
}
