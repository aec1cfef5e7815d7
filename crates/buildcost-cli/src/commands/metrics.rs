//! `buildcost metrics --at RFC3339`: the business gauges as Prometheus text.

use std::path::Path;

use crate::config::Config;
use anyhow::Result;
use buildcost_query::Snapshot;
use chrono::{DateTime, Utc};

/// `metrics` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Evaluation instant (RFC 3339). Windows end here, exclusive. Default: now.
    #[arg(long, value_parser = super::parse_instant)]
    pub at: Option<DateTime<Utc>>,
}

/// The snapshot of the configured store at `at`.
///
/// # Errors
/// The store, the teams file or a query failed.
pub fn snapshot(config: &Config, at: DateTime<Utc>) -> Result<Snapshot> {
    let store = super::open_store(config)?;
    let settings = config.figures().settings()?;
    Ok(super::engine(config).snapshot_now(&store, &settings, at)?)
}

/// Runs `buildcost metrics`.
///
/// # Errors
/// See [`snapshot`].
pub fn run(config_path: Option<&Path>, args: Args) -> Result<()> {
    let (config, _) = crate::config::load(config_path)?;
    let at = args.at.unwrap_or_else(Utc::now);
    let snapshot = snapshot(&config, at)?;
    print!("{}", buildcost_exporter::business_text(&snapshot)?);
    Ok(())
}
