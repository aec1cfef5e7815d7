//! GitHub Actions: `workflow_job` and `workflow_run` webhooks (`action: completed`); a
//! `deployment_status` webhook is a deployment ([`crate::deployment`]).
//!
//! | build event | `workflow_job` | `workflow_run` |
//! | --- | --- | --- |
//! | `event_id` | `github:job:<repository>:<job id>:<run_attempt>` | `github:run:<repository>:<run id>:<run_attempt>` |
//! | `build_id` | `workflow_job.id` | `workflow_run.id` |
//! | `pipeline` | `<workflow_name> / <job name>` | `workflow_run.name`, else `.path` |
//! | `repository` | `repository.full_name` | the same |
//! | `branch`, `commit` | `head_branch`, `head_sha` | the same |
//! | `trigger` | — | `workflow_run.event` |
//! | `author` | `sender.login` | `triggering_actor.login`, else `actor.login` |
//! | `queued_at`, `started_at`, `finished_at` | `created_at`, `started_at`, `completed_at` | `created_at`, `run_started_at`, `updated_at` |
//! | `status` | `conclusion` (see [`status`]) | the same |
//! | `failure_stage` | the first failed step's name (see `stage_hint`) | — |
//! | `runner_class` | `labels` (a `runner` rule also sees `runner_group_name`, `runner_name`) | `[[mapping]]` only |
//! | `attempt` | `run_attempt` | the same |
//! | `change_title` | — | `display_title` (the PR title or commit subject), else `head_commit.message` |
//! | `team`, `product` | repository custom properties `team`, `product`, else `[[mapping]]` | the same |

use buildcost_model::RejectReason;
use serde_json::Value;

use crate::draft::Draft;
use crate::json::{event_id, required, required_time, stage_hint, strings, text, time, unsigned};
use crate::{Normalised, Normaliser, Rejected};

/// Normalises one GitHub webhook payload.
pub(crate) fn normalise(n: &Normaliser, v: &Value) -> Normalised {
    let result = if v.get("workflow_job").is_some() {
        job(n, v)
    } else if v.get("workflow_run").is_some() {
        run(n, v)
    } else if v.get("deployment_status").is_some() {
        crate::deployment::github(n, v)
    } else if v.get("zen").is_some() || v.get("hook_id").is_some() {
        Ok(Normalised::Ignored("ping".into()))
    } else {
        Ok(Normalised::Ignored(
            "not a build: neither `workflow_job` nor `workflow_run` (subscribe the hook to workflow jobs only)".into(),
        ))
    };
    result.unwrap_or_else(Normalised::Rejected)
}

/// A `conclusion` as a spec status; `None` for a job that did not run (`skipped`,
/// `action_required`).
///
/// `timed_out` → `timeout`; `startup_failure` (the run could not start: nothing of the code
/// ran) → `error`; `stale` (GitHub gave up on it) and `cancelled` → `cancelled`; `neutral` →
/// `success`.
pub(crate) fn status(conclusion: &str) -> Result<Option<&'static str>, Rejected> {
    Ok(Some(match conclusion {
        "success" | "neutral" => "success",
        "failure" => "failure",
        "cancelled" | "stale" => "cancelled",
        "timed_out" => "timeout",
        "startup_failure" => "error",
        "skipped" | "action_required" => return Ok(None),
        other => {
            return Err(Rejected::new(
                RejectReason::InvalidField,
                format!("conclusion: `{other}` is not a GitHub conclusion"),
            ))
        }
    }))
}

fn completed(v: &Value, what: &str) -> Option<Normalised> {
    let action = text(v, "/action").unwrap_or_default();
    (action != "completed")
        .then(|| Normalised::Ignored(format!("{what} action `{action}`: not finished")))
}

fn namespace(v: &Value, repository: &str) -> Option<String> {
    text(v, "/repository/owner/login")
        .or_else(|| text(v, "/organization/login"))
        .or_else(|| repository.split_once('/').map(|(o, _)| o.to_owned()))
}

fn job(n: &Normaliser, v: &Value) -> Result<Normalised, Rejected> {
    if let Some(ignored) = completed(v, "workflow_job") {
        return Ok(ignored);
    }
    if n.levels().github_runs {
        return Ok(Normalised::Ignored(
            "workflow_job: integrations.github_builds = \"runs\" counts workflow runs, not jobs"
                .into(),
        ));
    }
    let conclusion = required(v, "/workflow_job/conclusion")?;
    let Some(status) = status(&conclusion)? else {
        return Ok(Normalised::Ignored(format!(
            "workflow_job conclusion `{conclusion}`: the job did not run"
        )));
    };
    let repository = required(v, "/repository/full_name")?;
    let id = required(v, "/workflow_job/id")?;
    let attempt = unsigned(v, "/workflow_job/run_attempt").unwrap_or(1);
    let name = required(v, "/workflow_job/name")?;
    let pipeline = match text(v, "/workflow_job/workflow_name") {
        Some(workflow) => format!("{workflow} / {name}"),
        None => name,
    };
    let started_at = required_time(v, "/workflow_job/started_at")?;
    let mut draft = Draft {
        event_id: event_id(&["github", "job", &repository, &id, &attempt.to_string()]),
        source: "github",
        build_id: id,
        pipeline,
        namespace: namespace(v, &repository),
        // Labels first (the first one is the fallback class); a `runner` rule may also match
        // the runner group or the runner's name.
        runners: strings(v, "/workflow_job/labels")
            .into_iter()
            .chain(text(v, "/workflow_job/runner_group_name"))
            .chain(text(v, "/workflow_job/runner_name"))
            .collect(),
        branch: text(v, "/workflow_job/head_branch"),
        commit: text(v, "/workflow_job/head_sha"),
        team: text(v, "/repository/custom_properties/team"),
        product: text(v, "/repository/custom_properties/product"),
        author: text(v, "/sender/login"),
        queued_at: time(v, "/workflow_job/created_at")?,
        started_at,
        finished_at: required_time(v, "/workflow_job/completed_at")?,
        status,
        attempt: Some(attempt),
        // A run id is a CI run number, not a business request: no correlation id.
        repository,
        ..Draft::default()
    };
    if status == "failure" {
        let failed = v
            .pointer("/workflow_job/steps")
            .and_then(Value::as_array)
            .and_then(|steps| {
                steps
                    .iter()
                    .find(|s| s.get("conclusion").and_then(Value::as_str) == Some("failure"))
            })
            .and_then(|s| text(s, "/name"));
        if let Some(step) = failed {
            draft.failure_stage = Some(stage_hint(&step));
            draft.labels.insert("github.failed_step".into(), step);
        }
    }
    Ok(draft.finish(n))
}

/// `workflow_run.event` as a spec trigger.
fn trigger(event: &str) -> &'static str {
    match event {
        "push" => "push",
        "pull_request" | "pull_request_target" => "pull_request",
        "merge_group" => "merge",
        "schedule" => "schedule",
        "workflow_dispatch" => "manual",
        "repository_dispatch" => "api",
        _ => "other",
    }
}

fn run(n: &Normaliser, v: &Value) -> Result<Normalised, Rejected> {
    if let Some(ignored) = completed(v, "workflow_run") {
        return Ok(ignored);
    }
    if !n.levels().github_runs {
        return Ok(Normalised::Ignored(
            "workflow_run: integrations.github_builds = \"jobs\" counts the run's jobs instead"
                .into(),
        ));
    }
    let conclusion = required(v, "/workflow_run/conclusion")?;
    let Some(status) = status(&conclusion)? else {
        return Ok(Normalised::Ignored(format!(
            "workflow_run conclusion `{conclusion}`: the run did not run"
        )));
    };
    let repository = text(v, "/workflow_run/repository/full_name")
        .map_or_else(|| required(v, "/repository/full_name"), Ok)?;
    let id = required(v, "/workflow_run/id")?;
    let attempt = unsigned(v, "/workflow_run/run_attempt").unwrap_or(1);
    let queued_at = time(v, "/workflow_run/created_at")?;
    let started_at = match time(v, "/workflow_run/run_started_at")? {
        Some(t) => t,
        None => required_time(v, "/workflow_run/created_at")?,
    };
    let draft = Draft {
        event_id: event_id(&["github", "run", &repository, &id, &attempt.to_string()]),
        source: "github",
        build_id: id,
        pipeline: text(v, "/workflow_run/name")
            .or_else(|| text(v, "/workflow_run/path"))
            .unwrap_or_else(|| "workflow".into()),
        namespace: namespace(v, &repository),
        branch: text(v, "/workflow_run/head_branch"),
        commit: text(v, "/workflow_run/head_sha"),
        trigger: text(v, "/workflow_run/event").map(|e| trigger(&e)),
        team: text(v, "/repository/custom_properties/team"),
        product: text(v, "/repository/custom_properties/product"),
        author: text(v, "/workflow_run/triggering_actor/login")
            .or_else(|| text(v, "/workflow_run/actor/login")),
        queued_at,
        started_at,
        finished_at: required_time(v, "/workflow_run/updated_at")?,
        status,
        attempt: Some(attempt),
        // The PR title or head commit subject: request ids are found in it at ingest.
        change_title: text(v, "/workflow_run/display_title")
            .or_else(|| text(v, "/workflow_run/head_commit/message")),
        repository,
        ..Draft::default()
    };
    Ok(draft.finish(n))
}
