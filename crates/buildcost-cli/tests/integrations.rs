//! CI-system integrations end to end: `ingest --format` backfills native payloads into the
//! store, and `buildcost webhook` verifies, normalises and produces them to Kafka, where
//! `buildcost ingest` stores them. No person in the store, the dead letters or the logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{buildcost, run_ok, sample, wait_until, Served};
use hmac::{Hmac, Mac};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use serde_json::{json, Value};
use sha2::Sha256;

const TOPIC: &str = "ci.build-events";
const DLQ: &str = "ci.build-events.dlq";

/// People in the fixtures, who must not reach the store, a dead letter or a log.
/// (GitHub's `Codertocat` and GitLab's `jsmithy2` also own the fixtures' repositories, so
/// they stay in repository names; `ada.example` is only an author.)
const PEOPLE: &[&str] = &[
    "John Smith",
    "john@smith.com",
    "ada.example",
    "Ada Example",
    "ada@example.com",
];

fn fixture(path: &str) -> Value {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../buildcost-adapters/tests/fixtures")
        .join(path);
    serde_json::from_slice(&std::fs::read(&full).unwrap()).unwrap()
}

fn config(dir: &Path, bootstrap: &str) -> PathBuf {
    std::fs::write(dir.join("github.secret"), "gh-secret\n").unwrap();
    std::fs::write(dir.join("gitlab.token"), "gl-token").unwrap();
    std::fs::write(dir.join("bearer.token"), "ci-token\n").unwrap();
    let text = format!(
        r#"
# The public fixtures are years old: keep them past the default 400 days.
[store]
path = "store"
retention_days = 5000

[kafka]
brokers = "{bootstrap}"
topic = "{TOPIC}"
dead_letter_topic = "{DLQ}"
group_id = "integrations"

[ingest]
linger = "200ms"

[webhook]
max_body_bytes = 65536
github_secret_file = "github.secret"
gitlab_token_file = "gitlab.token"
token_file = "bearer.token"

[[mapping]]
repository = "codertocat/*"
team = "hello"
product = "greetings"

[[mapping]]
namespace = "jsmithy2"
team = "release"

[[mapping]]
runner = "linux-large-*"
runner_class = "large"

[pricing.runner_classes.docker]
cpu_cores = 4
memory_gb = 8

[pricing.runner_classes.large]
cpu_cores = 8
memory_gb = 32
"#
    );
    let path = dir.join("buildcost.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

fn query(config: &Path, sql: &str) -> Vec<Value> {
    let out = run_ok(
        buildcost()
            .arg("--config")
            .arg(config)
            .args(["query", sql, "--format", "json"]),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str::<Vec<Value>>(&text)
        .or_else(|_| {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str)
                .collect()
        })
        .unwrap_or_else(|e| panic!("query output is not JSON ({e}): {text}"))
}

fn assert_no_person(what: &str, text: &str) {
    for person in PEOPLE {
        assert!(!text.contains(person), "`{person}` in {what}:\n{text}");
    }
}

/// Every file under `dir`, as text (lossy), for privacy checks.
fn all_text(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.push_str(&all_text(&path));
        } else {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    out
}

#[test]
fn ingest_format_backfills_native_payloads_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "127.0.0.1:1");
    let job = fixture("github/workflow_job.completed.failure.with-organization.json");
    let mut unmapped = job.clone();
    unmapped["repository"]["full_name"] = json!("elsewhere/app");
    unmapped["repository"]["owner"]["login"] = json!("elsewhere");
    unmapped["organization"]["login"] = json!("elsewhere");
    let github = dir.path().join("github.ndjson");
    std::fs::write(
        &github,
        [
            compact(&job),
            compact(&job), // a redelivery
            compact(&fixture(
                "github/workflow_job.completed.success.with-organization.json",
            )),
            compact(&fixture("github/workflow_job.queued.json")),
            compact(&unmapped),
            "{\"truncated\": ".to_owned(),
        ]
        .join("\n"),
    )
    .unwrap();
    let out = run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args(["ingest", "--format", "github", "--input"])
            .arg(&github),
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The two fixture jobs share their id (289782451): the success is the failure's redelivery
    // with another conclusion, so it is a duplicate too.
    assert_eq!(summary["accepted"], 1, "{summary}");
    assert_eq!(summary["duplicates"], 2, "{summary}");
    assert_eq!(summary["ignored"], 1, "{summary}");
    assert_eq!(summary["rejected"], 2, "{summary}");
    assert_eq!(
        summary["rejected_by_reason"]["missing_field"], 1,
        "{summary}"
    );
    assert_eq!(
        summary["rejected_by_reason"]["invalid_json"], 1,
        "{summary}"
    );
    assert_no_person("the ingest log", &String::from_utf8_lossy(&out.stderr));

    let gitlab = dir.path().join("gitlab.ndjson");
    std::fs::write(&gitlab, compact(&fixture("gitlab/job.json"))).unwrap();
    run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args(["ingest", "--format", "gitlab", "--input"])
            .arg(&gitlab),
    );
    let jenkins = dir.path().join("jenkins.ndjson");
    std::fs::write(&jenkins, compact(&fixture("jenkins/rest-failure.json"))).unwrap();
    run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args(["ingest", "--format", "jenkins", "--input"])
            .arg(&jenkins),
    );
    // A second backfill of the same payloads stores nothing new.
    let again = run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args(["ingest", "--format", "github", "--input"])
            .arg(&github),
    );
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(3))
    );

    let rows = query(
        &config,
        "SELECT event_id, team, source, status, waste_class, runner_class, unpriced, round(cost_eur, 6) AS cost \
         FROM builds ORDER BY event_id",
    );
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "github:job:Codertocat/Hello-World:289782451:1",
            "gitlab:job:31537070:3580121225",
            "jenkins:jenkins.example.com/acme/checkout-service/main:1287",
        ]
    );
    let github_row = &rows[0];
    assert_eq!(github_row["team"], "hello");
    assert_eq!(
        github_row["waste_class"], "avoidable_failure",
        "a failed format check is the northstar's waste"
    );
    assert_eq!(
        github_row["unpriced"], true,
        "ubuntu-latest is not in the price table"
    );
    assert_eq!(rows[1]["runner_class"], "docker");
    assert_eq!(
        (rows[2]["team"].as_str(), rows[2]["runner_class"].as_str()),
        (Some("payments"), Some("large"))
    );
    // 342.117 s on 8 cores and 32 GB at the default prices (0.04 €/core-h, 0.005 €/GB-h).
    let expected = 342.117 / 3600.0 * (8.0 * 0.04 + 32.0 * 0.005);
    assert!(
        (rows[2]["cost"].as_f64().unwrap() - expected).abs() < 1e-6,
        "{:?}",
        rows[2]
    );

    let store = all_text(&dir.path().join("store"));
    assert_no_person("the store (Parquet, dead letters, ledger)", &store);
    assert!(store.contains("no [[mapping]] rule with a team matches repository `elsewhere/app`"));
}

/// POST `body` with `headers`: the status code and the body of the answer.
fn post(addr: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    common::http_request(addr, "POST", path, headers, body)
}

fn github_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(b"gh-secret").unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[test]
fn webhook_verifies_normalises_and_produces_what_ingest_stores() {
    let cluster: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext> =
        rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 2, 1).unwrap();
    cluster.create_topic(DLQ, 1, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &bootstrap);
    let hook = Served::start(buildcost().arg("--config").arg(&config).args([
        "webhook",
        "--listen",
        "127.0.0.1:0",
    ]));
    let addr = hook.addr.clone();

    let job = serde_json::to_vec(&fixture(
        "github/workflow_job.completed.failure.with-organization.json",
    ))
    .unwrap();
    let signed = |body: &[u8]| {
        vec![
            ("X-Hub-Signature-256", github_signature(body)),
            ("X-GitHub-Event", "workflow_job".to_owned()),
        ]
    };
    let (status, body) = post(&addr, "/webhook/github", &signed(&job), &job);
    assert_eq!(status, 202, "{body}");
    assert!(
        body.contains("github:job:Codertocat/Hello-World:289782451:1"),
        "{body}"
    );
    let (status, _) = post(&addr, "/webhook/github", &signed(&job), &job);
    assert_eq!(
        status, 202,
        "a redelivery is accepted; ingest counts it as a duplicate"
    );
    let (status, body) = post(
        &addr,
        "/webhook/github",
        &[("X-Hub-Signature-256", github_signature(b"something else"))],
        &job,
    );
    assert_eq!(status, 401, "{body}");
    assert_eq!(post(&addr, "/webhook/github", &[], &job).0, 401);

    let queued = serde_json::to_vec(&fixture("github/workflow_job.queued.json")).unwrap();
    let (status, body) = post(&addr, "/webhook/github", &signed(&queued), &queued);
    assert_eq!((status, body.contains("ignored")), (200, true), "{body}");

    let mut unmapped = fixture("github/workflow_job.completed.failure.with-organization.json");
    unmapped["repository"]["full_name"] = json!("elsewhere/app");
    unmapped["repository"]["owner"]["login"] = json!("elsewhere");
    unmapped["organization"]["login"] = json!("elsewhere");
    unmapped["workflow_job"]["id"] = json!(1);
    let unmapped = serde_json::to_vec(&unmapped).unwrap();
    let (status, body) = post(&addr, "/webhook/github", &signed(&unmapped), &unmapped);
    assert_eq!(status, 422, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["reason"], "missing_field");

    let gitlab = serde_json::to_vec(&fixture("gitlab/job.json")).unwrap();
    assert_eq!(
        post(
            &addr,
            "/webhook/gitlab",
            &[("X-Gitlab-Token", "nope".into())],
            &gitlab
        )
        .0,
        401
    );
    let (status, body) = post(
        &addr,
        "/webhook/gitlab",
        &[("X-Gitlab-Token", "gl-token".into())],
        &gitlab,
    );
    assert_eq!(status, 202, "{body}");

    let bearer = vec![("Authorization", "Bearer ci-token".to_owned())];
    let jenkins = serde_json::to_vec(&fixture("jenkins/notification-completed.json")).unwrap();
    let (status, body) = post(&addr, "/webhook/jenkins", &bearer, &jenkins);
    assert_eq!(status, 202, "{body}");
    let tekton = serde_json::to_vec(&fixture("own/taskrun-finished-0.4.json")).unwrap();
    let (status, body) = post(&addr, "/webhook/cdevents", &bearer, &tekton);
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        post(
            &addr,
            "/webhook/cdevents",
            &[("Authorization", "Bearer wrong".into())],
            &tekton
        )
        .0,
        401
    );
    // Tekton's event sink cannot set headers: the token may come in the URL.
    let (status, body) = post(&addr, "/webhook/cdevents?token=ci-token", &[], &tekton);
    assert_eq!(status, 202, "a redelivery, accepted: {body}");
    assert_eq!(
        post(&addr, "/webhook/cdevents?token=nope", &[], &tekton).0,
        401
    );

    let huge = vec![b' '; 70_000];
    assert_eq!(post(&addr, "/webhook/jenkins", &bearer, &huge).0, 413);
    assert_eq!(post(&addr, "/webhook/travis", &bearer, b"{}").0, 404);

    let (_, metrics) = hook.get("/metrics");
    for (series, want) in [
        (
            "buildcost_webhook_requests_total{outcome=\"accepted\",source=\"github\"}",
            2.0,
        ),
        (
            "buildcost_webhook_requests_total{outcome=\"unauthorized\",source=\"github\"}",
            2.0,
        ),
        (
            "buildcost_webhook_requests_total{outcome=\"ignored\",source=\"github\"}",
            1.0,
        ),
        (
            "buildcost_webhook_requests_total{outcome=\"rejected\",source=\"github\"}",
            1.0,
        ),
        (
            "buildcost_webhook_requests_total{outcome=\"accepted\",source=\"gitlab\"}",
            1.0,
        ),
        (
            "buildcost_webhook_requests_total{outcome=\"too_large\",source=\"jenkins\"}",
            1.0,
        ),
        (
            "buildcost_webhook_requests_total{outcome=\"accepted\",source=\"cdevents\"}",
            2.0,
        ),
        (
            "buildcost_webhook_events_produced_total{source=\"github\"}",
            2.0,
        ),
        (
            "buildcost_webhook_events_produced_total{source=\"cdevents\"}",
            2.0,
        ),
        (
            "buildcost_webhook_dead_lettered_total{reason=\"missing_field\",source=\"github\"}",
            1.0,
        ),
    ] {
        assert_eq!(
            sample(&metrics, series),
            Some(want),
            "{series} in\n{metrics}"
        );
    }

    // The ingester stores what the receiver produced: 4 builds, the 2 redeliveries duplicates.
    let ingest = Served::start(buildcost().arg("--config").arg(&config).args([
        "ingest",
        "--listen",
        "127.0.0.1:0",
    ]));
    wait_until(
        Duration::from_secs(90),
        "the ingester stores 4 builds",
        || {
            ingest.metric("buildcost_events_accepted_total") == Some(4.0)
                && ingest.metric("buildcost_events_duplicate_total") == Some(2.0)
        },
        || ingest.get("/metrics").1,
    );
    let (status, out) = ingest.terminate();
    assert!(status.success(), "{out}");
    let rows = query(
        &config,
        "SELECT source, team, status FROM builds ORDER BY source",
    );
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_owned(),
                r["team"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("github".into(), "hello".into(), "failure".into()),
            ("gitlab".into(), "release".into(), "success".into()),
            ("jenkins".into(), "storefront".into(), "failure".into()),
            ("tekton".into(), "payments".into(), "cancelled".into()),
        ]
    );

    // The rejected payload is in the dead-letter topic with its reason, and names nobody.
    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "dlq-check")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[DLQ]).unwrap();
    let mut letter = None;
    wait_until(
        Duration::from_secs(30),
        "the dead letter",
        || {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                let headers: Vec<(String, String)> = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| {
                                (
                                    x.key.to_owned(),
                                    String::from_utf8_lossy(x.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                letter = Some((
                    headers,
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                ));
            }
            letter.is_some()
        },
        String::new,
    );
    let (headers, payload) = letter.unwrap();
    assert!(
        headers.contains(&("buildcost.reason".into(), "missing_field".into())),
        "{headers:?}"
    );
    assert!(
        headers.contains(&("buildcost.source".into(), "webhook/github".into())),
        "{headers:?}"
    );
    assert!(payload.contains("elsewhere/app"), "{payload}");
    assert_no_person("the dead letter", &payload);

    let log = hook.log_text();
    let (status, _) = hook.terminate();
    assert!(status.success());
    assert_no_person("the webhook log", &log);
    assert_no_person("the store", &all_text(&dir.path().join("store")));
}

#[test]
fn a_source_without_a_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("buildcost.toml");
    std::fs::write(&config, "[kafka]\nbrokers = \"127.0.0.1:1\"\n").unwrap();
    let hook = Served::start(buildcost().arg("--config").arg(&config).args([
        "webhook",
        "--listen",
        "127.0.0.1:0",
    ]));
    let job = serde_json::to_vec(&fixture("gitlab/job.json")).unwrap();
    let (status, body) = post(
        &hook.addr,
        "/webhook/gitlab",
        &[("X-Gitlab-Token", "x".into())],
        &job,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("webhook.gitlab_token_file"), "{body}");
    assert!(hook.log_text().contains("no webhook secret is configured"));
}
