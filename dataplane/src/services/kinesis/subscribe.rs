//! SubscribeToShard: enhanced fan-out over an AWS event stream.
//!
//! The response is `application/vnd.amazon.eventstream`: an `initial-response` event first (the
//! operation's empty output, which the Go, Kotlin and C++ SDKs wait for), then
//! `SubscribeToShardEvent`s carrying Records, ContinuationSequenceNumber, MillisBehindLatest and,
//! at the end of a closed shard, ChildShards. While idle an empty event goes out every 5
//! seconds. A subscription lasts 5 minutes, is paced at 2 MiB/s, and a newer subscription for the
//! same consumer and shard (5 or more seconds later) takes over. Errors found before the stream
//! starts are ordinary 400 responses; later ones are exception events.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::model::{ChildShardOut, HashKeyRange, RecordOut};
use super::Kinesis;
use crate::protocol::eventstream::Message;
use crate::protocol::{codec, AwsError, Blob, Protocol, Timestamp};
use crate::services::validate::{Validator, SEQUENCE_PATTERN};
use crate::services::{CallResult, Reply};
use crate::streams::limits::TokenBucket;
use crate::streams::stream::MIB;
use crate::streams::{
    errors, parse_shard_id, ConsumerStatus, Shard, StartPosition, Stream, Streams,
};

/// An event goes out at least this often, empty if there is nothing new.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Records per event, as GetRecords.
const MAX_RECORDS: usize = 10_000;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct StartingPosition {
    #[serde(rename = "Type")]
    pub position_type: Option<String>,
    pub sequence_number: Option<String>,
    pub timestamp: Option<Timestamp>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeInput {
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: Option<String>,
    pub shard_id: Option<String>,
    pub starting_position: Option<StartingPosition>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Event {
    records: Vec<RecordOut>,
    continuation_sequence_number: String,
    millis_behind_latest: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    child_shards: Option<Vec<ChildShardOut>>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct ExceptionBody<'a> {
    message: &'a str,
}

const POSITION_TYPES: [&str; 5] = [
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
    "LATEST",
    "AT_TIMESTAMP",
];

fn is_sequence(s: &str) -> bool {
    crate::services::validate::is_decimal(s, 129)
}

pub async fn subscribe_to_shard(k: &Kinesis, protocol: Protocol, body: &[u8]) -> CallResult {
    let i: SubscribeInput = codec::decode(protocol, body)?;
    let mut v = Validator::new();
    v.not_null("consumerARN", &i.consumer_arn);
    v.string("consumerARN", i.consumer_arn.as_deref(), None, 1, 2048);
    v.not_null("shardId", &i.shard_id);
    v.stream_name("shardId", i.shard_id.as_deref());
    v.not_null("startingPosition", &i.starting_position);
    if let Some(p) = &i.starting_position {
        v.not_null("startingPosition.type", &p.position_type);
        v.enumeration(
            "startingPosition.type",
            p.position_type.as_deref(),
            &POSITION_TYPES,
        );
        v.string(
            "startingPosition.sequenceNumber",
            p.sequence_number.as_deref(),
            Some((SEQUENCE_PATTERN, is_sequence)),
            0,
            usize::MAX,
        );
    }
    v.finish()?;
    let engine = k.engine.clone();
    let account = k.account().to_string();
    let arn = i.consumer_arn.unwrap_or_default();
    let not_found = || {
        AwsError::new(
            errors::RESOURCE_NOT_FOUND,
            format!("Consumer {arn} under account {account} not found."),
        )
    };
    let stream_arn = arn.split("/consumer/").next().unwrap_or_default();
    let stream = engine
        .resolve(None, Some(stream_arn))
        .map_err(|_| not_found())?;
    let consumer = stream
        .state()
        .consumers
        .iter()
        .find(|c| c.arn == arn)
        .cloned()
        .ok_or_else(not_found)?;
    if consumer.status != ConsumerStatus::Active {
        return Err(errors::in_use(format!(
            "Consumer {arn} under account {account} is not ACTIVE."
        )));
    }
    if !stream.status().serves_data() {
        return Err(errors::in_use(format!(
            "Stream {} under account {account} is not ACTIVE.",
            stream.name
        )));
    }
    let raw_shard = i.shard_id.unwrap_or_default();
    let shard = parse_shard_id(&raw_shard)
        .and_then(|idx| stream.shard(idx))
        .ok_or_else(|| errors::could_not_find_shard(&raw_shard, &stream.name, &account))?;
    let p = i.starting_position.unwrap_or_default();
    let raw_seq = p.sequence_number.as_deref();
    let parse = |s: Option<&str>| {
        s.and_then(crate::streams::seq::parse).ok_or_else(|| {
            errors::invalid_argument(format!(
                "StartingSequenceNumber {} used in SubscribeToShard on shard {} in stream {} under account {account} is invalid.",
                s.unwrap_or("null"),
                shard.id,
                stream.name
            ))
        })
    };
    let position = match p.position_type.as_deref().unwrap_or_default() {
        "AT_SEQUENCE_NUMBER" => StartPosition::AtSequence(parse(raw_seq)?),
        "AFTER_SEQUENCE_NUMBER" => StartPosition::AfterSequence(parse(raw_seq)?),
        "TRIM_HORIZON" => StartPosition::TrimHorizon,
        "LATEST" => StartPosition::Latest,
        _ => StartPosition::AtTimestamp(p.timestamp.map(|t| t.0).ok_or_else(|| {
            errors::invalid_argument(
                "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.",
            )
        })?),
    };
    let offset = engine.start_offset(&stream, &shard, position, raw_seq)?;
    let generation =
        engine
            .subscriptions
            .begin(&arn, shard.index, &shard.id, engine.clock.now_ms())?;
    let (tx, rx) = mpsc::channel(2);
    let sub = Subscription {
        engine,
        stream,
        shard,
        consumer_arn: arn,
        consumer_name: consumer.name,
        generation,
        protocol,
        tx,
    };
    tokio::spawn(sub.run(offset));
    Ok(Reply::EventStream(rx))
}

struct Subscription {
    engine: Arc<Streams>,
    stream: Arc<Stream>,
    shard: Arc<Shard>,
    consumer_arn: String,
    consumer_name: String,
    generation: u64,
    protocol: Protocol,
    tx: mpsc::Sender<Bytes>,
}

impl Subscription {
    async fn send(&self, msg: Message) -> bool {
        match msg.encode() {
            Ok(frame) => self.tx.send(frame).await.is_ok(),
            Err(e) => {
                tracing::error!(error = %e, "Could not encode an event.");
                false
            }
        }
    }

    fn still_subscribed(&self) -> bool {
        self.engine
            .subscriptions
            .is_current(&self.consumer_arn, self.shard.index, self.generation)
            && self
                .stream
                .state()
                .consumers
                .iter()
                .any(|c| c.arn == self.consumer_arn)
    }

    /// Pumps events until the shard ends, the lifetime runs out, the client goes away, or a
    /// newer subscription takes over.
    async fn run(self, mut offset: u64) {
        let ct = self.protocol.content_type();
        let initial = codec::encode(self.protocol, &Empty {});
        if !self
            .send(Message::event("initial-response", ct, initial))
            .await
        {
            return self.finish();
        }
        let clock = self.engine.clock.clone();
        let started = tokio::time::Instant::now();
        // A subscription ends after five minutes (configurable for tests); the client
        // subscribes again from its ContinuationSequenceNumber.
        let deadline = started + Duration::from_millis(self.engine.cfg.subscription_lifetime_ms);
        let mut last_event = tokio::time::Instant::now();
        // Subscriptions run at the shard's owner (start_offset forwards them there).
        let Some(shard_log) = self.shard.log.clone() else {
            return self.finish();
        };
        let mut tip = shard_log.watch_tip();
        let pace = TokenBucket::new(2.0 * MIB, 2.0 * MIB, clock.now_ms());
        let limits = self.engine.cfg.limits;
        let m = crate::metrics::global();
        let labels = [self.stream.name.as_str(), self.consumer_name.as_str()];
        m.subscribe_to_shard_active.inc();
        loop {
            if !self.still_subscribed() || tokio::time::Instant::now() >= deadline {
                break;
            }
            if !self.stream.status().serves_data() {
                let msg = format!("Stream {} is being deleted.", self.stream.name);
                let body = codec::encode(self.protocol, &ExceptionBody { message: &msg });
                self.send(Message::exception(errors::RESOURCE_NOT_FOUND, ct, body))
                    .await;
                break;
            }
            let budget = if limits {
                2 * 1024 * 1024
            } else {
                10 * 1024 * 1024
            };
            let log = shard_log.clone();
            let read =
                tokio::task::spawn_blocking(move || log.read(offset, MAX_RECORDS, budget)).await;
            let batch = match read {
                Ok(Ok(b)) => b,
                _ => {
                    let body = codec::encode(
                        self.protocol,
                        &ExceptionBody {
                            message: "Internal failure.",
                        },
                    );
                    self.send(Message::exception("InternalFailureException", ct, body))
                        .await;
                    break;
                }
            };
            offset = batch.next_offset;
            // In cluster mode the end waits for the metadata naming the children.
            let at_end = self.shard.closed().is_some_and(|(end, _)| offset >= end)
                && (self.engine.placement.get().is_none()
                    || !self
                        .engine
                        .children_of(&self.stream, &self.shard)
                        .is_empty());
            let now = clock.now_ms();
            let idle = batch.records.is_empty();
            if !idle || at_end || last_event.elapsed() >= HEARTBEAT {
                let bytes = batch.bytes();
                let behind = batch.millis_behind_latest(now);
                let n = batch.records.len() as u64;
                let event = Event {
                    records: batch
                        .records
                        .into_iter()
                        .map(|r| RecordOut {
                            sequence_number: self
                                .stream
                                .sequence(self.shard.index, r.offset)
                                .to_string(),
                            approximate_arrival_timestamp: Timestamp(r.arrival_ms),
                            data: Blob(r.data),
                            partition_key: r.partition_key.to_string(),
                            encryption_type: Some(if r.encrypted { "KMS" } else { "NONE" }),
                        })
                        .collect(),
                    continuation_sequence_number: self
                        .stream
                        .position(self.shard.index, offset)
                        .to_string(),
                    millis_behind_latest: behind,
                    child_shards: at_end.then(|| {
                        self.engine
                            .children_of(&self.stream, &self.shard)
                            .into_iter()
                            .map(|c| ChildShardOut {
                                shard_id: c.shard_id,
                                parent_shards: c.parents,
                                hash_key_range: HashKeyRange {
                                    starting_hash_key: c.start_hash.to_string(),
                                    ending_hash_key: c.end_hash.to_string(),
                                },
                            })
                            .collect()
                    }),
                };
                let payload = codec::encode(self.protocol, &event);
                if !self
                    .send(Message::event("SubscribeToShardEvent", ct, payload))
                    .await
                {
                    break;
                }
                last_event = tokio::time::Instant::now();
                m.subscribe_to_shard_event_records
                    .with_label_values(&labels)
                    .inc_by(n);
                m.subscribe_to_shard_event_bytes
                    .with_label_values(&labels)
                    .inc_by(bytes as u64);
                m.subscribe_to_shard_millis_behind
                    .with_label_values(&labels)
                    .set(behind);
                if at_end {
                    break;
                }
                // 2 MiB/s per consumer per shard.
                if limits {
                    pace.charge(bytes as f64, clock.now_ms());
                    while !pace.has_tokens(clock.now_ms()) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            if idle {
                let heartbeat_at = last_event + HEARTBEAT;
                tokio::select! {
                    _ = tip.changed() => {}
                    _ = tokio::time::sleep_until(heartbeat_at.min(deadline)) => {}
                    _ = self.tx.closed() => break,
                }
            }
        }
        m.subscribe_to_shard_active.dec();
        self.finish();
    }

    fn finish(self) {
        self.engine
            .subscriptions
            .end(&self.consumer_arn, self.shard.index, self.generation);
    }
}
