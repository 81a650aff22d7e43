//! CreateStream, DeleteStream, DescribeStream, DescribeStreamSummary, ListStreams.

use std::sync::Arc;

use super::model::*;
use super::Kinesis;
use crate::protocol::{AwsError, Timestamp};
use crate::services::validate::Validator;
use crate::streams::{errors, CreateStream, Stream, StreamMode};

pub(super) fn mode_out(mode: StreamMode) -> StreamModeDetailsOut {
    StreamModeDetailsOut {
        stream_mode: mode.as_str(),
    }
}

pub(super) fn enhanced_out(stream: &Stream) -> Vec<EnhancedMetrics> {
    vec![EnhancedMetrics {
        shard_level_metrics: stream.state().enhanced_metrics.iter().cloned().collect(),
    }]
}

pub(super) fn parse_mode(
    v: &mut Validator,
    details: &Option<StreamModeDetails>,
) -> Option<StreamMode> {
    let d = details.as_ref()?;
    v.not_null("streamModeDetails.streamMode", &d.stream_mode);
    v.enumeration(
        "streamModeDetails.streamMode",
        d.stream_mode.as_deref(),
        &["PROVISIONED", "ON_DEMAND"],
    );
    match d.stream_mode.as_deref() {
        Some("ON_DEMAND") => Some(StreamMode::OnDemand),
        Some("PROVISIONED") => Some(StreamMode::Provisioned),
        _ => None,
    }
}

pub async fn create_stream(k: &Kinesis, i: CreateStreamInput) -> Result<Void, AwsError> {
    let mut v = Validator::new();
    v.range("shardCount", i.shard_count, 1, 100_000);
    v.not_null("streamName", &i.stream_name);
    v.stream_name("streamName", i.stream_name.as_deref());
    let mode = parse_mode(&mut v, &i.stream_mode_details).unwrap_or(StreamMode::Provisioned);
    if let Some(tags) = &i.tags {
        v.count("tags", &super::tags::render_map(tags), tags.len(), 0, 50);
    }
    v.range("maxRecordSizeInKiB", i.max_record_size_in_kib, 1024, 10240);
    v.finish()?;
    match (mode, i.shard_count) {
        (StreamMode::OnDemand, Some(_)) => {
            return Err(errors::invalid_argument(
                "ShardCount is not expected when StreamMode=ON_DEMAND",
            ))
        }
        (StreamMode::Provisioned, None) => {
            return Err(errors::invalid_argument(
                "ShardCount is required when StreamMode=PROVISIONED",
            ))
        }
        _ => {}
    }
    if i.warm_throughput_mi_bps.is_some() && mode != StreamMode::OnDemand {
        return Err(errors::invalid_argument(
            "WarmThroughputMiBps can only be set for ON_DEMAND streams",
        ));
    }
    let tags = i.tags.unwrap_or_default();
    super::tags::check_tag_chars(&tags)?;
    k.engine.admit("CreateStream", 5.0)?;
    let name = i.stream_name.unwrap_or_default();
    k.engine
        .create_stream(CreateStream {
            name: name.clone(),
            shard_count: i.shard_count.map(|n| n as u32),
            mode,
            tags,
            max_record_kib: i.max_record_size_in_kib.map(|n| n as u32),
            retention_hours: None,
        })
        .await?;
    crate::metrics::global().init_stream(&name);
    Ok(Void)
}

pub async fn delete_stream(k: &Kinesis, i: DeleteStreamInput) -> Result<Void, AwsError> {
    let mut v = Validator::new();
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    k.engine.admit("DeleteStream", 5.0)?;
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    let name = stream.name.clone();
    let shards: Vec<String> = stream.all_shards().iter().map(|s| s.id.clone()).collect();
    k.engine
        .delete_stream(stream, i.enforce_consumer_deletion.unwrap_or(false))
        .await?;
    crate::metrics::global().remove_stream(&name, &shards);
    Ok(Void)
}

pub(super) fn shard_out(stream: &Stream, shard: &crate::streams::Shard) -> ShardOut {
    let (start, end) = stream.sequence_range(shard);
    ShardOut {
        shard_id: shard.id.clone(),
        parent_shard_id: shard.parent.clone(),
        adjacent_parent_shard_id: shard.adjacent_parent.clone(),
        hash_key_range: HashKeyRange {
            starting_hash_key: shard.start_hash.to_string(),
            ending_hash_key: shard.end_hash.to_string(),
        },
        sequence_number_range: SequenceNumberRange {
            starting_sequence_number: start.to_string(),
            ending_sequence_number: end.map(|e| e.to_string()),
        },
    }
}

pub async fn describe_stream(
    k: &Kinesis,
    i: DescribeStreamInput,
) -> Result<DescribeStreamOutput, AwsError> {
    let mut v = Validator::new();
    v.range("limit", i.limit, 1, 10_000);
    v.stream_name(
        "exclusiveStartShardId",
        i.exclusive_start_shard_id.as_deref(),
    );
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    k.engine.admit("DescribeStream", 10.0)?;
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    // AWS returns at most 100 shards per call, after ExclusiveStartShardId.
    let limit = i.limit.unwrap_or(100).clamp(1, 100) as usize;
    let after = i
        .exclusive_start_shard_id
        .as_deref()
        .and_then(crate::streams::parse_shard_id);
    let st = stream.state().clone();
    let shards: Vec<_> = if st.status == crate::streams::StreamStatus::Creating {
        Vec::new()
    } else {
        stream
            .all_shards()
            .into_iter()
            .filter(|s| after.is_none_or(|a| s.index > a))
            .collect()
    };
    let has_more = shards.len() > limit;
    Ok(DescribeStreamOutput {
        stream_description: StreamDescription {
            encryption_type: if st.encryption_key.is_some() {
                "KMS"
            } else {
                "NONE"
            },
            enhanced_monitoring: enhanced_out(&stream),
            has_more_shards: has_more,
            key_id: st.encryption_key.clone(),
            retention_period_hours: st.retention_hours,
            shards: shards
                .iter()
                .take(limit)
                .map(|s| shard_out(&stream, s))
                .collect(),
            stream_arn: stream.arn.clone(),
            stream_creation_timestamp: Timestamp(stream.created_ms / 1000 * 1000),
            stream_mode_details: mode_out(st.mode),
            stream_name: stream.name.clone(),
            stream_status: st.status.as_str(),
        },
    })
}

pub async fn describe_stream_summary(
    k: &Kinesis,
    i: StreamRef,
) -> Result<DescribeStreamSummaryOutput, AwsError> {
    let mut v = Validator::new();
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    k.engine.admit("DescribeStreamSummary", 20.0)?;
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    Ok(DescribeStreamSummaryOutput {
        stream_description_summary: summary(&stream),
    })
}

pub(super) fn summary(stream: &Arc<Stream>) -> StreamDescriptionSummary {
    let st = stream.state().clone();
    StreamDescriptionSummary {
        consumer_count: st.consumers.len(),
        encryption_type: if st.encryption_key.is_some() {
            "KMS"
        } else {
            "NONE"
        },
        enhanced_monitoring: enhanced_out(stream),
        key_id: st.encryption_key.clone(),
        max_record_size_in_kib: st.max_record_kib,
        open_shard_count: stream.open_shard_count(),
        warm_throughput: super::account::warm_throughput(stream),
        retention_period_hours: st.retention_hours,
        stream_arn: stream.arn.clone(),
        stream_creation_timestamp: Timestamp(stream.created_ms / 1000 * 1000),
        stream_mode_details: mode_out(st.mode),
        stream_name: stream.name.clone(),
        stream_status: st.status.as_str(),
    }
}

pub async fn list_streams(k: &Kinesis, i: ListStreamsInput) -> Result<ListStreamsOutput, AwsError> {
    let mut v = Validator::new();
    v.range("limit", i.limit, 1, 10_000);
    v.stream_name(
        "exclusiveStartStreamName",
        i.exclusive_start_stream_name.as_deref(),
    );
    v.string("nextToken", i.next_token.as_deref(), None, 1, 1_048_576);
    v.finish()?;
    k.engine.admit("ListStreams", 5.0)?;
    // The token is the last name of the previous page: names are listed in order, so a page
    // boundary stays meaningful when streams come and go.
    let after = match (&i.next_token, &i.exclusive_start_stream_name) {
        (Some(_), Some(_)) => {
            return Err(errors::invalid_argument(
                "NextToken and ExclusiveStartStreamName cannot be provided together.",
            ))
        }
        (Some(t), None) => Some(decode_token(t)?),
        (None, n) => n.clone(),
    };
    let limit = i.limit.unwrap_or(100).clamp(1, 100) as usize;
    let all = k.engine.list();
    let rest: Vec<_> = all
        .into_iter()
        .filter(|s| after.as_deref().is_none_or(|a| s.name.as_str() > a))
        .collect();
    let has_more = rest.len() > limit;
    let page: Vec<_> = rest.into_iter().take(limit).collect();
    Ok(ListStreamsOutput {
        stream_names: page.iter().map(|s| s.name.clone()).collect(),
        has_more_streams: has_more,
        next_token: if has_more {
            page.last().map(|s| encode_token(&s.name))
        } else {
            None
        },
        stream_summaries: page
            .iter()
            .map(|s| StreamSummary {
                stream_name: s.name.clone(),
                stream_arn: s.arn.clone(),
                stream_status: s.status().as_str(),
                stream_mode_details: mode_out(s.state().mode),
                stream_creation_timestamp: Timestamp(s.created_ms / 1000 * 1000),
            })
            .collect(),
    })
}

fn encode_token(name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("streams:{name}"))
}

fn decode_token(t: &str) -> Result<String, AwsError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("streams:").map(str::to_string))
        .ok_or_else(|| errors::invalid_argument("Invalid NextToken."))
}
