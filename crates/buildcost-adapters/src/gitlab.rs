//! GitLab: Job Hook (`object_kind: build`) and Pipeline Hook (`object_kind: pipeline`).
//!
//! | build event | Job Hook | Pipeline Hook |
//! | --- | --- | --- |
//! | `event_id` | `gitlab:job:<project_id>:<build_id>` | `gitlab:pipeline:<project.id>:<object_attributes.id>` |
//! | `build_id` | `build_id` | `object_attributes.id` |
//! | `pipeline` | `build_name` | `object_attributes.name`, else `pipeline` |
//! | `repository` | `project.path_with_namespace`, else the path of `repository.homepage` | `project.path_with_namespace` |
//! | `branch`, `commit` | `ref` (not for tags), `sha` | `object_attributes.ref`, `.sha` |
//! | `trigger` | — | `object_attributes.source` |
//! | `author` | `user.username` | the same |
//! | `queued_at`, `started_at`, `finished_at` | `build_created_at`, `build_started_at`, `build_finished_at` | `created_at`, `finished_at − duration`, `finished_at` |
//! | `status` | `build_status` | `object_attributes.status` |
//! | `failure_category`, `failure_stage` | `build_failure_reason`, `build_stage` (see [`failure`]) | the first failed job's |
//! | `runner_class` | `runner.tags`, `runner.description` | the jobs' runner tags |
//! | `attempt` | `retries_count + 1` | — |
//! | `change_title` | `commit.message` (first line) | `merge_request.title`, else `commit.message` (first line) |

use std::collections::BTreeSet;

use buildcost_model::RejectReason;
use chrono::Duration;
use serde_json::Value;

use crate::draft::Draft;
use crate::json::{event_id, number, required, required_time, stage_hint, strings, text, time};
use crate::{Normalised, Normaliser, Rejected};

/// Normalises one GitLab webhook payload.
pub(crate) fn normalise(n: &Normaliser, v: &Value) -> Normalised {
    let result = match text(v, "/object_kind").as_deref() {
        Some("build") => job(n, v),
        Some("pipeline") => pipeline(n, v),
        Some("deployment") => crate::deployment::gitlab(n, v),
        Some(other) => Ok(Normalised::Ignored(format!(
            "object_kind `{other}` is not a build (enable Job events only)"
        ))),
        None => Err(Rejected::new(
            RejectReason::MissingField,
            "object_kind: required to tell a Job Hook from a Pipeline Hook",
        )),
    };
    result.unwrap_or_else(Normalised::Rejected)
}

/// A GitLab job or pipeline status as a spec status; `None` while it has not finished or
/// when it did not run.
fn status(raw: &str) -> Option<&'static str> {
    match raw {
        "success" => Some("success"),
        "failed" => Some("failure"),
        "canceled" | "cancelled" | "canceling" => Some("cancelled"),
        _ => None,
    }
}

/// Failure reasons that are the platform's, not the code's: `infra`.
const INFRA_REASONS: &[&str] = &[
    "runner_system_failure",
    "runner_unsupported",
    "scheduler_failure",
    "data_integrity_failure",
    "api_failure",
    "stale_schedule",
    "archived_failure",
    "unmet_prerequisites",
    "no_matching_runner",
    "trace_size_exceeded",
    "builds_disabled",
    "ci_quota_exceeded",
    "environment_creation_failure",
    "job_router_failure",
    "secrets_provider_not_found",
];

/// What a failed job's reason and stage say: (status, `failure_category`, `failure_stage`).
///
/// `stuck_or_timeout_failure` and `job_execution_timeout` → status `timeout`; the reasons of
/// [`INFRA_REASONS`] → category `infra`; `missing_dependency_failure` → `dependency`;
/// `script_failure` and the rest → no category, so the stage (from `build_stage`, else the job
/// name) classifies it at ingest.
pub(crate) fn failure(
    reason: Option<&str>,
    stage: Option<&str>,
    name: Option<&str>,
) -> (&'static str, Option<&'static str>, Option<&'static str>) {
    let hint = [stage, name]
        .into_iter()
        .flatten()
        .map(stage_hint)
        .find(|s| *s != "other")
        .or_else(|| stage.or(name).map(|_| "other"));
    match reason {
        Some("stuck_or_timeout_failure" | "job_execution_timeout") => ("timeout", None, None),
        Some(r) if INFRA_REASONS.contains(&r) => ("failure", Some("infra"), Some("infra")),
        Some("missing_dependency_failure") => ("failure", Some("dependency"), hint),
        _ => ("failure", None, hint),
    }
}

/// Sets what a failed job's reason and stage say (see [`failure`]) on `draft`, and keeps the
/// reason in the label `gitlab.failure_reason`.
fn failed(draft: &mut Draft, job: &Value, reason: &str, stage: &str, name: Option<&str>) {
    let reason = text(job, reason);
    let (status, category, stage) = failure(reason.as_deref(), text(job, stage).as_deref(), name);
    draft.status = status;
    draft.failure_category = category;
    draft.failure_stage = stage;
    if let Some(reason) = reason {
        draft.labels.insert("gitlab.failure_reason".into(), reason);
    }
}

fn namespace_of(repository: &str) -> Option<String> {
    repository.rsplit_once('/').map(|(ns, _)| ns.to_owned())
}

/// `https://gitlab.com/group/project` → `group/project`.
fn url_path(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (_, path) = rest.split_once('/')?;
    let path = path.trim_matches('/').trim_end_matches(".git");
    (!path.is_empty()).then(|| path.to_owned())
}

fn job(n: &Normaliser, v: &Value) -> Result<Normalised, Rejected> {
    if n.levels().gitlab_pipelines {
        return Ok(Normalised::Ignored(
            "Job Hook: integrations.gitlab_builds = \"pipelines\" counts pipelines, not jobs"
                .into(),
        ));
    }
    let raw_status = required(v, "/build_status")?;
    let Some(status) = status(&raw_status) else {
        return Ok(Normalised::Ignored(format!(
            "build_status `{raw_status}`: not a finished job"
        )));
    };
    let repository = text(v, "/project/path_with_namespace")
        .or_else(|| text(v, "/repository/homepage").and_then(|u| url_path(&u)))
        .ok_or_else(|| {
            Rejected::new(
                RejectReason::MissingField,
                "project.path_with_namespace: required (or repository.homepage)",
            )
        })?;
    let project = required(v, "/project_id")?;
    let id = required(v, "/build_id")?;
    let finished_at = required_time(v, "/build_finished_at")?;
    // A job cancelled before it started used no runner time.
    let started_at = time(v, "/build_started_at")?.unwrap_or(finished_at);
    let mut runners = strings(v, "/runner/tags");
    runners.extend(text(v, "/runner/description"));
    let tag = v.get("tag").and_then(Value::as_bool).unwrap_or(false);
    let mut draft = Draft {
        event_id: event_id(&["gitlab", "job", &project, &id]),
        source: "gitlab",
        build_id: id,
        pipeline: required(v, "/build_name")?,
        namespace: namespace_of(&repository),
        runners,
        branch: text(v, "/ref").filter(|_| !tag),
        commit: text(v, "/sha"),
        author: text(v, "/user/username"),
        queued_at: time(v, "/build_created_at")?,
        started_at,
        finished_at,
        attempt: v
            .get("retries_count")
            .and_then(Value::as_u64)
            .map(|r| r + 1),
        // A pipeline id is a CI run number, not a business request: no correlation id.
        change_title: text(v, "/commit/message").filter(|m| !m.trim().is_empty()),
        repository,
        ..Draft::default()
    };
    draft.status = status;
    if status == "failure" {
        let name = draft.pipeline.clone();
        failed(
            &mut draft,
            v,
            "/build_failure_reason",
            "/build_stage",
            Some(&name),
        );
    }
    Ok(draft.finish(n))
}

/// `object_attributes.source` as a spec trigger.
fn trigger(source: &str) -> &'static str {
    match source {
        "push" => "push",
        "merge_request_event" | "external_pull_request_event" => "pull_request",
        "schedule" => "schedule",
        "web" | "chat" => "manual",
        "api" | "trigger" => "api",
        _ => "other",
    }
}

fn pipeline(n: &Normaliser, v: &Value) -> Result<Normalised, Rejected> {
    if !n.levels().gitlab_pipelines {
        return Ok(Normalised::Ignored(
            "Pipeline Hook: integrations.gitlab_builds = \"jobs\" counts the pipeline's jobs instead"
                .into(),
        ));
    }
    let raw_status = required(v, "/object_attributes/status")?;
    let Some(status) = status(&raw_status) else {
        return Ok(Normalised::Ignored(format!(
            "pipeline status `{raw_status}`: not a finished pipeline"
        )));
    };
    let repository = required(v, "/project/path_with_namespace")?;
    let project = required(v, "/project/id")?;
    let id = required(v, "/object_attributes/id")?;
    let finished_at = required_time(v, "/object_attributes/finished_at")?;
    let created_at = time(v, "/object_attributes/created_at")?;
    let started_at = match number(v, "/object_attributes/duration") {
        Some(d) if d >= 0.0 => finished_at - Duration::milliseconds((d * 1000.0).round() as i64),
        _ => created_at.unwrap_or(finished_at),
    };
    let jobs = v
        .get("builds")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let runners: BTreeSet<String> = jobs
        .iter()
        .flat_map(|j| strings(j, "/runner/tags"))
        .collect();
    let tag = v
        .pointer("/object_attributes/tag")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut draft = Draft {
        event_id: event_id(&["gitlab", "pipeline", &project, &id]),
        source: "gitlab",
        build_id: id,
        pipeline: text(v, "/object_attributes/name").unwrap_or_else(|| "pipeline".into()),
        namespace: namespace_of(&repository),
        runners: runners.into_iter().collect(),
        branch: text(v, "/object_attributes/ref").filter(|_| !tag),
        commit: text(v, "/object_attributes/sha"),
        // The merge request's title for an MR pipeline, else the commit subject.
        change_title: text(v, "/merge_request/title")
            .or_else(|| text(v, "/commit/message"))
            .filter(|m| !m.trim().is_empty()),
        trigger: text(v, "/object_attributes/source").map(|s| trigger(&s)),
        author: text(v, "/user/username"),
        queued_at: created_at,
        started_at,
        finished_at,
        repository,
        ..Draft::default()
    };
    draft.status = status;
    let first_failed = jobs
        .iter()
        .find(|j| j.get("status").and_then(Value::as_str) == Some("failed"));
    if let (Some(job), "failure") = (first_failed, status) {
        let name = text(job, "/name");
        failed(
            &mut draft,
            job,
            "/failure_reason",
            "/stage",
            name.as_deref(),
        );
    }
    Ok(draft.finish(n))
}
