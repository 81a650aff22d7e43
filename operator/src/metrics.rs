//! Operator metrics: reconcile runs, failures by reason, durations, and resources by kind and
//! readiness. Every label set a dashboard shows is initialised to zero at start-up, so panels
//! never show "No data" for a counter that has not moved yet.

use std::{collections::HashMap, sync::Mutex, time::Instant};

use prometheus::{
    exponential_buckets, histogram_opts, opts, Encoder, HistogramVec, IntCounterVec, IntGaugeVec,
    Registry, TextEncoder,
};

/// Kinds the operator reconciles (the `kind` label).
pub const KINDS: [&str; 4] = ["Stream", "StreamConsumer", "DeliveryStream", "AnalyticsApp"];

/// Failure reasons initialised to zero for every kind.
const COMMON_REASONS: [&str; 4] = [
    "KubernetesApiError",
    "DataPlaneUnreachable",
    "DataPlaneError",
    "InvalidArgument",
];

/// The operator's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    runs: IntCounterVec,
    failures: IntCounterVec,
    duration: HistogramVec,
    resources: IntGaugeVec,
    readiness: Mutex<HashMap<(&'static str, String), &'static str>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric and initialises the label sets.
    pub fn new() -> Self {
        let registry = Registry::new();
        let runs = IntCounterVec::new(
            opts!(
                "tributary_operator_reconcile_runs_total",
                "Reconciles started, by kind."
            ),
            &["kind"],
        )
        .unwrap();
        let failures = IntCounterVec::new(
            opts!(
                "tributary_operator_reconcile_failures_total",
                "Reconciles that ended in an error, by kind and reason."
            ),
            &["kind", "reason"],
        )
        .unwrap();
        let duration = HistogramVec::new(
            histogram_opts!(
                "tributary_operator_reconcile_duration_seconds",
                "Duration of reconciles, by kind.",
                exponential_buckets(0.005, 2.0, 13).unwrap()
            ),
            &["kind"],
        )
        .unwrap();
        let resources = IntGaugeVec::new(
            opts!(
                "tributary_operator_resources",
                "Resources the operator manages, by kind and Ready condition status."
            ),
            &["kind", "ready"],
        )
        .unwrap();
        for m in [
            Box::new(runs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failures.clone()),
            Box::new(duration.clone()),
            Box::new(resources.clone()),
        ] {
            registry.register(m).unwrap();
        }
        for kind in KINDS {
            runs.with_label_values(&[kind]);
            duration.with_label_values(&[kind]);
            for reason in COMMON_REASONS {
                failures.with_label_values(&[kind, reason]);
            }
            for ready in ["True", "False", "Unknown"] {
                resources.with_label_values(&[kind, ready]);
            }
        }
        Self {
            registry,
            runs,
            failures,
            duration,
            resources,
            readiness: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a reconcile and returns a guard that observes its duration when dropped.
    pub fn reconcile(&self, kind: &'static str) -> ReconcileTimer<'_> {
        self.runs.with_label_values(&[kind]).inc();
        ReconcileTimer {
            metrics: self,
            kind,
            start: Instant::now(),
        }
    }

    /// Counts a failed reconcile.
    pub fn failure(&self, kind: &'static str, reason: &str) {
        self.failures.with_label_values(&[kind, reason]).inc();
    }

    /// Records the Ready status (`True`, `False`, `Unknown`) of one resource, or forgets it
    /// (`None`) once deleted, and refreshes the per-kind gauges.
    pub fn set_ready(&self, kind: &'static str, key: String, ready: Option<&'static str>) {
        let mut map = self.readiness.lock().unwrap_or_else(|p| p.into_inner());
        match ready {
            Some(r) => {
                map.insert((kind, key), r);
            }
            None => {
                map.remove(&(kind, key));
            }
        }
        for ready in ["True", "False", "Unknown"] {
            let n = map
                .iter()
                .filter(|((k, _), r)| *k == kind && **r == ready)
                .count();
            self.resources
                .with_label_values(&[kind, ready])
                .set(n as i64);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .unwrap();
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Observes a reconcile's duration on drop.
#[derive(Debug)]
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    kind: &'static str,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .with_label_values(&[self.kind])
            .observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dashboard_series_exists_at_zero_before_any_reconcile() {
        let text = Metrics::new().render();
        for needle in [
            "tributary_operator_reconcile_runs_total{kind=\"Stream\"} 0",
            "tributary_operator_reconcile_runs_total{kind=\"StreamConsumer\"} 0",
            "tributary_operator_reconcile_failures_total{kind=\"Stream\",reason=\"DataPlaneUnreachable\"} 0",
            "tributary_operator_resources{kind=\"Stream\",ready=\"True\"} 0",
            "tributary_operator_reconcile_duration_seconds_count{kind=\"Stream\"} 0",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    #[test]
    fn readiness_gauges_follow_resources_and_forget_deleted_ones() {
        let m = Metrics::new();
        m.set_ready("Stream", "ns/a".into(), Some("True"));
        m.set_ready("Stream", "ns/b".into(), Some("False"));
        m.set_ready("Stream", "ns/b".into(), Some("True"));
        assert!(m
            .render()
            .contains("tributary_operator_resources{kind=\"Stream\",ready=\"True\"} 2"));
        m.set_ready("Stream", "ns/a".into(), None);
        assert!(m
            .render()
            .contains("tributary_operator_resources{kind=\"Stream\",ready=\"True\"} 1"));
    }

    #[test]
    fn a_reconcile_is_counted_and_timed() {
        let m = Metrics::new();
        drop(m.reconcile("Stream"));
        m.failure("Stream", "DataPlaneError");
        let text = m.render();
        assert!(text.contains("tributary_operator_reconcile_runs_total{kind=\"Stream\"} 1"));
        assert!(
            text.contains("tributary_operator_reconcile_duration_seconds_count{kind=\"Stream\"} 1")
        );
        assert!(text.contains("reason=\"DataPlaneError\"} 1"));
    }
}
