//! PutRecord, PutRecords, GetShardIterator, GetRecords.

use super::model::*;
use super::Kinesis;
use bytes::Bytes;

use crate::metrics;
use crate::protocol::{AwsError, Blob, Timestamp};
use crate::services::validate::{self, Validator, HASH_KEY_PATTERN, SEQUENCE_PATTERN};
use crate::storage::StoredRecord;
use crate::streams::{
    errors, parse_shard_id, seq, ChildShard, PutEntry, PutOutcome, StartPosition, Stream,
};

/// PutRecords takes at most 500 records and 5 MiB (data and partition keys) per call.
pub const PUT_RECORDS_MAX_RECORDS: usize = 500;
pub const PUT_RECORDS_MAX_BYTES: usize = 5 * 1024 * 1024;

fn is_hash_key(s: &str) -> bool {
    validate::is_decimal(s, 39)
}

fn is_sequence(s: &str) -> bool {
    validate::is_decimal(s, 129)
}

/// The hash key a record routes by: its ExplicitHashKey, or `None` for the MD5 of the
/// partition key, worked out when it is needed to route ([`PutEntry::hash_key`]).
fn route_key(explicit: Option<&str>) -> Result<Option<u128>, AwsError> {
    explicit
        .map(|e| {
            e.parse::<u128>().map_err(|_| {
                errors::invalid_argument(format!(
                    "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {e}"
                ))
            })
        })
        .transpose()
}

fn encryption_type(stream: &Stream) -> &'static str {
    if stream.state().encryption_key.is_some() {
        "KMS"
    } else {
        "NONE"
    }
}

/// Largest record (data + partition key) the stream accepts.
fn max_record_bytes(stream: &Stream) -> usize {
    stream.state().max_record_kib as usize * 1024
}

/// Stream and shard metrics of a put; `batch` marks PutRecords, whose per-entry outcomes have
/// their own series (CloudWatch PutRecords.SuccessfulRecords, FailedRecords, ThrottledRecords).
fn record_metrics(stream: &Stream, outcomes: &[PutOutcome], entries: &[PutEntry], batch: bool) {
    let m = metrics::global();
    let (mut ok, mut throttled, mut failed, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let enhanced = stream.state().enhanced_metrics.clone();
    for (o, e) in outcomes.iter().zip(entries) {
        match o {
            PutOutcome::Ok { shard_id, .. } => {
                ok += 1;
                let size = (e.data.len() + e.partition_key.len()) as u64;
                bytes += size;
                if enhanced.contains("IncomingBytes") {
                    m.shard_incoming_bytes
                        .with_label_values(&[&stream.name, &**shard_id])
                        .inc_by(size);
                }
                if enhanced.contains("IncomingRecords") {
                    m.shard_incoming_records
                        .with_label_values(&[&stream.name, &**shard_id])
                        .inc();
                }
            }
            PutOutcome::Failed { code, .. } if *code == errors::THROUGHPUT_EXCEEDED => {
                throttled += 1
            }
            PutOutcome::Failed { .. } => failed += 1,
        }
    }
    m.incoming_records
        .with_label_values(&[&stream.name])
        .inc_by(ok);
    m.incoming_bytes
        .with_label_values(&[&stream.name])
        .inc_by(bytes);
    if !batch {
        return;
    }
    let entries_metric = &m.put_records_entries;
    entries_metric
        .with_label_values(&[&stream.name, "success"])
        .inc_by(ok);
    entries_metric
        .with_label_values(&[&stream.name, "throttled"])
        .inc_by(throttled);
    entries_metric
        .with_label_values(&[&stream.name, "failed"])
        .inc_by(failed);
}

pub async fn put_record(k: &Kinesis, i: PutRecordInput) -> Result<PutRecordOutput, AwsError> {
    let mut v = Validator::new();
    v.string(
        "sequenceNumberForOrdering",
        i.sequence_number_for_ordering.as_deref(),
        Some((SEQUENCE_PATTERN, is_sequence)),
        0,
        usize::MAX,
    );
    v.not_null("partitionKey", &i.partition_key);
    v.string("partitionKey", i.partition_key.as_deref(), None, 1, 256);
    v.string(
        "explicitHashKey",
        i.explicit_hash_key.as_deref(),
        Some((HASH_KEY_PATTERN, is_hash_key)),
        0,
        usize::MAX,
    );
    v.not_null("data", &i.data);
    if let Some(d) = &i.data {
        v.blob("data", d.0.len(), 10 * 1024 * 1024);
    }
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    let stream = k
        .engine
        .resolve_for_data(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let pk = i.partition_key.unwrap_or_default();
    let data = i.data.unwrap_or_default().0;
    let max = max_record_bytes(&stream);
    if data.len() + pk.len() > max {
        return Err(record_too_large(&stream, data.len() + pk.len(), max));
    }
    if let Some(s) = &i.sequence_number_for_ordering {
        check_ordering_sequence(k, &stream, s, "PutRecord")?;
    }
    let hash = route_key(i.explicit_hash_key.as_deref())?;
    let entries = vec![PutEntry {
        partition_key: Bytes::from(pk.into_bytes()),
        data,
        hash,
    }];
    let outcomes = k.engine.put(&stream, &entries).await;
    record_metrics(&stream, &outcomes, &entries, false);
    match outcomes.into_iter().next() {
        Some(PutOutcome::Ok { shard_id, sequence }) => Ok(PutRecordOutput {
            shard_id: shard_id.to_string(),
            sequence_number: sequence.to_string(),
            encryption_type: encryption_type(&stream),
        }),
        Some(PutOutcome::Failed { code, message }) if code == errors::THROUGHPUT_EXCEEDED => {
            Err(AwsError::new(errors::THROUGHPUT_EXCEEDED, message))
        }
        _ => Err(AwsError::internal("")),
    }
}

fn record_too_large(stream: &Stream, size: usize, max: usize) -> AwsError {
    errors::invalid_argument(format!(
        "Record size {size} bytes exceeds the maximum record size of {max} bytes for stream {}.",
        stream.name
    ))
}

/// SequenceNumberForOrdering must be a sequence number this stream could have issued.
fn check_ordering_sequence(
    k: &Kinesis,
    stream: &Stream,
    s: &str,
    op: &str,
) -> Result<(), AwsError> {
    let ok = seq::parse(s)
        .and_then(seq::decode)
        .is_some_and(|(inc, _, _)| inc == stream.incarnation as u32);
    if ok || s == "0" {
        Ok(())
    } else {
        Err(errors::invalid_argument(format!(
            "ExclusiveMinimumSequenceNumber {s} used in {op} on stream {} under account {} is invalid.",
            stream.name,
            k.account()
        )))
    }
}

pub async fn put_records(k: &Kinesis, i: PutRecordsInput) -> Result<PutRecordsReply, AwsError> {
    let mut v = Validator::new();
    v.not_null("records", &i.records);
    if let Some(records) = &i.records {
        let rendered = || {
            let items: Vec<String> = records
                .iter()
                .map(|_| {
                    "com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310".to_string()
                })
                .collect();
            format!("[{}]", items.join(", "))
        };
        if records.is_empty() || records.len() > PUT_RECORDS_MAX_RECORDS {
            v.count(
                "records",
                &rendered(),
                records.len(),
                1,
                PUT_RECORDS_MAX_RECORDS,
            );
        }
        for (n, r) in records.iter().enumerate() {
            // Field paths are only formatted for a record that fails a check.
            let pk_ok = r
                .partition_key
                .as_deref()
                // A key of at most 256 bytes has at most 256 characters: only longer ones
                // are counted.
                .is_some_and(|pk| !pk.is_empty() && (pk.len() <= 256 || pk.chars().count() <= 256));
            let ehk_ok = r.explicit_hash_key.as_deref().is_none_or(is_hash_key);
            let data_ok = r
                .data
                .as_ref()
                .is_some_and(|d| d.0.len() <= 10 * 1024 * 1024);
            if pk_ok && ehk_ok && data_ok {
                continue;
            }
            let p = |f: &str| format!("records.{}.member.{f}", n + 1);
            v.not_null(&p("partitionKey"), &r.partition_key);
            v.string(&p("partitionKey"), r.partition_key.as_deref(), None, 1, 256);
            v.string(
                &p("explicitHashKey"),
                r.explicit_hash_key.as_deref(),
                Some((HASH_KEY_PATTERN, is_hash_key)),
                0,
                usize::MAX,
            );
            v.not_null(&p("data"), &r.data);
            if let Some(d) = &r.data {
                v.blob(&p("data"), d.0.len(), 10 * 1024 * 1024);
            }
        }
    }
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    let stream = k
        .engine
        .resolve_for_data(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let records = i.records.unwrap_or_default();
    let max = max_record_bytes(&stream);
    let mut total = 0usize;
    let mut entries = Vec::with_capacity(records.len());
    for r in records {
        let pk = r.partition_key.unwrap_or_default();
        let data = r.data.unwrap_or_default().0;
        let size = data.len() + pk.len();
        if size > max {
            return Err(record_too_large(&stream, size, max));
        }
        total += size;
        let hash = route_key(r.explicit_hash_key.as_deref())?;
        entries.push(PutEntry {
            partition_key: Bytes::from(pk.0),
            data,
            hash,
        });
    }
    // The 5 MiB request limit grows with the stream's maximum record size (a single 10 MiB
    // record must fit in a request).
    let limit = PUT_RECORDS_MAX_BYTES.max(max);
    if total > limit {
        return Err(errors::invalid_argument(format!(
            "Records size {total} bytes exceeds the maximum request size of {limit} bytes."
        )));
    }
    let outcomes = k.engine.put(&stream, &entries).await;
    record_metrics(&stream, &outcomes, &entries, true);
    Ok(PutRecordsReply::new(outcomes, encryption_type(&stream)))
}

/// PutRecords' output. In JSON it is written straight from the outcomes: the records of one
/// shard have consecutive sequence numbers, so each number is formatted once per shard and
/// then incremented in place, and shard ids are not copied per record. CBOR goes through serde.
pub struct PutRecordsReply {
    outcomes: Vec<PutOutcome>,
    encryption_type: &'static str,
}

impl PutRecordsReply {
    /// The reply for `outcomes`, one per record in the request's order. Public so that the
    /// benchmark's ceiling answers with the same encoder as `put_records`.
    pub fn new(outcomes: Vec<PutOutcome>, encryption_type: &'static str) -> PutRecordsReply {
        PutRecordsReply {
            outcomes,
            encryption_type,
        }
    }

    fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, PutOutcome::Failed { .. }))
            .count()
    }

    fn output(&self) -> PutRecordsOutput {
        let records = self
            .outcomes
            .iter()
            .map(|o| match o {
                PutOutcome::Ok { shard_id, sequence } => PutRecordsResultEntry {
                    sequence_number: Some(sequence.to_string()),
                    shard_id: Some(shard_id.to_string()),
                    error_code: None,
                    error_message: None,
                },
                PutOutcome::Failed { code, message } => PutRecordsResultEntry {
                    sequence_number: None,
                    shard_id: None,
                    error_code: Some(code),
                    error_message: Some(message.clone()),
                },
            })
            .collect();
        PutRecordsOutput {
            failed_record_count: self.failed(),
            records,
            encryption_type: self.encryption_type,
        }
    }

    /// The JSON body, byte for byte what serde writes for [`PutRecordsOutput`].
    fn json(&self) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::with_capacity(64 + self.outcomes.len() * 100);
        let _ = write!(
            out,
            "{{\"FailedRecordCount\":{},\"Records\":[",
            self.failed()
        );
        // Per shard: its quoted id and the last sequence number written, with its digits.
        struct Shard {
            id: std::sync::Arc<str>,
            quoted: Vec<u8>,
            last: u128,
            digits: Vec<u8>,
        }
        let mut shards: Vec<Shard> = Vec::new();
        for (i, o) in self.outcomes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match o {
                PutOutcome::Ok { shard_id, sequence } => {
                    let k = match shards
                        .iter()
                        .position(|s| std::sync::Arc::ptr_eq(&s.id, shard_id))
                    {
                        Some(k) => k,
                        None => {
                            let mut quoted = Vec::new();
                            let _ = serde_json::to_writer(&mut quoted, &**shard_id);
                            shards.push(Shard {
                                id: shard_id.clone(),
                                quoted,
                                last: 0,
                                digits: Vec::new(),
                            });
                            shards.len() - 1
                        }
                    };
                    let s = &mut shards[k];
                    if !s.digits.is_empty() && s.last.checked_add(1) == Some(*sequence) {
                        increment_decimal(&mut s.digits);
                    } else {
                        s.digits.clear();
                        let _ = write!(s.digits, "{sequence}");
                    }
                    s.last = *sequence;
                    out.extend_from_slice(b"{\"SequenceNumber\":\"");
                    out.extend_from_slice(&s.digits);
                    out.extend_from_slice(b"\",\"ShardId\":");
                    out.extend_from_slice(&s.quoted);
                    out.push(b'}');
                }
                PutOutcome::Failed { code, message } => {
                    out.extend_from_slice(b"{\"ErrorCode\":");
                    let _ = serde_json::to_writer(&mut out, code);
                    out.extend_from_slice(b",\"ErrorMessage\":");
                    let _ = serde_json::to_writer(&mut out, message);
                    out.push(b'}');
                }
            }
        }
        out.extend_from_slice(b"],\"EncryptionType\":");
        let _ = serde_json::to_writer(&mut out, self.encryption_type);
        out.push(b'}');
        out
    }
}

impl crate::services::Encode for PutRecordsReply {
    fn encode(&self, protocol: crate::protocol::Protocol) -> Bytes {
        match protocol {
            crate::protocol::Protocol::Cbor => {
                crate::protocol::codec::encode(protocol, &self.output())
            }
            crate::protocol::Protocol::Json => Bytes::from(self.json()),
        }
    }
}

const ITERATOR_TYPES: [&str; 5] = [
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
    "LATEST",
    "AT_TIMESTAMP",
];

pub async fn get_shard_iterator(
    k: &Kinesis,
    i: GetShardIteratorInput,
) -> Result<GetShardIteratorOutput, AwsError> {
    let mut v = Validator::new();
    v.not_null("shardId", &i.shard_id);
    v.stream_name("shardId", i.shard_id.as_deref());
    v.not_null("shardIteratorType", &i.shard_iterator_type);
    v.enumeration(
        "shardIteratorType",
        i.shard_iterator_type.as_deref(),
        &ITERATOR_TYPES,
    );
    v.string(
        "startingSequenceNumber",
        i.starting_sequence_number.as_deref(),
        Some((SEQUENCE_PATTERN, is_sequence)),
        0,
        usize::MAX,
    );
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    let account = k.account().to_string();
    let raw_shard = i.shard_id.clone().unwrap_or_default();
    let display_name = i
        .stream_name
        .clone()
        .or_else(|| {
            i.stream_arn
                .as_deref()
                .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        })
        .unwrap_or_default();
    let index = parse_shard_id(&raw_shard)
        .ok_or_else(|| errors::could_not_find_shard(&raw_shard, &display_name, &account))?;
    let shard_name = crate::streams::shard_id(index);
    let stream = k
        .engine
        .resolve_for_data(i.stream_name.as_deref(), i.stream_arn.as_deref())
        .map_err(|e| {
            if e.code == errors::RESOURCE_NOT_FOUND {
                errors::shard_does_not_exist(&shard_name, &display_name, &account)
            } else {
                e
            }
        })?;
    let shard = stream
        .shard(index)
        .ok_or_else(|| errors::shard_does_not_exist(&shard_name, &stream.name, &account))?;
    let ty = i.shard_iterator_type.as_deref().unwrap_or_default();
    let seq_raw = i.starting_sequence_number.as_deref();
    let must_either = |suffix: &str| {
        errors::invalid_argument(format!(
            "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {ty} and {suffix}."
        ))
    };
    let parse_seq = |s: &str| {
        seq::parse(s).ok_or_else(|| {
            errors::invalid_argument(format!(
                "StartingSequenceNumber {s} used in GetShardIterator on shard {} in stream {} under account {account} is invalid.",
                shard.id, stream.name
            ))
        })
    };
    let position = match ty {
        "TRIM_HORIZON" | "LATEST" if seq_raw.is_some() => {
            return Err(must_either("also a StartingSequenceNumber"))
        }
        "TRIM_HORIZON" => StartPosition::TrimHorizon,
        "LATEST" => StartPosition::Latest,
        "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER" => {
            let s = seq_raw.ok_or_else(|| must_either("no StartingSequenceNumber"))?;
            let n = parse_seq(s)?;
            if ty == "AT_SEQUENCE_NUMBER" {
                StartPosition::AtSequence(n)
            } else {
                StartPosition::AfterSequence(n)
            }
        }
        _ => match i.timestamp {
            Some(Timestamp(ms)) => StartPosition::AtTimestamp(ms),
            None => {
                return Err(errors::invalid_argument(
                    "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.",
                ))
            }
        },
    };
    let iterator = k
        .engine
        .shard_iterator(&stream, &shard, position, seq_raw)?;
    Ok(GetShardIteratorOutput {
        shard_iterator: iterator,
    })
}

pub async fn get_records(k: &Kinesis, i: GetRecordsInput) -> Result<GetRecordsReply, AwsError> {
    let mut v = Validator::new();
    v.range("limit", i.limit, 1, 10_000);
    v.not_null("shardIterator", &i.shard_iterator);
    v.string("shardIterator", i.shard_iterator.as_deref(), None, 1, 512);
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    let limit = i.limit.unwrap_or(10_000) as usize;
    let out = k
        .engine
        .get_records(i.shard_iterator.as_deref().unwrap_or_default(), limit)
        .await?;
    get_records_metrics(&out);
    Ok(GetRecordsReply(out))
}

/// The model shape of a GetRecords answer (what CBOR serializes through serde).
fn get_records_output(out: &crate::streams::RecordsOut) -> GetRecordsOutput {
    GetRecordsOutput {
        records: records_out(&out.records),
        next_shard_iterator: out.next_iterator.clone(),
        millis_behind_latest: out.millis_behind_latest,
        child_shards: child_shards_out(out.child_shards.as_deref()),
    }
}

fn records_out(records: &[(u128, StoredRecord)]) -> Vec<RecordOut> {
    records
        .iter()
        .map(|(sequence, r)| RecordOut {
            sequence_number: sequence.to_string(),
            approximate_arrival_timestamp: Timestamp(r.arrival_ms),
            data: Blob(r.data.clone()),
            partition_key: r.partition_key.to_string(),
            encryption_type: Some(if r.encrypted { "KMS" } else { "NONE" }),
        })
        .collect()
}

fn child_shards_out(children: Option<&[ChildShard]>) -> Option<Vec<ChildShardOut>> {
    children.map(|cs| {
        cs.iter()
            .map(|c| ChildShardOut {
                shard_id: c.shard_id.clone(),
                parent_shards: c.parents.clone(),
                hash_key_range: HashKeyRange {
                    starting_hash_key: c.start_hash.to_string(),
                    ending_hash_key: c.end_hash.to_string(),
                },
            })
            .collect()
    })
}

fn get_records_metrics(out: &crate::streams::RecordsOut) {
    let m = metrics::global();
    let name = out.stream.name.as_str();
    let shard = out.shard.id.as_str();
    let n = out.records.len() as u64;
    let age = out.millis_behind_latest;
    m.get_records_records.with_label_values(&[name]).inc_by(n);
    m.get_records_bytes
        .with_label_values(&[name])
        .inc_by(out.bytes as u64);
    m.iterator_age_ms.with_label_values(&[name]).set(age);
    let enhanced = out.stream.state().enhanced_metrics.clone();
    if enhanced.contains("OutgoingBytes") {
        m.shard_outgoing_bytes
            .with_label_values(&[name, shard])
            .inc_by(out.bytes as u64);
    }
    if enhanced.contains("OutgoingRecords") {
        m.shard_outgoing_records
            .with_label_values(&[name, shard])
            .inc_by(n);
    }
    if enhanced.contains("IteratorAgeMilliseconds") {
        m.shard_iterator_age_ms
            .with_label_values(&[name, shard])
            .set(age);
    }
}

/// GetRecords' output. In JSON it is written straight from the engine's records into the
/// response buffer: sequence numbers and base64 go directly into place, with no per-record
/// strings, since a response can hold 10,000 records and 10 MiB of data. CBOR goes through
/// serde.
pub struct GetRecordsReply(pub crate::streams::RecordsOut);

impl crate::services::Encode for GetRecordsReply {
    fn encode(&self, protocol: crate::protocol::Protocol) -> Bytes {
        match protocol {
            crate::protocol::Protocol::Cbor => {
                crate::protocol::codec::encode(protocol, &get_records_output(&self.0))
            }
            crate::protocol::Protocol::Json => Bytes::from(get_records_json(
                &self.0.records,
                self.0.next_iterator.as_deref(),
                self.0.millis_behind_latest,
                child_shards_out(self.0.child_shards.as_deref()),
            )),
        }
    }
}

fn get_records_json(
    records: &[(u128, StoredRecord)],
    next_iterator: Option<&str>,
    millis_behind_latest: i64,
    child_shards: Option<Vec<ChildShardOut>>,
) -> Vec<u8> {
    use std::io::Write;
    let size: usize = records
        .iter()
        .map(|(_, r)| r.data.len() * 4 / 3 + r.partition_key.len() + 160)
        .sum();
    let mut out = Vec::with_capacity(size + 1024);
    // Records of one response mostly have consecutive sequence numbers and share their batch's
    // arrival time, so both are formatted once and then reused (the digits incremented in
    // place).
    let mut seq_text: Vec<u8> = Vec::with_capacity(48);
    let mut last_seq: Option<u128> = None;
    let mut time_text: Vec<u8> = Vec::with_capacity(24);
    let mut last_ms: Option<i64> = None;
    out.extend_from_slice(b"{\"Records\":[");
    for (i, (sequence, r)) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"SequenceNumber\":\"");
        if last_seq.is_some_and(|l| l.checked_add(1) == Some(*sequence)) {
            increment_decimal(&mut seq_text);
        } else {
            seq_text.clear();
            let _ = write!(seq_text, "{sequence}");
        }
        last_seq = Some(*sequence);
        out.extend_from_slice(&seq_text);
        out.extend_from_slice(b"\",\"ApproximateArrivalTimestamp\":");
        if last_ms != Some(r.arrival_ms) {
            time_text.clear();
            let _ = serde_json::to_writer(&mut time_text, &Timestamp(r.arrival_ms));
            last_ms = Some(r.arrival_ms);
        }
        out.extend_from_slice(&time_text);
        out.extend_from_slice(b",\"Data\":\"");
        // Encoded straight into the spare capacity: no zeroing of what it overwrites.
        base64_simd::STANDARD.encode_append(&r.data, &mut out);
        out.extend_from_slice(b"\",\"PartitionKey\":");
        let _ = serde_json::to_writer(&mut out, &*r.partition_key);
        out.extend_from_slice(if r.encrypted {
            b",\"EncryptionType\":\"KMS\"}"
        } else {
            b",\"EncryptionType\":\"NONE\"}"
        });
    }
    out.push(b']');
    if let Some(it) = next_iterator {
        out.extend_from_slice(b",\"NextShardIterator\":");
        let _ = serde_json::to_writer(&mut out, it);
    }
    out.extend_from_slice(b",\"MillisBehindLatest\":");
    let _ = write!(out, "{millis_behind_latest}");
    if let Some(children) = &child_shards {
        out.extend_from_slice(b",\"ChildShards\":");
        let _ = serde_json::to_writer(&mut out, children);
    }
    out.push(b'}');
    out
}

/// Adds one to a non-negative decimal number written in ASCII digits.
fn increment_decimal(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_records_json_matches_serde_byte_for_byte() {
        use std::sync::Arc;
        let a: Arc<str> = Arc::from("shardId-000000000000");
        let b: Arc<str> = Arc::from("shardId-000000000001");
        let seq = |shard: u32, offset: u64| crate::streams::seq::encode(0xfeed, shard, offset);
        let outcomes = vec![
            PutOutcome::Ok {
                shard_id: a.clone(),
                sequence: seq(0, 9),
            },
            PutOutcome::Ok {
                shard_id: b.clone(),
                sequence: seq(1, 99),
            },
            PutOutcome::Ok {
                shard_id: a.clone(),
                sequence: seq(0, 10),
            },
            PutOutcome::Failed {
                code: errors::THROUGHPUT_EXCEEDED,
                message: "Rate exceeded for \"shard\"".into(),
            },
            PutOutcome::Ok {
                shard_id: b.clone(),
                sequence: seq(1, 100),
            },
            PutOutcome::Ok {
                shard_id: a.clone(),
                sequence: seq(0, 19),
            },
            // Another Arc with the same id (a put retried after a reshard).
            PutOutcome::Ok {
                shard_id: Arc::from("shardId-000000000000"),
                sequence: seq(0, 20),
            },
        ];
        for encryption_type in ["NONE", "KMS"] {
            let reply = PutRecordsReply {
                outcomes: outcomes.clone(),
                encryption_type,
            };
            let serde = serde_json::to_vec(&reply.output()).unwrap();
            assert_eq!(
                String::from_utf8(reply.json()).unwrap(),
                String::from_utf8(serde).unwrap()
            );
        }
        let empty = PutRecordsReply {
            outcomes: Vec::new(),
            encryption_type: "NONE",
        };
        assert_eq!(empty.json(), serde_json::to_vec(&empty.output()).unwrap());
    }

    #[test]
    fn decimal_increments_carry() {
        for n in [
            0u128,
            8,
            9,
            99,
            1299,
            49_999_999_999_999_999_999_999_999_999_999_999_999,
        ] {
            let mut d = n.to_string().into_bytes();
            increment_decimal(&mut d);
            assert_eq!(d, (n + 1).to_string().into_bytes());
        }
    }

    #[test]
    fn consecutive_records_share_formatted_sequences_and_times() {
        let rec = |offset: u64, ms: i64| StoredRecord {
            offset,
            arrival_ms: ms,
            partition_key: format!("k{offset}").into(),
            data: Bytes::from(vec![offset as u8; offset as usize % 7]),
            encrypted: false,
        };
        let base = 49_000_000_000_000_000_000_000_000_000_000_000_000u128;
        let records: Vec<(u128, StoredRecord)> = [
            (base + 8, 1_764_140_000_100),
            (base + 9, 1_764_140_000_100),
            (base + 10, 1_764_140_000_100),
            (base + 99, 1_764_140_000_100),
            (base + 100, 1_764_140_001_000),
            (base + 101, 1_764_140_001_000),
            (7, 1_764_140_001_007),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (seq, ms))| (seq, rec(i as u64, ms)))
        .collect();
        let fast: serde_json::Value =
            serde_json::from_slice(&get_records_json(&records, Some("it"), 0, None)).unwrap();
        let slow = serde_json::to_value(GetRecordsOutput {
            records: records_out(&records),
            next_shard_iterator: Some("it".into()),
            millis_behind_latest: 0,
            child_shards: None,
        })
        .unwrap();
        assert_eq!(fast, slow);
    }

    #[test]
    fn hand_written_get_records_json_matches_serde() {
        let records = vec![
            (
                4u128,
                StoredRecord {
                    offset: 3,
                    arrival_ms: 1_764_140_000_123,
                    partition_key: "k\"ey\u{e9}".into(),
                    data: Bytes::from_static(b"\x00\xffhello"),
                    encrypted: false,
                },
            ),
            (
                49_000_000_000_000_000_000_000_000_000_000_000_005u128,
                StoredRecord {
                    offset: 4,
                    arrival_ms: 1_764_140_000_000,
                    partition_key: "p".into(),
                    data: Bytes::new(),
                    encrypted: true,
                },
            ),
        ];
        let children = || {
            vec![ChildShardOut {
                shard_id: "shardId-000000000001".into(),
                parent_shards: vec!["shardId-000000000000".into()],
                hash_key_range: HashKeyRange {
                    starting_hash_key: "0".into(),
                    ending_hash_key: "9".into(),
                },
            }]
        };
        let fast: serde_json::Value = serde_json::from_slice(&get_records_json(
            &records,
            Some("it"),
            12,
            Some(children()),
        ))
        .unwrap();
        let slow = serde_json::to_value(GetRecordsOutput {
            records: records_out(&records),
            next_shard_iterator: Some("it".into()),
            millis_behind_latest: 12,
            child_shards: Some(children()),
        })
        .unwrap();
        assert_eq!(fast, slow);
        let closed: serde_json::Value =
            serde_json::from_slice(&get_records_json(&[], None, 0, None)).unwrap();
        let slow = serde_json::to_value(GetRecordsOutput {
            records: Vec::new(),
            next_shard_iterator: None,
            millis_behind_latest: 0,
            child_shards: None,
        })
        .unwrap();
        assert_eq!(closed, slow);
    }
}
