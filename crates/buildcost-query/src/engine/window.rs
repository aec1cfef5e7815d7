//! The snapshot at an instant from days: the `teams`, `baseline` and window-totals views of
//! the SQL (`sql/teams.sql`, `sql/baseline.sql`, `sql/window_totals.sql`), computed over sums
//! with the same rule functions ([`crate::peer`]).

use std::collections::{BTreeMap, HashMap};

use buildcost_model::{Exact, Status, WasteClass};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};

use super::day::{Cell, CellKey, Row};
use super::Names;
use crate::peer;
use crate::snapshot::{Snapshot, TeamInfo, Totals, WINDOWS};
use crate::{Error, QuerySettings, Result};

/// (team, product, status, waste class), names as the engine's numbers.
pub(crate) type TeamKey = (u32, u32, u8, u8);

/// Builds and cost of one [`TeamKey`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TeamSums {
    pub builds: u64,
    pub cost: Exact,
}

/// A day's rows with what a window needs to add them up.
pub(crate) struct RowsView<'a> {
    pub rows: &'a [Row],
    pub cells: &'a [Cell],
    /// Per candidate of the day: whether it repeats an earlier day (then it is a `duplicate`).
    pub repeats: &'a [bool],
}

/// One day as a window reads it.
pub(crate) struct DayView<'a> {
    pub day: NaiveDate,
    /// The whole day by [`TeamKey`], every candidate counted as `none`.
    pub base: &'a [(TeamKey, TeamSums)],
    /// Candidates that repeat an earlier day: moved from their `none` key to `duplicate`.
    pub moves: &'a [(TeamKey, TeamSums)],
    pub authors: &'a [(u32, u64)],
    /// Present when a window may cut through the day.
    pub rows: Option<RowsView<'a>>,
}

/// The [`TeamKey`] of a cell, `duplicate` when `repeat`.
pub(crate) fn team_key(cell: &CellKey, repeat: bool) -> TeamKey {
    let waste = if repeat {
        WasteClass::Duplicate.index()
    } else {
        cell.waste
    };
    (cell.team, cell.product, cell.status, waste)
}

/// The builds of `[start, end)`, summed by [`TeamKey`], and their distinct (team, author)
/// pairs.
#[derive(Default)]
pub(crate) struct Range {
    pub cells: HashMap<TeamKey, TeamSums>,
    pub authors: Vec<(u32, u64)>,
}

/// Microseconds since the epoch at the start of `day`.
pub(crate) fn day_start(day: NaiveDate) -> i64 {
    day.and_time(NaiveTime::MIN).and_utc().timestamp_micros()
}

impl Range {
    pub fn over(days: &[DayView<'_>], start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Range> {
        let (from, to) = (start.timestamp_micros(), end.timestamp_micros());
        let mut range = Range::default();
        for d in days {
            let (first, next) = (day_start(d.day), day_start(d.day + Duration::days(1)));
            if next <= from || first >= to {
                continue;
            }
            if first >= from && next <= to {
                for (key, sums) in d.base {
                    let e = range.cells.entry(*key).or_default();
                    e.builds += sums.builds;
                    e.cost += sums.cost;
                }
                for (key, sums) in d.moves {
                    let e = range.cells.entry(*key).or_default();
                    e.builds = e.builds.saturating_sub(sums.builds);
                    e.cost -= sums.cost;
                    let dup = (key.0, key.1, key.2, WasteClass::Duplicate.index());
                    let e = range.cells.entry(dup).or_default();
                    e.builds += sums.builds;
                    e.cost += sums.cost;
                }
                range.authors.extend_from_slice(d.authors);
                continue;
            }
            let view = d.rows.as_ref().ok_or_else(|| {
                Error::Shape(format!("the rows of {} were not kept (a bug)", d.day))
            })?;
            let lo = view.rows.partition_point(|r| r.finished_at < from);
            let hi = view.rows.partition_point(|r| r.finished_at < to);
            for r in &view.rows[lo..hi] {
                let Some(cell) = view.cells.get(r.cell as usize) else {
                    continue;
                };
                let repeat = r
                    .candidate
                    .and_then(|c| view.repeats.get(c as usize))
                    .copied()
                    .unwrap_or(false);
                let e = range.cells.entry(team_key(&cell.key, repeat)).or_default();
                e.builds += 1;
                e.cost += r.sums.cost;
                if let Some(a) = r.author {
                    range.authors.push((cell.key.team, a));
                }
            }
        }
        range.authors.sort_unstable();
        range.authors.dedup();
        Ok(range)
    }

    /// Distinct authors per team.
    fn developers(&self) -> HashMap<u32, u64> {
        let mut out: HashMap<u32, u64> = HashMap::new();
        for (team, _) in &self.authors {
            *out.entry(*team).or_default() += 1;
        }
        out
    }

    /// Cost per team.
    fn cost_by_team(&self) -> HashMap<u32, Exact> {
        let mut out: HashMap<u32, Exact> = HashMap::new();
        for ((team, ..), sums) in &self.cells {
            *out.entry(*team).or_default() += sums.cost;
        }
        out
    }

    /// `sql/window_totals.sql`: builds and cost by (team, status, waste class).
    fn window_totals(&self, names: &Names) -> Vec<Totals> {
        let mut by: BTreeMap<(&str, Status, WasteClass), (u64, Exact)> = BTreeMap::new();
        for ((team, _, status, waste), sums) in &self.cells {
            let status = Status::from_index(*status).unwrap_or(Status::Success);
            let waste = WasteClass::from_index(*waste).unwrap_or(WasteClass::None);
            let e = by.entry((names.name(*team), status, waste)).or_default();
            e.0 += sums.builds;
            e.1 += sums.cost;
        }
        by.into_iter()
            .map(|((team, status, waste), (builds, cost))| {
                (team.to_owned(), status, waste, builds, cost)
            })
            .collect()
    }
}

/// A row of the `teams` view.
pub(crate) struct Team {
    pub info: TeamInfo,
    pub peer_group: Option<String>,
}

/// `sql/teams.sql`: every team with builds in the 28 days, its product (the teams file's, or
/// [`peer::main_product`]) and size ([`peer::team_size`]).
pub(crate) fn teams(
    recent: &Range,
    window: &Range,
    settings: &QuerySettings,
    names: &Names,
) -> BTreeMap<u32, Team> {
    let mut votes: BTreeMap<u32, BTreeMap<&str, u64>> = BTreeMap::new();
    for ((team, product, ..), sums) in &recent.cells {
        *votes
            .entry(*team)
            .or_default()
            .entry(names.name(*product))
            .or_default() += sums.builds;
    }
    let authors = window.developers();
    let listed: HashMap<&str, _> = settings
        .teams
        .entries
        .iter()
        .map(|e| (e.team.as_str(), e))
        .collect();
    votes
        .into_iter()
        .map(|(team, products)| {
            let entry = listed.get(names.name(team));
            let main = peer::main_product(products.iter().map(|(p, n)| (*p, *n))).unwrap_or("");
            let developers = peer::team_size(
                entry.map(|e| e.developers),
                authors.get(&team).copied().unwrap_or(0),
            );
            let info = TeamInfo {
                product: entry.map_or_else(|| main.to_owned(), |e| e.product.clone()),
                developers,
            };
            let peer_group = entry.and_then(|e| e.peer_group.clone());
            (team, Team { info, peer_group })
        })
        .collect()
}

/// The snapshot at `at` from `days` (every day of the history the snapshot reads; days a
/// window cuts through with their rows).
///
/// Also gives each team's size (small teams included).
///
/// # Errors
/// A day a window cuts through has no rows (a bug of the caller).
pub(crate) fn snapshot(
    at: DateTime<Utc>,
    settings: &QuerySettings,
    names: &Names,
    days: &[DayView<'_>],
) -> Result<(Snapshot, BTreeMap<String, TeamInfo>)> {
    let baseline_days = i64::from(settings.baseline.window_days);
    let recent = Range::over(days, at - Duration::days(28), at)?;
    let baseline_range = if baseline_days == 28 {
        None
    } else {
        Some(Range::over(days, at - Duration::days(baseline_days), at)?)
    };
    let window = baseline_range.as_ref().unwrap_or(&recent);

    let teams = teams(&recent, window, settings, names);
    let cost = window.cost_by_team();
    let candidates: Vec<peer::TeamCost<'_>> = teams
        .iter()
        .filter_map(|(id, t)| {
            let c = cost.get(id)?;
            Some(peer::TeamCost {
                team: names.name(*id),
                product: &t.info.product,
                peer_group: t.peer_group.as_deref(),
                developers: t.info.developers,
                cost: c.to_f64(),
            })
        })
        .collect();
    let b = &settings.baseline;
    let baselines = peer::place(&candidates, settings.min_team_size, b.min_peers, b.k_sigma);
    let mut totals = Vec::new();
    for (name, length) in WINDOWS {
        let figures = if *length == 28 {
            recent.window_totals(names)
        } else {
            Range::over(days, at - Duration::days(*length), at)?.window_totals(names)
        };
        totals.push((*name, figures));
    }
    let teams: BTreeMap<String, TeamInfo> = teams
        .into_iter()
        .map(|(team, t)| (names.name(team).to_owned(), t.info))
        .collect();
    let sizes = teams.clone();
    let snapshot = Snapshot::assemble(
        at,
        u64::from(settings.min_team_size),
        teams,
        baselines,
        totals,
    );
    Ok((snapshot, sizes))
}
