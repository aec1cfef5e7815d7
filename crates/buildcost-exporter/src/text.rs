//! The business gauges written straight as Prometheus text (format 0.0.4), in the order the
//! `prometheus` crate's encoder gives them: families by name, each line's labels by name,
//! lines by their label values.

use std::fmt::Write as _;

use buildcost_model::{Status, WasteClass};
use buildcost_query::Snapshot;

use crate::names::*;

pub(crate) const HELP_TEAM_COST: &str = "CI cost of a team over the window, in euros.";
pub(crate) const HELP_TEAM_WASTE_COST: &str =
    "CI cost of a team's wasted builds over the window, by waste class, in euros.";
pub(crate) const HELP_TEAM_BUILDS: &str = "Builds of a team over the window, by status.";
pub(crate) const HELP_TEAM_DEVELOPERS: &str =
    "Developers in a team (teams file, else distinct builders in the baseline window).";
pub(crate) const HELP_TEAM_COST_PER_DEVELOPER: &str =
    "CI cost per developer over the baseline window (28d), in euros.";
pub(crate) const HELP_TEAM_EXPECTED_COST: &str = "Cost a team of this size is expected to have over 28d (peer-group median), with its lower and upper band, in euros.";
pub(crate) const HELP_TEAM_DEVIATION_ZSCORE: &str =
    "Robust z-score of the team's log cost per developer within its peer group (28d).";
pub(crate) const HELP_TEAM_BASELINE_STATUS: &str =
    "Team against its band: -1 below, 0 within, 1 above.";
pub(crate) const HELP_ORG_COST: &str = "CI cost of the organisation over the window, in euros.";
pub(crate) const HELP_ORG_WASTE_COST: &str =
    "CI cost of wasted builds over the window, by waste class, in euros.";
pub(crate) const HELP_ORG_BUILDS: &str = "Builds of the organisation over the window.";
pub(crate) const HELP_ORG_DEVELOPERS: &str =
    "Developers of the organisation: the sum of team sizes over teams with builds in 28d.";
pub(crate) const HELP_NORTHSTAR: &str =
    "Northstar: cost of avoidable failures (syntax, compile, lint, format) / total cost.";
pub(crate) const HELP_ORG_WASTE_RATIO: &str = "Cost of every waste class / total cost.";
pub(crate) const HELP_BUILDS_PER_DEVELOPER_PER_DAY: &str = "Builds per developer per day over 28d.";

/// One gauge family: its label names sorted, and its samples' values in that order.
struct Family<'a> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    samples: Vec<([&'a str; 4], f64)>,
}

impl<'a> Family<'a> {
    fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Family {
            name,
            help,
            labels,
            samples: Vec::new(),
        }
    }

    /// A sample; `values` in the order of the sorted label names.
    fn add(&mut self, values: &[&'a str], value: f64) {
        let mut v = [""; 4];
        v[..values.len()].copy_from_slice(values);
        self.samples.push((v, value));
    }

    fn write(mut self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let n = self.labels.len();
        self.samples.sort_by(|a, b| a.0[..n].cmp(&b.0[..n]));
        out.push_str("# HELP ");
        out.push_str(self.name);
        out.push(' ');
        escape(out, self.help, false);
        out.push_str("\n# TYPE ");
        out.push_str(self.name);
        out.push_str(" gauge\n");
        for (values, value) in &self.samples {
            out.push_str(self.name);
            if n > 0 {
                for (i, (label, v)) in self.labels.iter().zip(values).enumerate() {
                    out.push(if i == 0 { '{' } else { ',' });
                    out.push_str(label);
                    out.push_str("=\"");
                    escape(out, v, true);
                    out.push('"');
                }
                out.push('}');
            }
            // As the crate writes it: Rust's shortest round-trip form of the f64.
            let _ = write!(out, " {value}");
            out.push('\n');
        }
    }
}

/// The text format's escapes: backslash and newline, and in label values the double quote.
fn escape(out: &mut String, text: &str, quote: bool) {
    if !text.contains(['\\', '\n', '"']) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            _ => out.push(c),
        }
    }
}

/// Every business gauge of `snapshot` (spec section 8) as Prometheus text.
#[allow(clippy::cast_precision_loss)] // counts far below 2^53
pub(crate) fn business(snapshot: &Snapshot) -> String {
    let mut team_cost = Family::new(TEAM_COST, HELP_TEAM_COST, &["product", "team", "window"]);
    let mut team_waste = Family::new(
        TEAM_WASTE_COST,
        HELP_TEAM_WASTE_COST,
        &["product", "team", "waste_class", "window"],
    );
    let mut team_builds = Family::new(
        TEAM_BUILDS,
        HELP_TEAM_BUILDS,
        &["product", "status", "team", "window"],
    );
    let mut team_devs = Family::new(TEAM_DEVELOPERS, HELP_TEAM_DEVELOPERS, &["product", "team"]);
    let mut team_cpd = Family::new(
        TEAM_COST_PER_DEVELOPER,
        HELP_TEAM_COST_PER_DEVELOPER,
        &["product", "team"],
    );
    let mut team_expected = Family::new(
        TEAM_EXPECTED_COST,
        HELP_TEAM_EXPECTED_COST,
        &["bound", "product", "team"],
    );
    let mut team_z = Family::new(
        TEAM_DEVIATION_ZSCORE,
        HELP_TEAM_DEVIATION_ZSCORE,
        &["peer_group", "product", "team"],
    );
    let mut team_status = Family::new(
        TEAM_BASELINE_STATUS,
        HELP_TEAM_BASELINE_STATUS,
        &["product", "team"],
    );
    let mut org_cost = Family::new(ORG_COST, HELP_ORG_COST, &["window"]);
    let mut org_waste = Family::new(
        ORG_WASTE_COST,
        HELP_ORG_WASTE_COST,
        &["waste_class", "window"],
    );
    let mut org_builds = Family::new(ORG_BUILDS, HELP_ORG_BUILDS, &["window"]);
    let mut org_devs = Family::new(ORG_DEVELOPERS, HELP_ORG_DEVELOPERS, &[]);
    let mut northstar = Family::new(NORTHSTAR, HELP_NORTHSTAR, &["window"]);
    let mut waste_ratio = Family::new(ORG_WASTE_RATIO, HELP_ORG_WASTE_RATIO, &["window"]);
    let mut bpd = Family::new(
        BUILDS_PER_DEVELOPER_PER_DAY,
        HELP_BUILDS_PER_DEVELOPER_PER_DAY,
        &["window"],
    );

    for t in &snapshot.teams {
        let (team, product) = (t.team.as_str(), t.product.as_str());
        for (window, w) in &t.windows {
            team_cost.add(&[product, team, window], w.cost_eur);
            for class in WasteClass::WASTE {
                team_waste.add(
                    &[product, team, class.as_str(), window],
                    w.waste_cost(*class),
                );
            }
            for (i, status) in Status::ALL.iter().enumerate() {
                team_builds.add(
                    &[product, status.as_str(), team, window],
                    w.builds_by_status[i] as f64,
                );
            }
        }
        if t.is_small_teams() {
            continue;
        }
        if let Some(n) = t.developers {
            team_devs.add(&[product, team], n as f64);
        }
        if let Some(b) = &t.baseline {
            team_cpd.add(&[product, team], b.cost_per_developer_eur);
            team_expected.add(&["expected", product, team], b.expected_eur);
            team_expected.add(&["lower", product, team], b.lower_eur);
            team_expected.add(&["upper", product, team], b.upper_eur);
            team_z.add(&[b.peer_group.as_str(), product, team], b.zscore);
            team_status.add(&[product, team], f64::from(b.status_value()));
        }
    }
    for (window, w) in &snapshot.org.windows {
        org_cost.add(&[window], w.cost_eur);
        for class in WasteClass::WASTE {
            org_waste.add(&[class.as_str(), window], w.waste_cost(*class));
        }
        org_builds.add(&[window], w.builds() as f64);
        northstar.add(&[window], snapshot.org.northstar(window));
        waste_ratio.add(&[window], snapshot.org.waste_ratio(window));
    }
    org_devs.add(&[], snapshot.org.developers as f64);
    if let Some(v) = snapshot.org.builds_per_developer_per_day() {
        bpd.add(&["28d"], v);
    }

    let mut families = vec![
        team_cost,
        team_waste,
        team_builds,
        team_devs,
        team_cpd,
        team_expected,
        team_z,
        team_status,
        org_cost,
        org_waste,
        org_builds,
        org_devs,
        northstar,
        waste_ratio,
        bpd,
    ];
    families.sort_by_key(|f| f.name);
    let lines: usize = families.iter().map(|f| f.samples.len()).sum();
    // Each family's text by name; the delivery families (few series) through the crate's own
    // encoder, so the registry's text and this one are the same bytes.
    let mut texts: Vec<(String, String)> = families
        .into_iter()
        .map(|f| {
            let mut text = String::with_capacity(f.samples.len() * 110);
            let name = f.name.to_owned();
            f.write(&mut text);
            (name, text)
        })
        .collect();
    let encoder = prometheus::TextEncoder::new();
    for family in crate::delivery::families(snapshot) {
        let mut text = String::new();
        // Encoding a well-formed family into a String cannot fail.
        if encoder
            .encode_utf8(std::slice::from_ref(&family), &mut text)
            .is_ok()
        {
            texts.push((family.name().to_owned(), text));
        }
    }
    texts.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::with_capacity(lines * 110);
    for (_, text) in texts {
        out.push_str(&text);
    }
    out
}
