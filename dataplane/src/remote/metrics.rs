//! Metrics of the calls to remote stream endpoints, registered in the process registry
//! (`/metrics`). Labels are bounded: the configured streams, five operations, six outcomes.

use std::sync::OnceLock;

use prometheus::{IntCounterVec, Opts};

use super::RemoteError;

/// The operations the remote client calls.
pub const OPERATIONS: [&str; 5] = [
    "ListShards",
    "GetShardIterator",
    "GetRecords",
    "PutRecords",
    "DescribeStreamSummary",
];

pub struct RemoteMetrics {
    /// Calls (each attempt, retries included) by stream, operation and outcome.
    pub requests: IntCounterVec,
    /// PutRecords entries the endpoint refused (retried).
    pub put_entries_refused: IntCounterVec,
}

static GLOBAL: OnceLock<RemoteMetrics> = OnceLock::new();

pub fn global() -> &'static RemoteMetrics {
    GLOBAL.get_or_init(|| {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            let _ = crate::metrics::global()
                .registry
                .register(Box::new(c.clone()));
            c
        };
        RemoteMetrics {
            requests: counter(
                "remote_kinesis_requests_total",
                "Calls to the Kinesis endpoint of a remote stream (--stream-endpoint), each attempt counted, by outcome (success, throttled, client_error, server_error, unreachable, tls_error).",
                &["stream", "operation", "outcome"],
            ),
            put_entries_refused: counter(
                "remote_kinesis_put_entries_refused_total",
                "PutRecords entries a remote stream's endpoint refused (throttled or failed); they are retried.",
                &["stream"],
            ),
        }
    })
}

impl RemoteMetrics {
    /// Creates the series of a remote stream at zero.
    pub fn init(&self, stream: &str) {
        for op in OPERATIONS {
            self.requests.with_label_values(&[stream, op, "success"]);
        }
        self.put_entries_refused.with_label_values(&[stream]);
    }

    pub fn record(&self, stream: &str, operation: &str, result: Result<(), &RemoteError>) {
        self.requests
            .with_label_values(&[stream, operation, outcome(result)])
            .inc();
    }
}

fn outcome(result: Result<(), &RemoteError>) -> &'static str {
    match result {
        Ok(()) => "success",
        Err(RemoteError::Unreachable { .. }) => "unreachable",
        Err(RemoteError::Tls { .. }) => "tls_error",
        Err(RemoteError::Aws { status, .. }) if *status >= 500 => "server_error",
        Err(e) if e.is_transient() => "throttled",
        Err(_) => "client_error",
    }
}
