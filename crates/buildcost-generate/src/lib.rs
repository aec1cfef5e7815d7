//! Seeded, realistic synthetic CI workloads for tests, demos and benchmarks.
//!
//! An organisation of teams (sizes skewed like real ones, a few below the privacy minimum),
//! grouped in products (some with too few teams for a peer group of their own, some teams in an
//! explicit cross-product peer group), on Jenkins, GitLab, GitHub Actions and Tekton; builds with
//! realistic status and failure mixes and log excerpts, superseded pushes, retries, same-commit
//! rebuilds, timestamps with UTC offsets, an unknown runner class now and then, and a few planted
//! over- and under-spending teams (listed in [`Generator::planted_csv`]). Optionally, malformed
//! messages and re-sent duplicates. The same seed gives the same bytes.
//!
//! ```
//! use buildcost_generate::{Generator, GeneratorConfig};
//! use chrono::{TimeZone, Utc};
//!
//! let config = GeneratorConfig {
//!     days: 2,
//!     builds_per_day: 50,
//!     end: Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap(),
//!     ..GeneratorConfig::default()
//! };
//! let mut out = Vec::new();
//! let stats = Generator::new(config.clone()).write_events(&mut out)?;
//! assert_eq!(stats.builds(), 100);
//! assert!(stats.deployments > 0 && stats.requests > 0);
//! let mut again = Vec::new();
//! Generator::new(config).write_events(&mut again)?;
//! assert_eq!(out, again);
//! # Ok::<(), std::io::Error>(())
//! ```

mod delivery;
mod model;
mod org;

pub use model::{GenStats, Generator};
pub use org::{GeneratorConfig, TeamSpec};
