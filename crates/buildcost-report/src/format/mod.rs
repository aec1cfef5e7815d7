//! The report formats. Markdown and HTML render the same [`Doc`] (headings, paragraphs,
//! tables, lists, charts), so the two always say the same; CSV and JSON carry the raw figures.

mod charts;
mod csv_out;
mod doc;
mod html;
mod markdown;

use std::path::{Path, PathBuf};

use crate::figures::{TeamReport, WeeklyReport};
use crate::{Error, Result};

pub use doc::{builds, summary_doc, team_doc, Block, Doc};

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

/// Euros with two decimals and a thousands separator: `€1,240.00`, `-€3.50`.
pub fn eur(value: f64) -> String {
    let sign = if value < 0.0 && (value * 100.0).round() != 0.0 {
        "-"
    } else {
        ""
    };
    format!("{sign}€{}", thousands(&format!("{:.2}", value.abs())))
}

/// A count with a thousands separator: `12,345`.
pub fn count(value: u64) -> String {
    thousands(&value.to_string())
}

/// A decimal with a thousands separator and `decimals` places.
pub fn decimal(value: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    let sign = if value < 0.0 && text.chars().any(|c| ('1'..='9').contains(&c)) {
        "-"
    } else {
        ""
    };
    format!("{sign}{}", thousands(&text))
}

/// A ratio as a percentage with one decimal: `0.0973` → `9.7 %`.
pub fn percent(ratio: f64) -> String {
    format!("{} %", decimal(ratio * 100.0, 1))
}

fn thousands(digits: &str) -> String {
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euros_have_two_decimals_and_thousands_separators() {
        assert_eq!(eur(1240.0), "€1,240.00");
        assert_eq!(eur(1_234_567.891), "€1,234,567.89");
        assert_eq!(eur(0.0), "€0.00");
        assert_eq!(eur(-0.001), "€0.00");
        assert_eq!(eur(-3.5), "-€3.50");
        assert_eq!(eur(100.0), "€100.00");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(999), "999");
        assert_eq!(percent(0.0973), "9.7 %");
        assert_eq!(decimal(12_345.678, 1), "12,345.7");
    }
}
