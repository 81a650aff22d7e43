//! Tributary's data plane: the AWS wire APIs of Kinesis Data Streams and Firehose (and, in
//! time, Kinesis Data Analytics) over a durable shard log.
//!
//! Layers, each in its own module: `protocol` (wire only) → `services` (one folder per AWS
//! API, no HTTP types) → engines (`streams` for stream and shard state, `storage` for the
//! segment log, `delivery` for Firehose delivery streams) → `metrics`. `server` binds it all to listeners; [`app`] builds the whole
//! server so tests can drive it in-process.

pub mod analytics;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod delivery;
pub mod manifests;
pub mod metrics;
pub mod protocol;
pub mod remote;
pub mod server;
pub mod services;
pub mod storage;
pub mod streams;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::ServeConfig;
use server::{AppState, Bound};
use streams::Streams;

/// A running server.
pub struct App {
    pub bound: Bound,
    pub state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl App {
    /// Stops accepting requests, lets open ones finish (bounded), then flushes and fsyncs
    /// every shard log.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.state.firehose.engine.shutdown().await;
        self.state.analytics.engine.shutdown().await;
        self.state.engine.shutdown().await;
    }
}

/// Builds the engine, applies manifests and starts both listeners.
pub async fn app(cfg: ServeConfig) -> anyhow::Result<App> {
    // Before any outgoing client (S3 store, remote streams) is created.
    delivery::client::set_trust(tls::client_config(cfg.ca_file.as_deref())?);
    let clock = clock::Clock::default();
    let cluster_cfg = cfg.cluster_config()?;
    let mut streams_cfg = cfg.streams_config();
    if let Some(c) = &cluster_cfg {
        streams_cfg.cluster_ordinal = Some(c.ordinal);
        streams_cfg.iterator_key = Some(c.iterator_key());
    }
    let engine = Streams::open(streams_cfg, clock.clone()).await?;
    let cluster = cluster_cfg.map(|c| {
        let data_dir = (!cfg.in_memory).then(|| cfg.data_dir.clone());
        let cluster = cluster::Cluster::new(c, engine.clone(), data_dir);
        let placement: Arc<dyn streams::placement::Placement> = cluster.clone();
        let _ = engine.placement.set(placement);
        cluster
    });
    // Only the coordinator changes stream metadata (manifests, the autoscaler).
    let coordinates = cluster.as_ref().is_none_or(|c| c.is_coordinator());
    engine.remote.probe();
    for s in engine.list() {
        metrics::global().init_stream(&s.name);
    }
    let delivery =
        delivery::DeliveryStreams::open(cfg.delivery_config(), clock.clone(), engine.clone())
            .await?;
    // A coordinator applies them once its members have joined (below), so that the shards of
    // the streams they create spread over the pods.
    if let Some(dir) = cfg.manifests.as_ref().filter(|_| cluster.is_none()) {
        let n = manifests::apply_dir(dir, &engine, &delivery).await?;
        tracing::info!(dir = %dir.display(), created = n, "Applied manifests.");
    }
    let manifest_delivery = delivery.clone();
    let auth = match &cfg.auth_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)?;
            let keys = protocol::sigv4::KeyStore::from_yaml(&text)?;
            // One server serves one account: a key for another account would see this
            // account's streams under the wrong ARNs.
            if let Some(other) = keys.account_ids().find(|a| *a != cfg.account_id) {
                anyhow::bail!(
                    "{} lists account {other}, but this server serves account {} (--account-id)",
                    path.display(),
                    cfg.account_id
                );
            }
            Some(keys)
        }
        None => None,
    };
    let analytics = analytics::Analytics::open(
        engine.clone(),
        Some(cfg.delivery_config().store),
        Some(delivery.clone()),
    )
    .await?;
    let state = AppState::new(engine.clone(), delivery, analytics, auth, cfg.test_hooks);
    if let Some(c) = &cluster {
        let _ = state.cluster.set(c.clone());
    }
    // In cluster mode the coordinator applies them after the streams' manifests (below).
    if let Some(dir) = cfg.manifests.as_ref().filter(|_| cluster.is_none()) {
        let n = analytics::manifests::apply_dir(dir, &state.analytics).await?;
        tracing::info!(dir = %dir.display(), created = n, "Applied AnalyticsApp manifests.");
    }
    let api = TcpListener::bind(&cfg.listen).await?;
    let metrics_listener = TcpListener::bind(&cfg.metrics_listen).await?;
    let tls = match &cfg.tls_listen {
        Some(addr) => {
            let out_dir = if cfg.in_memory {
                std::env::temp_dir().join(format!("tributary-tls-{}", std::process::id()))
            } else {
                cfg.data_dir.join("tls")
            };
            let tls = tls::acceptor(cfg.tls_cert.as_deref(), cfg.tls_key.as_deref(), &out_dir)?;
            if let Some(path) = &tls.generated_cert {
                tracing::info!(certificate = %path.display(), "Generated a self-signed certificate for the TLS listener.");
            }
            Some((TcpListener::bind(addr).await?, tls))
        }
        None => None,
    };
    let bound = Bound {
        api: api.local_addr()?,
        metrics: metrics_listener.local_addr()?,
        tls: match &tls {
            Some((l, _)) => Some(l.local_addr()?),
            None => None,
        },
    };
    let (tx, rx) = watch::channel(false);
    let mut tasks = vec![
        tokio::spawn(server::serve_api(api, state.clone(), None, rx.clone())),
        tokio::spawn(server::serve_metrics(
            metrics_listener,
            state.clone(),
            rx.clone(),
        )),
    ];
    if let Some((listener, tls)) = tls {
        tasks.push(tokio::spawn(server::serve_api(
            listener,
            state.clone(),
            Some(tls.acceptor),
            rx.clone(),
        )));
    }
    let retention_engine = engine.clone();
    let mut stop = rx.clone();
    let interval = cfg.retention_check_interval;
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => retention_engine.enforce_retention().await,
                _ = stop.changed() => break,
            }
        }
    }));
    if let Some(c) = &cluster {
        if let Some(dir) = cfg.manifests.clone().filter(|_| c.is_coordinator()) {
            let (c, engine, apps) = (c.clone(), engine.clone(), state.clone());
            tokio::spawn(async move {
                c.wait_for_members().await;
                match manifests::apply_dir(&dir, &engine, &manifest_delivery).await {
                    Ok(n) => {
                        tracing::info!(dir = %dir.display(), created = n, "Applied manifests.")
                    }
                    Err(e) => {
                        tracing::error!(dir = %dir.display(), error = %e, "Could not apply manifests.")
                    }
                }
                // Members have the streams before the applications start using them.
                let v = c.publish().await;
                c.wait_for_acks(v).await;
                match analytics::manifests::apply_dir(&dir, &apps.analytics).await {
                    Ok(n) => {
                        tracing::info!(dir = %dir.display(), created = n, "Applied AnalyticsApp manifests.")
                    }
                    Err(e) => {
                        tracing::error!(dir = %dir.display(), error = %e, "Could not apply AnalyticsApp manifests.")
                    }
                }
            });
        }
        if c.is_coordinator() {
            tasks.push(tokio::spawn(c.clone().run_coordinator(rx.clone())));
        } else {
            tasks.push(tokio::spawn(c.clone().run_member(rx.clone())));
        }
        tracing::info!(ordinal = c.cfg.ordinal, coordinator = %c.cfg.coordinator, "Cluster mode.");
    }
    let scale_engine = engine.clone();
    let scale_cfg = cfg.autoscale_config();
    // Members report their shards' writes to the coordinator's autoscaler.
    if let Some(c) = cluster.as_ref().filter(|c| !c.is_coordinator()) {
        let period = Duration::from_millis(scale_cfg.check_interval_ms);
        tasks.push(tokio::spawn(c.clone().run_load_reports(period, rx.clone())));
    }
    let mut stop = rx.clone();
    tasks.push(tokio::spawn(async move {
        let mut scaler = streams::autoscale::Autoscaler::default();
        let period = Duration::from_millis(scale_cfg.check_interval_ms);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period), if coordinates => scaler.check(&scale_engine, &scale_cfg).await,
                _ = stop.changed() => break,
            }
        }
    }));
    tracing::info!(api = %bound.api, metrics = %bound.metrics, "Tributary is serving.");
    Ok(App {
        bound,
        state,
        shutdown: tx,
        tasks,
    })
}

/// How often retention runs by default.
pub const RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(60);
