//! Reading native payloads: typed look-ups by JSON pointer, timestamps in the formats CI
//! systems use, failure-stage hints from step names, and event ids.

use buildcost_model::RejectReason;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Rejected;

/// The text at `pointer` (`/a/b`), trimmed; `None` when absent, null, empty or not a string.
/// Numbers are given as their decimal text (ids are numbers in most payloads).
pub(crate) fn text(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The text at `pointer`, or a `missing_field` rejection naming it.
pub(crate) fn required(v: &Value, pointer: &str) -> Result<String, Rejected> {
    text(v, pointer).ok_or_else(|| {
        Rejected::new(
            RejectReason::MissingField,
            format!(
                "{}: required and absent, null or empty",
                field_name(pointer)
            ),
        )
    })
}

/// A non-negative whole number at `pointer`.
pub(crate) fn unsigned(v: &Value, pointer: &str) -> Option<u64> {
    v.pointer(pointer).and_then(Value::as_u64)
}

/// A number at `pointer`.
pub(crate) fn number(v: &Value, pointer: &str) -> Option<f64> {
    v.pointer(pointer).and_then(Value::as_f64)
}

/// Every non-empty string of the array at `pointer`.
pub(crate) fn strings(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `/workflow_job/started_at` → `workflow_job.started_at`.
pub(crate) fn field_name(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

/// A timestamp as RFC 3339 UTC (`2026-11-02T10:00:00Z`, fractions kept).
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses the timestamps CI systems send: RFC 3339 (GitHub, CDEvents, newer GitLab) and
/// GitLab's `2023-01-10 13:50:02 UTC`.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f UTC", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f %z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The time at `pointer`: `None` when absent or null, a rejection when it is not a time.
pub(crate) fn time(v: &Value, pointer: &str) -> Result<Option<DateTime<Utc>>, Rejected> {
    let Some(raw) = text(v, pointer) else {
        return Ok(None);
    };
    parse_time(&raw).map(Some).ok_or_else(|| {
        Rejected::new(
            RejectReason::InvalidTimestamp,
            format!("{}: `{raw}` is not a timestamp", field_name(pointer)),
        )
    })
}

/// The time at `pointer`, or a `missing_field` rejection.
pub(crate) fn required_time(v: &Value, pointer: &str) -> Result<DateTime<Utc>, Rejected> {
    time(v, pointer)?.ok_or_else(|| {
        Rejected::new(
            RejectReason::MissingField,
            format!(
                "{}: required and absent, null or empty",
                field_name(pointer)
            ),
        )
    })
}

/// Longest event id the schema allows.
const MAX_EVENT_ID: usize = 256;

/// An event id from its parts; one over 256 characters keeps its first part (the source)
/// and a SHA-256 of the whole.
pub(crate) fn event_id(parts: &[&str]) -> String {
    let id = parts.join(":");
    if id.chars().count() <= MAX_EVENT_ID {
        return id;
    }
    let digest = hex::encode(Sha256::digest(id.as_bytes()));
    format!("{}:sha256:{digest}", parts.first().copied().unwrap_or("id"))
}

/// The spec's `failure_stage` a step, stage or task name suggests (`other` when none does).
pub(crate) fn stage_hint(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
    if has(&["set up job", "setup job", "set up runner"]) {
        "infra"
    } else if has(&[
        "integration",
        "e2e",
        "end-to-end",
        "acceptance",
        "system test",
    ]) {
        "integration_test"
    } else if has(&[
        "lint",
        "clippy",
        "checkstyle",
        "pylint",
        "flake8",
        "ruff",
        "vet",
        "spotbugs",
    ]) {
        "lint"
    } else if has(&["format", "fmt", "prettier", "black", "spotless"]) {
        "format"
    } else if has(&["checkout", "clone"]) {
        "checkout"
    } else if has(&[
        "install", "depend", "restore", "npm ci", "bundle", "pip ", "download", "cache",
    ]) {
        "dependencies"
    } else if has(&["test", "spec", "pytest", "jest", "junit"]) {
        "unit_test"
    } else if has(&[
        "docker build",
        "image",
        "package",
        "bundle",
        "assemble",
        "jar",
    ]) {
        "package"
    } else if has(&["publish", "push", "upload", "release"]) {
        "publish"
    } else if has(&["deploy", "rollout", "helm"]) {
        "deploy"
    } else if has(&["compile", "build", "javac", "tsc", "make"]) {
        "compile"
    } else {
        "other"
    }
}

/// The first 8 KiB (the schema's limit for `log_excerpt`) of a text, cut on a character.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 8 * 1024;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_timestamp_formats_of_ci_systems() {
        for (raw, want) in [
            ("2021-08-05T10:34:58Z", "2021-08-05T10:34:58Z"),
            ("2021-02-23T02:41:37.886Z", "2021-02-23T02:41:37.886Z"),
            ("2023-01-10 13:50:02 UTC", "2023-01-10T13:50:02Z"),
            ("2023-01-10 13:50:02 +0100", "2023-01-10T12:50:02Z"),
            ("2016-08-12T17:23:21+02:00", "2016-08-12T15:23:21Z"),
        ] {
            assert_eq!(parse_time(raw).map(rfc3339).as_deref(), Some(want), "{raw}");
        }
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn step_names_hint_at_the_stage_that_failed() {
        for (name, stage) in [
            ("Run yarn run format-check", "format"),
            ("Run yarn run js-lint", "lint"),
            ("cargo clippy -- -D warnings", "lint"),
            ("Run actions/checkout@v4", "checkout"),
            ("Run yarn install", "dependencies"),
            ("Run integration tests", "integration_test"),
            ("pytest", "unit_test"),
            ("Build", "compile"),
            ("Set up job", "infra"),
            ("docker build and push image", "package"),
            ("Deploy to staging", "deploy"),
            ("something else", "other"),
        ] {
            assert_eq!(stage_hint(name), stage, "{name}");
        }
    }

    #[test]
    fn long_event_ids_are_hashed_within_the_limit() {
        let long = "r".repeat(300);
        let id = event_id(&["github", "job", &long, "1"]);
        assert!(
            id.starts_with("github:sha256:") && id.len() <= MAX_EVENT_ID,
            "{id}"
        );
        assert_eq!(id, event_id(&["github", "job", &long, "1"]));
        assert_eq!(event_id(&["gitlab", "job", "5", "6"]), "gitlab:job:5:6");
    }

    #[test]
    fn excerpts_are_cut_on_a_character_boundary() {
        let text = "é".repeat(5000);
        let cut = excerpt(&text);
        assert!(cut.len() <= 8 * 1024 && text.starts_with(&cut));
    }
}
