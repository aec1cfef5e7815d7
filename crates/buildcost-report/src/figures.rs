//! The figures of one week's reports, from the query layer.
//!
//! A week's figures are the spec's figures over that week: the [`Snapshot`] evaluated at the end
//! of the week (Monday 00:00 UTC), whose `7d` window is exactly the week, and whose baseline,
//! band and z-score are those of spec section 7 at that instant. Every week of the trend is its
//! own snapshot, so privacy (small teams merged) is applied week by week as the exporter does.

use std::collections::BTreeMap;

use buildcost_query::{DeliveryFigures, Engine, QuerySettings, Snapshot, TeamFigures};
use buildcost_store::Store;
use chrono::{DateTime, Utc};

use crate::contents::*;
use crate::hints;
use crate::week::IsoWeek;
use crate::{Error, Result};

/// Computes the reports of `week` from `store` through the figures `engine` (the one that
/// makes the gauges: each week of the trend is a snapshot at the week's end, and each day is
/// classified once for all of them). `rejected_by_reason` are the week's rejected events (see
/// [`crate::rejections_in`]).
///
/// # Errors
/// The store cannot be read.
pub fn compute(
    engine: &mut Engine,
    store: &Store,
    settings: &QuerySettings,
    week: IsoWeek,
    rejected_by_reason: BTreeMap<String, u64>,
    generated_at: DateTime<Utc>,
) -> Result<WeeklyReport> {
    let window_days = settings.baseline.window_days;
    let (from, to) = (week.start().date_naive(), week.end().date_naive());
    engine.keep_detail(from, to);
    let mut snapshots = Vec::new();
    for back in (0..TREND_WEEKS).rev() {
        let w = week.minus(back);
        snapshots.push((w, engine.snapshot_now(store, settings, w.end())?));
    }
    let detail = engine.detail(from, to)?;
    let pipelines: BTreeMap<String, Vec<PipelineLine>> = detail.pipelines;
    let categories = detail.categories;
    let (unpriced_builds, unpriced_cost_eur) = (detail.unpriced_builds, detail.unpriced_cost_eur);

    let (_, current) = snapshots
        .last()
        .ok_or_else(|| Error::Shape("no weeks".into()))?;
    let mut teams = Vec::new();
    for row in &current.teams {
        let small = row.is_small_teams();
        let weeks: Vec<TeamWeek> = snapshots
            .iter()
            .filter_map(|(w, s)| {
                s.teams
                    .iter()
                    .find(|r| same_row(r, row))
                    .map(|r| TeamWeek::new(*w, r, window_days))
            })
            .collect();
        let this_week = TeamWeek::new(week, row, window_days);
        let own = if small {
            Vec::new()
        } else {
            pipelines.get(&row.team).cloned().unwrap_or_default()
        };
        let mut report = TeamReport {
            week,
            team: row.team.clone(),
            product: row.product.clone(),
            small_teams: small,
            this_week,
            weeks,
            top_pipelines_by_cost: top(&own, |p| (p.cost_eur, p.builds as f64)),
            top_pipelines_by_avoidable_failures: top(
                &own.iter()
                    .filter(|p| p.avoidable_failures > 0)
                    .cloned()
                    .collect::<Vec<_>>(),
                |p| (p.avoidable_failures as f64, p.avoidable_eur),
            ),
            avoidable_failures_by_category: if small {
                BTreeMap::new()
            } else {
                categories.get(&row.team).cloned().unwrap_or_default()
            },
            hints: Vec::new(),
            orphan_repositories: if small {
                Vec::new()
            } else {
                orphans_of(&current.delivery, &row.team)
            },
            lead_times: current
                .delivery
                .team_lead_times
                .iter()
                .filter(|l| l.team == row.team && l.window == "7d" && !small)
                .map(|l| LeadTimeLine {
                    product: l.product.clone(),
                    p50_s: l.p50,
                    p90_s: l.p90,
                    requests: l.count,
                })
                .collect(),
        };
        report.hints = hints::for_team(&report);
        teams.push(report);
    }

    let org = OrgWeek::new(week, &current.org);
    let annual = |eur: f64| eur * WEEKS_PER_YEAR;
    let savings_potential = Savings {
        eur_per_year: annual(org.figures.waste_eur),
        avoidable_eur_per_year: annual(org.figures.avoidable_eur),
        developer_eur_per_year: annual(org.figures.developer_waste_eur),
        platform_eur_per_year: annual(org.figures.platform_waste_eur),
    };
    let mut teams_above_band: Vec<AboveBand> = teams
        .iter()
        .filter_map(|t| {
            let band = t.this_week.baseline.as_ref()?;
            (band.status == "above").then(|| AboveBand {
                team: t.team.clone(),
                product: t.product.clone(),
                developers: t.this_week.developers.unwrap_or(0),
                above_upper_eur: band.above_upper_eur(),
                band: band.clone(),
            })
        })
        .collect();
    teams_above_band.sort_by(|a, b| {
        b.above_upper_eur
            .total_cmp(&a.above_upper_eur)
            .then_with(|| a.team.cmp(&b.team))
    });
    let summary = Summary {
        week,
        weeks: snapshots
            .iter()
            .map(|(w, s)| OrgWeek::new(*w, &s.org))
            .collect(),
        savings_potential,
        teams_above_band,
        most_improved: most_improved(&teams, week),
        data_quality: DataQuality {
            rejected: rejected_by_reason.values().sum(),
            rejected_by_reason,
            unpriced_builds,
            unpriced_cost_eur,
        },
        teams: teams
            .iter()
            .map(|t| TeamRow {
                team: t.team.clone(),
                product: t.product.clone(),
                week: t.this_week.clone(),
            })
            .collect(),
        delivery: delivery_week(current),
        org,
    };
    Ok(WeeklyReport {
        week,
        generated_at: instant(generated_at),
        summary,
        teams,
    })
}

/// The orphan repositories of `team`, costliest first.
/// The orphan repositories of `team`, most expensive first: the report's and the API's.
pub fn orphans_of(d: &DeliveryFigures, team: &str) -> Vec<OrphanLine> {
    let mut lines: Vec<OrphanLine> = d
        .repositories
        .iter()
        .filter(|r| r.orphan && r.team.as_deref() == Some(team))
        .map(|r| OrphanLine {
            repository: r.repository.clone(),
            builds_28d: r.builds_28d,
            cost_28d_eur: r.cost_28d,
            last_production_deploy: r.last_production_deploy.map(instant),
        })
        .collect();
    lines.sort_by(|a, b| {
        b.cost_28d_eur
            .total_cmp(&a.cost_28d_eur)
            .then_with(|| a.repository.cmp(&b.repository))
    });
    lines
}

/// The week's delivery figures of the organisation (the snapshot at the week's end).
fn delivery_week(s: &Snapshot) -> Option<DeliveryWeek> {
    let d = &s.delivery;
    if !d.has_deployments {
        return None;
    }
    let w = d.org.get("7d").cloned().unwrap_or_default();
    let cost_28d = s.org.windows.get("28d").map_or(0.0, |w| w.cost_eur);
    Some(DeliveryWeek {
        requests_delivered: w.requests_delivered,
        deployments_success: w.deployments_success,
        deployments_failure: w.deployments_failure,
        lead_time: w.lead_time.map(|(p50, p90)| LeadTimeLine {
            product: buildcost_query::ALL_PRODUCTS.to_owned(),
            p50_s: p50,
            p90_s: p90,
            requests: w.lead_times,
        }),
        orphan_repositories: d.repositories.iter().filter(|r| r.orphan).count() as u64,
        orphan_cost_28d_eur: d.org_orphan_cost_eur,
        orphan_cost_share: ratio(d.org_orphan_cost_eur, cost_28d),
    })
}

/// The same row in another week's snapshot: a team by name, a small-teams row by product.
fn same_row(candidate: &TeamFigures, row: &TeamFigures) -> bool {
    candidate.team == row.team && (!row.is_small_teams() || candidate.product == row.product)
}

fn top(lines: &[PipelineLine], key: impl Fn(&PipelineLine) -> (f64, f64)) -> Vec<PipelineLine> {
    let mut sorted = lines.to_vec();
    sorted.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        kb.0.total_cmp(&ka.0)
            .then(kb.1.total_cmp(&ka.1))
            .then_with(|| (&a.repository, &a.pipeline).cmp(&(&b.repository, &b.pipeline)))
    });
    sorted.truncate(TOP_PIPELINES);
    sorted
}

fn most_improved(teams: &[TeamReport], week: IsoWeek) -> Vec<Improved> {
    let basis: Vec<IsoWeek> = (1..=IMPROVEMENT_BASIS_WEEKS as i64)
        .map(|n| week.minus(n))
        .collect();
    let mut out: Vec<Improved> = teams
        .iter()
        .filter(|t| !t.small_teams)
        .filter_map(|t| {
            let before: Vec<&TeamWeek> = t
                .weeks
                .iter()
                .filter(|w| basis.contains(&w.figures.week))
                .collect();
            if before.is_empty() {
                return None;
            }
            let n = before.len() as f64;
            let previous_waste = before.iter().map(|w| w.figures.waste_eur).sum::<f64>() / n;
            let previous_cost = before.iter().map(|w| w.figures.cost_eur).sum::<f64>() / n;
            let now = &t.this_week.figures;
            let less = previous_waste - now.waste_eur;
            (less > 0.0).then(|| Improved {
                team: t.team.clone(),
                product: t.product.clone(),
                waste_eur: now.waste_eur,
                previous_waste_eur: previous_waste,
                basis_weeks: before.iter().map(|w| w.figures.week).collect(),
                less_waste_eur: less,
                waste_ratio: now.waste_ratio,
                previous_waste_ratio: ratio(previous_waste, previous_cost),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.less_waste_eur
            .total_cmp(&a.less_waste_eur)
            .then_with(|| a.team.cmp(&b.team))
    });
    out.truncate(TOP_IMPROVED);
    out
}
