//! What a team lead and a director read, as a small document model both Markdown and HTML
//! render.

use crate::contents::{
    LeadTimeLine, OrgWeek, PipelineLine, TeamReport, TeamWeek, WeekFigures, WeeklyReport,
};
use crate::numbers::{count, decimal, eur, percent};
use crate::week::IsoWeek;

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A block of a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Heading(u8, String),
    Paragraph(String),
    /// A note in small print.
    Note(String),
    Table {
        headers: Vec<String>,
        align: Vec<Align>,
        rows: Vec<Vec<String>>,
    },
    Bullets(Vec<String>),
    /// The chart of this index in the report's chart list (HTML only).
    Chart(usize),
}

/// A report as blocks, with its title.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub title: String,
    pub blocks: Vec<Block>,
}

fn text_table(headers: &[&str], text_columns: usize, rows: Vec<Vec<String>>) -> Block {
    let align = (0..headers.len())
        .map(|i| {
            if i < text_columns {
                Align::Left
            } else {
                Align::Right
            }
        })
        .collect();
    Block::Table {
        headers: headers.iter().map(|h| (*h).to_owned()).collect(),
        align,
        rows,
    }
}

/// `1 build`, `2 builds`.
pub fn builds(n: u64) -> String {
    format!("{} build{}", count(n), if n == 1 { "" } else { "s" })
}

/// `16–22 Nov 2026`.
pub fn week_span(week: IsoWeek) -> String {
    let (mon, sun) = (week.monday(), week.sunday());
    if mon.format("%Y%m").to_string() == sun.format("%Y%m").to_string() {
        format!("{}–{}", mon.format("%-d"), sun.format("%-d %b %Y"))
    } else if mon.format("%Y").to_string() == sun.format("%Y").to_string() {
        format!("{} – {}", mon.format("%-d %b"), sun.format("%-d %b %Y"))
    } else {
        format!("{} – {}", mon.format("%-d %b %Y"), sun.format("%-d %b %Y"))
    }
}

fn builds_line(w: &WeekFigures) -> String {
    let parts: Vec<String> = w
        .builds_by_status
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| format!("{} {s}", count(*n)))
        .collect();
    if parts.is_empty() {
        count(w.builds)
    } else {
        format!("{} ({})", count(w.builds), parts.join(", "))
    }
}

fn waste_table(w: &WeekFigures) -> Block {
    let mut rows: Vec<Vec<String>> = w
        .waste
        .iter()
        .map(|l| {
            vec![
                l.waste_class.to_owned(),
                l.owner.to_owned(),
                count(l.builds),
                eur(l.cost_eur),
                percent(if w.cost_eur > 0.0 {
                    l.cost_eur / w.cost_eur
                } else {
                    0.0
                }),
            ]
        })
        .collect();
    rows.push(vec![
        "all waste".into(),
        String::new(),
        count(w.waste.iter().map(|l| l.builds).sum()),
        eur(w.waste_eur),
        percent(w.waste_ratio),
    ]);
    text_table(
        &["Waste class", "Owner", "Builds", "Cost", "Share of cost"],
        2,
        rows,
    )
}

fn pipeline_table(lines: &[PipelineLine]) -> Block {
    text_table(
        &[
            "Repository",
            "Pipeline",
            "Builds",
            "Cost",
            "Avoidable failures",
            "Their cost",
        ],
        2,
        lines
            .iter()
            .map(|p| {
                vec![
                    p.repository.clone(),
                    p.pipeline.clone(),
                    count(p.builds),
                    eur(p.cost_eur),
                    count(p.avoidable_failures),
                    eur(p.avoidable_eur),
                ]
            })
            .collect(),
    )
}

fn change(now: f64, before: Option<f64>) -> String {
    match before {
        Some(b) if b > 0.0 => {
            let r = (now - b) / b;
            format!("{}{}", if r > 0.0 { "+" } else { "" }, percent(r))
        }
        _ => "–".into(),
    }
}

fn trend_rows(weeks: &[&WeekFigures]) -> Vec<Vec<String>> {
    weeks
        .iter()
        .map(|w| {
            vec![
                w.week.to_string(),
                eur(w.cost_eur),
                count(w.builds),
                eur(w.waste_eur),
                eur(w.avoidable_eur),
                percent(w.avoidable_share),
            ]
        })
        .collect()
}

const TREND_HEADERS: &[&str] = &[
    "Week",
    "Cost",
    "Builds",
    "Waste",
    "Avoidable failures",
    "Avoidable share",
];

/// The team report.
pub fn team_doc(r: &TeamReport) -> Doc {
    let t = &r.this_week;
    let w = &t.figures;
    let title = if r.small_teams && r.product == buildcost_query::ALL_PRODUCTS {
        format!("Small teams, all products — CI cost, week {}", r.week)
    } else if r.small_teams {
        format!("Small teams of {} — CI cost, week {}", r.product, r.week)
    } else {
        format!("Team {} — CI cost, week {}", r.team, r.week)
    };
    let mut blocks = Vec::new();
    let who = match t.developers {
        Some(n) => format!("Product {} · {} developers", r.product, count(n)),
        None => format!(
            "Product {} · teams below the minimum size, merged so that no small team (and no \
             person) can be singled out; their pipelines are not listed",
            r.product
        ),
    };
    blocks.push(Block::Paragraph(format!(
        "{who} · {} (UTC). Showback, not chargeback: these figures are for steering, not \
         billing, and never about a person.",
        week_span(r.week)
    )));

    blocks.push(Block::Heading(2, "This week".into()));
    let previous = r
        .weeks
        .iter()
        .rev()
        .find(|x| x.figures.week < r.week)
        .map(|x| x.figures.cost_eur);
    let mut rows = vec![
        vec![
            "Cost".into(),
            format!(
                "{} ({} on the week before)",
                eur(w.cost_eur),
                change(w.cost_eur, previous)
            ),
        ],
        vec!["Builds".into(), builds_line(w)],
    ];
    if let (Some(bpd), Some(cpd)) = (t.builds_per_developer_per_day, t.cost_per_developer_eur) {
        rows.push(vec!["Builds per developer per day".into(), decimal(bpd, 1)]);
        rows.push(vec!["Cost per developer".into(), eur(cpd)]);
    }
    rows.push(vec![
        "Waste".into(),
        format!(
            "{} ({} of cost): developers {}, platform {}",
            eur(w.waste_eur),
            percent(w.waste_ratio),
            eur(w.developer_waste_eur),
            eur(w.platform_waste_eur)
        ),
    ]);
    rows.push(vec![
        "Avoidable failures".into(),
        format!(
            "{} ({} of cost, {})",
            eur(w.avoidable_eur),
            percent(w.avoidable_share),
            builds(w.waste_builds(buildcost_model::WasteClass::AvoidableFailure))
        ),
    ]);
    blocks.push(text_table(&["", "This week"], 2, rows));

    blocks.push(Block::Heading(2, "What would help".into()));
    blocks.push(Block::Bullets(
        r.hints.iter().map(|h| h.text.clone()).collect(),
    ));

    blocks.push(Block::Heading(2, "Against teams of its size".into()));
    blocks.push(match (&t.baseline, t.developers) {
        (Some(b), _) => Block::Paragraph(format!(
            "Over the {} days to the end of the week: {} per developer. Teams of comparable \
             size in peer group `{}` are expected at {} per developer, normal range {} to {}. \
             Status: {} (z = {}).",
            b.window_days,
            eur(b.cost_per_developer_eur),
            b.peer_group,
            eur(b.expected_per_developer_eur),
            eur(b.lower_per_developer_eur),
            eur(b.upper_per_developer_eur),
            b.status,
            decimal(b.zscore, 2)
        )),
        (None, Some(_)) => Block::Paragraph(
            "No band: the team spent nothing in the baseline window, or its peer group is too \
             small to compare."
                .into(),
        ),
        (None, None) => {
            Block::Paragraph("Merged small teams are not compared with a peer band.".into())
        }
    });
    if t.baseline.is_some() {
        blocks.push(Block::Chart(1));
    }

    blocks.push(Block::Heading(2, "Trend".into()));
    blocks.push(Block::Chart(0));
    let weeks: Vec<&WeekFigures> = r.weeks.iter().map(|x| &x.figures).collect();
    blocks.push(text_table(TREND_HEADERS, 1, trend_rows(&weeks)));
    if r.weeks.len() < crate::contents::TREND_WEEKS as usize {
        blocks.push(Block::Note(
            "Weeks without a row of the team's own (no builds in the 28 days before, or the \
             team below the minimum size) are left out."
                .into(),
        ));
    }

    blocks.push(Block::Heading(2, "Waste by class".into()));
    blocks.push(waste_table(w));

    if !r.small_teams {
        blocks.push(Block::Heading(2, "Pipelines that cost the most".into()));
        if r.top_pipelines_by_cost.is_empty() {
            blocks.push(Block::Paragraph("No builds this week.".into()));
        } else {
            blocks.push(pipeline_table(&r.top_pipelines_by_cost));
        }
        blocks.push(Block::Heading(
            2,
            "Pipelines that failed most on avoidable causes".into(),
        ));
        if r.top_pipelines_by_avoidable_failures.is_empty() {
            blocks.push(Block::Paragraph("No avoidable failures this week.".into()));
        } else {
            blocks.push(pipeline_table(&r.top_pipelines_by_avoidable_failures));
        }
    }
    if !r.orphan_repositories.is_empty() {
        blocks.push(Block::Heading(
            2,
            "Repositories that reach no production".into(),
        ));
        blocks.push(Block::Paragraph(
            "Built in the last 28 days, never deployed to production successfully in the \
             configured days (delivery.orphan_after_days): keep, update, or delete?"
                .into(),
        ));
        blocks.push(text_table(
            &[
                "Repository",
                "Last production deploy",
                "Builds (28 days)",
                "Cost (28 days)",
            ],
            2,
            r.orphan_repositories
                .iter()
                .map(|o| {
                    vec![
                        o.repository.clone(),
                        o.last_production_deploy
                            .clone()
                            .unwrap_or_else(|| "never".into()),
                        count(o.builds_28d),
                        eur(o.cost_28d_eur),
                    ]
                })
                .collect(),
        ));
    }
    if !r.lead_times.is_empty() {
        blocks.push(Block::Heading(2, "Lead time, request to production".into()));
        blocks.push(lead_time_table(&r.lead_times));
    }
    blocks.push(Block::Note(format!(
        "Week {} = [{}, {}). Cost = billed runner time (queue time excluded) at the configured \
         prices. Avoidable failures: builds that failed on a syntax, compile, lint or format \
         error. Hints value a week's euros × 52 / 12 a month.",
        r.week, w.start, w.end
    )));
    Doc { title, blocks }
}

/// A duration in seconds as days (or hours below a day), for lead times.
pub fn duration(seconds: f64) -> String {
    if seconds >= 86_400.0 {
        format!("{} days", decimal(seconds / 86_400.0, 1))
    } else {
        format!("{} hours", decimal(seconds / 3_600.0, 1))
    }
}

fn lead_time_table(lines: &[LeadTimeLine]) -> Block {
    text_table(
        &["Product", "Requests delivered", "p50", "p90"],
        1,
        lines
            .iter()
            .map(|l| {
                vec![
                    l.product.clone(),
                    count(l.requests),
                    duration(l.p50_s),
                    duration(l.p90_s),
                ]
            })
            .collect(),
    )
}

fn org_trend_rows(weeks: &[OrgWeek]) -> Vec<Vec<String>> {
    weeks
        .iter()
        .map(|o| {
            let w = &o.figures;
            vec![
                w.week.to_string(),
                eur(w.cost_eur),
                count(w.builds),
                percent(w.avoidable_share),
                percent(w.waste_ratio),
            ]
        })
        .collect()
}

fn status_of(t: &TeamWeek) -> String {
    t.baseline
        .as_ref()
        .map_or_else(|| "–".into(), |b| b.status.clone())
}

/// The directors' summary.
pub fn summary_doc(r: &WeeklyReport) -> Doc {
    let s = &r.summary;
    let o = &s.org.figures;
    let mut blocks = Vec::new();
    blocks.push(Block::Paragraph(format!(
        "{} (UTC) · {} developers in {} teams with builds in the 28 days to the end of the \
         week. Figures by team and product, never by person.",
        week_span(r.week),
        count(s.org.developers),
        count(s.teams.len() as u64)
    )));
    // The 4 weeks before, among those with builds (not the weeks before the data starts).
    let recent: Vec<&WeekFigures> = s
        .weeks
        .iter()
        .rev()
        .skip(1)
        .take(4)
        .map(|w| &w.figures)
        .filter(|w| w.builds > 0)
        .collect();
    let before: Vec<f64> = recent.iter().map(|w| w.cost_eur).collect();
    let mean_before =
        (!before.is_empty()).then(|| before.iter().sum::<f64>() / before.len() as f64);
    let northstar_before: Vec<f64> = recent.iter().map(|w| w.avoidable_share).collect();
    let northstar_mean = (!northstar_before.is_empty())
        .then(|| northstar_before.iter().sum::<f64>() / northstar_before.len() as f64);

    blocks.push(Block::Heading(2, "Headline".into()));
    let mut rows = vec![
        vec![
            "CI cost".into(),
            format!(
                "{} ({} against the weekly mean of the 4 weeks before)",
                eur(o.cost_eur),
                change(o.cost_eur, mean_before)
            ),
        ],
        vec![
            "Northstar: avoidable failures / cost".into(),
            format!(
                "{} ({} the 4 weeks before): {}",
                percent(o.avoidable_share),
                northstar_mean.map_or_else(|| "–".into(), percent),
                eur(o.avoidable_eur)
            ),
        ],
        vec![
            "Waste".into(),
            format!(
                "{} ({} of cost): developers {}, platform {}",
                eur(o.waste_eur),
                percent(o.waste_ratio),
                eur(o.developer_waste_eur),
                eur(o.platform_waste_eur)
            ),
        ],
        vec![
            "Savings potential".into(),
            format!(
                "{} a year if this week's waste were avoided every week; {} of it avoidable \
                 failures",
                eur(s.savings_potential.eur_per_year),
                eur(s.savings_potential.avoidable_eur_per_year)
            ),
        ],
        vec!["Builds".into(), builds_line(o)],
    ];
    if let Some(bpd) = s.org.builds_per_developer_per_day {
        rows.push(vec!["Builds per developer per day".into(), decimal(bpd, 1)]);
    }
    if let Some(d) = &s.delivery {
        // Next to the northstar: what the builds delivered, and what built nothing that ships.
        let at = rows.len().min(2);
        rows.insert(
            at,
            vec![
                "Orphan repositories".into(),
                format!(
                    "{} repositories with builds and no production deployment: {} over 28 days \
                     ({} of CI cost)",
                    count(d.orphan_repositories),
                    eur(d.orphan_cost_28d_eur),
                    percent(d.orphan_cost_share)
                ),
            ],
        );
        rows.insert(
            at,
            vec![
                "Requests delivered".into(),
                format!(
                    "{} to production; lead time {}; {} production deployments, {} failed",
                    count(d.requests_delivered),
                    d.lead_time.as_ref().map_or_else(
                        || "– (no request events)".into(),
                        |l| format!("p50 {}, p90 {}", duration(l.p50_s), duration(l.p90_s))
                    ),
                    count(d.deployments_success + d.deployments_failure),
                    count(d.deployments_failure)
                ),
            ],
        );
    }
    blocks.push(text_table(&["", "This week"], 2, rows));

    blocks.push(Block::Heading(2, "Trend".into()));
    blocks.push(Block::Chart(0));
    blocks.push(text_table(
        &["Week", "Cost", "Builds", "Northstar", "Waste ratio"],
        1,
        org_trend_rows(&s.weeks),
    ));

    blocks.push(Block::Heading(2, "Waste by class".into()));
    blocks.push(Block::Chart(1));
    blocks.push(waste_table(o));

    blocks.push(Block::Heading(2, "Teams above their band".into()));
    if s.teams_above_band.is_empty() {
        blocks.push(Block::Paragraph(
            "No team spends above the normal range of teams of its size.".into(),
        ));
    } else {
        blocks.push(text_table(
            &[
                "Team",
                "Product",
                "Peer group",
                "Developers",
                "Cost (baseline window)",
                "Upper bound",
                "Above it by",
                "z",
            ],
            3,
            s.teams_above_band
                .iter()
                .map(|a| {
                    vec![
                        a.team.clone(),
                        a.product.clone(),
                        a.band.peer_group.clone(),
                        count(a.developers),
                        eur(a.band.cost_eur),
                        eur(a.band.upper_eur),
                        eur(a.above_upper_eur),
                        decimal(a.band.zscore, 2),
                    ]
                })
                .collect(),
        ));
    }

    blocks.push(Block::Heading(2, "Most improved".into()));
    if s.most_improved.is_empty() {
        blocks.push(Block::Paragraph(
            "No team wasted less than in the weeks before.".into(),
        ));
    } else {
        blocks.push(text_table(
            &[
                "Team",
                "Product",
                "Waste this week",
                "Weekly before",
                "Less waste",
                "Waste ratio",
                "Before",
            ],
            2,
            s.most_improved
                .iter()
                .map(|i| {
                    vec![
                        i.team.clone(),
                        i.product.clone(),
                        eur(i.waste_eur),
                        eur(i.previous_waste_eur),
                        eur(i.less_waste_eur),
                        percent(i.waste_ratio),
                        percent(i.previous_waste_ratio),
                    ]
                })
                .collect(),
        ));
        blocks.push(Block::Note(format!(
            "Less waste = the team's mean weekly waste over the {} weeks before minus this \
             week's.",
            crate::contents::IMPROVEMENT_BASIS_WEEKS
        )));
    }

    blocks.push(Block::Heading(2, "Data quality".into()));
    let q = &s.data_quality;
    let mut rows: Vec<Vec<String>> = q
        .rejected_by_reason
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(reason, n)| vec![format!("rejected: {reason}"), count(*n)])
        .collect();
    rows.push(vec![
        "rejected events, all reasons".into(),
        count(q.rejected),
    ]);
    rows.push(vec![
        "unpriced builds (runner class not in the price table)".into(),
        format!(
            "{} (priced at the default: {})",
            count(q.unpriced_builds),
            eur(q.unpriced_cost_eur)
        ),
    ]);
    blocks.push(text_table(&["", "This week"], 1, rows));

    blocks.push(Block::Heading(2, "Every team this week".into()));
    blocks.push(text_table(
        &[
            "Team",
            "Product",
            "Developers",
            "Cost",
            "Waste",
            "Avoidable share",
            "Band",
        ],
        2,
        s.teams
            .iter()
            .map(|t| {
                vec![
                    t.team.clone(),
                    t.product.clone(),
                    t.week.developers.map_or_else(|| "–".into(), count),
                    eur(t.week.figures.cost_eur),
                    eur(t.week.figures.waste_eur),
                    percent(t.week.figures.avoidable_share),
                    status_of(&t.week),
                ]
            })
            .collect(),
    ));
    blocks.push(Block::Note(format!(
        "Week {} = [{}, {}). Teams below the minimum size appear only inside `_small_teams`. \
         Savings potential = this week's waste × 52. Bands: spec section 7, at the end of the \
         week.",
        r.week, o.start, o.end
    )));
    Doc {
        title: format!("CI cost — directors' summary, week {}", r.week),
        blocks,
    }
}
