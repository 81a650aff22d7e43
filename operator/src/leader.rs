//! Leader election through a `coordination.k8s.io` Lease (kube-lease-manager: server-side
//! apply, so two replicas can never both take the lock). Only the holder runs controllers;
//! standby replicas are ready and wait.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tracing::info;

use crate::config::Settings;

/// Seconds a lease stays valid without renewal.
const LEASE_SECONDS: u64 = 15;
/// Seconds before expiry the holder renews (also the tolerated clock skew).
const GRACE_SECONDS: u64 = 5;

/// Starts competing for the Lease. The receiver says whether this replica leads.
pub async fn elect(
    client: Client,
    settings: &Settings,
) -> Result<watch::Receiver<bool>, LeaseManagerError> {
    let cfg = &settings.config;
    let manager = LeaseManagerBuilder::new(client, cfg.lease_name.clone())
        .with_namespace(cfg.lease_namespace.clone())
        .with_identity(cfg.identity.clone())
        .with_duration(LEASE_SECONDS)
        .with_grace(GRACE_SECONDS)
        .build()
        .await?;
    let (rx, _task) = manager.watch().await;
    info!(lease = %cfg.lease_name, identity = %cfg.identity, "Competing for leadership.");
    Ok(rx)
}

/// Resolves once `rx` says this replica leads (immediately if it already does).
pub async fn until_leader(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            // The lease task ended: never leader.
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves once `rx` says this replica no longer leads.
pub async fn until_lost(mut rx: watch::Receiver<bool>) {
    while *rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn controllers_start_only_once_the_lease_is_held_and_stop_when_it_is_lost() {
        let (tx, mut rx) = watch::channel(false);
        let waiting = tokio::time::timeout(Duration::from_millis(50), until_leader(&mut rx)).await;
        assert!(waiting.is_err(), "a standby replica must not lead");
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), until_leader(&mut rx))
            .await
            .unwrap();

        let lost = tokio::spawn(until_lost(rx.clone()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!lost.is_finished(), "still leading");
        tx.send(false).unwrap();
        tokio::time::timeout(Duration::from_secs(1), lost)
            .await
            .unwrap()
            .unwrap();
    }
}
