//! Weekly team cost reports and the directors' summary.
//!
//! The figures come from the same engine as the gauges ([`buildcost_query::Engine`]).
//!
//! ```no_run
//! use buildcost_query::{Engine, QuerySettings};
//! use buildcost_report::{Format, IsoWeek, Selection};
//! use buildcost_store::Store;
//!
//! # fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open("./buildcost-data")?;
//! let week = IsoWeek::last_complete(chrono::Utc::now());
//! let rejected = buildcost_report::rejections_in(&store, week)?;
//! let settings = QuerySettings::default();
//! let report = buildcost_report::compute(
//!     &mut Engine::new(), &store, &settings, week, rejected, chrono::Utc::now(),
//! )?;
//! buildcost_report::write(&report, Format::Markdown, "reports".as_ref(), &Selection::default())?;
//! # Ok(()) }
//! ```

mod contents;
mod error;
mod figures;
pub mod focus;
pub mod format;
mod hints;
mod numbers;
pub mod send;
mod week;

use std::collections::BTreeMap;

use buildcost_store::Store;

pub use contents::{
    AboveBand, Band, DataQuality, Hint, Improved, OrgWeek, OrphanLine, PipelineLine, Savings,
    Summary, TeamReport, TeamRow, TeamWeek, WasteLine, WeekFigures, WeeklyReport,
    IMPROVEMENT_BASIS_WEEKS, TOP_IMPROVED, TOP_PIPELINES, TREND_WEEKS, WEEKS_PER_YEAR,
};
pub use error::{Error, Result};
pub use figures::{compute, orphans_of};
pub use format::{render_summary, render_team, write, Format, Selection};
pub use week::IsoWeek;

/// The reports of `week` over `store`, with the week's rejections from the store's ledger:
/// what `report weekly`, the service's trend and its `/reports/` pages all compute.
///
/// # Errors
/// The store or the ledger cannot be read.
pub fn week_report(
    engine: &mut buildcost_query::Engine,
    store: &Store,
    settings: &buildcost_query::QuerySettings,
    week: IsoWeek,
) -> Result<WeeklyReport> {
    let rejected = rejections_in(store, week)?;
    compute(engine, store, settings, week, rejected, chrono::Utc::now())
}

/// Events rejected during `week` (by the instant they were rejected), by reason, from the
/// store's rejection ledger; a replayed message counts once.
///
/// # Errors
/// The ledger cannot be read.
pub fn rejections_in(store: &Store, week: IsoWeek) -> Result<BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, u64> = buildcost_model::RejectReason::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), 0))
        .collect();
    for r in store.read_rejections(week.start(), week.end())? {
        *out.entry(r.reason).or_default() += 1;
    }
    Ok(out)
}
