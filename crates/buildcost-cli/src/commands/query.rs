//! `buildcost query "SQL"`: ad-hoc SQL over the store.

use std::path::Path;

use anyhow::Result;
use buildcost_query::{render, BuildcostContext, OutputFormat};
use chrono::{DateTime, Utc};

/// Output format of `query`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// `query` options.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Views: builds (one row per distinct build, with cost_eur, waste_class, waste_owner, \
duration_s), teams (team, product, developers, peer_group, listed), baseline (team, peer_group, cost_per_developer_eur, \
zscore, expected_eur, lower_eur, upper_eur, status), raw_builds (as stored), deployments (as stored, with production), \
requests (request_id, requested_at, delivered_at, lead_time_s, builds, ci_cost_eur, team, product), repositories \
(repository, team, product, builds_28d, cost_28d, last_production_deploy, orphan).\n\n\
Example: buildcost query \"SELECT team, SUM(cost_eur) AS eur FROM builds GROUP BY team ORDER BY eur DESC LIMIT 10\""
)]
pub struct Args {
    /// The SQL statement.
    pub sql: String,
    /// How to print the result.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Instant at which `teams` and `baseline` are evaluated (RFC 3339). Default: now.
    #[arg(long, value_parser = super::parse_instant)]
    pub at: Option<DateTime<Utc>>,
    /// Threads the query runs on. Default: the CPU cores. With more than one, a sum over
    /// many rows may differ from run to run in its last bits (the order of additions
    /// changes); 1 gives the same figures to the last bit every time, as the gauges do.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub partitions: Option<u16>,
}

/// Whether the store holds any deployment or request.
fn has_delivery_events(store: &buildcost_store::Store) -> Result<bool> {
    use buildcost_store::Table;
    for table in [Table::Deployments, Table::Requests] {
        if !store.list_table(table)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Runs `buildcost query`.
///
/// # Errors
/// The SQL does not run, or the store cannot be read.
pub fn run(config_path: Option<&Path>, args: Args) -> Result<()> {
    let (config, _) = crate::config::load(config_path)?;
    let store = super::open_store(&config)?;
    let settings = config.figures().settings()?;
    let at = args.at.unwrap_or_else(Utc::now);
    let format = match args.format {
        Format::Table => OutputFormat::Table,
        Format::Csv => OutputFormat::Csv,
        Format::Json => OutputFormat::Json,
    };
    let text = super::runtime()?.block_on(async {
        let partitions = args.partitions.map_or_else(
            || std::thread::available_parallelism().map_or(1, usize::from),
            usize::from,
        );
        let ctx = BuildcostContext::open_parallel(&store, &settings, at, partitions).await?;
        // The delivery views take the engine's figures at the same instant (one rule, one
        // place); a store without deployments or requests has none to compute.
        let delivery = if has_delivery_events(&store)? {
            buildcost_query::Engine::new()
                .snapshot_now(&store, &settings, at)?
                .delivery
        } else {
            buildcost_query::DeliveryFigures::default()
        };
        ctx.register_delivery(&store, &delivery).await?;
        let batches = ctx.sql(&args.sql).await?;
        anyhow::Ok(render(&batches, format)?)
    })?;
    println!("{}", text.trim_end());
    Ok(())
}
