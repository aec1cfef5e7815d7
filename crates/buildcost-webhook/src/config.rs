//! `[webhook]`: the receiver's address, body limit, TLS and the secret of each source.

use std::path::PathBuf;

use buildcost_model::config::ConfigError;
use serde::{Deserialize, Serialize};

/// `[webhook]`: the receiver `buildcost webhook`. A source whose secret is not configured is
/// refused (403), never accepted unverified.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    pub listen: String,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// File holding the GitHub webhook secret (checks `X-Hub-Signature-256`).
    pub github_secret_file: Option<PathBuf>,
    /// File holding the GitLab secret token (checks `X-Gitlab-Token`).
    pub gitlab_token_file: Option<PathBuf>,
    /// File holding the bearer token of `/webhook/jenkins` and `/webhook/cdevents`
    /// (`Authorization: Bearer …`).
    pub token_file: Option<PathBuf>,
    /// PEM certificate (chain) for HTTPS on the webhook; with `tls_key_file`, or neither.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            listen: "127.0.0.1:9899".into(),
            max_body_bytes: 1024 * 1024,
            github_secret_file: None,
            gitlab_token_file: None,
            token_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl WebhookConfig {
    /// Checks the section (the secret files are read when the receiver starts).
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "webhook.listen",
                format!("`{}` is not an address like 127.0.0.1:9899", self.listen),
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::new(
                "webhook.max_body_bytes",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
