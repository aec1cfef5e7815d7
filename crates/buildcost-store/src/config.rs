//! `[store]`: where the Parquet store lives, how long it keeps days; `[store.s3]`: how to reach
//! an object store when `store.path` is an `s3://` URL.

use std::path::PathBuf;

use buildcost_model::config::ConfigError;
use serde::{Deserialize, Serialize};

/// `[store]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// A local folder, or an object store URL: `s3://BUCKET/PREFIX` (also `gs://`, `az://`).
    pub path: PathBuf,
    /// Partitions (days) older than this are deleted.
    pub retention_days: u32,
    /// Keep each closed day's rollup in the store (`_rollups/`), so figures over a long
    /// history read totals instead of every row.
    pub rollups: bool,
    /// `[store.s3]`: the S3 endpoint when `path` is `s3://…`.
    pub s3: S3Config,
}

/// `[store.s3]`. Credentials are never read from here: they come from the standard AWS
/// sources (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, a web
/// identity token, the container or instance role).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// An S3-compatible server (`https://s3.example.internal:9000`); AWS itself when unset.
    pub endpoint: Option<String>,
    /// Default `us-east-1`.
    pub region: String,
    /// Allow an `http://` endpoint (no TLS). Default false.
    pub allow_http: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: None,
            region: "us-east-1".into(),
            allow_http: false,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("./buildcost-data"),
            retention_days: 400,
            rollups: true,
            s3: S3Config::default(),
        }
    }
}

impl StoreConfig {
    /// Whether the store is on an object store rather than a local folder.
    pub fn is_remote(&self) -> bool {
        crate::backend::is_remote(&self.path.to_string_lossy())
    }

    /// Checks the section.
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let path = self.path.to_string_lossy();
        if path.is_empty() {
            return Err(ConfigError::new("store.path", "must not be empty"));
        }
        if path.contains("://") && !self.is_remote() {
            return Err(ConfigError::new(
                "store.path",
                format!("`{path}`: a URL must start with s3://, gs:// or az:// (or give a local folder)"),
            ));
        }
        if self.retention_days == 0 {
            return Err(ConfigError::new(
                "store.retention_days",
                "must be at least 1",
            ));
        }
        if let Some(endpoint) = &self.s3.endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(ConfigError::new(
                    "store.s3.endpoint",
                    format!("`{endpoint}` must be an http:// or https:// URL"),
                ));
            }
            if endpoint.starts_with("http://") && !self.s3.allow_http {
                return Err(ConfigError::new(
                    "store.s3.allow_http",
                    format!("the endpoint `{endpoint}` is plain http://: set store.s3.allow_http = true to allow it (no TLS), or use https://"),
                ));
            }
        }
        if self.s3.region.trim().is_empty() {
            return Err(ConfigError::new("store.s3.region", "must not be empty"));
        }
        Ok(())
    }
}
