//! The business gauges of a [`Snapshot`] as a Prometheus registry and its text.

use buildcost_model::{Status, WasteClass};
use buildcost_query::Snapshot;
use prometheus::{Gauge, GaugeVec, Opts, Registry, TextEncoder};

use crate::names::*;
use crate::Result;

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

pub(crate) fn gauge(registry: &Registry, name: &str, help: &str) -> Result<Gauge> {
    let g = Gauge::with_opts(Opts::new(name, help))?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

/// A registry holding every business gauge of `snapshot` (spec section 8).
///
/// Team rows are already privacy-merged by the snapshot; `_small_teams` rows carry cost, waste
/// and builds only. No label value is ever a person, build, commit or branch.
///
/// # Errors
/// Only on a bug (a metric that cannot be registered).
pub fn business_registry(snapshot: &Snapshot) -> Result<Registry> {
    let r = Registry::new();
    let team_cost = gauge_vec(
        &r,
        TEAM_COST,
        "CI cost of a team over the window, in euros.",
        &["team", "product", "window"],
    )?;
    let team_waste = gauge_vec(
        &r,
        TEAM_WASTE_COST,
        "CI cost of a team's wasted builds over the window, by waste class, in euros.",
        &["team", "product", "window", "waste_class"],
    )?;
    let team_builds = gauge_vec(
        &r,
        TEAM_BUILDS,
        "Builds of a team over the window, by status.",
        &["team", "product", "window", "status"],
    )?;
    let team_devs = gauge_vec(
        &r,
        TEAM_DEVELOPERS,
        "Developers in a team (teams file, else distinct builders in the baseline window).",
        &["team", "product"],
    )?;
    let team_cpd = gauge_vec(
        &r,
        TEAM_COST_PER_DEVELOPER,
        "CI cost per developer over the baseline window (28d), in euros.",
        &["team", "product"],
    )?;
    let team_expected = gauge_vec(
        &r,
        TEAM_EXPECTED_COST,
        "Cost a team of this size is expected to have over 28d (peer-group median), with its lower and upper band, in euros.",
        &["team", "product", "bound"],
    )?;
    let team_z = gauge_vec(
        &r,
        TEAM_DEVIATION_ZSCORE,
        "Robust z-score of the team's log cost per developer within its peer group (28d).",
        &["team", "product", "peer_group"],
    )?;
    let team_status = gauge_vec(
        &r,
        TEAM_BASELINE_STATUS,
        "Team against its band: -1 below, 0 within, 1 above.",
        &["team", "product"],
    )?;
    let org_cost = gauge_vec(
        &r,
        ORG_COST,
        "CI cost of the organisation over the window, in euros.",
        &["window"],
    )?;
    let org_waste = gauge_vec(
        &r,
        ORG_WASTE_COST,
        "CI cost of wasted builds over the window, by waste class, in euros.",
        &["window", "waste_class"],
    )?;
    let org_builds = gauge_vec(
        &r,
        ORG_BUILDS,
        "Builds of the organisation over the window.",
        &["window"],
    )?;
    let org_devs = gauge(
        &r,
        ORG_DEVELOPERS,
        "Developers of the organisation: the sum of team sizes over teams with builds in 28d.",
    )?;
    let northstar = gauge_vec(
        &r,
        NORTHSTAR,
        "Northstar: cost of avoidable failures (syntax, compile, lint, format) / total cost.",
        &["window"],
    )?;
    let waste_ratio = gauge_vec(
        &r,
        ORG_WASTE_RATIO,
        "Cost of every waste class / total cost.",
        &["window"],
    )?;
    let bpd = gauge_vec(
        &r,
        BUILDS_PER_DEVELOPER_PER_DAY,
        "Builds per developer per day over 28d.",
        &["window"],
    )?;

    for t in &snapshot.teams {
        let (team, product) = (t.team.as_str(), t.product.as_str());
        for (window, w) in &t.windows {
            team_cost
                .with_label_values(&[team, product, window])
                .set(w.cost_eur);
            for class in WasteClass::WASTE {
                team_waste
                    .with_label_values(&[team, product, window, class.as_str()])
                    .set(w.waste_cost(*class));
            }
            for (i, status) in Status::ALL.iter().enumerate() {
                team_builds
                    .with_label_values(&[team, product, window, status.as_str()])
                    .set(w.builds_by_status[i] as f64);
            }
        }
        if t.is_small_teams() {
            continue;
        }
        if let Some(n) = t.developers {
            team_devs.with_label_values(&[team, product]).set(n as f64);
        }
        if let Some(b) = &t.baseline {
            team_cpd
                .with_label_values(&[team, product])
                .set(b.cost_per_developer_eur);
            team_expected
                .with_label_values(&[team, product, "expected"])
                .set(b.expected_eur);
            team_expected
                .with_label_values(&[team, product, "lower"])
                .set(b.lower_eur);
            team_expected
                .with_label_values(&[team, product, "upper"])
                .set(b.upper_eur);
            team_z
                .with_label_values(&[team, product, &b.peer_group])
                .set(b.zscore);
            team_status
                .with_label_values(&[team, product])
                .set(f64::from(b.status_value()));
        }
    }
    for (window, w) in &snapshot.org.windows {
        org_cost.with_label_values(&[window]).set(w.cost_eur);
        for class in WasteClass::WASTE {
            org_waste
                .with_label_values(&[window, class.as_str()])
                .set(w.waste_cost(*class));
        }
        org_builds
            .with_label_values(&[window])
            .set(w.builds() as f64);
        northstar
            .with_label_values(&[window])
            .set(snapshot.org.northstar(window));
        waste_ratio
            .with_label_values(&[window])
            .set(snapshot.org.waste_ratio(window));
    }
    org_devs.set(snapshot.org.developers as f64);
    if let Some(v) = snapshot.org.builds_per_developer_per_day() {
        bpd.with_label_values(&["28d"]).set(v);
    }
    Ok(r)
}

/// Encodes a registry in the Prometheus text format (0.0.4).
///
/// # Errors
/// Only on a bug.
pub fn encode(registry: &Registry) -> Result<String> {
    let mut out = String::new();
    TextEncoder::new().encode_utf8(&registry.gather(), &mut out)?;
    Ok(out)
}

/// The business gauges of `snapshot` as Prometheus text.
///
/// # Errors
/// Only on a bug.
pub fn business_text(snapshot: &Snapshot) -> Result<String> {
    encode(&business_registry(snapshot)?)
}
