//! The long-running roles: `run` (consume + store + refresh + serve), `serve` (refresh from the
//! shared store + serve) and `ingest` in Kafka mode (consume + store, own metrics only), and the
//! wiring they share with `demo`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use anyhow::{Context, Result};
use buildcost_exporter::{HttpSecurity, IngestHandles, Refresher, ReportPages, Role, ServiceState};
use buildcost_ingest::{IngestSummary, KafkaIngest, KafkaSettings};
use chrono::{DateTime, Utc};
use tokio::sync::{oneshot, watch};

/// Options of `run` and `serve`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "SIGTERM or Ctrl-C: stop fetching, write and commit what is pending, exit 0 \
(`run` prints its JSON summary). /readyz answers 503 with the reason until the first refresh \
(and, for `run`, a broker connection). Several `buildcost ingest` + one `buildcost serve` on a \
shared store scale out; see docs/operations.md."
)]
pub struct Args {
    /// Address for /metrics, /healthz and /readyz (default: http.listen, 127.0.0.1:9898).
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<String>,
    /// Evaluate the business gauges at this fixed instant (RFC 3339) instead of at each
    /// refresh's time: for replays and for comparing with `buildcost metrics --at`.
    #[arg(long, value_parser = super::parse_instant, value_name = "RFC3339")]
    pub at: Option<DateTime<Utc>>,
}

/// What one service process does.
pub struct Service {
    pub role: Role,
    pub listen: String,
    pub at: Option<DateTime<Utc>>,
    /// The topic to consume, for the roles that consume.
    pub kafka: Option<KafkaSettings>,
}

/// Where a started service can be reached.
pub struct Started {
    pub addr: SocketAddr,
    pub state: Arc<ServiceState>,
}

/// The Kafka settings of a configuration.
pub fn kafka_settings(config: &Config) -> KafkaSettings {
    config
        .kafka
        .settings(&config.ingest, config.priced_classes())
}

/// Runs a service until `stop` turns true: then the consumer writes and commits what is
/// pending, the refresh loop ends, and the HTTP server finishes its requests. `started`
/// learns the address once the endpoints are up.
///
/// # Errors
/// The store, the consumer or the listener cannot be opened, or the consumer failed (the store
/// or the dead-letter topic): nothing past the failure is committed.
pub async fn run_service(
    config: &Config,
    service: Service,
    stop: watch::Receiver<bool>,
    started: Option<oneshot::Sender<Started>>,
) -> Result<IngestSummary> {
    let store = super::open_store(config)?;
    let mut ingest = match &service.kafka {
        Some(settings) => {
            let decoder = super::ingest::decoder(config)?;
            // The ids of a day are read when an event of that day first arrives.
            let index = store.event_index();
            Some(KafkaIngest::new(
                settings.clone(),
                decoder,
                store.clone(),
                index,
            )?)
        }
        None => None,
    };
    let handles = ingest
        .as_ref()
        .zip(service.kafka.as_ref())
        .map(|(i, s)| IngestHandles {
            topic: s.topic.clone(),
            summary: i.summary(),
            status: i.status(),
        });
    let security = HttpSecurity::from_config(&config.http)
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let pages = service.role.refreshes().then(|| {
        Arc::new(ReportPages::new(
            store.clone(),
            config.figures(),
            super::engine(config),
            service.at,
        ))
    });
    let mut state = ServiceState::new(service.role, handles)
        .with_store(store.clone())
        .with_basic_auth(security.basic_auth());
    if let Some(pages) = &pages {
        state = state.with_report_pages(pages.clone());
    }
    let state = Arc::new(state);
    let listener = buildcost_exporter::bind(&service.listen).await?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let (http_stop, mut http_stopped) = watch::channel(false);
    let server = {
        let (state, security) = (state.clone(), security.clone());
        tokio::spawn(async move {
            buildcost_exporter::serve(listener, state, &security, async move {
                let _ = http_stopped.wait_for(|s| *s).await;
            })
            .await
        })
    };
    if security.basic_auth() && !security.tls() {
        tracing::warn!("http.basic_auth_users without TLS: passwords cross the network in the clear; set http.tls_cert_file and http.tls_key_file");
    }
    tracing::info!(
        role = service.role.as_str(),
        basic_auth = security.basic_auth(),
        "serving {}://{addr}/metrics (and /api/v1/, /reports/, /healthz, /readyz)",
        if security.tls() { "https" } else { "http" }
    );

    let refresher = if service.role.refreshes() {
        let interval = config.refresh.interval;
        let mut refresher = Refresher::new(
            config.figures(),
            store.clone(),
            super::engine(config),
            service.at,
        );
        if let Some(pages) = &pages {
            refresher = refresher.with_report_pages(pages.clone());
        }
        Some(
            refresher
                .spawn(state.clone(), interval, stop.clone())
                .context("cannot start the refresh thread")?,
        )
    } else {
        None
    };
    if let Some(tx) = started {
        let _ = tx.send(Started {
            addr,
            state: state.clone(),
        });
    }

    let outcome = match ingest.as_mut() {
        Some(ingest) => {
            if let Some(s) = &service.kafka {
                tracing::info!(topic = %s.topic, group = %s.group_id, brokers = %s.brokers, "consuming");
            }
            ingest.run(stop.clone()).await.map_err(anyhow::Error::from)
        }
        None => {
            let mut stop = stop.clone();
            let _ = stop.wait_for(|s| *s).await;
            Ok(())
        }
    };
    if let Err(e) = &outcome {
        tracing::error!(error = %format!("{e:#}"), "the consumer stopped; shutting down");
    }
    if let Some(thread) = refresher {
        // The refresher stops on `stop`; after a consumer failure `stop` may still be false.
        if outcome.is_err() {
            drop(thread);
        } else {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
    let _ = http_stop.send(true);
    match server.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP server stopped with an error"),
        Err(e) => tracing::warn!(error = %e, "the HTTP server task failed"),
        Ok(Ok(())) => {}
    }
    outcome?;
    Ok(state.ingest_summary())
}

/// A stop signal that turns true on SIGTERM or Ctrl-C, or once `deadline` has passed.
pub fn stop_on_signal(deadline: Option<std::time::Duration>) -> watch::Receiver<bool> {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = super::shutdown_signal() => {}
            _ = timer => tracing::info!("the run's duration is up"),
        }
        tracing::info!("stopping: flushing and committing what is pending");
        let _ = stop.send(true);
    });
    stopped
}

/// Runs `buildcost run` (with Kafka) or `buildcost serve` (without).
///
/// # Errors
/// See [`run_service`].
pub fn run(config_path: Option<&Path>, args: Args, role: Role) -> Result<()> {
    let (config, source) = crate::config::load(config_path)?;
    tracing::debug!(config = %source, "configuration loaded");
    let kafka = (role != Role::Serve).then(|| kafka_settings(&config));
    let service = Service {
        role,
        listen: args.listen.unwrap_or_else(|| config.http.listen.clone()),
        at: args.at,
        kafka,
    };
    super::runtime()?.block_on(async {
        let stop = stop_on_signal(None);
        let summary = run_service(&config, service, stop, None).await?;
        if role != Role::Serve {
            println!("{}", summary.to_json());
        }
        anyhow::Ok(())
    })
}
