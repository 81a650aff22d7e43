//! `tributary-operator`: `run` the controllers, or `crd print` / `crd install` the CRDs.

use std::sync::{atomic::AtomicBool, Arc};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use futures::FutureExt;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;
use tributary_operator::{
    config::Config,
    controllers::{self, Context},
    crd, http, leader,
    metrics::Metrics,
};

/// Kubernetes operator for Tributary streams.
#[derive(Debug, Parser)]
#[command(name = "tributary-operator", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Stream, StreamConsumer, DeliveryStream and AnalyticsApp controllers.
    Run(Box<Config>),
    /// Print or install the CustomResourceDefinitions.
    Crd {
        #[command(subcommand)]
        action: CrdAction,
    },
}

#[derive(Debug, Subcommand)]
enum CrdAction {
    /// Print every CRD as YAML (what `crds/` holds).
    Print,
    /// Apply every CRD to the cluster with server-side apply.
    Install,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match Cli::parse().command {
        Command::Crd {
            action: CrdAction::Print,
        } => {
            print!("{}", crd::all_yaml());
            Ok(())
        }
        Command::Crd {
            action: CrdAction::Install,
        } => {
            let client = kube::Client::try_default()
                .await
                .context("connecting to Kubernetes")?;
            for name in crd::install(client).await.context("applying CRDs")? {
                info!(crd = %name, "Applied CRD.");
            }
            Ok(())
        }
        Command::Run(config) => run(*config).await,
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let settings = config.validate()?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes")?;
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let state = http::HealthState {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    let (_, server) = http::serve(settings.config.metrics_listen, state)
        .await
        .context("binding the metrics port")?;
    tokio::spawn(server);

    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let shutdown = {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        async move {
            tokio::select! {
                _ = shutdown => {},
                _ = term.recv() => {},
            }
        }
    };
    let shutdown = shutdown.shared();

    let ctx = Arc::new(Context::new(client.clone(), settings.clone(), metrics));
    if !settings.config.leader_election {
        ready.store(true, std::sync::atomic::Ordering::Relaxed);
        controllers::run(ctx, shutdown.boxed()).await;
        return Ok(());
    }

    let mut rx = leader::elect(client, &settings)
        .await
        .context("starting leader election")?;
    // A standby replica is healthy and ready: it serves its purpose by waiting.
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    tokio::select! {
        _ = shutdown.clone() => return Ok(()),
        _ = leader::until_leader(&mut rx) => {},
    }
    info!("Leading: starting controllers.");
    let lost = leader::until_lost(rx.clone()).shared();
    let stop = {
        let lost = lost.clone();
        async move {
            tokio::select! {
                _ = shutdown => {},
                _ = lost => {},
            }
        }
    };
    controllers::run(ctx, stop.boxed()).await;
    if lost.now_or_never().is_some() {
        // Exit so the pod restarts with fresh caches and competes again, like
        // controller-runtime does: never keep reconciling without the lease.
        error!("Lost the leader lease; exiting.");
        std::process::exit(1);
    }
    Ok(())
}
