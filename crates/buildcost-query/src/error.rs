//! Errors of the query layer.

use std::path::PathBuf;

/// What went wrong computing figures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// DataFusion refused or failed a query.
    #[error("query failed: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),

    /// Arrow failed to render or convert a result.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    /// The store could not be listed.
    #[error(transparent)]
    Store(#[from] buildcost_store::Error),

    /// The teams file is unusable; the message names the line.
    #[error("teams file `{path}`: {message}")]
    TeamsFile { path: PathBuf, message: String },

    /// A stored file could not be read for the incremental refresh.
    #[error("cannot read stored file `{path}`: {message}")]
    StoredFile { path: PathBuf, message: String },

    /// A SQL template refers to a parameter nobody set (a bug in a shipped .sql file).
    #[error("SQL template uses `:{0}`, which has no value")]
    MissingParameter(String),

    /// A result had an unexpected shape (a bug: the .sql file and the code disagree).
    #[error("unexpected result shape: {0}")]
    Shape(String),
}

/// Result with the query [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// `e`, met while reading the stored `file`, as the error that names the file.
    pub(crate) fn stored_file(file: &buildcost_store::DataFile, e: &Error) -> Error {
        Error::StoredFile {
            path: file.path.clone(),
            message: e.to_string(),
        }
    }
}
