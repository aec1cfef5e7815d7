//! Errors of ingestion. Bad events are never errors: they are counted rejections.

use std::path::PathBuf;

/// What stopped an ingest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store refused a write; nothing of the failed batch is visible.
    #[error(transparent)]
    Store(#[from] buildcost_store::Error),

    /// The model refused a batch (a bug).
    #[error(transparent)]
    Model(#[from] buildcost_model::Error),

    /// A Kafka client operation failed.
    #[error("Kafka: could not {context}: {source}")]
    Kafka {
        context: &'static str,
        #[source]
        source: rdkafka::error::KafkaError,
    },

    /// Reading the input or writing a dead letter failed.
    #[error("{action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Result with the ingest [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
