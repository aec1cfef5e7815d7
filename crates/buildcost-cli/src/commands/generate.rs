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
    /// Write events here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write the teams file (team,product,developers,peer_group) of the listed teams.
    #[arg(long, value_name = "FILE")]
    pub teams_file: Option<PathBuf>,
    /// Also write the planted over- and under-spending teams (sidecar CSV).
    #[arg(long, value_name = "FILE")]
    pub planted: Option<PathBuf>,
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
        })
    }
}

/// Runs `buildcost generate`.
///
/// # Errors
/// An output file cannot be written.
pub fn run(args: Args) -> Result<()> {
    let mut generator = Generator::new(args.generator_config()?);
    if let Some(path) = &args.teams_file {
        std::fs::write(path, generator.teams_csv())
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    if let Some(path) = &args.planted {
        std::fs::write(path, generator.planted_csv())
            .with_context(|| format!("cannot write `{}`", path.display()))?;
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
        duplicates = stats.duplicates,
        invalid = stats.invalid,
        "generated"
    );
    Ok(())
}
