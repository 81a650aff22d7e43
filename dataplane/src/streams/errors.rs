//! Kinesis error names and AWS's exact messages, in one place. Published texts never change.

use crate::protocol::AwsError;

pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
pub const RESOURCE_IN_USE: &str = "ResourceInUseException";
pub const INVALID_ARGUMENT: &str = "InvalidArgumentException";
pub const LIMIT_EXCEEDED: &str = "LimitExceededException";
pub const EXPIRED_ITERATOR: &str = "ExpiredIteratorException";
pub const EXPIRED_NEXT_TOKEN: &str = "ExpiredNextTokenException";
pub const THROUGHPUT_EXCEEDED: &str = "ProvisionedThroughputExceededException";
pub const INTERNAL_FAILURE: &str = "InternalFailure";
/// Not an AWS error: the shard is held by another pod of the cluster, whose ordinal is the
/// message. The server forwards the request there; clients never see this code.
pub const NOT_LOCAL: &str = "TributaryShardNotLocal";

/// The request belongs to the pod with ordinal `owner` (cluster mode).
pub fn not_local(owner: u32) -> AwsError {
    AwsError::new(NOT_LOCAL, owner.to_string()).with_status(421)
}

/// The pod a [`not_local`] error names.
pub fn not_local_owner(e: &AwsError) -> Option<u32> {
    (e.code == NOT_LOCAL)
        .then(|| e.message.parse().ok())
        .flatten()
}

pub fn stream_not_found(stream: &str, account: &str) -> AwsError {
    AwsError::new(
        RESOURCE_NOT_FOUND,
        format!("Stream {stream} under account {account} not found."),
    )
}

pub fn stream_exists(stream: &str, account: &str) -> AwsError {
    AwsError::new(
        RESOURCE_IN_USE,
        format!("Stream {stream} under account {account} already exists."),
    )
}

pub fn not_active(stream: &str, account: &str, status: &str) -> AwsError {
    AwsError::new(
        RESOURCE_IN_USE,
        format!("Stream {stream} under account {account} not ACTIVE, instead in state {status}"),
    )
}

/// GetShardIterator / GetRecords on a missing shard (no trailing period, as AWS).
pub fn shard_does_not_exist(shard: &str, stream: &str, account: &str) -> AwsError {
    AwsError::new(
        RESOURCE_NOT_FOUND,
        format!("Shard {shard} in stream {stream} under account {account} does not exist"),
    )
}

/// Split/Merge/ListShards on a missing shard.
pub fn could_not_find_shard(shard: &str, stream: &str, account: &str) -> AwsError {
    AwsError::new(
        RESOURCE_NOT_FOUND,
        format!("Could not find shard {shard} in stream {stream} under account {account}."),
    )
}

pub fn shard_limit(account: &str, region: &str, open: u64, limit: u64, extra: u64) -> AwsError {
    AwsError::new(
        LIMIT_EXCEEDED,
        format!(
            "This request would exceed the shard limit for the account {account} in {region}. \
             Current shard count for the account: {open}. Limit: {limit}. Number of additional \
             shards that would have resulted from this request: {extra}. Refer to the AWS Service \
             Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) \
             for current limits and how to request higher limits."
        ),
    )
}

pub fn invalid_argument(message: impl Into<String>) -> AwsError {
    AwsError::new(INVALID_ARGUMENT, message)
}

pub fn limit_exceeded(message: impl Into<String>) -> AwsError {
    AwsError::new(LIMIT_EXCEEDED, message)
}

pub fn in_use(message: impl Into<String>) -> AwsError {
    AwsError::new(RESOURCE_IN_USE, message)
}

pub fn rate_exceeded_for_shard(shard: &str, stream: &str, account: &str) -> String {
    format!("Rate exceeded for shard {shard} in stream {stream} under account {account}.")
}

pub fn throughput_exceeded(shard: &str, stream: &str, account: &str) -> AwsError {
    AwsError::new(
        THROUGHPUT_EXCEEDED,
        rate_exceeded_for_shard(shard, stream, account),
    )
}

/// Control-plane calls over their per-account rate.
pub fn rate_limited(operation: &str, account: &str) -> AwsError {
    AwsError::new(
        LIMIT_EXCEEDED,
        format!("Rate exceeded for {operation} under account {account}."),
    )
}

pub fn invalid_iterator() -> AwsError {
    invalid_argument("Invalid ShardIterator.")
}

/// Renders epoch milliseconds the way AWS's (Java) messages do: `Thu Jan 22 01:22:02 UTC 2015`.
pub fn java_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::clock::civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        y
    )
}

pub fn expired_iterator(created_ms: i64, now_ms: i64) -> AwsError {
    AwsError::new(
        EXPIRED_ITERATOR,
        format!(
            "Iterator expired. The iterator was created at time {} while right now it is {} \
             which is further in the future than the tolerated delay of 300000 milliseconds.",
            java_date(created_ms),
            java_date(now_ms)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_dates_render_like_aws_messages() {
        assert_eq!(java_date(1_421_889_722_000), "Thu Jan 22 01:22:02 UTC 2015");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
    }
}
