//! `buildcost demo`: the whole pipeline on a generated organisation, no set-up.
//!
//! An in-process Kafka cluster (librdkafka's mock cluster) ← a generator producing 28 days of
//! history, then live builds at an accelerated pace → the real consumer (decode, pseudonymise,
//! classify, dead-letter, Parquet, commit) → the refresh loop → `/metrics`, `/healthz`,
//! `/readyz`; `metrics.prom` and a summary once the history is in.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::config::Config;
use anyhow::{Context, Result};
use buildcost_exporter::{Refresher, Role, ServiceState};
use buildcost_generate::{GenStats, Generator, GeneratorConfig};
use buildcost_model::WasteClass;
use chrono::{DurationRound, TimeDelta, Utc};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use tokio::sync::oneshot;

use super::service::{run_service, Service, Started};

/// The demo's configuration, written next to its store.
pub const DEMO_CONFIG: &str = include_str!("../../assets/demo.toml");

/// Partitions of the demo topic.
const PARTITIONS: i32 = 4;

/// Messages the history feed may run ahead of the consumer: the mock cluster keeps only 5 MB
/// per partition, and drops the oldest messages beyond that.
const MAX_AHEAD: u64 = 4_000;

/// `demo` options.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Runs until Ctrl-C (or --duration). Nothing to install: the Kafka cluster \
is librdkafka's in-process mock cluster, so the events live only as long as the demo; the store \
folder stays and `buildcost --config DIR/buildcost.toml query|metrics` work on it afterwards."
)]
pub struct Args {
    /// Folder for the demo's configuration, store and outputs (re-used if it exists).
    #[arg(long, default_value = "buildcost-demo")]
    pub dir: PathBuf,
    /// Builds per day in the generated history.
    #[arg(long, default_value_t = 3_000)]
    pub builds_per_day: u32,
    /// Random seed of the generated organisation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Live feed speed-up: builds arrive this many times faster than --builds-per-day.
    #[arg(long, default_value_t = 100)]
    pub speed: u32,
    /// Address for /metrics, /healthz and /readyz (default: http.listen of the demo config).
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<String>,
    /// Stop after this long (`90s`, `10m`); default: run until Ctrl-C or SIGTERM.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
}

/// Runs `buildcost demo`.
///
/// # Errors
/// A file in the demo folder cannot be written, the mock cluster cannot start, or the pipeline
/// failed.
pub fn run(args: Args) -> Result<()> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let config_path = dir.join("buildcost.toml");
    std::fs::write(&config_path, DEMO_CONFIG)?;
    let now = Utc::now()
        .duration_trunc(TimeDelta::minutes(1))
        .context("cannot round the clock")?;
    let generator = Generator::new(GeneratorConfig {
        seed: args.seed,
        builds_per_day: args.builds_per_day,
        end: now,
        invalid_ratio: 0.004,
        duplicate_ratio: 0.003,
        ..GeneratorConfig::default()
    });
    std::fs::write(dir.join("teams.csv"), generator.teams_csv())?;
    std::fs::write(dir.join("planted-teams.csv"), generator.planted_csv())?;

    let mut config = crate::config::load_file(&config_path)?;
    let cluster: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).context("cannot start the in-process Kafka cluster")?;
    cluster
        .create_topic(&config.kafka.topic, PARTITIONS, 1)
        .context("cannot create the demo topic")?;
    cluster
        .create_topic(&config.kafka.dead_letter_topic, 1, 1)
        .context("cannot create the dead-letter topic")?;
    config.kafka.brokers = cluster.bootstrap_servers();

    let producer = super::produce::producer(&config)?;
    let feeding = Arc::new(AtomicBool::new(true));
    let service_state: Arc<OnceLock<Arc<ServiceState>>> = Arc::new(OnceLock::new());
    let (history_tx, history_rx) = oneshot::channel();
    let feeder = {
        let feed = Feed {
            topic: config.kafka.topic.clone(),
            feeding: feeding.clone(),
            consumer: service_state.clone(),
            builds_per_day: args.builds_per_day,
            speed: args.speed,
        };
        std::thread::spawn(move || feed.run(generator, &producer, history_tx))
    };

    let service = Service {
        role: Role::Demo,
        listen: args
            .listen
            .clone()
            .unwrap_or_else(|| config.http.listen.clone()),
        at: None,
        kafka: Some(super::service::kafka_settings(&config)),
    };
    let result = super::runtime()?.block_on(async {
        let stop = super::service::stop_on_signal(args.duration);
        let (started_tx, started_rx) = oneshot::channel();
        let banner = {
            let (config, dir, config_path) = (config.clone(), dir.clone(), config_path.clone());
            tokio::spawn(async move {
                if let Err(e) = announce(
                    &config,
                    &dir,
                    &config_path,
                    started_rx,
                    history_rx,
                    &service_state,
                )
                .await
                {
                    tracing::warn!(error = %format!("{e:#}"), "could not write the demo summary");
                }
            })
        };
        let summary = run_service(&config, service, stop, Some(started_tx)).await;
        banner.abort();
        summary
    });
    feeding.store(false, Ordering::Relaxed);
    let _ = feeder.join();
    let summary = result?;
    println!("{}", summary.to_json());
    Ok(())
}

/// The generator's side of the demo: produces into the topic from its own thread.
struct Feed {
    topic: String,
    feeding: Arc<AtomicBool>,
    /// The service, once started: the history feed waits for its consumer.
    consumer: Arc<OnceLock<Arc<ServiceState>>>,
    builds_per_day: u32,
    speed: u32,
}

impl Feed {
    /// Messages the consumer has taken off the topic so far.
    fn consumed(&self) -> u64 {
        self.consumer.get().map_or(0, |state| {
            let s = state.ingest_summary();
            s.accepted + s.duplicates + s.rejected()
        })
    }

    /// Produces the history, reports its size, then live builds until `feeding` turns false.
    fn run(
        &self,
        mut generator: Generator,
        producer: &ThreadedProducer<DefaultProducerContext>,
        history: oneshot::Sender<GenStats>,
    ) {
        let mut stats = GenStats::default();
        let mut open = true;
        let mut sent = 0u64;
        generator.for_each_line(
            &mut |line| {
                while open && sent >= self.consumed() + MAX_AHEAD {
                    open = self.feeding.load(Ordering::Relaxed);
                    // Back-pressure on the consumer; not a synchronisation of results.
                    std::thread::sleep(Duration::from_millis(20));
                }
                open = open
                    && super::produce::send(producer, &self.topic, line.as_bytes(), &self.feeding);
                sent += 1;
            },
            &mut stats,
        );
        if !open {
            return;
        }
        let _ = producer.flush(Duration::from_secs(30));
        let _ = history.send(stats);
        super::produce::live(
            &mut generator,
            producer,
            &self.topic,
            &self.feeding,
            self.builds_per_day,
            self.speed,
        );
    }
}

/// Waits for the history to be stored, then writes `metrics.prom` and prints the banner.
async fn announce(
    config: &Config,
    dir: &std::path::Path,
    config_path: &std::path::Path,
    started: oneshot::Receiver<Started>,
    history: oneshot::Receiver<GenStats>,
    service_state: &OnceLock<Arc<ServiceState>>,
) -> Result<()> {
    let started = started.await.context("the service did not start")?;
    let _ = service_state.set(started.state.clone());
    let produced = history
        .await
        .context("the feed stopped before the history")?;
    let messages = produced.valid + produced.duplicates + produced.invalid;
    eprintln!(
        "produced 28 days of history: {} builds, {} deployments and {} requests of the generated organisation, +{} re-sent, +{} malformed; consuming…",
        produced.builds(),
        produced.deployments,
        produced.requests,
        produced.duplicates,
        produced.invalid
    );
    // The history is in once every message of it is consumed and the rows accepted by then
    // are written (live builds keep arriving behind it).
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    let mut history_accepted = None;
    loop {
        poll.tick().await;
        let s = started.state.ingest_summary();
        let processed = s.accepted + s.duplicates + s.rejected();
        if history_accepted.is_none() && processed >= messages as u64 {
            history_accepted = Some(s.accepted);
        }
        if history_accepted.is_some_and(|a| s.rows_written >= a) {
            break;
        }
    }
    let store = super::open_store(config)?;
    let snapshot = Refresher::new(config.figures(), store, super::engine(config), None)
        .snapshot()
        .await?;
    let metrics_path = dir.join("metrics.prom");
    std::fs::write(&metrics_path, buildcost_exporter::business_text(&snapshot)?)?;
    let week = buildcost_report::IsoWeek::last_complete(Utc::now());
    let reports = dir.join("reports").join(week.to_string());
    let (report, _) = super::report::compute(config, week)?;
    super::report::write(
        &report,
        buildcost_report::Format::ALL,
        &reports,
        &buildcost_report::Selection::default(),
    )?;
    let s = started.state.ingest_summary();
    let org = &snapshot.org;
    let w28 = org.windows.get("28d").cloned().unwrap_or_default();
    let above: Vec<_> = snapshot
        .teams
        .iter()
        .filter(|t| t.baseline.as_ref().is_some_and(|b| b.status == "above"))
        .map(|t| t.team.as_str())
        .collect();
    let below = snapshot
        .teams
        .iter()
        .filter(|t| t.baseline.as_ref().is_some_and(|b| b.status == "below"))
        .count();
    let (addr, cfg) = (started.addr, config_path.display());
    let d = &snapshot.delivery;
    let delivered = d.org.get("28d").cloned().unwrap_or_default();
    let lead = delivered.lead_time.map_or_else(
        || "no lead time yet".to_owned(),
        |(p50, p90)| {
            format!(
                "lead time p50 {:.1} days, p90 {:.1} days",
                p50 / 86_400.0,
                p90 / 86_400.0
            )
        },
    );
    let orphans = d.repositories.iter().filter(|r| r.orphan).count();
    let builds = s.accepted - s.accepted_deployments - s.accepted_requests;
    println!(
        "\nbuildcost demo — {dir}\n\
         \n  ingested   {builds} builds, {} deployments, {} requests; {} rejected (in the dead-letter topic with their reason), {} duplicates dropped\
         \n  org cost   €{:.2} over 28 days, {} builds, {} developers\
         \n  northstar  {:.1} % of the cost is avoidable failures (syntax, compile, lint, format): €{:.2}\
         \n  waste      {:.1} % of the cost in all\
         \n  teams      {} above their band ({}), {} below\
         \n  delivery   {} requests delivered to production in 28 days, {lead}; {orphans} orphan repositories cost €{:.2} (docs/delivery.md)\
         \n\nLive builds keep arriving; the gauges refresh every {refresh}. Open:\
         \n  http://{addr}/metrics     business gauges + the pipeline's own metrics\
         \n  http://{addr}/readyz      readiness\
         \n  {metrics}      the gauges once the history was in\
         \n  {reports}/summary.html   the directors' summary of {week} (and one report per team, .md/.html/.csv/.json)\
         \n\nPoint Prometheus at it (prometheus.yml):\
         \n  scrape_configs:\
         \n    - job_name: buildcost\
         \n      static_configs: [{{ targets: [\"{addr}\"] }}]\
         \nthen add that Prometheus as a Grafana data source and chart e.g. buildcost_northstar_avoidable_waste_ratio.\
         \n\nWhile it runs, or after Ctrl-C:\
         \n  {me} --config {cfg} metrics\
         \n  {me} --config {cfg} query \"SELECT waste_class, ROUND(SUM(cost_eur), 2) AS eur FROM builds GROUP BY waste_class ORDER BY eur DESC\"\
         \n  {me} --config {cfg} query \"SELECT team, peer_group, ROUND(zscore, 2) AS z, status FROM baseline ORDER BY z DESC LIMIT 10\"\
         \n  {me} --config {cfg} query \"SELECT repository, team, ROUND(cost_28d, 2) AS eur FROM repositories WHERE orphan ORDER BY eur DESC LIMIT 10\"\
         \n",
        s.accepted_deployments,
        s.accepted_requests,
        s.rejected(),
        s.duplicates,
        w28.cost_eur,
        w28.builds(),
        org.developers,
        org.northstar("28d") * 100.0,
        w28.waste_cost(WasteClass::AvoidableFailure),
        org.waste_ratio("28d") * 100.0,
        above.len(),
        above.join(", "),
        below,
        delivered.requests_delivered,
        d.org_orphan_cost_eur,
        dir = dir.display(),
        reports = reports.display(),
        refresh = humantime::format_duration(config.refresh.interval),
        metrics = metrics_path.display(),
        me = invocation(),
    );
    Ok(())
}

/// How the reader runs this binary again: `buildcost` when it is on the PATH, else the way
/// it was started (`cargo run --` from a checkout, or its path).
fn invocation() -> String {
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("buildcost").is_file())
    });
    if on_path {
        return "buildcost".to_owned();
    }
    // `cargo run` sets CARGO for the program it runs.
    if std::env::var_os("CARGO").is_some() {
        return "cargo run --".to_owned();
    }
    std::env::current_exe()
        .ok()
        .map_or_else(|| "buildcost".to_owned(), |p| p.display().to_string())
}
