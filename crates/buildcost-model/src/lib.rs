//! The buildcost event model: what a build event is, how raw bytes become a validated,
//! pseudonymised, classified row (or exactly one rejection reason), and the Arrow form rows are
//! stored in.
//!
//! Pure and synchronous: no I/O, no async runtime, no broker. Every other crate builds on it.
//!
//! ```
//! use buildcost_model::{Classifier, Decoder, Pseudonymiser, RejectReason, BatchBuilder};
//! use chrono::{TimeZone, Utc};
//!
//! let decoder = Decoder::new(64 * 1024, Pseudonymiser::new(b"key")?, Classifier::builtin()?);
//! let now = Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap();
//! let event = br#"{"schema_version":1,"event_id":"e1","source":"gitlab","build_id":"42",
//!   "pipeline":"build","repository":"acme/shop","team":" Payments ","author":"Alice",
//!   "started_at":"2026-11-02T10:00:00+01:00","finished_at":"2026-11-02T09:30:00Z",
//!   "status":"failure","log_excerpt":"src/cart.ts(14,22): error TS1005: ',' expected.",
//!   "runner_class":"medium"}"#;
//! let row = decoder.decode(event, now).expect("valid").into_build().expect("a build");
//! assert_eq!(row.team, "payments");
//! assert_eq!(row.duration_s, 1800.0);
//! assert_eq!(row.failure_category.map(|c| c.as_str()), Some("syntax"));
//! assert_ne!(row.author_key.as_deref(), Some("Alice"));
//!
//! let rejected = decoder.decode(b"{not json", now).unwrap_err();
//! assert_eq!(rejected.reason, RejectReason::InvalidJson);
//!
//! let mut batch = BatchBuilder::new();
//! batch.append(&row);
//! assert_eq!(batch.finish()?.num_rows(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
mod classify;
pub mod config;
mod decode;
mod delivery;
mod error;
mod event;
mod exact;
mod pricing;
mod pseudonym;
mod reject;

pub use batch::{build_schema, BatchBuilder, TIMEZONE};
pub use classify::{clean as clean_log, Classifier, Rule, DEFAULT_RULES};
pub use decode::{
    Decoder, DEFAULT_MAX_EVENT_BYTES, MAX_BUILD_DURATION, MAX_FUTURE_SKEW, MAX_LOG_EXCERPT_BYTES,
    MAX_NAME_CHARS,
};
pub use delivery::batch::{deployment_schema, request_schema, DeploymentBuilder, RequestBuilder};
pub use delivery::route::{check_webhook_url, Route, Secret};
pub use delivery::{
    DeliveryConfig, DeploymentRow, DeploymentStatus, Event, EventKind, RequestIds, RequestRow,
    DEFAULT_REQUEST_ID_PATTERN, MAX_CHANGE_TITLE_BYTES, MAX_CORRELATION_IDS,
};
pub use error::{Error, Result};
pub use event::{
    BuildRow, CategorySource, FailureCategory, FailureStage, Status, Trigger, Vocabulary,
    WasteClass,
};
pub use exact::Exact;
pub use pricing::{hours, Billed, Prices};
pub use pseudonym::{Pseudonymiser, KEY_LEN};
pub use reject::{RejectCounts, RejectReason, Rejection};
