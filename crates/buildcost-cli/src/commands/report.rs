//! `buildcost report weekly`: the week's team reports and the directors' summary.

use std::path::{Path, PathBuf};

use crate::config::Config;
use anyhow::{bail, Context, Result};
use buildcost_query::Engine;
use buildcost_report::{Format, IsoWeek, Selection, WeeklyReport};
use chrono::Utc;

/// `report` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Report {
    /// One report per team and a directors' summary for an ISO week (Monday to Monday, UTC).
    #[command(after_help = "Files: DIR/<team>.<ext> for each team (teams below \
privacy.min_team_size only inside _small_teams-<product>), and DIR/summary.<ext>.\n\n\
Examples:\n  buildcost report weekly                                 last complete week, Markdown\n  \
buildcost report weekly --week 2026-W47 --format html,json --out reports/\n  \
buildcost report weekly --team payments --format md      one team's report only\n\n\
The figures: docs/reports.md.")]
    Weekly(WeeklyArgs),
}

/// A report format on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Markdown, for chat and wikis.
    Md,
    /// Self-contained HTML with charts, printable on A4.
    Html,
    /// One row per team-week, raw figures.
    Csv,
    /// Every figure, raw, for machines.
    Json,
    /// All four.
    All,
}

/// `report weekly` options.
#[derive(Debug, clap::Args)]
pub struct WeeklyArgs {
    /// The ISO week, like 2026-W47. Default: the last complete week (UTC).
    #[arg(long, value_parser = parse_week)]
    pub week: Option<IsoWeek>,
    /// Only this team's report (no summary).
    #[arg(long)]
    pub team: Option<String>,
    /// Output formats, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "md")]
    pub format: Vec<FormatArg>,
    /// Folder to write into (created if needed). Default: ./reports/<week>.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

fn parse_week(text: &str) -> Result<IsoWeek, String> {
    text.parse()
}

/// The formats asked for, each once, in a fixed order.
pub fn formats(args: &[FormatArg]) -> Vec<Format> {
    let all = args.contains(&FormatArg::All);
    [
        (FormatArg::Md, Format::Markdown),
        (FormatArg::Html, Format::Html),
        (FormatArg::Csv, Format::Csv),
        (FormatArg::Json, Format::Json),
    ]
    .into_iter()
    .filter(|(a, _)| all || args.contains(a))
    .map(|(_, f)| f)
    .collect()
}

/// Computes the reports of `week` over the configured store; returns the engine too (its
/// last snapshot is the week's end).
///
/// # Errors
/// The store, the teams file or a query failed.
pub fn compute(config: &Config, week: IsoWeek) -> Result<(WeeklyReport, Engine)> {
    let store = super::open_store(config)?;
    let settings = config.figures().settings()?;
    let rejected = buildcost_report::rejections_in(&store, week)?;
    let mut engine = super::engine(config);
    let report =
        buildcost_report::compute(&mut engine, &store, &settings, week, rejected, Utc::now())?;
    Ok((report, engine))
}

/// Writes `formats` of `report` into `out`; returns the files.
///
/// # Errors
/// A file cannot be written.
pub fn write(
    report: &WeeklyReport,
    formats: &[Format],
    out: &Path,
    selection: &Selection,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for format in formats {
        files.extend(
            buildcost_report::write(report, *format, out, selection)
                .with_context(|| format!("cannot write the reports into {}", out.display()))?,
        );
    }
    Ok(files)
}

/// Runs `buildcost report`.
///
/// # Errors
/// See [`compute`]; an unknown or small `--team`.
pub fn run(config_path: Option<&Path>, report: Report) -> Result<()> {
    let Report::Weekly(args) = report;
    let (config, _) = crate::config::load(config_path)?;
    let week = args
        .week
        .unwrap_or_else(|| IsoWeek::last_complete(Utc::now()));
    let started = std::time::Instant::now();
    tracing::info!(%week, "computing the weekly reports");
    let (report, engine) = compute(&config, week)?;
    if let Some(team) = &args.team {
        let team = team.trim().to_lowercase();
        if !report
            .teams
            .iter()
            .any(|t| t.team == team && !t.small_teams)
        {
            explain_missing_team(&config, &engine, &team, week)?;
        }
    }
    let selection = Selection {
        team: args.team.as_ref().map(|t| t.trim().to_lowercase()),
    };
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("reports").join(week.to_string()));
    let files = write(&report, &formats(&args.format), &out, &selection)?;
    for f in &files {
        println!("{}", f.display());
    }
    tracing::info!(
        %week,
        files = files.len(),
        teams = report.teams.len(),
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "weekly reports written"
    );
    Ok(())
}

fn explain_missing_team(config: &Config, engine: &Engine, team: &str, week: IsoWeek) -> Result<()> {
    if engine.team_size(team).is_some() {
        bail!(
            "team `{team}` has fewer than privacy.min_team_size = {} developers: its figures are \
             only in the merged `_small_teams` report",
            config.privacy.min_team_size
        );
    }
    bail!(
        "no team `{team}` with builds in the 28 days to the end of {week} ({}); \
         `buildcost query \"SELECT team FROM teams\" --at {}` lists the teams",
        week.end().to_rfc3339(),
        week.end().to_rfc3339()
    )
}
