//! `buildcost`: what your CI costs, how much of it is waste, and which teams spend far outside
//! the range of teams their size — never about a person.

mod commands;
mod config;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc: a backfill spent a third of its time in glibc's malloc and free, decoding on
/// every core.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What your CI costs, how much is waste, and which teams spend far outside their range.
#[derive(Debug, Parser)]
#[command(
    name = "buildcost",
    version,
    about = "What your CI costs in euros, how much of it is waste, and which teams spend far outside \
the range of teams their size — never about a person.",
    after_help = "Start with `buildcost demo`. Docs: README.md, docs/operations.md (running on Kafka), \
docs/configuration.md (every key).",
    propagate_version = true
)]
struct Cli {
    /// Configuration file (TOML). Default: $BUILDCOST_CONFIG, else ./buildcost.toml, else built-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole pipeline on a generated organisation: in-process Kafka, live events, /metrics.
    Demo(commands::demo::Args),
    /// The service: consume Kafka, store, refresh the gauges, serve /metrics, /healthz, /readyz.
    Run(commands::service::Args),
    /// Refresh the gauges from a (shared) store and serve them; no consuming.
    Serve(commands::service::Args),
    /// Backfill from an NDJSON file (`--input`, `-` for stdin), or consume Kafka without serving the gauges.
    Ingest(commands::ingest::Args),
    /// Print the business gauges at an instant, in Prometheus text format.
    Metrics(commands::metrics::Args),
    /// Run SQL over the views `builds`, `teams`, `baseline` (and `raw_builds`).
    Query(commands::query::Args),
    /// Weekly team cost reports and the directors' summary (Markdown, HTML, CSV, JSON).
    #[command(subcommand)]
    Report(commands::report::Report),
    /// Exports for other tools: `export focus`, CI cost as a FinOps FOCUS 1.2 dataset.
    #[command(subcommand)]
    Export(commands::export::Export),
    /// Write a seeded synthetic workload of build events as NDJSON, or produce it to Kafka.
    Generate(commands::generate::Args),
    /// Receive GitHub, GitLab, Jenkins and CDEvents webhooks; produce their builds to Kafka.
    Webhook(commands::webhook::Args),
    /// Print the bcrypt hash of a password read from standard input, for [http] basic_auth_users.
    HashPassword(commands::hash_password::Args),
}

fn main() -> std::process::ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => commands::demo::run(args),
        Command::Run(args) => {
            commands::service::run(cli.config.as_deref(), args, buildcost_exporter::Role::Run)
        }
        Command::Serve(args) => {
            commands::service::run(cli.config.as_deref(), args, buildcost_exporter::Role::Serve)
        }
        Command::Ingest(args) => commands::ingest::run(cli.config.as_deref(), args),
        Command::Metrics(args) => commands::metrics::run(cli.config.as_deref(), args),
        Command::Query(args) => commands::query::run(cli.config.as_deref(), args),
        Command::Report(report) => commands::report::run(cli.config.as_deref(), report),
        Command::Export(export) => commands::export::run(cli.config.as_deref(), export),
        Command::Generate(args) => commands::generate::run(cli.config.as_deref(), args),
        Command::Webhook(args) => commands::webhook::run(cli.config.as_deref(), args),
        Command::HashPassword(args) => commands::hash_password::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BUILDCOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,buildcost=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
