//! The report formats. Markdown and HTML render the same [`Doc`] (headings, paragraphs,
//! tables, lists, charts), so the two always say the same; CSV and JSON carry the raw figures.

mod charts;
mod csv_out;
mod doc;
mod html;
mod markdown;

use std::path::{Path, PathBuf};

use crate::contents::{TeamReport, WeeklyReport};
use crate::{Error, Result};

pub use crate::numbers::{count, decimal, eur, percent};
pub use doc::{builds, duration, summary_doc, team_doc, Block, Doc};

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
    Csv,
    Json,
}

impl Format {
    /// Every format.
    pub const ALL: &'static [Format] = &[Format::Markdown, Format::Html, Format::Csv, Format::Json];

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    /// Parses `md`, `markdown`, `html`, `csv` or `json`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "md" | "markdown" => Some(Format::Markdown),
            "html" => Some(Format::Html),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// One team's report in `format`.
///
/// # Errors
/// A chart could not be drawn or the figures not encoded.
pub fn render_team(report: &TeamReport, format: Format) -> Result<String> {
    match format {
        Format::Markdown => Ok(markdown::render(&team_doc(report))),
        Format::Html => html::render(&team_doc(report), charts::team(report)?),
        Format::Csv => csv_out::team(report),
        Format::Json => json(report),
    }
}

/// The directors' summary in `format`.
///
/// # Errors
/// As [`render_team`].
pub fn render_summary(report: &WeeklyReport, format: Format) -> Result<String> {
    match format {
        Format::Markdown => Ok(markdown::render(&summary_doc(report))),
        Format::Html => html::render(&summary_doc(report), charts::summary(&report.summary)?),
        Format::Csv => csv_out::summary(&report.summary),
        Format::Json => json(&report.summary),
    }
}

fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| Error::Encode(e.to_string()))
}

/// Which reports to write.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only this team's report (no summary); every team and `summary` when `None`.
    pub team: Option<String>,
}

/// Writes the selected reports of `report` into `dir` (created if needed), one file per team
/// plus `summary.<ext>`; returns the files written. Each file is written to a temporary name
/// and renamed, so a reader never sees half a report.
///
/// # Errors
/// A file cannot be written, or a report not rendered.
pub fn write(
    report: &WeeklyReport,
    format: Format,
    dir: &Path,
    selection: &Selection,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.into(),
        source,
    })?;
    let mut written = Vec::new();
    for team in &report.teams {
        if selection.team.as_ref().is_some_and(|t| *t != team.team) {
            continue;
        }
        let path = dir.join(format!("{}.{}", team.file_stem(), format.extension()));
        write_file(&path, &render_team(team, format)?)?;
        written.push(path);
    }
    if selection.team.is_none() {
        let path = dir.join(format!("summary.{}", format.extension()));
        write_file(&path, &render_summary(report, format)?)?;
        written.push(path);
    }
    Ok(written)
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    let err = |source| Error::Write {
        path: path.into(),
        source,
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{}.tmp", name.unwrap_or_default()));
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
