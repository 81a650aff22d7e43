//! The Tributary operator: reconciles `Stream` and `StreamConsumer` resources into data-plane
//! pods and Kinesis API calls.
//!
//! - [`resources`]: pure manifest builders (StatefulSet, Services, PDB, ConfigMap);
//! - [`status`]: status and kstatus conditions computed from what a reconcile observed;
//! - [`controllers`]: one file per kind, reconcile and cleanup;
//! - [`dataplane`]: the typed Kinesis client for the data plane;
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
