//! Errors of the store.

use std::path::PathBuf;

/// What went wrong reading or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed.
    #[error("{action} `{path}`: {source}; check the path, its permissions and free space")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A Parquet file could not be written or read.
    #[error("parquet file `{path}`: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// Arrow refused data (a bug, or a file of another schema).
    #[error("arrow data in `{path}`: {source}")]
    Arrow {
        path: PathBuf,
        #[source]
        source: arrow::error::ArrowError,
    },

    /// The pseudonym key file is unusable.
    #[error("pseudonym key file `{path}`: {message}")]
    Key { path: PathBuf, message: String },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

/// Result with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
