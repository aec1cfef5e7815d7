//! The delivery events (spec section 12): deployments and business requests, and the request
//! ids a build carries (`correlation_id` plus whole-word matches of
//! `delivery.request_id_pattern` in its branch and change title).

pub mod batch;
pub mod route;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::event::BuildRow;

/// Default `delivery.request_id_pattern`: a Jira-style key such as `PAY-123`.
pub const DEFAULT_REQUEST_ID_PATTERN: &str = "[A-Z][A-Z0-9]+-[0-9]+";
/// Most `correlation_ids` a deployment may carry.
pub const MAX_CORRELATION_IDS: usize = 100;
/// Longest `change_title`, in bytes (1 KiB).
pub const MAX_CHANGE_TITLE_BYTES: usize = 1024;

/// `[delivery]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// A request id in a branch or change title (whole-word, case-sensitive).
    pub request_id_pattern: String,
    /// The environments that are production (compared trimmed and lower-cased).
    pub production_environments: Vec<String>,
    /// A repository with builds and no successful production deployment in this many days is
    /// an orphan.
    pub orphan_after_days: u32,
    /// Whether lead times are shown per team (off: a works council may not want team velocity
    /// on a dashboard); product and org figures are always shown.
    pub lead_time_by_team: bool,
    /// `[[delivery.route]]`: where `report weekly --send` delivers reports.
    pub route: Vec<route::Route>,
    /// Where the HTML reports are served (`https://buildcost.corp.example/reports`): messages
    /// link to `<report_base_url>/<week>/<team>.html`.
    pub report_base_url: Option<String>,
    /// Accept plain `http://` webhook URLs to hosts that are not loopback.
    pub allow_http: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            request_id_pattern: DEFAULT_REQUEST_ID_PATTERN.to_owned(),
            production_environments: vec!["production".into(), "prod".into()],
            orphan_after_days: 90,
            lead_time_by_team: false,
            route: Vec::new(),
            report_base_url: None,
            allow_http: false,
        }
    }
}

impl DeliveryConfig {
    /// Checks the section.
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        RequestIds::new(&self.request_id_pattern)?;
        if self.orphan_after_days == 0 {
            return Err(ConfigError::new(
                "delivery.orphan_after_days",
                "must be at least 1",
            ));
        }
        if self.production_environments.is_empty()
            || self
                .production_environments
                .iter()
                .any(|e| e.trim().is_empty())
        {
            return Err(ConfigError::new(
                "delivery.production_environments",
                "must list at least one environment, none of them blank",
            ));
        }
        for (i, r) in self.route.iter().enumerate() {
            r.validate(&format!("delivery.route[{i}]"), self.allow_http)?;
        }
        if let Some(url) = &self.report_base_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::new(
                    "delivery.report_base_url",
                    format!("`{url}` is not an http(s):// URL"),
                ));
            }
        }
        Ok(())
    }

    /// Whether `environment` (as stored: trimmed, lower-cased) is production.
    pub fn is_production(&self, environment: &str) -> bool {
        let environment = environment.trim().to_lowercase();
        self.production_environments
            .iter()
            .any(|p| p.trim().to_lowercase() == environment)
    }
}

/// Finds request ids in free text: whole-word, case-sensitive matches of a pattern.
#[derive(Debug, Clone)]
pub struct RequestIds {
    pattern: regex::Regex,
}

impl Default for RequestIds {
    fn default() -> Self {
        // A constant that a unit test compiles.
        #[allow(clippy::expect_used)]
        RequestIds::new(DEFAULT_REQUEST_ID_PATTERN).expect("the default pattern compiles")
    }
}

impl RequestIds {
    /// The matcher of `pattern`, anchored at word boundaries (`\b…\b`).
    ///
    /// # Errors
    /// `pattern` is not a regular expression, or matches the empty text.
    pub fn new(pattern: &str) -> Result<Self, ConfigError> {
        let key = "delivery.request_id_pattern";
        let whole = regex::Regex::new(&format!(r"\b(?:{pattern})\b"))
            .map_err(|e| ConfigError::new(key, format!("is not a regular expression: {e}")))?;
        if regex::Regex::new(pattern).is_ok_and(|p| p.is_match("")) {
            return Err(ConfigError::new(key, "must not match the empty text"));
        }
        Ok(RequestIds { pattern: whole })
    }

    /// Adds every whole-word match in `text` to `ids`.
    pub fn find_into(&self, text: &str, ids: &mut Vec<String>) {
        ids.extend(self.pattern.find_iter(text).map(|m| m.as_str().to_owned()));
    }

    /// The request ids of a build: its `correlation_id`, and the matches in its `branch` and
    /// `change_title`; sorted and distinct. This is the one place the rule is written.
    pub fn of_build(
        &self,
        correlation_id: Option<&str>,
        branch: Option<&str>,
        change_title: Option<&str>,
    ) -> Vec<String> {
        let mut ids: Vec<String> = correlation_id.map(str::to_owned).into_iter().collect();
        for text in [branch, change_title].into_iter().flatten() {
            self.find_into(text, &mut ids);
        }
        ids.sort();
        ids.dedup();
        ids
    }
}

crate::event::vocabulary!(
    /// How a deployment ended.
    DeploymentStatus {
        Success => "success",
        Failure => "failure",
    }
);

/// A validated deployment: what the store keeps (no author).
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRow {
    pub event_id: String,
    pub source: String,
    pub repository: String,
    pub commit: String,
    /// Trimmed and lower-cased.
    pub environment: String,
    pub team: String,
    pub product: String,
    pub status: DeploymentStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: DateTime<Utc>,
    /// The requests it delivers, sorted and distinct.
    pub correlation_ids: Vec<String>,
    pub ingested_at: DateTime<Utc>,
}

/// A validated business request (a ticket): its id and when it was asked for. Titles,
/// descriptions and reporters are never stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRow {
    pub event_id: String,
    pub source: String,
    pub correlation_id: String,
    pub requested_at: DateTime<Utc>,
    pub team: Option<String>,
    pub product: Option<String>,
    pub ingested_at: DateTime<Utc>,
}

/// One decoded event of any kind (`type`: absent or `build`, `deployment`, `request`).
#[derive(Debug, Clone, PartialEq)]
// Builds are nearly every event: boxing them would cost an allocation each to save bytes on
// the rare deployment or request.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    Build(BuildRow),
    Deployment(DeploymentRow),
    Request(RequestRow),
}

/// The kinds of event, as their `type` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Build,
    Deployment,
    Request,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 3] = [EventKind::Build, EventKind::Deployment, EventKind::Request];

    /// The `type` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Build => "build",
            EventKind::Deployment => "deployment",
            EventKind::Request => "request",
        }
    }
}

impl Event {
    /// Its kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Build(_) => EventKind::Build,
            Event::Deployment(_) => EventKind::Deployment,
            Event::Request(_) => EventKind::Request,
        }
    }

    /// Its idempotency key (one space for every kind).
    pub fn event_id(&self) -> &str {
        match self {
            Event::Build(b) => &b.event_id,
            Event::Deployment(d) => &d.event_id,
            Event::Request(r) => &r.event_id,
        }
    }

    /// The instant it is dated by: a build's or deployment's `finished_at`, a request's
    /// `requested_at`.
    pub fn instant(&self) -> DateTime<Utc> {
        match self {
            Event::Build(b) => b.finished_at,
            Event::Deployment(d) => d.finished_at,
            Event::Request(r) => r.requested_at,
        }
    }

    /// The UTC day it is stored under (the day of [`Event::instant`]).
    pub fn day(&self) -> chrono::NaiveDate {
        self.instant().date_naive()
    }

    /// The build, when it is one.
    pub fn into_build(self) -> Option<BuildRow> {
        match self {
            Event::Build(b) => Some(b),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_whole_words() {
        let ids = RequestIds::default();
        let found = |text: &str| ids.of_build(None, Some(text), None);
        assert_eq!(found("feature/PAY-123-fix"), ["PAY-123"]);
        assert_eq!(found("[PAY-123] fix the cart"), ["PAY-123"]);
        for none in ["abcXPAY-1", "PAY-77x", "pay-12", "_PAY-1", "P-1"] {
            assert!(found(none).is_empty(), "{none}");
        }
        assert_eq!(
            ids.of_build(
                Some("zz-9"),
                Some("OPS-2/PAY-1"),
                Some("PAY-1 and\nOPS-2, AB1-7")
            ),
            ["AB1-7", "OPS-2", "PAY-1", "zz-9"]
        );
    }

    #[test]
    fn bad_patterns_name_their_key() {
        for bad in ["(", "x*"] {
            let e = RequestIds::new(bad).unwrap_err().to_string();
            assert!(e.contains("delivery.request_id_pattern"), "{e}");
        }
        let c = DeliveryConfig {
            orphan_after_days: 0,
            ..DeliveryConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("orphan_after_days"));
    }

    #[test]
    fn production_is_compared_trimmed_and_lower_cased() {
        let c = DeliveryConfig {
            production_environments: vec![" Prod ".into()],
            ..DeliveryConfig::default()
        };
        assert!(c.is_production("prod"));
        assert!(c.is_production(" PROD"));
        assert!(!c.is_production("production"));
    }
}
