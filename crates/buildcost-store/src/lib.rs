//! The buildcost store: Parquet files partitioned by the UTC day of `finished_at`
//! (`<root>/date=YYYY-MM-DD/*.parquet`), readable by any Parquet reader (DataFusion, DuckDB,
//! pyarrow, Spark).
//!
//! The store is a local folder or a prefix of an object store (`s3://BUCKET/PREFIX`, through
//! the `object_store` crate), with the same layout on both. Every file is written atomically
//! (locally: temporary file, fsync, rename, fsync of the folder; on an object store: one PUT),
//! so a reader or a crash never sees half a file. The [`EventIndex`] knows the stored `event_id`s of
//! the days being written (read from their files on first use), so a second ingest of the same
//! events stores nothing twice. [`Store::apply_retention`]
//! deletes days older than the retention.
//!
//! ```
//! use buildcost_store::Store;
//! use buildcost_model::{BatchBuilder};
//! use chrono::NaiveDate;
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;
//! let day = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
//! let empty = BatchBuilder::new().finish()?;
//! let path = store.write_batch(day, "example-0", &empty)?;
//! assert!(path.ends_with("date=2026-11-02/example-0.parquet"));
//! assert_eq!(store.list_files()?.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backend;
pub mod config;
mod crash;
mod error;
mod index;
mod keyfile;
mod quarantine;
mod rejections;
mod store;

pub use backend::is_remote;
pub use crash::{crash_due, crash_now, crash_point, CRASH_AT_ENV};
pub use error::{Error, Result};
pub use index::EventIndex;
pub use keyfile::{load_existing_key, load_or_create_key};
pub use quarantine::{Quarantined, QUARANTINE_DIR};
pub use rejections::{Rejected, REJECTIONS_DIR};
pub use store::{DataFile, Staged, Store, Table, DEAD_LETTER_DIR, LATER_COLUMNS, ROLLUPS_DIR};
