//! The exporter: turns a [`buildcost_query::Snapshot`] into the Prometheus gauges of spec
//! section 8. Label values come from bounded sets only (teams, products, peer groups, windows,
//! waste classes, statuses, bounds): never a person, build id, commit or branch.
//!
//! ```
//! use buildcost_query::{OrgFigures, Snapshot};
//!
//! let snapshot = Snapshot { at: chrono::Utc::now(), teams: vec![], org: OrgFigures::default() };
//! let text = buildcost_exporter::business_text(&snapshot)?;
//! assert!(text.contains("buildcost_org_developers 0"));
//! # Ok::<(), buildcost_exporter::Error>(())
//! ```

mod business;
mod error;
pub mod names;

pub use business::{business_registry, business_text, encode};
pub use error::{Error, Result};
