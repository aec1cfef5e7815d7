//! Errors of the exporter.

/// What went wrong building or encoding metrics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Prometheus client refused a metric (a bug: a name or label set is wrong).
    #[error("prometheus: {0}")]
    Prometheus(#[from] prometheus::Error),

    /// The encoded text was not UTF-8 (cannot happen with the text encoder).
    #[error("encoded metrics are not UTF-8")]
    Encoding,
}

/// Result with the exporter [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
