//! ListShards, SplitShard, MergeShards, UpdateShardCount, UpdateStreamMode.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::model::*;
use super::streams::shard_out;
use super::Kinesis;
use crate::protocol::{AwsError, Timestamp};
use crate::services::validate::{self, Validator, HASH_KEY_PATTERN};
use crate::streams::{errors, parse_shard_id, Shard, Stream, StreamMode, StreamStatus};

/// ListShards tokens expire after 300 seconds (`ExpiredNextTokenException`).
const TOKEN_TTL_MS: i64 = 300_000;

/// What a ListShards NextToken carries: where the listing resumes and the filter in force.
#[derive(Serialize, Deserialize)]
struct ShardsToken {
    stream: String,
    incarnation: u64,
    after: u32,
    filter: Option<(String, Option<u32>, Option<i64>)>,
    issued_ms: i64,
}

const FILTER_TYPES: [&str; 6] = [
    "AFTER_SHARD_ID",
    "AT_TRIM_HORIZON",
    "FROM_TRIM_HORIZON",
    "AT_LATEST",
    "AT_TIMESTAMP",
    "FROM_TIMESTAMP",
];

/// Whether `shard` was open at time `t`.
fn open_at(shard: &Shard, t: i64) -> bool {
    shard.created_ms <= t && shard.closed().is_none_or(|(_, closed)| closed > t)
}

/// Applies a ShardFilter as AWS documents it.
fn filter_shards(
    stream: &Stream,
    shards: Vec<std::sync::Arc<Shard>>,
    filter: &(String, Option<u32>, Option<i64>),
    retention_cutoff: i64,
) -> Vec<std::sync::Arc<Shard>> {
    let (ty, after, ts) = filter;
    let horizon = retention_cutoff.max(stream.created_ms);
    match ty.as_str() {
        "AFTER_SHARD_ID" => shards
            .into_iter()
            .filter(|s| after.is_none_or(|a| s.index > a))
            .collect(),
        // Shards open at the trim horizon: the oldest shards whose data is still readable.
        "AT_TRIM_HORIZON" => shards.into_iter().filter(|s| open_at(s, horizon)).collect(),
        "FROM_TRIM_HORIZON" => shards,
        "AT_LATEST" => shards.into_iter().filter(|s| s.is_open()).collect(),
        "AT_TIMESTAMP" => {
            let t = ts.unwrap_or(0).max(horizon);
            shards.into_iter().filter(|s| open_at(s, t)).collect()
        }
        // Shards open at the timestamp and every shard created after it.
        "FROM_TIMESTAMP" => {
            let t = ts.unwrap_or(0).max(horizon);
            shards
                .into_iter()
                .filter(|s| s.closed().is_none_or(|(_, closed)| closed > t))
                .collect()
        }
        _ => shards,
    }
}

pub async fn list_shards(k: &Kinesis, i: ListShardsInput) -> Result<ListShardsOutput, AwsError> {
    let mut v = Validator::new();
    v.stream_name(
        "exclusiveStartShardId",
        i.exclusive_start_shard_id.as_deref(),
    );
    v.range("maxResults", i.max_results, 1, 10_000);
    v.string("nextToken", i.next_token.as_deref(), None, 1, 1_048_576);
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    if let Some(f) = &i.shard_filter {
        v.not_null("shardFilter.type", &f.filter_type);
        v.enumeration("shardFilter.type", f.filter_type.as_deref(), &FILTER_TYPES);
        v.stream_name("shardFilter.shardId", f.shard_id.as_deref());
    }
    v.finish()?;
    let named = i.stream_name.is_some() || i.stream_arn.is_some();
    let now = k.engine.clock.now_ms();
    let limit = i.max_results.unwrap_or(1000) as usize;
    let (stream, after, filter) =
        match (&i.next_token, named) {
            (Some(_), true) => {
                return Err(errors::invalid_argument(
                    "NextToken and StreamName cannot be provided together.",
                ))
            }
            (None, false) => {
                return Err(errors::invalid_argument(
                    "Either NextToken or StreamName should be provided.",
                ))
            }
            (Some(token), false) => {
                let t: ShardsToken = URL_SAFE_NO_PAD
                    .decode(token)
                    .ok()
                    .and_then(|raw| serde_json::from_slice(&raw).ok())
                    .ok_or_else(|| errors::invalid_argument("Invalid NextToken."))?;
                if now - t.issued_ms > TOKEN_TTL_MS {
                    return Err(AwsError::new(
                        errors::EXPIRED_NEXT_TOKEN,
                        "The NextToken has expired. Call ListShards again without a NextToken.",
                    ));
                }
                let stream = k.engine.get(&t.stream)?;
                if stream.incarnation != t.incarnation {
                    return Err(errors::invalid_argument("Invalid NextToken."));
                }
                (stream, Some(t.after), t.filter)
            }
            (None, true) => {
                let stream = k
                    .engine
                    .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
                if let Some(Timestamp(ts)) = i.stream_creation_timestamp {
                    if ts / 1000 != stream.created_ms / 1000 {
                        return Err(errors::stream_not_found(&stream.name, k.account()));
                    }
                }
                let after = match &i.exclusive_start_shard_id {
                    Some(s) => Some(parse_shard_id(s).ok_or_else(|| {
                        errors::could_not_find_shard(s, &stream.name, k.account())
                    })?),
                    None => None,
                };
                let filter = match &i.shard_filter {
                    None => None,
                    Some(f) => {
                        let ty = f.filter_type.clone().unwrap_or_default();
                        let shard = match (&f.shard_id, ty.as_str()) {
                            (Some(s), _) => Some(parse_shard_id(s).ok_or_else(|| {
                                errors::could_not_find_shard(s, &stream.name, k.account())
                            })?),
                            (None, "AFTER_SHARD_ID") => return Err(errors::invalid_argument(
                                "ShardId must be provided when ShardFilter Type is AFTER_SHARD_ID.",
                            )),
                            (None, _) => None,
                        };
                        let ts = f.timestamp.map(|t| t.0);
                        if ts.is_none() && (ty == "AT_TIMESTAMP" || ty == "FROM_TIMESTAMP") {
                            return Err(errors::invalid_argument(format!(
                                "Timestamp must be provided when ShardFilter Type is {ty}."
                            )));
                        }
                        Some((ty, shard, ts))
                    }
                };
                (stream, after, filter)
            }
        };
    k.engine.admit("ListShards", 1000.0)?;
    let retention_cutoff = now - i64::from(stream.state().retention_hours) * 3_600_000;
    let mut shards = stream.all_shards();
    if stream.status() == StreamStatus::Creating {
        shards.clear();
    }
    if let Some(f) = &filter {
        shards = filter_shards(&stream, shards, f, retention_cutoff);
    }
    let shards: Vec<_> = shards
        .into_iter()
        .filter(|s| after.is_none_or(|a| s.index > a))
        .collect();
    let more = shards.len() > limit;
    let page: Vec<_> = shards.into_iter().take(limit).collect();
    let next_token = match (more, page.last()) {
        (true, Some(last)) => Some(
            URL_SAFE_NO_PAD.encode(
                serde_json::to_vec(&ShardsToken {
                    stream: stream.name.clone(),
                    incarnation: stream.incarnation,
                    after: last.index,
                    filter: filter.clone(),
                    issued_ms: now,
                })
                .unwrap_or_default(),
            ),
        ),
        _ => None,
    };
    Ok(ListShardsOutput {
        shards: page.iter().map(|s| shard_out(&stream, s)).collect(),
        next_token,
    })
}

fn is_hash_key(s: &str) -> bool {
    validate::is_decimal(s, 39)
}

fn provisioned_only(stream: &Stream, op: &str) -> Result<(), AwsError> {
    if stream.state().mode == StreamMode::OnDemand {
        return Err(errors::invalid_argument(format!(
            "{op} is not supported for a stream in ON_DEMAND capacity mode ({}).",
            stream.name
        )));
    }
    Ok(())
}

pub async fn split_shard(k: &Kinesis, i: SplitShardInput) -> Result<Void, AwsError> {
    let mut v = Validator::new();
    v.not_null("newStartingHashKey", &i.new_starting_hash_key);
    v.string(
        "newStartingHashKey",
        i.new_starting_hash_key.as_deref(),
        Some((HASH_KEY_PATTERN, is_hash_key)),
        0,
        usize::MAX,
    );
    v.stream_name("streamName", i.stream_name.as_deref());
    v.not_null("shardToSplit", &i.shard_to_split);
    v.stream_name("shardToSplit", i.shard_to_split.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    k.engine.admit("SplitShard", 5.0)?;
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    provisioned_only(&stream, "SplitShard")?;
    let raw_key = i.new_starting_hash_key.unwrap_or_default();
    let key: u128 = raw_key.parse().map_err(|_| {
        errors::invalid_argument(format!(
            "NewStartingHashKey {raw_key} must be in the range: [0, 2^128-1]."
        ))
    })?;
    k.engine
        .split_shard(
            &stream,
            i.shard_to_split.as_deref().unwrap_or_default(),
            key,
        )
        .await?;
    Ok(Void)
}

pub async fn merge_shards(k: &Kinesis, i: MergeShardsInput) -> Result<Void, AwsError> {
    let mut v = Validator::new();
    v.not_null("shardToMerge", &i.shard_to_merge);
    v.stream_name("shardToMerge", i.shard_to_merge.as_deref());
    v.not_null("adjacentShardToMerge", &i.adjacent_shard_to_merge);
    v.stream_name("adjacentShardToMerge", i.adjacent_shard_to_merge.as_deref());
    v.stream_name("streamName", i.stream_name.as_deref());
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    k.engine.admit("MergeShards", 5.0)?;
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    provisioned_only(&stream, "MergeShards")?;
    k.engine
        .merge_shards(
            &stream,
            i.shard_to_merge.as_deref().unwrap_or_default(),
            i.adjacent_shard_to_merge.as_deref().unwrap_or_default(),
        )
        .await?;
    Ok(Void)
}

pub async fn update_shard_count(
    k: &Kinesis,
    i: UpdateShardCountInput,
) -> Result<UpdateShardCountOutput, AwsError> {
    let mut v = Validator::new();
    v.not_null("scalingType", &i.scaling_type);
    v.enumeration(
        "scalingType",
        i.scaling_type.as_deref(),
        &["UNIFORM_SCALING"],
    );
    v.stream_name("streamName", i.stream_name.as_deref());
    v.not_null("targetShardCount", &i.target_shard_count);
    v.range("targetShardCount", i.target_shard_count, 1, 100_000);
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.finish()?;
    k.engine.admit("UpdateShardCount", 10.0)?;
    let stream = k
        .engine
        .resolve(i.stream_name.as_deref(), i.stream_arn.as_deref())?;
    provisioned_only(&stream, "UpdateShardCount")?;
    let target = i.target_shard_count.unwrap_or(1) as u32;
    let current = k.engine.update_shard_count(&stream, target).await?;
    Ok(UpdateShardCountOutput {
        stream_name: stream.name.clone(),
        current_shard_count: current,
        target_shard_count: target as usize,
        stream_arn: stream.arn.clone(),
    })
}

pub async fn update_stream_mode(k: &Kinesis, i: UpdateStreamModeInput) -> Result<Void, AwsError> {
    let mut v = Validator::new();
    v.not_null("streamARN", &i.stream_arn);
    v.stream_arn("streamARN", i.stream_arn.as_deref());
    v.not_null("streamModeDetails", &i.stream_mode_details);
    let mode = super::streams::parse_mode(&mut v, &i.stream_mode_details);
    v.finish()?;
    k.engine.admit("UpdateStreamMode", 5.0)?;
    let stream = k.engine.resolve(None, i.stream_arn.as_deref())?;
    let Some(mode) = mode else {
        return Ok(Void);
    };
    let account = k.account().to_string();
    let name = stream.name.clone();
    k.engine
        .update_state(&stream, |st| {
            if st.status != StreamStatus::Active {
                return Err(errors::not_active(&name, &account, st.status.as_str()));
            }
            st.mode = mode;
            Ok(())
        })
        .await?;
    Ok(Void)
}
