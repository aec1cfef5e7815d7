//! The exporter: turns a [`buildcost_query::Snapshot`] into the Prometheus gauges of spec
//! section 8, keeps them fresh ([`Refresher`]) and serves them with the service's own metrics on
//! `/metrics`, beside `/healthz` and `/readyz` ([`serve`]). Label values come from bounded sets
//! only (teams, products, peer groups, windows, waste classes, statuses, bounds, reject reasons,
//! partitions): never a person, build id, commit or branch.
//!
//! ```
//! use buildcost_exporter::{Role, ServiceState};
//! use buildcost_query::{OrgFigures, Snapshot};
//!
//! let snapshot = Snapshot {
//!     at: chrono::Utc::now(),
//!     teams: vec![],
//!     org: OrgFigures::default(),
//!     delivery: Default::default(),
//! };
//! let text = buildcost_exporter::business_text(&snapshot)?;
//! assert!(text.contains("buildcost_org_developers 0"));
//!
//! // What a `serve` process answers on /metrics once its refresh loop has published a snapshot.
//! let state = ServiceState::new(Role::Serve, None);
//! state.publish(text, snapshot.at, std::time::Duration::from_millis(5));
//! assert!(state.readiness().is_ok());
//! assert!(state.metrics_text()?.contains("buildcost_refreshes_total 1"));
//! # Ok::<(), buildcost_exporter::Error>(())
//! ```

pub mod api;
mod business;
pub mod config;
mod delivery;
mod error;
pub mod names;
pub mod pages;
mod refresh;
mod security;
mod server;
mod service;
mod text;

pub use business::{business_registry, business_text, encode};
pub use error::{Error, Result};
pub use pages::ReportPages;
pub use refresh::Refresher;
pub use security::{
    HttpLimits, HttpSecurity, SecurityError, FAILURE_WINDOW, MAX_FAILURES, OPEN_PATHS,
};
pub use server::{bind, router, serve, serve_router, METRICS_CONTENT_TYPE};
pub use service::{IngestHandles, RefreshStatus, Role, ServiceState};
