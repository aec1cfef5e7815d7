//! A build read from a native payload, before the team, product and runner class are settled.

use std::collections::BTreeMap;

use buildcost_model::RejectReason;
use chrono::{DateTime, Utc};

use crate::json::rfc3339;
use crate::mapping::{Output, Subject};
use crate::{BuildEvent, Normalised, Normaliser, Rejected};

/// Everything a normaliser read; [`Draft::finish`] settles the rest.
#[derive(Debug, Clone, Default)]
pub(crate) struct Draft {
    pub event_id: String,
    pub source: &'static str,
    pub build_id: String,
    pub pipeline: String,
    pub repository: String,
    /// Owner, group path, folder or Kubernetes namespace, for `[[mapping]]` rules.
    pub namespace: Option<String>,
    /// Runner labels, tags or node names, for `[[mapping]]` rules and the price table.
    pub runners: Vec<String>,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub trigger: Option<&'static str>,
    /// Given by the payload itself (CDEvents `customData`, Jenkins parameters, GitHub
    /// repository custom properties); these win over the rules.
    pub team: Option<String>,
    pub product: Option<String>,
    pub runner_class: Option<String>,
    pub author: Option<String>,
    pub queued_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub status: &'static str,
    pub failure_stage: Option<&'static str>,
    pub failure_category: Option<&'static str>,
    pub log_excerpt: Option<String>,
    pub attempt: Option<u64>,
    pub correlation_id: Option<String>,
    /// The PR title or head commit subject (request ids are found in it at ingest).
    pub change_title: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl Draft {
    /// Settles team, product and runner class (payload, then `[[mapping]]`, then for the
    /// runner class a label naming a priced class, then the first label) and gives the event,
    /// or a rejection when no team or no runner class can be found.
    pub fn finish(mut self, n: &Normaliser) -> Normalised {
        let runners = std::mem::take(&mut self.runners);
        let subject = Subject {
            repository: &self.repository,
            namespace: self.namespace.as_deref(),
            runners: &runners,
        };
        let mapper = n.mapper();
        let mut mapped = |output, given: Option<String>, label: &str| -> Option<String> {
            if given.is_some() {
                return given;
            }
            let (rule, value) = mapper.find(output, &subject)?;
            self.labels.insert(
                format!("buildcost.{label}_from"),
                format!("mapping[{rule}]"),
            );
            Some(value.to_owned())
        };
        let team = mapped(Output::Team, self.team.take(), "team");
        let product = mapped(Output::Product, self.product.take(), "product");
        let runner_class = mapped(
            Output::RunnerClass,
            self.runner_class.take(),
            "runner_class",
        )
        .or_else(|| {
            runners
                .iter()
                .find_map(|r| n.priced_class(r))
                .map(str::to_owned)
        })
        .or_else(|| runners.first().cloned());
        let where_ = match &self.namespace {
            Some(ns) => format!("repository `{}` (namespace `{ns}`)", self.repository),
            None => format!("repository `{}`", self.repository),
        };
        let Some(team) = team else {
            return self.reject(format!(
                "team: the payload carries none and no [[mapping]] rule with a team matches {where_}"
            ));
        };
        let Some(runner_class) = runner_class else {
            return self.reject(format!(
                "runner_class: the payload names no runner label, tag or node, and no [[mapping]] rule with a runner_class matches {where_}"
            ));
        };
        // A queue time after the start is the CI system's clock skew: drop it, keep the build.
        let queued_at = self.queued_at.filter(|q| *q <= self.started_at);
        Normalised::Events(vec![BuildEvent {
            schema_version: 1,
            event_id: self.event_id,
            source: self.source.to_owned(),
            build_id: self.build_id,
            pipeline: self.pipeline,
            repository: self.repository,
            branch: self.branch,
            commit: self.commit,
            trigger: self.trigger.map(str::to_owned),
            team,
            product,
            author: self.author,
            queued_at: queued_at.map(rfc3339),
            started_at: rfc3339(self.started_at),
            finished_at: rfc3339(self.finished_at),
            status: self.status.to_owned(),
            failure_stage: self.failure_stage.map(str::to_owned),
            failure_category: self.failure_category.map(str::to_owned),
            log_excerpt: self.log_excerpt,
            runner_class,
            attempt: self.attempt,
            correlation_id: self.correlation_id,
            change_title: self
                .change_title
                .map(|t| first_line(&t))
                .filter(|t| !t.is_empty()),
            labels: self.labels,
        }])
    }

    /// A `missing_field` rejection whose partial event is what was read, without the author
    /// and the error text.
    fn reject(self, detail: String) -> Normalised {
        let partial = serde_json::json!({
            "schema_version": 1,
            "event_id": self.event_id,
            "source": self.source,
            "build_id": self.build_id,
            "pipeline": self.pipeline,
            "repository": self.repository,
            "namespace": self.namespace,
            "branch": self.branch,
            "commit": self.commit,
            "started_at": rfc3339(self.started_at),
            "finished_at": rfc3339(self.finished_at),
            "status": self.status,
        });
        Normalised::Rejected(Rejected {
            reason: RejectReason::MissingField,
            detail,
            partial,
        })
    }
}

/// The first line of a title or commit message, at most [`buildcost_model::MAX_CHANGE_TITLE_BYTES`]
/// bytes (cut at a character boundary).
pub(crate) fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    let mut end = line.len().min(buildcost_model::MAX_CHANGE_TITLE_BYTES);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_owned()
}
