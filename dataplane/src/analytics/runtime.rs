//! The runner of one RUNNING application: reads its input stream, feeds the SQL engine on the
//! wall clock, writes output streams, and checkpoints where it has read.
//!
//! One cycle (on a new record at any shard tip, or every [`TICK`]):
//! 1. Retry output records a destination refused earlier. While any are pending, input is not
//!    read (KDA's backpressure: a destination that refuses writes makes the application lag).
//! 2. Begin the shards whose parents are finished (lineage: a child is read only after every
//!    parent has been read to its end), and read a batch from each unfinished shard.
//! 3. Map records to rows of `<prefix>_NNN` with ROWTIME = the clock now (processing time) and
//!    `APPROXIMATE_ARRIVAL_TIME` = the record's arrival; unmappable records go to error_stream.
//! 4. Advance the engine clock to now, so tumbling and stagger windows close when no rows come.
//! 5. Write what the output streams produced (JSON or CSV records) to their destinations.
//! 6. When nothing is pending, persist the read positions (at most every [`CHECKPOINT_EVERY_MS`]
//!    and when stopping). A restart resumes after them, so every row reaching an output was
//!    derived from input read after the previous checkpoint or before it: no input is lost and
//!    output is at least once.
//!
//! An input or output stream with a `--stream-endpoint` is read or written through that
//! endpoint's Kinesis API (`crate::remote`): the same lineage rule, its position checkpointed
//! per remote shard id, refused output records kept pending and retried.
//!
//! Window state is not checkpointed; as in KDA ("state is volatile and is rebuilt from the
//! source") it is rebuilt from the input. The checkpoint also holds the engine clock when it was
//! written (every output row produced up to then was written). A runner that resumes from a
//! checkpoint first replays the input that arrived in the application's state horizon before
//! that clock (the longest window in the plan, chained windows adding up, at most
//! [`REPLAY_CAP_MS`]), up to the checkpointed positions, with each record's arrival time as its
//! ROWTIME; it then advances the engine to the checkpoint's clock and discards everything the
//! replay produced. Open windows hold the rows from before the restart again and nothing
//! written before the checkpoint is written twice.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tributary_sql::format::serialize;
use tributary_sql::ERROR_STREAM;

use super::compile::{Compiled, CompiledOutput};
use super::metrics;
use crate::remote::client::{IteratorStart, PutRecord};
use crate::remote::reader::shard_number;
use crate::remote::{Position, ShardReader};
use crate::streams::shard_read::ShardRead;
use crate::streams::{PutEntry, PutOutcome, Shard, Streams};

/// How often the clock advances when no records arrive.
pub const TICK: Duration = Duration::from_millis(200);
/// Records read from one shard per cycle.
const BATCH_RECORDS: usize = 1000;
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// PutRecords takes at most 500 records.
const PUT_BATCH: usize = 500;
pub const CHECKPOINT_EVERY_MS: i64 = 1000;
/// The most input replayed to rebuild window state: KDA recommends windows of at most an hour
/// because its state is rebuilt from the source the same way.
pub const REPLAY_CAP_MS: i64 = 3_600_000;

/// Where an input has read to: the next offset per shard index of one incarnation of a stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputCheckpoint {
    pub stream: String,
    pub incarnation: u64,
    pub offsets: BTreeMap<u32, u64>,
    /// The position in a stream served by another endpoint (then `offsets` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<Position>,
}

/// `checkpoint.json`: read positions by input id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub inputs: BTreeMap<String, InputCheckpoint>,
    /// The engine clock when the checkpoint was taken: every output row produced up to then
    /// had been written. A restart replays input up to here with output suppressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_ms: Option<i64>,
}

impl Checkpoint {
    pub fn load(path: &Option<PathBuf>) -> Option<Checkpoint> {
        let raw = std::fs::read(path.as_ref()?).ok()?;
        serde_json::from_slice(&raw).ok()
    }
}

/// Where reading starts for shards that have no checkpointed position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Now,
    TrimHorizon,
    LastStoppedPoint,
}

impl Start {
    pub fn parse(s: Option<&str>) -> Start {
        match s {
            Some("TRIM_HORIZON") => Start::TrimHorizon,
            Some("LAST_STOPPED_POINT") => Start::LastStoppedPoint,
            _ => Start::Now,
        }
    }
}

struct Reader {
    id: String,
    stream_name: String,
    in_app: Vec<String>,
    schema: tributary_sql::format::InputSchema,
    start: Start,
    /// Set once the stream is found; reset if it is deleted and created again.
    position: Option<InputCheckpoint>,
    /// Checkpointed positions to resume from, consumed when the stream is first found.
    resume: Option<InputCheckpoint>,
    /// The reader of an input stream served by another endpoint.
    remote: Option<ShardReader>,
    /// The position came from a checkpoint (so the input before it can be replayed).
    resumed: bool,
    /// A `KinesisFirehoseInput`: `stream_name` is a DirectPut delivery stream whose buffer is
    /// read as one shard (index 0).
    firehose: bool,
}

pub struct Runner {
    pub app: String,
    pub streams: Arc<Streams>,
    pub compiled: Compiled,
    pub checkpoint_path: Option<PathBuf>,
    readers: Vec<Reader>,
    /// Serialised output records not yet accepted, by output index.
    pending: Vec<Vec<PutEntry>>,
    last_checkpoint_ms: i64,
    dirty: bool,
    /// The clock of the checkpoint resumed from, until its window state has been replayed.
    replay_until: Option<i64>,
}

impl Runner {
    /// A runner starting each input at `starts[input id]` (NOW when absent). LAST_STOPPED_POINT
    /// resumes from `resume` (the positions of a runner just stopped) or else from the
    /// checkpoint file. Start positions are taken here, when the application starts.
    pub async fn new(
        app: String,
        streams: Arc<Streams>,
        compiled: Compiled,
        checkpoint_path: Option<PathBuf>,
        starts: &BTreeMap<String, Start>,
        resume: Option<Checkpoint>,
    ) -> Runner {
        let saved = resume
            .or_else(|| Checkpoint::load(&checkpoint_path))
            .unwrap_or_default();
        let readers = compiled
            .inputs
            .iter()
            .map(|i| {
                let start = starts.get(&i.id).copied().unwrap_or(Start::Now);
                Reader {
                    id: i.id.clone(),
                    stream_name: i.stream.clone(),
                    in_app: i.in_app_streams.clone(),
                    schema: i.schema.clone(),
                    start,
                    position: None,
                    remote: match i.firehose {
                        true => None,
                        false => streams.remote.get(&i.stream).map(ShardReader::new),
                    },
                    resumed: false,
                    firehose: i.firehose,
                    resume: match start {
                        Start::LastStoppedPoint => saved.inputs.get(&i.id).cloned(),
                        _ => None,
                    },
                }
            })
            .collect();
        let m = metrics::global();
        let ins: Vec<String> = compiled
            .inputs
            .iter()
            .flat_map(|i| i.in_app_streams.clone())
            .collect();
        let outs: Vec<String> = compiled
            .outputs
            .iter()
            .map(|o| o.in_app_stream.clone())
            .collect();
        m.init(&app, &ins, &outs);
        let pending = vec![Vec::new(); compiled.outputs.len()];
        // Holds on delivery streams this application no longer reads (its input changed).
        if let Some(delivery) = &compiled.delivery {
            for ds in delivery.list() {
                let name = ds.meta().name;
                if !compiled
                    .inputs
                    .iter()
                    .any(|i| i.firehose && i.stream == name)
                {
                    ds.release(&app);
                }
            }
        }
        let replay_until = match starts.values().any(|s| *s == Start::LastStoppedPoint) {
            true => saved.clock_ms,
            false => None,
        };
        let mut runner = Runner {
            app,
            streams,
            compiled,
            checkpoint_path,
            readers,
            pending,
            last_checkpoint_ms: 0,
            dirty: false,
            replay_until,
        };
        runner.locate_streams().await;
        runner
    }

    /// Runs until `stop` turns true; then writes what it can, checkpoints, and returns the
    /// positions it reached (a restarted runner continues from them).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Checkpoint {
        let m = metrics::global();
        m.running.with_label_values(&[&self.app]).set(1);
        if let Some(clock) = self.replay_until.take() {
            self.replay(clock).await;
        }
        loop {
            // A backlog is read without pausing between batches.
            if self.cycle().await {
                if *stop.borrow() {
                    break;
                }
                tokio::task::yield_now().await;
                continue;
            }
            let tips = self.tips();
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(TICK) => {}
                _ = wait_any(tips) => {}
            }
            if *stop.borrow() {
                break;
            }
        }
        self.flush().await;
        if self.pending.iter().all(Vec::is_empty) {
            self.save_checkpoint();
        }
        m.running.with_label_values(&[&self.app]).set(0);
        self.positions()
    }

    fn positions(&self) -> Checkpoint {
        Checkpoint {
            inputs: self
                .readers
                .iter()
                .filter_map(|r| r.position.clone().map(|p| (r.id.clone(), p)))
                .collect(),
            clock_ms: Some(self.compiled.app.now()),
        }
    }

    /// Receivers that change when any shard being read gets new records.
    fn tips(&self) -> Vec<watch::Receiver<u64>> {
        let mut out = Vec::new();
        for r in self.readers.iter().filter(|r| r.firehose) {
            if let Some(log) = self.firehose_log(&r.stream_name) {
                out.push(log.watch_tip());
            }
        }
        for r in self
            .readers
            .iter()
            .filter(|r| r.remote.is_none() && !r.firehose)
        {
            let (Some(pos), Some(stream)) = (&r.position, self.streams.find(&r.stream_name)) else {
                continue;
            };
            for s in stream.all_shards() {
                if pos.offsets.contains_key(&s.index) && s.is_open() {
                    if let Some(log) = &s.log {
                        out.push(log.watch_tip());
                    }
                }
            }
        }
        out
    }

    /// Finds each input's stream and sets where reading begins.
    async fn locate_streams(&mut self) {
        let now = self.streams.clock.now_ms();
        let delivery = self.compiled.delivery.clone();
        for r in &mut self.readers {
            if r.firehose {
                if r.position.is_some() {
                    continue;
                }
                let Some(ds) = delivery.as_ref().and_then(|d| d.find(&r.stream_name)) else {
                    continue;
                };
                let Some(log) = ds.buffer.clone() else {
                    continue;
                };
                let offset = match (r.start, r.resume.take()) {
                    (_, Some(c)) if c.offsets.contains_key(&0) => {
                        r.resumed = true;
                        c.offsets[&0]
                    }
                    (Start::TrimHorizon, _) => log.start_offset(),
                    _ => log.end_offset(),
                };
                // Delivered records stay until the application has read them.
                ds.hold(&self.app, offset);
                r.position = Some(InputCheckpoint {
                    stream: r.stream_name.clone(),
                    incarnation: 0,
                    offsets: BTreeMap::from([(0, offset)]),
                    remote: None,
                });
                self.dirty = true;
                continue;
            }
            if r.remote.is_some() {
                if r.position.is_none() {
                    r.position = Some(remote_start(r, now));
                    self.dirty = true;
                }
                continue;
            }
            let Some(stream) = self.streams.find(&r.stream_name) else {
                continue;
            };
            if let Some(p) = &r.position {
                if p.incarnation == stream.incarnation {
                    continue;
                }
                tracing::warn!(application = %self.app, stream = %r.stream_name, "The input stream was deleted and created again; reading the new stream from its start.");
                r.position = Some(InputCheckpoint {
                    stream: stream.name.clone(),
                    incarnation: stream.incarnation,
                    offsets: BTreeMap::new(),
                    remote: None,
                });
                continue;
            }
            let mut pos = InputCheckpoint {
                stream: stream.name.clone(),
                incarnation: stream.incarnation,
                offsets: BTreeMap::new(),
                remote: None,
            };
            let resume = r
                .resume
                .take()
                .filter(|c| c.incarnation == stream.incarnation);
            match (r.start, resume) {
                (_, Some(c)) => {
                    pos.offsets = c.offsets;
                    r.resumed = true;
                }
                (Start::TrimHorizon, None) => {}
                // NOW (and LAST_STOPPED_POINT without a stop point): every shard from its tip;
                // closed shards count as read. In cluster mode the tip of a shard another pod
                // holds is asked of that pod; while it cannot answer the input is not located
                // yet (tried again next cycle).
                _ => {
                    let mut reachable = true;
                    for s in stream.all_shards() {
                        let end = match (s.closed(), &s.log) {
                            (Some((end, _)), _) => end,
                            (None, Some(log)) => log.end_offset(),
                            (None, None) => match self
                                .streams
                                .read_shard(&stream, &s, ShardRead::offsets(None))
                                .await
                            {
                                Ok(page) => page.batch.end_offset,
                                Err(error) => {
                                    tracing::warn!(application = %self.app, stream = %stream.name, %error, "Could not find the tip of an input shard; trying again.");
                                    reachable = false;
                                    break;
                                }
                            },
                        };
                        pos.offsets.insert(s.index, end);
                    }
                    if !reachable {
                        continue;
                    }
                }
            }
            r.position = Some(pos);
            self.dirty = true;
        }
    }

    /// One cycle; true when input is left to read right away.
    async fn cycle(&mut self) -> bool {
        let m = metrics::global();
        self.flush().await;
        let mut more = false;
        if self.pending.iter().all(Vec::is_empty) {
            self.locate_streams().await;
            for k in 0..self.readers.len() {
                more |= self.read_input(k).await;
            }
        }
        let now = self.streams.clock.now_ms();
        self.compiled.app.advance_to(now);
        let errors = self.compiled.app.take(ERROR_STREAM);
        if !errors.is_empty() {
            // The checkpoint's clock says up to when output was written: move it on.
            self.dirty = true;
            m.errors
                .with_label_values(&[&self.app])
                .inc_by(errors.len() as u64);
        }
        for (k, out) in self.compiled.outputs.iter().enumerate() {
            let rows = if out.in_app_stream == ERROR_STREAM {
                errors.clone()
            } else {
                self.compiled.app.take(&out.in_app_stream)
            };
            if rows.is_empty() {
                continue;
            }
            self.dirty = true;
            m.output_rows
                .with_label_values(&[&self.app, &out.in_app_stream])
                .inc_by(rows.len() as u64);
            for row in &rows {
                // Spread records over the destination's shards, as KDA does.
                let pk = format!("{:016x}", rand::random::<u64>());
                self.pending[k].push(PutEntry {
                    hash: None,
                    partition_key: Bytes::from(pk),
                    data: Bytes::from(serialize(&out.columns, row, out.format)),
                });
            }
        }
        self.flush().await;
        if self.dirty
            && self.pending.iter().all(Vec::is_empty)
            && now - self.last_checkpoint_ms >= CHECKPOINT_EVERY_MS
        {
            self.save_checkpoint();
            self.last_checkpoint_ms = now;
        }
        more && self.pending.iter().all(Vec::is_empty)
    }

    /// Reads one batch from every readable shard of input `k` into the engine; true when some
    /// shard has more records already.
    async fn read_input(&mut self, k: usize) -> bool {
        if self.readers[k].remote.is_some() {
            return self.read_remote_input(k).await;
        }
        if self.readers[k].firehose {
            return self.read_firehose_input(k).await;
        }
        let m = metrics::global();
        let Some(stream) = self.streams.find(&self.readers[k].stream_name) else {
            return false;
        };
        if !stream.status().serves_data() {
            return false;
        }
        let shards = stream.all_shards();
        let Some(mut pos) = self.readers[k].position.take() else {
            return false;
        };
        if pos.incarnation != stream.incarnation {
            self.readers[k].position = Some(pos);
            return false;
        }
        begin_ready_shards(&mut pos, &shards);
        let mut records = 0u64;
        let mut more = false;
        let mut lag = 0i64;
        let mut rows_per_stream: BTreeMap<usize, u64> = BTreeMap::new();
        let reader = &self.readers[k];
        for shard in &shards {
            let Some(&offset) = pos.offsets.get(&shard.index) else {
                continue;
            };
            if finished(shard, offset) {
                continue;
            }
            // Read here, or at the pod holding the shard in cluster mode.
            let req = ShardRead::records(offset, BATCH_RECORDS, BATCH_BYTES);
            let batch = match self.streams.read_shard(&stream, shard, req).await {
                Ok(page) => page.batch,
                Err(error) => {
                    tracing::debug!(application = %self.app, stream = %stream.name, %error, "Reading an input shard failed; retrying.");
                    continue;
                }
            };
            // Processing time is taken after the read, so a record never gets a ROWTIME from
            // before it was written.
            let now = self.streams.clock.now_ms();
            if batch.next_offset < batch.end_offset {
                more = true;
                if let Some(last) = batch.records.last() {
                    lag = lag.max(now - last.arrival_ms);
                }
            }
            // Rows of a shard go to one in-application stream, so each keeps its order.
            let target = shard.index as usize % reader.in_app.len();
            for rec in &batch.records {
                records += 1;
                match reader.schema.map_record(&rec.data, rec.arrival_ms) {
                    Ok(rows) => {
                        for values in rows {
                            *rows_per_stream.entry(target).or_default() += 1;
                            let _ = self
                                .compiled
                                .app
                                .insert(&reader.in_app[target], now, values);
                        }
                    }
                    Err(e) => self.compiled.app.reject_input(e, now, &rec.data),
                }
            }
            if batch.next_offset != offset {
                pos.offsets.insert(shard.index, batch.next_offset);
                self.dirty = true;
            }
        }
        let reader = &mut self.readers[k];
        reader.position = Some(pos);
        m.input_records
            .with_label_values(&[&self.app])
            .inc_by(records);
        for (i, n) in rows_per_stream {
            m.input_rows
                .with_label_values(&[&self.app, &reader.in_app[i]])
                .inc_by(n);
        }
        m.input_lag_ms
            .with_label_values(&[&self.app])
            .set(lag.max(0));
        more
    }

    /// The DirectPut buffer of delivery stream `name`.
    fn firehose_log(&self, name: &str) -> Option<crate::storage::ShardLog> {
        self.compiled.delivery.as_ref()?.find(name)?.buffer.clone()
    }

    /// [`Self::read_input`] for a `KinesisFirehoseInput`: one batch from the delivery
    /// stream's buffer.
    async fn read_firehose_input(&mut self, k: usize) -> bool {
        let m = metrics::global();
        let Some(log) = self.firehose_log(&self.readers[k].stream_name) else {
            return false;
        };
        let Some(&offset) = self.readers[k]
            .position
            .as_ref()
            .and_then(|p| p.offsets.get(&0))
        else {
            return false;
        };
        let Ok(Ok(batch)) =
            tokio::task::spawn_blocking(move || log.read(offset, BATCH_RECORDS, BATCH_BYTES)).await
        else {
            return false;
        };
        let now = self.streams.clock.now_ms();
        let more = batch.next_offset < batch.end_offset;
        let lag = match (more, batch.records.last()) {
            (true, Some(last)) => now - last.arrival_ms,
            _ => 0,
        };
        let reader = &self.readers[k];
        let mut rows = 0u64;
        for rec in &batch.records {
            match reader.schema.map_record(&rec.data, rec.arrival_ms) {
                Ok(out) => {
                    for values in out {
                        rows += 1;
                        let _ = self.compiled.app.insert(&reader.in_app[0], now, values);
                    }
                }
                Err(e) => self.compiled.app.reject_input(e, now, &rec.data),
            }
        }
        m.input_records
            .with_label_values(&[&self.app])
            .inc_by(batch.records.len() as u64);
        m.input_rows
            .with_label_values(&[&self.app, &reader.in_app[0]])
            .inc_by(rows);
        m.input_lag_ms
            .with_label_values(&[&self.app])
            .set(lag.max(0));
        if batch.next_offset != offset {
            if let Some(p) = self.readers[k].position.as_mut() {
                p.offsets.insert(0, batch.next_offset);
            }
            self.dirty = true;
        }
        more
    }

    /// [`Self::read_input`] for an input served by another endpoint: one page from every
    /// readable remote shard.
    async fn read_remote_input(&mut self, k: usize) -> bool {
        let m = metrics::global();
        let reader = &mut self.readers[k];
        let (Some(remote), Some(pos)) = (reader.remote.as_mut(), reader.position.as_mut()) else {
            return false;
        };
        let position = pos.remote.get_or_insert_with(Position::default);
        let before = position.clone();
        let batch = remote.read(position, BATCH_RECORDS).await;
        if *position != before {
            self.dirty = true;
        }
        if let Some(e) = &batch.error {
            tracing::warn!(application = %self.app, stream = %reader.stream_name, error = %e, "Reading the remote input stream failed; retrying.");
        }
        // Processing time is taken after the read, as for local inputs.
        let now = self.streams.clock.now_ms();
        let mut rows_per_stream: BTreeMap<usize, u64> = BTreeMap::new();
        for (shard_id, records) in &batch.shards {
            // Rows of a shard go to one in-application stream, so each keeps its order.
            let target = (shard_number(shard_id) % reader.in_app.len() as u64) as usize;
            for rec in records {
                match reader.schema.map_record(&rec.data, rec.arrival_ms) {
                    Ok(rows) => {
                        for values in rows {
                            *rows_per_stream.entry(target).or_default() += 1;
                            let _ = self
                                .compiled
                                .app
                                .insert(&reader.in_app[target], now, values);
                        }
                    }
                    Err(e) => self.compiled.app.reject_input(e, now, &rec.data),
                }
            }
        }
        m.input_records
            .with_label_values(&[&self.app])
            .inc_by(batch.records() as u64);
        for (i, n) in rows_per_stream {
            m.input_rows
                .with_label_values(&[&self.app, &reader.in_app[i]])
                .inc_by(n);
        }
        m.input_lag_ms
            .with_label_values(&[&self.app])
            .set(batch.lag_ms.max(0));
        batch.more && batch.error.is_none()
    }

    /// Rebuilds the window state the engine had at a checkpoint taken at engine time `clock`:
    /// the records of every resumed input that arrived in the state horizon before `clock`, up
    /// to the checkpointed positions, go through the engine in arrival order with their arrival
    /// time as ROWTIME; the engine then advances to `clock` and what came out (written before
    /// the checkpoint) is dropped.
    async fn replay(&mut self, clock: i64) {
        let horizon = self.compiled.app.state_horizon_ms(REPLAY_CAP_MS);
        if horizon <= 0 {
            return;
        }
        let from = clock - horizon;
        // (arrival, input, target in-application stream, data)
        let mut records: Vec<(i64, usize, usize, Bytes)> = Vec::new();
        for k in 0..self.readers.len() {
            if !self.readers[k].resumed {
                continue;
            }
            let got = if self.readers[k].remote.is_some() {
                self.replay_remote(k, from).await
            } else {
                self.replay_local(k, from).await
            };
            match got {
                Ok(mut r) => records.append(&mut r),
                Err(error) => {
                    tracing::warn!(application = %self.app, stream = %self.readers[k].stream_name, %error, "Could not read the input before the checkpoint again; windows open at the restart start empty.")
                }
            }
        }
        // Stable: records of one shard keep their order.
        records.sort_by_key(|r| r.0);
        let count = records.len() as u64;
        for (arrival, k, target, data) in records {
            let reader = &self.readers[k];
            let rowtime = arrival.min(clock);
            match reader.schema.map_record(&data, arrival) {
                Ok(rows) => {
                    for values in rows {
                        let _ = self
                            .compiled
                            .app
                            .insert(&reader.in_app[target], rowtime, values);
                    }
                }
                Err(e) => self.compiled.app.reject_input(e, rowtime, &data),
            }
        }
        self.compiled.app.advance_to(clock);
        self.compiled.app.take(ERROR_STREAM);
        for out in &self.compiled.outputs {
            self.compiled.app.take(&out.in_app_stream);
        }
        metrics::global()
            .replayed_records
            .with_label_values(&[&self.app])
            .inc_by(count);
        tracing::info!(application = %self.app, records = count, horizon_ms = horizon, "Rebuilt window state from the input before the checkpoint.");
    }

    /// The records of local input `k` that arrived at or after `from`, before its position.
    async fn replay_local(
        &self,
        k: usize,
        from: i64,
    ) -> Result<Vec<(i64, usize, usize, Bytes)>, String> {
        let reader = &self.readers[k];
        let Some(pos) = reader.position.as_ref() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        if !reader.firehose {
            let Some(stream) = self.streams.find(&reader.stream_name) else {
                return Ok(out);
            };
            // Every shard's log, here or (cluster mode) at the pod holding it.
            for shard in stream.all_shards() {
                let Some(&end) = pos.offsets.get(&shard.index) else {
                    continue;
                };
                let target = shard.index as usize % reader.in_app.len();
                let first = self
                    .streams
                    .read_shard(&stream, &shard, ShardRead::offsets(Some(from)))
                    .await?;
                let mut offset = first.at_offset.unwrap_or(0).max(first.start_offset);
                while offset < end {
                    let req = ShardRead::records(offset, BATCH_RECORDS, BATCH_BYTES);
                    let batch = self.streams.read_shard(&stream, &shard, req).await?.batch;
                    if batch.next_offset <= offset {
                        break;
                    }
                    offset = batch.next_offset;
                    out.extend(
                        batch
                            .records
                            .into_iter()
                            .filter(|r| r.offset < end && r.arrival_ms >= from)
                            .map(|r| (r.arrival_ms, k, target, r.data)),
                    );
                }
            }
            return Ok(out);
        }
        // The delivery stream's buffer, as shard 0.
        let logs: Vec<(u32, crate::storage::ShardLog)> = self
            .firehose_log(&reader.stream_name)
            .map(|l| (0, l))
            .into_iter()
            .collect();
        for (index, log) in logs {
            let Some(&end) = pos.offsets.get(&index) else {
                continue;
            };
            let target = index as usize % reader.in_app.len();
            let batches = tokio::task::spawn_blocking(move || {
                let mut offset = log
                    .offset_for_timestamp(from)
                    .map_err(|e| e.to_string())?
                    .max(log.start_offset());
                let mut got = Vec::new();
                while offset < end {
                    let batch = log
                        .read(offset, BATCH_RECORDS, BATCH_BYTES)
                        .map_err(|e| e.to_string())?;
                    if batch.next_offset <= offset {
                        break;
                    }
                    offset = batch.next_offset;
                    got.extend(
                        batch
                            .records
                            .into_iter()
                            .filter(|r| r.offset < end && r.arrival_ms >= from)
                            .map(|r| (r.arrival_ms, r.data)),
                    );
                }
                Ok::<_, String>(got)
            })
            .await
            .map_err(|e| e.to_string())??;
            out.extend(
                batches
                    .into_iter()
                    .map(|(arrival, data)| (arrival, k, target, data)),
            );
        }
        Ok(out)
    }

    /// The records of remote input `k` that arrived at or after `from`, up to its position:
    /// each shard it has read (or finished) from `AT_TIMESTAMP from` to the checkpointed
    /// sequence number (a finished shard to its end).
    async fn replay_remote(
        &self,
        k: usize,
        from: i64,
    ) -> Result<Vec<(i64, usize, usize, Bytes)>, String> {
        let reader = &self.readers[k];
        let (Some(remote), Some(pos)) = (
            self.streams.remote.get(&reader.stream_name),
            reader.position.as_ref().and_then(|p| p.remote.as_ref()),
        ) else {
            return Ok(Vec::new());
        };
        let shards: Vec<(&String, Option<&String>)> = pos
            .after
            .iter()
            .map(|(id, seq)| (id, Some(seq)))
            .chain(pos.finished.iter().map(|id| (id, None)))
            .collect();
        let mut out = Vec::new();
        for (shard_id, last) in shards {
            let target = (shard_number(shard_id) % reader.in_app.len() as u64) as usize;
            let mut iterator = Some(
                remote
                    .client
                    .get_shard_iterator(&remote.name, shard_id, &IteratorStart::AtTimestamp(from))
                    .await
                    .map_err(|e| e.to_string())?,
            );
            'pages: while let Some(it) = iterator.take() {
                let page = remote
                    .client
                    .get_records(&it, BATCH_RECORDS)
                    .await
                    .map_err(|e| e.to_string())?;
                let empty = page.records.is_empty();
                for rec in page.records {
                    if last.is_some_and(|l| sequence_after(&rec.sequence_number, l)) {
                        break 'pages;
                    }
                    out.push((rec.arrival_ms, k, target, rec.data));
                    if last.is_some_and(|l| *l == rec.sequence_number) {
                        break 'pages;
                    }
                }
                if empty && page.millis_behind_latest == 0 {
                    break;
                }
                iterator = page.next_iterator;
            }
        }
        Ok(out)
    }

    /// Writes pending output records; those refused stay pending.
    async fn flush(&mut self) {
        let m = metrics::global();
        for (k, out) in self.compiled.outputs.iter().enumerate() {
            if self.pending[k].is_empty() {
                continue;
            }
            if out.firehose {
                self.pending[k] = deliver(&self.app, &self.compiled, out, &self.pending[k]).await;
                continue;
            }
            if let Some(remote) = self.streams.remote.get(&out.destination) {
                let mut left = Vec::new();
                let mut written = 0u64;
                let mut unreachable = false;
                for chunk in self.pending[k].chunks(PUT_BATCH) {
                    if unreachable {
                        left.extend(chunk.iter().cloned());
                        continue;
                    }
                    let records: Vec<PutRecord> = chunk
                        .iter()
                        .map(|e| PutRecord {
                            partition_key: String::from_utf8_lossy(&e.partition_key).into_owned(),
                            data: e.data.clone(),
                        })
                        .collect();
                    match remote.client.put_records(&remote.name, &records).await {
                        Ok(results) => {
                            for (entry, ok) in chunk.iter().zip(results) {
                                if ok {
                                    written += 1;
                                } else {
                                    left.push(entry.clone());
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(application = %self.app, destination = %out.destination, error = %e, "Writing to the remote output stream failed; output is held and retried.");
                            // The endpoint is down: keep the rest for the next cycle rather
                            // than waiting out every chunk's retries now.
                            left.extend(chunk.iter().cloned());
                            unreachable = true;
                        }
                    }
                }
                m.output_records
                    .with_label_values(&[&self.app, &out.in_app_stream])
                    .inc_by(written);
                if !left.is_empty() {
                    m.output_failures
                        .with_label_values(&[&self.app, &out.in_app_stream])
                        .inc_by(left.len() as u64);
                }
                self.pending[k] = left;
                continue;
            }
            let Some(stream) = self.streams.find(&out.destination) else {
                m.output_failures
                    .with_label_values(&[&self.app, &out.in_app_stream])
                    .inc_by(self.pending[k].len() as u64);
                tracing::warn!(application = %self.app, destination = %out.destination, "The output stream does not exist; output is held until it does.");
                continue;
            };
            let mut left = Vec::new();
            let mut written = 0u64;
            for chunk in self.pending[k].chunks(PUT_BATCH) {
                let results = self.streams.put(&stream, chunk).await;
                for (entry, r) in chunk.iter().zip(results) {
                    match r {
                        PutOutcome::Ok { .. } => written += 1,
                        PutOutcome::Failed { .. } => left.push(entry.clone()),
                    }
                }
            }
            m.output_records
                .with_label_values(&[&self.app, &out.in_app_stream])
                .inc_by(written);
            if !left.is_empty() {
                m.output_failures
                    .with_label_values(&[&self.app, &out.in_app_stream])
                    .inc_by(left.len() as u64);
            }
            self.pending[k] = left;
        }
    }

    /// Keeps the buffer of each Firehose input from being trimmed below what a restart from
    /// `cp` reads again: the checkpointed offset, or the start of the state horizon before it.
    fn hold_firehose_inputs(&self, cp: &Checkpoint) {
        let Some(delivery) = &self.compiled.delivery else {
            return;
        };
        let horizon = self.compiled.app.state_horizon_ms(REPLAY_CAP_MS);
        for r in self.readers.iter().filter(|r| r.firehose) {
            let Some(ds) = delivery.find(&r.stream_name) else {
                continue;
            };
            let Some(&offset) = cp.inputs.get(&r.id).and_then(|p| p.offsets.get(&0)) else {
                continue;
            };
            let replay_from = match (&ds.buffer, cp.clock_ms) {
                (Some(log), Some(clock)) if horizon > 0 => {
                    log.offset_for_timestamp(clock - horizon).unwrap_or(offset)
                }
                _ => offset,
            };
            ds.hold(&self.app, offset.min(replay_from));
        }
    }

    fn save_checkpoint(&mut self) {
        self.hold_firehose_inputs(&self.positions());
        let Some(path) = &self.checkpoint_path else {
            self.dirty = false;
            return;
        };
        let cp = self.positions();
        match crate::streams::stream::write_atomic(
            path,
            &serde_json::to_vec_pretty(&cp).unwrap_or_default(),
        ) {
            Ok(()) => self.dirty = false,
            Err(e) => {
                tracing::error!(application = %self.app, error = %e, "Could not write the checkpoint.")
            }
        }
    }
}

/// Where a remote input begins: the checkpointed position (LAST_STOPPED_POINT), the trim
/// horizon, or (NOW) records that arrive from `now` on.
fn remote_start(r: &mut Reader, now: i64) -> InputCheckpoint {
    let resumed = r
        .resume
        .take()
        .filter(|c| c.stream == r.stream_name)
        .and_then(|c| c.remote);
    let position = match (r.start, resumed) {
        (_, Some(p)) => {
            r.resumed = true;
            p
        }
        (Start::TrimHorizon, None) => Position::default(),
        _ => Position {
            start_ms: Some(now),
            ..Position::default()
        },
    };
    InputCheckpoint {
        stream: r.stream_name.clone(),
        incarnation: 0,
        offsets: BTreeMap::new(),
        remote: Some(position),
    }
}

/// Writes an output's records to a DirectPut delivery stream (a `KinesisFirehoseOutput`), as
/// one batch; returns the records still pending (all of them when the write failed).
async fn deliver(
    app: &str,
    compiled: &Compiled,
    out: &CompiledOutput,
    pending: &[PutEntry],
) -> Vec<PutEntry> {
    let m = metrics::global();
    let target = compiled
        .delivery
        .as_ref()
        .and_then(|d| d.find(&out.destination));
    let result = match &target {
        Some(ds) => ds
            .put(pending.iter().map(|e| e.data.clone()).collect())
            .await
            .map_err(|e| e.to_string()),
        None => Err("the delivery stream does not exist".into()),
    };
    match result {
        Ok(_) => {
            m.output_records
                .with_label_values(&[app, &out.in_app_stream])
                .inc_by(pending.len() as u64);
            Vec::new()
        }
        Err(error) => {
            m.output_failures
                .with_label_values(&[app, &out.in_app_stream])
                .inc_by(pending.len() as u64);
            tracing::warn!(application = %app, destination = %out.destination, %error, "Could not write to the delivery stream; output is held and retried.");
            pending.to_vec()
        }
    }
}

/// Whether sequence number `a` comes after `b` (both decimal, without leading zeros).
fn sequence_after(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

/// True when `shard` is closed and read to its end.
fn finished(shard: &Shard, offset: u64) -> bool {
    shard.closed().is_some_and(|(end, _)| offset >= end)
}

/// Adds the shards that can be read now: those whose parents are all read to their end (or no
/// longer exist, trimmed by retention). A new shard starts at its trim horizon.
fn begin_ready_shards(pos: &mut InputCheckpoint, shards: &[Arc<Shard>]) {
    loop {
        let mut added = false;
        for s in shards {
            if pos.offsets.contains_key(&s.index) {
                continue;
            }
            let parents_done = s.parent.iter().chain(s.adjacent_parent.iter()).all(|pid| {
                match shards.iter().find(|p| &p.id == pid) {
                    None => true,
                    Some(p) => pos.offsets.get(&p.index).is_some_and(|&o| finished(p, o)),
                }
            });
            if parents_done {
                pos.offsets
                    .insert(s.index, s.log.as_ref().map_or(0, |l| l.start_offset()));
                added = true;
            }
        }
        if !added {
            break;
        }
    }
}

/// Resolves when any receiver sees a change (or never, when there are none).
async fn wait_any(mut tips: Vec<watch::Receiver<u64>>) {
    if tips.is_empty() {
        return std::future::pending().await;
    }
    let futs = tips.iter_mut().map(|t| Box::pin(t.changed()));
    let _ = futures_util::future::select_all(futs).await;
}
