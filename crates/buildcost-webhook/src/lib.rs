//! The webhook receiver: an HTTP server for CI systems that can only call webhooks. It
//! verifies each payload (GitHub's HMAC, GitLab's token, a bearer token), normalises it
//! ([`buildcost_adapters`]) and produces the build events to the `[kafka]` topic, keyed by
//! event id; the ingesters do the rest. A payload that cannot become a valid event is answered
//! 422 and dead-lettered with its reason, never its author ([`buildcost_ingest::DeadLetter`]).
//!
//! ```no_run
//! # async fn example() -> Result<(), buildcost_webhook::Error> {
//! let settings = buildcost_webhook::WebhookSettings::default();
//! buildcost_webhook::serve(settings, "127.0.0.1:9899", std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod config;
mod verify;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use buildcost_adapters::{Format, Normalised, Normaliser, NormaliserSettings};
use buildcost_ingest::config::KafkaConfig;
use buildcost_ingest::{produce_dead_letter, DeadLetter, Origin};
use buildcost_model::Rejection;
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;

pub use config::WebhookConfig;
use verify::verify;

/// What stops the receiver from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A secret file is missing, unreadable or empty; names the key.
    #[error("{key}: {message}")]
    Secret { key: &'static str, message: String },
    /// The configuration cannot be used (a `[[mapping]]` rule, TLS files).
    #[error("configuration: {0}")]
    Config(String),
    /// The Kafka producer could not be created.
    #[error("cannot create the Kafka producer (check [kafka]): {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The metrics registry refused a counter (a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The address cannot be listened on.
    #[error("cannot listen on `{addr}` (webhook.listen or --listen): {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    /// The server failed.
    #[error("the webhook server failed: {0}")]
    Serve(#[from] buildcost_exporter::Error),
}

/// Everything the receiver is configured with.
#[derive(Debug, Clone, Default)]
pub struct WebhookSettings {
    pub webhook: WebhookConfig,
    /// The topic events are produced to, its dead-letter topic and librdkafka's properties.
    pub kafka: KafkaConfig,
    pub normaliser: NormaliserSettings,
}

/// How long a produce may wait for the broker before the sender is told to retry.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(15);

/// The secrets of each source; `None` when the source is not enabled.
#[derive(Default)]
struct Secrets {
    github: Option<Vec<u8>>,
    gitlab: Option<Vec<u8>>,
    bearer: Option<Vec<u8>>,
}

struct Counters {
    registry: Registry,
    requests: IntCounterVec,
    produced: IntCounterVec,
    dead_lettered: IntCounterVec,
}

impl Counters {
    fn new() -> Result<Self, Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "buildcost_webhook_requests_total",
                "Webhook requests by source and outcome (accepted, ignored, rejected, unauthorized, disabled, too_large, unavailable).",
            ),
            &["source", "outcome"],
        )?;
        let produced = IntCounterVec::new(
            Opts::new(
                "buildcost_webhook_events_produced_total",
                "Build events produced to the topic, by source.",
            ),
            &["source"],
        )?;
        let dead_lettered = IntCounterVec::new(
            Opts::new(
                "buildcost_webhook_dead_lettered_total",
                "Rejected payloads sent to the dead-letter topic, by source and reason.",
            ),
            &["source", "reason"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(produced.clone()))?;
        registry.register(Box::new(dead_lettered.clone()))?;
        // Every series exists from the start, so a rate over it is defined.
        for f in Format::ALL {
            for outcome in OUTCOMES {
                requests.with_label_values(&[f.as_str(), outcome]);
            }
            produced.with_label_values(&[f.as_str()]);
        }
        Ok(Counters {
            registry,
            requests,
            produced,
            dead_lettered,
        })
    }
}

const OUTCOMES: &[&str] = &[
    "accepted",
    "ignored",
    "rejected",
    "unauthorized",
    "disabled",
    "too_large",
    "unavailable",
];

struct Receiver {
    normaliser: Normaliser,
    secrets: Secrets,
    producer: FutureProducer,
    topic: String,
    dead_letter_topic: String,
    max_body_bytes: usize,
    counters: Counters,
}

fn read_secret(path: Option<&Path>, key: &'static str) -> Result<Option<Vec<u8>>, Error> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::Secret {
        key,
        message: format!("cannot read `{}`: {e}", path.display()),
    })?;
    let secret = text.trim_end_matches(['\n', '\r']).as_bytes().to_vec();
    if secret.is_empty() {
        return Err(Error::Secret {
            key,
            message: format!("`{}` is empty", path.display()),
        });
    }
    Ok(Some(secret))
}

fn producer(kafka: &KafkaConfig) -> Result<FutureProducer, Error> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.brokers)
        // Retries never write a message twice; the event id makes a redelivery a duplicate.
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set(
            "message.timeout.ms",
            PRODUCE_TIMEOUT.as_millis().to_string(),
        );
    for (k, v) in &kafka.properties {
        c.set(k, v);
    }
    Ok(c.create()?)
}

/// Serves `/webhook/<source>` (and `/metrics`, `/healthz`, `/readyz`) on `listen` until
/// `shutdown` resolves, then waits for the broker to have every event accepted.
///
/// # Errors
/// A secret file is unreadable, the producer cannot be created or the address is taken.
pub async fn serve(
    settings: WebhookSettings,
    listen: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let config = &settings.webhook;
    let receiver = Arc::new(Receiver {
        normaliser: Normaliser::new(&settings.normaliser).map_err(Error::Config)?,
        secrets: Secrets {
            github: read_secret(
                config.github_secret_file.as_deref(),
                "webhook.github_secret_file",
            )?,
            gitlab: read_secret(
                config.gitlab_token_file.as_deref(),
                "webhook.gitlab_token_file",
            )?,
            bearer: read_secret(config.token_file.as_deref(), "webhook.token_file")?,
        },
        producer: producer(&settings.kafka)?,
        topic: settings.kafka.topic.clone(),
        dead_letter_topic: settings.kafka.dead_letter_topic.clone(),
        max_body_bytes: config.max_body_bytes,
        counters: Counters::new()?,
    });
    let enabled: Vec<&str> = Format::ALL
        .iter()
        .filter(|f| receiver.secret(**f).is_some())
        .map(|f| f.as_str())
        .collect();
    if enabled.is_empty() {
        tracing::warn!("no webhook secret is configured: every source answers 403 (see [webhook] in docs/configuration.md)");
    }
    if receiver.normaliser.mapper().is_empty() {
        tracing::warn!("no [[mapping]] rules: only payloads that carry their team are accepted");
    }
    let app = Router::new()
        .route("/webhook/{source}", post(receive))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .layer(DefaultBodyLimit::disable())
        .with_state(receiver.clone());
    let security = buildcost_exporter::HttpSecurity::tls_only(
        config.tls_cert_file.as_deref(),
        config.tls_key_file.as_deref(),
        ("webhook.tls_cert_file", "webhook.tls_key_file"),
    )
    .map_err(|e| Error::Config(e.to_string()))?;
    let bind = |source| Error::Bind {
        addr: listen.to_owned(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    tracing::info!(enabled = ?enabled, topic = %receiver.topic, "serving {}://{addr}/webhook/<source> (and /metrics, /healthz, /readyz)", if security.tls() { "https" } else { "http" });
    buildcost_exporter::serve_router(listener, app, &security, shutdown).await?;
    // Whatever was accepted is on its way: wait for the broker to have it.
    let flushed = tokio::task::spawn_blocking(move || {
        rdkafka::producer::Producer::flush(&receiver.producer, PRODUCE_TIMEOUT)
    })
    .await;
    if !matches!(flushed, Ok(Ok(()))) {
        tracing::warn!("not every produced event was confirmed before exit");
    }
    tracing::info!("webhook receiver stopped");
    Ok(())
}

impl Receiver {
    fn secret(&self, format: Format) -> Option<&[u8]> {
        match format {
            Format::Github => self.secrets.github.as_deref(),
            Format::Gitlab => self.secrets.gitlab.as_deref(),
            Format::Jenkins | Format::Cdevents => self.secrets.bearer.as_deref(),
        }
    }

    fn count(&self, format: Format, outcome: &str) {
        self.counters
            .requests
            .with_label_values(&[format.as_str(), outcome])
            .inc();
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    UrlPath(source): UrlPath<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(format) = source.parse::<Format>() else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no such source `{source}`: github, gitlab, jenkins or cdevents")}),
        );
    };
    let Some(secret) = r.secret(format) else {
        r.count(format, "disabled");
        let key = match format {
            Format::Github => "webhook.github_secret_file",
            Format::Gitlab => "webhook.gitlab_token_file",
            Format::Jenkins | Format::Cdevents => "webhook.token_file",
        };
        return answer(
            StatusCode::FORBIDDEN,
            json!({"error": format!("{format} webhooks are not enabled: set {key}")}),
        );
    };
    let bytes: Bytes = match to_bytes(body, r.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            r.count(format, "too_large");
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": format!("the body is over webhook.max_body_bytes = {}", r.max_body_bytes)}),
            );
        }
    };
    let query_token = query.get("token").map(String::as_str);
    if !verify(format, secret, &headers, query_token, &bytes) {
        r.count(format, "unauthorized");
        let how = match format {
            Format::Github => "X-Hub-Signature-256 (HMAC-SHA256 of the body with the secret)",
            Format::Gitlab => "X-Gitlab-Token",
            Format::Jenkins | Format::Cdevents => "Authorization: Bearer <token> (or ?token=)",
        };
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": format!("missing or wrong {how}")})),
        )
            .into_response();
    }
    let normalised = r.normaliser.normalise(format, &bytes);
    match normalised {
        Normalised::Events(_) | Normalised::Deployment(_) => {
            let messages = normalised.messages().unwrap_or_default();
            let mut ids = Vec::with_capacity(messages.len());
            for (event_id, payload) in messages {
                let record = FutureRecord::to(&r.topic)
                    .key(event_id.as_str())
                    .payload(&payload);
                if let Err((e, _)) = r.producer.send(record, PRODUCE_TIMEOUT).await {
                    tracing::warn!(source = %format, error = %e, "could not produce an event; the sender is told to retry");
                    r.count(format, "unavailable");
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::RETRY_AFTER, "30")],
                        Json(json!({"error": "Kafka did not take the event; retry later"})),
                    )
                        .into_response();
                }
                r.counters
                    .produced
                    .with_label_values(&[format.as_str()])
                    .inc();
                ids.push(event_id);
            }
            r.count(format, "accepted");
            answer(
                StatusCode::ACCEPTED,
                json!({"outcome": "accepted", "event_ids": ids}),
            )
        }
        Normalised::Ignored(why) => {
            r.count(format, "ignored");
            answer(StatusCode::OK, json!({"outcome": "ignored", "why": why}))
        }
        Normalised::Rejected(rejected) => {
            r.count(format, "rejected");
            tracing::info!(source = %format, reason = %rejected.reason, detail = %rejected.detail, "webhook payload rejected");
            // The part of the build that could be read: the native payload names people.
            let partial = serde_json::to_vec(&rejected.partial).unwrap_or_default();
            let rejection = Rejection::new(rejected.reason, rejected.detail.clone());
            let origin = Origin::Webhook {
                webhook: format.as_str().to_owned(),
            };
            let letter = DeadLetter::new(&rejection, &origin, &partial);
            let delivered = match produce_dead_letter(&r.producer, &r.dead_letter_topic, &letter) {
                Ok(delivery) => tokio::time::timeout(PRODUCE_TIMEOUT, delivery)
                    .await
                    .map_err(|_| "timed out".to_owned())
                    .and_then(|d| match d {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err((e, _))) => Err(e.to_string()),
                        Err(_) => Err("cancelled".to_owned()),
                    }),
                Err(e) => Err(e.to_string()),
            };
            match delivered {
                Ok(()) => r
                    .counters
                    .dead_lettered
                    .with_label_values(&[format.as_str(), rejected.reason.as_str()])
                    .inc(),
                Err(e) => {
                    tracing::warn!(source = %format, error = %e, "could not dead-letter a rejected payload");
                }
            }
            answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"outcome": "rejected", "reason": rejected.reason.as_str(), "detail": rejected.detail}),
            )
        }
    }
}

async fn metrics(State(r): State<Arc<Receiver>>) -> Response {
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&r.counters.registry.gather(), &mut out) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            buildcost_exporter::METRICS_CONTENT_TYPE,
        )],
        out,
    )
        .into_response()
}
