//! `buildcost demo`: the whole pipeline on a generated organisation, no set-up.
//!
//! generate 28 days of history → ingest (decode, pseudonymise, classify, dead-letter, Parquet)
//! → DataFusion → the business gauges, written to `metrics.prom`, and a summary on the terminal.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use buildcost_generate::{Generator, GeneratorConfig};
use buildcost_model::WasteClass;
use chrono::{DurationRound, TimeDelta, Utc};

/// The demo's configuration, written next to its store.
pub const DEMO_CONFIG: &str = include_str!("../../assets/demo.toml");

/// `demo` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder for the demo's configuration, events, store and outputs (re-used if it exists).
    #[arg(long, default_value = "buildcost-demo")]
    pub dir: PathBuf,
    /// Builds per day in the generated history.
    #[arg(long, default_value_t = 3_000)]
    pub builds_per_day: u32,
    /// Random seed of the generated organisation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Runs `buildcost demo`.
///
/// # Errors
/// A file in the demo folder cannot be written.
pub fn run(args: Args) -> Result<()> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let config_path = dir.join("buildcost.toml");
    std::fs::write(&config_path, DEMO_CONFIG)?;
    let now = Utc::now()
        .duration_trunc(TimeDelta::minutes(1))
        .context("cannot round the clock")?;
    let mut generator = Generator::new(GeneratorConfig {
        seed: args.seed,
        builds_per_day: args.builds_per_day,
        end: now,
        invalid_ratio: 0.004,
        duplicate_ratio: 0.003,
        ..GeneratorConfig::default()
    });
    std::fs::write(dir.join("teams.csv"), generator.teams_csv())?;
    std::fs::write(dir.join("planted-teams.csv"), generator.planted_csv())?;
    let events_path = dir.join("events.ndjson");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&events_path)?);
    let stats = generator.write_events(&mut out)?;
    out.flush()?;
    eprintln!(
        "generated {} builds of {} teams over 28 days (+{} re-sent, +{} malformed) → {}",
        stats.valid,
        generator.teams().len(),
        stats.duplicates,
        stats.invalid,
        events_path.display()
    );

    let config = crate::config::load_file(&config_path)?;
    let summary = super::ingest::ingest_file(&config, &events_path, true)?;
    let snapshot = super::metrics::snapshot(&config, now)?;
    let metrics_path = dir.join("metrics.prom");
    std::fs::write(&metrics_path, buildcost_exporter::business_text(&snapshot)?)?;

    let org = &snapshot.org;
    let w28 = org.windows.get("28d").cloned().unwrap_or_default();
    let above: Vec<_> = snapshot
        .teams
        .iter()
        .filter(|t| t.baseline.as_ref().is_some_and(|b| b.status == "above"))
        .map(|t| t.team.as_str())
        .collect();
    let below = snapshot
        .teams
        .iter()
        .filter(|t| t.baseline.as_ref().is_some_and(|b| b.status == "below"))
        .count();
    let cfg = config_path.display();
    println!(
        "\nbuildcost demo — {dir}\n\
         \n  ingested   {} builds, {} rejected (dead letters in {store}/dead-letter/), {} duplicates dropped\
         \n  org cost   €{:.2} over 28 days, {} builds, {} developers\
         \n  northstar  {:.1} % of the cost is avoidable failures (syntax, compile, lint, format): €{:.2}\
         \n  waste      {:.1} % of the cost in all\
         \n  teams      {} above their band ({}), {} below\
         \n\nLook next:\
         \n  {metrics}                      the Prometheus gauges at {now}\
         \n  buildcost --config {cfg} metrics\
         \n  buildcost --config {cfg} query \"SELECT waste_class, ROUND(SUM(cost_eur), 2) AS eur FROM builds GROUP BY waste_class ORDER BY eur DESC\"\
         \n  buildcost --config {cfg} query \"SELECT team, peer_group, ROUND(zscore, 2) AS z, status FROM baseline ORDER BY z DESC LIMIT 10\"\
         \n  duckdb -c \"SELECT COUNT(*) FROM '{store}/date=*/*.parquet'\"",
        summary.accepted,
        summary.rejected(),
        summary.duplicates,
        w28.cost_eur,
        w28.builds(),
        org.developers,
        org.northstar("28d") * 100.0,
        w28.waste_cost(WasteClass::AvoidableFailure),
        org.waste_ratio("28d") * 100.0,
        above.len(),
        above.join(", "),
        below,
        dir = dir.display(),
        store = config.store.path.display(),
        metrics = metrics_path.display(),
    );
    Ok(())
}
