//! Prometheus metrics named after Kinesis's CloudWatch metrics.
//!
//! Stream-level series carry a `stream` label; shard-level series (`kinesis_shard_*`) exist
//! only for the metrics a stream has switched on with EnableEnhancedMonitoring, as in
//! CloudWatch. Labels are bounded by the set of streams and shards; a stream's series are
//! created at zero when it is created and removed with it. Updates are per request, never per
//! record.

mod firehose;

use std::sync::OnceLock;

pub use firehose::FirehoseMetrics;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub incoming_bytes: IntCounterVec,
    pub incoming_records: IntCounterVec,
    pub put_records_entries: IntCounterVec,
    pub get_records_bytes: IntCounterVec,
    pub get_records_records: IntCounterVec,
    pub iterator_age_ms: IntGaugeVec,
    pub write_throttled: IntCounterVec,
    pub read_throttled: IntCounterVec,
    pub reshards: IntCounterVec,
    pub open_shards: IntGaugeVec,
    pub closed_shards: IntGaugeVec,
    pub shard_incoming_bytes: IntCounterVec,
    pub shard_incoming_records: IntCounterVec,
    pub shard_outgoing_bytes: IntCounterVec,
    pub shard_outgoing_records: IntCounterVec,
    pub shard_iterator_age_ms: IntGaugeVec,
    pub shard_write_throttled: IntCounterVec,
    pub shard_read_throttled: IntCounterVec,
    pub subscribe_to_shard_active: prometheus::IntGauge,
    pub subscribe_to_shard_event_records: IntCounterVec,
    pub subscribe_to_shard_event_bytes: IntCounterVec,
    pub subscribe_to_shard_millis_behind: IntGaugeVec,
    /// Delivery stream (Firehose) series.
    pub firehose: FirehoseMetrics,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

/// Shard-level metric names as EnableEnhancedMonitoring takes them.
pub const SHARD_LEVEL_METRICS: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let s = &["stream"];
        let ss = &["stream", "shard"];
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "kinesis_request_duration_seconds",
                "Latency of API calls by operation (CloudWatch PutRecord.Latency, PutRecords.Latency, GetRecords.Latency).",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["operation"],
        )
        .expect("valid metric");
        r.register(Box::new(request_duration.clone()))
            .expect("unique metric");
        Metrics {
            requests: counter(&r, "kinesis_requests_total", "API calls by operation and outcome (success, client_error, throttled, server_error).", &["operation", "outcome"]),
            request_duration,
            incoming_bytes: counter(&r, "kinesis_incoming_bytes_total", "Bytes successfully put (CloudWatch IncomingBytes).", s),
            incoming_records: counter(&r, "kinesis_incoming_records_total", "Records successfully put (CloudWatch IncomingRecords).", s),
            put_records_entries: counter(&r, "kinesis_put_records_entries_total", "PutRecords entries by outcome (CloudWatch PutRecords.SuccessfulRecords, FailedRecords, ThrottledRecords).", &["stream", "outcome"]),
            get_records_bytes: counter(&r, "kinesis_get_records_bytes_total", "Bytes returned by GetRecords (CloudWatch GetRecords.Bytes).", s),
            get_records_records: counter(&r, "kinesis_get_records_records_total", "Records returned by GetRecords (CloudWatch GetRecords.Records).", s),
            iterator_age_ms: gauge(&r, "kinesis_get_records_iterator_age_milliseconds", "Age of the last record returned by GetRecords (CloudWatch GetRecords.IteratorAgeMilliseconds).", s),
            write_throttled: counter(&r, "kinesis_write_provisioned_throughput_exceeded_total", "Records refused for a shard's write limit (CloudWatch WriteProvisionedThroughputExceeded).", s),
            read_throttled: counter(&r, "kinesis_read_provisioned_throughput_exceeded_total", "GetRecords calls refused for a shard's read limit (CloudWatch ReadProvisionedThroughputExceeded).", s),
            reshards: counter(&r, "kinesis_reshards_total", "Completed shard splits and merges.", s),
            open_shards: gauge(&r, "kinesis_open_shards", "Open shards of a stream.", s),
            closed_shards: gauge(&r, "kinesis_closed_shards", "Closed shards of a stream still within retention.", s),
            shard_incoming_bytes: counter(&r, "kinesis_shard_incoming_bytes_total", "Shard-level IncomingBytes (enhanced monitoring).", ss),
            shard_incoming_records: counter(&r, "kinesis_shard_incoming_records_total", "Shard-level IncomingRecords (enhanced monitoring).", ss),
            shard_outgoing_bytes: counter(&r, "kinesis_shard_outgoing_bytes_total", "Shard-level OutgoingBytes (enhanced monitoring).", ss),
            shard_outgoing_records: counter(&r, "kinesis_shard_outgoing_records_total", "Shard-level OutgoingRecords (enhanced monitoring).", ss),
            shard_iterator_age_ms: gauge(&r, "kinesis_shard_iterator_age_milliseconds", "Shard-level IteratorAgeMilliseconds (enhanced monitoring).", ss),
            shard_write_throttled: counter(&r, "kinesis_shard_write_provisioned_throughput_exceeded_total", "Shard-level WriteProvisionedThroughputExceeded (enhanced monitoring).", ss),
            shard_read_throttled: counter(&r, "kinesis_shard_read_provisioned_throughput_exceeded_total", "Shard-level ReadProvisionedThroughputExceeded (enhanced monitoring).", ss),
            subscribe_to_shard_active: {
                let g = prometheus::IntGauge::new("kinesis_subscribe_to_shard_active", "Live SubscribeToShard subscriptions.").expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            subscribe_to_shard_event_records: counter(&r, "kinesis_subscribe_to_shard_event_records_total", "Records pushed to enhanced fan-out consumers (CloudWatch SubscribeToShardEvent.Records).", &["stream", "consumer"]),
            subscribe_to_shard_event_bytes: counter(&r, "kinesis_subscribe_to_shard_event_bytes_total", "Bytes pushed to enhanced fan-out consumers (CloudWatch SubscribeToShardEvent.Bytes).", &["stream", "consumer"]),
            subscribe_to_shard_millis_behind: gauge(&r, "kinesis_subscribe_to_shard_millis_behind_latest", "How far behind the tip a consumer's last event was (CloudWatch SubscribeToShardEvent.MillisBehindLatest).", &["stream", "consumer"]),
            firehose: FirehoseMetrics::new(&r),
            registry: r,
        }
    }

    /// Creates a stream's series at zero.
    pub fn init_stream(&self, stream: &str) {
        for c in [
            &self.incoming_bytes,
            &self.incoming_records,
            &self.get_records_bytes,
            &self.get_records_records,
            &self.write_throttled,
            &self.read_throttled,
            &self.reshards,
        ] {
            c.with_label_values(&[stream]);
        }
        for outcome in ["success", "failed", "throttled"] {
            self.put_records_entries
                .with_label_values(&[stream, outcome]);
        }
        self.iterator_age_ms.with_label_values(&[stream]);
    }

    /// Removes every series of a deleted stream and its shards.
    pub fn remove_stream(&self, stream: &str, shards: &[String]) {
        for c in [
            &self.incoming_bytes,
            &self.incoming_records,
            &self.get_records_bytes,
            &self.get_records_records,
            &self.write_throttled,
            &self.read_throttled,
            &self.reshards,
        ] {
            let _ = c.remove_label_values(&[stream]);
        }
        for outcome in ["success", "failed", "throttled"] {
            let _ = self
                .put_records_entries
                .remove_label_values(&[stream, outcome]);
        }
        for g in [
            &self.iterator_age_ms,
            &self.open_shards,
            &self.closed_shards,
        ] {
            let _ = g.remove_label_values(&[stream]);
        }
        for shard in shards {
            for c in [
                &self.shard_incoming_bytes,
                &self.shard_incoming_records,
                &self.shard_outgoing_bytes,
                &self.shard_outgoing_records,
                &self.shard_write_throttled,
                &self.shard_read_throttled,
            ] {
                let _ = c.remove_label_values(&[stream, shard]);
            }
            let _ = self
                .shard_iterator_age_ms
                .remove_label_values(&[stream, shard]);
        }
    }

    /// Records an API call's outcome and latency.
    pub fn request(&self, operation: &str, outcome: &str, seconds: f64) {
        self.requests.with_label_values(&[operation, outcome]).inc();
        self.request_duration
            .with_label_values(&[operation])
            .observe(seconds);
    }

    pub fn write_throttled(&self, stream: &crate::streams::Stream, shard: &str) {
        self.write_throttled
            .with_label_values(&[&stream.name])
            .inc();
        if stream
            .state()
            .enhanced_metrics
            .contains("WriteProvisionedThroughputExceeded")
        {
            self.shard_write_throttled
                .with_label_values(&[&stream.name, shard])
                .inc();
        }
    }

    pub fn read_throttled(&self, stream: &crate::streams::Stream, shard: &str) {
        self.read_throttled.with_label_values(&[&stream.name]).inc();
        if stream
            .state()
            .enhanced_metrics
            .contains("ReadProvisionedThroughputExceeded")
        {
            self.shard_read_throttled
                .with_label_values(&[&stream.name, shard])
                .inc();
        }
    }

    pub fn reshard(&self, stream: &str) {
        self.reshards.with_label_values(&[stream]).inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

static GLOBAL: OnceLock<Metrics> = OnceLock::new();

/// The process's metrics.
pub fn global() -> &'static Metrics {
    GLOBAL.get_or_init(Metrics::new)
}
