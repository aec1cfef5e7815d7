//! The binary end to end: generate → ingest → metrics, checked against an independent
//! implementation of the spec (Python), DuckDB reading the store, and promtool.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use chrono::{DurationRound, TimeDelta, Utc};
use common::*;

struct Workload {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    events: std::path::PathBuf,
    at: String,
}

fn workload(seed: u64, days: u32, per_day: u32) -> Workload {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let at = Utc::now()
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap()
        .to_rfc3339();
    let events = generate(
        dir.path(),
        &Generate {
            seed,
            days,
            per_day,
            teams: 45,
            invalid_ratio: 0.03,
            duplicate_ratio: 0.02,
            end: at.clone(),
            deliveries: true,
        },
    );
    Workload {
        dir,
        config,
        events,
        at,
    }
}

fn ingest(w: &Workload) -> (serde_json::Value, String) {
    let out = run_ok(
        buildcost()
            .arg("--config")
            .arg(&w.config)
            .args(["ingest", "--input"])
            .arg(&w.events),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().expect("a summary line");
    (
        serde_json::from_str(last).expect("the last line is JSON"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn metrics(w: &Workload) -> String {
    let out = run_ok(
        buildcost()
            .arg("--config")
            .arg(&w.config)
            .args(["metrics", "--at", &w.at]),
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn generated_workload_matches_the_reference_implementation() {
    let w = workload(7, 35, 400);
    let (summary, ingest_log) = ingest(&w);
    let builds = summary["accepted_by_kind"]["build"].as_u64().unwrap();
    assert_eq!(builds, 35 * 400, "{summary}");
    for kind in ["deployment", "request"] {
        assert!(
            summary["accepted_by_kind"][kind].as_u64().unwrap() > 100,
            "{summary}"
        );
    }
    for reason in [
        "too_large",
        "invalid_json",
        "unsupported_version",
        "missing_field",
        "invalid_field",
        "invalid_timestamp",
    ] {
        assert!(
            summary["rejected_by_reason"][reason].as_u64().unwrap() > 0,
            "no {reason} in {summary}"
        );
    }
    let text = metrics(&w);
    let metrics_path = w.dir.path().join("metrics.prom");
    std::fs::write(&metrics_path, &text).unwrap();
    let summary_path = w.dir.path().join("summary.json");
    std::fs::write(&summary_path, summary.to_string()).unwrap();

    // Deterministic: the same store and instant give the same bytes.
    assert_eq!(metrics(&w), text);
    // The workload delivers: the reference below checks the delivery series too (SPEC 12).
    for family in [
        "buildcost_product_deployments{",
        "buildcost_product_request_lead_time_seconds{",
        "buildcost_org_request_lead_time_seconds_count{",
        "buildcost_team_orphan_repositories{",
        "buildcost_org_orphan_repository_cost_euros ",
    ] {
        assert!(text.contains(family), "no {family} in the metrics");
    }

    if let Some(python) = python_with(&[]) {
        let out = std::process::Command::new(python)
            .arg(reference_dir().join("buildcost_reference.py"))
            .arg("--events")
            .arg(&w.events)
            .arg("--config")
            .arg(&w.config)
            .args(["--at", &w.at])
            .arg("--metrics")
            .arg(&metrics_path)
            .arg("--summary")
            .arg(&summary_path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the reference implementation disagrees:\n{report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(report.contains("\"problems\": 0"), "{report}");
    }

    if let Some(promtool) = external_tool("PROMTOOL", "promtool", &["--version"]) {
        let out = run_with_stdin(
            std::process::Command::new(promtool).args(["check", "metrics"]),
            text.as_bytes(),
        );
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    if let Some(python) = python_with(&["duckdb"]) {
        let out = std::process::Command::new(python)
            .arg(reference_dir().join("read_store.py"))
            .arg(w.dir.path().join("store"))
            .arg(&w.events)
            .arg(builds.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "DuckDB: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Privacy: no raw author anywhere we write.
    let authors = raw_authors(&w.events);
    assert!(authors.len() > 50, "the workload has authors to look for");
    let mut haystacks = vec![
        ("metrics".to_owned(), text.to_lowercase()),
        ("ingest log".to_owned(), ingest_log.to_lowercase()),
    ];
    for entry in std::fs::read_dir(w.dir.path().join("store/dead-letter")).unwrap() {
        let path = entry.unwrap().path();
        haystacks.push((
            path.display().to_string(),
            std::fs::read_to_string(&path).unwrap().to_lowercase(),
        ));
    }
    let dump = run_ok(buildcost().arg("--config").arg(&w.config).args([
        "query",
        "SELECT * FROM raw_builds",
        "--format",
        "csv",
    ]));
    haystacks.push((
        "raw_builds".to_owned(),
        String::from_utf8_lossy(&dump.stdout).to_lowercase(),
    ));
    haystacks.push((
        "every Parquet file, decoded and raw".to_owned(),
        parquet_text(&w.dir.path().join("store")),
    ));
    // Every label of /metrics from a bounded set.
    assert_bounded_labels(&text, &teams_of(&w.events));
    for (name, hay) in &haystacks {
        let leaked: Vec<_> = authors
            .iter()
            .filter(|a| hay.contains(a.as_str()))
            .collect();
        assert!(
            leaked.is_empty(),
            "{} raw authors leaked into {name}",
            leaked.len()
        );
    }
    // Every dead letter says why and where.
    let dead: usize = haystacks
        .iter()
        .filter(|(n, _)| n.ends_with(".ndjson"))
        .map(|(_, h)| h.lines().count())
        .sum();
    assert_eq!(dead as u64, summary["rejected"].as_u64().unwrap());
}

#[test]
fn a_second_ingest_of_the_same_events_stores_nothing_twice() {
    let w = workload(11, 10, 150);
    let (first, _) = ingest(&w);
    let before = metrics(&w);
    let (second, _) = ingest(&w);
    assert_eq!(second["accepted"], 0, "{second}");
    assert_eq!(
        second["duplicates"].as_u64().unwrap(),
        first["accepted"].as_u64().unwrap() + first["duplicates"].as_u64().unwrap()
    );
    assert_eq!(second["rejected"], first["rejected"]);
    assert_eq!(metrics(&w), before);
    let out = run_ok(buildcost().arg("--config").arg(&w.config).args([
        "query",
        "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d FROM raw_builds",
        "--format",
        "json",
    ]));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["n"], first["accepted_by_kind"]["build"]);
    assert_eq!(rows[0]["d"], first["accepted_by_kind"]["build"]);
}

#[test]
fn ingest_reads_stdin_and_skips_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let event = r#"{"schema_version":1,"event_id":"e1","source":"gitlab","build_id":"1","pipeline":"p","repository":"r","team":"t","started_at":"2026-11-01T10:00:00Z","finished_at":"2026-11-01T10:30:00Z","status":"success","runner_class":"small"}"#;
    let input = format!("{event}\n\n   \n{{oops\n{event}\r\n");
    let out = run_with_stdin(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args(["ingest", "--input", "-"]),
        input.as_bytes(),
    );
    assert!(out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(out.stdout.trim_ascii_end()).unwrap();
    assert_eq!(summary["accepted"], 1);
    assert_eq!(summary["duplicates"], 1);
    assert_eq!(summary["rejected_by_reason"]["invalid_json"], 1);
    let dead = std::fs::read_dir(dir.path().join("store/dead-letter"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let letter: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(dead).unwrap().trim()).unwrap();
    assert_eq!(letter["reason"], "invalid_json");
    assert_eq!(letter["origin"]["file"], "-");
    assert_eq!(letter["origin"]["line"], 4);
}

#[test]
fn configuration_errors_name_the_key_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, key) in [
        ("[baseline]\nk_sgima = 3\n", "k_sgima"),
        ("[refresh]\ninterval = \"often\"\n", "refresh.interval"),
    ] {
        let config = dir.path().join("bad.toml");
        std::fs::write(&config, extra).unwrap();
        let out = buildcost()
            .arg("--config")
            .arg(&config)
            .args(["metrics"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{err}");
    }
    let out = buildcost()
        .args(["--config", "/nonexistent/buildcost.toml", "metrics"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/buildcost.toml"));
}

#[test]
fn help_explains_every_command() {
    let out = run_ok(buildcost().arg("--help"));
    let help = String::from_utf8_lossy(&out.stdout);
    for command in [
        "demo", "run", "serve", "ingest", "metrics", "query", "generate",
    ] {
        assert!(help.contains(command), "{help}");
    }
    let out = run_ok(buildcost().args(["query", "--help"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("baseline"));
}

#[test]
fn kafka_ingest_stops_cleanly_on_sigterm_and_prints_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    // librdkafka's built-in mock cluster stands in for the brokers.
    let config = write_config(
        dir.path(),
        "[kafka]\nbrokers = \"localhost:9\"\n[kafka.properties]\n\"test.mock.num.brokers\" = \"1\"\n",
    );
    let ingest = Served::start(buildcost().arg("--config").arg(&config).args([
        "ingest",
        "--listen",
        "127.0.0.1:0",
    ]));
    wait_until(
        std::time::Duration::from_secs(60),
        "the ingester to consume",
        || ingest.log_text().contains("consuming"),
        || ingest.log_text(),
    );
    let (_, metrics) = ingest.get("/metrics");
    assert!(
        metrics.contains("buildcost_build_info{role=\"ingest\""),
        "{metrics}"
    );
    assert!(
        !metrics.contains("buildcost_org_cost_euros"),
        "ingest serves no business gauges"
    );
    let (status, out) = ingest.terminate();
    assert!(status.success(), "exit status {status}");
    let summary: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!(summary["accepted"], 0);
    assert_eq!(summary["rejected"], 0);
}

#[test]
fn demo_feeds_history_then_live_builds_through_kafka_and_serves_them() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let per_day = 200;
    let demo = Served::start(
        buildcost()
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--builds-per-day",
                &per_day.to_string(),
            ])
            .args(["--speed", "2000", "--dir"])
            .arg(&demo_dir),
    );
    let history = f64::from(28 * per_day);
    let week = buildcost_report::IsoWeek::last_complete(Utc::now()).to_string();
    let reports = demo_dir.join("reports").join(&week);
    wait_until(
        std::time::Duration::from_secs(120),
        "the history to be stored, metrics.prom and the weekly reports written",
        || {
            demo.metric("buildcost_rows_written_total")
                .is_some_and(|n| n >= history)
                && demo_dir.join("metrics.prom").exists()
                && reports.join("summary.json").exists()
        },
        || demo.log_text(),
    );
    // The sample reports: every format, the week's builds in them.
    for ext in ["md", "html", "csv"] {
        assert!(
            reports.join(format!("summary.{ext}")).is_file(),
            "summary.{ext}"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["week"], week.as_str());
    assert!(summary["org"]["builds"].as_u64().unwrap() > 0, "{summary}");
    // Live builds keep coming after the history (2000× a 200-a-day organisation: ~4.6 a second).
    let after_history = demo.metric("buildcost_events_accepted_total").unwrap();
    wait_until(
        std::time::Duration::from_secs(60),
        "live builds",
        || demo.metric("buildcost_events_accepted_total").unwrap() > after_history,
        || demo.log_text(),
    );
    wait_until(
        std::time::Duration::from_secs(60),
        "the demo to be ready",
        || demo.get("/readyz").0 == 200,
        || demo.log_text(),
    );
    let (_, metrics) = demo.get("/metrics");
    let business = business_series(&metrics);
    assert!(
        business.contains_key("buildcost_northstar_avoidable_waste_ratio{window=\"28d\"}"),
        "{metrics}"
    );
    for reason in ["invalid_json", "missing_field"] {
        let series = format!("buildcost_events_rejected_total{{reason=\"{reason}\"}}");
        assert!(
            sample(&metrics, &series).is_some_and(|n| n > 0.0),
            "{series}"
        );
    }
    let saved = std::fs::read_to_string(demo_dir.join("metrics.prom")).unwrap();
    assert!(saved.contains("buildcost_team_cost_euros{"), "{saved}");
    // The demo delivers too: its gauges and the directors' summary show it.
    assert!(
        saved.contains("buildcost_org_orphan_repository_cost_euros "),
        "{saved}"
    );
    assert!(
        saved.contains("buildcost_product_requests_delivered{"),
        "{saved}"
    );
    let (status, out) = demo.terminate();
    assert!(status.success(), "demo exit status {status}");
    assert!(out.contains("buildcost demo —"), "the banner: {out}");
    assert!(out.contains("/metrics"), "{out}");
    assert!(out.contains("requests delivered to production"), "{out}");
    assert!(
        out.contains("summary.html"),
        "the banner names the reports: {out}"
    );
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert!(summary["accepted"].as_f64().unwrap() > history, "{summary}");
}

#[test]
fn generate_produces_the_same_events_to_kafka() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let cluster: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext> =
        rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic("ci.build-events", 2, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &format!("[kafka]\nbrokers = \"{bootstrap}\"\n"));
    let common = [
        "generate",
        "--seed",
        "3",
        "--days",
        "2",
        "--builds-per-day",
        "60",
        "--invalid-ratio",
        "0.05",
        "--end",
        "2026-11-02T00:00:00Z",
    ];
    run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args(common)
            .arg("--kafka"),
    );
    let file = dir.path().join("events.ndjson");
    run_ok(buildcost().args(common).arg("--out").arg(&file));
    let mut expected = lines_of(&file);

    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "check")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["ci.build-events"]).unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while got.len() < expected.len() && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(std::time::Duration::from_millis(200)) {
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    expected.sort();
    got.sort();
    assert_eq!(got.len(), expected.len(), "messages on the topic");
    assert!(
        got == expected,
        "the topic holds exactly the generated events"
    );
}

/// Ten weeks of a generated organisation, the reports of 2026-W47 in every format, checked
/// against the reference implementation week by week (every team-week and org-week figure,
/// the bands at the end of the week, rejections by reason, unpriced builds), and for privacy.
#[test]
fn weekly_reports_match_the_reference_implementation_and_name_no_person() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let end = "2026-11-23T00:00:00Z";
    let events = generate(
        dir.path(),
        &Generate {
            seed: 11,
            days: 70,
            per_day: 150,
            teams: 40,
            invalid_ratio: 0.02,
            duplicate_ratio: 0.01,
            end: end.into(),
            deliveries: true,
        },
    );
    run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args(["ingest", "--input"])
            .arg(&events),
    );
    let out_dir = dir.path().join("reports");
    let out = run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args([
                "report", "weekly", "--week", "2026-W47", "--format", "all", "--out",
            ])
            .arg(&out_dir),
    );
    let listed: Vec<std::path::PathBuf> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(std::path::PathBuf::from)
        .collect();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    let rows = summary["teams"].as_array().unwrap();
    assert!(rows.len() > 10, "{} team rows", rows.len());
    assert_eq!(listed.len(), 4 * (rows.len() + 1), "{listed:?}");
    assert!(listed.iter().all(|p| p.is_file()));
    let weeks: Vec<&str> = summary["weeks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["week"].as_str().unwrap())
        .collect();
    assert_eq!(weeks.len(), 9);
    assert_eq!((weeks[0], weeks[8]), ("2026-W39", "2026-W47"));

    if let Some(python) = python_with(&[]) {
        let out = std::process::Command::new(python)
            .arg(reference_dir().join("buildcost_reference.py"))
            .arg("--events")
            .arg(&events)
            .arg("--config")
            .arg(&config)
            .args(["--at", end])
            .arg("--report")
            .arg(&out_dir)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && report.contains("\"problems\": 0"),
            "the reference implementation disagrees with the weekly report:\n{report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Team files only for rows of their own: teams of at least the minimum size.
    let own: std::collections::BTreeSet<String> = rows
        .iter()
        .filter(|r| r["developers"].as_u64().is_some_and(|n| n >= 5))
        .map(|r| r["team"].as_str().unwrap().to_owned())
        .collect();
    let authors = raw_authors(&events);
    assert!(!authors.is_empty());
    for path in &listed {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            stem == "summary" || stem.starts_with("_small_teams") || own.contains(&stem),
            "a report for {stem}, which has no row of its own"
        );
        let text = std::fs::read_to_string(path).unwrap().to_lowercase();
        for a in &authors {
            assert!(
                !text.contains(a.as_str()),
                "{}: a raw author",
                path.display()
            );
        }
        assert!(!text.contains("author"), "{}", path.display());
    }

    // One team's report only.
    let team = own.iter().next().unwrap();
    let single = dir.path().join("single");
    let out = run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args(["report", "weekly", "--week", "2026-W47", "--team", team])
            .args(["--format", "html", "--out"])
            .arg(&single),
    );
    let files: Vec<_> = std::fs::read_dir(&single).unwrap().collect();
    assert_eq!(files.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
    assert!(single.join(format!("{team}.html")).is_file());

    // A team that does not exist, and a week that is not one, are clear errors.
    for (args, says) in [
        (vec!["--team", "no-such-team"], "no team `no-such-team`"),
        (vec!["--week", "2026-W54"], "2026 has no ISO week 54"),
        (vec!["--week", "last"], "is not an ISO week like 2026-W47"),
    ] {
        let out = buildcost()
            .arg("--config")
            .arg(&config)
            .args(["report", "weekly"])
            .args(&args)
            .arg("--out")
            .arg(dir.path().join("bad"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
