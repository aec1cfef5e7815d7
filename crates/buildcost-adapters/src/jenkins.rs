//! Jenkins: the JSON of a finished build, as the REST API gives it
//! (`<build url>/api/json`, what a Jenkinsfile `post` step sends) or as the Notification
//! plugin posts it (`{"name", "url", "build": {"phase", "status", …}}`, phases `COMPLETED` and
//! `FINALIZED`).
//!
//! | build event | REST API JSON | Notification plugin |
//! | --- | --- | --- |
//! | `event_id` | `jenkins:<host>/<job path>:<number>` from `url` | the same, from `build.full_url` |
//! | `build_id` | `number` | `build.number` |
//! | `pipeline` | the job's full name (`folder/job/branch`) from `url` | the same |
//! | `repository` | the path of `BuildData.remoteUrls[0]`, else the job's full name | `build.scm.url`, else the same |
//! | `branch`, `commit` | `BuildData.lastBuiltRevision` | `build.scm.branch`, `build.scm.commit` |
//! | `trigger` | the first cause (see [`trigger`]) | — |
//! | `author` | `UserIdCause.userId` | — |
//! | `queued_at`, `started_at`, `finished_at` | `timestamp − TimeInQueueAction.queuingDurationMillis`, `timestamp`, `timestamp + duration` (ms) | `build.timestamp`, `build.duration` |
//! | `status` | `result` (see [`status`]) | `build.status` |
//! | `log_excerpt` | — | the last 8 KiB of `build.log` |
//! | `runner_class` | `builtOn` (the node) | — (`[[mapping]]`, or a `RUNNER_CLASS` parameter) |
//! | `team`, `product`, `runner_class` | build parameters `TEAM`, `PRODUCT`, `RUNNER_CLASS` (also `BUILDCOST_…`), else `[[mapping]]` | `build.parameters`, the same names |

use buildcost_model::RejectReason;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::draft::Draft;
use crate::json::{event_id, required, text, unsigned};
use crate::{Normalised, Normaliser, Rejected};

/// Normalises one Jenkins build payload.
pub(crate) fn normalise(n: &Normaliser, v: &Value) -> Normalised {
    let result = if v.get("build").is_some_and(Value::is_object) {
        notification(n, v)
    } else {
        rest(n, v)
    };
    result.unwrap_or_else(Normalised::Rejected)
}

/// A Jenkins `result` as a spec status: `SUCCESS` → `success`, `FAILURE` → `failure`,
/// `UNSTABLE` (tests failed) → `failure` with category `test`, `ABORTED` → `cancelled`;
/// `NOT_BUILT` and no result yet → `None` (not a build).
pub(crate) fn status(
    result: &str,
) -> Result<Option<(&'static str, Option<&'static str>)>, Rejected> {
    Ok(Some(match result.to_ascii_uppercase().as_str() {
        "SUCCESS" => ("success", None),
        "FAILURE" => ("failure", None),
        "UNSTABLE" => ("failure", Some("test")),
        "ABORTED" => ("cancelled", None),
        "NOT_BUILT" => return Ok(None),
        other => {
            return Err(Rejected::new(
                RejectReason::InvalidField,
                format!("result: `{other}` is not a Jenkins result"),
            ))
        }
    }))
}

/// A cause's `_class` as a spec trigger.
pub(crate) fn trigger(class: &str) -> &'static str {
    let c = class.to_ascii_lowercase();
    if c.contains("useridcause") {
        "manual"
    } else if c.contains("timertrigger") {
        "schedule"
    } else if c.contains("replaycause") || c.contains("rebuildcause") {
        "retry"
    } else if c.contains("remotecause") {
        "api"
    } else if c.contains("pullrequest") || c.contains("prcause") || c.contains("changerequest") {
        "pull_request"
    } else if c.contains("scmtrigger") || c.contains("pushcause") || c.contains("branchevent") {
        "push"
    } else {
        "other"
    }
}

/// `https://ci.example/job/a/job/b/42/` → (`ci.example`, `a/b`).
fn job_of(url: &str) -> Option<(String, String)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (host, path) = rest.split_once('/').unwrap_or(("", rest));
    let mut names = Vec::new();
    let mut segments = path.split('/').filter(|s| !s.is_empty()).peekable();
    while let Some(segment) = segments.next() {
        if segment == "job" {
            if let Some(name) = segments.next() {
                names.push(name.to_owned());
            }
        }
    }
    (!names.is_empty()).then(|| (host.to_owned(), names.join("/")))
}

/// The path of a clone URL: `https://github.com/acme/shop.git`, `git@host:acme/shop.git` →
/// `acme/shop`.
fn repository_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = match rest.split_once('/') {
        Some((host, path)) if !host.contains(':') => path,
        _ => rest.split_once(':').map_or(rest, |(_, p)| p),
    };
    let path = path.trim_matches('/').trim_end_matches(".git");
    (!path.is_empty()).then(|| path.to_owned())
}

fn branch_name(raw: &str) -> String {
    raw.trim_start_matches("refs/remotes/")
        .trim_start_matches("refs/heads/")
        .trim_start_matches("origin/")
        .to_owned()
}

/// The parameter `name` (also `BUILDCOST_<name>`), case-insensitive, from (name, value) pairs.
fn parameter<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a Value)> + Clone,
    name: &str,
) -> Option<String> {
    let prefixed = format!("buildcost_{name}");
    pairs
        .filter(|(k, _)| k.eq_ignore_ascii_case(name) || k.eq_ignore_ascii_case(&prefixed))
        .find_map(|(_, v)| v.as_str().map(str::trim).filter(|s| !s.is_empty()))
        .map(str::to_owned)
}

fn epoch_ms(v: &Value, pointer: &str) -> Result<Option<DateTime<Utc>>, Rejected> {
    let Some(ms) = v.pointer(pointer).filter(|x| !x.is_null()) else {
        return Ok(None);
    };
    ms.as_i64()
        .and_then(DateTime::from_timestamp_millis)
        .map(Some)
        .ok_or_else(|| {
            Rejected::new(
                RejectReason::InvalidTimestamp,
                format!(
                    "{}: not milliseconds since 1970",
                    crate::json::field_name(pointer)
                ),
            )
        })
}

fn start_and_end(
    v: &Value,
    start: &str,
    duration: &str,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Rejected> {
    let started_at = epoch_ms(v, start)?.ok_or_else(|| {
        Rejected::new(
            RejectReason::MissingField,
            format!(
                "{}: required (the build's start, ms)",
                crate::json::field_name(start)
            ),
        )
    })?;
    let ms = unsigned(v, duration).ok_or_else(|| {
        Rejected::new(
            RejectReason::MissingField,
            format!("{}: required (ms)", crate::json::field_name(duration)),
        )
    })?;
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    Ok((
        started_at,
        started_at + Duration::milliseconds(ms.min(i64::MAX / 2)),
    ))
}

fn rest(n: &Normaliser, v: &Value) -> Result<Normalised, Rejected> {
    if v.get("building").and_then(Value::as_bool) == Some(true) {
        return Ok(Normalised::Ignored("building: not finished".into()));
    }
    let Some(result) = text(v, "/result") else {
        return Ok(Normalised::Ignored("no result: not finished".into()));
    };
    let Some((status, category)) = status(&result)? else {
        return Ok(Normalised::Ignored(format!("result `{result}`: not built")));
    };
    let url = required(v, "/url")?;
    let empty = Vec::new();
    let actions = v.get("actions").and_then(Value::as_array).unwrap_or(&empty);
    let action = |class: &str| {
        actions.iter().find(|a| {
            a.get("_class")
                .and_then(Value::as_str)
                .is_some_and(|c| c.ends_with(class))
        })
    };
    let causes: Vec<&Value> = actions
        .iter()
        .filter_map(|a| a.get("causes").and_then(Value::as_array))
        .flatten()
        .collect();
    let build_data = action("BuildData");
    let params: Vec<(&str, &Value)> = action("ParametersAction")
        .and_then(|a| a.get("parameters").and_then(Value::as_array))
        .map(|ps| {
            ps.iter()
                .filter_map(|p| Some((p.get("name")?.as_str()?, p.get("value")?)))
                .collect()
        })
        .unwrap_or_default();
    let queued_ms = action("TimeInQueueAction").and_then(|a| unsigned(a, "/queuingDurationMillis"));
    let clone_url = build_data.and_then(|d| text(d, "/remoteUrls/0"));
    let build = identity(v, &url, "url", "/number", clone_url, &params)?;
    let (started_at, finished_at) = start_and_end(v, "/timestamp", "/duration")?;
    let node = text(v, "/builtOn").unwrap_or_else(|| "built-in".into());
    let draft = Draft {
        runners: vec![node],
        branch: build_data
            .and_then(|d| text(d, "/lastBuiltRevision/branch/0/name"))
            .map(|b| branch_name(&b)),
        commit: build_data.and_then(|d| text(d, "/lastBuiltRevision/SHA1")),
        trigger: causes
            .first()
            .and_then(|c| text(c, "/_class"))
            .map(|c| trigger(&c)),
        author: causes.iter().find_map(|c| text(c, "/userId")),
        queued_at: queued_ms
            .and_then(|ms| Some(started_at - Duration::milliseconds(i64::try_from(ms).ok()?))),
        started_at,
        finished_at,
        status,
        failure_category: category,
        ..build
    };
    Ok(draft.finish(n))
}

fn notification(n: &Normaliser, v: &Value) -> Result<Normalised, Rejected> {
    let phase = text(v, "/build/phase").unwrap_or_default();
    if !matches!(phase.as_str(), "COMPLETED" | "FINALIZED") {
        return Ok(Normalised::Ignored(format!(
            "phase `{phase}`: not finished"
        )));
    }
    let result = required(v, "/build/status")?;
    let Some((status, category)) = status(&result)? else {
        return Ok(Normalised::Ignored(format!("status `{result}`: not built")));
    };
    let url = text(v, "/build/full_url").map_or_else(|| required(v, "/build/url"), Ok)?;
    let params: Vec<(&str, &Value)> = v
        .pointer("/build/parameters")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default();
    let clone_url = text(v, "/build/scm/url");
    let build = identity(
        v,
        &url,
        "build.full_url",
        "/build/number",
        clone_url,
        &params,
    )?;
    let (started_at, finished_at) = start_and_end(v, "/build/timestamp", "/build/duration")?;
    let log = text(v, "/build/log").filter(|_| status == "failure");
    let draft = Draft {
        branch: text(v, "/build/scm/branch").map(|b| branch_name(&b)),
        commit: text(v, "/build/scm/commit"),
        started_at,
        finished_at,
        status,
        failure_category: category,
        log_excerpt: log.map(|l| tail(&l)),
        ..build
    };
    Ok(draft.finish(n))
}

/// What both payload shapes say the same way: the build's identity from its URL (`url_field`
/// names it in a rejection) and its number at `number`; its repository, the path of
/// `clone_url`, else the job's full name; team, product and runner class from `params`.
fn identity(
    v: &Value,
    url: &str,
    url_field: &str,
    number: &str,
    clone_url: Option<String>,
    params: &[(&str, &Value)],
) -> Result<Draft, Rejected> {
    let (host, job) = job_of(url).ok_or_else(|| {
        Rejected::new(
            RejectReason::InvalidField,
            format!("{url_field}: no `/job/<name>` in the build URL"),
        )
    })?;
    let number = required(v, number)?;
    Ok(Draft {
        event_id: event_id(&["jenkins", &format!("{host}/{job}"), &number]),
        source: "jenkins",
        build_id: number,
        namespace: job.rsplit_once('/').map(|(folder, _)| folder.to_owned()),
        repository: clone_url
            .and_then(|u| repository_of(&u))
            .unwrap_or_else(|| job.clone()),
        pipeline: job,
        team: parameter(params.iter().copied(), "team"),
        product: parameter(params.iter().copied(), "product"),
        runner_class: parameter(params.iter().copied(), "runner_class"),
        ..Draft::default()
    })
}

/// The last 8 KiB of a log (where the error is), cut on a character.
fn tail(log: &str) -> String {
    const MAX: usize = 8 * 1024;
    if log.len() <= MAX {
        return log.to_owned();
    }
    let mut start = log.len() - MAX;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    log[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_and_repositories_come_from_urls() {
        assert_eq!(
            job_of("https://ci.example/job/shop/job/main/42/"),
            Some(("ci.example".into(), "shop/main".into()))
        );
        assert_eq!(job_of("https://ci.example/view/x/42/"), None);
        for url in [
            "https://github.com/acme/shop.git",
            "git@github.com:acme/shop.git",
            "ssh://git@github.com/acme/shop",
        ] {
            assert_eq!(repository_of(url).as_deref(), Some("acme/shop"), "{url}");
        }
        assert_eq!(branch_name("refs/remotes/origin/main"), "main");
    }

    #[test]
    fn a_long_log_keeps_its_end() {
        let log = format!("{}\nerror: expected `;`", "x".repeat(20_000));
        let t = tail(&log);
        assert!(t.len() <= 8 * 1024 && t.ends_with("expected `;`"));
    }
}
