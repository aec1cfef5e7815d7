//! Optional HTTPS and HTTP basic auth for the service's endpoints, configured as Prometheus'
//! exporter-toolkit does: a PEM certificate and key, and users with bcrypt-hashed passwords.
//!
//! A good credential is remembered (as a SHA-256 of user, password and hash) so a scrape every
//! few seconds does not pay bcrypt's deliberate cost each time; a bad one is always checked in
//! full, and an unknown user is checked against a dummy hash so timing does not tell which
//! users exist.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::config::HttpConfig;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_server::tls_openssl::OpenSSLConfig;
use base64::Engine;
use sha2::{Digest, Sha256};

/// How many good credentials are remembered (then the memory starts afresh).
const REMEMBERED: usize = 64;
/// A valid bcrypt hash no password is known for, checked for unknown users.
const DUMMY_HASH: &str = "$2b$10$CwTycUXWue0Thq9StjUM0uJ8DZ2gZ8bJ0mMh6s6cN5L9H3Bq1e5Qa";

/// Why the HTTP security settings cannot be used; names the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SecurityError {
    pub key: &'static str,
    pub message: String,
}

/// HTTPS and basic-auth settings, loaded and checked once at start-up.
#[derive(Clone, Default)]
pub struct HttpSecurity {
    pub(crate) tls: Option<OpenSSLConfig>,
    pub(crate) auth: Option<Arc<BasicAuth>>,
}

impl std::fmt::Debug for HttpSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSecurity")
            .field("tls", &self.tls.is_some())
            .field("basic_auth", &self.auth.is_some())
            .finish()
    }
}

impl HttpSecurity {
    /// Plain HTTP, no authentication (the default, for loopback).
    pub fn none() -> Self {
        Self::default()
    }

    /// Loads the certificate and key and takes the users of `[http]`.
    ///
    /// # Errors
    /// A file cannot be read or is not a PEM certificate / key; a hash is not bcrypt.
    pub fn from_config(http: &HttpConfig) -> Result<Self, SecurityError> {
        let HttpSecurity { tls, .. } = Self::tls_only(
            http.tls_cert_file.as_deref(),
            http.tls_key_file.as_deref(),
            ("http.tls_cert_file", "http.tls_key_file"),
        )?;
        let auth = if http.basic_auth_users.is_empty() {
            None
        } else {
            Some(Arc::new(BasicAuth::new(&http.basic_auth_users)?))
        };
        Ok(HttpSecurity { tls, auth })
    }

    /// HTTPS from a certificate and key (no basic auth): for the webhook, whose senders
    /// authenticate per source. `keys` name the two settings in errors.
    ///
    /// # Errors
    /// One file and not the other; a file cannot be read or is not PEM.
    pub fn tls_only(
        cert: Option<&Path>,
        key: Option<&Path>,
        keys: (&'static str, &'static str),
    ) -> Result<Self, SecurityError> {
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(load_tls(cert, key, keys.0)?),
            (None, None) => None,
            (Some(_), None) => {
                return Err(SecurityError {
                    key: keys.1,
                    message: format!("is required with {}", keys.0),
                })
            }
            (None, Some(_)) => {
                return Err(SecurityError {
                    key: keys.0,
                    message: format!("is required with {}", keys.1),
                })
            }
        };
        Ok(HttpSecurity { tls, auth: None })
    }

    /// Whether the endpoints speak HTTPS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether the endpoints ask for basic auth.
    pub fn basic_auth(&self) -> bool {
        self.auth.is_some()
    }

    /// `router` behind basic auth when users are configured.
    pub fn protect(&self, router: axum::Router) -> axum::Router {
        match &self.auth {
            Some(auth) => router.layer(axum::middleware::from_fn_with_state(
                auth.clone(),
                require_basic_auth,
            )),
            None => router,
        }
    }
}

/// The acceptor of a PEM certificate and key; errors name `setting`.
fn load_tls(
    cert: &Path,
    key: &Path,
    setting: &'static str,
) -> Result<OpenSSLConfig, SecurityError> {
    for path in [cert, key] {
        if let Err(e) = std::fs::metadata(path) {
            return Err(SecurityError {
                key: setting,
                message: format!("cannot read `{}`: {e}", path.display()),
            });
        }
    }
    OpenSSLConfig::from_pem_chain_file(cert, key).map_err(|e| SecurityError {
        key: setting,
        message: format!(
            "`{}` with key `{}` is not a usable PEM certificate and key: {e}",
            cert.display(),
            key.display()
        ),
    })
}

/// The configured users and the credentials already verified.
pub(crate) struct BasicAuth {
    users: BTreeMap<String, String>,
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl BasicAuth {
    fn new(users: &BTreeMap<String, String>) -> Result<Self, SecurityError> {
        for (user, hash) in users {
            if !crate::config::is_bcrypt_hash(hash) {
                return Err(SecurityError {
                    key: "http.basic_auth_users",
                    message: format!("the hash of user `{user}` is not a bcrypt hash"),
                });
            }
        }
        Ok(BasicAuth {
            users: users.clone(),
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Whether an `Authorization` header value names a user with the right password.
    fn allows(&self, authorization: Option<&str>) -> bool {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let (hash, known) = match self.users.get(&user) {
            Some(h) => (h.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        let fingerprint: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .chain_update([0])
            .chain_update(hash.as_bytes())
            .finalize()
            .into();
        if known && self.verified.lock().is_ok_and(|v| v.contains(&fingerprint)) {
            return true;
        }
        let good = bcrypt::verify(password.as_bytes(), hash).unwrap_or(false) && known;
        if good {
            if let Ok(mut v) = self.verified.lock() {
                if v.len() >= REMEMBERED {
                    v.clear();
                }
                v.insert(fingerprint);
            }
        }
        good
    }
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(value: &str) -> Option<(String, String)> {
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

async fn require_basic_auth(
    State(auth): State<Arc<BasicAuth>>,
    request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let checker = auth.clone();
    // bcrypt is slow on purpose: off the async workers.
    let allowed = tokio::task::spawn_blocking(move || checker.allows(header.as_deref()))
        .await
        .unwrap_or(false);
    if allowed {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"buildcost\"")],
            "unauthorized: this endpoint asks for HTTP basic auth (http.basic_auth_users)\n",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> BasicAuth {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        BasicAuth::new(&BTreeMap::from([("prometheus".to_owned(), hash)])).unwrap()
    }

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn only_a_known_user_with_the_right_password_gets_in() {
        let auth = auth();
        assert!(auth.allows(Some(&basic("prometheus", "s3cret"))));
        // The second time comes from the memory of good credentials, with the same answer.
        assert!(auth.allows(Some(&basic("prometheus", "s3cret"))));
        assert!(!auth.allows(Some(&basic("prometheus", "wrong"))));
        assert!(!auth.allows(Some(&basic("someone", "s3cret"))));
        assert!(!auth.allows(Some("Bearer s3cret")));
        assert!(!auth.allows(Some("Basic !!!")));
        assert!(!auth.allows(None));
    }

    #[test]
    fn a_password_instead_of_a_hash_is_refused_at_start() {
        let e = BasicAuth::new(&BTreeMap::from([("p".to_owned(), "plain".to_owned())]))
            .err()
            .unwrap();
        assert_eq!(e.key, "http.basic_auth_users");
    }

    #[test]
    fn the_dummy_hash_is_a_bcrypt_hash() {
        assert!(crate::config::is_bcrypt_hash(DUMMY_HASH));
        assert!(!bcrypt::verify("", DUMMY_HASH).unwrap_or(false));
    }
}
