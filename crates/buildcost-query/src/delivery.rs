//! Delivery figures (spec section 12): which production deployment delivered each business
//! request, lead times, the CI cost of a request, and orphan repositories (builds, but no
//! production deployment for `delivery.orphan_after_days`).
//!
//! [`figures`] is the one place these rules are written; the gauges, the `requests` and
//! `repositories` SQL views and the reports all take its result. Its input ([`Facts`]) is
//! read from the store by [`read::DeliveryReader`], which keeps what it read per file, so the
//! service reads only new files at each refresh. Names (repositories, request ids, teams) are
//! numbers in one [`Names`] table, commits their [`commit_key`]; sums are [`Exact`].

pub(crate) mod read;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use buildcost_model::{DeliveryConfig, DeploymentStatus, Exact};
use chrono::{DateTime, Duration, Utc};

use crate::engine::Names;
use crate::snapshot::{RowOf, TeamInfo};

/// A stored build that carries request ids: what the CI cost of a request and the request ids
/// of a deployment need of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RequestBuild {
    /// Microseconds since the epoch.
    pub finished_at: i64,
    pub cost: Exact,
    pub repository: u32,
    /// [`commit_key`].
    pub commit: Option<u64>,
    /// Sorted, distinct.
    pub request_ids: Box<[u32]>,
}

/// A stored build of the 28-day window: what orphan repositories need of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WindowBuild {
    pub finished_at: i64,
    pub repository: u32,
    pub team: u32,
    pub cost: Exact,
}

/// A stored deployment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Deployment {
    pub event_id: String,
    pub finished_at: i64,
    pub repository: u32,
    /// [`commit_key`].
    pub commit: u64,
    pub environment: String,
    pub team: String,
    pub product: String,
    pub status: DeploymentStatus,
    pub correlation_ids: Box<[u32]>,
}

/// A stored request event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub request_id: u32,
    pub requested_at: i64,
}

/// Everything stored before the evaluation instant that the figures read (each build,
/// deployment and request once).
pub(crate) struct Facts<'a> {
    pub names: &'a Names,
    pub request_builds: Vec<&'a RequestBuild>,
    /// Builds finished in the 28-day window.
    pub window_builds: Vec<&'a WindowBuild>,
    pub deployments: Vec<&'a Deployment>,
    pub requests: Vec<&'a Request>,
}

/// A commit as 64 bits (its xxh3 hash): commits are compared exactly as written, and two
/// different commits of one repository share a key about once in 10¹⁰ at a million commits (a
/// build would then count for the other commit's deployment). Interning every commit of a
/// year's history would hold each one twice in memory.
pub(crate) fn commit_key(commit: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(commit.as_bytes())
}

/// The windows of the delivery gauges.
pub const DELIVERY_WINDOWS: [(&str, i64); 2] = [("7d", 7), ("28d", 28)];

/// How many values and their sum (added in ascending order, so the sum does not depend on the
/// order the values came in).
fn count_and_sum(values: &mut [f64]) -> (u64, f64) {
    values.sort_by(f64::total_cmp);
    (values.len() as u64, values.iter().sum())
}

/// p50 and p90 of a set of values (spec section 12): the median (the mean of the two middle
/// values for an even count) and the ⌈0.9·n⌉-th value; `None` for no values.
pub fn quantiles(values: &mut [f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let p50 = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    // ⌈0.9·n⌉ in integers: (9n + 9) / 10.
    let rank = (9 * n).div_ceil(10).max(1);
    Some((p50, values[rank - 1]))
}

/// The deployments, requests and lead times of one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryWindow {
    pub deployments_success: u64,
    pub deployments_failure: u64,
    pub requests_delivered: u64,
    /// p50, p90 of the lead times (seconds) of the requests delivered in the window that have
    /// a request event; `None` when there is none.
    pub lead_time: Option<(f64, f64)>,
    /// How many lead times, and their sum in seconds (a summary's `_count` and `_sum`).
    pub lead_times: u64,
    pub lead_time_sum_s: f64,
    /// Σ CI cost of the requests delivered in the window.
    pub delivered_ci_cost_eur: f64,
}

/// A product's delivery figures, per window (`7d`, `28d`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductDelivery {
    pub product: String,
    pub windows: BTreeMap<String, DeliveryWindow>,
}

/// A team's lead times (only with `delivery.lead_time_by_team`, only teams shown on their own).
#[derive(Debug, Clone, PartialEq)]
pub struct TeamLeadTime {
    pub team: String,
    pub product: String,
    pub window: String,
    pub p50: f64,
    pub p90: f64,
    pub count: u64,
    pub sum_s: f64,
}

/// A team's orphan repositories (only teams shown on their own).
#[derive(Debug, Clone, PartialEq)]
pub struct TeamOrphans {
    pub team: String,
    pub product: String,
    pub repositories: u64,
    pub cost_eur: f64,
}

/// A row of the `requests` view: one per request id that has a request event.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFigures {
    pub request_id: String,
    /// The earliest `requested_at`.
    pub requested_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub lead_time_s: Option<f64>,
    /// Stored builds (before the instant) that carry the id.
    pub builds: u64,
    pub ci_cost_eur: f64,
    /// The delivering deployment's team and product; `None` while not delivered.
    pub team: Option<String>,
    pub product: Option<String>,
}

/// A row of the `repositories` view: every repository with builds in the 28-day window or a
/// deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct RepositoryFigures {
    pub repository: String,
    /// The team of most of its builds in the window (ties: the alphabetically smaller);
    /// `None` without builds in the window.
    pub team: Option<String>,
    /// That team's product.
    pub product: Option<String>,
    pub builds_28d: u64,
    pub cost_28d: f64,
    pub last_production_deploy: Option<DateTime<Utc>>,
    /// Builds in the window and no successful production deployment in the
    /// `orphan_after_days` before the instant (only while the store holds a deployment).
    pub orphan: bool,
}

/// The delivery figures at an instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFigures {
    /// Whether the store holds a deployment before the instant: orphan figures and the org
    /// deployment counts exist only then.
    pub has_deployments: bool,
    /// Products with a production deployment in the 28-day window, sorted.
    pub products: Vec<ProductDelivery>,
    /// The whole organisation, per window.
    pub org: BTreeMap<String, DeliveryWindow>,
    pub team_lead_times: Vec<TeamLeadTime>,
    /// Teams with at least one orphan repository, sorted by (team, product).
    pub team_orphans: Vec<TeamOrphans>,
    /// Σ cost in the 28-day window of every orphan repository's builds.
    pub org_orphan_cost_eur: f64,
    /// Orphan repositories whose team is below the minimum size (counted in the org figure
    /// only).
    pub hidden_orphans: u64,
    pub requests: Vec<RequestFigures>,
    pub repositories: Vec<RepositoryFigures>,
}

fn instant(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// How a request was delivered: by which deployment, when.
#[derive(Clone, Copy)]
struct Delivered<'a> {
    at: i64,
    by: &'a Deployment,
}

/// The delivery figures at `at` from `facts` (everything stored before `at`), for the teams of
/// the builds (`teams`: product and size) and the privacy rule `row_of`.
pub(crate) fn figures(
    facts: &Facts<'_>,
    at: DateTime<Utc>,
    config: &DeliveryConfig,
    teams: &BTreeMap<String, TeamInfo>,
    row_of: &RowOf,
) -> DeliveryFigures {
    let at_us = at.timestamp_micros();
    let names = facts.names;
    let micros_of = |days: i64| Duration::days(days).num_microseconds().unwrap_or(i64::MAX);

    // The (repository, commit)s a successful deployment shipped: only their builds' request
    // ids can be delivered through them.
    let shipped: std::collections::HashSet<(u32, u64)> = facts
        .deployments
        .iter()
        .filter(|d| d.status == DeploymentStatus::Success)
        .map(|d| (d.repository, d.commit))
        .collect();
    // The request ids of each shipped (repository, commit): when each first had a build.
    let mut by_commit: HashMap<(u32, u64), HashMap<u32, i64>> = HashMap::new();
    let mut cost_of: HashMap<u32, (u64, Exact)> = HashMap::new();
    for b in &facts.request_builds {
        for id in b.request_ids.iter() {
            let e = cost_of.entry(*id).or_insert((0, Exact::ZERO));
            e.0 += 1;
            e.1 += b.cost;
        }
        if let Some(commit) = b.commit.filter(|c| shipped.contains(&(b.repository, *c))) {
            let ids = by_commit.entry((b.repository, commit)).or_default();
            for id in b.request_ids.iter() {
                let first = ids.entry(*id).or_insert(b.finished_at);
                *first = (*first).min(b.finished_at);
            }
        }
    }

    // Successful production deployments, earliest first (ties: the smaller event id).
    let production: Vec<&Deployment> = facts
        .deployments
        .iter()
        .copied()
        .filter(|d| config.is_production(&d.environment))
        .collect();
    let mut delivering: Vec<&Deployment> = production
        .iter()
        .copied()
        .filter(|d| d.status == DeploymentStatus::Success)
        .collect();
    delivering.sort_by(|a, b| {
        (a.finished_at, a.event_id.as_str()).cmp(&(b.finished_at, b.event_id.as_str()))
    });
    let mut delivered: HashMap<u32, Delivered<'_>> = HashMap::new();
    for d in &delivering {
        let mut ids: BTreeSet<u32> = d.correlation_ids.iter().copied().collect();
        if let Some(built) = by_commit.get(&(d.repository, d.commit)) {
            ids.extend(
                built
                    .iter()
                    .filter(|(_, first)| **first <= d.finished_at)
                    .map(|(id, _)| *id),
            );
        }
        for id in ids {
            delivered.entry(id).or_insert(Delivered {
                at: d.finished_at,
                by: d,
            });
        }
    }

    // The earliest request event of each id.
    let mut requested: HashMap<u32, i64> = HashMap::new();
    for r in &facts.requests {
        let e = requested.entry(r.request_id).or_insert(r.requested_at);
        *e = (*e).min(r.requested_at);
    }
    let lead_time = |id: u32, at: i64| -> Option<f64> {
        requested
            .get(&id)
            .map(|req| ((at - req).max(0)) as f64 / 1e6)
    };

    // Windows: products, org, teams.
    let mut products: BTreeMap<String, BTreeMap<String, DeliveryWindow>> = BTreeMap::new();
    let window_28 = at_us - micros_of(28);
    for d in &production {
        if d.finished_at >= window_28 {
            products.entry(d.product.clone()).or_default();
        }
    }
    let mut org: BTreeMap<String, DeliveryWindow> = BTreeMap::new();
    let mut team_leads: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    for (window, days) in DELIVERY_WINDOWS {
        let start = at_us - micros_of(days);
        let mut org_w = DeliveryWindow::default();
        let mut org_leads = Vec::new();
        let mut product_leads: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut product_w: BTreeMap<String, DeliveryWindow> = BTreeMap::new();
        for d in production.iter().filter(|d| d.finished_at >= start) {
            let w = product_w.entry(d.product.clone()).or_default();
            match d.status {
                DeploymentStatus::Success => {
                    w.deployments_success += 1;
                    org_w.deployments_success += 1;
                }
                DeploymentStatus::Failure => {
                    w.deployments_failure += 1;
                    org_w.deployments_failure += 1;
                }
            }
        }
        let mut in_window: Vec<(&u32, &Delivered<'_>)> =
            delivered.iter().filter(|(_, d)| d.at >= start).collect();
        in_window.sort_by_key(|(id, _)| **id);
        let mut product_cost: BTreeMap<String, Exact> = BTreeMap::new();
        let mut org_cost = Exact::ZERO;
        for (id, d) in in_window {
            let product = &d.by.product;
            let w = product_w.entry(product.clone()).or_default();
            w.requests_delivered += 1;
            org_w.requests_delivered += 1;
            let cost = cost_of.get(id).map_or(Exact::ZERO, |c| c.1);
            *product_cost.entry(product.clone()).or_insert(Exact::ZERO) += cost;
            org_cost += cost;
            if let Some(lead) = lead_time(*id, d.at) {
                product_leads.entry(product.clone()).or_default().push(lead);
                org_leads.push(lead);
                team_leads
                    .entry((d.by.team.clone(), product.clone(), window.to_owned()))
                    .or_default()
                    .push(lead);
            }
        }
        for (product, mut w) in product_w {
            if let Some(leads) = product_leads.get_mut(&product) {
                w.lead_time = quantiles(leads);
                (w.lead_times, w.lead_time_sum_s) = count_and_sum(leads);
            }
            w.delivered_ci_cost_eur = product_cost.get(&product).map_or(0.0, |c| c.to_f64());
            if let Some(windows) = products.get_mut(&product) {
                windows.insert(window.to_owned(), w);
            }
        }
        org_w.lead_time = quantiles(&mut org_leads);
        (org_w.lead_times, org_w.lead_time_sum_s) = count_and_sum(&mut org_leads);
        org_w.delivered_ci_cost_eur = org_cost.to_f64();
        org.insert(window.to_owned(), org_w);
    }
    for windows in products.values_mut() {
        for (window, _) in DELIVERY_WINDOWS {
            windows.entry(window.to_owned()).or_default();
        }
    }
    let shown_alone = |team: &str| -> Option<String> {
        let (row_team, row_product) = row_of.row(team, teams);
        (row_team == team).then_some(row_product)
    };
    let team_lead_times = if config.lead_time_by_team {
        team_leads
            .into_iter()
            .filter(|((team, _, _), _)| shown_alone(team).is_some())
            .filter_map(|((team, product, window), mut leads)| {
                let (count, sum_s) = count_and_sum(&mut leads);
                quantiles(&mut leads).map(|(p50, p90)| TeamLeadTime {
                    team,
                    product,
                    window,
                    p50,
                    p90,
                    count,
                    sum_s,
                })
            })
            .collect()
    } else {
        Vec::new()
    };

    // Repositories: builds of the window by team, the last production deployments.
    let mut repo_builds: BTreeMap<&str, BTreeMap<&str, (u64, Exact)>> = BTreeMap::new();
    for b in &facts.window_builds {
        let e = repo_builds
            .entry(names.name(b.repository))
            .or_default()
            .entry(names.name(b.team))
            .or_insert((0, Exact::ZERO));
        e.0 += 1;
        e.1 += b.cost;
    }
    let mut last_deploy: BTreeMap<&str, i64> = BTreeMap::new();
    for d in delivering.iter() {
        let e = last_deploy
            .entry(names.name(d.repository))
            .or_insert(d.finished_at);
        *e = (*e).max(d.finished_at);
    }
    let has_deployments = !facts.deployments.is_empty();
    let orphan_since = at_us - micros_of(i64::from(config.orphan_after_days));
    let mut all_repos: BTreeSet<&str> = repo_builds.keys().copied().collect();
    all_repos.extend(last_deploy.keys().copied());
    let mut repositories = Vec::new();
    let mut team_orphans: BTreeMap<(String, String), (u64, Exact)> = BTreeMap::new();
    let mut org_orphan = Exact::ZERO;
    let mut hidden_orphans = 0;
    for repo in all_repos {
        let by_team = repo_builds.get(repo);
        let (builds, cost) = by_team.map_or((0, Exact::ZERO), |t| {
            t.values()
                .fold((0, Exact::ZERO), |(n, c), (bn, bc)| (n + bn, c + *bc))
        });
        // Most builds, ties to the alphabetically smaller (the map is sorted by team).
        let team = by_team.and_then(|t| {
            t.iter()
                .fold(None::<(&str, u64)>, |best, (team, (n, _))| match best {
                    Some((_, m)) if m >= *n => best,
                    _ => Some((team, *n)),
                })
                .map(|(team, _)| team.to_owned())
        });
        let product = team.as_deref().map(|t| {
            teams
                .get(t)
                .map_or("unassigned".to_owned(), |i| i.product.clone())
        });
        let last = last_deploy.get(repo).copied();
        let orphan = has_deployments && builds > 0 && last.is_none_or(|l| l < orphan_since);
        if orphan {
            org_orphan += cost;
            if let Some(team) = &team {
                match shown_alone(team) {
                    Some(product) => {
                        let e = team_orphans
                            .entry((team.clone(), product))
                            .or_insert((0, Exact::ZERO));
                        e.0 += 1;
                        e.1 += cost;
                    }
                    None => hidden_orphans += 1,
                }
            }
        }
        repositories.push(RepositoryFigures {
            repository: repo.to_owned(),
            team,
            product,
            builds_28d: builds,
            cost_28d: cost.to_f64(),
            last_production_deploy: last.map(instant),
            orphan,
        });
    }

    // The requests view.
    let mut request_rows: Vec<RequestFigures> = requested
        .iter()
        .map(|(id, req)| {
            let d = delivered.get(id);
            let (builds, cost) = cost_of.get(id).copied().unwrap_or((0, Exact::ZERO));
            RequestFigures {
                request_id: names.name(*id).to_owned(),
                requested_at: instant(*req),
                delivered_at: d.map(|d| instant(d.at)),
                lead_time_s: d.and_then(|d| lead_time(*id, d.at)),
                builds,
                ci_cost_eur: cost.to_f64(),
                team: d.map(|d| d.by.team.clone()),
                product: d.map(|d| d.by.product.clone()),
            }
        })
        .collect();
    request_rows.sort_by(|a, b| a.request_id.cmp(&b.request_id));

    DeliveryFigures {
        has_deployments,
        products: products
            .into_iter()
            .map(|(product, windows)| ProductDelivery { product, windows })
            .collect(),
        org: if has_deployments {
            org
        } else {
            BTreeMap::new()
        },
        team_lead_times,
        team_orphans: if has_deployments {
            team_orphans
                .into_iter()
                .map(|((team, product), (repositories, cost))| TeamOrphans {
                    team,
                    product,
                    repositories,
                    cost_eur: cost.to_f64(),
                })
                .collect()
        } else {
            Vec::new()
        },
        org_orphan_cost_eur: org_orphan.to_f64(),
        hidden_orphans,
        requests: request_rows,
        repositories,
    }
}

/// The `requests` view's rows.
///
/// # Errors
/// Only on a bug (columns and schema disagree).
pub(crate) fn requests_batch(figures: &DeliveryFigures) -> crate::Result<RecordBatch> {
    let r = &figures.requests;
    let micros = |t: &DateTime<Utc>| t.timestamp_micros();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            r.iter().map(|x| &x.request_id),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(r.iter().map(|x| micros(&x.requested_at)))
                .with_timezone("UTC"),
        ),
        Arc::new(
            TimestampMicrosecondArray::from_iter(
                r.iter().map(|x| x.delivered_at.as_ref().map(micros)),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(Float64Array::from_iter(r.iter().map(|x| x.lead_time_s))),
        Arc::new(UInt64Array::from_iter_values(r.iter().map(|x| x.builds))),
        Arc::new(Float64Array::from_iter_values(
            r.iter().map(|x| x.ci_cost_eur),
        )),
        Arc::new(StringArray::from_iter(r.iter().map(|x| x.team.as_deref()))),
        Arc::new(StringArray::from_iter(
            r.iter().map(|x| x.product.as_deref()),
        )),
    ];
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Schema::new(vec![
        Field::new("request_id", DataType::Utf8, false),
        Field::new("requested_at", ts(), false),
        Field::new("delivered_at", ts(), true),
        Field::new("lead_time_s", DataType::Float64, true),
        Field::new("builds", DataType::UInt64, false),
        Field::new("ci_cost_eur", DataType::Float64, false),
        Field::new("team", DataType::Utf8, true),
        Field::new("product", DataType::Utf8, true),
    ]);
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

/// The `repositories` view's rows.
///
/// # Errors
/// Only on a bug (columns and schema disagree).
pub(crate) fn repositories_batch(figures: &DeliveryFigures) -> crate::Result<RecordBatch> {
    let r = &figures.repositories;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            r.iter().map(|x| &x.repository),
        )),
        Arc::new(StringArray::from_iter(r.iter().map(|x| x.team.as_deref()))),
        Arc::new(StringArray::from_iter(
            r.iter().map(|x| x.product.as_deref()),
        )),
        Arc::new(UInt64Array::from_iter_values(
            r.iter().map(|x| x.builds_28d),
        )),
        Arc::new(Float64Array::from_iter_values(r.iter().map(|x| x.cost_28d))),
        Arc::new(
            TimestampMicrosecondArray::from_iter(
                r.iter()
                    .map(|x| x.last_production_deploy.map(|t| t.timestamp_micros())),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(BooleanArray::from_iter(r.iter().map(|x| Some(x.orphan)))),
    ];
    let schema = Schema::new(vec![
        Field::new("repository", DataType::Utf8, false),
        Field::new("team", DataType::Utf8, true),
        Field::new("product", DataType::Utf8, true),
        Field::new("builds_28d", DataType::UInt64, false),
        Field::new("cost_28d", DataType::Float64, false),
        Field::new(
            "last_production_deploy",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("orphan", DataType::Boolean, false),
    ]);
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_follow_the_spec() {
        assert_eq!(quantiles(&mut []), None);
        assert_eq!(quantiles(&mut [5.0]), Some((5.0, 5.0)));
        assert_eq!(quantiles(&mut [4.0, 1.0]), Some((2.5, 4.0)));
        // n = 10: p90 is the 9th value.
        let mut ten: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(quantiles(&mut ten), Some((5.5, 9.0)));
        // n = 11: ⌈9.9⌉ = 10th.
        let mut eleven: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(quantiles(&mut eleven), Some((6.0, 10.0)));
    }
}
