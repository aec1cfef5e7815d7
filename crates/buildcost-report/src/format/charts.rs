//! The charts of the HTML reports, drawn by plotters as inline SVG (no fonts, no files: text is
//! laid out by the browser).

use plotters::prelude::*;

use crate::contents::{Summary, TeamReport, WeekFigures};
use crate::numbers::eur;
use crate::{Error, Result};

const COST: RGBColor = RGBColor(0x4c, 0x72, 0xb0);
const AVOIDABLE: RGBColor = RGBColor(0xdd, 0x84, 0x52);
const BAND: RGBColor = RGBColor(0xc8, 0xdc, 0xc8);
const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
const FONT: &str = "sans-serif";

fn chart_err(e: impl std::fmt::Display) -> Error {
    Error::Chart(e.to_string())
}

/// `€12k`, `€1.2M`: short euro labels for axes.
fn eur_short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("€{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("€{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("€{:.1}k", v / 1e3)
    } else {
        format!("€{v:.0}")
    }
}

/// The top of a value axis: room above the tallest bar for the legend.
fn headroom(max: f64) -> f64 {
    if max > 0.0 {
        max * 1.3
    } else {
        1.0
    }
}

/// The last index of `n` bars: a segmented `0..last` axis has exactly `n` segments.
fn last_index(n: usize) -> u32 {
    u32::try_from(n.saturating_sub(1)).unwrap_or(0)
}

/// Bars of the weekly cost with the avoidable-failure part drawn over them.
fn cost_trend(weeks: &[&WeekFigures], caption: &str) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let last = last_index(weeks.len());
        let max = weeks.iter().map(|w| w.cost_eur).fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 16).into_font().color(&INK))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(64)
            .build_cartesian_2d((0..last).into_segmented(), 0.0..headroom(max))
            .map_err(chart_err)?;
        let labels: Vec<String> = weeks.iter().map(|w| w.week.to_string()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(weeks.len().max(1))
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_labels(5)
            .y_label_formatter(&|v| eur_short(*v))
            .label_style((FONT, 11).into_font().color(&INK))
            .draw()
            .map_err(chart_err)?;
        // One histogram per bar: plotters' histogram sums its data in a hash map and draws
        // the bars in that map's (random) order, which made the same report differ by byte.
        let cost: Vec<_> = weeks
            .iter()
            .enumerate()
            .flat_map(|(i, w)| {
                Histogram::vertical(&chart)
                    .style(COST.filled())
                    .margin(6)
                    .data([(i as u32, w.cost_eur)])
            })
            .collect();
        chart
            .draw_series(cost)
            .map_err(chart_err)?
            .label("cost")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], COST.filled()));
        let avoidable: Vec<_> = weeks
            .iter()
            .enumerate()
            .flat_map(|(i, w)| {
                Histogram::vertical(&chart)
                    .style(AVOIDABLE.filled())
                    .margin(6)
                    .data([(i as u32, w.avoidable_eur)])
            })
            .collect();
        chart
            .draw_series(avoidable)
            .map_err(chart_err)?
            .label("of which avoidable failures")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], AVOIDABLE.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperMiddle)
            .label_font((FONT, 11).into_font().color(&INK))
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(chart_err)?;
        root.present().map_err(chart_err)?;
    }
    Ok(svg)
}

/// Where the team's cost per developer sits in its peer band.
fn band(report: &TeamReport) -> Result<Option<String>> {
    let Some(b) = report.this_week.baseline.as_ref() else {
        return Ok(None);
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 120)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let max = headroom(
            b.upper_per_developer_eur
                .max(b.cost_per_developer_eur)
                .max(1.0),
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Cost per developer, {} days, against peer group {}",
                    b.window_days, b.peer_group
                ),
                (FONT, 14).into_font().color(&INK),
            )
            .margin(8)
            .x_label_area_size(24)
            .build_cartesian_2d(0.0..max, 0.0..1.0)
            .map_err(chart_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_labels(6)
            .x_label_formatter(&|v| eur_short(*v))
            .label_style((FONT, 11).into_font().color(&INK))
            .draw()
            .map_err(chart_err)?;
        let (lo, hi, mid, own) = (
            b.lower_per_developer_eur,
            b.upper_per_developer_eur,
            b.expected_per_developer_eur,
            b.cost_per_developer_eur,
        );
        chart
            .draw_series([Rectangle::new([(lo, 0.4), (hi, 0.8)], BAND.filled())])
            .map_err(chart_err)?;
        chart
            .draw_series([PathElement::new(
                vec![(mid, 0.35), (mid, 0.85)],
                INK.stroke_width(2),
            )])
            .map_err(chart_err)?;
        chart
            .draw_series([Text::new(
                format!(
                    "normal range {} to {}, expected {}",
                    eur(lo),
                    eur(hi),
                    eur(mid)
                ),
                (lo, 0.3),
                (FONT, 11).into_font().color(&INK),
            )])
            .map_err(chart_err)?;
        let marker = if b.status == "above" { AVOIDABLE } else { COST };
        chart
            .draw_series([Circle::new((own, 0.6), 7, marker.filled())])
            .map_err(chart_err)?;
        chart
            .draw_series([Text::new(
                format!("team {}", eur(own)),
                (own, 0.95),
                (FONT, 12).into_font().color(&INK),
            )])
            .map_err(chart_err)?;
        root.present().map_err(chart_err)?;
    }
    Ok(Some(svg))
}

/// Horizontal bars of the waste classes.
fn waste(w: &WeekFigures, caption: &str) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 240)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let last = last_index(w.waste.len());
        let max = w.waste.iter().map(|l| l.cost_eur).fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 16).into_font().color(&INK))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(180)
            .build_cartesian_2d(0.0..headroom(max), (0..last).into_segmented())
            .map_err(chart_err)?;
        // The first class at the top.
        let labels: Vec<String> = w
            .waste
            .iter()
            .rev()
            .map(|l| format!("{} ({})", l.waste_class, l.owner))
            .collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(w.waste.len().max(1))
            .y_label_formatter(&|y: &SegmentValue<u32>| match y {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_labels(6)
            .x_label_formatter(&|v| eur_short(*v))
            .label_style((FONT, 11).into_font().color(&INK))
            .draw()
            .map_err(chart_err)?;
        let bars: Vec<_> = w
            .waste
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                Histogram::horizontal(&chart)
                    .style(COST.filled())
                    .margin(4)
                    .data([(last.saturating_sub(i as u32), l.cost_eur)])
            })
            .collect();
        chart.draw_series(bars).map_err(chart_err)?;
        root.present().map_err(chart_err)?;
    }
    Ok(svg)
}

/// The team report's charts: 0 the cost trend, 1 the band (when it has one).
pub fn team(r: &TeamReport) -> Result<Vec<String>> {
    let weeks: Vec<&WeekFigures> = r.weeks.iter().map(|w| &w.figures).collect();
    let mut out = vec![cost_trend(&weeks, "Cost per week")?];
    if let Some(svg) = band(r)? {
        out.push(svg);
    }
    Ok(out)
}

/// The summary's charts: 0 the org cost trend, 1 the waste by class.
pub fn summary(s: &Summary) -> Result<Vec<String>> {
    let weeks: Vec<&WeekFigures> = s.weeks.iter().map(|w| &w.figures).collect();
    Ok(vec![
        cost_trend(&weeks, "Org CI cost per week")?,
        waste(&s.org.figures, "Waste by class this week")?,
    ])
}
