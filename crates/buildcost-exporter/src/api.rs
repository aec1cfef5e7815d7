//! The team API for the developer portal (spec section 14): `GET /api/v1/org`,
//! `/api/v1/teams`, `/api/v1/teams/{team}` and `/api/v1/openapi.json`.
//!
//! Every answer is encoded once per refresh, from the same [`Snapshot`] as `/metrics`: a
//! request copies bytes and runs no query. Teams below `privacy.min_team_size` exist only in the
//! merged `_small_teams` rows, which the API never lists: asking for one answers exactly as for
//! a team that does not exist.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use buildcost_model::{Status, WasteClass};
use buildcost_query::{Snapshot, TeamFigures, WindowFigures};
use buildcost_report::{IsoWeek, OrphanLine, TeamReport, WeeklyReport};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::service::ServiceState;

/// The figures of one window (`7d` or `28d`) ending at the evaluation instant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WindowView {
    /// Σ cost of the builds that finished in the window, in the currency of `pricing`.
    pub cost_eur: f64,
    pub builds: u64,
    /// Builds by status (`success`, `failure`, …), every status present.
    pub builds_by_status: BTreeMap<String, u64>,
    /// Cost by waste class (every class but `none`).
    pub waste_eur_by_class: BTreeMap<String, f64>,
    /// Σ of `waste_eur_by_class`.
    pub waste_eur: f64,
}

impl WindowView {
    fn new(w: &WindowFigures) -> Self {
        WindowView {
            cost_eur: w.cost_eur,
            builds: w.builds(),
            builds_by_status: Status::ALL
                .iter()
                .map(|s| (s.as_str().to_owned(), w.status_builds(*s)))
                .collect(),
            waste_eur_by_class: WasteClass::WASTE
                .iter()
                .map(|c| (c.as_str().to_owned(), w.waste_cost(*c)))
                .collect(),
            waste_eur: w.total_waste_cost(),
        }
    }
}

fn windows(w: &BTreeMap<&'static str, WindowFigures>) -> BTreeMap<String, WindowView> {
    w.iter()
        .map(|(k, v)| ((*k).to_owned(), WindowView::new(v)))
        .collect()
}

/// A team's normal range among its peers at the evaluation instant (spec section 7).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BandView {
    pub peer_group: String,
    pub cost_per_developer_eur: f64,
    pub zscore: f64,
    pub expected_eur: f64,
    pub lower_eur: f64,
    pub upper_eur: f64,
}

/// One week of a team's trend: the ISO week's cost and where it stood in its band.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrendWeek {
    /// ISO week, like `2026-W47`.
    pub week: String,
    pub cost_eur: f64,
    pub builds: u64,
    /// `above`, `within`, `below`, or `no_baseline`.
    pub status: String,
}

/// A repository of the team with builds and no production deployment (spec section 12).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrphanView {
    pub repository: String,
    pub builds_28d: u64,
    pub cost_28d_eur: f64,
    /// The last successful production deployment (RFC 3339), if any.
    pub last_production_deploy: Option<String>,
}

impl From<&OrphanLine> for OrphanView {
    fn from(o: &OrphanLine) -> Self {
        OrphanView {
            repository: o.repository.clone(),
            builds_28d: o.builds_28d,
            cost_28d_eur: o.cost_28d_eur,
            last_production_deploy: o.last_production_deploy.clone(),
        }
    }
}

/// One team of at least the minimum size, in the list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TeamListItem {
    pub team: String,
    pub product: String,
    pub developers: u64,
    pub cost_7d_eur: f64,
    pub cost_28d_eur: f64,
    /// `above`, `within`, `below`, or `no_baseline`.
    pub status: String,
    /// The team's own resource.
    pub href: String,
}

/// `GET /api/v1/teams`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TeamList {
    /// The evaluation instant (RFC 3339).
    pub at: String,
    pub currency: String,
    pub teams: Vec<TeamListItem>,
}

/// `GET /api/v1/teams/{team}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TeamView {
    /// The evaluation instant (RFC 3339).
    pub at: String,
    pub currency: String,
    pub team: String,
    pub product: String,
    pub developers: u64,
    /// `7d` and `28d`.
    pub windows: BTreeMap<String, WindowView>,
    /// `above`, `within`, `below`, or `no_baseline` (fewer peers than `baseline.min_peers`).
    pub status: String,
    pub band: Option<BandView>,
    /// The last complete ISO weeks, oldest first (up to 9).
    pub trend: Vec<TrendWeek>,
    /// Its orphan repositories, most expensive first.
    pub orphan_repositories: Vec<OrphanView>,
    /// The weekly report of the last complete week, under `/reports/`.
    pub report: Option<String>,
}

/// The organisation's delivery figures over 28 days (only once a deployment is stored).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrgDelivery {
    pub requests_delivered_28d: u64,
    pub lead_time_p50_s: Option<f64>,
    pub lead_time_p90_s: Option<f64>,
    pub production_deployments_28d: u64,
    pub failed_production_deployments_28d: u64,
    pub orphan_cost_28d_eur: f64,
}

/// `GET /api/v1/org`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrgView {
    /// The evaluation instant (RFC 3339).
    pub at: String,
    pub currency: String,
    pub developers: u64,
    /// `7d` and `28d`.
    pub windows: BTreeMap<String, WindowView>,
    /// Avoidable-failure cost / cost over 28 days: the northstar.
    pub northstar_28d: f64,
    /// Waste cost / cost over 28 days.
    pub waste_ratio_28d: f64,
    pub teams: u64,
    pub teams_above_band: u64,
    pub delivery: Option<OrgDelivery>,
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiError {
    pub error: String,
}

/// A band status as the API names it: `no_baseline` without a band.
fn status_name(status: Option<&String>) -> String {
    status.map_or_else(|| "no_baseline".to_owned(), Clone::clone)
}

/// The status of a row.
fn status_of(row: &TeamFigures) -> String {
    status_name(row.baseline.as_ref().map(|b| &b.status))
}

fn trend_of(report: Option<&TeamReport>) -> Vec<TrendWeek> {
    report.map_or_else(Vec::new, |t| {
        t.weeks
            .iter()
            .map(|w| TrendWeek {
                week: w.figures.week.to_string(),
                cost_eur: w.figures.cost_eur,
                builds: w.figures.builds,
                status: status_name(w.baseline.as_ref().map(|b| &b.status)),
            })
            .collect()
    })
}

/// The encoded answers of one snapshot.
pub(crate) struct Published {
    org: Bytes,
    teams: Bytes,
    team: HashMap<String, Bytes>,
}

impl Published {
    /// Encodes every answer of `snapshot`; `weekly` (the last complete week's reports) gives
    /// the trend, the orphans' lines and the report links.
    pub(crate) fn new(snapshot: &Snapshot, weekly: Option<&WeeklyReport>, currency: &str) -> Self {
        let at = snapshot
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let rows: Vec<&TeamFigures> = snapshot
            .teams
            .iter()
            .filter(|r| !r.is_small_teams() && r.developers.is_some())
            .collect();
        let cost = |r: &TeamFigures, w: &str| r.windows.get(w).map_or(0.0, |w| w.cost_eur);
        let list = TeamList {
            at: at.clone(),
            currency: currency.to_owned(),
            teams: rows
                .iter()
                .map(|r| TeamListItem {
                    team: r.team.clone(),
                    product: r.product.clone(),
                    developers: r.developers.unwrap_or(0),
                    cost_7d_eur: cost(r, "7d"),
                    cost_28d_eur: cost(r, "28d"),
                    status: status_of(r),
                    href: format!("/api/v1/teams/{}", r.team),
                })
                .collect(),
        };
        let mut team = HashMap::new();
        for r in &rows {
            // Its report of the last complete week, served under /reports/ by its file name.
            let report = weekly.and_then(|w| w.team(&r.team));
            let view = TeamView {
                at: at.clone(),
                currency: currency.to_owned(),
                team: r.team.clone(),
                product: r.product.clone(),
                developers: r.developers.unwrap_or(0),
                windows: windows(&r.windows),
                status: status_of(r),
                band: r.baseline.as_ref().map(|b| BandView {
                    peer_group: b.peer_group.clone(),
                    cost_per_developer_eur: b.cost_per_developer_eur,
                    zscore: b.zscore,
                    expected_eur: b.expected_eur,
                    lower_eur: b.lower_eur,
                    upper_eur: b.upper_eur,
                }),
                trend: trend_of(report),
                orphan_repositories: buildcost_report::orphans_of(&snapshot.delivery, &r.team)
                    .iter()
                    .map(OrphanView::from)
                    .collect(),
                report: weekly
                    .zip(report)
                    .map(|(w, t)| format!("/reports/{}/{}.html", w.week, t.file_stem())),
            };
            team.insert(r.team.clone(), encode(&view));
        }
        let delivery = &snapshot.delivery;
        let org = OrgView {
            at,
            currency: currency.to_owned(),
            developers: snapshot.org.developers,
            windows: windows(&snapshot.org.windows),
            northstar_28d: snapshot.org.northstar("28d"),
            waste_ratio_28d: snapshot.org.waste_ratio("28d"),
            teams: rows.len() as u64,
            teams_above_band: rows.iter().filter(|r| status_of(r) == "above").count() as u64,
            delivery: delivery.has_deployments.then(|| {
                let w = delivery.org.get("28d").cloned().unwrap_or_default();
                OrgDelivery {
                    requests_delivered_28d: w.requests_delivered,
                    lead_time_p50_s: w.lead_time.map(|l| l.0),
                    lead_time_p90_s: w.lead_time.map(|l| l.1),
                    production_deployments_28d: w.deployments_success + w.deployments_failure,
                    failed_production_deployments_28d: w.deployments_failure,
                    orphan_cost_28d_eur: delivery.org_orphan_cost_eur,
                }
            }),
        };
        Published {
            org: encode(&org),
            teams: encode(&list),
            team,
        }
    }
}

fn encode(value: &impl Serialize) -> Bytes {
    // Plain data (strings, numbers, maps with string keys): encoding cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

fn json(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(status: StatusCode, message: String) -> Response {
    json(status, encode(&ApiError { error: message }))
}

fn not_ready() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the first refresh has not finished".into(),
    )
}

/// The organisation's figures.
#[utoipa::path(get, path = "/api/v1/org", tag = "figures",
    responses(
        (status = 200, description = "The organisation's figures at the evaluation instant", body = OrgView),
        (status = 503, description = "No snapshot yet", body = ApiError),
    ))]
pub(crate) async fn org(State(state): State<Arc<ServiceState>>) -> Response {
    match state.api() {
        Some(p) => json(StatusCode::OK, p.org.clone()),
        None => not_ready(),
    }
}

/// Every team of at least `privacy.min_team_size` developers.
#[utoipa::path(get, path = "/api/v1/teams", tag = "figures",
    responses(
        (status = 200, description = "The teams shown on their own, sorted by name", body = TeamList),
        (status = 503, description = "No snapshot yet", body = ApiError),
    ))]
pub(crate) async fn teams(State(state): State<Arc<ServiceState>>) -> Response {
    match state.api() {
        Some(p) => json(StatusCode::OK, p.teams.clone()),
        None => not_ready(),
    }
}

/// One team's figures.
#[utoipa::path(get, path = "/api/v1/teams/{team}", tag = "figures",
    params(("team" = String, Path, description = "The team's name, as in the teams file")),
    responses(
        (status = 200, description = "The team's figures", body = TeamView),
        (status = 404, description = "No such team, or a team below the minimum size", body = ApiError),
        (status = 503, description = "No snapshot yet", body = ApiError),
    ))]
pub(crate) async fn team(
    State(state): State<Arc<ServiceState>>,
    Path(name): Path<String>,
) -> Response {
    let Some(p) = state.api() else {
        return not_ready();
    };
    match p.team.get(&name) {
        Some(body) => json(StatusCode::OK, body.clone()),
        // The same answer for a small team as for an unknown one: nothing tells them apart.
        None => error(
            StatusCode::NOT_FOUND,
            format!("no team `{name}` with figures of its own"),
        ),
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "buildcost team API",
        description = "What CI costs per team, its waste, and whether a team spends within the normal range of teams its size. Read-only; figures at the service's evaluation instant.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(org, teams, team),
    components(schemas(OrgView, OrgDelivery, TeamList, TeamListItem, TeamView, WindowView, BandView, TrendWeek, OrphanView, ApiError)),
    tags((name = "figures", description = "Cost, waste and bands")),
)]
struct ApiDoc;

/// The OpenAPI 3.1 document of the API; declares basic auth when the service asks for it.
pub fn openapi(basic_auth: bool) -> String {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    if basic_auth {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "basic",
            Vec::<String>::new(),
        )]);
        let unauthorized = utoipa::openapi::ResponseBuilder::new()
            .description("Missing or wrong credentials")
            .build();
        let throttled = utoipa::openapi::ResponseBuilder::new()
            .description("Too many failed attempts from this address: wait `Retry-After` seconds")
            .build();
        for item in doc.paths.paths.values_mut() {
            if let Some(get) = item.get.as_mut() {
                get.responses
                    .responses
                    .insert("401".into(), unauthorized.clone().into());
                get.responses
                    .responses
                    .insert("429".into(), throttled.clone().into());
            }
        }
    }
    doc.to_pretty_json().unwrap_or_default()
}

pub(crate) async fn openapi_json(State(state): State<Arc<ServiceState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi().to_owned(),
    )
        .into_response()
}

/// Which ISO week's reports give the trend at `at`.
pub(crate) fn trend_week(at: chrono::DateTime<chrono::Utc>) -> IsoWeek {
    IsoWeek::last_complete(at)
}
