//! `[store]`: where the Parquet store lives, how long it keeps days.

use std::path::PathBuf;

use buildcost_model::config::ConfigError;
use serde::{Deserialize, Serialize};

/// `[store]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Folder of the Parquet store.
    pub path: PathBuf,
    /// Partitions (days) older than this are deleted.
    pub retention_days: u32,
    /// Keep each closed day's rollup in the store (`_rollups/`), so figures over a long
    /// history read totals instead of every row.
    pub rollups: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("./buildcost-data"),
            retention_days: 400,
            rollups: true,
        }
    }
}

impl StoreConfig {
    /// Checks the section.
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.path.as_os_str().is_empty() {
            return Err(ConfigError::new("store.path", "must not be empty"));
        }
        if self.path.to_string_lossy().starts_with("s3://") {
            return Err(ConfigError::new(
                "store.path",
                "object storage (s3://) is not supported by this build yet; use a local folder",
            ));
        }
        if self.retention_days == 0 {
            return Err(ConfigError::new(
                "store.retention_days",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
