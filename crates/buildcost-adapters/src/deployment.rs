//! Deployments read from native payloads (spec section 12): GitHub `deployment_status`,
//! GitLab deployment events and CDEvents `service.deployed` / `service.upgraded`.
//!
//! | deployment event | GitHub `deployment_status` | GitLab `object_kind: deployment` | CDEvents `service.deployed` |
//! | --- | --- | --- | --- |
//! | `event_id` | `github:deployment:<repository>:<deployment_status.id>` | `gitlab:deployment:<project.id>:<deployment_id>` | `cdevents:deployment:<context.source>:<context.id>` |
//! | `repository` | `repository.full_name` | `project.path_with_namespace` | `customData.repository`, else `subject.content.artifactId` |
//! | `commit` | `deployment.sha` | `commit_url`'s last part, else `short_sha` | `customData.commit`, else the artifact's version |
//! | `environment` | `deployment_status.environment`, else `deployment.environment` | `environment` | `subject.content.environment.id` |
//! | `status` | `state`: success → success; failure, error → failure; the rest ignored | `status`: success → success; failed → failure; the rest ignored | success (an event is emitted once deployed) |
//! | `finished_at` | `deployment_status.updated_at`, else `created_at` | `status_changed_at` | `context.timestamp` |
//! | `correlation_ids` | — | — | `context.chainId` |
//! | `team`, `product` | repository custom properties, else `[[mapping]]` | `[[mapping]]` | `customData.team`, `.product`, else `[[mapping]]` |
//!
//! The author (`deployment.creator`, `user`) is never read.

use buildcost_model::RejectReason;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::json::{event_id, required, required_time, rfc3339, text, time};
use crate::mapping::{Output, Subject};
use crate::{Normalised, Normaliser, Rejected};

/// A deployment event, as produced to the topic (the `type = "deployment"` kind).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentEvent {
    pub schema_version: u32,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event_id: String,
    pub source: String,
    pub repository: String,
    pub commit: String,
    pub environment: String,
    pub team: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub correlation_ids: Vec<String>,
}

impl DeploymentEvent {
    /// The event as one line of JSON.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // A struct of strings always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A deployment read from a payload, before its team and product are settled.
struct Draft {
    event_id: String,
    source: &'static str,
    repository: String,
    namespace: Option<String>,
    commit: String,
    environment: String,
    team: Option<String>,
    product: Option<String>,
    status: &'static str,
    started_at: Option<DateTime<Utc>>,
    finished_at: DateTime<Utc>,
    correlation_ids: Vec<String>,
}

impl Draft {
    /// Settles team and product (payload, then `[[mapping]]`) and gives the event.
    fn finish(self, n: &Normaliser) -> Normalised {
        let subject = Subject {
            repository: &self.repository,
            namespace: self.namespace.as_deref(),
            runners: &[],
        };
        let mapper = n.mapper();
        let mapped = |output, given: Option<String>| {
            given.or_else(|| mapper.find(output, &subject).map(|(_, v)| v.to_owned()))
        };
        let product = mapped(Output::Product, self.product);
        let Some(team) = mapped(Output::Team, self.team) else {
            return Rejected::new(
                RejectReason::MissingField,
                format!(
                    "team: the deployment payload carries none and no [[mapping]] rule with a team matches repository `{}`",
                    self.repository
                ),
            )
            .into();
        };
        Normalised::Deployment(Box::new(DeploymentEvent {
            schema_version: 1,
            kind: "deployment",
            event_id: self.event_id,
            source: self.source.to_owned(),
            repository: self.repository.clone(),
            commit: self.commit,
            environment: self.environment,
            team,
            product,
            status: self.status,
            started_at: self.started_at.map(rfc3339),
            finished_at: rfc3339(self.finished_at),
            correlation_ids: self.correlation_ids,
        }))
    }
}

/// A GitHub `deployment_status` webhook.
pub(crate) fn github(n: &Normaliser, v: &Value) -> Result<Normalised, Rejected> {
    let state = required(v, "/deployment_status/state")?;
    let status = match state.as_str() {
        "success" => "success",
        "failure" | "error" => "failure",
        other => {
            return Ok(Normalised::Ignored(format!(
                "deployment_status `{other}`: not finished"
            )))
        }
    };
    let repository = required(v, "/repository/full_name")?;
    let id = required(v, "/deployment_status/id")?;
    let environment = text(v, "/deployment_status/environment")
        .map_or_else(|| required(v, "/deployment/environment"), Ok)?;
    let finished_at = match time(v, "/deployment_status/updated_at")? {
        Some(t) => t,
        None => required_time(v, "/deployment_status/created_at")?,
    };
    Ok(Draft {
        event_id: event_id(&["github", "deployment", &repository, &id]),
        source: "github",
        namespace: text(v, "/repository/owner/login")
            .or_else(|| repository.split_once('/').map(|(o, _)| o.to_owned())),
        commit: required(v, "/deployment/sha")?,
        environment,
        team: text(v, "/repository/custom_properties/team"),
        product: text(v, "/repository/custom_properties/product"),
        status,
        started_at: time(v, "/deployment/created_at")?.filter(|s| *s <= finished_at),
        finished_at,
        correlation_ids: Vec::new(),
        repository,
    }
    .finish(n))
}

/// A GitLab deployment event (`object_kind: deployment`).
pub(crate) fn gitlab(n: &Normaliser, v: &Value) -> Result<Normalised, Rejected> {
    let status = match required(v, "/status")?.as_str() {
        "success" => "success",
        "failed" => "failure",
        other => {
            return Ok(Normalised::Ignored(format!(
                "deployment status `{other}`: not finished"
            )))
        }
    };
    let repository = required(v, "/project/path_with_namespace")?;
    let project = required(v, "/project/id")?;
    let id = required(v, "/deployment_id")?;
    let commit = text(v, "/commit_url")
        .and_then(|u| u.rsplit('/').next().map(str::to_owned))
        .filter(|c| !c.is_empty())
        .map_or_else(|| required(v, "/short_sha"), Ok)?;
    Ok(Draft {
        event_id: event_id(&["gitlab", "deployment", &project, &id]),
        source: "gitlab",
        namespace: repository.rsplit_once('/').map(|(ns, _)| ns.to_owned()),
        commit,
        environment: required(v, "/environment")?,
        team: None,
        product: None,
        status,
        started_at: None,
        finished_at: required_time(v, "/status_changed_at")?,
        correlation_ids: Vec::new(),
        repository,
    }
    .finish(n))
}

/// A CDEvents `service.deployed` or `service.upgraded` event (`e` is the event, out of any
/// CloudEvents envelope).
pub(crate) fn cdevents(n: &Normaliser, e: &Value, source: String) -> Result<Normalised, Rejected> {
    let custom = e.get("customData").filter(|c| c.is_object());
    let from_custom = |pointer: &str| custom.and_then(|c| text(c, pointer));
    let artifact = text(e, "/subject/content/artifactId").unwrap_or_default();
    // pkg:oci/shop@sha256:…, pkg:generic/acme/shop@1.2.3: the name and the version.
    let (name, version) = artifact
        .split_once('@')
        .map_or((artifact.as_str(), ""), |(n, v)| (n, v));
    let name = name.rsplit('/').next().unwrap_or(name);
    let repository = from_custom("/repository")
        .or_else(|| (!name.is_empty()).then(|| name.to_owned()))
        .ok_or_else(|| {
            Rejected::new(
                RejectReason::MissingField,
                "repository: neither customData.repository nor subject.content.artifactId",
            )
        })?;
    let commit = from_custom("/commit")
        .or_else(|| (!version.is_empty()).then(|| version.to_owned()))
        .ok_or_else(|| {
            Rejected::new(
                RejectReason::MissingField,
                "commit: neither customData.commit nor a version in subject.content.artifactId",
            )
        })?;
    let id = required(e, "/context/id")?;
    Ok(Draft {
        event_id: event_id(&["cdevents", "deployment", &source, &id]),
        source: "cdevents",
        namespace: crate::cdevents::namespace_in(&source),
        commit,
        environment: required(e, "/subject/content/environment/id")?,
        team: from_custom("/team"),
        product: from_custom("/product"),
        status: "success",
        started_at: None,
        finished_at: required_time(e, "/context/timestamp")?,
        correlation_ids: text(e, "/context/chainId").into_iter().collect(),
        repository,
    }
    .finish(n))
}
