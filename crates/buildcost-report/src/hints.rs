//! One or two plain-language hints per team, derived from its figures only.
//!
//! Each candidate says what happened this week and what it would be worth a month to fix
//! (this week's euros × 52 / 12); the two worth most are kept. A team above its peer band is
//! always told so first. Nothing names a person: only classes, categories and pipelines.

use buildcost_model::{Status, WasteClass};

use crate::contents::{Hint, TeamReport};
use crate::numbers::{eur, percent};

/// Most hints per report.
pub const MAX_HINTS: usize = 2;
/// Euros a month below which a saving is not worth a hint.
pub const MIN_EUR_PER_MONTH: f64 = 1.0;

fn per_month(week_eur: f64) -> f64 {
    week_eur * 52.0 / 12.0
}

/// The hints of one team report.
pub fn for_team(report: &TeamReport) -> Vec<Hint> {
    let w = &report.this_week.figures;
    let mut out = Vec::new();
    if let Some(band) = report.this_week.baseline.as_ref() {
        if band.status == "above" {
            let monthly = band.above_upper_eur() * 30.0 / f64::from(band.window_days.max(1));
            out.push(Hint {
                text: format!(
                    "Over the {} days to the end of the week the team spent {} per developer; \
                     teams of its size in `{}` spend up to {}. Bringing it back to that bound is \
                     worth about {} a month.",
                    band.window_days,
                    eur(band.cost_per_developer_eur),
                    band.peer_group,
                    eur(band.upper_per_developer_eur),
                    eur(monthly),
                ),
                eur_per_month: monthly,
            });
        }
    }

    let mut candidates = Vec::new();
    let failed = w.status_builds(Status::Failure);
    let avoidable = w.waste_builds(WasteClass::AvoidableFailure);
    if avoidable > 0 && failed > 0 {
        let mut categories: Vec<(&String, &u64)> =
            report.avoidable_failures_by_category.iter().collect();
        categories.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let named: Vec<&str> = categories.iter().map(|(c, _)| c.as_str()).collect();
        let causes = match named.as_slice() {
            [] => "a syntax, compile, lint or format error".to_owned(),
            [one] => format!("a {one} error"),
            [init @ .., last] => format!("{} or {last}", init.join(", ")),
        };
        let monthly = per_month(w.avoidable_eur);
        candidates.push(Hint {
            text: format!(
                "{} of failed builds ({avoidable} of {failed}) failed on {causes}: a pre-commit \
                 hook or a local build before pushing would have caught most of them — about {} \
                 a month.",
                percent(avoidable as f64 / failed as f64),
                eur(monthly)
            ),
            eur_per_month: monthly,
        });
    }
    let flaky = w.waste_cost(WasteClass::Flaky);
    if flaky > 0.0 {
        let monthly = per_month(flaky);
        candidates.push(Hint {
            text: format!(
                "{} failed on flaky tests ({} this week): quarantining the flakiest tests \
                 until they are fixed would save about {} a month.",
                crate::format::builds(w.waste_builds(WasteClass::Flaky)),
                eur(flaky),
                eur(monthly)
            ),
            eur_per_month: monthly,
        });
    }
    let rebuilt = w.waste_cost(WasteClass::Duplicate) + w.waste_cost(WasteClass::Superseded);
    if rebuilt > 0.0 {
        let monthly = per_month(rebuilt);
        candidates.push(Hint {
            text: format!(
                "{} rebuilt a commit that had already built green or were superseded by a \
                 newer push ({}): auto-cancelling superseded builds and skipping green commits \
                 would save about {} a month.",
                crate::format::builds(
                    w.waste_builds(WasteClass::Duplicate) + w.waste_builds(WasteClass::Superseded)
                ),
                eur(rebuilt),
                eur(monthly)
            ),
            eur_per_month: monthly,
        });
    }
    let platform = w.waste_cost(WasteClass::InfraFailure) + w.waste_cost(WasteClass::Timeout);
    if platform > 0.0 {
        let monthly = per_month(platform);
        candidates.push(Hint {
            text: format!(
                "{} of this week's cost went to infrastructure failures and timeouts: that is \
                 the platform's to fix, not the team's (about {} a month).",
                eur(platform),
                eur(monthly)
            ),
            eur_per_month: monthly,
        });
    }
    candidates.retain(|h| h.eur_per_month >= MIN_EUR_PER_MONTH);
    candidates.sort_by(|a, b| b.eur_per_month.total_cmp(&a.eur_per_month));
    out.extend(candidates);
    out.truncate(MAX_HINTS);
    if out.is_empty() {
        out.push(Hint {
            text: if w.builds == 0 {
                "No builds this week.".to_owned()
            } else {
                "No waste worth a change this week: keep it that way.".to_owned()
            },
            eur_per_month: 0.0,
        });
    }
    out
}
