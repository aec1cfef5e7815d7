//! `buildcost export focus`: CI cost as a FOCUS 1.2 dataset for FinOps tools.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::config::Config;
use anyhow::{bail, Context, Result};
use buildcost_report::focus::{self, FocusFormat, FocusWriter, Placement};
use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressStyle};

/// `export` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Export {
    /// CI cost as a FinOps FOCUS 1.2 dataset (one row per day, team, CI system, repository,
    /// runner class and waste class), for FinOps tools that read cloud bills.
    #[command(
        after_help = "--out FILE.parquet or FILE.csv writes one file; any other --out is a \
folder of billing_period=YYYY-MM/part-0.<ext> files, one per month, the layout FinOps tools read a \
recurring export from. Teams below privacy.min_team_size are merged into _small_teams rows \
(repository left out). See docs/focus.md."
    )]
    Focus(FocusArgs),
}

/// `export focus` options.
#[derive(Debug, clap::Args)]
pub struct FocusArgs {
    /// First UTC day (YYYY-MM-DD), inclusive.
    #[arg(long, value_parser = parse_day)]
    pub from: NaiveDate,
    /// Last UTC day (YYYY-MM-DD), exclusive.
    #[arg(long, value_parser = parse_day)]
    pub to: NaiveDate,
    /// File format.
    #[arg(long, value_enum, default_value = "parquet")]
    pub format: Format,
    /// A `.parquet` / `.csv` file, or a folder of billing periods.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Hide the progress bar even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Parquet,
    Csv,
}

fn parse_day(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| format!("`{text}` is not a day like 2026-11-01: {e}"))
}

/// Runs `buildcost export`.
///
/// # Errors
/// Bad dates, the store, or the output cannot be written.
pub fn run(config_path: Option<&Path>, export: Export) -> Result<()> {
    let (config, _) = crate::config::load(config_path)?;
    match export {
        Export::Focus(args) => {
            let summary = export_focus(&config, &args)?;
            println!("{summary}");
            Ok(())
        }
    }
}

/// Writes the FOCUS export; returns its summary (JSON).
///
/// # Errors
/// See [`run`].
pub fn export_focus(config: &Config, args: &FocusArgs) -> Result<serde_json::Value> {
    if args.from >= args.to {
        bail!(
            "--from {} must be before --to {} (exclusive)",
            args.from,
            args.to
        );
    }
    let format = match args.format {
        Format::Parquet => FocusFormat::Parquet,
        Format::Csv => FocusFormat::Csv,
    };
    if let Some(ext) = args.out.extension().and_then(|e| e.to_str()) {
        let wanted = match format {
            FocusFormat::Parquet => "parquet",
            FocusFormat::Csv => "csv",
        };
        if (ext == "parquet" || ext == "csv") && ext != wanted {
            bail!(
                "--out `{}` ends in .{ext} but --format is {wanted}",
                args.out.display()
            );
        }
    }
    let store = super::open_store(config)?;
    let settings = config.figures().settings()?;
    let mut engine = super::engine(config);
    let days = (args.to - args.from).num_days().max(0) as u64;
    let bar = if !args.no_progress && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(days);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} exporting [{bar:40}] {pos}/{len} days ({eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    bar.set_message("team sizes");
    let started = std::time::Instant::now();
    // Team sizes and products at the end of the export come first: the charges are placed
    // a day at a time as they are classified.
    let teams = {
        let midnight = args.to.and_time(chrono::NaiveTime::MIN).and_utc();
        engine.snapshot_now(&store, &settings, midnight)?;
        engine.teams()
    };
    let prices = buildcost_model::Prices::new(&config.pricing);
    let placement = Placement::new(
        teams,
        u64::from(config.privacy.min_team_size),
        move |class| prices.is_priced(class),
    );
    let mut writer = FocusWriter::new(&args.out, format);
    let mut billed = buildcost_model::Exact::ZERO;
    let currency = config.pricing.currency.clone();
    bar.set_message("");
    engine.charges(
        &store,
        &settings,
        args.from,
        args.to,
        &mut |day, charges| {
            let rows = placement.rows(day, &charges);
            billed += rows.iter().map(|r| r.cost).sum();
            let batch = focus::batch(&rows, &config.focus, &currency)
                .map_err(|e| buildcost_query::Error::Shape(e.to_string()))?;
            writer
                .write(day, &batch)
                .map_err(|e| buildcost_query::Error::Shape(e.to_string()))?;
            bar.inc(1);
            Ok(())
        },
    )?;
    let (files, rows) = writer
        .finish()
        .with_context(|| format!("writing `{}`", args.out.display()))?;
    bar.finish_and_clear();
    tracing::info!(
        rows,
        files = files.len(),
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        out = %args.out.display(),
        "FOCUS export written"
    );
    Ok(serde_json::json!({
        "rows": rows,
        "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "billed_cost": format!("{:.2}", billed.to_f64()),
        "currency": currency,
        "from": args.from.to_string(),
        "to": args.to.to_string(),
    }))
}
