//! Errors of the exporter.

/// What went wrong building or encoding metrics, refreshing them or serving them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Prometheus client refused a metric (a bug: a name or label set is wrong).
    #[error("prometheus: {0}")]
    Prometheus(#[from] prometheus::Error),

    /// The encoded text was not UTF-8 (cannot happen with the text encoder).
    #[error("encoded metrics are not UTF-8")]
    Encoding,

    /// Deflating the metrics for a gzip scrape failed (out of memory).
    #[error("cannot gzip the metrics: {0}")]
    Compress(String),

    /// Computing the business figures failed (store, teams file or a query).
    #[error("refresh: {0}")]
    Query(#[from] buildcost_query::Error),

    /// The weekly reports (the API's trend) could not be computed.
    #[error("weekly reports: {0}")]
    Report(String),

    /// The HTTP listener could not be opened.
    #[error("cannot listen on `{addr}` (http.listen or --listen): {source}; is another buildcost or exporter using the port?")]
    Bind {
        addr: String,
        source: std::io::Error,
    },

    /// The HTTP server stopped with an error.
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
}

/// Result with the exporter [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
