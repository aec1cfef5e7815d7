//! `buildcost webhook`: an HTTP receiver for CI systems that can only call webhooks. It
//! verifies each payload, normalises it (crate `buildcost-adapters`) and produces the build
//! events to the `[kafka]` topic, keyed by event id; the ingesters do the rest.

use std::path::Path;

use anyhow::Result;

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

/// Runs `buildcost webhook` until SIGTERM or Ctrl-C.
///
/// # Errors
/// A secret file is unreadable, the producer cannot be created or the address is taken.
pub fn run(config_path: Option<&Path>, args: Args) -> Result<()> {
    let (config, _) = crate::config::load(config_path)?;
    let listen = args.listen.unwrap_or_else(|| config.webhook.listen.clone());
    let settings = buildcost_webhook::WebhookSettings {
        webhook: config.webhook.clone(),
        kafka: config.kafka.clone(),
        normaliser: config.normaliser(),
    };
    super::runtime()?.block_on(buildcost_webhook::serve(
        settings,
        &listen,
        super::shutdown_signal(),
    ))?;
    Ok(())
}
