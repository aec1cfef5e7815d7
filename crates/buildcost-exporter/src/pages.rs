//! The HTML weekly reports under `/reports/` (spec section 14): `/reports/` lists the weeks,
//! `/reports/<week>/` the week's reports, `/reports/<week>/<team>.html` and `summary.html` are
//! the reports `buildcost report weekly --format html` writes, rendered from the store.
//!
//! A week's reports are computed once (on a blocking thread, through a figures engine of their
//! own) and kept for the [`KEPT_WEEKS`] weeks asked last; the refresh loop hands over the last
//! complete week it computes for the API's trend, so that one is never computed twice.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use buildcost_query::{Engine, FiguresConfig};
use buildcost_report::{Format, IsoWeek, WeeklyReport};
use buildcost_store::Store;
use chrono::{DateTime, Utc};

use crate::service::ServiceState;

/// How many weeks' reports are kept in memory.
pub const KEPT_WEEKS: usize = 8;
/// How many weeks the index lists (back from the last complete one).
pub const LISTED_WEEKS: i64 = 26;

/// The reports of a store, computed on demand.
pub struct ReportPages {
    store: Store,
    figures: FiguresConfig,
    at: Option<DateTime<Utc>>,
    engine: Mutex<Engine>,
    kept: Mutex<BTreeMap<IsoWeek, (u64, Arc<WeeklyReport>)>>,
    asked: Mutex<u64>,
}

impl ReportPages {
    /// The pages of `store`; `at` fixes the instant the last complete week is taken at (as
    /// the service's `--at`), else now.
    pub fn new(
        store: Store,
        figures: FiguresConfig,
        engine: Engine,
        at: Option<DateTime<Utc>>,
    ) -> Self {
        ReportPages {
            store,
            figures,
            at,
            engine: Mutex::new(engine),
            kept: Mutex::new(BTreeMap::new()),
            asked: Mutex::new(0),
        }
    }

    /// The last complete week.
    pub fn last_week(&self) -> IsoWeek {
        IsoWeek::last_complete(self.at.unwrap_or_else(Utc::now))
    }

    /// The week of the store's first day of builds (`None`: no build stored, or the store cannot
    /// be listed).
    pub fn first_week(&self) -> Option<IsoWeek> {
        let days = self.store.list_partitions().ok()?;
        let first = days.iter().map(|(day, _)| *day).min()?;
        Some(IsoWeek::containing(
            first.and_time(chrono::NaiveTime::MIN).and_utc(),
        ))
    }

    /// Keeps `report` (computed elsewhere) for its week.
    pub fn keep(&self, report: Arc<WeeklyReport>) {
        let tick = self.tick();
        if let Ok(mut kept) = self.kept.lock() {
            kept.insert(report.week, (tick, report));
            while kept.len() > KEPT_WEEKS {
                let oldest = kept.iter().min_by_key(|(_, (t, _))| *t).map(|(w, _)| *w);
                if let Some(w) = oldest {
                    kept.remove(&w);
                }
            }
        }
    }

    fn tick(&self) -> u64 {
        self.asked.lock().map_or(0, |mut a| {
            *a += 1;
            *a
        })
    }

    /// The reports of `week`, computed when not kept.
    ///
    /// # Errors
    /// The store or the teams file cannot be read.
    pub fn week(&self, week: IsoWeek) -> Result<Arc<WeeklyReport>, String> {
        let tick = self.tick();
        if let Some(r) = self.kept.lock().ok().and_then(|mut k| {
            k.get_mut(&week).map(|(t, r)| {
                *t = tick;
                r.clone()
            })
        }) {
            return Ok(r);
        }
        let settings = self.figures.settings().map_err(|e| e.to_string())?;
        let mut engine = self.engine.lock().map_err(|_| "the report engine failed")?;
        let report = buildcost_report::week_report(&mut engine, &self.store, &settings, week)
            .map_err(|e| e.to_string())?;
        let report = Arc::new(report);
        self.keep(report.clone());
        Ok(report)
    }
}

fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
<style>body{{font-family:Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#1b1b1b}}\
a{{color:#0b5cad}}li{{margin:.2em 0}}</style></head><body><h1>{title}</h1>{body}</body></html>\n"
    ))
    .into_response()
}

/// Why a page cannot be shown.
enum PageError {
    NotFound(String),
    Failed(String),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            PageError::NotFound(t) => (StatusCode::NOT_FOUND, t),
            PageError::Failed(t) => (StatusCode::INTERNAL_SERVER_ERROR, t),
        };
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{text}\n"),
        )
            .into_response()
    }
}

fn pages(state: &ServiceState) -> Result<Arc<ReportPages>, PageError> {
    state
        .report_pages()
        .ok_or_else(|| PageError::NotFound("this process serves no reports (role ingest)".into()))
}

/// `/reports/`: the weeks.
pub(crate) async fn index(State(state): State<Arc<ServiceState>>) -> Response {
    let pages = match pages(&state) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let last = pages.last_week();
    let lister = pages.clone();
    let first = tokio::task::spawn_blocking(move || lister.first_week())
        .await
        .ok()
        .flatten();
    let Some(first) = first.filter(|f| *f <= last) else {
        return page(
            "buildcost reports",
            "<p>No complete week with builds in the store yet.</p>",
        );
    };
    let mut body = String::from("<p>Weekly team reports and the directors' summary.</p><ul>");
    for back in 0..LISTED_WEEKS {
        let w = last.minus(back);
        if w < first {
            break;
        }
        let _ = write!(
            body,
            "<li><a href=\"/reports/{w}/\">{w}</a> ({} to {})</li>",
            w.monday(),
            w.sunday()
        );
    }
    body.push_str("</ul>");
    page("buildcost reports", &body)
}

async fn week_of(state: &Arc<ServiceState>, week: &str) -> Result<Arc<WeeklyReport>, PageError> {
    let pages = pages(state)?;
    let week: IsoWeek = week
        .parse()
        .map_err(|_| PageError::NotFound(format!("`{week}` is not an ISO week like 2026-W47")))?;
    if week > pages.last_week() {
        return Err(PageError::NotFound(format!("{week} is not complete yet")));
    }
    tokio::task::spawn_blocking(move || pages.week(week))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|e| {
            tracing::error!(error = %e, %week, "cannot compute the weekly reports");
            PageError::Failed(format!("cannot compute the reports of {week}: {e}"))
        })
}

/// `/reports/<week>/`: the week's reports.
pub(crate) async fn week(
    State(state): State<Arc<ServiceState>>,
    Path(week): Path<String>,
) -> Response {
    let report = match week_of(&state, &week).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut body = String::from(
        "<p><a href=\"/reports/\">All weeks</a></p><ul><li><a href=\"summary.html\">Directors' summary</a></li>",
    );
    if report.teams.is_empty() {
        body.push_str("<li>No team had builds in the 28 days to the end of this week.</li>");
    }
    for t in &report.teams {
        let name = t.file_stem();
        let _ = write!(body, "<li><a href=\"{name}.html\">{name}</a></li>");
    }
    body.push_str("</ul>");
    page(&format!("buildcost reports, {}", report.week), &body)
}

/// `/reports/<week>/<team>.html` and `/reports/<week>/summary.html`.
pub(crate) async fn report(
    State(state): State<Arc<ServiceState>>,
    Path((week, file)): Path<(String, String)>,
) -> Response {
    let Some(stem) = file.strip_suffix(".html") else {
        return PageError::NotFound("reports are served as <team>.html and summary.html".into())
            .into_response();
    };
    let report = match week_of(&state, &week).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let html = if stem == "summary" {
        buildcost_report::render_summary(&report, Format::Html)
    } else {
        match report.teams.iter().find(|t| t.file_stem() == stem) {
            Some(t) => buildcost_report::render_team(t, Format::Html),
            None => {
                return PageError::NotFound(format!("no report `{stem}` in {week}")).into_response()
            }
        }
    };
    match html {
        Ok(html) => Html(html).into_response(),
        Err(e) => PageError::Failed(format!("cannot render the report: {e}")).into_response(),
    }
}
