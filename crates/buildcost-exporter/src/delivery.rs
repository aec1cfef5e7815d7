//! The delivery metrics of a snapshot (spec section 12) as metric families, which both writers
//! take (the registry through a collector, the straight text through the `prometheus` crate's
//! encoder), so they cannot disagree. Counts and costs are gauges; lead times are summaries
//! (`{quantile="0.5"|"0.9"}` with `_sum` and `_count`), so `promtool check metrics` accepts the
//! `quantile` label. Labels are bounded: products, teams, windows, statuses; never a request
//! id, repository or commit.

use buildcost_query::{DeliveryWindow, Snapshot};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType, Quantile, Summary};

use crate::names::*;

/// One family being built: its samples with their labels (any order; sorted when finished).
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    metrics: Vec<Metric>,
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    let mut out: Vec<LabelPair> = pairs
        .iter()
        .map(|(name, value)| {
            let mut l = LabelPair::default();
            l.set_name((*name).to_owned());
            l.set_value((*value).to_owned());
            l
        })
        .collect();
    out.sort_by(|a, b| a.name().cmp(b.name()));
    out
}

impl Family {
    fn new(name: &'static str, help: &'static str, kind: MetricType) -> Self {
        Family {
            name,
            help,
            kind,
            metrics: Vec::new(),
        }
    }

    fn gauge(&mut self, pairs: &[(&str, &str)], value: f64) {
        let mut m = Metric::default();
        m.set_label(labels(pairs));
        let mut g = Gauge::default();
        g.set_value(value);
        m.set_gauge(g);
        self.metrics.push(m);
    }

    /// A lead-time summary: p50 and p90 of `count` values summing to `sum`.
    fn summary(&mut self, pairs: &[(&str, &str)], (p50, p90): (f64, f64), count: u64, sum: f64) {
        let mut m = Metric::default();
        m.set_label(labels(pairs));
        let mut s = Summary::default();
        s.set_sample_count(count);
        s.set_sample_sum(sum);
        let quantiles = [(0.5, p50), (0.9, p90)].map(|(q, v)| {
            let mut quantile = Quantile::default();
            quantile.set_quantile(q);
            quantile.set_value(v);
            quantile
        });
        s.set_quantile(quantiles.to_vec());
        m.set_summary(s);
        self.metrics.push(m);
    }

    /// The family, its metrics sorted by their label values (as `Registry::gather` sorts
    /// them); `None` when empty.
    fn finish(mut self) -> Option<MetricFamily> {
        if self.metrics.is_empty() {
            return None;
        }
        self.metrics.sort_by(|a, b| {
            let values = |m: &Metric| {
                m.get_label()
                    .iter()
                    .map(|l| l.value().to_owned())
                    .collect::<Vec<_>>()
            };
            values(a).cmp(&values(b))
        });
        let mut f = MetricFamily::default();
        f.set_name(self.name.to_owned());
        f.set_help(self.help.to_owned());
        f.set_field_type(self.kind);
        f.set_metric(self.metrics);
        Some(f)
    }
}

fn lead(family: &mut Family, pairs: &[(&str, &str)], w: &DeliveryWindow) {
    if let Some(q) = w.lead_time {
        family.summary(pairs, q, w.lead_times, w.lead_time_sum_s);
    }
}

/// Every non-empty delivery family of `snapshot`.
#[allow(clippy::cast_precision_loss)] // counts far below 2^53
pub(crate) fn families(snapshot: &Snapshot) -> Vec<MetricFamily> {
    use MetricType::{GAUGE, SUMMARY};
    let d = &snapshot.delivery;
    let mut deployments = Family::new(
        PRODUCT_DEPLOYMENTS,
        "Production deployments of a product over the window, by status.",
        GAUGE,
    );
    let mut delivered = Family::new(
        PRODUCT_REQUESTS_DELIVERED,
        "Requests first delivered to production over the window, by the product that delivered them.",
        GAUGE,
    );
    let mut product_lead = Family::new(
        PRODUCT_LEAD_TIME,
        "Lead time from request to first production delivery of the requests delivered over the window, in seconds.",
        SUMMARY,
    );
    let mut product_cost = Family::new(
        PRODUCT_DELIVERED_CI_COST,
        "CI cost of every build of the requests delivered over the window, in euros.",
        GAUGE,
    );
    let mut org_deployments = Family::new(
        ORG_DEPLOYMENTS,
        "Production deployments of the organisation over the window, by status.",
        GAUGE,
    );
    let mut org_lead = Family::new(
        ORG_LEAD_TIME,
        "Lead time from request to first production delivery over the window, in seconds.",
        SUMMARY,
    );
    let mut team_lead = Family::new(
        TEAM_LEAD_TIME,
        "Lead time of the requests a team delivered over the window, in seconds; only with delivery.lead_time_by_team.",
        SUMMARY,
    );
    let mut orphans = Family::new(
        TEAM_ORPHAN_REPOSITORIES,
        "Repositories of a team with builds in 28d and no successful production deployment in delivery.orphan_after_days.",
        GAUGE,
    );
    let mut orphan_cost = Family::new(
        TEAM_ORPHAN_COST,
        "CI cost over 28d of a team's orphan repositories, in euros.",
        GAUGE,
    );
    let mut org_orphan_cost = Family::new(
        ORG_ORPHAN_COST,
        "CI cost over 28d of every orphan repository, in euros.",
        GAUGE,
    );
    for p in &d.products {
        let product = p.product.as_str();
        for (window, w) in &p.windows {
            let at = [("product", product), ("window", window.as_str())];
            for (status, n) in [
                ("success", w.deployments_success),
                ("failure", w.deployments_failure),
            ] {
                deployments.gauge(&[at[0], at[1], ("status", status)], n as f64);
            }
            delivered.gauge(&at, w.requests_delivered as f64);
            product_cost.gauge(&at, w.delivered_ci_cost_eur);
            lead(&mut product_lead, &at, w);
        }
    }
    for (window, w) in &d.org {
        for (status, n) in [
            ("success", w.deployments_success),
            ("failure", w.deployments_failure),
        ] {
            org_deployments.gauge(&[("window", window), ("status", status)], n as f64);
        }
        lead(&mut org_lead, &[("window", window)], w);
    }
    for t in &d.team_lead_times {
        team_lead.summary(
            &[
                ("team", &t.team),
                ("product", &t.product),
                ("window", &t.window),
            ],
            (t.p50, t.p90),
            t.count,
            t.sum_s,
        );
    }
    for t in &d.team_orphans {
        let at = [("team", t.team.as_str()), ("product", t.product.as_str())];
        orphans.gauge(&at, t.repositories as f64);
        orphan_cost.gauge(&at, t.cost_eur);
    }
    if d.has_deployments {
        org_orphan_cost.gauge(&[], d.org_orphan_cost_eur);
    }
    [
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
    .into_iter()
    .filter_map(Family::finish)
    .collect()
}

/// A collector of fixed families, for the registry.
pub(crate) struct Fixed(pub Vec<MetricFamily>);

impl Collector for Fixed {
    fn desc(&self) -> Vec<&Desc> {
        Vec::new()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.clone()
    }
}
