//! The snapshot from rolled-up days: the `teams`, `baseline` and window-totals SQL
//! (`sql/teams.sql`, `sql/baseline.sql`, `sql/window_totals.sql`) over sums instead of rows.

use std::collections::{BTreeMap, HashMap};

use buildcost_model::{Status, WasteClass};
use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::{Names, Row, Totals, NO_AUTHOR};
use crate::snapshot::{Baseline, Snapshot, TeamInfo, Totals as WindowTotals, WINDOWS};
use crate::{Error, QuerySettings, Result};

/// One day as the snapshot reads it: its totals, and its rows when a window cuts through it.
pub(crate) struct DayView<'a> {
    pub day: NaiveDate,
    pub totals: &'a Totals,
    pub rows: Option<&'a [Row]>,
}

/// The builds of `[start, end)`, summed by (team, product, status, waste class), and their
/// distinct (team, author) pairs.
#[derive(Default)]
struct Range {
    cells: BTreeMap<(u32, u32, Status, WasteClass), (u64, f64)>,
    authors: Vec<u64>,
}

impl Range {
    fn over(days: &[DayView<'_>], start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Range> {
        let (from, to) = (start.timestamp_micros(), end.timestamp_micros());
        let mut range = Range::default();
        for d in days {
            let first = day_start(d.day);
            let next = day_start(d.day + Duration::days(1));
            if next <= from || first >= to {
                continue;
            }
            if first >= from && next <= to {
                for c in &d.totals.cells {
                    let e = range
                        .cells
                        .entry((c.team, c.product, c.status, c.waste))
                        .or_default();
                    e.0 += c.builds;
                    e.1 += c.cost;
                }
                range.authors.extend_from_slice(&d.totals.authors);
                continue;
            }
            let rows = d.rows.ok_or_else(|| {
                Error::Shape(format!("the rows of {} were not kept (a bug)", d.day))
            })?;
            let lo = rows.partition_point(|r| r.finished_at < from);
            let hi = rows.partition_point(|r| r.finished_at < to);
            for r in &rows[lo..hi] {
                let e = range
                    .cells
                    .entry((r.team, r.product, r.status, r.waste))
                    .or_default();
                e.0 += 1;
                e.1 += r.cost;
                if r.author != NO_AUTHOR {
                    range.authors.push(super::pair(r.team, r.author));
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
        for p in &self.authors {
            *out.entry((p >> 32) as u32).or_default() += 1;
        }
        out
    }

    /// Cost per team.
    fn cost_by_team(&self) -> HashMap<u32, f64> {
        let mut out: HashMap<u32, f64> = HashMap::new();
        for ((team, ..), (_, cost)) in &self.cells {
            *out.entry(*team).or_default() += cost;
        }
        out
    }

    /// `sql/window_totals.sql`: builds and cost by (team, status, waste class).
    fn window_totals(&self, names: &Names) -> Vec<WindowTotals> {
        let mut by: BTreeMap<(u32, Status, WasteClass), (u64, f64)> = BTreeMap::new();
        for ((team, _, status, waste), (builds, cost)) in &self.cells {
            let e = by.entry((*team, *status, *waste)).or_default();
            e.0 += builds;
            e.1 += cost;
        }
        by.into_iter()
            .map(|((team, status, waste), (builds, cost))| {
                (names.name(team).to_owned(), status, waste, builds, cost)
            })
            .collect()
    }
}

/// Microseconds since the epoch at the start of `day`.
fn day_start(day: NaiveDate) -> i64 {
    day.and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp_micros()
}

/// The snapshot at `at` from `days` (every day of the history, the open day with its rows).
///
/// # Errors
/// A day a window cuts through has no rows (a bug of the caller).
pub(crate) fn figures(
    at: DateTime<Utc>,
    settings: &QuerySettings,
    names: &Names,
    days: &[DayView<'_>],
) -> Result<Snapshot> {
    let baseline_days = i64::from(settings.baseline.window_days);
    let recent = Range::over(days, at - Duration::days(28), at)?;
    let baseline_range = if baseline_days == 28 {
        None
    } else {
        Some(Range::over(days, at - Duration::days(baseline_days), at)?)
    };
    let window = baseline_range.as_ref().unwrap_or(&recent);

    let teams = teams(&recent, window, settings, names);
    let baselines = baselines(&teams, &window.cost_by_team(), settings, names);
    let mut totals = Vec::new();
    for (name, length) in WINDOWS {
        let figures = if *length == 28 {
            recent.window_totals(names)
        } else {
            Range::over(days, at - Duration::days(*length), at)?.window_totals(names)
        };
        totals.push((*name, figures));
    }
    let teams = teams
        .into_iter()
        .map(|(team, t)| (names.name(team).to_owned(), t.info))
        .collect();
    Ok(Snapshot::assemble(
        at,
        u64::from(settings.min_team_size),
        teams,
        baselines,
        totals,
    ))
}

/// A row of the `teams` view.
struct Team {
    info: TeamInfo,
    peer_group: Option<String>,
}

/// `sql/teams.sql`: every team with builds in the 28 days, its product (the teams file's, or
/// the one on most of its builds, ties alphabetical) and size (the file's, or its distinct
/// authors over the baseline window).
fn teams(
    recent: &Range,
    window: &Range,
    settings: &QuerySettings,
    names: &Names,
) -> BTreeMap<u32, Team> {
    let mut votes: BTreeMap<u32, BTreeMap<u32, u64>> = BTreeMap::new();
    for ((team, product, ..), (builds, _)) in &recent.cells {
        *votes.entry(*team).or_default().entry(*product).or_default() += builds;
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
            let main = products
                .iter()
                .max_by(|(a, x), (b, y)| {
                    x.cmp(y).then_with(|| names.name(**b).cmp(names.name(**a)))
                })
                .map_or("", |(p, _)| names.name(*p));
            let info = match listed.get(names.name(team)) {
                Some(e) => Team {
                    info: TeamInfo {
                        product: e.product.clone(),
                        developers: u64::from(e.developers),
                    },
                    peer_group: e.peer_group.clone(),
                },
                None => Team {
                    info: TeamInfo {
                        product: main.to_owned(),
                        developers: authors.get(&team).copied().unwrap_or(0),
                    },
                    peer_group: None,
                },
            };
            (team, info)
        })
        .collect()
}

/// The median as DataFusion's `median` gives it: the mean of the two middle values of an even
/// count.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n.is_multiple_of(2) => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        _ => values[n / 2],
    }
}

/// `sql/baseline.sql`: each eligible team's place against its peer group (spec section 7).
fn baselines(
    teams: &BTreeMap<u32, Team>,
    cost: &HashMap<u32, f64>,
    settings: &QuerySettings,
    names: &Names,
) -> BTreeMap<String, Baseline> {
    const ORG: &str = "_org";
    let b = &settings.baseline;
    // Eligible: large enough to be shown and it spent something; y = ln(C / N).
    let eligible: Vec<(u32, &Team, String, f64, f64)> = teams
        .iter()
        .filter_map(|(id, t)| {
            let c = *cost.get(id)?;
            let n = t.info.developers;
            (n >= u64::from(settings.min_team_size) && c > 0.0).then(|| {
                let group = t
                    .peer_group
                    .clone()
                    .unwrap_or_else(|| t.info.product.clone());
                #[allow(clippy::cast_precision_loss)] // as SQL's CAST(developers AS DOUBLE)
                let y = (c / n as f64).ln();
                (*id, t, group, c, y)
            })
        })
        .collect();
    let mut peers: HashMap<&str, u32> = HashMap::new();
    let mut members: HashMap<&str, Vec<f64>> = HashMap::new();
    for (_, _, group, _, y) in &eligible {
        *peers.entry(group.as_str()).or_default() += 1;
        members.entry(group.as_str()).or_default().push(*y);
        members.entry(ORG).or_default().push(*y);
    }
    let centre: HashMap<&str, (f64, f64)> = members
        .iter_mut()
        .map(|(group, ys)| {
            let m = median(ys);
            let mut deviations: Vec<f64> = ys.iter().map(|y| (y - m).abs()).collect();
            (*group, (m, median(&mut deviations)))
        })
        .collect();
    let mut out = BTreeMap::new();
    for (id, t, group, c, y) in &eligible {
        let peer_group = if peers.get(group.as_str()).copied().unwrap_or(0) >= b.min_peers {
            group.as_str()
        } else {
            ORG
        };
        let Some(&(m, mad)) = centre.get(peer_group) else {
            continue; // cannot happen: every eligible team is a member of `_org`
        };
        let s = (1.4826 * mad).max(0.05);
        #[allow(clippy::cast_precision_loss)]
        let n = t.info.developers as f64;
        let z = (y - m) / s;
        let status = if z > b.k_sigma {
            "above"
        } else if z < -b.k_sigma {
            "below"
        } else {
            "within"
        };
        out.insert(
            names.name(*id).to_owned(),
            Baseline {
                peer_group: peer_group.to_owned(),
                cost_per_developer_eur: c / n,
                zscore: z,
                expected_eur: n * m.exp(),
                lower_eur: n * (m - b.k_sigma * s).exp(),
                upper_eur: n * (m + b.k_sigma * s).exp(),
                status: status.to_owned(),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
    }
}
