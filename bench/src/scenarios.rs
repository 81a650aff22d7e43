//! The scenarios of issue 7 and how each one measures a target.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use base64_simd::STANDARD;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::client::Conn;
use crate::subscribe::{self, Subscription};
use crate::targets::{self_cpu_s, Kind, Server};
use crate::workload::{self, Checksum, BATCH, RECORD_BYTES};

/// What a run is allowed to take.
#[derive(Debug, Clone)]
pub struct Options {
    /// Length of each timed load phase.
    pub duration: Duration,
    /// Records written, then read back, by `get-records`.
    pub readback_records: u64,
    /// Bytes of record data written by `retention`.
    pub retention_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// PutRecords of `BATCH` × 1 KiB records with random partition keys.
    PutRecords { concurrency: usize, shards: u32 },
    /// PutRecord of one 1 KiB record.
    PutRecord { concurrency: usize, shards: u32 },
    /// Read everything back from TRIM_HORIZON and prove it intact.
    GetRecords,
    /// Producer-to-consumer latency with a polling consumer, or (`subscribe`) an enhanced
    /// fan-out consumer reading pushed SubscribeToShard events.
    EndToEnd { subscribe: bool },
    /// Several GiB through the server while its resident memory is sampled.
    Retention,
}

/// Most records kinesis-mock writes and reads back in `get-records`.
const KINESIS_MOCK_READBACK: u64 = 50_000;
/// Shards of the `get-records` stream.
const READBACK_SHARDS: u32 = 2;
/// Shards and writers of the `retention` run.
const RETENTION_SHARDS: u32 = 4;
const RETENTION_CONCURRENCY: usize = 8;
/// The `e2e-latency` producer writes one record per interval; the consumer sleeps this long
/// after an empty GetRecords (a tight poll, to measure the server rather than the client).
const E2E_INTERVAL: Duration = Duration::from_millis(10);
const E2E_IDLE_POLL: Duration = Duration::from_millis(2);

impl Scenario {
    pub fn all() -> Vec<Scenario> {
        let mut v = Vec::new();
        for concurrency in [4, 16] {
            for shards in [1, 2, 8] {
                v.push(Scenario::PutRecords {
                    concurrency,
                    shards,
                });
            }
        }
        v.push(Scenario::PutRecord {
            concurrency: 16,
            shards: 2,
        });
        v.extend([
            Scenario::GetRecords,
            Scenario::EndToEnd { subscribe: false },
            Scenario::EndToEnd { subscribe: true },
            Scenario::Retention,
        ]);
        v
    }

    pub fn name(&self) -> String {
        match self {
            Scenario::PutRecords {
                concurrency,
                shards,
            } => format!("put-records-c{concurrency}-s{shards}"),
            Scenario::PutRecord {
                concurrency,
                shards,
            } => format!("put-record-c{concurrency}-s{shards}"),
            Scenario::GetRecords => "get-records".into(),
            Scenario::EndToEnd { subscribe: false } => "e2e-latency".into(),
            Scenario::EndToEnd { subscribe: true } => "e2e-latency-subscribe".into(),
            Scenario::Retention => "retention".into(),
        }
    }

    pub fn describe(&self, o: &Options) -> String {
        match self {
            Scenario::PutRecords {
                concurrency,
                shards,
            } => format!(
                "PutRecords of {BATCH} × 1 KiB records (random partition keys), {concurrency} connections, {shards} shard(s), {:?} after a warm-up",
                o.duration
            ),
            Scenario::PutRecord {
                concurrency,
                shards,
            } => format!(
                "PutRecord of one 1 KiB record (random partition keys), {concurrency} connections, {shards} shards, {:?} after a warm-up; latency per call",
                o.duration
            ),
            Scenario::GetRecords => format!(
                "write {} × 1 KiB records to {READBACK_SHARDS} shards, then read them all back from TRIM_HORIZON (GetRecords, Limit 10000, one reader per shard) and compare a checksum of every record; the read phase is timed, latency per GetRecords",
                o.readback_records
            ),
            Scenario::EndToEnd { subscribe: true } => format!(
                "one producer PutRecord every {E2E_INTERVAL:?} to 1 shard for {:?}; one enhanced fan-out consumer reads SubscribeToShard events (HTTP/2, from LATEST); latency from before PutRecord to the record's arrival at the consumer",
                o.duration
            ),
            Scenario::EndToEnd { subscribe: false } => format!(
                "one producer PutRecord every {E2E_INTERVAL:?} to 1 shard for {:?}; one consumer polls GetRecords (sleeps {E2E_IDLE_POLL:?} after an empty answer); latency from before PutRecord to the record's arrival at the consumer",
                o.duration
            ),
            Scenario::Retention => format!(
                "{:.1} GiB of PutRecords (500 × 1 KiB) to {RETENTION_SHARDS} shards over {RETENTION_CONCURRENCY} connections while the server's RSS is sampled every 250 ms",
                o.retention_bytes as f64 / (1u64 << 30) as f64
            ),
        }
    }

    pub fn parse(s: &str) -> anyhow::Result<Vec<Scenario>> {
        let s = s.trim();
        let all = Scenario::all();
        if s == "all" {
            return Ok(all);
        }
        // A prefix selects a family: `put-records` is all six PutRecords runs.
        let found: Vec<Scenario> = all
            .into_iter()
            .filter(|sc| {
                let n = sc.name();
                n == s || n.starts_with(&format!("{s}-"))
            })
            .collect();
        if found.is_empty() {
            bail!(
                "unknown scenario {s:?}; known: {}",
                Scenario::all()
                    .iter()
                    .map(Scenario::name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(found)
    }

    /// Why `kind` does not run this scenario, if it does not.
    pub fn skip_reason(&self, kind: Kind) -> Option<&'static str> {
        match (self, kind) {
            (Scenario::EndToEnd { subscribe: true }, Kind::Kinesalite) => {
                Some("has no enhanced fan-out (SubscribeToShard)")
            }
            (Scenario::GetRecords | Scenario::EndToEnd { .. }, Kind::Ceiling) => {
                Some("stores nothing to read")
            }
            (Scenario::Retention, Kind::Ceiling) => Some("stores nothing"),
            (Scenario::Retention, Kind::Kinesalite | Kind::KinesisMock) => {
                Some("keeps every record in memory, so several GiB only measures its heap growth")
            }
            _ => None,
        }
    }

    pub fn is_throughput(&self) -> bool {
        !matches!(self, Scenario::EndToEnd { .. })
    }
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    pub fn from_micros(mut v: Vec<u64>) -> Latency {
        if v.is_empty() {
            return Latency::default();
        }
        v.sort_unstable();
        let at = |q: f64| {
            v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1000.0
        };
        Latency {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: *v.last().unwrap_or(&0) as f64 / 1000.0,
        }
    }
}

/// RSS while data accumulated (retention).
#[derive(Debug, Clone, Default)]
pub struct RssTrace {
    /// (GiB written so far, RSS MiB) samples.
    pub samples: Vec<(f64, f64)>,
}

impl RssTrace {
    /// Highest RSS in the first and the second half of the data written. The first tenth is
    /// left out: buffers, connections and allocator arenas reach their working size there.
    pub fn halves(&self) -> (f64, f64) {
        let total = self.samples.last().map(|s| s.0).unwrap_or(0.0);
        let mut first = 0f64;
        let mut second = 0f64;
        for &(gib, rss) in &self.samples {
            if gib < total / 10.0 {
                continue;
            } else if gib <= total / 2.0 {
                first = first.max(rss);
            } else {
                second = second.max(rss);
            }
        }
        (first, second)
    }

    /// Flat: the second half's peak is within 10 % (and 16 MiB) of the first half's.
    pub fn is_flat(&self) -> bool {
        let (first, second) = self.halves();
        second <= first * 1.10 + 16.0
    }
}

/// What one target did in one scenario.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    /// Records written or read successfully in the timed phase.
    pub records: u64,
    /// Their record data, bytes.
    pub bytes: u64,
    pub secs: f64,
    pub latency: Latency,
    /// Failed calls plus failed records of PutRecords.
    pub errors: u64,
    pub server_cpu_s: f64,
    pub loadgen_cpu_s: f64,
    /// VmHWM of the server at the end of the scenario, KiB.
    pub peak_rss_kib: u64,
    pub rss: Option<RssTrace>,
    pub note: String,
}

impl Measurement {
    pub fn records_per_s(&self) -> f64 {
        if self.secs > 0.0 {
            self.records as f64 / self.secs
        } else {
            0.0
        }
    }

    pub fn mb_per_s(&self) -> f64 {
        if self.secs > 0.0 {
            self.bytes as f64 / 1e6 / self.secs
        } else {
            0.0
        }
    }
}

/// Runs `scenario` against a freshly started `server`.
pub async fn run(scenario: Scenario, server: &Server, o: &Options) -> anyhow::Result<Measurement> {
    let stream = format!("bench-{}", scenario.name());
    match scenario {
        Scenario::PutRecords {
            concurrency,
            shards,
        } => {
            create_stream(server.addr, &stream, shards).await?;
            let mut rng = workload::rng(1);
            let bodies: Vec<Bytes> = (0..32)
                .map(|i| {
                    workload::put_records_body(&stream, BATCH, i * BATCH as u64, &mut rng).body
                })
                .collect();
            let warm = warm_up(o.duration);
            load(
                server.addr,
                "PutRecords",
                bodies.clone(),
                BATCH as u64,
                concurrency,
                warm,
            )
            .await?;
            timed(server, || {
                load(
                    server.addr,
                    "PutRecords",
                    bodies,
                    BATCH as u64,
                    concurrency,
                    o.duration,
                )
            })
            .await
        }
        Scenario::PutRecord {
            concurrency,
            shards,
        } => {
            create_stream(server.addr, &stream, shards).await?;
            let mut rng = workload::rng(2);
            let mut data = vec![0u8; RECORD_BYTES];
            let bodies: Vec<Bytes> = (0..256)
                .map(|_| {
                    rand::RngCore::fill_bytes(&mut rng, &mut data);
                    workload::put_record_body(&stream, &data, &mut rng)
                })
                .collect();
            load(
                server.addr,
                "PutRecord",
                bodies.clone(),
                1,
                concurrency,
                warm_up(o.duration),
            )
            .await?;
            timed(server, || {
                load(server.addr, "PutRecord", bodies, 1, concurrency, o.duration)
            })
            .await
        }
        Scenario::GetRecords => readback(server, &stream, o).await,
        Scenario::EndToEnd { subscribe } => end_to_end(server, &stream, o, subscribe).await,
        Scenario::Retention => retention(server, &stream, o).await,
    }
}

/// The untimed load before a throughput phase, so JIT-compiled peers (both npm servers) are
/// measured warm: a fifth of the phase, at most 2 s.
fn warm_up(duration: Duration) -> Duration {
    (duration / 5).min(Duration::from_secs(2))
}

/// Measures the server's CPU and the load generator's around `phase`.
async fn timed<F, Fut>(server: &Server, phase: F) -> anyhow::Result<Measurement>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Measurement>>,
{
    let before = server.sample();
    let own = self_cpu_s();
    let mut m = phase().await?;
    let after = server.sample();
    m.server_cpu_s = after.cpu_s - before.cpu_s;
    m.loadgen_cpu_s = self_cpu_s() - own;
    m.peak_rss_kib = after.hwm_kib;
    Ok(m)
}

/// CreateStream, then DescribeStreamSummary until ACTIVE.
pub async fn create_stream(addr: SocketAddr, name: &str, shards: u32) -> anyhow::Result<()> {
    let mut conn = Conn::connect(addr).await?;
    let r = conn
        .call_json(
            "CreateStream",
            json!({"StreamName": name, "ShardCount": shards}),
        )
        .await?;
    if r.status != 200 {
        bail!(
            "CreateStream answered {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d: serde_json::Value = conn
            .call_json("DescribeStreamSummary", json!({"StreamName": name}))
            .await?
            .json("DescribeStreamSummary")?;
        if d["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("stream {name} not ACTIVE after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Deserialize)]
struct PutRecordsReply {
    #[serde(rename = "FailedRecordCount", default)]
    failed: u64,
}

#[derive(Deserialize)]
struct PutRecordsDetail {
    #[serde(rename = "Records")]
    records: Vec<PutRecordsEntry>,
}

#[derive(Deserialize)]
struct PutRecordsEntry {
    #[serde(rename = "SequenceNumber")]
    sequence_number: Option<String>,
}

/// `concurrency` connections send `bodies` round-robin for `duration`.
async fn load(
    addr: SocketAddr,
    op: &'static str,
    bodies: Vec<Bytes>,
    records_per_body: u64,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Measurement> {
    let bodies = Arc::new(bodies);
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        conns.push(Conn::connect(addr).await?);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for (w, mut conn) in conns.into_iter().enumerate() {
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            let (mut ok, mut errors) = (0u64, 0u64);
            let mut i = w;
            while Instant::now() < deadline {
                let body = bodies[i % bodies.len()].clone();
                i += concurrency;
                let t = Instant::now();
                let r = conn.call(op, body).await?;
                lat.push(t.elapsed().as_micros() as u64);
                if r.status != 200 {
                    errors += 1;
                    continue;
                }
                let failed = if records_per_body > 1 {
                    r.json::<PutRecordsReply>(op)?.failed
                } else {
                    0
                };
                ok += records_per_body - failed.min(records_per_body);
                errors += failed;
            }
            anyhow::Ok((ok, errors, lat))
        }));
    }
    let mut m = Measurement::default();
    let mut lat = Vec::new();
    for t in tasks {
        let (ok, errors, l) = t.await??;
        m.records += ok;
        m.errors += errors;
        lat.extend(l);
    }
    m.secs = start.elapsed().as_secs_f64();
    m.bytes = m.records * RECORD_BYTES as u64;
    m.latency = Latency::from_micros(lat);
    if m.records == 0 {
        bail!("no {op} succeeded ({} errors)", m.errors);
    }
    Ok(m)
}

/// Writes `count` unique records with PutRecords over `concurrency` connections; returns the
/// checksum of those acknowledged.
async fn write_unique(
    addr: SocketAddr,
    stream: &str,
    count: u64,
    concurrency: usize,
) -> anyhow::Result<Checksum> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let next = next.clone();
        let stream = stream.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            let mut rng = workload::rng(100 + w as u64);
            let mut sum = Checksum::default();
            loop {
                let first = next.fetch_add(BATCH as u64, Ordering::Relaxed);
                if first >= count {
                    break;
                }
                let n = (count - first).min(BATCH as u64) as usize;
                let b = workload::put_records_body(&stream, n, first, &mut rng);
                let reply: PutRecordsDetail =
                    conn.call("PutRecords", b.body).await?.json("PutRecords")?;
                for (entry, term) in reply.records.iter().zip(&b.record_sums) {
                    if entry.sequence_number.is_some() {
                        sum.add(*term);
                    }
                }
            }
            anyhow::Ok(sum)
        }));
    }
    let mut total = Checksum::default();
    for t in tasks {
        total.merge(t.await??);
    }
    Ok(total)
}

/// A GetRecords answer for the latency consumer, borrowing the base64 from the response body.
#[derive(Deserialize)]
struct GetRecordsReply<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<RecordOut<'a>>,
    #[serde(rename = "NextShardIterator")]
    next: Option<String>,
}

/// A GetRecords answer read by scanning rather than parsing, so the reader's cost per record
/// is a few memchr passes: every record has exactly one `"Data":"…"` member (base64, which
/// never needs escaping) and one `"PartitionKey":"…"`, and neither key can occur inside a
/// JSON string. Any misreading shows up in the read-back checksum.
struct ScannedReply<'a> {
    /// (base64 data, partition key) of each record, in order.
    records: Vec<(&'a [u8], std::borrow::Cow<'a, str>)>,
    next: Option<String>,
    behind: Option<i64>,
}

impl<'a> ScannedReply<'a> {
    fn scan(body: &'a [u8]) -> anyhow::Result<ScannedReply<'a>> {
        use memchr::memmem;
        let data_key = br#""Data":""#;
        let pk_key = br#""PartitionKey":"#;
        let mut records = Vec::new();
        let mut pks = memmem::find_iter(body, pk_key);
        for at in memmem::find_iter(body, data_key) {
            let start = at + data_key.len();
            let len = memchr::memchr(b'"', &body[start..]).context("unterminated Data")?;
            let pk_at = pks.next().context("a record without PartitionKey")? + pk_key.len();
            let pk = string_at(body, pk_at)?.context("PartitionKey is not a string")?;
            records.push((&body[start..start + len], pk));
        }
        let next = match memmem::rfind(body, br#""NextShardIterator":"#) {
            Some(at) => string_at(body, at + 20)?.map(|s| s.into_owned()),
            None => None,
        };
        let behind = match memmem::rfind(body, br#""MillisBehindLatest":"#) {
            Some(at) => {
                let digits: Vec<u8> = body[at + 21..]
                    .iter()
                    .skip_while(|b| b.is_ascii_whitespace())
                    .take_while(|b| b.is_ascii_digit())
                    .copied()
                    .collect();
                std::str::from_utf8(&digits)?.parse().ok()
            }
            None => None,
        };
        Ok(ScannedReply {
            records,
            next,
            behind,
        })
    }
}

/// The JSON string value starting at `at` (after optional whitespace), borrowed unless it
/// has escapes; None for `null`.
fn string_at(body: &[u8], at: usize) -> anyhow::Result<Option<std::borrow::Cow<'_, str>>> {
    let rest = &body[at.min(body.len())..];
    let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let rest = &rest[skip..];
    if rest.starts_with(b"null") {
        return Ok(None);
    }
    if rest.first() != Some(&b'"') {
        bail!("GetRecords: expected a string");
    }
    match memchr::memchr2(b'"', b'\\', &rest[1..]) {
        Some(end) if rest[1 + end] == b'"' => Ok(Some(std::borrow::Cow::Borrowed(
            std::str::from_utf8(&rest[1..1 + end])?,
        ))),
        _ => {
            let mut de = serde_json::Deserializer::from_slice(rest);
            let s = String::deserialize(&mut de).context("GetRecords: unreadable string")?;
            Ok(Some(std::borrow::Cow::Owned(s)))
        }
    }
}

#[derive(Deserialize)]
struct RecordOut<'a> {
    #[serde(rename = "Data", borrow)]
    data: std::borrow::Cow<'a, str>,
}

async fn shard_ids(conn: &mut Conn, stream: &str) -> anyhow::Result<Vec<String>> {
    let v: serde_json::Value = conn
        .call_json("ListShards", json!({"StreamName": stream}))
        .await?
        .json("ListShards")?;
    Ok(v["Shards"]
        .as_array()
        .context("ListShards without Shards")?
        .iter()
        .filter_map(|s| s["ShardId"].as_str().map(String::from))
        .collect())
}

async fn iterator(conn: &mut Conn, stream: &str, shard: &str, ty: &str) -> anyhow::Result<String> {
    let v: serde_json::Value = conn
        .call_json(
            "GetShardIterator",
            json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": ty}),
        )
        .await?
        .json("GetShardIterator")?;
    Ok(v["ShardIterator"]
        .as_str()
        .context("no ShardIterator")?
        .to_string())
}

async fn readback(server: &Server, stream: &str, o: &Options) -> anyhow::Result<Measurement> {
    create_stream(server.addr, stream, READBACK_SHARDS).await?;
    // kinesis-mock writes a few hundred records a second, so a million would take an hour; it
    // reads back at most KINESIS_MOCK_READBACK records (the report says so).
    let records = if server.kind == Kind::KinesisMock {
        o.readback_records.min(KINESIS_MOCK_READBACK)
    } else {
        o.readback_records
    };
    let written = write_unique(server.addr, stream, records, 4).await?;
    let mut conn = Conn::connect(server.addr).await?;
    let shards = shard_ids(&mut conn, stream).await?;
    let addr = server.addr;
    // One reader thread per shard, as a consumer application (a KCL worker, say) reads its
    // shards in parallel; the load generator's own runtime stays on one thread.
    let readers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(shards.len().max(1))
        .enable_all()
        .build()?;
    let handle = readers.handle().clone();
    let m = timed(server, || async move {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for shard in shards {
            let stream = stream.to_string();
            tasks.push(handle.spawn(async move {
                let mut conn = Conn::connect(addr).await?;
                let mut it = iterator(&mut conn, &stream, &shard, "TRIM_HORIZON").await?;
                let mut sum = Checksum::default();
                let mut lat = Vec::new();
                let mut empties = 0;
                let mut data = Vec::with_capacity(4096);
                let deadline = Instant::now() + Duration::from_secs(600);
                loop {
                    let body = serde_json::to_vec(&json!({"ShardIterator": it, "Limit": 10000}))?;
                    let t = Instant::now();
                    let r = conn.call("GetRecords", Bytes::from(body)).await?;
                    lat.push(t.elapsed().as_micros() as u64);
                    let body = r.ok_body("GetRecords")?;
                    let reply = ScannedReply::scan(body)?;
                    let empty = reply.records.is_empty();
                    for (src, pk) in &reply.records {
                        data.resize(STANDARD.estimated_decoded_length(src.len()), 0);
                        let decoded = STANDARD
                            .decode(src, base64_simd::Out::from_slice(&mut data))
                            .context("GetRecords returned invalid base64")?;
                        sum.add(workload::record_sum(pk.as_bytes(), decoded));
                    }
                    empties = if empty { empties + 1 } else { 0 };
                    // Caught up: an empty answer at the tip (or a few in a row from a server
                    // that does not report MillisBehindLatest), or the shard is closed.
                    let caught_up = empty && (reply.behind == Some(0) || empties >= 3);
                    match reply.next {
                        Some(next) if !caught_up => it = next,
                        _ => break,
                    }
                    if Instant::now() > deadline {
                        bail!("reading {shard} back took over 10 minutes");
                    }
                }
                anyhow::Ok((sum, lat))
            }));
        }
        let mut read = Checksum::default();
        let mut lat = Vec::new();
        for t in tasks {
            let (s, l) = t.await??;
            read.merge(s);
            lat.extend(l);
        }
        let secs = start.elapsed().as_secs_f64();
        if read != written {
            bail!(
                "read-back checksum mismatch: wrote {} acknowledged records, read {} (sum {:x}/{:x}, xor {:x}/{:x})",
                written.count,
                read.count,
                written.sum,
                read.sum,
                written.xor,
                read.xor
            );
        }
        Ok(Measurement {
            records: read.count,
            bytes: read.count * RECORD_BYTES as u64,
            secs,
            latency: Latency::from_micros(lat),
            note: format!("checksum of all {} records matches", read.count),
            ..Measurement::default()
        })
    })
    .await;
    readers.shutdown_background();
    let mut m = m?;
    m.note.push_str("; peak RSS includes the write phase");
    if records < o.readback_records {
        m.note
            .push_str(&format!("; {records} records (capped for this target)"));
    }
    Ok(m)
}

/// How the `e2e-latency` consumer gets records.
enum Consumer {
    Poll { conn: Conn, iterator: String },
    Subscribe(Subscription),
}

impl Consumer {
    /// The data of the records that arrived since the last call (possibly none); None once
    /// the shard is closed or the subscription ended.
    async fn next(&mut self) -> anyhow::Result<Option<Vec<Vec<u8>>>> {
        match self {
            Consumer::Poll { conn, iterator } => {
                let body = serde_json::to_vec(&json!({"ShardIterator": iterator, "Limit": 1000}))?;
                let r = conn.call("GetRecords", Bytes::from(body)).await?;
                let reply: GetRecordsReply = serde_json::from_slice(r.ok_body("GetRecords")?)
                    .context("GetRecords: unreadable response")?;
                let data = reply
                    .records
                    .iter()
                    .map(|rec| STANDARD.decode_to_vec(rec.data.as_bytes()))
                    .collect::<Result<Vec<_>, _>>()?;
                let Some(next) = reply.next else {
                    return Ok(None);
                };
                *iterator = next;
                if data.is_empty() {
                    tokio::time::sleep(E2E_IDLE_POLL).await;
                }
                Ok(Some(data))
            }
            Consumer::Subscribe(sub) => {
                // A bounded wait, so the caller notices the end of the run between events.
                let Ok(next) =
                    tokio::time::timeout(Duration::from_millis(50), sub.next_records()).await
                else {
                    return Ok(Some(Vec::new()));
                };
                let Some(records) = next? else {
                    return Ok(None);
                };
                let data = records
                    .iter()
                    .map(|rec| STANDARD.decode_to_vec(rec.data.as_bytes()))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(data))
            }
        }
    }
}

async fn end_to_end(
    server: &Server,
    stream: &str,
    o: &Options,
    subscribe: bool,
) -> anyhow::Result<Measurement> {
    create_stream(server.addr, stream, 1).await?;
    let addr = server.addr;
    let mut conn = Conn::connect(addr).await?;
    let shard = shard_ids(&mut conn, stream)
        .await?
        .into_iter()
        .next()
        .context("no shard")?;
    let mut consumer = if subscribe {
        let arn = subscribe::register_consumer(&mut conn, stream, "bench-latency").await?;
        Consumer::Subscribe(Subscription::open(addr, &arn, &shard).await?)
    } else {
        let iterator = iterator(&mut conn, stream, &shard, "LATEST").await?;
        Consumer::Poll { conn, iterator }
    };
    let duration = o.duration;
    timed(server, || async move {
        let origin = Instant::now();
        let sent = Arc::new(AtomicU64::new(0));
        let producing = Arc::new(Mutex::new(true));
        let producer = {
            let sent = sent.clone();
            let producing = producing.clone();
            let stream = stream.to_string();
            tokio::spawn(async move {
                let mut conn = Conn::connect(addr).await?;
                let mut rng = workload::rng(3);
                let mut data = vec![0u8; RECORD_BYTES];
                let mut tick = tokio::time::interval(E2E_INTERVAL);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while origin.elapsed() < duration {
                    tick.tick().await;
                    rand::RngCore::fill_bytes(&mut rng, &mut data);
                    let at = origin.elapsed().as_micros() as u64;
                    data[..8].copy_from_slice(&at.to_le_bytes());
                    let body = workload::put_record_body(&stream, &data, &mut rng);
                    let r = conn.call("PutRecord", body).await?;
                    if r.status == 200 {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                *producing.lock().unwrap_or_else(|e| e.into_inner()) = false;
                anyhow::Ok(())
            })
        };
        let mut lat = Vec::new();
        let mut received = 0u64;
        let mut drain_deadline = None;
        loop {
            let batch = consumer
                .next()
                .await?
                .context("the shard closed or the subscription ended during the run")?;
            let now = origin.elapsed().as_micros() as u64;
            for data in batch {
                let at = u64::from_le_bytes(data.get(..8).context("short record")?.try_into()?);
                lat.push(now.saturating_sub(at));
                received += 1;
            }
            let still = *producing.lock().unwrap_or_else(|e| e.into_inner());
            if !still {
                let d = *drain_deadline.get_or_insert(Instant::now() + Duration::from_secs(5));
                if received >= sent.load(Ordering::Relaxed) || Instant::now() > d {
                    break;
                }
            }
        }
        producer.await??;
        let sent = sent.load(Ordering::Relaxed);
        let secs = origin.elapsed().as_secs_f64();
        Ok(Measurement {
            records: received,
            bytes: received * RECORD_BYTES as u64,
            secs,
            errors: sent.saturating_sub(received),
            latency: Latency::from_micros(lat),
            note: format!("{received} of {sent} records seen by the consumer"),
            ..Measurement::default()
        })
    })
    .await
}

async fn retention(server: &Server, stream: &str, o: &Options) -> anyhow::Result<Measurement> {
    create_stream(server.addr, stream, RETENTION_SHARDS).await?;
    let mut rng = workload::rng(4);
    let bodies: Vec<Bytes> = (0..32)
        .map(|i| workload::put_records_body(stream, BATCH, i * BATCH as u64, &mut rng).body)
        .collect();
    let requests = o.retention_bytes.div_ceil((BATCH * RECORD_BYTES) as u64);
    let next = Arc::new(AtomicU64::new(0));
    let pid = server.pid();
    let addr = server.addr;
    let trace = Arc::new(Mutex::new(RssTrace::default()));
    let mut m = timed(server, || async {
        let start = Instant::now();
        let sampler = {
            let next = next.clone();
            let trace = trace.clone();
            tokio::spawn(async move {
                let per_request = (BATCH * RECORD_BYTES) as f64 / (1u64 << 30) as f64;
                loop {
                    let done = next.load(Ordering::Relaxed).min(requests);
                    if let Some(s) = crate::targets::sample(pid) {
                        trace
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .samples
                            .push((done as f64 * per_request, s.rss_kib as f64 / 1024.0));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };
        let bodies = Arc::new(bodies);
        let mut tasks = Vec::new();
        for _ in 0..RETENTION_CONCURRENCY {
            let next = next.clone();
            let bodies = bodies.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::connect(addr).await?;
                let (mut ok, mut errors, mut lat) = (0u64, 0u64, Vec::new());
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let t = Instant::now();
                    let r = conn
                        .call("PutRecords", bodies[i as usize % bodies.len()].clone())
                        .await?;
                    lat.push(t.elapsed().as_micros() as u64);
                    let failed = r.json::<PutRecordsReply>("PutRecords")?.failed;
                    ok += BATCH as u64 - failed.min(BATCH as u64);
                    errors += failed;
                }
                anyhow::Ok((ok, errors, lat))
            }));
        }
        let mut m = Measurement::default();
        let mut lat = Vec::new();
        for t in tasks {
            let (ok, errors, l) = t.await??;
            m.records += ok;
            m.errors += errors;
            lat.extend(l);
        }
        sampler.abort();
        m.secs = start.elapsed().as_secs_f64();
        m.bytes = m.records * RECORD_BYTES as u64;
        m.latency = Latency::from_micros(lat);
        Ok(m)
    })
    .await?;
    if let Some(s) = crate::targets::sample(pid) {
        let gib = m.bytes as f64 / (1u64 << 30) as f64;
        trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .samples
            .push((gib, s.rss_kib as f64 / 1024.0));
    }
    let trace = trace.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (first, second) = trace.halves();
    let last = trace.samples.last().map(|s| s.1).unwrap_or(0.0);
    m.note = format!(
        "{:.2} GiB written; RSS peak {first:.0} MiB over the first half, {second:.0} MiB over the second, {last:.0} MiB at the end: {}",
        m.bytes as f64 / (1u64 << 30) as f64,
        if trace.is_flat() { "flat" } else { "GROWING" }
    );
    m.rss = Some(trace);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanning_reads_records_keys_and_the_next_iterator() {
        let body = br#"{"Records":[{"SequenceNumber":"1","Data":"aGk=","PartitionKey":"k\"1"},{"PartitionKey":"k2","Data":"","EncryptionType":"NONE"}],"NextShardIterator":"it/1","MillisBehindLatest": 12}"#;
        let r = ScannedReply::scan(body).unwrap();
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.records[0].0, b"aGk=");
        assert_eq!(r.records[0].1, "k\"1");
        assert_eq!(r.records[1].0, b"");
        assert_eq!(r.records[1].1, "k2");
        assert_eq!(r.next.as_deref(), Some("it/1"));
        assert_eq!(r.behind, Some(12));
        let closed = ScannedReply::scan(br#"{"Records":[],"NextShardIterator":null}"#).unwrap();
        assert!(closed.records.is_empty() && closed.next.is_none() && closed.behind.is_none());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latency::from_micros((1..=100).map(|v| v * 1000).collect());
        assert_eq!((l.p50, l.p99, l.max), (50.0, 99.0, 100.0));
    }

    #[test]
    fn a_family_name_selects_all_its_runs() {
        assert_eq!(Scenario::parse("put-records").unwrap().len(), 6);
        assert_eq!(Scenario::parse("put-records-c16-s8").unwrap().len(), 1);
        assert!(Scenario::parse("nope").is_err());
    }

    #[test]
    fn rss_that_keeps_climbing_is_not_flat() {
        let flat = RssTrace {
            samples: vec![
                (0.0, 10.0),
                (0.5, 100.0),
                (1.0, 110.0),
                (1.5, 112.0),
                (2.0, 111.0),
            ],
        };
        let growing = RssTrace {
            samples: vec![(0.5, 100.0), (1.0, 200.0), (1.5, 300.0), (2.0, 400.0)],
        };
        assert!(flat.is_flat());
        assert!(!growing.is_flat());
    }
}
