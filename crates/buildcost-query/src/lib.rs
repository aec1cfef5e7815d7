//! The query layer: a DataFusion session over the Parquet store with the product's views, the
//! cost, waste, team-size, baseline and deviation logic as SQL files an analyst can read
//! (`crates/buildcost-query/sql/`), and typed [`Snapshot`]s of the business figures.
//!
//! ```no_run
//! use buildcost_query::{BuildcostContext, QuerySettings, Snapshot};
//! use buildcost_store::Store;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open("./buildcost-data")?;
//! let ctx = BuildcostContext::open(&store, &QuerySettings::default(), chrono::Utc::now()).await?;
//! let rows = ctx.sql("SELECT waste_class, SUM(cost_eur) FROM builds GROUP BY waste_class").await?;
//! let snapshot = Snapshot::compute(&ctx).await?;
//! println!("{} batches, org cost 28d: {:?}", rows.len(), snapshot.org.windows["28d"].cost_eur);
//! # Ok(()) }
//! ```

pub mod config;
mod context;
pub mod delivery;
mod engine;
mod error;
pub mod functions;
pub mod peer;
mod render;
mod settings;
mod snapshot;

pub use config::FiguresConfig;
pub use context::{
    BuildcostContext, Param, BASELINE_SQL, BUILDS_SQL, TEAMS_SQL, WINDOW_TOTALS_SQL,
};
pub use delivery::{
    quantiles, DeliveryFigures, DeliveryWindow, ProductDelivery, RepositoryFigures, RequestFigures,
    TeamLeadTime, TeamOrphans, DELIVERY_WINDOWS,
};
pub use engine::{Charge, Detail, Engine, Incremental, PipelineTotal, RefreshWork};
pub use error::{Error, Result};
pub use render::{render, OutputFormat};
pub use settings::{QuerySettings, TeamEntry, TeamsFile};
pub use snapshot::{
    integer_value, Baseline, OrgFigures, RowOf, Snapshot, TeamFigures, TeamInfo, WindowFigures,
    ALL_PRODUCTS, SMALL_TEAMS, SNAPSHOT_COLUMNS, WINDOWS,
};
