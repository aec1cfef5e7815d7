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
buildcost report weekly --team payments --format md      one team's report only\n  \
buildcost report weekly --send                          deliver to [[delivery.route]] (once per week)\n  \
buildcost report weekly --send --dry-run                write the messages into reports/<week>/outbox\n\n\
--send delivers each route's report (a team's, or the directors' summary with summary = true) \
by e-mail ([smtp]), to a Microsoft Teams Workflows webhook and to a Slack incoming webhook. A \
delivery is recorded in the store: sending the same week again skips what was delivered \
(--resend forces). Failed destinations are retried (429, 5xx, timeouts, SMTP 4xx; at most 5 \
attempts in 2 minutes), listed, and make the exit code 2.\n\n\
The figures and the delivery: docs/reports.md.")]
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
    /// Folder to write into (created if needed). Default: ./reports/<week>; with --send,
    /// nothing is written unless --out is given.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Deliver the reports to the [[delivery.route]] destinations.
    #[arg(long)]
    pub send: bool,
    /// With --send: send to every destination again, even those already delivered this week.
    #[arg(long, requires = "send")]
    pub resend: bool,
    /// With --send: write each message (.eml, .json) into DIR instead of sending it
    /// (default: reports/<week>/outbox); nothing is recorded.
    #[arg(long, requires = "send", value_name = "DIR", num_args = 0..=1, default_missing_value = "")]
    pub dry_run: Option<PathBuf>,
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
    let mut engine = super::engine(config);
    let report = buildcost_report::week_report(&mut engine, &store, &settings, week)?;
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
    if !args.send || args.out.is_some() {
        let out = args
            .out
            .clone()
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
    }
    if args.send {
        return send(&config, &engine, &report, &args);
    }
    Ok(())
}

/// `--send`: delivers the week's reports to the routes, prints a line per destination, and
/// fails when any destination failed.
fn send(config: &Config, engine: &Engine, report: &WeeklyReport, args: &WeeklyArgs) -> Result<()> {
    use buildcost_report::send::{self, Outcome, SendOptions};
    if config.delivery.route.is_empty() {
        bail!(
            "--send: no [[delivery.route]] in the configuration; docs/reports.md shows how to \
             add one"
        );
    }
    let min = u64::from(config.privacy.min_team_size);
    let is_small = |team: &str| engine.team_size(team).is_some_and(|n| n < min);
    let (mut deliveries, skipped) = send::plan(report, &config.delivery, &is_small);
    if let Some(team) = &args.team {
        let team = team.trim().to_lowercase();
        deliveries.retain(|d| d.report == team);
    }
    for s in &skipped {
        tracing::warn!(
            route = format!("delivery.route[{}]", s.route),
            report = %s.report,
            "nothing sent for {}: {}",
            report.week,
            s.why
        );
        println!(
            "skipped  delivery.route[{}] ({}): {}",
            s.route, s.report, s.why
        );
    }
    let options = SendOptions {
        resend: args.resend,
        dry_run: args.dry_run.as_ref().map(|d| {
            if d.as_os_str().is_empty() {
                send::default_outbox(report.week)
            } else {
                d.clone()
            }
        }),
        first_backoff: std::env::var("BUILDCOST_SEND_BACKOFF_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(std::time::Duration::from_millis),
    };
    let store = super::open_store(config)?;
    let served = send::send(
        report,
        deliveries,
        &config.delivery,
        &config.smtp,
        &store,
        &options,
    )?;
    let mut failed = 0;
    for s in &served {
        match &s.outcome {
            Outcome::Sent { attempts } => println!(
                "sent     {} ({attempts} attempt{})",
                s.destination,
                if *attempts == 1 { "" } else { "s" }
            ),
            Outcome::AlreadyDelivered { at } => println!(
                "already  {} (delivered {at}; --resend sends it again)",
                s.destination
            ),
            Outcome::Written(path) => println!("written  {} -> {}", s.destination, path.display()),
            Outcome::Failed { error, .. } => {
                failed += 1;
                tracing::error!(destination = %s.destination, "not delivered: {error}");
                println!("failed   {}: {error}", s.destination);
            }
        }
    }
    tracing::info!(
        week = %report.week,
        destinations = served.len(),
        failed,
        skipped_routes = skipped.len(),
        "delivery done"
    );
    if failed > 0 {
        bail!(
            "{failed} of {} destination{} not delivered (listed above); a later --send retries only those",
            served.len(),
            if served.len() == 1 { "" } else { "s" }
        );
    }
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
