//! What a delivered message says (spec section 14): the week's cost to the cent, the change
//! against the week before, the band status and a link to the full report — as an e-mail
//! (HTML that Outlook renders: tables and inline styles, no stylesheet, no image, no script;
//! the CSV attached), a Microsoft Teams Adaptive Card 1.4, or Slack blocks.
//!
//! Messages are built from the report's figures only: a report never holds an author or a
//! pseudonym, and the summary's team rows are privacy-merged already.

use serde_json::{json, Value};

use crate::contents::{TeamReport, TeamWeek, WeeklyReport};
use crate::numbers::{count, eur, percent};
use crate::IsoWeek;

/// The facts of one report, as every kind of message shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// `summary` or the team's name.
    pub report: String,
    pub week: IsoWeek,
    pub title: String,
    pub cost_eur: f64,
    /// The cost of the week before, when there is one.
    pub previous_eur: Option<f64>,
    /// `above`, `within`, `below` or `no_baseline`; for the summary, the teams above their
    /// band (`3 teams above their band`).
    pub status: String,
    /// Labelled values, formatted.
    pub facts: Vec<(String, String)>,
    /// The weeks of the trend, oldest first: (week, cost).
    pub trend: Vec<(IsoWeek, f64)>,
    /// The full report.
    pub link: Option<String>,
}

/// The change from `previous` to `now`: `+€12.30 (+4.1 %)`, or `no week before`.
pub fn change(now: f64, previous: Option<f64>) -> String {
    match previous {
        None => "no week before to compare with".into(),
        Some(p) => {
            let delta = now - p;
            let sign = if (delta * 100.0).round() > 0.0 {
                "+"
            } else {
                ""
            };
            if p > 0.0 {
                format!("{sign}{} ({sign}{})", eur(delta), percent(delta / p))
            } else {
                format!("{sign}{}", eur(delta))
            }
        }
    }
}

fn status_text(week: &TeamWeek) -> String {
    match &week.baseline {
        Some(b) => format!(
            "{} its normal range ({}–{} over {} days, z = {:.2})",
            match b.status.as_str() {
                "above" => "above",
                "below" => "below",
                _ => "within",
            },
            eur(b.lower_eur),
            eur(b.upper_eur),
            b.window_days,
            b.zscore
        ),
        None => "no band: too few peer teams of its size".into(),
    }
}

fn link(base: Option<&str>, week: IsoWeek, stem: &str) -> Option<String> {
    base.map(|b| format!("{}/{week}/{stem}.html", b.trim_end_matches('/')))
}

impl Digest {
    /// The digest of a team's report; `base` is `delivery.report_base_url`.
    pub fn team(report: &TeamReport, base: Option<&str>) -> Self {
        let w = &report.this_week;
        let previous = report
            .weeks
            .iter()
            .rev()
            .find(|x| x.figures.week < report.week)
            .filter(|x| x.figures.week == report.week.minus(1))
            .map(|x| x.figures.cost_eur);
        let mut facts = vec![
            ("Cost this week".to_owned(), eur(w.figures.cost_eur)),
            ("Change".to_owned(), change(w.figures.cost_eur, previous)),
            ("Band".to_owned(), status_text(w)),
            ("Builds".to_owned(), count(w.figures.builds)),
            (
                "Waste".to_owned(),
                format!(
                    "{} ({} of the cost)",
                    eur(w.figures.waste_eur),
                    percent(crate::contents::ratio(
                        w.figures.waste_eur,
                        w.figures.cost_eur
                    ))
                ),
            ),
        ];
        if !report.orphan_repositories.is_empty() {
            let cost: f64 = report
                .orphan_repositories
                .iter()
                .map(|o| o.cost_28d_eur)
                .sum();
            facts.push((
                "Orphan repositories".to_owned(),
                format!(
                    "{} with builds and no production deployment: {} over 28 days",
                    report.orphan_repositories.len(),
                    eur(cost)
                ),
            ));
        }
        Digest {
            report: report.team.clone(),
            week: report.week,
            title: format!("{}: CI cost in {}", report.team, report.week),
            cost_eur: w.figures.cost_eur,
            previous_eur: previous,
            status: w
                .baseline
                .as_ref()
                .map_or_else(|| "no_baseline".to_owned(), |b| b.status.clone()),
            facts,
            trend: report
                .weeks
                .iter()
                .map(|x| (x.figures.week, x.figures.cost_eur))
                .collect(),
            link: link(base, report.week, &report.file_stem()),
        }
    }

    /// The digest of the directors' summary.
    pub fn summary(report: &WeeklyReport, base: Option<&str>) -> Self {
        let s = &report.summary;
        let org = &s.org.figures;
        let previous = s
            .weeks
            .iter()
            .find(|w| w.figures.week == report.week.minus(1))
            .map(|w| w.figures.cost_eur);
        let above = s.teams_above_band.len();
        let mut facts = vec![
            ("CI cost this week".to_owned(), eur(org.cost_eur)),
            ("Change".to_owned(), change(org.cost_eur, previous)),
            (
                "Northstar".to_owned(),
                format!(
                    "{} in builds that failed on avoidable errors ({} of the cost)",
                    eur(org.avoidable_eur),
                    percent(crate::contents::ratio(org.avoidable_eur, org.cost_eur))
                ),
            ),
            (
                "Waste".to_owned(),
                format!(
                    "{} ({} of the cost)",
                    eur(org.waste_eur),
                    percent(crate::contents::ratio(org.waste_eur, org.cost_eur))
                ),
            ),
            (
                "Teams above their band".to_owned(),
                if above == 0 {
                    "none".to_owned()
                } else {
                    s.teams_above_band
                        .iter()
                        .take(5)
                        .map(|t| format!("{} (+{})", t.team, eur(t.above_upper_eur)))
                        .collect::<Vec<_>>()
                        .join(", ")
                        + if above > 5 { ", …" } else { "" }
                },
            ),
        ];
        if let Some(d) = &s.delivery {
            facts.push((
                "Requests delivered".to_owned(),
                match &d.lead_time {
                    Some(l) => format!(
                        "{} to production; lead time p50 {}, p90 {}",
                        count(d.requests_delivered),
                        crate::format::duration(l.p50_s),
                        crate::format::duration(l.p90_s)
                    ),
                    None => format!("{} to production", count(d.requests_delivered)),
                },
            ));
            facts.push((
                "Orphan repositories".to_owned(),
                format!(
                    "{}: {} over 28 days ({} of CI cost)",
                    count(d.orphan_repositories),
                    eur(d.orphan_cost_28d_eur),
                    percent(d.orphan_cost_share)
                ),
            ));
        }
        Digest {
            report: "summary".into(),
            week: report.week,
            title: format!("CI cost of the organisation in {}", report.week),
            cost_eur: org.cost_eur,
            previous_eur: previous,
            status: format!(
                "{above} team{} above {} band",
                if above == 1 { "" } else { "s" },
                if above == 1 { "its" } else { "their" }
            ),
            facts,
            trend: s
                .weeks
                .iter()
                .map(|w| (w.figures.week, w.figures.cost_eur))
                .collect(),
            link: link(base, report.week, "summary"),
        }
    }

    /// The subject of an e-mail, the header of a card.
    pub fn headline(&self) -> String {
        format!(
            "{} — {}, {}",
            self.title,
            eur(self.cost_eur),
            match self.status.as_str() {
                "above" => "above its normal range".to_owned(),
                "within" => "within its normal range".to_owned(),
                "below" => "below its normal range".to_owned(),
                "no_baseline" => "no band".to_owned(),
                other => other.to_owned(),
            }
        )
    }

    /// The plain-text version (e-mail alternative, Slack fallback).
    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n", self.headline());
        for (k, v) in &self.facts {
            out.push_str(&format!("{k}: {v}\n"));
        }
        if let Some(l) = &self.link {
            out.push_str(&format!("\nThe full report: {l}\n"));
        }
        out
    }
}

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The e-mail's HTML: one centred table, inline styles only, the trend drawn as table cells.
pub fn email_html(d: &Digest) -> String {
    const FONT: &str = "font-family:Segoe UI,Helvetica,Arial,sans-serif;";
    let colour = match d.status.as_str() {
        "above" => "#b3261e",
        "below" => "#0b6e4f",
        _ => "#1b1b1b",
    };
    let mut rows = String::new();
    for (k, v) in &d.facts {
        rows.push_str(&format!(
            "<tr><td style=\"{FONT}font-size:14px;color:#555555;padding:4px 12px 4px 0;vertical-align:top;white-space:nowrap\">{}</td>\
<td style=\"{FONT}font-size:14px;color:#1b1b1b;padding:4px 0\">{}</td></tr>\n",
            esc(k),
            esc(v)
        ));
    }
    let max = d.trend.iter().map(|(_, c)| *c).fold(0.0_f64, f64::max);
    let mut trend = String::new();
    for (week, cost) in &d.trend {
        let width = if max > 0.0 {
            ((cost / max) * 300.0).round().max(1.0) as u32
        } else {
            1
        };
        trend.push_str(&format!(
            "<tr><td style=\"{FONT}font-size:12px;color:#555555;padding:2px 8px 2px 0;white-space:nowrap\">{week}</td>\
<td style=\"padding:2px 0\"><table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\"><tr>\
<td width=\"{width}\" height=\"12\" bgcolor=\"#0b5cad\" style=\"width:{width}px;height:12px;background-color:#0b5cad;font-size:0;line-height:0\">&nbsp;</td>\
</tr></table></td>\
<td style=\"{FONT}font-size:12px;color:#1b1b1b;padding:2px 0 2px 8px;text-align:right;white-space:nowrap\">{}</td></tr>\n",
            esc(&eur(*cost))
        ));
    }
    let button = d.link.as_ref().map_or_else(String::new, |l| {
        format!(
            "<p style=\"{FONT}font-size:14px;margin:20px 0 0 0\"><a href=\"{}\" style=\"color:#ffffff;background-color:#0b5cad;padding:8px 16px;text-decoration:none;border-radius:3px\">Open the full report</a></p>",
            esc(l)
        )
    });
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head>\n\
<body style=\"margin:0;padding:0;background-color:#f3f3f3\">\n\
<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" bgcolor=\"#f3f3f3\"><tr><td align=\"center\" style=\"padding:24px\">\n\
<table role=\"presentation\" width=\"600\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" bgcolor=\"#ffffff\" style=\"width:600px;background-color:#ffffff;border:1px solid #dddddd\"><tr><td style=\"padding:24px\">\n\
<h1 style=\"{FONT}font-size:20px;color:#1b1b1b;margin:0 0 8px 0\">{title}</h1>\n\
<p style=\"{FONT}font-size:28px;font-weight:bold;color:{colour};margin:0 0 16px 0\">{cost}</p>\n\
<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\">\n{rows}</table>\n\
<h2 style=\"{FONT}font-size:16px;color:#1b1b1b;margin:20px 0 8px 0\">Cost per week</h2>\n\
<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\">\n{trend}</table>\n{button}\n\
<p style=\"{FONT}font-size:12px;color:#777777;margin:20px 0 0 0\">From buildcost. The figures of every week are in the attached CSV. Teams below the minimum size are only counted in merged rows.</p>\n\
</td></tr></table>\n</td></tr></table>\n</body></html>\n",
        title = esc(&d.title),
        cost = esc(&eur(d.cost_eur)),
    )
}

/// The Adaptive Card 1.4 of a digest.
pub fn adaptive_card(d: &Digest) -> Value {
    let colour = match d.status.as_str() {
        "above" => "Attention",
        "below" => "Good",
        _ => "Default",
    };
    let mut actions = Vec::new();
    if let Some(l) = &d.link {
        actions.push(json!({"type": "Action.OpenUrl", "title": "Open the full report", "url": l}));
    }
    let mut card = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": d.title, "size": "Medium", "weight": "Bolder", "wrap": true},
            {"type": "TextBlock", "text": eur(d.cost_eur), "size": "ExtraLarge", "weight": "Bolder", "color": colour, "spacing": "Small"},
            {"type": "FactSet", "facts": d.facts.iter().map(|(k, v)| json!({"title": k, "value": v})).collect::<Vec<_>>()},
        ],
    });
    if !actions.is_empty() {
        card["actions"] = Value::Array(actions);
    }
    card
}

/// What a Teams Workflows webhook is sent: the card in a `message` with `attachments`, or the
/// bare card (`teams_bare_card`).
pub fn teams_payload(d: &Digest, bare: bool) -> Value {
    let card = adaptive_card(d);
    if bare {
        return card;
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// What a Slack incoming webhook is sent: blocks, and a plain-text fallback.
pub fn slack_payload(d: &Digest) -> Value {
    let header: String = d.title.chars().take(150).collect();
    let fields: Vec<Value> = d
        .facts
        .iter()
        .take(10)
        .map(|(k, v)| {
            let text: String = format!("*{}*\n{}", slack_escape(k), slack_escape(v))
                .chars()
                .take(2000)
                .collect();
            json!({"type": "mrkdwn", "text": text})
        })
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*", slack_escape(&d.headline()))}}),
        json!({"type": "section", "fields": fields}),
    ];
    if let Some(l) = &d.link {
        blocks.push(json!({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": "Open the full report"}, "url": l,
        }]}));
    }
    json!({"text": d.headline(), "blocks": blocks})
}

/// Slack's three control characters of mrkdwn.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
