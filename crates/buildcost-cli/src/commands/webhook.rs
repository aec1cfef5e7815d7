//! `buildcost webhook`: an HTTP receiver for CI systems that can only call webhooks. It
//! verifies each payload, normalises it (crate `buildcost-adapters`) and produces the build
//! events to the `[kafka]` topic, keyed by event id; the ingesters do the rest.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use buildcost_adapters::{Format, Normalised, Normaliser};
use buildcost_model::config::Config;
use hmac::{Hmac, Mac};
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// `webhook` options.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Endpoints: POST /webhook/github (X-Hub-Signature-256 with webhook.github_secret_file), \
/webhook/gitlab (X-Gitlab-Token equal to webhook.gitlab_token_file), /webhook/jenkins and /webhook/cdevents \
(Authorization: Bearer <webhook.token_file>, or ?token= for senders that cannot set headers); GET /metrics, /healthz, /readyz. A source whose secret is not \
configured answers 403. Answers: 202 accepted (produced to [kafka].topic), 200 ignored (not a finished \
build), 401 bad or missing signature, 413 over webhook.max_body_bytes, 422 rejected (with its reason; \
dead-lettered to [kafka].dead_letter_topic), 503 Kafka unavailable (retry). See docs/integrations.md."
)]
pub struct Args {
    /// Address to listen on. Default: webhook.listen (127.0.0.1:9899).
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<String>,
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

fn read_secret(path: Option<&Path>, key: &str) -> Result<Option<Vec<u8>>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{key}: cannot read `{}`", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']).as_bytes().to_vec();
    anyhow::ensure!(!secret.is_empty(), "{key}: `{}` is empty", path.display());
    Ok(Some(secret))
}

struct Counters {
    registry: Registry,
    requests: IntCounterVec,
    produced: IntCounterVec,
    dead_lettered: IntCounterVec,
}

impl Counters {
    fn new() -> Result<Self> {
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

/// Runs `buildcost webhook` until SIGTERM or Ctrl-C.
///
/// # Errors
/// A secret file is unreadable, the producer cannot be created or the address is taken.
pub fn run(config_path: Option<&Path>, args: Args) -> Result<()> {
    let (config, _) = crate::config::load(config_path)?;
    let listen = args.listen.unwrap_or_else(|| config.webhook.listen.clone());
    super::runtime()?.block_on(serve(config, listen))
}

fn producer(config: &Config) -> Result<FutureProducer> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka.brokers)
        // Retries never write a message twice; the event id makes a redelivery a duplicate.
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set(
            "message.timeout.ms",
            PRODUCE_TIMEOUT.as_millis().to_string(),
        );
    for (k, v) in &config.kafka.properties {
        c.set(k, v);
    }
    c.create()
        .context("cannot create the Kafka producer (check [kafka])")
}

async fn serve(config: Config, listen: String) -> Result<()> {
    let receiver = Arc::new(Receiver {
        normaliser: Normaliser::new(&config).map_err(|e| anyhow::anyhow!("configuration: {e}"))?,
        secrets: Secrets {
            github: read_secret(
                config.webhook.github_secret_file.as_deref(),
                "webhook.github_secret_file",
            )?,
            gitlab: read_secret(
                config.webhook.gitlab_token_file.as_deref(),
                "webhook.gitlab_token_file",
            )?,
            bearer: read_secret(config.webhook.token_file.as_deref(), "webhook.token_file")?,
        },
        producer: producer(&config)?,
        topic: config.kafka.topic.clone(),
        dead_letter_topic: config.kafka.dead_letter_topic.clone(),
        max_body_bytes: config.webhook.max_body_bytes,
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
        config.webhook.tls_cert_file.as_deref(),
        config.webhook.tls_key_file.as_deref(),
        ("webhook.tls_cert_file", "webhook.tls_key_file"),
    )
    .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on `{listen}` (webhook.listen or --listen)"))?;
    let addr = listener.local_addr()?;
    tracing::info!(enabled = ?enabled, topic = %receiver.topic, "serving {}://{addr}/webhook/<source> (and /metrics, /healthz, /readyz)", if security.tls() { "https" } else { "http" });
    buildcost_exporter::serve_router(listener, app, &security, super::shutdown_signal())
        .await
        .context("the webhook server failed")?;
    // Whatever was accepted is on its way: wait for the broker to have it.
    let flushed = tokio::task::spawn_blocking(move || {
        rdkafka::producer::Producer::flush(&receiver.producer, PRODUCE_TIMEOUT)
    })
    .await?;
    if let Err(e) = flushed {
        tracing::warn!(error = %e, "not every produced event was confirmed before exit");
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

/// Whether the request carries the right credential for `format`. `query_token` is the
/// `?token=` of the URL, accepted for Jenkins and CDEvents senders that cannot set a header
/// (Tekton's event sink).
fn verify(
    format: Format,
    secret: &[u8],
    headers: &HeaderMap,
    query_token: Option<&str>,
    body: &[u8],
) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match format {
        Format::Github => header("x-hub-signature-256")
            .and_then(|v| v.strip_prefix("sha256="))
            .and_then(|hex_sig| hex::decode(hex_sig.trim()).ok())
            .is_some_and(|sig| {
                let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
                    return false;
                };
                mac.update(body);
                mac.verify_slice(&sig).is_ok()
            }),
        Format::Gitlab => {
            header("x-gitlab-token").is_some_and(|t| bool::from(t.as_bytes().ct_eq(secret)))
        }
        Format::Jenkins | Format::Cdevents => header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .or(query_token)
            .is_some_and(|t| bool::from(t.trim().as_bytes().ct_eq(secret))),
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
    match r.normaliser.normalise(format, &bytes) {
        Normalised::Events(events) => {
            let mut ids = Vec::with_capacity(events.len());
            for event in events {
                let payload = event.to_json_bytes();
                let record = FutureRecord::to(&r.topic)
                    .key(event.event_id.as_str())
                    .payload(&payload);
                if let Err((e, _)) = r.producer.send(record, PRODUCE_TIMEOUT).await {
                    tracing::warn!(source = %format, error = %e, "could not produce a build event; the sender is told to retry");
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
                ids.push(event.event_id);
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
            let source_label = format!("webhook/{format}");
            // The part of the build that could be read: the native payload names people.
            let body = serde_json::to_vec(&rejected.partial).unwrap_or_default();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "buildcost.reason",
                    value: Some(rejected.reason.as_str()),
                })
                .insert(Header {
                    key: "buildcost.detail",
                    value: Some(rejected.detail.as_str()),
                })
                .insert(Header {
                    key: "buildcost.source",
                    value: Some(source_label.as_str()),
                });
            let record = FutureRecord::<(), [u8]>::to(&r.dead_letter_topic)
                .payload(&body)
                .headers(headers);
            match r.producer.send(record, PRODUCE_TIMEOUT).await {
                Ok(_) => r
                    .counters
                    .dead_lettered
                    .with_label_values(&[format.as_str(), rejected.reason.as_str()])
                    .inc(),
                Err((e, _)) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap_or_else(|_| unreachable!()));
        }
        h
    }

    #[test]
    fn github_signatures_are_checked_over_the_body() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let ok = headers(&[("x-hub-signature-256", sig)]);
        let secret = b"It's a Secret to Everybody";
        assert!(verify(Format::Github, secret, &ok, None, b"Hello, World!"));
        assert!(!verify(Format::Github, secret, &ok, None, b"Hello, World?"));
        assert!(!verify(
            Format::Github,
            b"other",
            &ok,
            None,
            b"Hello, World!"
        ));
        assert!(!verify(
            Format::Github,
            secret,
            &HeaderMap::new(),
            None,
            b"Hello, World!"
        ));
        let sha1 = headers(&[("x-hub-signature-256", "sha1=00")]);
        assert!(!verify(
            Format::Github,
            secret,
            &sha1,
            None,
            b"Hello, World!"
        ));
    }

    #[test]
    fn tokens_must_match_exactly() {
        let gitlab = headers(&[("x-gitlab-token", "s3cret")]);
        assert!(verify(Format::Gitlab, b"s3cret", &gitlab, None, b""));
        assert!(!verify(Format::Gitlab, b"s3cret2", &gitlab, None, b""));
        let bearer = headers(&[("authorization", "Bearer t0ken")]);
        assert!(verify(Format::Jenkins, b"t0ken", &bearer, None, b""));
        assert!(verify(Format::Cdevents, b"t0ken", &bearer, None, b""));
        assert!(!verify(Format::Jenkins, b"t0ke", &bearer, None, b""));
        let basic = headers(&[("authorization", "Basic dDBrZW4=")]);
        assert!(!verify(Format::Jenkins, b"t0ken", &basic, None, b""));
        let none = HeaderMap::new();
        assert!(verify(
            Format::Cdevents,
            b"t0ken",
            &none,
            Some("t0ken"),
            b""
        ));
        assert!(!verify(Format::Cdevents, b"t0ken", &none, Some("t0k"), b""));
        assert!(
            !verify(Format::Github, b"t0ken", &none, Some("t0ken"), b""),
            "GitHub always signs"
        );
    }
}
