//! What can go wrong making a report.

use std::path::PathBuf;

/// A report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Query(#[from] buildcost_query::Error),
    #[error("unexpected query result: {0}")]
    Shape(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] buildcost_store::Error),
    #[error("cannot encode the report: {0}")]
    Encode(String),
    #[error("cannot draw a chart: {0}")]
    Chart(String),
    #[error("{0}")]
    Send(String),
}

/// The result of report operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
