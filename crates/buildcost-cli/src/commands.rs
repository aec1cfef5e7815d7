//! One module per subcommand, and what they share.

pub mod demo;
pub mod export;
pub mod generate;
pub mod hash_password;
pub mod ingest;
pub mod metrics;
pub mod produce;
pub mod query;
pub mod report;
pub mod service;
pub mod webhook;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

/// A temporary Parquet file older than this at start-up is left from a write that never
/// finished (a crash); a younger one may belong to another process writing to the same store.
const STRAY_TEMP_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Opens the configured store and quarantines what is damaged in it (zero-length, truncated
/// or foreign Parquet files; old temporary files), each with an `error` log line.
///
/// # Errors
/// The store folder cannot be created or listed, or a damaged file cannot be moved.
pub fn open_store(config: &crate::config::Config) -> Result<buildcost_store::Store> {
    let store = buildcost_store::Store::open_config(&config.store)?;
    let moved = store
        .quarantine_damaged(STRAY_TEMP_AFTER)
        .with_context(|| format!("checking the store `{}`", config.store.path.display()))?;
    if !moved.is_empty() {
        tracing::warn!(
            files = moved.len(),
            folder = %store.root().join(buildcost_store::QUARANTINE_DIR).display(),
            "moved damaged files out of the store at start-up; see the lines above for each"
        );
    }
    Ok(store)
}

/// The figures engine every command computes through, keeping day rollups in the store
/// unless `store.rollups = false`.
pub fn engine(config: &crate::config::Config) -> buildcost_query::Engine {
    let engine = buildcost_query::Engine::new();
    if config.store.rollups {
        engine.persisting()
    } else {
        engine
    }
}

/// Parses an `--at`-style RFC 3339 instant.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{text}` is not an RFC 3339 instant like 2026-11-02T00:00:00Z: {e}"))
}

/// A two-worker Tokio runtime for the DataFusion and Kafka work of one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
