//! The delivery gauges of a snapshot (spec section 12), as families of samples both writers
//! (the registry and the straight text) take, so they cannot disagree. Labels are bounded:
//! products, teams, windows, statuses, quantiles; never a request id, repository or commit.

use buildcost_query::{DeliveryWindow, Snapshot};

use crate::names::*;

/// One family: its label names sorted, each sample's values in that order.
pub(crate) struct DeliveryFamily {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: &'static [&'static str],
    pub samples: Vec<(Vec<String>, f64)>,
}

impl DeliveryFamily {
    fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        DeliveryFamily {
            name,
            help,
            labels,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, values: &[&str], value: f64) {
        self.samples
            .push((values.iter().map(|v| (*v).to_owned()).collect(), value));
    }
}

/// The quantile label values.
const QUANTILES: [&str; 2] = ["0.5", "0.9"];

fn leads(family: &mut DeliveryFamily, prefix: &[&str], window: &str, w: &DeliveryWindow) {
    if let Some((p50, p90)) = w.lead_time {
        for (q, v) in QUANTILES.into_iter().zip([p50, p90]) {
            let mut values = prefix.to_vec();
            values.push(q);
            values.push(window);
            family.add(&values, v);
        }
    }
}

/// Every delivery family of `snapshot`, empty ones included (writers skip those).
#[allow(clippy::cast_precision_loss)] // counts far below 2^53
pub(crate) fn families(snapshot: &Snapshot) -> Vec<DeliveryFamily> {
    let d = &snapshot.delivery;
    let mut deployments = DeliveryFamily::new(
        PRODUCT_DEPLOYMENTS,
        "Production deployments of a product over the window, by status.",
        &["product", "status", "window"],
    );
    let mut delivered = DeliveryFamily::new(
        PRODUCT_REQUESTS_DELIVERED,
        "Requests first delivered to production over the window, by the product that delivered them.",
        &["product", "window"],
    );
    let mut product_lead = DeliveryFamily::new(
        PRODUCT_LEAD_TIME,
        "Lead time from request to first production delivery of the requests delivered over the window (p50, p90), in seconds.",
        &["product", "quantile", "window"],
    );
    let mut product_cost = DeliveryFamily::new(
        PRODUCT_DELIVERED_CI_COST,
        "CI cost of every build of the requests delivered over the window, in euros.",
        &["product", "window"],
    );
    let mut org_deployments = DeliveryFamily::new(
        ORG_DEPLOYMENTS,
        "Production deployments of the organisation over the window, by status.",
        &["status", "window"],
    );
    let mut org_lead = DeliveryFamily::new(
        ORG_LEAD_TIME,
        "Lead time from request to first production delivery over the window (p50, p90), in seconds.",
        &["quantile", "window"],
    );
    let mut team_lead = DeliveryFamily::new(
        TEAM_LEAD_TIME,
        "Lead time of the requests a team delivered over the window (p50, p90), in seconds; only with delivery.lead_time_by_team.",
        &["product", "quantile", "team", "window"],
    );
    let mut orphans = DeliveryFamily::new(
        TEAM_ORPHAN_REPOSITORIES,
        "Repositories of a team with builds in 28d and no successful production deployment in delivery.orphan_after_days.",
        &["product", "team"],
    );
    let mut orphan_cost = DeliveryFamily::new(
        TEAM_ORPHAN_COST,
        "CI cost over 28d of a team's orphan repositories, in euros.",
        &["product", "team"],
    );
    let mut org_orphan_cost = DeliveryFamily::new(
        ORG_ORPHAN_COST,
        "CI cost over 28d of every orphan repository, in euros.",
        &[],
    );
    for p in &d.products {
        let product = p.product.as_str();
        for (window, w) in &p.windows {
            deployments.add(&[product, "success", window], w.deployments_success as f64);
            deployments.add(&[product, "failure", window], w.deployments_failure as f64);
            delivered.add(&[product, window], w.requests_delivered as f64);
            product_cost.add(&[product, window], w.delivered_ci_cost_eur);
            leads(&mut product_lead, &[product], window, w);
        }
    }
    for (window, w) in &d.org {
        org_deployments.add(&["success", window], w.deployments_success as f64);
        org_deployments.add(&["failure", window], w.deployments_failure as f64);
        leads(&mut org_lead, &[], window, w);
    }
    for t in &d.team_lead_times {
        for (q, v) in QUANTILES.into_iter().zip([t.p50, t.p90]) {
            team_lead.add(&[&t.product, q, &t.team, &t.window], v);
        }
    }
    for t in &d.team_orphans {
        orphans.add(&[&t.product, &t.team], t.repositories as f64);
        orphan_cost.add(&[&t.product, &t.team], t.cost_eur);
    }
    if d.has_deployments {
        org_orphan_cost.add(&[], d.org_orphan_cost_eur);
    }
    vec![
        deployments,
        delivered,
        product_lead,
        product_cost,
        org_deployments,
        org_lead,
        team_lead,
        orphans,
        orphan_cost,
        org_orphan_cost,
    ]
}
