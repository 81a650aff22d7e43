//! The Kinesis Data Streams API (`Kinesis_20131202`).
//!
//! One file per operation family: `streams.rs` (lifecycle and description), `records.rs`
//! (puts, iterators, reads), `shards.rs` (listing and resharding), `tags.rs`, `settings.rs`
//! (retention, monitoring, encryption, limits), `consumers.rs` (enhanced fan-out).

pub mod account;
pub mod consumers;
pub mod model;
pub mod records;
pub mod settings;
pub mod shards;
pub mod streams;
pub mod subscribe;
pub mod tags;

use std::sync::Arc;

use bytes::Bytes;

use crate::protocol::error::codes;
use crate::protocol::{AwsError, Protocol};
use crate::run_op;
use crate::services::CallResult;
use crate::streams::Streams;

/// The Kinesis service over the streams engine.
#[derive(Clone)]
pub struct Kinesis {
    pub engine: Arc<Streams>,
}

/// Every operation this service answers, for routing and metrics labels.
pub const OPERATIONS: &[&str] = &[
    "AddTagsToStream",
    "CreateStream",
    "DecreaseStreamRetentionPeriod",
    "DeleteResourcePolicy",
    "DeleteStream",
    "DescribeAccountSettings",
    "DeregisterStreamConsumer",
    "DescribeLimits",
    "DescribeStream",
    "DescribeStreamConsumer",
    "DescribeStreamSummary",
    "DisableEnhancedMonitoring",
    "EnableEnhancedMonitoring",
    "GetRecords",
    "GetResourcePolicy",
    "GetShardIterator",
    "IncreaseStreamRetentionPeriod",
    "ListShards",
    "ListStreamConsumers",
    "ListStreams",
    "ListTagsForResource",
    "ListTagsForStream",
    "MergeShards",
    "PutRecord",
    "PutRecords",
    "PutResourcePolicy",
    "RegisterStreamConsumer",
    "RemoveTagsFromStream",
    "SplitShard",
    "StartStreamEncryption",
    "StopStreamEncryption",
    "SubscribeToShard",
    "TagResource",
    "UntagResource",
    "UpdateAccountSettings",
    "UpdateMaxRecordSize",
    "UpdateShardCount",
    "UpdateStreamMode",
    "UpdateStreamWarmThroughput",
];

impl Kinesis {
    pub fn new(engine: Arc<Streams>) -> Self {
        Kinesis { engine }
    }

    /// Calls `operation` with a request body in `protocol`. The writes free the body once it
    /// is decoded.
    pub async fn call(&self, operation: &str, protocol: Protocol, body: Bytes) -> CallResult {
        let k = self;
        match operation {
            "PutRecord" => return run_op!(protocol, owned body, |i| records::put_record(k, i)),
            "PutRecords" => return run_op!(protocol, owned body, |i| records::put_records(k, i)),
            _ => {}
        }
        let body: &[u8] = &body;
        match operation {
            "CreateStream" => run_op!(protocol, body, |i| streams::create_stream(k, i)),
            "DeleteStream" => run_op!(protocol, body, |i| streams::delete_stream(k, i)),
            "DescribeStream" => run_op!(protocol, body, |i| streams::describe_stream(k, i)),
            "DescribeStreamSummary" => {
                run_op!(protocol, body, |i| streams::describe_stream_summary(k, i))
            }
            "ListStreams" => run_op!(protocol, body, |i| streams::list_streams(k, i)),
            "ListShards" => run_op!(protocol, body, |i| shards::list_shards(k, i)),
            "SplitShard" => run_op!(protocol, body, |i| shards::split_shard(k, i)),
            "MergeShards" => run_op!(protocol, body, |i| shards::merge_shards(k, i)),
            "UpdateShardCount" => run_op!(protocol, body, |i| shards::update_shard_count(k, i)),
            "UpdateStreamMode" => run_op!(protocol, body, |i| shards::update_stream_mode(k, i)),
            "GetShardIterator" => run_op!(protocol, body, |i| records::get_shard_iterator(k, i)),
            "GetRecords" => run_op!(protocol, body, |i| records::get_records(k, i)),
            "IncreaseStreamRetentionPeriod" => {
                run_op!(protocol, body, |i| settings::increase_retention(k, i))
            }
            "DecreaseStreamRetentionPeriod" => {
                run_op!(protocol, body, |i| settings::decrease_retention(k, i))
            }
            "DescribeLimits" => run_op!(protocol, body, |i| settings::describe_limits(k, i)),
            "EnableEnhancedMonitoring" => {
                run_op!(protocol, body, |i| settings::enable_monitoring(k, i))
            }
            "DisableEnhancedMonitoring" => {
                run_op!(protocol, body, |i| settings::disable_monitoring(k, i))
            }
            "StartStreamEncryption" => {
                run_op!(protocol, body, |i| settings::start_encryption(k, i))
            }
            "StopStreamEncryption" => run_op!(protocol, body, |i| settings::stop_encryption(k, i)),
            "UpdateMaxRecordSize" => {
                run_op!(protocol, body, |i| settings::update_max_record_size(k, i))
            }
            "AddTagsToStream" => run_op!(protocol, body, |i| tags::add_tags_to_stream(k, i)),
            "RemoveTagsFromStream" => {
                run_op!(protocol, body, |i| tags::remove_tags_from_stream(k, i))
            }
            "ListTagsForStream" => run_op!(protocol, body, |i| tags::list_tags_for_stream(k, i)),
            "TagResource" => run_op!(protocol, body, |i| tags::tag_resource(k, i)),
            "UntagResource" => run_op!(protocol, body, |i| tags::untag_resource(k, i)),
            "ListTagsForResource" => {
                run_op!(protocol, body, |i| tags::list_tags_for_resource(k, i))
            }
            "RegisterStreamConsumer" => {
                run_op!(protocol, body, |i| consumers::register_stream_consumer(
                    k, i
                ))
            }
            "DeregisterStreamConsumer" => {
                run_op!(protocol, body, |i| consumers::deregister_stream_consumer(
                    k, i
                ))
            }
            "DescribeStreamConsumer" => {
                run_op!(protocol, body, |i| consumers::describe_stream_consumer(
                    k, i
                ))
            }
            "ListStreamConsumers" => {
                run_op!(protocol, body, |i| consumers::list_stream_consumers(k, i))
            }
            "DescribeAccountSettings" => {
                run_op!(protocol, body, |i| account::describe_account_settings(k, i))
            }
            "UpdateAccountSettings" => {
                run_op!(protocol, body, |i| account::update_account_settings(k, i))
            }
            "PutResourcePolicy" => run_op!(protocol, body, |i| account::put_resource_policy(k, i)),
            "GetResourcePolicy" => run_op!(protocol, body, |i| account::get_resource_policy(k, i)),
            "DeleteResourcePolicy" => {
                run_op!(protocol, body, |i| account::delete_resource_policy(k, i))
            }
            "UpdateStreamWarmThroughput" => {
                run_op!(protocol, body, |i| account::update_stream_warm_throughput(
                    k, i
                ))
            }
            "SubscribeToShard" => subscribe::subscribe_to_shard(k, protocol, body).await,
            _ => Err(AwsError::new(codes::UNKNOWN_OPERATION, "")),
        }
    }

    pub fn account(&self) -> &str {
        self.engine.account()
    }
}
