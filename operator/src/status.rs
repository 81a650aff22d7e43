//! Status computation: from what a reconcile observed to the `status` it writes. Pure
//! functions; the controllers write the result only when it differs from the current status.
//!
//! The contract (kstatus, Flux, Argo CD, `kubectl wait --for=condition=Ready`):
//!
//! - `Ready=True` only when the resource works as its current spec says; then `Reconciling`
//!   and `Stalled` are `False`.
//! - `Reconciling=True` while converging; `Stalled=True` on a terminal error, which sticks until
//!   the spec changes.
//! - `observedGeneration` moves to `metadata.generation` only once that generation is fully
//!   applied (Ready) or known to be impossible (Stalled); while converging or paused it keeps
//!   the previous value, so kstatus keeps reporting the resource as in progress.

use tributary_api::{
    status::{set_condition, Condition, ConditionStatus, READY, RECONCILING, STALLED},
    AnalyticsAppStatus, DeliveryStreamStatus, ReshardingStatus, StreamConsumerStatus, StreamMode,
    StreamStatus,
};

use crate::dataplane::{
    ApplicationDetail, ConsumerDescription, DeliveryStreamDescription, StreamSummary,
};
use crate::query::QueryError;

/// Condition type of an AnalyticsApp: its application code parses and plans.
pub const QUERY_VALID: &str = "QueryValid";

/// Overall health of a resource after a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Works as specified.
    Ready,
    /// Converging.
    Progressing,
    /// Cannot make progress until the spec changes.
    Stalled,
    /// Reconciliation is paused by annotation.
    Paused,
}

/// Health with the reason and message the conditions carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Health.
    pub health: Health,
    /// CamelCase reason, shown in the `Status` printer column.
    pub reason: &'static str,
    /// Detail.
    pub message: String,
}

impl Verdict {
    /// A verdict.
    pub fn new(health: Health, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            health,
            reason,
            message: message.into(),
        }
    }
}

/// The three kstatus conditions for `verdict`, keeping transition times of conditions whose
/// status did not change.
pub fn conditions(
    old: &[Condition],
    generation: Option<i64>,
    verdict: &Verdict,
    now: &str,
) -> Vec<Condition> {
    use ConditionStatus::{False, True, Unknown};
    let (ready, reconciling, stalled) = match verdict.health {
        Health::Ready => (True, False, False),
        Health::Progressing => (False, True, False),
        Health::Stalled => (False, False, True),
        Health::Paused => (Unknown, False, False),
    };
    let mut out = old.to_vec();
    for (type_, status) in [
        (READY, ready),
        (RECONCILING, reconciling),
        (STALLED, stalled),
    ] {
        let mut c = Condition::new(type_, status, verdict.reason, verdict.message.clone());
        c.observed_generation = generation;
        set_condition(&mut out, c, now);
    }
    out
}

/// `observedGeneration` after a reconcile with `verdict` (see the module docs).
pub fn observed_generation(
    old: Option<i64>,
    generation: Option<i64>,
    verdict: &Verdict,
) -> Option<i64> {
    match verdict.health {
        Health::Ready | Health::Stalled => generation,
        Health::Progressing | Health::Paused => Some(old.unwrap_or(0)),
    }
}

/// What a reconcile of a `Stream` found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamPhase {
    /// The `tributary.dev/pause-reconciliation` annotation is set.
    Paused,
    /// The data plane is not reachable yet (pods starting or restarting).
    WaitingForPods(String),
    /// The stream is being created.
    Creating,
    /// A shard-count change runs: `from` open shards towards `target`, this step to `step`.
    Resharding {
        /// Open shards before this change.
        from: i32,
        /// `spec.shardCount`.
        target: i32,
        /// The count requested from the data plane in this step.
        step: i32,
    },
    /// Another change (mode, retention, tags, encryption, record size) is being applied.
    Updating(&'static str),
    /// The stream is ACTIVE and matches the spec.
    Active,
    /// A transient failure; retried with backoff.
    Retrying {
        /// CamelCase reason.
        reason: &'static str,
        /// Detail.
        message: String,
    },
    /// A terminal failure; sticks until the spec changes.
    Stalled {
        /// CamelCase reason.
        reason: &'static str,
        /// Detail.
        message: String,
    },
}

impl StreamPhase {
    /// The health, reason and message of this phase.
    pub fn verdict(&self, summary: Option<&StreamSummary>) -> Verdict {
        use Health::*;
        match self {
            StreamPhase::Paused => Verdict::new(
                Paused,
                "Paused",
                "Reconciliation is paused by the tributary.dev/pause-reconciliation annotation",
            ),
            StreamPhase::WaitingForPods(m) => Verdict::new(
                Progressing,
                "WaitingForPods",
                format!("Waiting for the data-plane pods: {m}"),
            ),
            StreamPhase::Creating => Verdict::new(Progressing, "Creating", "Creating the stream"),
            StreamPhase::Resharding { from, target, step } => Verdict::new(
                Progressing,
                "Resharding",
                format!("Resharding from {from} to {target} open shards (this step: {step})"),
            ),
            StreamPhase::Updating(what) => {
                Verdict::new(Progressing, what, format!("{what} in the data plane"))
            }
            StreamPhase::Active => Verdict::new(
                Ready,
                "Active",
                match summary {
                    Some(s) => format!("Stream is ACTIVE with {} open shards", s.open_shard_count),
                    None => "Stream is ACTIVE".into(),
                },
            ),
            StreamPhase::Retrying { reason, message } => {
                Verdict::new(Progressing, reason, message.clone())
            }
            StreamPhase::Stalled { reason, message } => {
                Verdict::new(Stalled, reason, message.clone())
            }
        }
    }
}

/// Everything [`stream_status`] needs besides the phase.
#[derive(Debug, Clone)]
pub struct StreamObservation<'a> {
    /// The current status (previous reconcile's result, or the schema default).
    pub old: Option<&'a StreamStatus>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `spec.streamMode`.
    pub mode: StreamMode,
    /// DescribeStreamSummary, when the data plane answered.
    pub summary: Option<&'a StreamSummary>,
    /// Label selector of the pods.
    pub selector: String,
    /// In-cluster Kinesis endpoint.
    pub endpoint: String,
    /// A multi-pod stream's StatefulSet replicas and ready pods (when the StatefulSet reported
    /// them); `None` for a single-pod stream or when the pods were not looked at.
    pub pods: Option<(i32, Option<i32>)>,
}

/// The status of a `Stream` after a reconcile that ended in `phase`, at time `now`.
pub fn stream_status(obs: &StreamObservation<'_>, phase: &StreamPhase, now: &str) -> StreamStatus {
    let old = obs.old.cloned().unwrap_or_default();
    let verdict = phase.verdict(obs.summary);
    let resharding = match phase {
        StreamPhase::Resharding { from, target, step } => {
            // The same change continuing keeps its start time and original count.
            let previous = old
                .resharding
                .as_ref()
                .filter(|r| r.target_count == *target);
            Some(ReshardingStatus {
                from_count: previous.map(|r| r.from_count).unwrap_or(*from),
                target_count: *target,
                phase: "InProgress".into(),
                started_at: previous
                    .and_then(|r| r.started_at.clone())
                    .or_else(|| Some(now.to_string())),
                message: format!(
                    "UpdateShardCount to {step}; a change of more than double or half takes several steps"
                ),
            })
        }
        // While the data plane is unreachable, an ongoing change is still ongoing.
        StreamPhase::WaitingForPods(_) | StreamPhase::Retrying { .. } | StreamPhase::Paused => {
            old.resharding.clone()
        }
        _ => None,
    };
    let open = obs
        .summary
        .map(|s| s.open_shard_count)
        .or(old.open_shard_count);
    StreamStatus {
        observed_generation: observed_generation(old.observed_generation, obs.generation, &verdict),
        conditions: conditions(&old.conditions, obs.generation, &verdict, now),
        stream_status: obs
            .summary
            .map(|s| s.stream_status.clone())
            .or(old.stream_status),
        stream_arn: obs.summary.map(|s| s.stream_arn.clone()).or(old.stream_arn),
        // ON_DEMAND streams have no /scale semantics, but the count is still worth showing.
        open_shard_count: match obs.mode {
            StreamMode::Provisioned | StreamMode::OnDemand => open,
        },
        retention_period_hours: obs
            .summary
            .map(|s| s.retention_period_hours)
            .or(old.retention_period_hours),
        selector: Some(obs.selector.clone()),
        endpoint: Some(obs.endpoint.clone()),
        replicas: obs.pods.map(|p| p.0).or(old.replicas),
        ready_replicas: match obs.pods {
            Some((_, ready)) => ready.or(old.ready_replicas),
            None => old.ready_replicas,
        },
        resharding,
    }
}

/// What a reconcile of a `StreamConsumer` found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerPhase {
    /// The `tributary.dev/pause-reconciliation` annotation is set.
    Paused,
    /// The referenced Stream does not exist yet or is not ready.
    WaitingForStream(String),
    /// The consumer is registered and CREATING.
    Registering,
    /// The consumer is ACTIVE.
    Active,
    /// A transient failure.
    Retrying {
        /// CamelCase reason.
        reason: &'static str,
        /// Detail.
        message: String,
    },
    /// A terminal failure.
    Stalled {
        /// CamelCase reason.
        reason: &'static str,
        /// Detail.
        message: String,
    },
}

impl ConsumerPhase {
    /// The health, reason and message of this phase.
    pub fn verdict(&self) -> Verdict {
        use Health::*;
        match self {
            ConsumerPhase::Paused => Verdict::new(
                Paused,
                "Paused",
                "Reconciliation is paused by the tributary.dev/pause-reconciliation annotation",
            ),
            ConsumerPhase::WaitingForStream(m) => {
                Verdict::new(Progressing, "WaitingForStream", m.clone())
            }
            ConsumerPhase::Registering => {
                Verdict::new(Progressing, "Registering", "Registering the consumer")
            }
            ConsumerPhase::Active => Verdict::new(Ready, "Active", "Consumer is ACTIVE"),
            ConsumerPhase::Retrying { reason, message } => {
                Verdict::new(Progressing, reason, message.clone())
            }
            ConsumerPhase::Stalled { reason, message } => {
                Verdict::new(Stalled, reason, message.clone())
            }
        }
    }
}

/// The status of a `StreamConsumer` after a reconcile that ended in `phase`.
pub fn consumer_status(
    old: Option<&StreamConsumerStatus>,
    generation: Option<i64>,
    described: Option<&ConsumerDescription>,
    stream_arn: Option<&str>,
    phase: &ConsumerPhase,
    now: &str,
) -> StreamConsumerStatus {
    let old = old.cloned().unwrap_or_default();
    let verdict = phase.verdict();
    StreamConsumerStatus {
        observed_generation: observed_generation(old.observed_generation, generation, &verdict),
        conditions: conditions(&old.conditions, generation, &verdict, now),
        consumer_arn: described
            .map(|d| d.consumer_arn.clone())
            .or(old.consumer_arn),
        consumer_status: described
            .map(|d| d.consumer_status.clone())
            .or(old.consumer_status),
        stream_arn: stream_arn.map(str::to_string).or(old.stream_arn),
    }
}

/// What a reconcile of a `DeliveryStream` or `AnalyticsApp` (a workload: a Deployment of the
/// data plane) found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadPhase {
    /// The `tributary.dev/pause-reconciliation` annotation is set.
    Paused,
    /// A referenced Stream does not exist yet or has no endpoint.
    WaitingForStream(String),
    /// A referenced Secret does not exist: nothing can start until it does.
    SecretNotFound(String),
    /// The application code does not compile; nothing is deployed.
    InvalidQuery(String),
    /// The pod does not answer yet (starting, restarting).
    WaitingForPods(String),
    /// The pod answers; the delivery stream or application is not active yet (its status).
    Starting(String),
    /// ACTIVE (delivery stream) or RUNNING (application).
    Active(&'static str),
    /// A transient failure.
    Retrying {
        /// CamelCase reason.
        reason: &'static str,
        /// Detail.
        message: String,
    },
    /// A terminal failure.
    Stalled {
        /// CamelCase reason.
        reason: &'static str,
        /// Detail.
        message: String,
    },
}

impl WorkloadPhase {
    /// The health, reason and message of this phase.
    pub fn verdict(&self) -> Verdict {
        use Health::*;
        match self {
            WorkloadPhase::Paused => Verdict::new(
                Paused,
                "Paused",
                "Reconciliation is paused by the tributary.dev/pause-reconciliation annotation",
            ),
            WorkloadPhase::WaitingForStream(m) => {
                Verdict::new(Progressing, "WaitingForStream", m.clone())
            }
            WorkloadPhase::SecretNotFound(m) => Verdict::new(Stalled, "SecretNotFound", m.clone()),
            WorkloadPhase::InvalidQuery(m) => Verdict::new(Stalled, "InvalidQuery", m.clone()),
            WorkloadPhase::WaitingForPods(m) => Verdict::new(
                Progressing,
                "WaitingForPods",
                format!("Waiting for the data-plane pod: {m}"),
            ),
            WorkloadPhase::Starting(status) => {
                Verdict::new(Progressing, "Starting", format!("Status is {status}"))
            }
            WorkloadPhase::Active(status) => {
                let reason = if *status == "RUNNING" {
                    "Running"
                } else {
                    "Active"
                };
                Verdict::new(Ready, reason, format!("Status is {status}"))
            }
            WorkloadPhase::Retrying { reason, message } => {
                Verdict::new(Progressing, reason, message.clone())
            }
            WorkloadPhase::Stalled { reason, message } => {
                Verdict::new(Stalled, reason, message.clone())
            }
        }
    }
}

/// The status of a `DeliveryStream` after a reconcile that ended in `phase`.
pub fn delivery_status(
    old: Option<&DeliveryStreamStatus>,
    generation: Option<i64>,
    described: Option<&DeliveryStreamDescription>,
    endpoint: &str,
    phase: &WorkloadPhase,
    now: &str,
) -> DeliveryStreamStatus {
    let old = old.cloned().unwrap_or_default();
    let verdict = phase.verdict();
    DeliveryStreamStatus {
        observed_generation: observed_generation(old.observed_generation, generation, &verdict),
        conditions: conditions(&old.conditions, generation, &verdict, now),
        delivery_stream_arn: described
            .map(|d| d.delivery_stream_arn.clone())
            .or(old.delivery_stream_arn),
        delivery_stream_status: described
            .map(|d| d.delivery_stream_status.clone())
            .or(old.delivery_stream_status),
        version_id: described
            .and_then(|d| d.version_id.clone())
            .or(old.version_id),
        endpoint: Some(endpoint.to_string()),
    }
}

/// The status of an `AnalyticsApp` after a reconcile that ended in `phase`; `query` is the
/// outcome of validating the code, when it was validated (not while paused).
pub fn analytics_status(
    old: Option<&AnalyticsAppStatus>,
    generation: Option<i64>,
    detail: Option<&ApplicationDetail>,
    endpoint: &str,
    query: Option<&Result<(), QueryError>>,
    phase: &WorkloadPhase,
    now: &str,
) -> AnalyticsAppStatus {
    let old = old.cloned().unwrap_or_default();
    let verdict = phase.verdict();
    let mut conds = conditions(&old.conditions, generation, &verdict, now);
    if let Some(q) = query {
        let mut c = match q {
            Ok(()) => Condition::new(
                QUERY_VALID,
                ConditionStatus::True,
                "Valid",
                "The application code parses and plans",
            ),
            Err(e) => Condition::new(QUERY_VALID, ConditionStatus::False, e.reason, &e.message),
        };
        c.observed_generation = generation;
        set_condition(&mut conds, c, now);
    }
    AnalyticsAppStatus {
        observed_generation: observed_generation(old.observed_generation, generation, &verdict),
        conditions: conds,
        application_arn: detail
            .map(|d| d.application_arn.clone())
            .or(old.application_arn),
        application_status: detail
            .map(|d| d.application_status.clone())
            .or(old.application_status),
        application_version_id: detail
            .and_then(|d| d.application_version_id)
            .or(old.application_version_id),
        endpoint: Some(endpoint.to_string()),
    }
}

/// The `Ready` condition's reason, if any: what transitions (and events) are keyed on.
pub fn ready_reason(conditions: &[Condition]) -> Option<&str> {
    tributary_api::status::find_condition(conditions, READY).map(|c| c.reason.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::summary;
    use tributary_api::status::{find_condition, initial_conditions};

    fn obs<'a>(
        old: Option<&'a StreamStatus>,
        summary: Option<&'a StreamSummary>,
        generation: i64,
    ) -> StreamObservation<'a> {
        StreamObservation {
            old,
            generation: Some(generation),
            mode: StreamMode::Provisioned,
            summary,
            selector: "app=x".into(),
            endpoint: "http://x.default.svc:4567".into(),
            pods: None,
        }
    }

    #[test]
    fn a_multi_pod_stream_reports_its_pods_and_keeps_them_while_not_looked_at() {
        let sum = summary("orders", 4, "ACTIVE");
        let mut o = obs(None, Some(&sum), 1);
        o.pods = Some((2, Some(1)));
        let s = stream_status(&o, &StreamPhase::Active, "t1");
        assert_eq!((s.replicas, s.ready_replicas), (Some(2), Some(1)));
        let mut o = obs(Some(&s), None, 1);
        o.pods = None;
        let paused = stream_status(&o, &StreamPhase::Paused, "t2");
        assert_eq!((paused.replicas, paused.ready_replicas), (Some(2), Some(1)));
        let single = stream_status(&obs(None, Some(&sum), 1), &StreamPhase::Active, "t1");
        assert_eq!((single.replicas, single.ready_replicas), (None, None));
    }

    fn cond<'a>(s: &'a StreamStatus, t: &str) -> &'a Condition {
        find_condition(&s.conditions, t).unwrap()
    }

    #[test]
    fn an_active_stream_is_ready_and_observes_its_generation() {
        let default = StreamStatus {
            observed_generation: Some(0),
            conditions: initial_conditions(),
            ..Default::default()
        };
        let sum = summary("orders", 2, "ACTIVE");
        let s = stream_status(
            &obs(Some(&default), Some(&sum), 3),
            &StreamPhase::Active,
            "t1",
        );
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(cond(&s, READY).status, ConditionStatus::True);
        assert_eq!(cond(&s, READY).reason, "Active");
        assert_eq!(cond(&s, READY).observed_generation, Some(3));
        assert_eq!(cond(&s, RECONCILING).status, ConditionStatus::False);
        assert_eq!(cond(&s, STALLED).status, ConditionStatus::False);
        assert_eq!(s.open_shard_count, Some(2));
        assert_eq!(s.stream_arn.as_deref(), Some(sum.stream_arn.as_str()));
        assert_eq!(s.conditions.len(), 3);
    }

    #[test]
    fn a_resharding_stream_keeps_the_old_generation_and_reports_progress() {
        let sum = summary("orders", 2, "ACTIVE");
        let ready = stream_status(&obs(None, Some(&sum), 1), &StreamPhase::Active, "t1");
        let phase = StreamPhase::Resharding {
            from: 2,
            target: 8,
            step: 4,
        };
        let s = stream_status(&obs(Some(&ready), Some(&sum), 2), &phase, "t2");
        assert_eq!(s.observed_generation, Some(1));
        assert_eq!(cond(&s, READY).status, ConditionStatus::False);
        assert_eq!(cond(&s, RECONCILING).status, ConditionStatus::True);
        assert_eq!(cond(&s, RECONCILING).reason, "Resharding");
        let r = s.resharding.clone().unwrap();
        assert_eq!(
            (r.from_count, r.target_count, r.started_at.as_deref()),
            (2, 8, Some("t2"))
        );

        // The next step of the same change keeps where and when it started.
        let sum4 = summary("orders", 4, "UPDATING");
        let phase = StreamPhase::Resharding {
            from: 4,
            target: 8,
            step: 8,
        };
        let s2 = stream_status(&obs(Some(&s), Some(&sum4), 2), &phase, "t3");
        let r2 = s2.resharding.clone().unwrap();
        assert_eq!((r2.from_count, r2.started_at.as_deref()), (2, Some("t2")));
        assert_eq!(
            cond(&s2, RECONCILING).last_transition_time.as_deref(),
            Some("t2")
        );

        // Done: the block disappears and the new generation is observed.
        let sum8 = summary("orders", 8, "ACTIVE");
        let s3 = stream_status(&obs(Some(&s2), Some(&sum8), 2), &StreamPhase::Active, "t4");
        assert!(s3.resharding.is_none());
        assert_eq!(s3.observed_generation, Some(2));
    }

    #[test]
    fn a_stalled_stream_observes_its_generation_so_kstatus_reports_failure() {
        let phase = StreamPhase::Stalled {
            reason: "InvalidArgument",
            message: "too many shards".into(),
        };
        let s = stream_status(&obs(None, None, 4), &phase, "t1");
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(cond(&s, STALLED).status, ConditionStatus::True);
        assert_eq!(cond(&s, STALLED).message, "too many shards");
        assert_eq!(cond(&s, READY).status, ConditionStatus::False);
    }

    #[test]
    fn a_paused_stream_keeps_its_generation_and_last_known_state() {
        let sum = summary("orders", 2, "ACTIVE");
        let ready = stream_status(&obs(None, Some(&sum), 1), &StreamPhase::Active, "t1");
        let s = stream_status(&obs(Some(&ready), None, 2), &StreamPhase::Paused, "t2");
        assert_eq!(s.observed_generation, Some(1));
        assert_eq!(cond(&s, READY).status, ConditionStatus::Unknown);
        assert_eq!(cond(&s, READY).reason, "Paused");
        assert_eq!(s.open_shard_count, Some(2));
    }

    #[test]
    fn recomputing_an_unchanged_state_gives_an_identical_status() {
        let sum = summary("orders", 2, "ACTIVE");
        let a = stream_status(&obs(None, Some(&sum), 1), &StreamPhase::Active, "t1");
        let b = stream_status(&obs(Some(&a), Some(&sum), 1), &StreamPhase::Active, "t2");
        assert_eq!(a, b);
    }

    #[test]
    fn an_invalid_query_stalls_the_app_and_says_where() {
        let err = Err(QueryError {
            reason: "UnknownObject",
            message:
                "From line 3, column 8 to line 3, column 12: Column 'PRIZE' not found in any table"
                    .into(),
        });
        let phase = WorkloadPhase::InvalidQuery(err.clone().unwrap_err().message);
        let s = analytics_status(None, Some(2), None, "http://x", Some(&err), &phase, "t");
        let q = find_condition(&s.conditions, QUERY_VALID).unwrap();
        assert_eq!(q.status, ConditionStatus::False);
        assert_eq!(q.reason, "UnknownObject");
        assert!(q.message.starts_with("From line 3, column 8"));
        assert_eq!(q.observed_generation, Some(2));
        let stalled = find_condition(&s.conditions, STALLED).unwrap();
        assert_eq!(stalled.status, ConditionStatus::True);
        assert_eq!(stalled.reason, "InvalidQuery");
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(s.conditions.len(), 4);
    }

    #[test]
    fn a_running_app_is_ready_with_its_status() {
        let d = ApplicationDetail {
            application_arn: "arn:a".into(),
            application_status: "RUNNING".into(),
            application_version_id: Some(1),
            create_timestamp: None,
        };
        let s = analytics_status(
            None,
            Some(1),
            Some(&d),
            "http://x",
            Some(&Ok(())),
            &WorkloadPhase::Active("RUNNING"),
            "t",
        );
        assert_eq!(ready_reason(&s.conditions), Some("Running"));
        assert_eq!(s.application_status.as_deref(), Some("RUNNING"));
        assert_eq!(
            find_condition(&s.conditions, QUERY_VALID).unwrap().status,
            ConditionStatus::True
        );
    }

    #[test]
    fn a_missing_secret_stalls_a_delivery_stream_until_the_spec_changes() {
        let phase = WorkloadPhase::SecretNotFound("Secret garage-keys does not exist".into());
        let s = delivery_status(None, Some(3), None, "http://x", &phase, "t");
        let stalled = find_condition(&s.conditions, STALLED).unwrap();
        assert_eq!(stalled.status, ConditionStatus::True);
        assert_eq!(stalled.reason, "SecretNotFound");
        assert_eq!(s.observed_generation, Some(3));
        let w = delivery_status(
            Some(&s),
            Some(3),
            None,
            "http://x",
            &WorkloadPhase::WaitingForPods("refused".into()),
            "t2",
        );
        assert_eq!(w.observed_generation, Some(3));
        assert_eq!(ready_reason(&w.conditions), Some("WaitingForPods"));
    }

    #[test]
    fn a_consumer_publishes_its_arn_once_described() {
        let d = ConsumerDescription {
            consumer_name: "app".into(),
            consumer_arn: "arn:c".into(),
            consumer_status: "ACTIVE".into(),
        };
        let s = consumer_status(
            None,
            Some(1),
            Some(&d),
            Some("arn:s"),
            &ConsumerPhase::Active,
            "t",
        );
        assert_eq!(s.consumer_arn.as_deref(), Some("arn:c"));
        assert_eq!(s.stream_arn.as_deref(), Some("arn:s"));
        assert_eq!(ready_reason(&s.conditions), Some("Active"));
        assert_eq!(s.observed_generation, Some(1));
        let w = consumer_status(
            None,
            Some(1),
            None,
            None,
            &ConsumerPhase::WaitingForStream("no stream".into()),
            "t",
        );
        assert_eq!(w.observed_generation, Some(0));
        assert_eq!(ready_reason(&w.conditions), Some("WaitingForStream"));
    }
}
