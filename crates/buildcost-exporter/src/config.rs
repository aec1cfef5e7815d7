//! `[http]` and `[refresh]`: how the service's endpoints are served and how often the gauges
//! are computed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use buildcost_model::config::{duration, ConfigError};
use serde::{Deserialize, Serialize};

/// `[http]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: String,
    /// PEM certificate (chain) for HTTPS; with `tls_key_file`, or neither.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// User name → bcrypt hash of the password (`$2b$…`, as `htpasswd -nbB` or Prometheus'
    /// exporter-toolkit take). When set, every endpoint asks for HTTP basic auth.
    pub basic_auth_users: BTreeMap<String, String>,
    /// A client must send a request's header (and finish a TLS handshake) within this.
    #[serde(with = "duration")]
    pub header_timeout: Duration,
    /// A request, its body included, is answered within this, else 408.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// Open connections beyond this are closed at once.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9898".into(),
            tls_cert_file: None,
            tls_key_file: None,
            basic_auth_users: BTreeMap::new(),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

/// Whether `hash` has the shape of a bcrypt hash: `$2a$`, `$2b$`, `$2x$` or `$2y$`, a two-digit
/// cost, then 53 characters of bcrypt's base64.
pub fn is_bcrypt_hash(hash: &str) -> bool {
    let b = hash.as_bytes();
    b.len() == 60
        && hash.starts_with("$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

impl HttpConfig {
    /// Checks the section (the files are read when the server starts).
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "http.listen",
                format!("`{}` is not an address like 127.0.0.1:9898", self.listen),
            ));
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "http.tls_key_file",
                    "is required with http.tls_cert_file",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "http.tls_cert_file",
                    "is required with http.tls_key_file",
                ))
            }
            _ => {}
        }
        for (key, value) in [
            ("http.header_timeout", self.header_timeout),
            ("http.request_timeout", self.request_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(key, "must be longer than 0s"));
            }
        }
        if self.max_connections == 0 {
            return Err(ConfigError::new(
                "http.max_connections",
                "must be at least 1",
            ));
        }
        for (user, hash) in &self.basic_auth_users {
            let key = format!("http.basic_auth_users.{user}");
            if user.is_empty() || user.contains(':') {
                return Err(ConfigError::new(
                    key,
                    "a user name is not empty and has no `:`",
                ));
            }
            if !is_bcrypt_hash(hash) {
                return Err(ConfigError::new(
                    key,
                    "must be a bcrypt hash like $2b$10$… (make one with `htpasswd -nbBC 10 USER PASSWORD` or `buildcost hash-password`), never the password itself",
                ));
            }
        }
        Ok(())
    }
}

/// `[refresh]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshConfig {
    /// How often the business gauges are computed (`60s`, `5m`).
    #[serde(with = "duration")]
    pub interval: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            interval: Duration::from_secs(60),
        }
    }
}

impl RefreshConfig {
    /// Checks the section.
    ///
    /// # Errors
    /// A zero interval.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::new(
                "refresh.interval",
                "must be longer than 0s",
            ));
        }
        Ok(())
    }
}
