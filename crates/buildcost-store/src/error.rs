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

    /// An object-store request failed (after its retries).
    #[error("{action} `{}`: {source}", location.display())]
    Object {
        action: &'static str,
        location: PathBuf,
        #[source]
        source: Box<object_store::Error>,
    },

    /// The store cannot be opened as configured: names the setting to fix.
    #[error("{setting}: {message}")]
    Config {
        setting: &'static str,
        message: String,
    },

    /// The pseudonym key file is unusable.
    #[error("pseudonym key file `{path}`: {message}")]
    Key { path: PathBuf, message: String },
}

impl Error {
    /// Whether the store could not be reached (an object-store request that failed after its
    /// retries): worth waiting for, unlike a damaged file or a full disk.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Object { .. })
    }

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
