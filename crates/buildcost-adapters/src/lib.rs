//! Normalisers: what GitHub Actions, GitLab, Jenkins and CDEvents (Tekton) already send, turned
//! into buildcost build events (spec section 2).
//!
//! Pure functions over bytes and the configuration: no I/O, no clock. Each native payload gives
//! one of three outcomes:
//! - [`Normalised::Events`]: build events, ready for the core decoder (which validates,
//!   pseudonymises and classifies them like any other event);
//! - [`Normalised::Ignored`]: a payload that is not a finished build at the configured level
//!   (a job still running, a workflow run when jobs are counted, a ping): acknowledged, not stored;
//! - [`Normalised::Rejected`]: a finished build that cannot become a valid event, with one reason
//!   of the spec's closed set and a detail naming the field. A build that no `[[mapping]]` rule
//!   gives a team is rejected, never stored under a guess.
//!
//! Event ids derive from the native ids (and attempt), so a redelivered webhook is a duplicate.
//!
//! ```
//! use buildcost_adapters::{Format, MappingRule, Normalised, Normaliser, NormaliserSettings};
//!
//! let rule: MappingRule = toml::from_str(r#"
//!     namespace = "acme"
//!     team = "payments"
//!     product = "shop"
//! "#)?;
//! let settings = NormaliserSettings { mapping: vec![rule], ..NormaliserSettings::default() };
//! let normaliser = Normaliser::new(&settings)?;
//! let payload = br#"{"action": "completed",
//!   "workflow_job": {"id": 7, "run_id": 70, "run_attempt": 2, "name": "lint",
//!     "workflow_name": "CI", "head_branch": "main", "head_sha": "abc", "status": "completed",
//!     "conclusion": "failure", "created_at": "2026-11-02T10:00:00Z",
//!     "started_at": "2026-11-02T10:01:00Z", "completed_at": "2026-11-02T10:04:00Z",
//!     "labels": ["ubuntu-latest"], "steps": [{"name": "Run cargo fmt --check", "conclusion": "failure"}]},
//!   "repository": {"full_name": "acme/shop", "owner": {"login": "acme"}},
//!   "sender": {"login": "octocat"}}"#;
//! let Normalised::Events(events) = normaliser.normalise(Format::Github, payload) else {
//!     panic!("a finished job is a build");
//! };
//! let e = &events[0];
//! assert_eq!(e.event_id, "github:job:acme/shop:7:2");
//! assert_eq!((e.team.as_str(), e.status.as_str(), e.attempt), ("payments", "failure", Some(2)));
//! assert_eq!(e.failure_stage.as_deref(), Some("format"));
//! assert_eq!(e.runner_class, "ubuntu-latest");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cdevents;
pub mod config;
mod deployment;
mod draft;
mod event;
mod github;
mod gitlab;
mod jenkins;
mod json;
mod mapping;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

use buildcost_model::RejectReason;
use chrono::{DateTime, Utc};
pub use config::{glob, IntegrationsConfig, MappingRule};
use serde_json::Value;

pub use deployment::DeploymentEvent;
pub use event::BuildEvent;
pub use mapping::Mapper;

/// The native formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    Github,
    Gitlab,
    Jenkins,
    Cdevents,
}

impl Format {
    /// Every format.
    pub const ALL: &'static [Format] = &[
        Format::Github,
        Format::Gitlab,
        Format::Jenkins,
        Format::Cdevents,
    ];

    /// The name used on the command line, in URLs and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Github => "github",
            Format::Gitlab => "gitlab",
            Format::Jenkins => "jenkins",
            Format::Cdevents => "cdevents",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not one of github, gitlab, jenkins, cdevents"))
    }
}

/// What a native payload became.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalised {
    /// Build events (most payloads give one).
    Events(Vec<BuildEvent>),
    /// A finished deployment (spec section 12).
    Deployment(Box<DeploymentEvent>),
    /// Not a finished build at the configured level; the text says why.
    Ignored(String),
    /// A build that cannot become a valid event.
    Rejected(Rejected),
}

impl Normalised {
    /// The messages to produce, `(event id, JSON)`, for events and deployments; `None` for an
    /// ignored or rejected payload.
    pub fn messages(&self) -> Option<Vec<(String, Vec<u8>)>> {
        match self {
            Normalised::Events(events) => Some(
                events
                    .iter()
                    .map(|e| (e.event_id.clone(), e.to_json_bytes()))
                    .collect(),
            ),
            Normalised::Deployment(d) => Some(vec![(d.event_id.clone(), d.to_json_bytes())]),
            Normalised::Ignored(_) | Normalised::Rejected(_) => None,
        }
    }
}

/// A rejected native payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub reason: RejectReason,
    /// Names the field and the rule; never quotes a person.
    pub detail: String,
    /// What could be read of the build, as a build-event object with no `author`: what is
    /// dead-lettered instead of the native payload, which carries names and e-mail addresses.
    pub partial: Value,
}

impl Rejected {
    pub(crate) fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Rejected {
            reason,
            detail: detail.into(),
            partial: Value::Object(serde_json::Map::new()),
        }
    }
}

impl From<Rejected> for Normalised {
    fn from(r: Rejected) -> Self {
        Normalised::Rejected(r)
    }
}

/// Which level of a CI run counts as a build, per source (`[integrations]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Levels {
    pub github_runs: bool,
    pub gitlab_pipelines: bool,
    pub cdevents_pipelineruns: bool,
}

/// Most start times of CDEvents runs kept while waiting for their `finished` event.
const MAX_PENDING_STARTS: usize = 100_000;

/// Start times seen in CDEvents `started` events, by run, for the `finished` event that does
/// not carry its own (oldest forgotten first).
#[derive(Debug, Default)]
struct StartTimes {
    by_run: HashMap<String, DateTime<Utc>>,
    order: VecDeque<String>,
}

/// Turns native payloads into build events with the configuration's `[[mapping]]` rules,
/// `[integrations]` levels and price table (a runner label equal to a priced class is that class).
#[derive(Debug)]
pub struct Normaliser {
    mapper: Mapper,
    levels: Levels,
    priced: BTreeSet<String>,
    max_payload_bytes: usize,
    starts: Mutex<StartTimes>,
}

/// What a [`Normaliser`] is configured with: the `[[mapping]]` rules, the `[integrations]`
/// levels, the price table's runner classes and the largest payload taken.
#[derive(Debug, Clone, PartialEq)]
pub struct NormaliserSettings {
    pub mapping: Vec<MappingRule>,
    pub integrations: IntegrationsConfig,
    /// `[pricing.runner_classes]`: a runner label equal to one of them is that class.
    pub priced_classes: BTreeSet<String>,
    /// Larger payloads are rejected as `too_large` (`webhook.max_body_bytes`).
    pub max_payload_bytes: usize,
}

impl Default for NormaliserSettings {
    fn default() -> Self {
        NormaliserSettings {
            mapping: Vec::new(),
            integrations: IntegrationsConfig::default(),
            priced_classes: BTreeSet::new(),
            max_payload_bytes: 1024 * 1024,
        }
    }
}

impl Normaliser {
    /// A normaliser with `settings`.
    ///
    /// # Errors
    /// A `[[mapping]]` pattern is not a glob (the message names the rule).
    pub fn new(settings: &NormaliserSettings) -> Result<Self, String> {
        let levels = &settings.integrations;
        Ok(Normaliser {
            mapper: Mapper::new(&settings.mapping)?,
            levels: Levels {
                github_runs: levels.github_builds == "runs",
                gitlab_pipelines: levels.gitlab_builds == "pipelines",
                cdevents_pipelineruns: levels.cdevents_builds == "pipelineruns",
            },
            priced: settings.priced_classes.clone(),
            max_payload_bytes: settings.max_payload_bytes,
            starts: Mutex::new(StartTimes::default()),
        })
    }

    /// Normalises one payload of `format`. A payload over `webhook.max_body_bytes` is
    /// rejected as `too_large`.
    pub fn normalise(&self, format: Format, payload: &[u8]) -> Normalised {
        if payload.len() > self.max_payload_bytes {
            return Rejected::new(
                RejectReason::TooLarge,
                format!(
                    "{} bytes, over webhook.max_body_bytes = {}",
                    payload.len(),
                    self.max_payload_bytes
                ),
            )
            .into();
        }
        let value: Value = match serde_json::from_slice(payload) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Rejected::new(RejectReason::InvalidJson, "not a JSON object").into();
            }
            Err(e) => {
                // serde_json's message never quotes the input, only where it broke.
                return Rejected::new(RejectReason::InvalidJson, format!("not JSON: {e}")).into();
            }
        };
        match format {
            Format::Github => github::normalise(self, &value),
            Format::Gitlab => gitlab::normalise(self, &value),
            Format::Jenkins => jenkins::normalise(self, &value),
            Format::Cdevents => cdevents::normalise(self, &value),
        }
    }

    /// The `[[mapping]]` rules.
    pub fn mapper(&self) -> &Mapper {
        &self.mapper
    }

    pub(crate) fn levels(&self) -> Levels {
        self.levels
    }

    /// Whether `label` names a class of the price table (case-insensitive); the class's name.
    pub(crate) fn priced_class(&self, label: &str) -> Option<&str> {
        self.priced
            .iter()
            .find(|c| c.eq_ignore_ascii_case(label.trim()))
            .map(String::as_str)
    }

    pub(crate) fn remember_start(&self, run: String, at: DateTime<Utc>) {
        let mut starts = self.starts.lock().unwrap_or_else(|p| p.into_inner());
        if starts.by_run.insert(run.clone(), at).is_none() {
            starts.order.push_back(run);
        }
        // `order` also holds runs already finished (removing them there would cost a scan);
        // forgetting one of those is a no-op.
        while starts.order.len() > MAX_PENDING_STARTS {
            if let Some(oldest) = starts.order.pop_front() {
                starts.by_run.remove(&oldest);
            }
        }
    }

    pub(crate) fn take_start(&self, run: &str) -> Option<DateTime<Utc>> {
        let mut starts = self.starts.lock().unwrap_or_else(|p| p.into_inner());
        starts.by_run.remove(run)
    }
}
