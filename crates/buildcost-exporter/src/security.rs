//! Optional HTTPS and HTTP basic auth for the service's endpoints, configured as Prometheus'
//! exporter-toolkit does: a PEM certificate and key, and users with bcrypt-hashed passwords.
//!
//! A good credential is remembered (as a SHA-256 of user, password and hash) so a scrape every
//! few seconds does not pay bcrypt's deliberate cost each time; a bad one is always checked in
//! full, and an unknown user is checked against a dummy hash so timing does not tell which
//! users exist.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
/// Failed attempts (wrong credentials, not missing ones) a client (an IP address) may make per
/// [`FAILURE_WINDOW`]; beyond, it gets 429 without a bcrypt check until the window ends, unless
/// it presents credentials verified before.
pub const MAX_FAILURES: u32 = 10;
/// The window failed attempts are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How many clients' failures are remembered (then the memory starts afresh).
const FAILING_CLIENTS: usize = 10_000;
/// The paths that answer without credentials: probes carry none, and they hold no figures.
pub const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];
/// A valid bcrypt hash no password is known for, checked for unknown users.
const DUMMY_HASH: &str = "$2b$10$CwTycUXWue0Thq9StjUM0uJ8DZ2gZ8bJ0mMh6s6cN5L9H3Bq1e5Qa";

/// Why the HTTP security settings cannot be used; names the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SecurityError {
    pub key: &'static str,
    pub message: String,
}

/// How long a client may take and how many may be connected at once.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpLimits {
    /// A request's header (and a TLS handshake) must arrive within this.
    pub header_timeout: Duration,
    /// A request, its body read included, is answered within this (else 408).
    pub request_timeout: Duration,
    /// Open connections beyond this are closed at once.
    pub max_connections: usize,
}

impl From<&HttpConfig> for HttpLimits {
    fn from(http: &HttpConfig) -> Self {
        HttpLimits {
            header_timeout: http.header_timeout,
            request_timeout: http.request_timeout,
            max_connections: http.max_connections,
        }
    }
}

/// The defaults of `[http]` (for the webhook, which has no such keys).
impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits::from(&HttpConfig::default())
    }
}

/// HTTPS and basic-auth settings, loaded and checked once at start-up, and the limits of
/// every connection.
#[derive(Clone, Default)]
pub struct HttpSecurity {
    pub(crate) tls: Option<OpenSSLConfig>,
    pub(crate) auth: Option<Arc<BasicAuth>>,
    pub limits: HttpLimits,
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
        Ok(HttpSecurity {
            tls,
            auth,
            limits: HttpLimits::from(http),
        })
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
        Ok(HttpSecurity {
            tls,
            auth: None,
            limits: HttpLimits::default(),
        })
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
    /// Per client: when its window started and how many attempts failed in it.
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
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
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// How long `client` must wait when it has failed too often, now.
    fn blocked_for(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().ok()?;
        let (since, count) = failures.get(&client)?;
        let elapsed = now.duration_since(*since);
        (*count >= MAX_FAILURES && elapsed < FAILURE_WINDOW).then(|| FAILURE_WINDOW - elapsed)
    }

    /// Counts a failed attempt of `client`.
    fn failed(&self, client: IpAddr, now: Instant) {
        if let Ok(mut failures) = self.failures.lock() {
            if failures.len() >= FAILING_CLIENTS && !failures.contains_key(&client) {
                failures.retain(|_, (since, _)| now.duration_since(*since) < FAILURE_WINDOW);
                if failures.len() >= FAILING_CLIENTS {
                    failures.clear();
                }
            }
            let entry = failures.entry(client).or_insert((now, 0));
            if now.duration_since(entry.0) >= FAILURE_WINDOW {
                *entry = (now, 0);
            }
            entry.1 += 1;
        }
    }

    /// The fingerprint of the credentials of an `Authorization` header value and the hash of its
    /// user (a dummy hash for an unknown user, so both take as long), if it is basic auth.
    fn credentials(&self, authorization: Option<&str>) -> Option<Credentials<'_>> {
        let (user, password) = authorization.and_then(parse_basic)?;
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
        Some(Credentials {
            password,
            hash,
            known,
            fingerprint,
        })
    }

    /// Whether these credentials were verified before (no bcrypt check).
    fn remembered(&self, credentials: &Credentials<'_>) -> bool {
        credentials.known
            && self
                .verified
                .lock()
                .is_ok_and(|v| v.contains(&credentials.fingerprint))
    }

    /// Whether an `Authorization` header value names a user with the right password.
    fn allows(&self, authorization: Option<&str>) -> bool {
        let Some(c) = self.credentials(authorization) else {
            return false;
        };
        if self.remembered(&c) {
            return true;
        }
        let good = bcrypt::verify(c.password.as_bytes(), c.hash).unwrap_or(false) && c.known;
        if good {
            if let Ok(mut v) = self.verified.lock() {
                if v.len() >= REMEMBERED {
                    v.clear();
                }
                v.insert(c.fingerprint);
            }
        }
        good
    }
}

/// What [`BasicAuth::credentials`] reads of a request.
struct Credentials<'a> {
    password: String,
    hash: &'a str,
    known: bool,
    fingerprint: [u8; 32],
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
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(wait) = client.and_then(|c| auth.blocked_for(c, Instant::now())) {
        // Credentials verified before still get in (a SHA-256, no bcrypt): an attacker behind
        // the same address as Prometheus or the portal cannot lock them out.
        if auth
            .credentials(header.as_deref())
            .is_some_and(|c| auth.remembered(&c))
        {
            return next.run(request).await;
        }
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, (wait.as_secs() + 1).to_string())],
            format!("too many failed attempts: at most {MAX_FAILURES} a minute from one address\n"),
        )
            .into_response();
    }
    // A request without credentials costs no bcrypt check and is not counted: browsers and
    // clients behind one proxy ask once without them before they send them.
    let presented = header.is_some();
    let checker = auth.clone();
    // bcrypt is slow on purpose: off the async workers.
    let allowed = tokio::task::spawn_blocking(move || checker.allows(header.as_deref()))
        .await
        .unwrap_or(false);
    if allowed {
        next.run(request).await
    } else {
        if let (true, Some(client)) = (presented, client) {
            auth.failed(client, Instant::now());
        }
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
        let good = basic("prometheus", "s3cret");
        let remembered = |h: &str| {
            auth.credentials(Some(h))
                .is_some_and(|c| auth.remembered(&c))
        };
        assert!(!remembered(&good));
        assert!(auth.allows(Some(&good)));
        assert!(remembered(&good));
        // The second time comes from the memory of good credentials, with the same answer.
        assert!(auth.allows(Some(&good)));
        assert!(!auth.allows(Some(&basic("prometheus", "wrong"))));
        assert!(!auth.allows(Some(&basic("someone", "s3cret"))));
        assert!(!auth.allows(Some("Bearer s3cret")));
        assert!(!auth.allows(Some("Basic !!!")));
        assert!(!auth.allows(None));
        assert!(!remembered(&basic("prometheus", "wrong")));
        assert!(!remembered(&basic("someone", "s3cret")));
    }

    #[test]
    fn a_client_that_fails_too_often_waits_for_the_window_to_end() {
        let auth = auth();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let start = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            auth.failed(a, start);
        }
        assert_eq!(auth.blocked_for(a, start), None);
        auth.failed(a, start);
        let wait = auth
            .blocked_for(a, start + Duration::from_secs(15))
            .unwrap();
        assert_eq!(wait, FAILURE_WINDOW - Duration::from_secs(15));
        assert_eq!(
            auth.blocked_for(b, start),
            None,
            "another client is not blocked"
        );
        assert_eq!(auth.blocked_for(a, start + FAILURE_WINDOW), None);
        // A new window starts afresh.
        auth.failed(a, start + FAILURE_WINDOW);
        assert_eq!(auth.blocked_for(a, start + FAILURE_WINDOW), None);
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
