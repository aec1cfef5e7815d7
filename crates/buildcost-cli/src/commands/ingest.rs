//! `buildcost ingest --input FILE|-`: NDJSON backfill.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};

use crate::config::Config;
use anyhow::{Context, Result};
use buildcost_adapters::{Format, Normaliser};
use buildcost_ingest::{
    ingest_native_ndjson, ingest_ndjson, DeadLetterSink, FileDeadLetters, IngestSummary, Ingestor,
    StoreDeadLetters,
};
use buildcost_model::{Classifier, Decoder, Pseudonymiser, RequestIds};
use buildcost_store::{load_existing_key, load_or_create_key, DEAD_LETTER_DIR};
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};

/// `ingest` options.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without --input, consumes the [kafka] topic in its consumer group until SIGTERM or Ctrl-C, \
committing offsets only after the Parquet files holding them are durable; rejected messages go to the \
dead-letter topic. Several ingesters may share a group and a store; run `buildcost serve` on the \
store for the business gauges. In Kafka mode /metrics carries the ingester's own counters and lag."
)]
pub struct Args {
    /// NDJSON file of build events, one per line; `-` reads standard input. Without it: Kafka.
    #[arg(long, short, value_name = "FILE|-")]
    pub input: Option<PathBuf>,
    /// What each line of --input is: `buildcost` build events (the default), or one native
    /// payload per line of a CI system, normalised first: `github` (workflow_job /
    /// workflow_run webhooks), `gitlab` (Job / Pipeline Hook), `jenkins` (a build's
    /// api/json or a Notification plugin post), `cdevents` (pipelinerun / taskrun events).
    /// See docs/integrations.md.
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "buildcost",
        requires = "input"
    )]
    pub format: InputFormat,
    /// Hide the progress bar even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Kafka mode: address for /metrics (the ingester's own counters and consumer lag),
    /// /healthz and /readyz. Default: http.listen; give each ingester on a host its own port.
    #[arg(long, value_name = "IP:PORT", conflicts_with = "input")]
    pub listen: Option<String>,
}

/// The format of `ingest --input` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    Buildcost,
    Github,
    Gitlab,
    Jenkins,
    Cdevents,
}

impl InputFormat {
    /// The CI system's format; `None` for build events.
    pub fn native(self) -> Option<Format> {
        match self {
            InputFormat::Buildcost => None,
            InputFormat::Github => Some(Format::Github),
            InputFormat::Gitlab => Some(Format::Gitlab),
            InputFormat::Jenkins => Some(Format::Jenkins),
            InputFormat::Cdevents => Some(Format::Cdevents),
        }
    }
}

/// The decoder the configuration describes: its size limit, pseudonym key and classifier rules.
///
/// # Errors
/// The key file or the rules file is unusable.
pub fn decoder(config: &Config) -> Result<Decoder> {
    let key_path = config.pseudonym_key_file();
    let key = if config.store.is_remote() {
        load_existing_key(&key_path)?
    } else {
        load_or_create_key(&key_path)?
    };
    let pseudonymiser = Pseudonymiser::new(&key)?;
    let classifier = match &config.classifier.rules_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("cannot read classifier.rules_file `{}`", path.display())
            })?;
            Classifier::from_toml(&text)
                .with_context(|| format!("classifier.rules_file `{}`", path.display()))?
        }
        None => Classifier::builtin()?,
    };
    Ok(
        Decoder::new(config.ingest.max_event_bytes, pseudonymiser, classifier)
            .with_retention_days(config.store.retention_days)
            .with_request_ids(RequestIds::new(&config.delivery.request_id_pattern)?),
    )
}

/// A name unique to this run, for its Parquet files and dead-letter file.
pub fn run_name() -> String {
    let mut random = [0u8; 4];
    // Uniqueness across concurrent runs; a failure here only makes names predictable.
    let _ = getrandom::fill(&mut random);
    format!(
        "ingest-{}-{:02x}{:02x}{:02x}{:02x}",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        random[0],
        random[1],
        random[2],
        random[3]
    )
}

/// Ingests one NDJSON input into the configured store; returns the counts.
///
/// # Errors
/// The input cannot be read or the store cannot be written.
pub fn ingest_file(
    config: &Config,
    input: &Path,
    format: Option<Format>,
    show_progress: bool,
) -> Result<IngestSummary> {
    // Native payloads: the format with its normaliser.
    let native = format
        .map(|f| Normaliser::new(&config.normaliser()).map(|n| (n, f)))
        .transpose()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let store = super::open_store(config)?;
    let deleted = store.apply_retention(Utc::now().date_naive(), config.store.retention_days)?;
    if !deleted.is_empty() {
        tracing::info!(partitions = deleted.len(), "retention removed old days");
    }
    let decoder = decoder(config)?;
    let index = store.event_index();
    let name = run_name();
    let mut ingestor = Ingestor::new(decoder, &store, index, name.clone())
        .with_batch_rows(config.ingest.batch_rows)
        .with_priced_classes(config.pricing.runner_classes.keys().cloned());
    // A local store appends to one file; an object store (which cannot append) gets one
    // object per flush.
    let (mut dead_letters, dead_letter_location): (Box<dyn DeadLetterSink>, PathBuf) =
        if store.is_remote() {
            let sink = StoreDeadLetters::new(store.clone(), name.clone());
            let location = sink.location();
            (Box::new(sink), location)
        } else {
            let sink = FileDeadLetters::new(
                store
                    .root()
                    .join(DEAD_LETTER_DIR)
                    .join(format!("{name}.ndjson")),
            );
            let location = sink.path().to_owned();
            (Box::new(sink), location)
        };

    let (mut reader, label, size): (Box<dyn BufRead>, String, Option<u64>) =
        if input == Path::new("-") {
            (
                Box::new(BufReader::with_capacity(1 << 20, std::io::stdin().lock())),
                "-".into(),
                None,
            )
        } else {
            let file = std::fs::File::open(input)
                .with_context(|| format!("cannot open input `{}`", input.display()))?;
            let size = file.metadata().ok().map(|m| m.len());
            (
                Box::new(BufReader::with_capacity(1 << 20, file)),
                input.display().to_string(),
                size,
            )
        };
    let bar = if show_progress && std::io::stderr().is_terminal() {
        let bar = size.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
        let template = if size.is_some() {
            "{spinner} ingesting [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}"
        } else {
            "{spinner} ingesting {bytes} ({bytes_per_sec}) {msg}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    let mut progress = |bytes| bar.set_position(bytes);
    match &native {
        Some((normaliser, format)) => ingest_native_ndjson(
            &mut reader,
            &label,
            &mut ingestor,
            dead_letters.as_mut(),
            Utc::now(),
            &mut progress,
            normaliser,
            *format,
        )?,
        None => ingest_ndjson(
            &mut reader,
            &label,
            &mut ingestor,
            dead_letters.as_mut(),
            Utc::now(),
            &mut progress,
        )?,
    }
    let summary = ingestor.finish(dead_letters.as_mut())?;
    bar.finish_and_clear();
    tracing::info!(
        accepted = summary.accepted,
        rejected = summary.rejected(),
        duplicates = summary.duplicates,
        ignored = summary.ignored,
        unpriced = summary.unpriced,
        files = summary.files_written,
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        store = %store.root().display(),
        "ingest finished"
    );
    if summary.rejected() > 0 {
        tracing::warn!(
            rejected = summary.rejected(),
            dead_letters = %dead_letter_location.display(),
            "some events were rejected; each is in the dead-letter file with its reason"
        );
    }
    if summary.unpriced > 0 {
        tracing::warn!(
            unpriced = summary.unpriced,
            "builds used runner classes missing from [pricing.runner_classes]; they are priced at [pricing.default]"
        );
    }
    Ok(summary)
}

/// Runs `buildcost ingest`.
///
/// # Errors
/// See [`ingest_file`].
pub fn run(config_path: Option<&Path>, args: Args) -> Result<()> {
    let (config, source) = crate::config::load(config_path)?;
    tracing::debug!(config = %source, "configuration loaded");
    let summary = match &args.input {
        Some(input) => ingest_file(&config, input, args.format.native(), !args.no_progress)?,
        None => {
            let listen = args.listen.unwrap_or_else(|| config.http.listen.clone());
            ingest_kafka(&config, listen)?
        }
    };
    println!("{}", summary.to_json());
    Ok(())
}

/// Consumes the configured topic until SIGTERM or Ctrl-C, serving the service's own metrics
/// (not the business gauges) unless `listen` is `None`; returns the counts.
///
/// # Errors
/// The consumer cannot be created, or the store or dead-letter topic failed.
pub fn ingest_kafka(config: &Config, listen: String) -> Result<IngestSummary> {
    let service = super::service::Service {
        role: buildcost_exporter::Role::Ingest,
        listen,
        at: None,
        kafka: Some(super::service::kafka_settings(config)),
    };
    super::runtime()?.block_on(async {
        let stop = super::service::stop_on_signal(None);
        super::service::run_service(config, service, stop, None).await
    })
}
