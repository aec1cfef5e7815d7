//! The normalisers on real payloads (`tests/fixtures/`, see SOURCES.md there) and on our own
//! edge cases: every field of the resulting build events, and every event valid for the schema
//! and the core decoder, with no person in it but the `author` the decoder pseudonymises.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use buildcost_adapters::{
    BuildEvent, Format, IntegrationsConfig, MappingRule, Normalised, Normaliser, NormaliserSettings,
};
use buildcost_model::{Classifier, Decoder, Pseudonymiser, RejectReason};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

fn fixture(path: &str) -> Vec<u8> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn json_fixture(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).unwrap()
}

/// The sections of a configuration file the normalisers read.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Sections {
    mapping: Vec<MappingRule>,
    integrations: IntegrationsConfig,
    pricing: Pricing,
    webhook: Webhook,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Pricing {
    runner_classes: std::collections::BTreeMap<String, toml::Value>,
}

#[derive(serde::Deserialize)]
#[serde(default)]
struct Webhook {
    max_body_bytes: usize,
}

impl Default for Webhook {
    fn default() -> Self {
        Webhook {
            max_body_bytes: NormaliserSettings::default().max_payload_bytes,
        }
    }
}

/// A configuration with mapping rules for the fixtures' repositories and a price table.
fn config(extra: &str) -> NormaliserSettings {
    let text = format!(
        r#"
{extra}

[[mapping]]
repository = "codertocat/*"
team = "hello"
product = "greetings"

[[mapping]]
namespace = "octo-org"
team = "octo"

[[mapping]]
namespace = "jsmithy2"
team = "release"
product = "delivery"

[[mapping]]
repository = "gitlab-org/*"
team = "gitlab-test"

[[mapping]]
runner = "linux-large-*"
runner_class = "large"

[[mapping]]
repository = "nightly-*"
team = "qa"

[[mapping]]
namespace = "search-ci"
team = "search"
runner_class = "highmem"

[[mapping]]
repository = "my*"
team = "tekton-demo"
runner_class = "medium"

[pricing.runner_classes.docker]
[pricing.runner_classes.medium]
[pricing.runner_classes.large]
[pricing.runner_classes.highmem]
"#
    );
    let c: Sections = toml::from_str(&text).unwrap();
    for (i, rule) in c.mapping.iter().enumerate() {
        rule.validate(&format!("mapping[{i}]")).unwrap();
    }
    c.integrations.validate().unwrap();
    NormaliserSettings {
        mapping: c.mapping,
        integrations: c.integrations,
        priced_classes: c.pricing.runner_classes.into_keys().collect(),
        max_payload_bytes: c.webhook.max_body_bytes,
    }
}

fn events(n: &Normaliser, format: Format, payload: &[u8]) -> Vec<BuildEvent> {
    match n.normalise(format, payload) {
        Normalised::Events(e) => e,
        other => panic!("expected events, got {other:?}"),
    }
}

fn one(n: &Normaliser, format: Format, payload: &[u8]) -> BuildEvent {
    let mut e = events(n, format, payload);
    assert_eq!(e.len(), 1);
    e.remove(0)
}

fn with(mut v: Value, pointer: &str, value: Value) -> Vec<u8> {
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer}")) = value;
    serde_json::to_vec(&v).unwrap()
}

fn ignored(n: &Normaliser, format: Format, payload: &[u8]) -> String {
    match n.normalise(format, payload) {
        Normalised::Ignored(why) => why,
        other => panic!("expected ignored, got {other:?}"),
    }
}

fn rejected(n: &Normaliser, format: Format, payload: &[u8]) -> buildcost_adapters::Rejected {
    match n.normalise(format, payload) {
        Normalised::Rejected(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn github_workflow_jobs_become_builds() {
    let n = Normaliser::new(&config("")).unwrap();
    let failed = one(
        &n,
        Format::Github,
        &fixture("github/workflow_job.completed.failure.with-organization.json"),
    );
    assert_eq!(
        failed.event_id,
        "github:job:Codertocat/Hello-World:289782451:1"
    );
    assert_eq!(failed.source, "github");
    assert_eq!(failed.build_id, "289782451");
    assert_eq!(failed.pipeline, "CodeQL / linters");
    assert_eq!(failed.repository, "Codertocat/Hello-World");
    assert_eq!(failed.branch.as_deref(), Some("main"));
    assert_eq!(
        failed.commit.as_deref(),
        Some("3484a3fb816e0859fd6e1cea078d76385ff50625")
    );
    assert_eq!(
        (failed.team.as_str(), failed.product.as_deref()),
        ("hello", Some("greetings"))
    );
    assert_eq!(failed.author.as_deref(), Some("Codertocat"));
    assert_eq!(failed.queued_at.as_deref(), Some("2021-08-05T10:33:58Z"));
    assert_eq!(failed.started_at, "2021-08-05T10:34:58Z");
    assert_eq!(failed.finished_at, "2021-08-05T10:38:16Z");
    assert_eq!(failed.status, "failure");
    assert_eq!(
        failed.failure_stage.as_deref(),
        Some("format"),
        "the failed step is `Run yarn run format-check`"
    );
    assert_eq!(
        failed.runner_class, "ubuntu-latest",
        "no priced class: the first label"
    );
    assert_eq!(
        (failed.attempt, failed.correlation_id.as_deref()),
        (Some(1), None),
        "a run id is not a business correlation id"
    );
    assert_eq!(
        failed.labels["github.failed_step"],
        "Run yarn run format-check"
    );
    assert_eq!(failed.labels["buildcost.team_from"], "mapping[0]");

    let ok = one(
        &n,
        Format::Github,
        &fixture("github/workflow_job.completed.success.with-organization.json"),
    );
    assert_eq!((ok.status.as_str(), ok.failure_stage), ("success", None));

    for unfinished in [
        "github/workflow_job.in_progress.json",
        "github/workflow_job.queued.json",
    ] {
        let why = ignored(&n, Format::Github, &fixture(unfinished));
        assert!(why.contains("not finished"), "{why}");
    }
    let why = ignored(
        &n,
        Format::Github,
        &fixture("github/workflow_run.completed.json"),
    );
    assert!(
        why.contains("github_builds"),
        "runs are not counted by default: {why}"
    );
}

#[test]
fn github_conclusions_map_to_statuses() {
    let n = Normaliser::new(&config("")).unwrap();
    let base = json_fixture("github/workflow_job.completed.failure.with-organization.json");
    for (conclusion, status) in [
        ("success", "success"),
        ("failure", "failure"),
        ("cancelled", "cancelled"),
        ("timed_out", "timeout"),
        ("startup_failure", "error"),
        ("stale", "cancelled"),
        ("neutral", "success"),
    ] {
        let e = one(
            &n,
            Format::Github,
            &with(base.clone(), "/workflow_job/conclusion", json!(conclusion)),
        );
        assert_eq!(e.status, status, "{conclusion}");
        assert_eq!(
            e.failure_stage.is_some(),
            status == "failure",
            "{conclusion}"
        );
    }
    for skipped in ["skipped", "action_required"] {
        ignored(
            &n,
            Format::Github,
            &with(base.clone(), "/workflow_job/conclusion", json!(skipped)),
        );
    }
    let r = rejected(
        &n,
        Format::Github,
        &with(base.clone(), "/workflow_job/conclusion", json!("exploded")),
    );
    assert_eq!(r.reason, RejectReason::InvalidField);
    // A re-run: the attempt is part of the id, so it is a new build, not a duplicate.
    let rerun = one(
        &n,
        Format::Github,
        &with(base, "/workflow_job/run_attempt", json!(3)),
    );
    assert_eq!(
        rerun.event_id,
        "github:job:Codertocat/Hello-World:289782451:3"
    );
    assert_eq!(rerun.attempt, Some(3));
}

#[test]
fn runner_labels_pick_a_priced_class_and_payload_teams_win() {
    let n = Normaliser::new(&config("")).unwrap();
    let base = json_fixture("github/workflow_job.completed.failure.with-organization.json");
    let labelled = with(
        base.clone(),
        "/workflow_job/labels",
        json!(["self-hosted", "Docker"]),
    );
    assert_eq!(one(&n, Format::Github, &labelled).runner_class, "docker");
    let big = with(
        base.clone(),
        "/workflow_job/labels",
        json!(["linux-large-3"]),
    );
    assert_eq!(one(&n, Format::Github, &big).runner_class, "large");
    let mut v = base;
    v["repository"]["custom_properties"] = json!({"team": "Checkout", "product": "shop"});
    let e = one(&n, Format::Github, &serde_json::to_vec(&v).unwrap());
    assert_eq!(
        (e.team.as_str(), e.product.as_deref()),
        ("Checkout", Some("shop"))
    );
    assert!(!e.labels.contains_key("buildcost.team_from"));
}

#[test]
fn github_workflow_runs_when_runs_are_counted() {
    let n = Normaliser::new(&config(
        "[integrations]\ngithub_builds = \"runs\"\n[[mapping]]\nrepository = \"*\"\nrunner_class = \"medium\"",
    ))
    .unwrap();
    let e = one(
        &n,
        Format::Github,
        &fixture("github/workflow_run.completed.json"),
    );
    assert_eq!(e.event_id, "github:run:octo-org/octo-repo:289782451:1");
    assert_eq!(e.team, "octo");
    assert_eq!(e.trigger.as_deref(), Some("api"), "repository_dispatch");
    assert_eq!(e.status, "success");
    assert_eq!(e.author.as_deref(), Some("Codertocat"));
    assert_eq!(e.queued_at.as_deref(), Some("2020-10-05T16:33:24Z"));
    assert_eq!(
        (e.started_at.as_str(), e.finished_at.as_str()),
        ("2020-10-05T16:33:49Z", "2020-10-05T16:33:49Z")
    );
    assert_eq!(e.runner_class, "medium");
    let job = fixture("github/workflow_job.completed.success.with-organization.json");
    assert!(ignored(&n, Format::Github, &job).contains("runs"));
    let requested = fixture("github/workflow_run.requested.json");
    assert!(ignored(&n, Format::Github, &requested).contains("requested"));
}

#[test]
fn a_build_no_rule_maps_to_a_team_is_rejected_without_a_person() {
    let n = Normaliser::new(&NormaliserSettings::default()).unwrap();
    let r = rejected(&n, Format::Gitlab, &fixture("gitlab/job.json"));
    assert_eq!(r.reason, RejectReason::MissingField);
    assert!(
        r.detail.starts_with("team:") && r.detail.contains("jsmithy2/release-tools-fake"),
        "{}",
        r.detail
    );
    let partial = r.partial.to_string();
    assert!(r.partial.get("author").is_none());
    for person in ["John Smith", "john@smith.com", "avatar"] {
        assert!(!partial.contains(person), "{person} in {partial}");
    }
    assert_eq!(r.partial["event_id"], "gitlab:job:31537070:3580121225");
}

#[test]
fn gitlab_jobs_become_builds() {
    let n = Normaliser::new(&config("")).unwrap();
    let e = one(&n, Format::Gitlab, &fixture("gitlab/job.json"));
    assert_eq!(e.event_id, "gitlab:job:31537070:3580121225");
    assert_eq!(e.pipeline, "auto_deploy:start");
    assert_eq!(e.repository, "jsmithy2/release-tools-fake");
    assert_eq!(
        (e.team.as_str(), e.product.as_deref()),
        ("release", Some("delivery"))
    );
    assert_eq!(e.status, "success");
    assert_eq!(
        e.failure_category, None,
        "a success's failure_reason is ignored"
    );
    assert_eq!(e.attempt, Some(2), "retries_count 1");
    assert_eq!(
        e.runner_class, "docker",
        "the tag that names a priced class"
    );
    assert_eq!(e.queued_at.as_deref(), Some("2023-01-10T13:50:02Z"));
    assert_eq!(e.started_at, "2023-01-10T13:50:05Z");
    assert_eq!(e.finished_at, "2023-01-10T13:50:54Z");
    assert_eq!(e.branch.as_deref(), Some("main"));
    assert_eq!(e.author.as_deref(), Some("jsmithy2"));
    assert_eq!(
        e.correlation_id, None,
        "a pipeline id is not a business correlation id"
    );
    assert!(e.change_title.as_deref().is_some_and(|t| !t.contains('\n')));

    let created = ignored(&n, Format::Gitlab, &fixture("gitlab/build.json"));
    assert!(created.contains("created"), "{created}");
    let pipeline = ignored(&n, Format::Gitlab, &fixture("gitlab/pipeline.json"));
    assert!(pipeline.contains("gitlab_builds"), "{pipeline}");
}

#[test]
fn gitlab_failure_reasons_set_status_and_category() {
    let n = Normaliser::new(&config("")).unwrap();
    let base = json_fixture("gitlab/job.json");
    let failed = |reason: &str, stage: &str| {
        let mut v = base.clone();
        v["build_status"] = json!("failed");
        v["build_failure_reason"] = json!(reason);
        v["build_stage"] = json!(stage);
        one(&n, Format::Gitlab, &serde_json::to_vec(&v).unwrap())
    };
    let e = failed("runner_system_failure", "test");
    assert_eq!(
        (e.status.as_str(), e.failure_category.as_deref()),
        ("failure", Some("infra"))
    );
    assert_eq!(e.labels["gitlab.failure_reason"], "runner_system_failure");
    let e = failed("stuck_or_timeout_failure", "test");
    assert_eq!(
        (e.status.as_str(), e.failure_category.as_deref()),
        ("timeout", None)
    );
    let e = failed("script_failure", "lint");
    assert_eq!(
        (
            e.status.as_str(),
            e.failure_category.as_deref(),
            e.failure_stage.as_deref()
        ),
        ("failure", None, Some("lint")),
        "a script failure is classified at ingest from its stage"
    );
    let e = failed("missing_dependency_failure", "build");
    assert_eq!(e.failure_category.as_deref(), Some("dependency"));
    let mut cancelled = base.clone();
    cancelled["build_status"] = json!("canceled");
    cancelled["build_started_at"] = Value::Null;
    let e = one(&n, Format::Gitlab, &serde_json::to_vec(&cancelled).unwrap());
    assert_eq!(e.status, "cancelled");
    assert_eq!(e.started_at, e.finished_at, "never started: no runner time");
}

#[test]
fn gitlab_pipelines_when_pipelines_are_counted() {
    let n = Normaliser::new(&config("[integrations]\ngitlab_builds = \"pipelines\"")).unwrap();
    let e = one(&n, Format::Gitlab, &fixture("gitlab/pipeline.json"));
    assert_eq!(e.event_id, "gitlab:pipeline:1:31");
    assert_eq!(e.repository, "gitlab-org/gitlab-test");
    assert_eq!(e.team, "gitlab-test");
    assert_eq!(
        e.trigger.as_deref(),
        Some("pull_request"),
        "merge_request_event"
    );
    assert_eq!(e.finished_at, "2016-08-12T15:26:29Z");
    assert_eq!(
        e.started_at, "2016-08-12T15:25:26Z",
        "finished_at - duration (63 s)"
    );
    assert_eq!(e.queued_at.as_deref(), Some("2016-08-12T15:23:28Z"));
    assert_eq!(e.runner_class, "docker");
    assert_eq!(e.pipeline, "pipeline");
    assert!(ignored(&n, Format::Gitlab, &fixture("gitlab/job.json")).contains("pipelines"));
}

#[test]
fn jenkins_builds_from_the_rest_api_and_the_notification_plugin() {
    let n = Normaliser::new(&config("")).unwrap();
    let e = one(&n, Format::Jenkins, &fixture("jenkins/rest-failure.json"));
    assert_eq!(
        e.event_id,
        "jenkins:jenkins.example.com/acme/checkout-service/main:1287"
    );
    assert_eq!(e.pipeline, "acme/checkout-service/main");
    assert_eq!(e.repository, "acme/checkout-service");
    assert_eq!(
        e.team, "Payments",
        "the BUILDCOST_TEAM parameter (lower-cased at ingest)"
    );
    assert_eq!(
        e.runner_class, "large",
        "node linux-large-07 by a runner rule"
    );
    assert_eq!(e.status, "failure");
    assert_eq!(e.trigger.as_deref(), Some("manual"));
    assert_eq!(e.author.as_deref(), Some("ada.example"));
    assert_eq!(e.branch.as_deref(), Some("main"));
    assert_eq!(
        e.commit.as_deref(),
        Some("9fceb02d0ae598e95dc970b74767f19372d61af8")
    );
    assert_eq!(e.started_at, "2025-11-02T10:00:00Z");
    assert_eq!(e.finished_at, "2025-11-02T10:05:42.117Z");
    assert_eq!(e.queued_at.as_deref(), Some("2025-11-02T09:59:47.500Z"));

    let unstable = one(&n, Format::Jenkins, &fixture("jenkins/rest-unstable.json"));
    assert_eq!(
        (
            unstable.status.as_str(),
            unstable.failure_category.as_deref()
        ),
        ("failure", Some("test"))
    );
    assert_eq!(unstable.trigger.as_deref(), Some("schedule"));
    assert_eq!(
        (unstable.team.as_str(), unstable.runner_class.as_str()),
        ("qa", "built-in")
    );
    assert_eq!(
        unstable.event_id,
        "jenkins:jenkins.example.com:8080/nightly-regression:311"
    );

    let base = json_fixture("jenkins/rest-failure.json");
    let aborted = one(
        &n,
        Format::Jenkins,
        &with(base.clone(), "/result", json!("ABORTED")),
    );
    assert_eq!(aborted.status, "cancelled");
    ignored(
        &n,
        Format::Jenkins,
        &with(base.clone(), "/result", json!("NOT_BUILT")),
    );
    ignored(&n, Format::Jenkins, &with(base, "/building", json!(true)));

    let note = one(
        &n,
        Format::Jenkins,
        &fixture("jenkins/notification-completed.json"),
    );
    assert_eq!(
        note.event_id,
        "jenkins:jenkins.example.com/acme/web-frontend/main:77"
    );
    assert_eq!(note.repository, "acme/web-frontend");
    assert_eq!(
        (
            note.team.as_str(),
            note.product.as_deref(),
            note.runner_class.as_str()
        ),
        ("storefront", Some("Shop"), "medium")
    );
    assert!(note
        .log_excerpt
        .as_deref()
        .is_some_and(|l| l.contains("TS1005")));
    assert_eq!(note.finished_at, "2025-11-02T11:01:01Z");
    let started = with(
        json_fixture("jenkins/notification-completed.json"),
        "/build/phase",
        json!("STARTED"),
    );
    ignored(&n, Format::Jenkins, &started);
}

#[test]
fn cdevents_runs_take_their_start_from_custom_data_or_the_started_event() {
    let runs = Normaliser::new(&config(
        "[integrations]\ncdevents_builds = \"pipelineruns\"",
    ))
    .unwrap();
    let finished = fixture("cdevents/pipelinerun_finished.json");
    let r = rejected(&runs, Format::Cdevents, &finished);
    assert_eq!(r.reason, RejectReason::MissingField);
    assert!(r.detail.starts_with("started_at:"), "{}", r.detail);
    ignored(
        &runs,
        Format::Cdevents,
        &fixture("cdevents/pipelinerun_queued.json"),
    );
    ignored(
        &runs,
        Format::Cdevents,
        &fixture("cdevents/pipelinerun_started.json"),
    );
    let e = one(&runs, Format::Cdevents, &finished);
    assert_eq!(
        e.event_id,
        "cdevents:pipelinerun:/event/source/123:mySubject123"
    );
    assert_eq!(
        (e.source.as_str(), e.pipeline.as_str(), e.team.as_str()),
        ("tekton", "myPipeline", "tekton-demo")
    );
    assert_eq!(e.status, "failure");
    assert_eq!(
        e.log_excerpt.as_deref(),
        Some("Something went wrong\nWith some more details")
    );
    assert_eq!(
        e.correlation_id.as_deref(),
        Some("4c8cb7dd-3448-41de-8768-eec704e2829b")
    );
    assert_eq!(
        e.started_at, e.finished_at,
        "the fixture's started and finished share a timestamp"
    );
    ignored(
        &runs,
        Format::Cdevents,
        &fixture("cdevents/taskrun_finished.json"),
    );
    ignored(
        &runs,
        Format::Cdevents,
        &fixture("cdevents/build_finished.json"),
    );

    let error = one(
        &runs,
        Format::Cdevents,
        &fixture("own/pipelinerun-finished-error.json"),
    );
    assert_eq!(
        (
            error.status.as_str(),
            error.team.as_str(),
            error.runner_class.as_str()
        ),
        ("error", "search", "highmem")
    );
    assert_eq!(
        error.started_at, "2026-11-02T10:48:15Z",
        "Tekton's status.startTime"
    );
    assert_eq!(error.finished_at, "2026-11-02T11:00:45.500Z");
    assert_eq!(
        error.log_excerpt, None,
        "errors of a platform error do not need classifying"
    );

    let tasks = Normaliser::new(&config("")).unwrap();
    let t = one(
        &tasks,
        Format::Cdevents,
        &fixture("own/taskrun-finished-0.4.json"),
    );
    assert_eq!(t.status, "cancelled", "outcome `cancel`");
    assert_eq!(
        (
            t.team.as_str(),
            t.product.as_deref(),
            t.runner_class.as_str()
        ),
        ("payments", Some("shop"), "large")
    );
    assert_eq!(
        (t.repository.as_str(), t.branch.as_deref()),
        ("acme/payments-api", Some("feature/refunds"))
    );
    assert_eq!(
        (t.started_at.as_str(), t.attempt),
        ("2026-11-02T10:05:00Z", Some(2))
    );
    assert_eq!(
        t.correlation_id.as_deref(),
        Some("a1f2e3d4-0000-4000-8000-000000000001")
    );
    let mut v = json_fixture("own/taskrun-finished-0.4.json");
    v["context"]["type"] = json!("dev.cdevents.taskrun.finished.1.0.0");
    assert_eq!(
        rejected(&tasks, Format::Cdevents, &serde_json::to_vec(&v).unwrap()).reason,
        RejectReason::UnsupportedVersion
    );
    let envelope = json!({"specversion": "1.0", "type": "dev.cdevents.taskrun.finished.0.2.0",
        "data": json_fixture("own/taskrun-finished-0.4.json")});
    assert_eq!(
        one(
            &tasks,
            Format::Cdevents,
            &serde_json::to_vec(&envelope).unwrap()
        )
        .event_id,
        t.event_id
    );
}

#[test]
fn bad_payloads_are_rejected_with_a_reason() {
    let n = Normaliser::new(&config("")).unwrap();
    for format in Format::ALL.iter().copied() {
        assert_eq!(
            rejected(&n, format, b"{not json").reason,
            RejectReason::InvalidJson
        );
        assert_eq!(
            rejected(&n, format, b"[1, 2]").reason,
            RejectReason::InvalidJson
        );
    }
    let base = json_fixture("github/workflow_job.completed.failure.with-organization.json");
    let r = rejected(
        &n,
        Format::Github,
        &with(
            base.clone(),
            "/workflow_job/completed_at",
            json!("last tuesday"),
        ),
    );
    assert_eq!(r.reason, RejectReason::InvalidTimestamp);
    assert!(
        r.detail.starts_with("workflow_job.completed_at:"),
        "{}",
        r.detail
    );
    let r = rejected(
        &n,
        Format::Github,
        &with(base, "/workflow_job/started_at", Value::Null),
    );
    assert_eq!(r.reason, RejectReason::MissingField);
    assert_eq!(
        rejected(&n, Format::Gitlab, b"{}").reason,
        RejectReason::MissingField
    );
    let small = Normaliser::new(&config("[webhook]\nmax_body_bytes = 100")).unwrap();
    let r = rejected(&small, Format::Gitlab, &fixture("gitlab/job.json"));
    assert_eq!(r.reason, RejectReason::TooLarge);
    assert!(r.detail.contains("webhook.max_body_bytes"), "{}", r.detail);
    assert_eq!(
        rejected(&n, Format::Cdevents, b"{}").reason,
        RejectReason::MissingField
    );
}

/// Every event any fixture gives satisfies the schema, decodes, and names no person but in
/// `author`, which the decoder replaces by a pseudonym.
#[test]
fn every_event_is_valid_and_carries_no_person() {
    let schema: Value = serde_json::from_slice(
        &std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/build-event.v1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let decoder = Decoder::new(
        65536,
        Pseudonymiser::new(b"k").unwrap(),
        Classifier::builtin().unwrap(),
    );
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    let people = [
        "John Smith",
        "john@smith.com",
        "User1",
        "user1@example.com",
        "user@gitlab.com",
        "Matthias Fax",
        "matfax",
        "Ada Example",
        "ada@example.com",
        "avatar",
    ];
    let mut seen = 0;
    for config_extra in [
        "",
        "[integrations]\ngithub_builds = \"runs\"\ngitlab_builds = \"pipelines\"\ncdevents_builds = \"pipelineruns\"\n[[mapping]]\nrepository = \"*\"\nrunner_class = \"medium\"",
    ] {
        let n = Normaliser::new(&config(config_extra)).unwrap();
        for (format, dir) in [
            (Format::Github, "github"),
            (Format::Gitlab, "gitlab"),
            (Format::Jenkins, "jenkins"),
            (Format::Cdevents, "cdevents"),
            (Format::Cdevents, "own"),
        ] {
            let mut files: Vec<_> = std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort(); // `…_finished` before `…_started`: both orders are exercised above
            for path in files {
                let Normalised::Events(events) = n.normalise(format, &std::fs::read(&path).unwrap()) else {
                    continue;
                };
                for e in events {
                    seen += 1;
                    let bytes = e.to_json_bytes();
                    let value: Value = serde_json::from_slice(&bytes).unwrap();
                    assert!(
                        validator.is_valid(&value),
                        "{}: {:?}",
                        path.display(),
                        validator.iter_errors(&value).map(|e| e.to_string()).collect::<Vec<_>>()
                    );
                    let row = decoder
                        .decode(&bytes, now)
                        .unwrap_or_else(|r| panic!("{}: {r:?}", path.display()));
                    if let (Some(author), buildcost_model::Event::Build(row)) = (&e.author, &row) {
                        assert_ne!(row.author_key.as_deref(), Some(author.as_str()));
                    }
                    let mut without_author = value.clone();
                    without_author.as_object_mut().unwrap().remove("author");
                    let text = without_author.to_string();
                    for person in people {
                        assert!(!text.contains(person), "{person} in {}: {text}", path.display());
                    }
                }
            }
        }
    }
    assert!(seen >= 10, "only {seen} events from the fixtures");
}

/// Deployments from each CI/CD system (spec section 12): what the deployment event says, no
/// person in it, and the decoder takes it as a deployment.
#[test]
fn deployments_are_read_from_github_gitlab_and_cdevents() {
    use buildcost_adapters::DeploymentEvent;
    let n = Normaliser::new(&config(
        "[[mapping]]\nrepository = \"Codertocat/*\"\nteam = \"hello\"\n[[mapping]]\nnamespace = \"acme\"\nteam = \"shop\"\n[[mapping]]\nrepository = \"myapp\"\nteam = \"apps\"",
    ))
    .unwrap();
    let deployment = |format: Format, file: &str| -> DeploymentEvent {
        match n.normalise(format, &fixture(file)) {
            Normalised::Deployment(d) => *d,
            other => panic!("{file}: expected a deployment, got {other:?}"),
        }
    };
    let gh = deployment(Format::Github, "own/github-deployment-status.json");
    assert_eq!(
        (
            gh.repository.as_str(),
            gh.commit.as_str(),
            gh.environment.as_str(),
            gh.status
        ),
        (
            "Codertocat/Hello-World",
            "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
            "production",
            "success"
        )
    );
    assert_eq!(
        (gh.team.as_str(), gh.finished_at.as_str()),
        ("hello", "2019-05-15T15:20:55Z")
    );
    assert_eq!(
        gh.event_id,
        "github:deployment:Codertocat/Hello-World:209916254"
    );
    let gl = deployment(Format::Gitlab, "own/gitlab-deployment.json");
    assert_eq!(
        (
            gl.repository.as_str(),
            gl.commit.as_str(),
            gl.team.as_str(),
            gl.finished_at.as_str()
        ),
        (
            "acme/checkout",
            "279484c09fbe69ededfced8c1bb6e6d24616b468",
            "shop",
            "2026-11-02T09:04:10Z"
        )
    );
    let cd = deployment(Format::Cdevents, "own/service-deployed-argocd.json");
    assert_eq!(
        (
            cd.repository.as_str(),
            cd.team.as_str(),
            cd.product.as_deref(),
            cd.correlation_ids.as_slice()
        ),
        (
            "acme/checkout",
            "payments",
            Some("checkout"),
            &["PAY-123".to_owned()][..]
        )
    );
    let spec = deployment(Format::Cdevents, "cdevents/service_deployed.json");
    // Builds carry the titles request ids are found in.
    let runs = Normaliser::new(&config("[integrations]\ngithub_builds = \"runs\"\ngitlab_builds = \"pipelines\"\n[[mapping]]\nrepository = \"*\"\nrunner_class = \"medium\"")).unwrap();
    let run = one(
        &runs,
        Format::Github,
        &fixture("github/workflow_run.completed.json"),
    );
    assert_eq!(
        run.change_title.as_deref(),
        Some("ci(action): update actions/setup-node digest to 8c91899")
    );
    let mr = one(&runs, Format::Gitlab, &fixture("gitlab/pipeline.json"));
    assert_eq!(mr.change_title.as_deref(), Some("Test"));
    assert_eq!(
        (
            spec.repository.as_str(),
            spec.environment.as_str(),
            spec.team.as_str()
        ),
        ("myapp", "test123", "apps")
    );

    // Unfinished states are ignored; a deployment without a team names the missing mapping.
    let mut pending: Value =
        serde_json::from_slice(&fixture("own/github-deployment-status.json")).unwrap();
    pending["deployment_status"]["state"] = json!("in_progress");
    assert!(matches!(
        n.normalise(Format::Github, pending.to_string().as_bytes()),
        Normalised::Ignored(_)
    ));
    let bare = Normaliser::new(&config("")).unwrap();
    match bare.normalise(Format::Gitlab, &fixture("own/gitlab-deployment.json")) {
        Normalised::Rejected(r) => assert!(r.detail.contains("team"), "{}", r.detail),
        other => panic!("expected a rejection, got {other:?}"),
    }

    let decoder = Decoder::new(
        65536,
        Pseudonymiser::new(b"k").unwrap(),
        Classifier::builtin().unwrap(),
    );
    let now = chrono::Utc::now();
    for d in [gh, gl, cd, spec] {
        let bytes = d.to_json_bytes();
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        for person in ["codertocat", "ada", "lovelace"] {
            assert!(
                !text.contains(&format!("\"{person}\"")) && !text.contains("ada@"),
                "{text}"
            );
        }
        assert!(
            matches!(
                decoder.decode(&bytes, now),
                Ok(buildcost_model::Event::Deployment(_))
            ),
            "{text}"
        );
    }
}
