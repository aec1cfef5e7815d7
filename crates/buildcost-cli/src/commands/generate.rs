//! `buildcost generate`: seeded synthetic workloads.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use buildcost_generate::{Generator, GeneratorConfig};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// `generate` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Random seed: the same seed and options give the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of teams.
    #[arg(long, default_value_t = 60)]
    pub teams: usize,
    /// Days of history.
    #[arg(long, default_value_t = 28)]
    pub days: u32,
    /// Valid builds per day (a year at 60,000 a day is 22 million events).
    #[arg(long, default_value_t = 2_000)]
    pub builds_per_day: u32,
    /// End of the workload (RFC 3339, exclusive). Default: now, rounded down to the minute.
    #[arg(long, value_parser = super::parse_instant)]
    pub end: Option<DateTime<Utc>>,
    /// Extra malformed messages, as a share of valid builds (0.01 = 1 %).
    #[arg(long, default_value_t = 0.0)]
    pub invalid_ratio: f64,
    /// Extra re-sent duplicates, as a share of valid builds.
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_ratio: f64,
    /// Builds only: no business requests nor deployments (by default both come with the
    /// builds, see docs/delivery.md).
    #[arg(long)]
    pub no_deliveries: bool,
    /// Write events here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write the teams file (team,product,developers,peer_group) of the listed teams.
    #[arg(long, value_name = "FILE")]
    pub teams_file: Option<PathBuf>,
    /// Also write the planted over- and under-spending teams (sidecar CSV).
    #[arg(long, value_name = "FILE")]
    pub planted: Option<PathBuf>,
    /// Produce the events to the [kafka] topic of the configuration instead of writing them.
    #[arg(long, conflicts_with = "out")]
    pub kafka: bool,
    /// With --kafka: after the history, keep producing live builds until SIGTERM or Ctrl-C.
    #[arg(long, requires = "kafka")]
    pub follow: bool,
    /// With --follow: live builds arrive this many times faster than --builds-per-day.
    #[arg(long, default_value_t = 1, requires = "follow")]
    pub speed: u32,
}

impl Args {
    /// The generator configuration these options describe.
    pub fn generator_config(&self) -> Result<GeneratorConfig> {
        anyhow::ensure!(
            (0.0..=10.0).contains(&self.invalid_ratio),
            "--invalid-ratio must be between 0 and 10"
        );
        anyhow::ensure!(
            (0.0..=10.0).contains(&self.duplicate_ratio),
            "--duplicate-ratio must be between 0 and 10"
        );
        anyhow::ensure!(self.teams > 0, "--teams must be at least 1");
        let end = match self.end {
            Some(end) => end,
            None => Utc::now()
                .duration_trunc(TimeDelta::minutes(1))
                .context("cannot round the current time")?,
        };
        Ok(GeneratorConfig {
            seed: self.seed,
            teams: self.teams,
            days: self.days,
            builds_per_day: self.builds_per_day,
            end,
            invalid_ratio: self.invalid_ratio,
            duplicate_ratio: self.duplicate_ratio,
            deliveries: !self.no_deliveries,
        })
    }
}

/// Runs `buildcost generate`.
///
/// # Errors
/// An output file cannot be written, or (with --kafka) the configuration or the producer fails.
pub fn run(config_path: Option<&std::path::Path>, args: Args) -> Result<()> {
    let mut generator = Generator::new(args.generator_config()?);
    if let Some(path) = &args.teams_file {
        std::fs::write(path, generator.teams_csv())
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    if let Some(path) = &args.planted {
        std::fs::write(path, generator.planted_csv())
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    if args.kafka {
        let (config, _) = crate::config::load(config_path)?;
        return to_kafka(&config, generator, &args);
    }
    let stats = match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create `{}`", path.display()))?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let stats = generator.write_events(&mut out)?;
            out.flush()?;
            stats
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
            generator.write_events(&mut out)?
        }
    };
    tracing::info!(
        valid = stats.valid,
        deployments = stats.deployments,
        requests = stats.requests,
        duplicates = stats.duplicates,
        invalid = stats.invalid,
        "generated"
    );
    Ok(())
}

/// Produces the history to the configured topic, then (with --follow) live builds until a
/// signal.
fn to_kafka(config: &crate::config::Config, mut generator: Generator, args: &Args) -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use rdkafka::producer::Producer;

    let producer = super::produce::producer(config)?;
    let topic = &config.kafka.topic;
    let running = Arc::new(AtomicBool::new(true));
    {
        let running = running.clone();
        let runtime = super::runtime()?;
        std::thread::spawn(move || {
            runtime.block_on(super::shutdown_signal());
            running.store(false, Ordering::Relaxed);
        });
    }
    let mut stats = buildcost_generate::GenStats::default();
    generator.for_each_line(
        &mut |line| {
            super::produce::send(&producer, topic, line.as_bytes(), &running);
        },
        &mut stats,
    );
    producer
        .flush(std::time::Duration::from_secs(60))
        .context("the brokers did not acknowledge every event within 60 s")?;
    tracing::info!(
        valid = stats.valid,
        duplicates = stats.duplicates,
        invalid = stats.invalid,
        topic = %topic,
        brokers = %config.kafka.brokers,
        "produced the history"
    );
    if args.follow {
        tracing::info!(
            speed = args.speed,
            "producing live builds until SIGTERM or Ctrl-C"
        );
        let live = super::produce::live(
            &mut generator,
            &producer,
            topic,
            &running,
            args.builds_per_day,
            args.speed,
        );
        producer
            .flush(std::time::Duration::from_secs(60))
            .context("the brokers did not acknowledge every live event within 60 s")?;
        tracing::info!(
            valid = live.valid,
            invalid = live.invalid,
            "produced live builds"
        );
    }
    Ok(())
}
