//! Business requests and deployments of the generated organisation (spec section 12).
//!
//! Each team files requests (`PAY-17`: its product's prefix and a running number) now and then.
//! Its builds work on its oldest open requests: a pull request's branch names one
//! (`feature/PAY-17-…`), a push's change title cites it (`[PAY-17] …`), a merge closes it. A
//! successful merge or push build of a deployed repository is deployed to production some
//! minutes later (one in ten fails); now and then to staging first. A team's third repository is
//! never deployed (an orphan), so the requests worked on there are never delivered, and some
//! requests are never worked on at all.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::model::Generator;

/// The requests and deployments generated so far.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    /// Each team's open requests, oldest first.
    open: BTreeMap<usize, VecDeque<String>>,
    next_request: u64,
    next_deployment: u64,
}

/// The request-id prefix of a product: its first letters and digits, upper case (`PAY`).
fn prefix(product: &str) -> String {
    let p: String = product
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(4)
        .collect::<String>()
        .to_ascii_uppercase();
    if p.len() >= 2 && p.starts_with(|c: char| c.is_ascii_uppercase()) {
        p
    } else {
        "REQ".to_owned()
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Words of change titles.
const TITLES: &[&str] = &[
    "let customers pay by invoice",
    "show delivery dates",
    "faster search results",
    "export orders as CSV",
    "single sign-on for partners",
    "retry failed payouts",
];

impl Generator {
    /// New request events of the span `[end - span_ms, end)`: about one per 12 builds of each
    /// team (`picks`: the team of each build).
    pub(crate) fn new_requests(
        &mut self,
        picks: &[usize],
        end: DateTime<Utc>,
        span_ms: i64,
    ) -> Vec<(DateTime<Utc>, Value)> {
        let mut per_team: BTreeMap<usize, u32> = BTreeMap::new();
        for t in picks {
            *per_team.entry(*t).or_default() += 1;
        }
        let mut out = Vec::new();
        for (team_index, builds) in per_team {
            let mut n = builds / 12;
            if self.rng.random_range(0..12) < builds % 12 {
                n += 1;
            }
            for _ in 0..n {
                self.delivery.next_request += 1;
                let team = &self.teams[team_index];
                let id = format!("{}-{}", prefix(&team.product), self.delivery.next_request);
                let at = end - Duration::milliseconds(self.rng.random_range(1..=span_ms));
                let mut e = Map::new();
                e.insert("schema_version".into(), json!(1));
                e.insert("type".into(), json!("request"));
                e.insert(
                    "event_id".into(),
                    json!(format!("jira-{:x}-{id}", self.config.seed)),
                );
                e.insert("source".into(), json!("jira"));
                e.insert("correlation_id".into(), json!(id));
                e.insert("requested_at".into(), json!(rfc3339(at)));
                e.insert("team".into(), json!(team.name));
                // Never stored: the decoder drops them.
                e.insert(
                    "title".into(),
                    json!(TITLES[self.rng.random_range(0..TITLES.len())]),
                );
                if let Some(author) = team.authors.first() {
                    e.insert("reporter".into(), json!(author));
                }
                // One request in six is never worked on.
                if self.rng.random_range(0..6) > 0 {
                    self.delivery
                        .open
                        .entry(team_index)
                        .or_default()
                        .push_back(id);
                }
                out.push((at, Value::Object(e)));
            }
        }
        out
    }

    /// Links `build` to one of its team's open requests and, for a successful merge or push of
    /// a deployed repository, gives the deployment of its commit.
    pub(crate) fn deliver(
        &mut self,
        team_index: usize,
        build: &mut Value,
        end: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, Value)> {
        let trigger = build["trigger"].as_str().unwrap_or_default().to_owned();
        let status = build["status"].as_str().unwrap_or_default().to_owned();
        let repository = build["repository"].as_str().unwrap_or_default().to_owned();
        let team = &self.teams[team_index];
        let deployed = team
            .repositories
            .iter()
            .position(|r| *r == repository)
            .is_none_or(|i| i < 2);
        let open = self.delivery.open.entry(team_index).or_default();
        if let Some(request) = open.front().cloned() {
            let title = TITLES[self.rng.random_range(0..TITLES.len())];
            match trigger.as_str() {
                "pull_request" => {
                    build["branch"] = json!(format!("feature/{request}-{}", title.len()));
                    build["change_title"] = json!(format!("{request}: {title}"));
                }
                "push" if self.rng.random_bool(0.5) => {
                    build["change_title"] = json!(format!("[{request}] {title}"));
                }
                "merge" => {
                    build["change_title"] = json!(format!("Merge {request}: {title}"));
                    if status == "success" {
                        open.pop_front();
                    }
                }
                _ => {}
            }
        }
        if status != "success" || !deployed || !(trigger == "merge" || trigger == "push") {
            return None;
        }
        if trigger == "push" && !self.rng.random_bool(0.3) {
            return None;
        }
        let finished: DateTime<Utc> = build["finished_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())?
            .with_timezone(&Utc);
        let delay = Duration::minutes(self.rng.random_range(4..45));
        let at = (finished + delay).min(end - Duration::milliseconds(1));
        self.delivery.next_deployment += 1;
        let environment = match self.rng.random_range(0..10) {
            0 => "staging",
            1 => " Prod ",
            _ => "production",
        };
        let status = if self.rng.random_bool(0.9) {
            "success"
        } else {
            "failure"
        };
        let mut e = Map::new();
        e.insert("schema_version".into(), json!(1));
        e.insert("type".into(), json!("deployment"));
        e.insert(
            "event_id".into(),
            json!(format!(
                "deploy-{:x}-{}",
                self.config.seed, self.delivery.next_deployment
            )),
        );
        e.insert("source".into(), json!("argocd"));
        e.insert("repository".into(), json!(repository));
        e.insert("commit".into(), build["commit"].clone());
        e.insert("environment".into(), json!(environment));
        e.insert("team".into(), json!(team.name));
        e.insert("product".into(), json!(team.product));
        e.insert("status".into(), json!(status));
        e.insert(
            "started_at".into(),
            json!(rfc3339(at - Duration::minutes(3))),
        );
        e.insert("finished_at".into(), json!(rfc3339(at)));
        if let Some(author) = team.authors.first() {
            e.insert("author".into(), json!(author));
        }
        Some((at, Value::Object(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_request_ids() {
        assert_eq!(prefix("payments"), "PAYM");
        assert_eq!(prefix("3d"), "REQ");
        assert_eq!(prefix("x"), "REQ");
    }
}
