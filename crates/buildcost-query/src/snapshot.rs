//! Typed figures at one evaluation instant: what the exporter turns into gauges and the reports
//! into tables. Privacy is applied here: teams below the minimum size appear only inside a
//! `_small_teams` row (spec section 4).

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type, UInt64Type};
use buildcost_model::{Exact, Status, WasteClass};
use chrono::{DateTime, Duration, Utc};

use crate::context::{BuildcostContext, Param, WINDOW_TOTALS_SQL};
use crate::{Error, Result};

/// The team name of merged small teams.
pub const SMALL_TEAMS: &str = "_small_teams";
/// The product of the org-wide small-teams row.
pub const ALL_PRODUCTS: &str = "_all";
/// The metric windows, with their length in days.
pub const WINDOWS: &[(&str, i64)] = &[("7d", 7), ("28d", 28)];

/// Cost and builds of one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowFigures {
    pub cost_eur: f64,
    /// By [`Status`], in `Status::ALL` order.
    pub builds_by_status: [u64; 5],
    /// By [`WasteClass`], in `WasteClass::ALL` order (`none` last).
    pub cost_by_waste: [f64; 8],
    /// Builds by [`WasteClass`], in `WasteClass::ALL` order.
    pub builds_by_waste: [u64; 8],
}

impl WindowFigures {
    /// All builds.
    pub fn builds(&self) -> u64 {
        self.builds_by_status.iter().sum()
    }

    /// Cost of one waste class.
    pub fn waste_cost(&self, class: WasteClass) -> f64 {
        self.cost_by_waste[waste_index(class)]
    }

    /// Builds of one waste class.
    pub fn waste_builds(&self, class: WasteClass) -> u64 {
        self.builds_by_waste[waste_index(class)]
    }

    /// Builds of one status.
    pub fn status_builds(&self, status: Status) -> u64 {
        self.builds_by_status[status_index(status)]
    }

    /// Cost of every class but `none`.
    pub fn total_waste_cost(&self) -> f64 {
        WasteClass::WASTE.iter().map(|c| self.waste_cost(*c)).sum()
    }

    fn merge(&mut self, other: &WindowFigures) {
        self.cost_eur += other.cost_eur;
        for (a, b) in self.builds_by_status.iter_mut().zip(other.builds_by_status) {
            *a += b;
        }
        for (a, b) in self.cost_by_waste.iter_mut().zip(other.cost_by_waste) {
            *a += b;
        }
        for (a, b) in self.builds_by_waste.iter_mut().zip(other.builds_by_waste) {
            *a += b;
        }
    }
}

/// [`WindowFigures`] summed exactly, converted once at the end.
#[derive(Debug, Clone, Default)]
struct ExactWindow {
    cost: Exact,
    builds_by_status: [u64; 5],
    cost_by_waste: [Exact; 8],
    builds_by_waste: [u64; 8],
}

impl ExactWindow {
    fn add(&mut self, status: Status, waste: WasteClass, builds: u64, cost: Exact) {
        self.cost += cost;
        self.builds_by_status[status_index(status)] += builds;
        self.cost_by_waste[waste_index(waste)] += cost;
        self.builds_by_waste[waste_index(waste)] += builds;
    }

    fn figures(&self) -> WindowFigures {
        WindowFigures {
            cost_eur: self.cost.to_f64(),
            builds_by_status: self.builds_by_status,
            cost_by_waste: self.cost_by_waste.map(Exact::to_f64),
            builds_by_waste: self.builds_by_waste,
        }
    }
}

fn status_index(s: Status) -> usize {
    Status::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

fn waste_index(w: WasteClass) -> usize {
    WasteClass::ALL
        .iter()
        .position(|x| *x == w)
        .unwrap_or(WasteClass::ALL.len() - 1)
}

/// A team's place against its peers (spec section 7). Only for eligible teams.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub peer_group: String,
    pub cost_per_developer_eur: f64,
    pub zscore: f64,
    pub expected_eur: f64,
    pub lower_eur: f64,
    pub upper_eur: f64,
    /// `above`, `within` or `below`.
    pub status: String,
}

impl Baseline {
    /// -1 below, 0 within, 1 above.
    pub fn status_value(&self) -> i8 {
        match self.status.as_str() {
            "above" => 1,
            "below" => -1,
            _ => 0,
        }
    }
}

/// One row of team figures: a team of at least the minimum size, or a merged `_small_teams`.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamFigures {
    pub team: String,
    pub product: String,
    /// `None` for `_small_teams` (never exported).
    pub developers: Option<u64>,
    /// By window name (`7d`, `28d`).
    pub windows: BTreeMap<&'static str, WindowFigures>,
    pub baseline: Option<Baseline>,
}

impl TeamFigures {
    /// Whether this is a merged row of small teams.
    pub fn is_small_teams(&self) -> bool {
        self.team == SMALL_TEAMS
    }
}

/// Org totals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgFigures {
    /// Sum of team sizes over every team with builds in the 28-day window.
    pub developers: u64,
    pub windows: BTreeMap<&'static str, WindowFigures>,
}

impl OrgFigures {
    /// Avoidable-failure cost / total cost (0 when nothing was spent).
    pub fn northstar(&self, window: &str) -> f64 {
        self.windows.get(window).map_or(0.0, |w| {
            ratio(w.waste_cost(WasteClass::AvoidableFailure), w.cost_eur)
        })
    }

    /// Waste cost / total cost (0 when nothing was spent).
    pub fn waste_ratio(&self, window: &str) -> f64 {
        self.windows
            .get(window)
            .map_or(0.0, |w| ratio(w.total_waste_cost(), w.cost_eur))
    }

    /// Builds / org developers / 28 over the 28-day window; `None` with no developers.
    pub fn builds_per_developer_per_day(&self) -> Option<f64> {
        let w = self.windows.get("28d")?;
        (self.developers > 0).then(|| w.builds() as f64 / self.developers as f64 / 28.0)
    }
}

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole
    } else {
        0.0
    }
}

/// Every business figure at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub at: DateTime<Utc>,
    /// Team rows sorted by (team, product); small teams merged.
    pub teams: Vec<TeamFigures>,
    pub org: OrgFigures,
    /// Deployments, requests, lead times and orphan repositories (spec section 12).
    pub delivery: crate::DeliveryFigures,
}

/// A team as the `teams` view gives it.
#[derive(Debug, Clone)]
pub struct TeamInfo {
    pub product: String,
    pub developers: u64,
}

/// Where each team's figures are shown (spec section 4): its own row when it has the minimum
/// size; else its product's `_small_teams` row when the product's small teams add up to the
/// minimum size; else the org-wide `_small_teams` / `_all` row. The one rule every output
/// (gauges, reports, the FOCUS export) places teams by.
#[derive(Debug, Clone)]
pub struct RowOf {
    min_size: u64,
    small_by_product: BTreeMap<String, u64>,
}

impl RowOf {
    /// The placement of `teams` (every team with its product and size).
    pub fn new(teams: &BTreeMap<String, TeamInfo>, min_size: u64) -> Self {
        let mut small_by_product: BTreeMap<String, u64> = BTreeMap::new();
        for info in teams.values().filter(|i| i.developers < min_size) {
            *small_by_product.entry(info.product.clone()).or_default() += info.developers;
        }
        RowOf {
            min_size,
            small_by_product,
        }
    }

    /// The (team, product) row of `team`; a team missing from `teams` counts as a team of no
    /// developers of no product (the org-wide row).
    pub fn row(&self, team: &str, teams: &BTreeMap<String, TeamInfo>) -> (String, String) {
        match teams.get(team) {
            Some(info) => self.place(team, info),
            None => (SMALL_TEAMS.to_owned(), ALL_PRODUCTS.to_owned()),
        }
    }

    /// The (team, product) row of `team` of product and size `info`.
    pub fn place(&self, team: &str, info: &TeamInfo) -> (String, String) {
        if info.developers >= self.min_size {
            (team.to_owned(), info.product.clone())
        } else if self
            .small_by_product
            .get(info.product.as_str())
            .copied()
            .unwrap_or(0)
            >= self.min_size
        {
            (SMALL_TEAMS.to_owned(), info.product.clone())
        } else {
            (SMALL_TEAMS.to_owned(), ALL_PRODUCTS.to_owned())
        }
    }

    /// Whether a (team, product) row may be shown: every row but an org-wide
    /// `_small_teams` / `_all` bucket of fewer than the minimum size's developers, which would
    /// expose its teams (SPEC amendment). Its builds still count in every org total.
    pub fn shown(&self, row: &(String, String)) -> bool {
        !(row.0 == SMALL_TEAMS && row.1 == ALL_PRODUCTS && self.org_wide_small() < self.min_size)
    }

    /// The developers of the org-wide `_small_teams` / `_all` row.
    pub fn org_wide_small(&self) -> u64 {
        self.small_by_product
            .values()
            .filter(|n| **n < self.min_size)
            .sum()
    }
}

/// The columns of `builds` a snapshot reads.
pub const SNAPSHOT_COLUMNS: &[&str] = &[
    "team",
    "product",
    "author_key",
    "finished_at",
    "status",
    "waste_class",
    "cost_eur",
];

impl Snapshot {
    /// The snapshot of `store` at `at`, pricing and classifying each build once: `builds` is
    /// computed in one pass and kept in memory for the days the snapshot reads (the longer of
    /// 28 days and the baseline window), instead of once per query of the snapshot.
    ///
    /// # Errors
    /// The store cannot be read or a query failed.
    pub async fn of_store(
        store: &buildcost_store::Store,
        settings: &crate::QuerySettings,
        at: DateTime<Utc>,
    ) -> Result<Snapshot> {
        let ctx = BuildcostContext::open(store, settings, at)
            .await?
            .materialize(at - settings.history(), at, Some(SNAPSHOT_COLUMNS))
            .await?;
        Snapshot::compute(&ctx).await
    }

    /// Computes the snapshot at the context's instant.
    ///
    /// # Errors
    /// A query failed.
    pub async fn compute(ctx: &BuildcostContext) -> Result<Snapshot> {
        let at = ctx.at();
        let min_size = u64::from(ctx.settings().min_team_size);
        let teams = read_teams(
            &ctx.sql("SELECT team, product, developers FROM teams ORDER BY team")
                .await?,
        )?;
        let baselines = read_baselines(
            &ctx.sql(
                "SELECT team, peer_group, cost_per_developer_eur, zscore, expected_eur, lower_eur, upper_eur, status \
                 FROM baseline ORDER BY team",
            )
            .await?,
        )?;

        let mut totals = Vec::new();
        for (window, days) in WINDOWS {
            let start = at - Duration::days(*days);
            let batches = ctx
                .template(WINDOW_TOTALS_SQL, &[("start", Param::Time(start))])
                .await?;
            totals.push((*window, read_totals(&batches)?));
        }
        Ok(Snapshot::assemble(at, min_size, teams, baselines, totals))
    }

    /// The snapshot from the `teams` and `baseline` views' rows and each window's totals:
    /// small teams merged by product (or org-wide), org figures summed.
    pub(crate) fn assemble(
        at: DateTime<Utc>,
        min_size: u64,
        teams: BTreeMap<String, TeamInfo>,
        baselines: BTreeMap<String, Baseline>,
        totals: Vec<(&'static str, Vec<Totals>)>,
    ) -> Snapshot {
        let placement = RowOf::new(&teams, min_size);
        let row_of = |team: &str, _: &TeamInfo| placement.row(team, &teams);
        type Row = (TeamFigures, BTreeMap<&'static str, ExactWindow>);
        let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
        for (team, info) in &teams {
            let key = row_of(team, info);
            // A row that is not shown gets no entry: its builds go to the org totals only.
            if !placement.shown(&key) {
                continue;
            }
            let small = key.0 == SMALL_TEAMS;
            rows.entry(key.clone()).or_insert_with(|| {
                let figures = TeamFigures {
                    team: key.0.clone(),
                    product: key.1.clone(),
                    developers: (!small).then_some(info.developers),
                    windows: BTreeMap::new(),
                    baseline: if small {
                        None
                    } else {
                        baselines.get(team).cloned()
                    },
                };
                let windows = WINDOWS
                    .iter()
                    .map(|(w, _)| (*w, ExactWindow::default()))
                    .collect();
                (figures, windows)
            });
        }

        let mut org = OrgFigures {
            developers: teams.values().map(|i| i.developers).sum(),
            windows: BTreeMap::new(),
        };
        for (window, rows_of_window) in totals {
            let mut org_window = ExactWindow::default();
            for (team, status, waste, builds, cost) in rows_of_window {
                org_window.add(status, waste, builds, cost);
                let Some(info) = teams.get(&team) else {
                    continue; // cannot happen: every window lies inside the 28 days of `teams`
                };
                if let Some((_, windows)) = rows.get_mut(&row_of(&team, info)) {
                    if let Some(w) = windows.get_mut(window) {
                        w.add(status, waste, builds, cost);
                    }
                }
            }
            org.windows.insert(window, org_window.figures());
        }
        Snapshot {
            at,
            teams: rows
                .into_values()
                .map(|(mut figures, windows)| {
                    figures.windows = windows.into_iter().map(|(w, e)| (w, e.figures())).collect();
                    figures
                })
                .collect(),
            org,
            delivery: crate::DeliveryFigures::default(),
        }
    }

    /// Org totals over the team rows of one window (equal to [`OrgFigures`] up to rounding).
    pub fn sum_of_rows(&self, window: &str) -> WindowFigures {
        let mut total = WindowFigures::default();
        for t in &self.teams {
            if let Some(w) = t.windows.get(window) {
                total.merge(w);
            }
        }
        total
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn Array> {
    batch
        .column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| Error::Shape(format!("no column `{name}`")))
}

/// Column `name` of `batch` as the array type `cast` gives, or an error naming the column
/// and the SQL type (`kind`) it should have had.
pub(crate) fn typed<'a, T: ?Sized>(
    batch: &'a RecordBatch,
    name: &str,
    kind: &str,
    cast: impl FnOnce(&'a dyn Array) -> Option<&'a T>,
) -> Result<&'a T> {
    cast(column(batch, name)?)
        .ok_or_else(|| Error::Shape(format!("`{name}` is not a {kind} column")))
}

/// Row `i` of a string column, `None` when null.
pub(crate) fn opt_str(a: &arrow::array::StringArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

/// A string column of `batch`, by name.
pub(crate) fn strings<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a arrow::array::StringArray> {
    typed(batch, name, "string", |c| c.as_string_opt::<i32>())
}

/// A DOUBLE column of `batch`, by name.
pub(crate) fn floats<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a arrow::array::Float64Array> {
    typed(batch, name, "DOUBLE", |c| {
        c.as_primitive_opt::<Float64Type>()
    })
}

/// Row `row` of an integer column (`BIGINT` or `BIGINT UNSIGNED`, as `COUNT` and `SUM` give
/// them) as a `u64`; a negative value reads as 0.
///
/// # Errors
/// No such column, or not an integer column.
pub fn integer_value(batch: &RecordBatch, name: &str, row: usize) -> Result<u64> {
    let c = column(batch, name)?;
    if let Some(a) = c.as_primitive_opt::<Int64Type>() {
        return Ok(u64::try_from(a.value(row)).unwrap_or(0));
    }
    if let Some(a) = c.as_primitive_opt::<UInt64Type>() {
        return Ok(a.value(row));
    }
    Err(Error::Shape(format!("`{name}` is not an integer column")))
}

fn read_teams(batches: &[RecordBatch]) -> Result<BTreeMap<String, TeamInfo>> {
    let mut teams = BTreeMap::new();
    for b in batches {
        let (team, product) = (strings(b, "team")?, strings(b, "product")?);
        for i in 0..b.num_rows() {
            teams.insert(
                team.value(i).to_owned(),
                TeamInfo {
                    product: product.value(i).to_owned(),
                    developers: integer_value(b, "developers", i)?,
                },
            );
        }
    }
    Ok(teams)
}

fn read_baselines(batches: &[RecordBatch]) -> Result<BTreeMap<String, Baseline>> {
    let mut out = BTreeMap::new();
    for b in batches {
        let team = strings(b, "team")?;
        let group = strings(b, "peer_group")?;
        let status = strings(b, "status")?;
        let (cpd, z, e, lo, hi) = (
            floats(b, "cost_per_developer_eur")?,
            floats(b, "zscore")?,
            floats(b, "expected_eur")?,
            floats(b, "lower_eur")?,
            floats(b, "upper_eur")?,
        );
        for i in 0..b.num_rows() {
            out.insert(
                team.value(i).to_owned(),
                Baseline {
                    peer_group: group.value(i).to_owned(),
                    cost_per_developer_eur: cpd.value(i),
                    zscore: z.value(i),
                    expected_eur: e.value(i),
                    lower_eur: lo.value(i),
                    upper_eur: hi.value(i),
                    status: status.value(i).to_owned(),
                },
            );
        }
    }
    Ok(out)
}

/// One row of `sql/window_totals.sql`: team, status, waste class, builds, cost.
pub(crate) type Totals = (String, Status, WasteClass, u64, Exact);

fn read_totals(batches: &[RecordBatch]) -> Result<Vec<Totals>> {
    let mut out = Vec::new();
    for b in batches {
        let (team, status, waste, cost) = (
            strings(b, "team")?,
            strings(b, "status")?,
            strings(b, "waste_class")?,
            floats(b, "cost_eur")?,
        );
        for i in 0..b.num_rows() {
            let s = Status::parse(status.value(i)).ok_or_else(|| {
                Error::Shape(format!("unknown status `{}` in the store", status.value(i)))
            })?;
            let w = WasteClass::parse(waste.value(i))
                .ok_or_else(|| Error::Shape(format!("unknown waste class `{}`", waste.value(i))))?;
            out.push((
                team.value(i).to_owned(),
                s,
                w,
                integer_value(b, "builds", i)?,
                Exact::from_f64(cost.value(i)),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(product: &str, developers: u64) -> TeamInfo {
        TeamInfo {
            product: product.into(),
            developers,
        }
    }

    fn totals(rows: &[(&str, f64)]) -> Vec<(&'static str, Vec<Totals>)> {
        let rows: Vec<Totals> = rows
            .iter()
            .map(|(t, eur)| {
                (
                    (*t).to_owned(),
                    Status::Success,
                    WasteClass::None,
                    1,
                    Exact::from_f64(*eur),
                )
            })
            .collect();
        WINDOWS.iter().map(|(w, _)| (*w, rows.clone())).collect()
    }

    #[test]
    fn an_org_wide_small_bucket_below_the_minimum_is_shown_nowhere_but_counts_in_the_org() {
        // One small team of 2 developers alone in its product: its only row would be the
        // org-wide `_small_teams` / `_all` of 2 developers, which would show that team.
        let teams = BTreeMap::from([
            ("big".to_owned(), info("shop", 8)),
            ("tiny".to_owned(), info("ads", 2)),
        ]);
        let s = Snapshot::assemble(
            Utc::now(),
            5,
            teams.clone(),
            BTreeMap::new(),
            totals(&[("big", 10.0), ("tiny", 3.0)]),
        );
        let rows: Vec<(&str, &str)> = s
            .teams
            .iter()
            .map(|t| (t.team.as_str(), t.product.as_str()))
            .collect();
        assert_eq!(rows, vec![("big", "shop")]);
        assert!((s.org.windows["28d"].cost_eur - 13.0).abs() < 1e-9);
        // Two such teams add up to 5: the bucket is shown.
        let mut teams = teams;
        teams.insert("tiny2".to_owned(), info("ml", 3));
        let s = Snapshot::assemble(
            Utc::now(),
            5,
            teams,
            BTreeMap::new(),
            totals(&[("big", 10.0), ("tiny", 3.0), ("tiny2", 1.0)]),
        );
        let small = s
            .teams
            .iter()
            .find(|t| t.team == SMALL_TEAMS && t.product == ALL_PRODUCTS)
            .unwrap_or_else(|| panic!("{:?}", s.teams));
        assert!((small.windows["28d"].cost_eur - 4.0).abs() < 1e-9);
    }
}
