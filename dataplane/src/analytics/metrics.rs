//! Metrics of running applications, registered in the process registry (`/metrics`).
//!
//! Labels are bounded by the applications and their in-application streams. The runner updates
//! them once per batch of records, never per row.

use std::sync::OnceLock;

use prometheus::{IntCounterVec, IntGaugeVec, Opts};

pub struct AnalyticsMetrics {
    /// Records read from input streams.
    pub input_records: IntCounterVec,
    /// Rows inserted into in-application input streams.
    pub input_rows: IntCounterVec,
    /// Rows taken from in-application streams for outputs.
    pub output_rows: IntCounterVec,
    /// Records written to destination streams.
    pub output_records: IntCounterVec,
    /// Output records a destination refused (retried until written).
    pub output_failures: IntCounterVec,
    /// Rows sent to error_stream.
    pub errors: IntCounterVec,
    /// Records read again at a restart to rebuild window state (their output is not written).
    pub replayed_records: IntCounterVec,
    /// How far the application's reading is behind the newest record of its input.
    pub input_lag_ms: IntGaugeVec,
    /// 1 while the application runs.
    pub running: IntGaugeVec,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    let _ = crate::metrics::global()
        .registry
        .register(Box::new(c.clone()));
    c
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    let _ = crate::metrics::global()
        .registry
        .register(Box::new(g.clone()));
    g
}

static GLOBAL: OnceLock<AnalyticsMetrics> = OnceLock::new();

pub fn global() -> &'static AnalyticsMetrics {
    GLOBAL.get_or_init(|| {
        let a = &["application"];
        let s = &["application", "stream"];
        AnalyticsMetrics {
            input_records: counter("analytics_input_records_total", "Records an application read from its input stream.", a),
            input_rows: counter("analytics_input_rows_total", "Rows inserted into an in-application input stream (SOURCE_SQL_STREAM_001...).", s),
            output_rows: counter("analytics_output_rows_total", "Rows an in-application stream delivered to its output.", s),
            output_records: counter("analytics_output_records_total", "Records written to an output's destination stream.", s),
            output_failures: counter("analytics_output_write_failures_total", "Output records a destination refused; they are retried until written.", s),
            errors: counter("analytics_error_rows_total", "Rows sent to error_stream (input coercion failures, division by zero...).", a),
            replayed_records: counter("analytics_replayed_records_total", "Records read again when the application started from a checkpoint, to refill the windows open at the checkpoint; their output was written before and is not written again.", a),
            input_lag_ms: gauge("analytics_input_lag_milliseconds", "Age of the newest record read when the application is behind its input; 0 when caught up (KDA's MillisBehindLatest).", a),
            running: gauge("analytics_running", "1 while the application is RUNNING.", a),
        }
    })
}

impl AnalyticsMetrics {
    /// Creates an application's series at zero.
    pub fn init(&self, app: &str, inputs: &[String], outputs: &[String]) {
        self.input_records.with_label_values(&[app]);
        self.errors.with_label_values(&[app]);
        self.replayed_records.with_label_values(&[app]);
        self.input_lag_ms.with_label_values(&[app]);
        self.running.with_label_values(&[app]);
        for s in inputs {
            self.input_rows.with_label_values(&[app, s]);
        }
        for s in outputs {
            self.output_rows.with_label_values(&[app, s]);
            self.output_records.with_label_values(&[app, s]);
            self.output_failures.with_label_values(&[app, s]);
        }
    }

    /// Removes a deleted application's series.
    pub fn remove(&self, app: &str, streams: &[String]) {
        for c in [&self.input_records, &self.errors, &self.replayed_records] {
            let _ = c.remove_label_values(&[app]);
        }
        for g in [&self.input_lag_ms, &self.running] {
            let _ = g.remove_label_values(&[app]);
        }
        for c in [
            &self.input_rows,
            &self.output_rows,
            &self.output_records,
            &self.output_failures,
        ] {
            for s in streams {
                let _ = c.remove_label_values(&[app, s]);
            }
        }
    }
}
