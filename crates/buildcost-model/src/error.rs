//! Errors of the model crate. A bad *event* is never an error here: it is a
//! [`crate::Rejection`]. These are errors in what the operator gave us
//! (configuration, classifier rules, keys).

/// What went wrong while building a model component from operator input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration key has a value we cannot use.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),

    /// A classifier rule could not be compiled.
    #[error("classifier rule {index} (`{pattern}`): {message}; fix the pattern in the rules file")]
    ClassifierRule {
        index: usize,
        pattern: String,
        message: String,
    },

    /// The classifier rules file is not valid.
    #[error("classifier rules: {0}")]
    ClassifierFile(String),

    /// The pseudonym key is unusable.
    #[error("pseudonym key: {0}")]
    PseudonymKey(String),

    /// Arrow refused a batch (a bug: the builder and schema disagree).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
