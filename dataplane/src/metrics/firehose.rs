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
        }
    }

    /// Creates a delivery stream's series at zero.
    pub fn init(&self, name: &str) {
        for c in [
            &self.incoming_bytes,
            &self.incoming_records,
            &self.incoming_put_requests,
        ] {
            c.with_label_values(&[name]);
        }
        self.data_freshness_ms.with_label_values(&[name]);
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
        for c in [
            &self.incoming_bytes,
            &self.incoming_records,
            &self.incoming_put_requests,
        ] {
            let _ = c.remove_label_values(&[name]);
        }
        let _ = self.data_freshness_ms.remove_label_values(&[name]);
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
