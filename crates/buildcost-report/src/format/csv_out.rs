//! CSV for spreadsheets: one row per team-week, raw figures (no currency sign, no rounding).

use buildcost_model::{Status, WasteClass};

use crate::contents::{Summary, TeamReport, TeamWeek};
use crate::{Error, Result};

fn headers() -> Vec<String> {
    let mut h: Vec<String> = [
        "week",
        "week_start",
        "week_end",
        "team",
        "product",
        "developers",
        "cost_eur",
        "builds",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    h.extend(Status::ALL.iter().map(|s| format!("builds_{}", s.as_str())));
    h.extend(
        WasteClass::WASTE
            .iter()
            .map(|c| format!("waste_{}_eur", c.as_str())),
    );
    h.extend(
        [
            "waste_eur",
            "developer_waste_eur",
            "platform_waste_eur",
            "waste_ratio",
            "avoidable_eur",
            "avoidable_share",
            "builds_per_developer_per_day",
            "cost_per_developer_eur",
            "peer_group",
            "baseline_window_days",
            "baseline_cost_eur",
            "baseline_cost_per_developer_eur",
            "expected_eur",
            "lower_eur",
            "upper_eur",
            "zscore",
            "status",
        ]
        .iter()
        .map(|s| (*s).to_owned()),
    );
    h
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn row(team: &str, product: &str, t: &TeamWeek) -> Vec<String> {
    let w = &t.figures;
    let mut r = vec![
        w.week.to_string(),
        w.start.clone(),
        w.end.clone(),
        team.to_owned(),
        product.to_owned(),
        t.developers.map(|n| n.to_string()).unwrap_or_default(),
        w.cost_eur.to_string(),
        w.builds.to_string(),
    ];
    r.extend(Status::ALL.iter().map(|s| w.status_builds(*s).to_string()));
    r.extend(
        WasteClass::WASTE
            .iter()
            .map(|c| w.waste_cost(*c).to_string()),
    );
    let b = t.baseline.as_ref();
    r.extend([
        w.waste_eur.to_string(),
        w.developer_waste_eur.to_string(),
        w.platform_waste_eur.to_string(),
        w.waste_ratio.to_string(),
        w.avoidable_eur.to_string(),
        w.avoidable_share.to_string(),
        opt(t.builds_per_developer_per_day),
        opt(t.cost_per_developer_eur),
        b.map(|b| b.peer_group.clone()).unwrap_or_default(),
        b.map(|b| b.window_days.to_string()).unwrap_or_default(),
        opt(b.map(|b| b.cost_eur)),
        opt(b.map(|b| b.cost_per_developer_eur)),
        opt(b.map(|b| b.expected_eur)),
        opt(b.map(|b| b.lower_eur)),
        opt(b.map(|b| b.upper_eur)),
        opt(b.map(|b| b.zscore)),
        b.map(|b| b.status.clone()).unwrap_or_default(),
    ]);
    r
}

fn write(rows: impl Iterator<Item = Vec<String>>) -> Result<String> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::Encode(e.to_string());
    out.write_record(headers()).map_err(err)?;
    for r in rows {
        out.write_record(r).map_err(err)?;
    }
    let bytes = out.into_inner().map_err(|e| Error::Encode(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| Error::Encode(e.to_string()))
}

/// A team's weeks (the trend), one row each.
pub fn team(r: &TeamReport) -> Result<String> {
    write(r.weeks.iter().map(|w| row(&r.team, &r.product, w)))
}

/// Every team row of the week, one row each, then the org as team `_org`, product `_all`.
pub fn summary(s: &Summary) -> Result<String> {
    let devs = (s.org.developers > 0).then_some(s.org.developers as f64);
    let org = TeamWeek {
        figures: s.org.figures.clone(),
        developers: Some(s.org.developers),
        builds_per_developer_per_day: s.org.builds_per_developer_per_day,
        cost_per_developer_eur: devs.map(|n| s.org.figures.cost_eur / n),
        baseline: None,
    };
    write(
        s.teams
            .iter()
            .map(|t| row(&t.team, &t.product, &t.week))
            .chain(std::iter::once(row("_org", "_all", &org))),
    )
}
