//! The dashboards and rules against a real Prometheus: `buildcost run` consumes a generated
//! workload, Prometheus (with the shipped configuration, history backfilled from
//! `buildcost metrics --at`) scrapes it, and every PromQL expression of every dashboard panel
//! must evaluate without error and return series; every rule must be healthy, every recording
//! rule must return series; `promtool check config|rules|metrics` and `promtool test rules` pass.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use common::*;

const TOPIC: &str = "ci.build-events";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query: the API's JSON answer.
fn query(prometheus: &str, expr: &str) -> serde_json::Value {
    let (status, body) = http_get(
        prometheus,
        &format!("/api/v1/query?query={}", percent_encode(expr)),
    );
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("HTTP {status} for `{expr}`: {body}"))
}

fn series_count(answer: &serde_json::Value) -> usize {
    answer["data"]["result"].as_array().map_or(0, Vec::len)
}

/// Every PromQL expression of a dashboard's panels (rows included), with its panel's title.
fn panel_queries(board: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack: Vec<&serde_json::Value> = board["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = stack.pop() {
        if let Some(children) = panel["panels"].as_array() {
            stack.extend(children);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((
                    panel["title"].as_str().unwrap_or("?").to_owned(),
                    expr.to_owned(),
                ));
            }
        }
    }
    out
}

/// The panels' invariants: a description, a unit where numbers are shown, the data-source
/// variable and never a hard-coded uid.
fn check_panels(name: &str, board: &serde_json::Value) -> Vec<String> {
    let mut problems = Vec::new();
    let vars: Vec<&str> = board["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    if !vars.contains(&"datasource") {
        problems.push(format!("{name}: no `datasource` variable"));
    }
    for panel in board["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap_or("?");
        if panel["description"].as_str().is_none_or(|d| d.len() < 10) {
            problems.push(format!("{name} / {title}: no description"));
        }
        if panel["type"] != "text" {
            if panel["fieldConfig"]["defaults"]["unit"].as_str().is_none() {
                problems.push(format!("{name} / {title}: no unit"));
            }
            if panel["datasource"]["uid"] != "${datasource}" {
                problems.push(format!(
                    "{name} / {title}: data source is not ${{datasource}}"
                ));
            }
        }
    }
    problems
}

/// `buildcost metrics --at` for each instant, as OpenMetrics with timestamps (families kept
/// together, as the format wants), for `promtool tsdb create-blocks-from openmetrics`.
/// Samples carry the `job` and `instance` labels the scrape gives, so history and live series
/// are one series, as they are in a Prometheus that has been scraping for a week.
fn backfill(
    config: &Path,
    instance: &str,
    instants: &[(DateTime<Utc>, Vec<DateTime<Utc>>)],
) -> String {
    let target = format!("job=\"buildcost\",instance=\"{instance}\"");
    let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (at, copies) in instants {
        let out = run_ok(buildcost().arg("--config").arg(config).args([
            "metrics",
            "--at",
            &at.to_rfc3339(),
        ]));
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let family = line.split(['{', ' ']).next().unwrap().to_owned();
            let line = match line.split_once('{') {
                Some((name, rest)) => format!("{name}{{{target},{rest}"),
                None => line.replacen(' ', &format!("{{{target}}} "), 1),
            };
            for t in std::iter::once(at).chain(copies) {
                families
                    .entry(family.clone())
                    .or_default()
                    .push(format!("{line} {}", t.timestamp()));
            }
        }
    }
    let mut text = String::new();
    for (family, lines) in families {
        text.push_str(&format!("# TYPE {family} gauge\n"));
        for l in lines {
            text.push_str(&l);
            text.push('\n');
        }
    }
    text.push_str("# EOF\n");
    text
}

#[test]
fn every_dashboard_query_and_rule_returns_data_in_a_real_prometheus() {
    let Some(promtool) = external_tool("PROMTOOL", "promtool", &["--version"]) else {
        return;
    };
    let Some(prometheus_bin) = external_tool("BUILDCOST_PROMETHEUS", "prometheus", &["--version"])
    else {
        return;
    };
    let dashboards = repo().join("dashboards");
    let deploy = repo().join("deploy/prometheus");

    // The dashboards are what their generator writes, and well-formed.
    if let Some(python) = python_with(&[]) {
        run_ok(
            Command::new(python)
                .arg(dashboards.join("generate.py"))
                .arg("--check"),
        );
    }
    let boards: Vec<(String, serde_json::Value)> =
        ["finops-overview.json", "team.json", "pipeline-health.json"]
            .iter()
            .map(|n| {
                let text = std::fs::read_to_string(dashboards.join(n)).unwrap();
                (n.to_string(), serde_json::from_str(&text).unwrap())
            })
            .collect();
    let problems: Vec<String> = boards
        .iter()
        .flat_map(|(n, b)| check_panels(n, b))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // promtool on the shipped rules and their unit tests.
    run_ok(Command::new(&promtool).arg("check").arg("rules").args([
        deploy.join("rules/recording.yml"),
        deploy.join("rules/alerts.yml"),
    ]));
    run_ok(
        Command::new(&promtool)
            .current_dir(deploy.join("tests"))
            .args(["test", "rules", "alerts.test.yml"]),
    );

    // A workload through Kafka into `buildcost run`.
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap();
    let events = generate(
        dir.path(),
        &Generate {
            seed: 5,
            days: 36,
            per_day: 180,
            teams: 30,
            invalid_ratio: 0.02,
            duplicate_ratio: 0.01,
            end: now.to_rfc3339(),
            deliveries: true,
        },
    );
    let lines = lines_of(&events);
    let cluster: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext> =
        rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 3, 1).unwrap();
    cluster.create_topic("ci.build-events.dlq", 1, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    produce_lines(&bootstrap, TOPIC, &lines);
    let config = write_config(
        dir.path(),
        &format!(
            "[kafka]\nbrokers = \"{bootstrap}\"\n[ingest]\nbatch_rows = 500\nlinger = \"300ms\"\n"
        ),
    );
    let run = Served::start(buildcost().arg("--config").arg(&config).args([
        "run",
        "--listen",
        "127.0.0.1:0",
    ]));
    let processed = |s: &Served| {
        let (_, body) = s.get("/metrics");
        let rejected: f64 = body
            .lines()
            .filter(|l| l.starts_with("buildcost_events_rejected_total{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        sample(&body, "buildcost_events_accepted_total").unwrap_or(0.0)
            + sample(&body, "buildcost_events_duplicate_total").unwrap_or(0.0)
            + rejected
    };
    wait_until(
        Duration::from_secs(180),
        "run to consume the workload and refresh",
        || processed(&run) >= lines.len() as f64 && run.get("/readyz").0 == 200,
        || run.log_text(),
    );

    // promtool check metrics on what Prometheus will scrape.
    let (_, body) = run.get("/metrics");
    let out = run_with_stdin(
        Command::new(&promtool).args(["check", "metrics"]),
        body.as_bytes(),
    );
    assert!(
        out.status.success(),
        "promtool check metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // History for the week-over-week queries: snapshots every 12 h for 8 days, the one of a
    // week ago repeated each minute for 30 minutes (a query's `offset 7d` then finds it).
    let week_ago = now - TimeDelta::days(7);
    let mut instants: Vec<(DateTime<Utc>, Vec<DateTime<Utc>>)> = (1..=16)
        .map(|k| now - TimeDelta::hours(12 * k))
        .filter(|t| *t != week_ago)
        .map(|t| (t, Vec::new()))
        .collect();
    instants.push((
        week_ago,
        (1..=30).map(|m| week_ago + TimeDelta::minutes(m)).collect(),
    ));
    let openmetrics = dir.path().join("history.om");
    std::fs::write(&openmetrics, backfill(&config, &run.addr, &instants)).unwrap();
    let data = dir.path().join("prometheus-data");
    run_ok(
        Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&openmetrics)
            .arg(&data),
    );

    // Prometheus with the shipped configuration, pointed at this `run`, scraping every second.
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(prom_dir.join("rules")).unwrap();
    for rules in ["recording.yml", "alerts.yml"] {
        std::fs::copy(
            deploy.join("rules").join(rules),
            prom_dir.join("rules").join(rules),
        )
        .unwrap();
    }
    let shipped = std::fs::read_to_string(deploy.join("prometheus.yml")).unwrap();
    assert!(shipped.contains("127.0.0.1:9898") && shipped.contains("scrape_interval: 30s"));
    let prom_config = prom_dir.join("prometheus.yml");
    std::fs::write(
        &prom_config,
        shipped
            .replace("127.0.0.1:9898", &run.addr)
            .replace("scrape_interval: 30s", "scrape_interval: 1s")
            .replace("evaluation_interval: 30s", "evaluation_interval: 1s"),
    )
    .unwrap();
    run_ok(
        Command::new(&promtool)
            .args(["check", "config"])
            .arg(&prom_config),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let prometheus = KillOnDrop(
        Command::new(&prometheus_bin)
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={listen}"))
            .arg("--storage.tsdb.retention.time=60d")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(
        Duration::from_secs(60),
        "Prometheus to be ready",
        || std::net::TcpStream::connect(&listen).is_ok() && http_get(&listen, "/-/ready").0 == 200,
        || {
            format!(
                "Prometheus on {listen} (pid {}) never got ready",
                prometheus.0.id()
            )
        },
    );
    wait_until(
        Duration::from_secs(60),
        "a scrape and the recording rules over two scrapes",
        || {
            series_count(&query(&listen, "up{job=\"buildcost\"} == 1")) == 1
                && series_count(&query(&listen, "buildcost:events_accepted:rate5m")) == 1
        },
        || format!("{}", query(&listen, "up")),
    );

    // A team with a band, for the Team dashboard's variables.
    let status = query(&listen, "buildcost_team_baseline_status");
    let first = &status["data"]["result"][0]["metric"];
    let (team, product) = (
        first["team"].as_str().unwrap(),
        first["product"].as_str().unwrap(),
    );

    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, board) in &boards {
        for (title, expr) in panel_queries(board) {
            let expr = expr
                .replace("$team", team)
                .replace("$product", product)
                .replace("$__rate_interval", "5m");
            let answer = query(&listen, &expr);
            checked += 1;
            if answer["status"] != "success" {
                failures.push(format!(
                    "{name} / {title}: `{expr}` failed: {}",
                    answer["error"]
                ));
            } else if series_count(&answer) == 0 {
                failures.push(format!("{name} / {title}: `{expr}` returned no series"));
            }
        }
    }
    // Every rule healthy; every recording rule returns series.
    let (_, rules) = http_get(&listen, "/api/v1/rules");
    let rules: serde_json::Value = serde_json::from_str(&rules).unwrap();
    let mut rule_count = 0;
    for group in rules["data"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            rule_count += 1;
            let name = rule["name"].as_str().unwrap();
            if rule["health"] != "ok" {
                failures.push(format!(
                    "rule {name}: health {} {}",
                    rule["health"], rule["lastError"]
                ));
            }
            if rule["type"] == "recording" && series_count(&query(&listen, name)) == 0 {
                failures.push(format!("recording rule {name} returned no series"));
            }
        }
    }
    eprintln!("{checked} panel queries and {rule_count} rules evaluated against Prometheus");
    if !failures.is_empty() {
        failures.push(format!(
            "backfilled samples of buildcost_org_developers over 9 days: {}; offset 7d: {}",
            query(&listen, "count_over_time(buildcost_org_developers[9d])")["data"]["result"],
            query(&listen, "buildcost_org_developers offset 7d")["data"]["result"],
        ));
    }
    assert_eq!(rule_count, 13, "7 recording and 6 alert rules loaded");
    assert!(checked >= 30, "{checked} panel queries");
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    drop(run);
    drop(prometheus);
}

/// A child process killed when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn deployment_manifests_validate_offline() {
    let Some(validate) = external_tool(
        "BUILDCOST_KUBERNETES_VALIDATE",
        "kubernetes-validate",
        &["--version"],
    ) else {
        return;
    };
    let k8s = repo().join("deploy/k8s");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&k8s)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        // The PodMonitor is a Prometheus Operator CRD: no schema ships with Kubernetes.
        .filter(|p| !p.ends_with("monitoring.yaml"))
        .collect();
    manifests.sort();
    assert!(manifests.len() >= 5, "{manifests:?}");
    let out = run_ok(Command::new(&validate).arg("--strict").args(&manifests));
    let report = String::from_utf8_lossy(&out.stdout);
    for kind in [
        "deployment/buildcost-ingest",
        "deployment/buildcost-serve",
        "deployment/buildcost-webhook",
        "service/buildcost-webhook",
        "service/buildcost",
        "configmap/buildcost",
    ] {
        assert!(
            report.contains(&format!("passed for resource {kind}")),
            "{kind}: {report}"
        );
    }
    // Both Deployments run as non-root with a read-only root filesystem and probe both endpoints.
    for role in ["ingest", "serve", "webhook"] {
        let text = std::fs::read_to_string(k8s.join(format!("{role}.yaml"))).unwrap();
        for needle in [
            "runAsNonRoot: true",
            "readOnlyRootFilesystem: true",
            "path: /healthz",
            "path: /readyz",
            "requests:",
        ] {
            assert!(text.contains(needle), "{role}.yaml lacks `{needle}`");
        }
    }
    // The object-store variant: several replicas of each role, no shared volume.
    let variant = k8s.join("object-store");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&variant)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    manifests.sort();
    let out = run_ok(Command::new(&validate).arg("--strict").args(&manifests));
    let report = String::from_utf8_lossy(&out.stdout);
    for kind in [
        "deployment/buildcost-ingest",
        "deployment/buildcost-serve",
        "configmap/buildcost",
        "secret/buildcost-s3",
    ] {
        assert!(
            report.contains(&format!("passed for resource {kind}")),
            "object-store {kind}: {report}"
        );
    }
    for role in ["ingest", "serve"] {
        let text = std::fs::read_to_string(variant.join(format!("{role}.yaml"))).unwrap();
        assert!(!text.contains("persistentVolumeClaim"), "{role}: a volume");
        let replicas: u32 = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("replicas: "))
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(replicas > 1, "{role}: {replicas} replica");
        assert!(text.contains("secretRef: {name: buildcost-s3}"), "{role}");
    }
    let config = std::fs::read_to_string(variant.join("configmap.yaml")).unwrap();
    assert!(config.contains("path = \"s3://"), "the store is on S3");
    // The compose file parses and every file it mounts from the repository exists.
    if let Some(python) = python_with(&["yaml"]) {
        let script = r#"
import pathlib, sys, yaml
root = pathlib.Path(sys.argv[1])
compose = yaml.safe_load((root / "docker-compose.yml").read_text())
services = compose["services"]
assert {"kafka", "topics", "generate", "buildcost", "prometheus", "grafana"} <= set(services), services.keys()
for name, svc in services.items():
    for volume in svc.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (root / source).exists(), f"{name}: {source} missing"
# The object-store variant: several ingesters and servers, no shared store volume.
variant_dir = root / "deploy/compose"
variant = yaml.safe_load((variant_dir / "object-store.yml").read_text())
services = variant["services"]
for role in ("ingest", "serve"):
    assert services[role]["deploy"]["replicas"] > 1, role
    assert not any("/var/lib/buildcost/store" in v for v in services[role].get("volumes", [])), role
for name, svc in services.items():
    for volume in svc.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (variant_dir / source).exists(), f"object-store {name}: {source} missing"
assert "s3://" in (variant_dir / "object-store.toml").read_text()
print("compose ok")
"#;
        run_ok(Command::new(python).args(["-c", script]).arg(repo()));
    }
}
