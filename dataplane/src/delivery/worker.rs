//! A delivery stream's worker: buffer, deliver with retries, checkpoint.
//!
//! 1. Read from the in-memory cursor (initially the durable checkpoint) until the buffer holds
//!    `SizeInMBs` or the source is drained.
//! 2. When the buffer is full, or its oldest record is `IntervalInSeconds` old, deliver it.
//!    A failed attempt is retried with exponential backoff (1 s doubling, ±15 % jitter, capped);
//!    HTTP endpoints give up after `RetryOptions.DurationInSeconds` and write the records as
//!    error objects under the S3 error prefix; S3 destinations retry for 24 hours.
//! 3. After delivery, persist the cursor as the checkpoint and release the buffered records.
//!    Invariant: the checkpoint never passes a record that is not delivered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde::Serialize;
use tokio::sync::watch;

use super::client::HttpClient;
use super::compress::Compression;
use super::config::{BufferingHints, HttpDestination, S3Destination, DEFAULT_HTTP_RETRY_S};
use super::convert::{ConversionConfig, Converter};
use super::partition::{self, Keys};
use super::postgres::{self, RedshiftDestination};
use super::prefix::{self, Prefix};
use super::processors;
use super::source::{self, Checkpoint, Pending};
use super::store::{Store, StoreConfig};
use super::transform;
use super::{DeliveryMeta, DeliveryStream, DeliveryStreams, Destination};

/// Firehose keeps retrying an S3 delivery for 24 hours.
const S3_RETRY_MS: i64 = 24 * 3600 * 1000;
/// An idle worker looks at its source at least this often.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// HTTP endpoints have 3 minutes to answer (Firehose's HTTP endpoint contract).
const HTTP_TIMEOUT: Duration = Duration::from_secs(180);
/// A response body over 1 MiB is not a valid Firehose endpoint response.
const HTTP_MAX_RESPONSE: usize = 1024 * 1024;

pub async fn run(
    engine: Arc<DeliveryStreams>,
    ds: Arc<DeliveryStream>,
    committed: Checkpoint,
    mut stop: watch::Receiver<bool>,
    client: HttpClient,
) {
    let mut committed = committed;
    let mut cursor = committed.clone();
    let mut pending: Vec<Pending> = Vec::new();
    let mut pending_bytes = 0usize;
    let name = ds.meta().name;
    let m = &crate::metrics::global().firehose;
    loop {
        if *stop.borrow() {
            return;
        }
        let meta = ds.meta();
        let (size, interval_ms) = hints(&meta.destination);
        // A remote source may take a while to answer; stopping does not wait for it (the
        // cursor is discarded, the checkpoint is what counts).
        let filled = tokio::select! {
            r = source::fill(
                &engine,
                &ds,
                meta.kinesis.as_ref(),
                &mut cursor,
                &mut pending,
                &mut pending_bytes,
                size,
            ) => r,
            _ = stop.changed() => return,
        };
        if let Err(e) = filled {
            tracing::warn!(delivery_stream = %name, error = %e, "Reading the source failed; retrying.");
        }
        let now = engine.clock.now_ms();
        let oldest = pending.first().map(|p| p.arrival_ms);
        m.freshness(&name, oldest.map(|t| (now - t).max(0)).unwrap_or(0));
        let due = match oldest {
            Some(t) => pending_bytes >= size || now - t >= interval_ms,
            None => false,
        };
        if !due {
            let wait = match oldest {
                Some(t) => Duration::from_millis((t + interval_ms - now).clamp(1, 200) as u64),
                None => IDLE_POLL,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ds.notify.notified() => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        let seed = committed.seed(meta.create_ms);
        let batch = Batch {
            records: &pending,
            seed,
        };
        let delivered = tokio::select! {
            r = deliver(&engine, &client, &meta, &batch) => r,
            _ = stop.changed() => return,
        };
        if !delivered {
            return;
        }
        m.delivered(
            &name,
            destination_label(&meta.destination),
            pending.len(),
            pending_bytes,
        );
        // The checkpoint moves only now that every pending record is delivered.
        loop {
            match cursor.save(ds.dir.as_deref()) {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(delivery_stream = %name, error = %e, "Saving the checkpoint failed; retrying.");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
        committed = cursor.clone();
        if let Some(log) = &ds.buffer {
            if let Err(e) = log.trim_to_offset(ds.trim_horizon(committed.offset)) {
                tracing::warn!(delivery_stream = %name, error = %e, "Releasing delivered buffer segments failed.");
            }
        }
        pending.clear();
        pending_bytes = 0;
    }
}

fn destination_label(d: &Destination) -> &'static str {
    match d {
        Destination::ExtendedS3(_) => "S3",
        Destination::HttpEndpoint(_) => "HttpEndpoint",
        Destination::Redshift(_) => "Redshift",
    }
}

/// (flush size in bytes, flush interval in ms) of a destination.
fn hints(d: &Destination) -> (usize, i64) {
    match d {
        Destination::ExtendedS3(v) => {
            let c: S3Destination = serde_json::from_value(v.clone()).unwrap_or_default();
            let mut h = c.buffering_hints.clone().unwrap_or_default();
            if ConversionConfig::parse(c.data_format_conversion_configuration.as_ref()).is_some() {
                // With format conversion Firehose buffers 128 MiB by default.
                h.size_in_mbs.get_or_insert(128);
            }
            BufferingHints::resolved(Some(&h))
        }
        Destination::HttpEndpoint(v) => {
            let c: HttpDestination = serde_json::from_value(v.clone()).unwrap_or_default();
            BufferingHints::resolved(c.buffering_hints.as_ref())
        }
        // Redshift buffers in its S3 staging configuration.
        Destination::Redshift(v) => {
            let c: RedshiftDestination = serde_json::from_value(v.clone()).unwrap_or_default();
            let s3 = c.s3_configuration.unwrap_or_default();
            BufferingHints::resolved(s3.buffering_hints.as_ref())
        }
    }
}

struct Batch<'a> {
    records: &'a [Pending],
    seed: u128,
}

impl Batch<'_> {
    fn oldest_ms(&self) -> i64 {
        self.records.iter().map(|r| r.arrival_ms).min().unwrap_or(0)
    }

    /// The records concatenated, each followed by `\n` if `newline`.
    fn body(&self, newline: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for r in self.records {
            out.extend_from_slice(&r.data);
            if newline {
                out.push(b'\n');
            }
        }
        out
    }
}

/// Retry delays: 1 s doubling (scaled by the engine's settings), ±15 % jitter, capped.
struct Backoff {
    next_ms: u64,
    max_ms: u64,
}

impl Backoff {
    fn new(engine: &DeliveryStreams) -> Backoff {
        Backoff {
            next_ms: engine.cfg.initial_backoff_ms.max(1),
            max_ms: engine.cfg.max_backoff_ms.max(1),
        }
    }

    fn next(&mut self) -> Duration {
        let jitter = 0.85 + rand::random::<f64>() * 0.3;
        let d = (self.next_ms as f64 * jitter) as u64;
        self.next_ms = (self.next_ms * 2).min(self.max_ms);
        Duration::from_millis(d.min(self.max_ms))
    }
}

fn store_for(
    engine: &DeliveryStreams,
    meta: &DeliveryMeta,
    client: &HttpClient,
) -> Result<Store, String> {
    let cfg = match &meta.store_endpoint {
        Some(endpoint) => StoreConfig {
            endpoint: endpoint.clone(),
            ..engine.cfg.store.clone()
        },
        None => engine.cfg.store.clone(),
    };
    Store::new(&cfg, client.clone())
}

/// Transforms the batch (if a Lambda processor is configured), writes processing failures
/// to the error prefix, then delivers the rest. Returns once done; the caller's select drops
/// this future if the delivery stream stops meanwhile.
async fn deliver(
    engine: &DeliveryStreams,
    client: &HttpClient,
    meta: &DeliveryMeta,
    batch: &Batch<'_>,
) -> bool {
    let (s3, http, redshift) = match &meta.destination {
        Destination::ExtendedS3(v) => (
            Some(serde_json::from_value::<S3Destination>(v.clone()).unwrap_or_default()),
            None,
            None,
        ),
        Destination::HttpEndpoint(v) => (
            None,
            Some(serde_json::from_value::<HttpDestination>(v.clone()).unwrap_or_default()),
            None,
        ),
        Destination::Redshift(v) => (
            None,
            None,
            Some(serde_json::from_value::<RedshiftDestination>(v.clone()).unwrap_or_default()),
        ),
    };
    let processing = s3
        .as_ref()
        .and_then(|c| c.processing_configuration.clone())
        .or_else(|| {
            http.as_ref()
                .and_then(|c| c.processing_configuration.clone())
        })
        .or_else(|| {
            redshift
                .as_ref()
                .and_then(|c| c.processing_configuration.clone())
        });
    let error_bucket = s3
        .clone()
        .or_else(|| http.as_ref().and_then(|c| c.s3_configuration.clone()))
        .or_else(|| redshift.as_ref().and_then(|c| c.s3_configuration.clone()));
    // Source record backup: the records as they arrived, before any transformation.
    let backup = s3
        .as_ref()
        .and_then(|c| c.source_backup().cloned())
        .or_else(|| redshift.as_ref().and_then(|c| c.source_backup().cloned()));
    if let Some(b) = &backup {
        let compression = Compression::parse(b.compression_format.as_deref());
        let no_keys = (Keys::new(), Keys::new());
        let part = Batch {
            records: batch.records,
            seed: batch.seed ^ fnv("source-record-backup"),
        };
        if let Ok((key, object)) = s3_object(meta, b, &part, &no_keys, false, compression) {
            put_forever(engine, client, meta, b.bucket(), &key, object).await;
        }
    }
    let mut records = batch.records.to_vec();
    let m = &crate::metrics::global().firehose;
    if let Some(p) = &processing {
        let pre = processors::apply(p, records);
        if !pre.rejected.is_empty() {
            m.failed(
                &meta.name,
                destination_label(&meta.destination),
                pre.rejected.len(),
            );
            m.processing_failed(&meta.name, pre.rejected.len());
            for ty in ["decompression-failed", "processing-failed"] {
                let entries: Vec<ErrorEntry> = pre
                    .rejected
                    .iter()
                    .filter(|r| r.error_output_type == ty)
                    .map(|r| ErrorEntry {
                        record: &r.record,
                        code: &r.code,
                        message: &r.message,
                    })
                    .collect();
                if !entries.is_empty() {
                    write_errors(
                        engine,
                        client,
                        meta,
                        error_bucket.as_ref(),
                        batch,
                        &entries,
                        1,
                        ty,
                        ErrorKind::Processor,
                    )
                    .await;
                }
            }
        }
        records = pre.ok;
    }
    if let Some((arn, retries)) = processing.as_ref().and_then(|p| p.lambda()) {
        let url = transform::invoke_url(&arn, engine.cfg.lambda_endpoint.as_deref());
        let started = std::time::Instant::now();
        let t = transform::apply(
            client,
            meta,
            &engine.cfg.region,
            url.as_deref(),
            retries,
            batch.seed,
            &records,
        )
        .await;
        m.executed(
            &meta.name,
            t.invocations_failed == 0,
            started.elapsed().as_millis() as i64,
        );
        m.processing_succeeded(
            &meta.name,
            t.ok.len(),
            t.ok.iter().map(|r| r.data.len()).sum(),
        );
        if !t.failed.is_empty() {
            m.processing_failed(&meta.name, t.failed.len());
            crate::metrics::global().firehose.failed(
                &meta.name,
                destination_label(&meta.destination),
                t.failed.len(),
            );
            let entries: Vec<ErrorEntry> = t
                .failed
                .iter()
                .map(|f| ErrorEntry {
                    record: &f.record,
                    code: &f.code,
                    message: &f.message,
                })
                .collect();
            write_errors(
                engine,
                client,
                meta,
                error_bucket.as_ref(),
                batch,
                &entries,
                t.attempts,
                "processing-failed",
                ErrorKind::Lambda(&arn),
            )
            .await;
        }
        records = t.ok;
    }
    if records.is_empty() {
        return true;
    }
    let batch = Batch {
        records: &records,
        seed: batch.seed,
    };
    match (&s3, &http, &redshift) {
        (Some(c), _, _) => deliver_s3(engine, client, meta, c, &batch).await,
        (_, Some(c), _) => deliver_http(engine, client, meta, c, &batch).await,
        (_, _, Some(c)) => deliver_redshift(engine, client, meta, c, &batch).await,
        _ => true,
    }
}

/// Firehose's default quota of active partitions per delivery stream: records of further
/// partitions in a batch go to the error output.
const MAX_PARTITIONS: usize = 500;

/// The records of one object: its partition keys (query, Lambda) and records.
type Partition = ((Keys, Keys), Vec<Pending>);

/// Splits a batch by dynamic partition keys; records without usable keys are returned as
/// failures. Without dynamic partitioning, the batch is one partition.
fn partitions(
    c: &S3Destination,
    records: &[Pending],
) -> (Vec<Partition>, Vec<(Pending, String, String)>) {
    if !c.dynamic_partitioning() {
        return (
            vec![((Keys::new(), Keys::new()), records.to_vec())],
            Vec::new(),
        );
    }
    let prefix = Prefix::parse(c.prefix.as_deref().unwrap_or(""))
        .unwrap_or_else(|_| Prefix::parse("").expect("the empty prefix parses"));
    let (need_query, need_lambda) = prefix.key_names();
    let query = c
        .processing_configuration
        .as_ref()
        .and_then(|p| p.metadata_query());
    let extracted: Vec<Result<Keys, String>> = match &query {
        Some(q) => {
            let data: Vec<&[u8]> = records.iter().map(|r| &r.data[..]).collect();
            partition::extract(q, &data)
        }
        None => records.iter().map(|_| Ok(Keys::new())).collect(),
    };
    let mut groups: BTreeMap<(Keys, Keys), Vec<Pending>> = BTreeMap::new();
    let mut failed = Vec::new();
    for (r, keys) in records.iter().zip(extracted) {
        let fail = |code: &str, message: String| (r.clone(), code.to_string(), message);
        let q = match keys {
            Ok(k) => k,
            Err(e) => {
                failed.push(fail("DynamicPartitioning.MetadataExtractionFailed", e));
                continue;
            }
        };
        let l = r.lambda_keys.clone().unwrap_or_default();
        if let Some(k) = need_query.iter().find(|k| !q.contains_key(**k)) {
            failed.push(fail(
                "DynamicPartitioning.MetadataExtractionFailed",
                format!("The partition key {k} is missing from the jq query's result."),
            ));
            continue;
        }
        if let Some(k) = need_lambda.iter().find(|k| !l.contains_key(**k)) {
            failed.push(fail(
                "DynamicPartitioning.MetadataExtractionFailed",
                format!("The partition key {k} is missing from the Lambda function's metadata."),
            ));
            continue;
        }
        let key = (q, l);
        if !groups.contains_key(&key) && groups.len() >= MAX_PARTITIONS {
            failed.push(fail(
                "DynamicPartitioning.PartitionCountExceeded",
                format!("The batch has more than {MAX_PARTITIONS} active partitions."),
            ));
            continue;
        }
        groups.entry(key).or_default().push(r.clone());
    }
    (groups.into_iter().collect(), failed)
}

/// A seed for one partition's object: the batch's seed mixed with the partition's keys.
fn partition_seed(seed: u128, keys: &(Keys, Keys)) -> u128 {
    if keys.0.is_empty() && keys.1.is_empty() {
        return seed;
    }
    let text = serde_json::to_string(keys).unwrap_or_default();
    seed ^ fnv(&text)
}

fn fnv(text: &str) -> u128 {
    text.bytes()
        .fold(0x6c62_272e_07bb_0142_62b8_2175_6295_c58du128, |h, b| {
            (h ^ b as u128).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B)
        })
}

/// Writes the batch as one object per partition; retries each for 24 h, then drops it as
/// Firehose does. Records that cannot be partitioned go to the error output.
async fn deliver_s3(
    engine: &DeliveryStreams,
    client: &HttpClient,
    meta: &DeliveryMeta,
    c: &S3Destination,
    batch: &Batch<'_>,
) -> bool {
    let newline = c
        .processing_configuration
        .as_ref()
        .is_some_and(|p| p.appends_newline());
    let compression = Compression::parse(c.compression_format.as_deref());
    let started = std::time::Instant::now();
    let (groups, failed) = partitions(c, batch.records);
    let m = &crate::metrics::global().firehose;
    if c.dynamic_partitioning() {
        m.partitions(
            &meta.name,
            groups.len(),
            failed
                .iter()
                .any(|f| f.1 == "DynamicPartitioning.PartitionCountExceeded"),
            started.elapsed().as_millis() as i64,
        );
    }
    if !failed.is_empty() {
        crate::metrics::global()
            .firehose
            .failed(&meta.name, "S3", failed.len());
        let entries: Vec<ErrorEntry> = failed
            .iter()
            .map(|(r, code, message)| ErrorEntry {
                record: r,
                code,
                message,
            })
            .collect();
        write_errors(
            engine,
            client,
            meta,
            Some(c),
            batch,
            &entries,
            1,
            "processing-failed",
            ErrorKind::Partitioning,
        )
        .await;
    }
    let conversion = ConversionConfig::parse(c.data_format_conversion_configuration.as_ref());
    if let Some(conv) = &conversion {
        deliver_converted(engine, client, meta, c, conv, batch, &groups).await;
        return true;
    }
    for (keys, records) in &groups {
        let part = Batch {
            records,
            seed: partition_seed(batch.seed, keys),
        };
        let (key, object) = match s3_object(meta, c, &part, keys, newline, compression) {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(delivery_stream = %meta.name, error = %e, "Building the object failed; the batch is dropped.");
                continue;
            }
        };
        put_with_retries(engine, client, meta, c.bucket(), &key, object).await;
    }
    true
}

/// Record format conversion: each partition's records become one Parquet object; records
/// that cannot be converted go to the error output as `format-conversion-failed`.
async fn deliver_converted(
    engine: &DeliveryStreams,
    client: &HttpClient,
    meta: &DeliveryMeta,
    c: &S3Destination,
    conv: &ConversionConfig,
    batch: &Batch<'_>,
    groups: &[Partition],
) {
    let m = &crate::metrics::global().firehose;
    let (database, table) = conv.table();
    let converter =
        super::convert::load_table(engine.cfg.glue_catalog.as_deref(), &database, &table)
            .map(|columns| Converter::new(conv, columns));
    let mut failed: Vec<(Pending, String)> = Vec::new();
    for (keys, records) in groups {
        let converter = match &converter {
            Ok(c) => c,
            Err(e) => {
                failed.extend(records.iter().map(|r| (r.clone(), e.clone())));
                continue;
            }
        };
        let mut rows = super::convert::Shredded::default();
        let mut ok = Vec::new();
        for r in records {
            match converter.rows(&r.data) {
                Ok(x) => {
                    rows.append(x);
                    ok.push(r.clone());
                }
                Err(e) => failed.push((r.clone(), e)),
            }
        }
        if ok.is_empty() {
            continue;
        }
        m.conversion(
            &meta.name,
            true,
            ok.len(),
            ok.iter().map(|r| r.data.len()).sum(),
        );
        let part = Batch {
            records: &ok,
            seed: partition_seed(batch.seed, keys),
        };
        let object = match converter.write(&rows) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(delivery_stream = %meta.name, error = %e, "Writing the Parquet object failed; the batch is dropped.");
                continue;
            }
        };
        let (key, _) = match object_key(meta, c, &part, keys, ".parquet") {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(delivery_stream = %meta.name, error = %e, "Building the object key failed; the batch is dropped.");
                continue;
            }
        };
        put_with_retries(engine, client, meta, c.bucket(), &key, object).await;
    }
    if failed.is_empty() {
        return;
    }
    m.conversion(
        &meta.name,
        false,
        failed.len(),
        failed.iter().map(|(r, _)| r.data.len()).sum(),
    );
    m.failed(&meta.name, "S3", failed.len());
    let schema = conv.schema_configuration.clone().unwrap_or_default();
    let catalog_id = schema
        .catalog_id
        .unwrap_or_else(|| engine.cfg.account_id.clone());
    let region = schema.region.unwrap_or_else(|| engine.cfg.region.clone());
    let catalog = serde_json::json!({
        "catalogId": catalog_id,
        "databaseName": database,
        "tableName": table,
        "region": region,
        "versionId": schema.version_id.unwrap_or_else(|| "LATEST".into()),
        "catalogArn": format!("arn:aws:glue:{region}:{catalog_id}:catalog"),
    });
    let entries: Vec<ErrorEntry> = failed
        .iter()
        .map(|(r, message)| ErrorEntry {
            record: r,
            code: "DataFormatConversion.MalformedData",
            message,
        })
        .collect();
    write_errors(
        engine,
        client,
        meta,
        Some(c),
        batch,
        &entries,
        1,
        "format-conversion-failed",
        ErrorKind::Conversion(&catalog),
    )
    .await;
}

async fn put_with_retries(
    engine: &DeliveryStreams,
    client: &HttpClient,
    meta: &DeliveryMeta,
    bucket: &str,
    key: &str,
    object: Vec<u8>,
) {
    let first_failure = engine.clock.now_ms();
    let mut backoff = Backoff::new(engine);
    let m = &crate::metrics::global().firehose;
    loop {
        let result = match store_for(engine, meta, client) {
            Ok(store) => store.put(bucket, key, object.clone()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                m.attempt(&meta.name, "S3", true);
                return;
            }
            Err(e) => {
                m.attempt(&meta.name, "S3", false);
                if engine.clock.now_ms() - first_failure > S3_RETRY_MS {
                    tracing::error!(delivery_stream = %meta.name, key = %key, error = %e, "S3 delivery failed for 24 hours; the object is dropped, as in Firehose.");
                    return;
                }
                tracing::warn!(delivery_stream = %meta.name, key = %key, error = %e, "S3 delivery failed; retrying.");
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
}

/// Stages the batch in the S3 configuration, then COPYs it into the table, retrying for
/// `RetryOptions.DurationInSeconds` (default 3600). When that runs out, a Redshift manifest
/// naming the staged object is written under `errors/manifests/` for a manual backfill, as
/// Firehose does.
async fn deliver_redshift(
    engine: &DeliveryStreams,
    client: &HttpClient,
    meta: &DeliveryMeta,
    c: &RedshiftDestination,
    batch: &Batch<'_>,
) -> bool {
    let s3 = c.s3_configuration.clone().unwrap_or_default();
    let compression = Compression::parse(s3.compression_format.as_deref());
    let no_keys = (Keys::new(), Keys::new());
    let staged = match s3_object(meta, &s3, batch, &no_keys, false, compression) {
        Ok((key, object)) => {
            put_with_retries(engine, client, meta, s3.bucket(), &key, object).await;
            key
        }
        Err(e) => {
            tracing::error!(delivery_stream = %meta.name, error = %e, "Building the staging object failed.");
            String::new()
        }
    };
    let retry_ms = c
        .retry_options
        .as_ref()
        .and_then(|r| r.duration_in_seconds)
        .unwrap_or(postgres::DEFAULT_RETRY_S)
        * 1000;
    let rows: Vec<bytes::Bytes> = batch.records.iter().map(|r| r.data.clone()).collect();
    let m = &crate::metrics::global().firehose;
    let mut backoff = Backoff::new(engine);
    let started = engine.clock.now_ms();
    loop {
        match postgres::copy(c, &rows).await {
            Ok(n) => {
                m.attempt(&meta.name, "Redshift", true);
                tracing::debug!(delivery_stream = %meta.name, rows = n, "Copied a batch.");
                return true;
            }
            Err(e) => {
                m.attempt(&meta.name, "Redshift", false);
                tracing::warn!(delivery_stream = %meta.name, error = %e, "COPY failed.");
                let now = engine.clock.now_ms();
                if now - started >= retry_ms {
                    m.failed(&meta.name, "Redshift", batch.records.len());
                    let manifest = serde_json::json!({
                        "entries": [{"url": format!("s3://{}/{staged}", s3.bucket()), "mandatory": true}]
                    });
                    let name = staged.rsplit('/').next().unwrap_or("batch");
                    put_forever(
                        engine,
                        client,
                        meta,
                        s3.bucket(),
                        &format!("errors/manifests/{name}"),
                        serde_json::to_vec(&manifest).unwrap_or_default(),
                    )
                    .await;
                    return true;
                }
                let wait = backoff.next().min(Duration::from_millis(
                    (started + retry_ms - now).max(0) as u64,
                ));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The object key of a batch (and the object's file name), with `FileExtension` or else
/// `default_ext`.
fn object_key(
    meta: &DeliveryMeta,
    c: &S3Destination,
    batch: &Batch<'_>,
    keys: &(Keys, Keys),
    default_ext: &str,
) -> Result<(String, String), String> {
    let oldest = batch.oldest_ms();
    let prefix = Prefix::parse(c.prefix.as_deref().unwrap_or("")).map_err(|e| e.to_string())?;
    let ext = match c.file_extension.as_deref() {
        Some(e) if !e.is_empty() => e.to_string(),
        _ => default_ext.to_string(),
    };
    let name = prefix::object_name(&meta.name, meta.version_id, oldest, batch.seed, &ext);
    let key = format!(
        "{}{name}",
        prefix.evaluate_with(oldest, batch.seed, None, &keys.0, &keys.1)
    );
    Ok((key, name))
}

fn s3_object(
    meta: &DeliveryMeta,
    c: &S3Destination,
    batch: &Batch<'_>,
    keys: &(Keys, Keys),
    newline: bool,
    compression: Compression,
) -> Result<(String, Vec<u8>), String> {
    let (key, name) = object_key(meta, c, batch, keys, compression.extension())?;
    let object = compression
        .compress(&batch.body(newline), &name)
        .map_err(|e| e.to_string())?;
    Ok((key, object))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpRecord {
    data: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpRequestBody<'a> {
    request_id: &'a str,
    timestamp: i64,
    records: Vec<HttpRecord>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpResponseBody {
    request_id: Option<String>,
    #[allow(dead_code)]
    timestamp: Option<i64>,
    error_message: Option<String>,
}

/// One attempt's failure.
struct Failure {
    code: &'static str,
    message: String,
    /// 413: retrying the same request cannot succeed.
    permanent: bool,
}

/// POSTs the batch in the Firehose HTTP endpoint format until it is accepted or the retry
/// duration runs out; then the records go to the S3 error prefix.
async fn deliver_http(
    engine: &DeliveryStreams,
    client: &HttpClient,
    meta: &DeliveryMeta,
    c: &HttpDestination,
    batch: &Batch<'_>,
) -> bool {
    let m = &crate::metrics::global().firehose;
    // The same request id on every retry, so endpoints can drop duplicates.
    let request_id = prefix::uuid_from(batch.seed);
    let newline = c
        .processing_configuration
        .as_ref()
        .is_some_and(|p| p.appends_newline());
    let retry_ms = c
        .retry_options
        .as_ref()
        .and_then(|r| r.duration_in_seconds)
        .unwrap_or(DEFAULT_HTTP_RETRY_S)
        * 1000;
    let mut backoff = Backoff::new(engine);
    let mut attempts = 0u32;
    let mut first_failure: Option<i64> = None;
    let last = loop {
        attempts += 1;
        let result = http_attempt(engine, client, meta, c, batch, &request_id, newline).await;
        match result {
            Ok(()) => {
                m.attempt(&meta.name, "HttpEndpoint", true);
                if c.s3_backup_mode.as_deref() == Some("AllData") {
                    backup_all(engine, client, meta, c, batch).await;
                }
                return true;
            }
            Err(f) => {
                m.attempt(&meta.name, "HttpEndpoint", false);
                let now = engine.clock.now_ms();
                let started = *first_failure.get_or_insert(now);
                tracing::warn!(delivery_stream = %meta.name, attempt = attempts, error = %f.message, "HTTP endpoint delivery failed.");
                if f.permanent || now - started >= retry_ms {
                    break f;
                }
                // An attempt may start before the window closes; it is then let finish.
                let wait = backoff.next().min(Duration::from_millis(
                    (started + retry_ms - now).max(0) as u64,
                ));
                tokio::time::sleep(wait).await;
            }
        }
    };
    m.failed(&meta.name, "HttpEndpoint", batch.records.len());
    let entries: Vec<ErrorEntry> = batch
        .records
        .iter()
        .map(|r| ErrorEntry {
            record: r,
            code: last.code,
            message: &last.message,
        })
        .collect();
    write_errors(
        engine,
        client,
        meta,
        c.s3_configuration.as_ref(),
        batch,
        &entries,
        attempts,
        "http-endpoint-failed",
        ErrorKind::Http,
    )
    .await;
    true
}

async fn http_attempt(
    engine: &DeliveryStreams,
    client: &HttpClient,
    meta: &DeliveryMeta,
    c: &HttpDestination,
    batch: &Batch<'_>,
    request_id: &str,
    newline: bool,
) -> Result<(), Failure> {
    let fail = |code, message: String| Failure {
        code,
        message,
        permanent: false,
    };
    let endpoint = c.endpoint_configuration.clone().unwrap_or_default();
    let url = endpoint.url.unwrap_or_default();
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = HttpRequestBody {
        request_id,
        timestamp: engine.clock.now_ms(),
        records: batch
            .records
            .iter()
            .map(|r| {
                let mut data = r.data.to_vec();
                if newline {
                    data.push(b'\n');
                }
                HttpRecord {
                    data: b64.encode(data),
                }
            })
            .collect(),
    };
    let mut raw = serde_json::to_vec(&body).unwrap_or_default();
    let rc = c.request_configuration.clone().unwrap_or_default();
    let gzip = rc.content_encoding.as_deref() == Some("GZIP");
    if gzip {
        raw = Compression::Gzip
            .compress(&raw, "")
            .map_err(|e| fail("HttpEndpoint.InvalidRequest", e.to_string()))?;
    }
    let mut req = Request::post(url.as_str())
        .header("content-type", "application/json")
        .header("x-amz-firehose-protocol-version", "1.0")
        .header("x-amz-firehose-request-id", request_id)
        .header("x-amz-firehose-source-arn", meta.arn.as_str())
        .header("user-agent", "Tributary-Firehose/1.0");
    if gzip {
        req = req.header("content-encoding", "gzip");
    }
    if let Some(key) = &endpoint.access_key {
        req = req.header("x-amz-firehose-access-key", key.as_str());
    }
    if let Some(attrs) = &rc.common_attributes {
        let map: serde_json::Map<String, serde_json::Value> = attrs
            .iter()
            .map(|a| {
                (
                    a.attribute_name.clone().unwrap_or_default(),
                    serde_json::Value::String(a.attribute_value.clone().unwrap_or_default()),
                )
            })
            .collect();
        let header = serde_json::json!({ "commonAttributes": map }).to_string();
        req = req.header("x-amz-firehose-common-attributes", header);
    }
    let req = req
        .body(Full::new(Bytes::from(raw)))
        .map_err(|e| fail("HttpEndpoint.InvalidUrl", e.to_string()))?;
    let resp = client
        .send(req, HTTP_TIMEOUT, HTTP_MAX_RESPONSE)
        .await
        .map_err(|e| {
            fail(
                "HttpEndpoint.RequestTimeout",
                format!("The request to {url} failed: {e}"),
            )
        })?;
    if resp.status.as_u16() == 413 {
        return Err(Failure {
            code: "HttpEndpoint.PayloadTooLarge",
            message: "The endpoint answered 413 Request Entity Too Large.".into(),
            permanent: true,
        });
    }
    let parsed: Option<HttpResponseBody> = serde_json::from_slice(&resp.body).ok();
    if resp.status.as_u16() != 200 {
        let detail = parsed.and_then(|p| p.error_message).unwrap_or_else(|| {
            String::from_utf8_lossy(&resp.body)
                .chars()
                .take(512)
                .collect()
        });
        return Err(fail(
            "HttpEndpoint.DestinationException",
            format!(
                "The response received from the endpoint is invalid. HTTP status {}: {detail}",
                resp.status.as_u16()
            ),
        ));
    }
    match parsed {
        Some(p) if p.request_id.as_deref() == Some(request_id) => Ok(()),
        Some(_) => Err(fail(
            "HttpEndpoint.InvalidResponseFromDestination",
            "The response's requestId does not match the request's.".into(),
        )),
        None => Err(fail(
            "HttpEndpoint.InvalidResponseFromDestination",
            "The response received from the endpoint is not valid JSON.".into(),
        )),
    }
}

/// `S3BackupMode: AllData`: every delivered record is also written to the S3 configuration.
async fn backup_all(
    engine: &DeliveryStreams,
    client: &HttpClient,
    meta: &DeliveryMeta,
    c: &HttpDestination,
    batch: &Batch<'_>,
) {
    let Some(s3) = &c.s3_configuration else {
        return;
    };
    let compression = Compression::parse(s3.compression_format.as_deref());
    let no_keys = (Keys::new(), Keys::new());
    let Ok((key, object)) = s3_object(meta, s3, batch, &no_keys, false, compression) else {
        return;
    };
    put_forever(engine, client, meta, s3.bucket(), &key, object).await;
}

/// Which error-object layout to write.
#[derive(Clone, Copy)]
enum ErrorKind<'a> {
    /// HTTP endpoint delivery: `subsequenceNumber` and `dataId`.
    Http,
    /// Lambda processing: `lambdaArn`.
    Lambda(&'a str),
    /// Dynamic partitioning: the common members only.
    Partitioning,
    /// Decompression, message extraction and de-aggregation: the common members only.
    Processor,
    /// Record format conversion: `lastErrorCode`, `lastErrorMessage`, `sequenceNumber`,
    /// `subSequenceNumber` and `dataCatalogTable`.
    Conversion(&'a serde_json::Value),
}

impl ErrorKind<'_> {
    fn label(&self) -> &'static str {
        match self {
            ErrorKind::Http => "http",
            ErrorKind::Lambda(_) => "lambda",
            ErrorKind::Partitioning => "partitioning",
            ErrorKind::Processor => "processor",
            ErrorKind::Conversion(_) => "conversion",
        }
    }
}

/// A record that could not be processed or delivered.
struct ErrorEntry<'a> {
    record: &'a Pending,
    code: &'a str,
    message: &'a str,
}

/// One line of an error object in Firehose's layout for `kind`.
fn error_line(
    e: &ErrorEntry<'_>,
    kind: ErrorKind<'_>,
    attempts: u32,
    now: i64,
    stream_source: bool,
) -> serde_json::Value {
    let raw = base64::engine::general_purpose::STANDARD.encode(&e.record.data);
    let mut line = serde_json::json!({
        "attemptsMade": attempts,
        "arrivalTimestamp": e.record.arrival_ms,
        "errorCode": e.code,
        "errorMessage": e.message,
        "attemptEndingTimestamp": now,
        "rawData": raw,
    });
    let m = line.as_object_mut().expect("an object");
    match kind {
        ErrorKind::Http => {
            m.insert("subsequenceNumber".into(), 0.into());
            m.insert("dataId".into(), e.record.id.clone().into());
        }
        ErrorKind::Lambda(arn) => {
            m.insert("lambdaArn".into(), arn.into());
        }
        ErrorKind::Partitioning | ErrorKind::Processor => {}
        ErrorKind::Conversion(catalog) => {
            line = serde_json::json!({
                "attemptsMade": attempts,
                "arrivalTimestamp": e.record.arrival_ms,
                "lastErrorCode": e.code,
                "lastErrorMessage": e.message,
                "attemptEndingTimestamp": now,
                "rawData": raw,
                "sequenceNumber": stream_source.then(|| e.record.id.split('.').next().unwrap_or_default().to_string()),
                "subSequenceNumber": stream_source.then_some(0),
                "dataCatalogTable": catalog,
            });
        }
    }
    line
}

#[allow(clippy::too_many_arguments)]
async fn write_errors(
    engine: &DeliveryStreams,
    client: &HttpClient,
    meta: &DeliveryMeta,
    s3: Option<&S3Destination>,
    batch: &Batch<'_>,
    entries: &[ErrorEntry<'_>],
    attempts: u32,
    error_output_type: &str,
    kind: ErrorKind<'_>,
) {
    let Some(s3) = s3 else {
        tracing::error!(delivery_stream = %meta.name, "Records failed and no S3 configuration is set for them; they are dropped.");
        return;
    };
    let now = engine.clock.now_ms();
    let mut body = Vec::new();
    for e in entries {
        let line = error_line(e, kind, attempts, now, meta.kinesis.is_some());
        body.extend_from_slice(&serde_json::to_vec(&line).unwrap_or_default());
        body.push(b'\n');
    }
    let oldest = entries
        .iter()
        .map(|e| e.record.arrival_ms)
        .min()
        .unwrap_or_else(|| batch.oldest_ms());
    // Each error type and stage of a batch gets its own object, even under a prefix without
    // the error-output-type expression.
    let seed = batch.seed
        ^ format!("{error_output_type}/{}", kind.label())
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u128, |h, b| {
                (h ^ b as u128).wrapping_mul(0x1000_0000_01b3)
            });
    let configured = s3
        .error_output_prefix
        .as_deref()
        .and_then(|p| Prefix::parse(p).ok());
    let name = prefix::object_name(&meta.name, meta.version_id, oldest, seed, "");
    let key = format!(
        "{}{name}",
        prefix::error_prefix(configured.as_ref(), oldest, seed, error_output_type)
    );
    let compression = Compression::parse(s3.compression_format.as_deref());
    let Ok(object) = compression.compress(&body, &name) else {
        return;
    };
    put_forever(engine, client, meta, s3.bucket(), &key, object).await;
}

/// Error and backup objects are retried until written: Firehose blocks delivery rather than
/// lose them.
async fn put_forever(
    engine: &DeliveryStreams,
    client: &HttpClient,
    meta: &DeliveryMeta,
    bucket: &str,
    key: &str,
    object: Vec<u8>,
) {
    let mut backoff = Backoff::new(engine);
    loop {
        let result = match store_for(engine, meta, client) {
            Ok(store) => store.put(bucket, key, object.clone()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(delivery_stream = %meta.name, key = %key, error = %e, "Writing to S3 failed; retrying.");
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
}
