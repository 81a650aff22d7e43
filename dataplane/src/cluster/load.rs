//! Write load of the shards held by members, for the coordinator's ON_DEMAND autoscaler.
//!
//! Every member other than the coordinator takes its shards' write meters once per autoscaler
//! check interval and posts what was written to each open shard of an on-demand stream to
//! `POST /_tributary/cluster/load`. The coordinator keeps the latest rate per shard
//! ([`RemoteLoads`]) and its autoscaler reads it for every shard it does not hold itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::Cluster;
use crate::streams::autoscale::ShardWrites;
use crate::streams::{Shard, Stream, StreamMode};

/// A report is small; it answers quickly or is dropped (the next one follows).
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// `POST /_tributary/cluster/load`: what member `ordinal` wrote to its shards during the last
/// `interval_ms`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoadReport {
    ordinal: u32,
    interval_ms: u64,
    shards: Vec<ShardWrites>,
}

impl Cluster {
    /// Coordinator: records a member's load report. Refused for a member that has not joined.
    pub fn record_load(&self, body: &[u8]) -> Result<(), String> {
        let report: LoadReport =
            serde_json::from_slice(body).map_err(|e| format!("malformed load report: {e}"))?;
        if report.ordinal == self.cfg.ordinal {
            return Err("the coordinator measures its own shards".into());
        }
        if !self.members().contains_key(&report.ordinal) {
            return Err("join first".into());
        }
        self.loads.record(
            report.ordinal,
            report.interval_ms,
            &report.shards,
            self.engine.clock.now_ms(),
        );
        Ok(())
    }

    /// Coordinator: the write rate of a shard another member holds, while its report is fresh
    /// and the member live.
    pub(super) fn reported_rate(&self, stream: &Stream, shard: &Shard) -> Option<(f64, f64)> {
        let owner = shard.owner.unwrap_or(0);
        if owner == self.cfg.ordinal || !self.is_coordinator() {
            return None;
        }
        let live = {
            let members = self.members();
            members
                .get(&owner)
                .is_some_and(|m| self.is_live(owner, m, Instant::now()))
        };
        self.loads.rate(
            stream.incarnation,
            shard.index,
            owner,
            live,
            self.engine.clock.now_ms(),
        )
    }

    /// Member: takes the write meters of the shards this pod holds every `period` and reports
    /// those of on-demand streams to the coordinator, until `stop`.
    pub async fn run_load_reports(
        self: Arc<Self>,
        period: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut last = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = stop.changed() => return,
            }
            let now = Instant::now();
            let interval_ms = (now - last).as_millis().max(1) as u64;
            last = now;
            let shards = self.take_meters();
            if shards.is_empty() {
                continue;
            }
            let report = LoadReport {
                ordinal: self.cfg.ordinal,
                interval_ms,
                shards,
            };
            let body = Bytes::from(serde_json::to_vec(&report).unwrap_or_default());
            let url = format!(
                "{}/_tributary/cluster/load",
                self.cfg.coordinator.trim_end_matches('/')
            );
            // A lost report only leaves the coordinator with the previous one for a while.
            match self
                .client
                .call(Method::POST, url, &self.cfg.secret, body, REPORT_TIMEOUT)
                .await
            {
                Ok((status, _)) if status.is_success() => {}
                Ok((status, answer)) => tracing::debug!(
                    %status,
                    answer = %String::from_utf8_lossy(&answer),
                    "The coordinator refused a load report."
                ),
                Err(e) => tracing::debug!(error = %e, "Could not send a load report."),
            }
        }
    }

    /// Writes to the open shards this pod holds since the last call, for on-demand streams.
    /// Every meter is taken, so a stream switched to on-demand starts from a fresh count.
    fn take_meters(&self) -> Vec<ShardWrites> {
        let mut out = Vec::new();
        for stream in self.engine.list() {
            let on_demand = stream.state().mode == StreamMode::OnDemand;
            for shard in stream.shard_set().open.iter() {
                if shard.log.is_none() {
                    continue;
                }
                let (bytes, records) = shard.meter.take();
                if on_demand {
                    out.push(ShardWrites {
                        incarnation: stream.incarnation,
                        shard: shard.index,
                        bytes,
                        records,
                    });
                }
            }
        }
        out
    }
}
