//! Getting a message there: SMTP (lettre) and webhooks (reqwest), with the retries of spec
//! section 14 — 429, 5xx, connection errors and timeouts, and SMTP's transient 4xx, are tried
//! again with backoff, at most [`MAX_ATTEMPTS`] times within [`RETRY_BUDGET`]; other errors are
//! not. An error never shows a webhook URL or a password: both are secrets.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use buildcost_model::config::ConfigError;
use buildcost_model::Secret;

/// Most attempts per destination.
pub const MAX_ATTEMPTS: u32 = 5;
/// The time from the first attempt after which no other is started.
pub const RETRY_BUDGET: Duration = Duration::from_secs(120);
/// The wait before the second attempt; doubled for each next one (1, 2, 4, 8 s).
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// How `[smtp]` encrypts the connection.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); refused when the server cannot.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a local relay only).
    None,
}

/// `[smtp]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: Option<String>,
    /// Default: 587 with STARTTLS, 465 with TLS, 25 without.
    pub port: Option<u16>,
    pub tls: SmtpTls,
    pub username: Option<String>,
    /// The password, in a file (a mounted Secret); or `password_env`.
    pub password_file: Option<PathBuf>,
    /// The environment variable holding the password.
    pub password_env: Option<String>,
    /// The sender, like `buildcost <buildcost@corp.example>`.
    pub from: Option<String>,
    /// A PEM certificate to trust besides the system's (a relay with a private CA).
    pub ca_file: Option<PathBuf>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: None,
            port: None,
            tls: SmtpTls::Starttls,
            username: None,
            password_file: None,
            password_env: None,
            from: None,
            ca_file: None,
        }
    }
}

impl SmtpConfig {
    /// Checks the section.
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(from) = &self.from {
            from.parse::<Mailbox>().map_err(|e| {
                ConfigError::new("smtp.from", format!("`{from}` is not a mailbox: {e}"))
            })?;
        }
        if self.password_file.is_some() && self.password_env.is_some() {
            return Err(ConfigError::new(
                "smtp.password_file",
                "give the password in a file or in smtp.password_env, not both",
            ));
        }
        if self.username.is_none() && (self.password_file.is_some() || self.password_env.is_some())
        {
            return Err(ConfigError::new(
                "smtp.username",
                "is required with a password",
            ));
        }
        if self.host.as_deref().is_some_and(|h| h.trim().is_empty()) {
            return Err(ConfigError::new("smtp.host", "is empty"));
        }
        Ok(())
    }

    /// Makes relative paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        for p in [&mut self.password_file, &mut self.ca_file]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// The sender and a transport, checked when e-mail is to be sent.
    ///
    /// # Errors
    /// `smtp.host` or `smtp.from` is missing, the password or CA cannot be read.
    pub fn connect(&self) -> Result<(Mailbox, AsyncSmtpTransport<Tokio1Executor>), ConfigError> {
        let host = self
            .host
            .clone()
            .ok_or_else(|| ConfigError::new("smtp.host", "is required to send e-mail"))?;
        let from: Mailbox = self
            .from
            .as_deref()
            .ok_or_else(|| ConfigError::new("smtp.from", "is required to send e-mail"))?
            .parse()
            .map_err(|e| ConfigError::new("smtp.from", format!("is not a mailbox: {e}")))?;
        let tls_parameters = || -> Result<TlsParameters, ConfigError> {
            let mut builder = TlsParameters::builder(host.clone());
            if let Some(ca) = &self.ca_file {
                let pem = std::fs::read(ca).map_err(|e| {
                    ConfigError::new(
                        "smtp.ca_file",
                        format!("cannot read `{}`: {e}", ca.display()),
                    )
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| {
                    ConfigError::new("smtp.ca_file", format!("is not a PEM certificate: {e}"))
                })?;
                builder = builder.add_root_certificate(cert);
            }
            builder
                .build()
                .map_err(|e| ConfigError::new("smtp.ca_file", e.to_string()))
        };
        let (tls, port) = match self.tls {
            SmtpTls::Starttls => (Tls::Required(tls_parameters()?), 587),
            SmtpTls::Tls => (Tls::Wrapper(tls_parameters()?), 465),
            SmtpTls::None => (Tls::None, 25),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(self.port.unwrap_or(port))
            .tls(tls)
            .timeout(Some(ATTEMPT_TIMEOUT));
        if let Some(user) = &self.username {
            let secret = match (&self.password_file, &self.password_env) {
                (Some(file), _) => Secret::File { file: file.clone() },
                (None, Some(env)) => Secret::Env { env: env.clone() },
                (None, None) => {
                    return Err(ConfigError::new(
                        "smtp.password_file",
                        "is required with smtp.username (or smtp.password_env)",
                    ))
                }
            };
            let password = secret.read("smtp.password_file")?;
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok((from, builder.build()))
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Worth another attempt, after at least the given wait (a `Retry-After`).
    Transient(String, Option<Duration>),
    /// Not worth another attempt.
    Permanent(String),
}

/// How a destination was served: the attempts made and the last error.
#[derive(Debug, Clone, PartialEq)]
pub struct Tried {
    pub attempts: u32,
    pub error: Option<String>,
}

/// Runs `attempt` until it succeeds, fails permanently, or the attempts or the time run out.
pub async fn with_retries<F, Fut>(mut attempt: F, first_backoff: Duration) -> Tried
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let started = Instant::now();
    let mut backoff = first_backoff;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match attempt().await {
            Ok(()) => {
                return Tried {
                    attempts,
                    error: None,
                }
            }
            Err(Failure::Permanent(e)) => {
                return Tried {
                    attempts,
                    error: Some(format!("{e} (not retried)")),
                }
            }
            Err(Failure::Transient(e, after)) => {
                let wait = after.map_or(backoff, |a| a.max(backoff));
                let budget_left = RETRY_BUDGET.saturating_sub(started.elapsed());
                if attempts >= MAX_ATTEMPTS || wait >= budget_left {
                    return Tried {
                        attempts,
                        error: Some(format!(
                            "{e} (after {attempts} attempt{} in {:.0} s)",
                            if attempts == 1 { "" } else { "s" },
                            started.elapsed().as_secs_f64()
                        )),
                    };
                }
                tracing::info!(attempt = attempts, wait_s = wait.as_secs_f64(), error = %e, "will try again");
                wait
            }
        };
        tokio::time::sleep(error).await;
        backoff *= 2;
    }
}

/// A webhook client (HTTPS through the system's roots, no cookies, a timeout per attempt).
///
/// # Errors
/// The TLS backend cannot start.
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("buildcost/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.without_url().to_string())
}

/// POSTs `body` (JSON) to `url` once.
///
/// # Errors
/// A [`Failure`] that never names the URL.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<(), Failure> {
    let response = client.post(url).json(body).send().await.map_err(|e| {
        let e = e.without_url();
        let text = if e.is_timeout() {
            format!("timed out after {} s", ATTEMPT_TIMEOUT.as_secs())
        } else {
            format!("cannot reach the webhook: {e}")
        };
        Failure::Transient(text, None)
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let message = format!(
        "HTTP {status}{}",
        if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        }
    );
    if status.as_u16() == 429 || status.is_server_error() {
        Err(Failure::Transient(message, retry_after))
    } else {
        Err(Failure::Permanent(message))
    }
}

/// An e-mail: HTML and plain text, and attachments `(file name, content type, bytes)`.
pub struct Email {
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub attachments: Vec<(String, String, Vec<u8>)>,
}

impl Email {
    /// The MIME message from `from`.
    ///
    /// # Errors
    /// An address or content type that does not parse.
    pub fn message(&self, from: &Mailbox) -> Result<Message, String> {
        let to: Mailbox = self
            .to
            .parse()
            .map_err(|e| format!("`{}` is not an address: {e}", self.to))?;
        let mut mixed = MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
            self.text.clone(),
            self.html.clone(),
        ));
        for (name, content_type, bytes) in &self.attachments {
            let ct = ContentType::parse(content_type).map_err(|e| e.to_string())?;
            mixed = mixed.singlepart(Attachment::new(name.clone()).body(bytes.clone(), ct));
        }
        Message::builder()
            .from(from.clone())
            .to(to)
            .subject(self.subject.clone())
            .multipart(mixed)
            .map_err(|e| e.to_string())
    }
}

/// Sends `message` once.
///
/// # Errors
/// A transient [`Failure`] for a 4xx reply, a timeout or a connection error; a permanent
/// one for a 5xx reply or a message the server refuses.
pub async fn send_email(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    message: Message,
) -> Result<(), Failure> {
    match transport.send(message).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_permanent() || e.is_client() => {
            Err(Failure::Permanent(format!("SMTP: {e}")))
        }
        Err(e) => Err(Failure::Transient(format!("SMTP: {e}"), None)),
    }
}
