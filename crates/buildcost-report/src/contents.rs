//! What a week's reports contain: the figures of a team-week and an org-week, the place in the
//! peer band, the pipelines, the hints; built from the figures engine's snapshots by
//! [`crate::compute`]. Every format renders these, nothing else.

use std::collections::BTreeMap;

use buildcost_model::{Status, WasteClass};
use buildcost_query::{Baseline, OrgFigures, TeamFigures, WindowFigures};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::week::IsoWeek;

/// Weeks in a trend: the report's week and the 8 before it.
pub const TREND_WEEKS: i64 = 9;
/// Pipelines listed per table.
pub const TOP_PIPELINES: usize = 5;
/// Teams listed as most improved.
pub const TOP_IMPROVED: usize = 5;
/// Weeks before the report's week whose mean waste a team's improvement is measured against.
pub const IMPROVEMENT_BASIS_WEEKS: usize = 4;
/// Annualising factor of a week's figure (savings potential).
pub const WEEKS_PER_YEAR: f64 = 52.0;

/// Cost and builds of one waste class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WasteLine {
    pub waste_class: &'static str,
    /// `developer` or `platform`.
    pub owner: &'static str,
    pub cost_eur: f64,
    pub builds: u64,
}

/// Cost, builds and waste of one week (a team's or the org's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeekFigures {
    pub week: IsoWeek,
    /// Monday 00:00 UTC, inclusive.
    pub start: String,
    /// The next Monday 00:00 UTC, exclusive; the evaluation instant of the baseline.
    pub end: String,
    pub cost_eur: f64,
    pub builds: u64,
    /// Every status, 0 when none.
    pub builds_by_status: BTreeMap<&'static str, u64>,
    /// Every waste class but `none`, in the spec's order.
    pub waste: Vec<WasteLine>,
    /// Cost of every class but `none`.
    pub waste_eur: f64,
    /// Waste owned by developers (superseded, avoidable_failure, cancelled, duplicate).
    pub developer_waste_eur: f64,
    /// Waste owned by the platform (flaky, infra_failure, timeout).
    pub platform_waste_eur: f64,
    /// `waste_eur / cost_eur` (0 when nothing was spent).
    pub waste_ratio: f64,
    /// Cost of `avoidable_failure` builds.
    pub avoidable_eur: f64,
    /// `avoidable_eur / cost_eur`: the northstar ratio over this week (0 when nothing was spent).
    pub avoidable_share: f64,
}

impl WeekFigures {
    pub(crate) fn new(week: IsoWeek, w: &WindowFigures) -> Self {
        let waste: Vec<WasteLine> = WasteClass::WASTE
            .iter()
            .map(|c| WasteLine {
                waste_class: c.as_str(),
                owner: c.owner(),
                cost_eur: w.waste_cost(*c),
                builds: w.waste_builds(*c),
            })
            .collect();
        let owned = |owner: &str| {
            waste
                .iter()
                .filter(|l| l.owner == owner)
                .map(|l| l.cost_eur)
                .sum()
        };
        let avoidable = w.waste_cost(WasteClass::AvoidableFailure);
        WeekFigures {
            week,
            start: instant(week.start()),
            end: instant(week.end()),
            cost_eur: w.cost_eur,
            builds: w.builds(),
            builds_by_status: Status::ALL
                .iter()
                .map(|s| (s.as_str(), w.status_builds(*s)))
                .collect(),
            developer_waste_eur: owned("developer"),
            platform_waste_eur: owned("platform"),
            waste_eur: w.total_waste_cost(),
            waste_ratio: ratio(w.total_waste_cost(), w.cost_eur),
            avoidable_eur: avoidable,
            avoidable_share: ratio(avoidable, w.cost_eur),
            waste,
        }
    }

    /// Cost of one waste class.
    pub fn waste_cost(&self, class: WasteClass) -> f64 {
        self.line(class).map_or(0.0, |l| l.cost_eur)
    }

    /// Builds of one waste class.
    pub fn waste_builds(&self, class: WasteClass) -> u64 {
        self.line(class).map_or(0, |l| l.builds)
    }

    /// Builds of one status.
    pub fn status_builds(&self, status: Status) -> u64 {
        self.builds_by_status
            .get(status.as_str())
            .copied()
            .unwrap_or(0)
    }

    fn line(&self, class: WasteClass) -> Option<&WasteLine> {
        self.waste.iter().find(|l| l.waste_class == class.as_str())
    }
}

/// Where a team stands against teams of its size at the end of the week (spec section 7), over
/// the baseline window (`baseline.window_days`, default the 28 days to the end of the week).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Band {
    pub peer_group: String,
    pub window_days: u32,
    /// The team's cost over the baseline window.
    pub cost_eur: f64,
    pub cost_per_developer_eur: f64,
    pub expected_per_developer_eur: f64,
    pub lower_per_developer_eur: f64,
    pub upper_per_developer_eur: f64,
    pub expected_eur: f64,
    pub lower_eur: f64,
    pub upper_eur: f64,
    pub zscore: f64,
    /// `above`, `within` or `below`.
    pub status: String,
}

impl Band {
    pub(crate) fn new(b: &Baseline, developers: u64, window_days: u32) -> Self {
        let n = developers as f64;
        Band {
            peer_group: b.peer_group.clone(),
            window_days,
            cost_eur: b.cost_per_developer_eur * n,
            cost_per_developer_eur: b.cost_per_developer_eur,
            expected_per_developer_eur: b.expected_eur / n,
            lower_per_developer_eur: b.lower_eur / n,
            upper_per_developer_eur: b.upper_eur / n,
            expected_eur: b.expected_eur,
            lower_eur: b.lower_eur,
            upper_eur: b.upper_eur,
            zscore: b.zscore,
            status: b.status.clone(),
        }
    }

    /// Euros above the upper bound over the baseline window (0 when not above it).
    pub fn above_upper_eur(&self) -> f64 {
        (self.cost_eur - self.upper_eur).max(0.0)
    }
}

/// One team (or merged small-teams row) in one week.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamWeek {
    #[serde(flatten)]
    pub figures: WeekFigures,
    /// Team size N at the end of the week; `None` for `_small_teams`.
    pub developers: Option<u64>,
    /// Builds / N / 7.
    pub builds_per_developer_per_day: Option<f64>,
    /// This week's cost / N.
    pub cost_per_developer_eur: Option<f64>,
    /// Only for teams eligible for a baseline (spec section 7).
    pub baseline: Option<Band>,
}

impl TeamWeek {
    pub(crate) fn new(week: IsoWeek, row: &TeamFigures, window_days: u32) -> Self {
        let w = row.windows.get("7d").cloned().unwrap_or_default();
        let n = row.developers.filter(|n| *n > 0);
        TeamWeek {
            figures: WeekFigures::new(week, &w),
            developers: row.developers,
            builds_per_developer_per_day: n.map(|n| w.builds() as f64 / n as f64 / 7.0),
            cost_per_developer_eur: n.map(|n| w.cost_eur / n as f64),
            baseline: row
                .baseline
                .as_ref()
                .zip(n)
                .map(|(b, n)| Band::new(b, n, window_days)),
        }
    }
}

/// One pipeline of a team in the week, by name: never who ran it.
pub use buildcost_query::PipelineTotal as PipelineLine;

/// A hint in plain language, with the euros a month it is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hint {
    pub text: String,
    pub eur_per_month: f64,
}

/// The report of one team (or of one merged `_small_teams` row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamReport {
    pub week: IsoWeek,
    pub team: String,
    pub product: String,
    /// A merged row of teams below `privacy.min_team_size`.
    pub small_teams: bool,
    pub this_week: TeamWeek,
    /// The report's week and the 8 before it, oldest first; a week where the team had no row
    /// of its own (no builds in the 28 days before, or below the minimum size) is left out.
    pub weeks: Vec<TeamWeek>,
    /// Most expensive pipelines this week (not for `_small_teams`, whose pipelines would name
    /// its teams).
    pub top_pipelines_by_cost: Vec<PipelineLine>,
    /// Pipelines with the most avoidable failures this week (same rule).
    pub top_pipelines_by_avoidable_failures: Vec<PipelineLine>,
    /// Avoidable failures this week by failure category (`syntax`, `compile`, `lint`, `format`).
    pub avoidable_failures_by_category: BTreeMap<String, u64>,
    pub hints: Vec<Hint>,
    /// The team's orphan repositories at the end of the week (builds in the 28 days, no
    /// successful production deployment in `delivery.orphan_after_days`), costliest first;
    /// none for merged small teams.
    pub orphan_repositories: Vec<OrphanLine>,
    /// Lead times of the requests the team delivered this week, by product; only with
    /// `delivery.lead_time_by_team` and for teams shown on their own.
    pub lead_times: Vec<LeadTimeLine>,
}

/// An orphan repository: what it cost while shipping nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrphanLine {
    pub repository: String,
    pub builds_28d: u64,
    pub cost_28d_eur: f64,
    /// The last successful production deployment, if any (RFC 3339).
    pub last_production_deploy: Option<String>,
}

/// Lead times from request to production of the requests delivered in a week.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadTimeLine {
    pub product: String,
    pub p50_s: f64,
    pub p90_s: f64,
    /// Delivered requests with a request event (the lead times' count).
    pub requests: u64,
}

/// What the organisation delivered in the week (spec section 12), next to the northstar.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryWeek {
    pub requests_delivered: u64,
    pub deployments_success: u64,
    pub deployments_failure: u64,
    /// Over the requests delivered this week that have a request event.
    pub lead_time: Option<LeadTimeLine>,
    pub orphan_repositories: u64,
    /// Cost over the 28 days to the end of the week of every orphan repository's builds.
    pub orphan_cost_28d_eur: f64,
    /// `orphan_cost_28d_eur` / the org's cost over those 28 days.
    pub orphan_cost_share: f64,
}

impl TeamReport {
    /// The file name of the report, without extension.
    pub fn file_stem(&self) -> String {
        let name = if self.small_teams {
            format!("{}-{}", self.team, self.product)
        } else {
            self.team.clone()
        };
        file_safe(&name, "-_.")
    }
}

/// `name` with every character but ASCII letters, digits and those of `keep` replaced by `_`:
/// a file name that cannot leave its folder.
pub(crate) fn file_safe(name: &str, keep: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || keep.contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The org in one week.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrgWeek {
    #[serde(flatten)]
    pub figures: WeekFigures,
    /// Sum of N over every team with builds in the 28 days to the end of the week.
    pub developers: u64,
    /// Builds / org developers / 7.
    pub builds_per_developer_per_day: Option<f64>,
}

impl OrgWeek {
    pub(crate) fn new(week: IsoWeek, org: &OrgFigures) -> Self {
        let w = org.windows.get("7d").cloned().unwrap_or_default();
        OrgWeek {
            figures: WeekFigures::new(week, &w),
            developers: org.developers,
            builds_per_developer_per_day: (org.developers > 0)
                .then(|| w.builds() as f64 / org.developers as f64 / 7.0),
        }
    }
}

/// Waste avoided every week for a year.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Savings {
    /// This week's waste (every class but `none`) × 52.
    pub eur_per_year: f64,
    /// This week's avoidable failures × 52: the northstar's share of it.
    pub avoidable_eur_per_year: f64,
    /// This week's developer-owned waste × 52.
    pub developer_eur_per_year: f64,
    /// This week's platform-owned waste × 52.
    pub platform_eur_per_year: f64,
}

/// A team above its peer band at the end of the week.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AboveBand {
    pub team: String,
    pub product: String,
    pub developers: u64,
    #[serde(flatten)]
    pub band: Band,
    /// Cost over the baseline window minus its upper bound.
    pub above_upper_eur: f64,
}

/// A team whose waste fell most against the weeks before.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Improved {
    pub team: String,
    pub product: String,
    pub waste_eur: f64,
    /// Mean weekly waste over the weeks of `basis_weeks` in which the team had a row.
    pub previous_waste_eur: f64,
    pub basis_weeks: Vec<IsoWeek>,
    /// `previous_waste_eur - waste_eur`.
    pub less_waste_eur: f64,
    pub waste_ratio: f64,
    pub previous_waste_ratio: f64,
}

/// What came in and could not be used, this week.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataQuality {
    /// Events rejected this week (by the instant they were rejected), by reason.
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub rejected: u64,
    /// Builds this week whose runner class is not in the price table (priced with the default).
    pub unpriced_builds: u64,
    pub unpriced_cost_eur: f64,
}

/// The directors' summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub week: IsoWeek,
    pub org: OrgWeek,
    /// The report's week and the 8 before it, oldest first.
    pub weeks: Vec<OrgWeek>,
    pub savings_potential: Savings,
    /// Sorted by euros above the upper bound, largest first.
    pub teams_above_band: Vec<AboveBand>,
    pub most_improved: Vec<Improved>,
    pub data_quality: DataQuality,
    /// Every team row this week (small teams merged): the team-week table.
    pub teams: Vec<TeamRow>,
    /// Requests, deployments, lead time and orphan cost; `None` while the store holds no
    /// deployment.
    pub delivery: Option<DeliveryWeek>,
}

/// One row of the summary's team table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamRow {
    pub team: String,
    pub product: String,
    #[serde(flatten)]
    pub week: TeamWeek,
}

/// Every report of one week.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeeklyReport {
    pub week: IsoWeek,
    pub generated_at: String,
    pub summary: Summary,
    pub teams: Vec<TeamReport>,
}

impl WeeklyReport {
    /// The report of the team `name` shown on its own (not a merged `_small_teams` row).
    pub fn team(&self, name: &str) -> Option<&TeamReport> {
        self.teams.iter().find(|t| t.team == name && !t.small_teams)
    }
}

pub(crate) fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole
    } else {
        0.0
    }
}

pub(crate) fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
