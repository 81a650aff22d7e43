//! The `tributary` binary.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use tributary::ServeConfig;

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "Kinesis-compatible streaming data plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the AWS APIs (Kinesis Data Streams) on a durable shard log.
    Serve(ServeConfig),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("TRIBUTARY_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // glibc serves allocations above its mmap threshold (128 KiB at first) with a mapping
    // each, and raises the threshold to the size of any such block freed. One 8 MiB block
    // freed now lifts it above a request's buffers (a PutRecords body of up to about 7 MB and
    // its decoded records), which then come from the heap and are reused, instead of being
    // mapped, faulted in and unmapped request after request. (The storage writer's buffers
    // are mapped on their own; see `storage::aligned`.)
    drop(std::hint::black_box(vec![0u8; 8 << 20]));
    match cli.command {
        Command::Serve(cfg) => {
            cfg.validate().map_err(anyhow::Error::msg)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(serve(cfg))
        }
    }
}

async fn serve(cfg: ServeConfig) -> anyhow::Result<()> {
    let app = tributary::app(cfg).await?;
    // Machine-readable line for harnesses that start the binary on port 0.
    match app.bound.tls {
        Some(tls) => println!(
            "listening api={} metrics={} tls={}",
            app.bound.api, app.bound.metrics, tls
        ),
        None => println!(
            "listening api={} metrics={}",
            app.bound.api, app.bound.metrics
        ),
    }
    wait_for_signal().await;
    tracing::info!("Shutting down: finishing requests and syncing data.");
    app.shutdown().await;
    tracing::info!("Stopped.");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
