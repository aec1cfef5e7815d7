//! The business gauges of a [`Snapshot`] as a Prometheus registry and its text.

use buildcost_model::{Status, WasteClass};
use buildcost_query::Snapshot;
use prometheus::{Gauge, GaugeVec, Opts, Registry, TextEncoder};

use crate::names::*;
use crate::text::*;
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
        HELP_TEAM_COST,
        &["team", "product", "window"],
    )?;
    let team_waste = gauge_vec(
        &r,
        TEAM_WASTE_COST,
        HELP_TEAM_WASTE_COST,
        &["team", "product", "window", "waste_class"],
    )?;
    let team_builds = gauge_vec(
        &r,
        TEAM_BUILDS,
        HELP_TEAM_BUILDS,
        &["team", "product", "window", "status"],
    )?;
    let team_devs = gauge_vec(
        &r,
        TEAM_DEVELOPERS,
        HELP_TEAM_DEVELOPERS,
        &["team", "product"],
    )?;
    let team_cpd = gauge_vec(
        &r,
        TEAM_COST_PER_DEVELOPER,
        HELP_TEAM_COST_PER_DEVELOPER,
        &["team", "product"],
    )?;
    let team_expected = gauge_vec(
        &r,
        TEAM_EXPECTED_COST,
        HELP_TEAM_EXPECTED_COST,
        &["team", "product", "bound"],
    )?;
    let team_z = gauge_vec(
        &r,
        TEAM_DEVIATION_ZSCORE,
        HELP_TEAM_DEVIATION_ZSCORE,
        &["team", "product", "peer_group"],
    )?;
    let team_status = gauge_vec(
        &r,
        TEAM_BASELINE_STATUS,
        HELP_TEAM_BASELINE_STATUS,
        &["team", "product"],
    )?;
    let org_cost = gauge_vec(&r, ORG_COST, HELP_ORG_COST, &["window"])?;
    let org_waste = gauge_vec(
        &r,
        ORG_WASTE_COST,
        HELP_ORG_WASTE_COST,
        &["window", "waste_class"],
    )?;
    let org_builds = gauge_vec(&r, ORG_BUILDS, HELP_ORG_BUILDS, &["window"])?;
    let org_devs = gauge(&r, ORG_DEVELOPERS, HELP_ORG_DEVELOPERS)?;
    let northstar = gauge_vec(&r, NORTHSTAR, HELP_NORTHSTAR, &["window"])?;
    let waste_ratio = gauge_vec(&r, ORG_WASTE_RATIO, HELP_ORG_WASTE_RATIO, &["window"])?;
    let bpd = gauge_vec(
        &r,
        BUILDS_PER_DEVELOPER_PER_DAY,
        HELP_BUILDS_PER_DEVELOPER_PER_DAY,
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
    r.register(Box::new(crate::delivery::Fixed(crate::delivery::families(
        snapshot,
    ))))?;
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

/// The business gauges of `snapshot` as Prometheus text: the text [`business_registry`]
/// encodes (a test checks it byte for byte), written straight from the snapshot. Building a
/// registry of 50,000 labelled series costs ten times more, and the text is all the service
/// keeps.
///
/// # Errors
/// Only on a bug.
pub fn business_text(snapshot: &Snapshot) -> Result<String> {
    Ok(crate::text::business(snapshot))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use buildcost_query::{Baseline, OrgFigures, TeamFigures, WindowFigures};

    use super::*;

    fn window(seed: f64) -> WindowFigures {
        let mut w = WindowFigures {
            cost_eur: 100.0 * seed + 0.1,
            builds_by_status: [3, 1, 4, 1, 5],
            ..WindowFigures::default()
        };
        for (i, c) in w.cost_by_waste.iter_mut().enumerate() {
            *c = seed / (i as f64 + 3.0);
        }
        w
    }

    fn delivery() -> buildcost_query::DeliveryFigures {
        use buildcost_query::{DeliveryWindow, ProductDelivery, TeamLeadTime, TeamOrphans};
        let w = |n: u64| DeliveryWindow {
            deployments_success: n,
            deployments_failure: 1,
            requests_delivered: n / 2,
            lead_time: (n > 2).then_some((3600.5, 86400.0 / 7.0)),
            lead_times: n,
            lead_time_sum_s: 1e5 / 3.0,
            delivered_ci_cost_eur: n as f64 / 3.0,
        };
        let windows = BTreeMap::from([("7d".to_owned(), w(2)), ("28d".to_owned(), w(9))]);
        buildcost_query::DeliveryFigures {
            has_deployments: true,
            products: vec![
                ProductDelivery {
                    product: "p\"q".into(),
                    windows: windows.clone(),
                },
                ProductDelivery {
                    product: "a".into(),
                    windows: windows.clone(),
                },
            ],
            org: windows,
            team_lead_times: vec![TeamLeadTime {
                team: "zeta".into(),
                product: "p".into(),
                window: "28d".into(),
                p50: 1.5,
                p90: 2.0,
                count: 3,
                sum_s: 5.5,
            }],
            team_orphans: vec![TeamOrphans {
                team: "a".into(),
                product: "p".into(),
                repositories: 2,
                cost_eur: 0.1 + 0.2,
            }],
            org_orphan_cost_eur: 7.25,
            ..Default::default()
        }
    }

    fn team(name: &str, product: &str, baseline: bool) -> TeamFigures {
        TeamFigures {
            team: name.into(),
            product: product.into(),
            developers: (name != buildcost_query::SMALL_TEAMS).then_some(7),
            windows: [("7d", window(1.0 / 3.0)), ("28d", window(2.5))]
                .into_iter()
                .collect(),
            baseline: baseline.then(|| Baseline {
                peer_group: "g \"1\"".into(),
                cost_per_developer_eur: 12.345_678_9,
                zscore: -2.5,
                expected_eur: 1e-7,
                lower_eur: 3.0,
                upper_eur: 1e21,
                status: "below".into(),
            }),
        }
    }

    /// The direct writer gives exactly what the `prometheus` crate encodes from a registry,
    /// escapes and orders included.
    #[test]
    fn the_text_equals_the_registrys_encoding() {
        let snapshot = Snapshot {
            at: chrono::Utc::now(),
            teams: vec![
                team(buildcost_query::SMALL_TEAMS, "_all", false),
                team("a\\b\nc", "p!", true),
                team("a", "p", true),
                team("a b", "p", false),
                team("zeta", "p", true),
            ],
            org: OrgFigures {
                developers: 21,
                windows: BTreeMap::from([("7d", window(0.7)), ("28d", window(9.1))]),
            },
            delivery: delivery(),
        };
        let direct = business_text(&snapshot).unwrap();
        let registry = encode(&business_registry(&snapshot).unwrap()).unwrap();
        assert_eq!(direct, registry);
        for family in [
            "buildcost_product_deployments{product=\"a\",status=\"failure\",window=\"28d\"} 1",
            "buildcost_org_request_lead_time_seconds{window=\"28d\",quantile=\"0.5\"} 3600.5",
            "buildcost_org_request_lead_time_seconds_count{window=\"28d\"} 9",
            "# TYPE buildcost_team_request_lead_time_seconds summary",
            "buildcost_team_orphan_repository_cost_euros{product=\"p\",team=\"a\"} 0.30000000000000004",
            "buildcost_org_orphan_repository_cost_euros 7.25",
        ] {
            assert!(direct.contains(family), "{family} missing from\n{direct}");
        }
        assert!(!direct.contains("lead_time_seconds{product=\"a\",window=\"7d\",quantile=\"0.5\"}"));
        let empty = Snapshot {
            at: chrono::Utc::now(),
            teams: vec![],
            org: OrgFigures::default(),
            delivery: Default::default(),
        };
        assert_eq!(
            business_text(&empty).unwrap(),
            encode(&business_registry(&empty).unwrap()).unwrap()
        );
    }
}
