//! Delivery stream metrics, named after Firehose's CloudWatch metrics (`AWS/Firehose`,
//! dimension `DeliveryStreamName`). Labels: `delivery_stream`, and `destination` (`S3`,
//! `HttpEndpoint`, `Redshift`) for delivery series; every series exists at zero from creation.

use prometheus::{IntCounterVec, IntGaugeVec, Registry};

use super::{counter, gauge};

pub struct FirehoseMetrics {
    pub requests: IntCounterVec,
    pub incoming_bytes: IntCounterVec,
    pub incoming_records: IntCounterVec,
    pub incoming_put_requests: IntCounterVec,
    pub throttled_records: IntCounterVec,
    pub delivered_records: IntCounterVec,
    pub delivered_bytes: IntCounterVec,
    pub delivery_attempts: IntCounterVec,
    pub failed_records: IntCounterVec,
    pub data_freshness_ms: IntGaugeVec,
    pub execute_processing: IntCounterVec,
    pub execute_processing_duration_ms: IntGaugeVec,
    pub succeed_processing_records: IntCounterVec,
    pub succeed_processing_bytes: IntCounterVec,
    pub failed_processing_records: IntCounterVec,
    pub succeed_conversion_records: IntCounterVec,
    pub succeed_conversion_bytes: IntCounterVec,
    pub failed_conversion_records: IntCounterVec,
    pub failed_conversion_bytes: IntCounterVec,
    pub partition_count: IntGaugeVec,
    pub partition_count_exceeded: IntGaugeVec,
    pub jq_processing_duration_ms: IntGaugeVec,
}

const DESTINATIONS: [&str; 3] = ["S3", "HttpEndpoint", "Redshift"];

impl FirehoseMetrics {
    pub(super) fn new(r: &Registry) -> FirehoseMetrics {
        let d = &["delivery_stream"];
        let dd = &["delivery_stream", "destination"];
        FirehoseMetrics {
            requests: counter(r, "firehose_requests_total", "Firehose API calls by operation and outcome (success, client_error, throttled, server_error).", &["operation", "outcome"]),
            incoming_bytes: counter(r, "firehose_incoming_bytes_total", "Bytes accepted by PutRecord and PutRecordBatch (CloudWatch IncomingBytes).", d),
            incoming_records: counter(r, "firehose_incoming_records_total", "Records accepted (CloudWatch IncomingRecords).", d),
            incoming_put_requests: counter(r, "firehose_incoming_put_requests_total", "PutRecord and PutRecordBatch calls accepted (CloudWatch IncomingPutRequests).", d),
            throttled_records: counter(r, "firehose_throttled_records_total", "Records refused for the DirectPut throughput quotas (CloudWatch ThrottledRecords).", d),
            delivered_records: counter(r, "firehose_delivery_records_total", "Records delivered (CloudWatch DeliveryToS3.Records, DeliveryToHttpEndpoint.Records).", dd),
            delivered_bytes: counter(r, "firehose_delivery_bytes_total", "Bytes delivered before compression (CloudWatch DeliveryToS3.Bytes, DeliveryToHttpEndpoint.Bytes).", dd),
            delivery_attempts: counter(r, "firehose_delivery_attempts_total", "Delivery attempts by outcome (CloudWatch DeliveryToS3.Success, DeliveryToHttpEndpoint.Success).", &["delivery_stream", "destination", "outcome"]),
            failed_records: counter(r, "firehose_delivery_failed_records_total", "Records written to the error output after the retry duration ran out.", dd),
            data_freshness_ms: gauge(r, "firehose_data_freshness_milliseconds", "Age of the oldest record not yet delivered (CloudWatch DeliveryToS3.DataFreshness).", d),
            execute_processing: counter(r, "firehose_execute_processing_total", "Lambda transformations of a batch by outcome (CloudWatch ExecuteProcessing.Success).", &["delivery_stream", "outcome"]),
            execute_processing_duration_ms: gauge(r, "firehose_execute_processing_duration_milliseconds", "Duration of the last batch's Lambda transformation (CloudWatch ExecuteProcessing.Duration).", d),
            succeed_processing_records: counter(r, "firehose_succeed_processing_records_total", "Records the Lambda transformation returned Ok (CloudWatch SucceedProcessing.Records).", d),
            succeed_processing_bytes: counter(r, "firehose_succeed_processing_bytes_total", "Bytes of the records the Lambda transformation returned Ok (CloudWatch SucceedProcessing.Bytes).", d),
            failed_processing_records: counter(r, "firehose_failed_processing_records_total", "Records that failed a processor (decompression, message extraction, de-aggregation, Lambda) and went to the error output.", d),
            succeed_conversion_records: counter(r, "firehose_succeed_conversion_records_total", "Records converted to Parquet (CloudWatch SucceedConversion.Records).", d),
            succeed_conversion_bytes: counter(r, "firehose_succeed_conversion_bytes_total", "Bytes of the records converted to Parquet (CloudWatch SucceedConversion.Bytes).", d),
            failed_conversion_records: counter(r, "firehose_failed_conversion_records_total", "Records that failed format conversion (CloudWatch FailedConversion.Records).", d),
            failed_conversion_bytes: counter(r, "firehose_failed_conversion_bytes_total", "Bytes of the records that failed format conversion (CloudWatch FailedConversion.Bytes).", d),
            partition_count: gauge(r, "firehose_partition_count", "Partitions of the last delivered batch with dynamic partitioning (CloudWatch PartitionCount).", d),
            partition_count_exceeded: gauge(r, "firehose_partition_count_exceeded", "1 when the last batch had more partitions than the quota (CloudWatch PartitionCountExceeded).", d),
            jq_processing_duration_ms: gauge(r, "firehose_jq_processing_duration_milliseconds", "Time the last batch's partition keys took to extract with jq (CloudWatch JQProcessing.Duration).", d),
        }
    }

    /// Creates a delivery stream's series at zero.
    pub fn init(&self, name: &str) {
        for c in self.per_stream_counters() {
            c.with_label_values(&[name]);
        }
        for g in self.per_stream_gauges() {
            g.with_label_values(&[name]);
        }
        for outcome in ["success", "failure"] {
            self.execute_processing.with_label_values(&[name, outcome]);
        }
        for dest in DESTINATIONS {
            for c in [
                &self.delivered_records,
                &self.delivered_bytes,
                &self.failed_records,
            ] {
                c.with_label_values(&[name, dest]);
            }
            for outcome in ["success", "failure"] {
                self.delivery_attempts
                    .with_label_values(&[name, dest, outcome]);
            }
        }
    }

    /// Removes a deleted delivery stream's series.
    pub fn remove(&self, name: &str) {
        for c in self.per_stream_counters() {
            let _ = c.remove_label_values(&[name]);
        }
        for g in self.per_stream_gauges() {
            let _ = g.remove_label_values(&[name]);
        }
        for outcome in ["success", "failure"] {
            let _ = self
                .execute_processing
                .remove_label_values(&[name, outcome]);
        }
        for dest in DESTINATIONS {
            for c in [
                &self.delivered_records,
                &self.delivered_bytes,
                &self.failed_records,
            ] {
                let _ = c.remove_label_values(&[name, dest]);
            }
            for outcome in ["success", "failure"] {
                let _ = self
                    .delivery_attempts
                    .remove_label_values(&[name, dest, outcome]);
            }
        }
    }

    fn per_stream_counters(&self) -> [&IntCounterVec; 10] {
        [
            &self.incoming_bytes,
            &self.incoming_records,
            &self.incoming_put_requests,
            &self.succeed_processing_records,
            &self.succeed_processing_bytes,
            &self.failed_processing_records,
            &self.succeed_conversion_records,
            &self.succeed_conversion_bytes,
            &self.failed_conversion_records,
            &self.failed_conversion_bytes,
        ]
    }

    fn per_stream_gauges(&self) -> [&IntGaugeVec; 5] {
        [
            &self.data_freshness_ms,
            &self.execute_processing_duration_ms,
            &self.partition_count,
            &self.partition_count_exceeded,
            &self.jq_processing_duration_ms,
        ]
    }

    /// One batch's Lambda transformation: whether every invocation succeeded, and how long
    /// it took.
    pub fn executed(&self, name: &str, ok: bool, duration_ms: i64) {
        let outcome = if ok { "success" } else { "failure" };
        self.execute_processing
            .with_label_values(&[name, outcome])
            .inc();
        self.execute_processing_duration_ms
            .with_label_values(&[name])
            .set(duration_ms);
    }

    pub fn processing_succeeded(&self, name: &str, records: usize, bytes: usize) {
        self.succeed_processing_records
            .with_label_values(&[name])
            .inc_by(records as u64);
        self.succeed_processing_bytes
            .with_label_values(&[name])
            .inc_by(bytes as u64);
    }

    pub fn processing_failed(&self, name: &str, records: usize) {
        self.failed_processing_records
            .with_label_values(&[name])
            .inc_by(records as u64);
    }

    pub fn conversion(&self, name: &str, ok: bool, records: usize, bytes: usize) {
        let (r, b) = if ok {
            (
                &self.succeed_conversion_records,
                &self.succeed_conversion_bytes,
            )
        } else {
            (
                &self.failed_conversion_records,
                &self.failed_conversion_bytes,
            )
        };
        r.with_label_values(&[name]).inc_by(records as u64);
        b.with_label_values(&[name]).inc_by(bytes as u64);
    }

    pub fn partitions(&self, name: &str, count: usize, exceeded: bool, jq_ms: i64) {
        self.jq_processing_duration_ms
            .with_label_values(&[name])
            .set(jq_ms);
        self.partition_count
            .with_label_values(&[name])
            .set(count as i64);
        self.partition_count_exceeded
            .with_label_values(&[name])
            .set(exceeded as i64);
    }

    pub fn incoming(&self, name: &str, records: usize, bytes: usize) {
        self.incoming_put_requests.with_label_values(&[name]).inc();
        self.incoming_records
            .with_label_values(&[name])
            .inc_by(records as u64);
        self.incoming_bytes
            .with_label_values(&[name])
            .inc_by(bytes as u64);
    }

    pub fn delivered(&self, name: &str, dest: &str, records: usize, bytes: usize) {
        self.delivered_records
            .with_label_values(&[name, dest])
            .inc_by(records as u64);
        self.delivered_bytes
            .with_label_values(&[name, dest])
            .inc_by(bytes as u64);
    }

    pub fn attempt(&self, name: &str, dest: &str, ok: bool) {
        let outcome = if ok { "success" } else { "failure" };
        self.delivery_attempts
            .with_label_values(&[name, dest, outcome])
            .inc();
    }

    pub fn failed(&self, name: &str, dest: &str, records: usize) {
        self.failed_records
            .with_label_values(&[name, dest])
            .inc_by(records as u64);
    }

    pub fn freshness(&self, name: &str, ms: i64) {
        self.data_freshness_ms.with_label_values(&[name]).set(ms);
    }
}
