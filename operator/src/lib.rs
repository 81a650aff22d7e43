//! The Tributary operator: reconciles `Stream`, `StreamConsumer`, `DeliveryStream` and
//! `AnalyticsApp` resources into data-plane pods and Kinesis, Firehose and Analytics API calls.
//!
//! - [`resources`]: pure manifest builders (StatefulSet, Deployment, Services, PDB, ConfigMap,
//!   claim);
//! - [`query`]: reconcile-time validation of an AnalyticsApp's SQL;
//! - [`status`]: status and kstatus conditions computed from what a reconcile observed;
//! - [`controllers`]: one file per kind, reconcile and cleanup;
//! - [`dataplane`]: the typed Kinesis, Firehose and Analytics client for the data plane;
//! - [`crd`], [`metrics`], [`http`], [`leader`], [`config`], [`error`].

pub mod config;
pub mod controllers;
pub mod crd;
pub mod dataplane;
pub mod error;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod query;
pub mod resources;
pub mod status;
