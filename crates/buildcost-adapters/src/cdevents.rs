//! CDEvents (Tekton and others): `dev.cdevents.pipelinerun.finished` and
//! `dev.cdevents.taskrun.finished`, spec versions 0.x (event versions 0.1 to 0.4 and later 0.x),
//! in CloudEvents binary mode (the body is the CDEvent) or structured mode (the CDEvent in `data`).
//!
//! A `finished` event carries no start time. It comes from `customData` (`startedAt`, or a
//! Tekton object's `status.startTime`), else from the run's `started` event when this
//! process saw it (kept for up to 100,000 runs); otherwise the run is rejected rather than
//! priced at zero duration.
//!
//! | build event | CDEvent |
//! | --- | --- |
//! | `event_id` | `cdevents:<pipelinerun\|taskrun>:<subject.source>:<subject.id>` |
//! | `build_id` | `subject.id` |
//! | `pipeline` | `subject.content.pipelineName` / `taskName` |
//! | `repository` | `customData.repository`, else the pipeline or task name |
//! | `branch`, `commit`, `author` | `customData.branch`, `.commit`, `.author` |
//! | `started_at`, `finished_at` | see above; `context.timestamp` |
//! | `status` | `subject.content.outcome`: `success`, `failure`, `cancel` → `cancelled`, `error` |
//! | `log_excerpt` | `subject.content.errors` (failures) |
//! | `failure_stage` | a failed task's name (see `stage_hint`) |
//! | `correlation_id` | `context.chainId`, else the first link's context id |
//! | `team`, `product`, `runner_class` | `customData.team`, `.product`, `.runner_class`, else `[[mapping]]` (namespace: `customData.namespace` or `namespaces/<ns>` in the source; runner: `customData.node`) |
//! | `attempt` | `customData.attempt` |

use buildcost_model::RejectReason;
use serde_json::Value;

use crate::draft::Draft;
use crate::json::{event_id, excerpt, required, required_time, stage_hint, text, time, unsigned};
use crate::{Normalised, Normaliser, Rejected};

/// Normalises one CDEvent.
pub(crate) fn normalise(n: &Normaliser, v: &Value) -> Normalised {
    let event = if v.get("context").is_some() {
        v
    } else if let Some(data) = v.get("data").filter(|d| d.get("context").is_some()) {
        data
    } else {
        return Rejected::new(
            RejectReason::MissingField,
            "context: not a CDEvent (no `context`, nor `data.context` in a CloudEvents envelope)",
        )
        .into();
    };
    run(n, event).unwrap_or_else(Normalised::Rejected)
}

/// `cancel` (0.3, 0.4) and the other spellings → `cancelled`.
fn status(outcome: &str) -> Result<&'static str, Rejected> {
    match outcome {
        "success" => Ok("success"),
        "failure" => Ok("failure"),
        "cancel" | "cancelled" | "canceled" => Ok("cancelled"),
        "error" => Ok("error"),
        other => Err(Rejected::new(
            RejectReason::InvalidField,
            format!(
                "subject.content.outcome: `{other}` is not one of success, failure, cancel, error"
            ),
        )),
    }
}

/// `/apis/tekton.dev/v1/namespaces/ci/pipelineruns/x` → `ci`.
pub(crate) fn namespace_in(source: &str) -> Option<String> {
    let mut parts = source.split('/');
    parts.find(|p| *p == "namespaces")?;
    parts.next().filter(|ns| !ns.is_empty()).map(str::to_owned)
}

fn run(n: &Normaliser, e: &Value) -> Result<Normalised, Rejected> {
    let kind = required(e, "/context/type")?;
    let Some(rest) = kind.strip_prefix("dev.cdevents.") else {
        return Ok(Normalised::Ignored(format!("type `{kind}`: not a CDEvent")));
    };
    let mut parts = rest.splitn(3, '.');
    let (subject, predicate, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if subject == "service" && (predicate == "deployed" || predicate == "upgraded") {
        if !version.starts_with("0.") {
            return Err(Rejected::new(
                RejectReason::UnsupportedVersion,
                format!("context.type: event version `{version}` (this build reads 0.x)"),
            ));
        }
        let source = required(e, "/context/source")?;
        return crate::deployment::cdevents(n, e, source);
    }
    if subject != "pipelinerun" && subject != "taskrun" {
        return Ok(Normalised::Ignored(format!(
            "type `{kind}`: not a pipeline run or task run"
        )));
    }
    if !version.starts_with("0.") {
        return Err(Rejected::new(
            RejectReason::UnsupportedVersion,
            format!("context.type: event version `{version}` (this build reads 0.x)"),
        ));
    }
    let counted = if n.levels().cdevents_pipelineruns {
        "pipelinerun"
    } else {
        "taskrun"
    };
    if subject != counted {
        return Ok(Normalised::Ignored(format!(
            "{subject}: integrations.cdevents_builds counts {counted}s"
        )));
    }
    let id = required(e, "/subject/id")?;
    let source = text(e, "/subject/source").map_or_else(|| required(e, "/context/source"), Ok)?;
    let run_key = format!("{subject}:{source}:{id}");
    match predicate {
        "finished" => {}
        "started" => {
            if let Some(at) = time(e, "/context/timestamp")? {
                n.remember_start(run_key, at);
            }
            return Ok(Normalised::Ignored(format!(
                "{subject}.started: its time is kept for the finished event"
            )));
        }
        other => {
            return Ok(Normalised::Ignored(format!(
                "{subject}.{other}: not finished"
            )))
        }
    }
    let status = status(&required(e, "/subject/content/outcome")?)?;
    let finished_at = required_time(e, "/context/timestamp")?;
    let custom = e.get("customData").filter(|c| c.is_object());
    let from_custom = |pointer: &str| custom.and_then(|c| text(c, pointer));
    let mut started_at = None;
    if let Some(c) = custom {
        for pointer in [
            "/startedAt",
            "/started_at",
            "/startTime",
            "/status/startTime",
        ] {
            if let Some(t) = time(c, pointer)? {
                started_at = Some(t);
                break;
            }
        }
    }
    let started_at = started_at
        .or_else(|| n.take_start(&run_key))
        .ok_or_else(|| {
            Rejected::new(
                RejectReason::MissingField,
                format!(
                    "started_at: the {subject}.finished event carries no start time (customData.startedAt) and no {subject}.started event of this run was seen"
                ),
            )
        })?;
    let name_field = if subject == "pipelinerun" {
        "/subject/content/pipelineName"
    } else {
        "/subject/content/taskName"
    };
    let name = required(e, name_field)?;
    let correlation_id = text(e, "/context/chainId")
        .or_else(|| text(e, "/context/links/0/target/contextId"))
        .or_else(|| text(e, "/context/links/0/from/contextId"));
    let mut draft = Draft {
        event_id: event_id(&["cdevents", subject, &source, &id]),
        source: "tekton",
        build_id: id,
        repository: from_custom("/repository").unwrap_or_else(|| name.clone()),
        namespace: from_custom("/namespace").or_else(|| namespace_in(&source)),
        runners: from_custom("/node").into_iter().collect(),
        pipeline: name,
        branch: from_custom("/branch"),
        commit: from_custom("/commit"),
        team: from_custom("/team"),
        product: from_custom("/product"),
        runner_class: from_custom("/runner_class").or_else(|| from_custom("/runnerClass")),
        author: from_custom("/author"),
        started_at,
        finished_at,
        status,
        attempt: custom.and_then(|c| unsigned(c, "/attempt")),
        correlation_id,
        ..Draft::default()
    };
    if status == "failure" {
        draft.log_excerpt = text(e, "/subject/content/errors").map(|t| excerpt(&t));
        if subject == "taskrun" {
            draft.failure_stage = Some(stage_hint(&draft.pipeline));
        }
    }
    Ok(draft.finish(n))
}
