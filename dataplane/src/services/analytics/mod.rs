//! The Kinesis Data Analytics API, v1 (`KinesisAnalytics_20150814`), for SQL applications.
//!
//! One file per operation family: `applications.rs` (create, describe, list, delete, update,
//! start, stop), `config.rs` (the Add*/Delete* operations on inputs, outputs, reference sources,
//! input processing and logging options), `discover.rs` (DiscoverInputSchema), `tags.rs`.
//! `checks.rs` holds the member validation they share.

pub mod applications;
pub mod checks;
pub mod config;
pub mod discover;
pub mod model;
pub mod tags;

use std::sync::Arc;

use crate::analytics::Analytics;
use crate::protocol::error::codes;
use crate::protocol::{AwsError, Protocol};
use crate::run_op;
use crate::services::CallResult;

/// The Analytics service over the analytics engine.
#[derive(Clone)]
pub struct AnalyticsService {
    pub engine: Arc<Analytics>,
}

/// Every operation this service answers, for routing and metrics labels.
pub const OPERATIONS: &[&str] = &[
    "AddApplicationCloudWatchLoggingOption",
    "AddApplicationInput",
    "AddApplicationInputProcessingConfiguration",
    "AddApplicationOutput",
    "AddApplicationReferenceDataSource",
    "CreateApplication",
    "DeleteApplication",
    "DeleteApplicationCloudWatchLoggingOption",
    "DeleteApplicationInputProcessingConfiguration",
    "DeleteApplicationOutput",
    "DeleteApplicationReferenceDataSource",
    "DescribeApplication",
    "DiscoverInputSchema",
    "ListApplications",
    "ListTagsForResource",
    "StartApplication",
    "StopApplication",
    "TagResource",
    "UntagResource",
    "UpdateApplication",
];

impl AnalyticsService {
    pub fn new(engine: Arc<Analytics>) -> Self {
        AnalyticsService { engine }
    }

    /// Calls `operation` with a request body in `protocol`.
    pub async fn call(&self, operation: &str, protocol: Protocol, body: &[u8]) -> CallResult {
        let a = self;
        match operation {
            "CreateApplication" => run_op!(protocol, body, |i| applications::create(a, i)),
            "DescribeApplication" => run_op!(protocol, body, |i| applications::describe(a, i)),
            "ListApplications" => run_op!(protocol, body, |i| applications::list(a, i)),
            "DeleteApplication" => run_op!(protocol, body, |i| applications::delete(a, i)),
            "StartApplication" => run_op!(protocol, body, |i| applications::start(a, i)),
            "StopApplication" => run_op!(protocol, body, |i| applications::stop(a, i)),
            "UpdateApplication" => run_op!(protocol, body, |i| applications::update(a, i)),
            "AddApplicationInput" => run_op!(protocol, body, |i| config::add_input(a, i)),
            "AddApplicationOutput" => run_op!(protocol, body, |i| config::add_output(a, i)),
            "DeleteApplicationOutput" => run_op!(protocol, body, |i| config::delete_output(a, i)),
            "AddApplicationReferenceDataSource" => {
                run_op!(protocol, body, |i| config::add_reference(a, i))
            }
            "DeleteApplicationReferenceDataSource" => {
                run_op!(protocol, body, |i| config::delete_reference(a, i))
            }
            "AddApplicationInputProcessingConfiguration" => {
                run_op!(protocol, body, |i| config::add_processing(a, i))
            }
            "DeleteApplicationInputProcessingConfiguration" => {
                run_op!(protocol, body, |i| config::delete_processing(a, i))
            }
            "AddApplicationCloudWatchLoggingOption" => {
                run_op!(protocol, body, |i| config::add_logging(a, i))
            }
            "DeleteApplicationCloudWatchLoggingOption" => {
                run_op!(protocol, body, |i| config::delete_logging(a, i))
            }
            "DiscoverInputSchema" => run_op!(protocol, body, |i| discover::discover(a, i)),
            "TagResource" => run_op!(protocol, body, |i| tags::tag_resource(a, i)),
            "UntagResource" => run_op!(protocol, body, |i| tags::untag_resource(a, i)),
            "ListTagsForResource" => run_op!(protocol, body, |i| tags::list_tags(a, i)),
            _ => Err(AwsError::new(codes::UNKNOWN_OPERATION, "")),
        }
    }
}
