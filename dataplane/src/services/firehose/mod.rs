//! The Firehose API (`Firehose_20150804`).
//!
//! One file per operation family: `streams.rs` (create, delete, describe, list, update
//! destination), `records.rs` (PutRecord, PutRecordBatch), `tags.rs` (tags and encryption),
//! `validate.rs` (destination configuration checks shared by create and update), `model.rs`
//! (request and response shapes).

pub mod model;
pub mod records;
pub mod streams;
pub mod tags;
pub mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::delivery::DeliveryStreams;
use crate::protocol::error::codes;
use crate::protocol::{AwsError, Protocol};
use crate::run_op;
use crate::services::CallResult;
use crate::streams::limits::TokenBucket;

/// Firehose's error names.
pub mod errors {
    use crate::protocol::AwsError;

    pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
    pub const RESOURCE_IN_USE: &str = "ResourceInUseException";
    pub const INVALID_ARGUMENT: &str = "InvalidArgumentException";
    pub const LIMIT_EXCEEDED: &str = "LimitExceededException";
    pub const CONCURRENT_MODIFICATION: &str = "ConcurrentModificationException";
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailableException";
    pub const THROTTLING: &str = "ThrottlingException";

    pub fn invalid_argument(message: impl Into<String>) -> AwsError {
        AwsError::new(INVALID_ARGUMENT, message)
    }

    pub fn not_found(name: &str, account: &str) -> AwsError {
        AwsError::new(
            RESOURCE_NOT_FOUND,
            format!("Firehose {name} under account {account} not found."),
        )
    }

    pub fn in_use(message: impl Into<String>) -> AwsError {
        AwsError::new(RESOURCE_IN_USE, message)
    }

    /// A storage failure while accepting records: the SDKs retry ServiceUnavailable.
    pub fn unavailable(message: impl Into<String>) -> AwsError {
        AwsError::new(SERVICE_UNAVAILABLE, message).with_status(503)
    }

    /// A control-plane call over its per-account rate. Firehose answers these with
    /// `ThrottlingException: Rate exceeded` (HTTP 400), which the SDKs retry with backoff.
    pub fn throttled() -> AwsError {
        AwsError::new(THROTTLING, "Rate exceeded")
    }
}

/// Firehose's control-plane quota: 5 calls per second per account for each operation
/// (Create, Delete, Describe, List, Update, Tag, Untag, ListTags, Start/Stop encryption).
/// PutRecord and PutRecordBatch have their own per-stream quotas instead.
pub const CONTROL_TPS: f64 = 5.0;

/// The Firehose service over the delivery engine.
#[derive(Clone)]
pub struct Firehose {
    pub engine: Arc<DeliveryStreams>,
    /// Per-operation control-plane token buckets; `None` when limits are off.
    rates: Option<Arc<Mutex<HashMap<&'static str, TokenBucket>>>>,
}

/// Every operation this service answers.
pub const OPERATIONS: &[&str] = &[
    "CreateDeliveryStream",
    "DeleteDeliveryStream",
    "DescribeDeliveryStream",
    "ListDeliveryStreams",
    "ListTagsForDeliveryStream",
    "PutRecord",
    "PutRecordBatch",
    "StartDeliveryStreamEncryption",
    "StopDeliveryStreamEncryption",
    "TagDeliveryStream",
    "UntagDeliveryStream",
    "UpdateDestination",
];

impl Firehose {
    /// The API as clients reach it: control-plane rates apply unless `--no-limits`.
    pub fn new(engine: Arc<DeliveryStreams>) -> Self {
        let rates = engine
            .cfg
            .limits
            .then(|| Arc::new(Mutex::new(HashMap::new())));
        Firehose { engine, rates }
    }

    /// The API as the server itself calls it (manifests at start-up): no control-plane rates.
    pub fn internal(engine: Arc<DeliveryStreams>) -> Self {
        Firehose {
            engine,
            rates: None,
        }
    }

    /// Admits a control-plane call under its per-account rate.
    fn admit(&self, operation: &str) -> Result<(), AwsError> {
        let Some(rates) = &self.rates else {
            return Ok(());
        };
        let Some(op) = OPERATIONS
            .iter()
            .copied()
            .find(|o| *o == operation && !o.starts_with("PutRecord"))
        else {
            return Ok(());
        };
        let now = self.engine.clock.now_ms();
        let mut rates = rates.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = rates
            .entry(op)
            .or_insert_with(|| TokenBucket::new(CONTROL_TPS, CONTROL_TPS, now));
        if bucket.try_take(1.0, now) {
            Ok(())
        } else {
            Err(errors::throttled())
        }
    }

    pub fn account(&self) -> &str {
        &self.engine.cfg.account_id
    }

    /// Calls `operation` with a request body in `protocol`.
    pub async fn call(&self, operation: &str, protocol: Protocol, body: &[u8]) -> CallResult {
        let f = self;
        self.admit(operation)?;
        match operation {
            "CreateDeliveryStream" => run_op!(protocol, body, |i| streams::create(f, i)),
            "DeleteDeliveryStream" => run_op!(protocol, body, |i| streams::delete(f, i)),
            "DescribeDeliveryStream" => run_op!(protocol, body, |i| streams::describe(f, i)),
            "ListDeliveryStreams" => run_op!(protocol, body, |i| streams::list(f, i)),
            "UpdateDestination" => run_op!(protocol, body, |i| streams::update_destination(f, i)),
            "PutRecord" => run_op!(protocol, body, |i| records::put_record(f, i)),
            "PutRecordBatch" => run_op!(protocol, body, |i| records::put_record_batch(f, i)),
            "TagDeliveryStream" => run_op!(protocol, body, |i| tags::tag(f, i)),
            "UntagDeliveryStream" => run_op!(protocol, body, |i| tags::untag(f, i)),
            "ListTagsForDeliveryStream" => run_op!(protocol, body, |i| tags::list_tags(f, i)),
            "StartDeliveryStreamEncryption" => {
                run_op!(protocol, body, |i| tags::start_encryption(f, i))
            }
            "StopDeliveryStreamEncryption" => {
                run_op!(protocol, body, |i| tags::stop_encryption(f, i))
            }
            _ => Err(AwsError::new(codes::UNKNOWN_OPERATION, "")),
        }
    }
}
