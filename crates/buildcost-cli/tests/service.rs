//! The service end to end: `buildcost run` consuming a Kafka topic, SIGKILLed three times part-way
//! and restarted, must store every build once and serve the same business gauges as a clean
//! `buildcost ingest --input` of the same events; `serve` on its store too; every malformed
//! message in the dead-letter topic with its reason. Against librdkafka's mock cluster (always)
//! and a real Kafka-compatible broker, Tansu (when installed; CI requires it).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::{DurationRound, TimeDelta, Utc};
use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};

const TOPIC: &str = "ci.build-events";
const DLQ: &str = "ci.build-events.dlq";
const PARTITIONS: i32 = 3;
const REASONS: [&str; 6] = [
    "too_large",
    "invalid_json",
    "unsupported_version",
    "missing_field",
    "invalid_field",
    "invalid_timestamp",
];

struct Workload {
    dir: tempfile::TempDir,
    events: PathBuf,
    at: String,
    lines: usize,
}

/// A generated workload with malformed and re-sent messages, and its teams file.
fn workload(days: u32, per_day: u32) -> Workload {
    let dir = tempfile::tempdir().unwrap();
    let at = Utc::now()
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap()
        .to_rfc3339();
    let events = generate(
        dir.path(),
        &Generate {
            seed: 11,
            days,
            per_day,
            teams: 30,
            invalid_ratio: 0.03,
            duplicate_ratio: 0.02,
            end: at.clone(),
        },
    );
    let lines = lines_of(&events).len();
    Workload {
        dir,
        events,
        at,
        lines,
    }
}

/// A folder with the demo configuration (plus `extra`) and the workload's teams file.
fn config_dir(w: &Workload, name: &str, extra: &str) -> PathBuf {
    let dir = w.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(w.dir.path().join("teams.csv"), dir.join("teams.csv")).unwrap();
    write_config(&dir, extra)
}

/// The clean result: `ingest --input` into a store of its own, then `metrics --at`.
fn clean_backfill(w: &Workload) -> (serde_json::Value, BTreeMap<String, f64>) {
    let config = config_dir(w, "clean", "");
    let out = run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args(["ingest", "--no-progress", "--input"])
            .arg(&w.events),
    );
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let out = run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args(["metrics", "--at", &w.at]),
    );
    (
        summary,
        business_series(&String::from_utf8_lossy(&out.stdout)),
    )
}

fn service(config: &Path, command: &str, at: &str) -> Served {
    Served::start(buildcost().arg("--config").arg(config).args([
        command,
        "--listen",
        "127.0.0.1:0",
        "--at",
        at,
    ]))
}

/// Lag per partition as `/metrics` reports it.
fn lag(body: &str) -> BTreeMap<i32, f64> {
    (0..PARTITIONS)
        .filter_map(|p| {
            sample(
                body,
                &format!("buildcost_consumer_lag_messages{{partition=\"{p}\",topic=\"{TOPIC}\"}}"),
            )
            .map(|v| (p, v))
        })
        .collect()
}

/// The offset ranges of the files the Kafka source wrote (`kafka-<topic>-<p>-<first>-<last>`),
/// merged per partition: where a build went missing, for the failure message.
fn stored_offsets(store: &std::path::Path) -> String {
    let mut ranges: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    for day in std::fs::read_dir(store).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(day.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = file.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".parquet").or(name.strip_suffix(".tsv")) else {
                continue;
            };
            let parts: Vec<&str> = stem.rsplitn(4, '-').collect();
            if let [last, first, partition, _] = parts.as_slice() {
                if let (Ok(p), Ok(f), Ok(l)) = (partition.parse(), first.parse(), last.parse()) {
                    ranges.entry(p).or_default().push((f, l));
                }
            }
        }
    }
    let mut out = String::new();
    for (p, mut r) in ranges {
        r.sort_unstable();
        r.dedup();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for (f, l) in r {
            match merged.last_mut() {
                Some(m) if f <= m.1 + 1 => m.1 = m.1.max(l),
                _ => merged.push((f, l)),
            }
        }
        out.push_str(&format!("p{p}: {merged:?} "));
    }
    out
}

/// Every dead letter: (source partition, source offset) → reason, checking headers and payload.
fn dead_letters(
    bootstrap: &str,
    at_least: usize,
    authors: &[String],
) -> BTreeMap<(i32, i64), String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "dlq-check")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[DLQ]).unwrap();
    let mut letters = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Replays after the SIGKILL may dead-letter a message twice: count distinct origins.
    while letters.len() < at_least && std::time::Instant::now() < deadline {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let mut h = BTreeMap::new();
        if let Some(headers) = m.headers() {
            for header in headers.iter() {
                h.insert(
                    header.key.to_owned(),
                    String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                );
            }
        }
        let reason = h.get("buildcost.reason").cloned().unwrap_or_default();
        assert!(REASONS.contains(&reason.as_str()), "reason header {h:?}");
        assert_eq!(
            h.get("buildcost.source.topic").map(String::as_str),
            Some(TOPIC)
        );
        let payload = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_lowercase();
        for a in authors {
            assert!(
                !payload.contains(a.as_str()),
                "a raw author in a dead letter: {payload}"
            );
        }
        let partition = h["buildcost.source.partition"].parse().unwrap();
        let offset = h["buildcost.source.offset"].parse().unwrap();
        letters.insert((partition, offset), reason);
    }
    letters
}

/// Produce (by `produce`), run, SIGKILL part-way, restart, and compare with a clean backfill.
/// Returns the logs of the runs and of `serve`.
fn kill_restart_and_compare(w: &Workload, bootstrap: &str, produce: impl FnOnce()) -> String {
    let (clean, expected) = clean_backfill(w);
    let accepted = clean["accepted"].as_u64().unwrap();
    let rejected = clean["rejected"].as_u64().unwrap() as usize;
    produce();

    let config = config_dir(
        w,
        "kafka",
        &format!(
            "[kafka]\nbrokers = \"{bootstrap}\"\ntopic = \"{TOPIC}\"\ngroup_id = \"e2e\"\n\
             dead_letter_topic = \"{DLQ}\"\n[kafka.properties]\n\"reconnect.backoff.max.ms\" = \"1000\"\n\
             [ingest]\nbatch_rows = 120\nlinger = \"300ms\"\n"
        ),
    );
    let store = buildcost_store::Store::open(config.parent().unwrap().join("store")).unwrap();
    let stored = || store.event_id_counts().map_or(0, |c| c.len() as u64);
    // Three SIGKILLs, each once a further quarter of the builds is stored (mid-batch, between
    // a write and its commit, wherever it lands), then a run that finishes.
    let mut first_log = String::new();
    for quarter in 1..=3u64 {
        let run = service(&config, "run", &w.at);
        wait_until(
            Duration::from_secs(120),
            &format!("run {quarter} to store {quarter}/4 of the builds"),
            || stored() >= accepted * quarter / 4,
            || run.log_text(),
        );
        first_log.push_str(&run.log_text());
        run.kill();
    }

    let second = service(&config, "run", &w.at);
    let store_dir = config.parent().unwrap().join("store");
    wait_until(
        Duration::from_secs(180),
        "the restarted run to store every build",
        || stored() >= accepted,
        || {
            format!(
                "{} of {accepted} stored; lag {:?}; stored offsets {}\n--- the restarted run\n{}\n--- the killed runs\n{first_log}",
                stored(),
                lag(&second.get("/metrics").1),
                stored_offsets(&store_dir),
                second.log_text()
            )
        },
    );
    wait_until(
        Duration::from_secs(60),
        "the consumer lag to be 0 on every partition",
        || {
            let lag = lag(&second.get("/metrics").1);
            lag.len() == PARTITIONS as usize && lag.values().all(|v| *v == 0.0)
        },
        || second.get("/metrics").1,
    );
    let refreshes = |s: &Served| s.metric("buildcost_refreshes_total").unwrap_or(0.0);
    // Two refreshes after catching up: the second surely started after the last write.
    let seen = refreshes(&second);
    wait_until(
        Duration::from_secs(60),
        "two more refreshes",
        || refreshes(&second) >= seen + 2.0,
        || second.log_text(),
    );
    let (status, body) = second.get("/metrics");
    assert_eq!(status, 200);
    assert_same_gauges(
        &expected,
        &business_series(&body),
        "run after SIGKILL and restart",
    );
    assert_eq!(second.get("/healthz").0, 200);
    assert_eq!(second.get("/readyz").0, 200);

    // `serve` on the same store serves the same figures.
    let serve = service(&config, "serve", &w.at);
    wait_until(
        Duration::from_secs(60),
        "serve to be ready",
        || serve.get("/readyz").0 == 200,
        || serve.log_text(),
    );
    let (_, served) = serve.get("/metrics");
    assert_same_gauges(
        &expected,
        &business_series(&served),
        "serve on the shared store",
    );
    assert!(
        !served.contains("buildcost_events_accepted_total"),
        "serve does not consume"
    );
    let serve_log = serve.log_text();
    let (status, _) = serve.terminate();
    assert!(status.success(), "serve exit status {status}");

    // SIGTERM: exit 0 and a summary line.
    let log = format!("{first_log}\n{serve_log}\n{}", second.log_text());
    eprintln!(
        "re-reads after an assignment: {} past the committed offset, {} of silent partitions",
        log.matches("the broker resumed past the committed offset")
            .count(),
        log.matches("no message since the assignment").count()
    );
    let (status, out) = second.terminate();
    assert!(status.success(), "run exit status {status}");
    let summary: serde_json::Value =
        serde_json::from_str(out.lines().last().expect("a summary line")).unwrap();
    assert!(summary["accepted"].is_u64(), "{summary}");

    // Every build stored once.
    let counts = store.event_id_counts().unwrap();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    assert_eq!(counts.len() as u64, accepted, "distinct builds stored");

    // No raw author in what the service printed or served.
    let authors = raw_authors(&w.events);
    let said = format!("{body}\n{served}\n{log}\n{out}").to_lowercase();
    let leaked: Vec<_> = authors
        .iter()
        .filter(|a| said.contains(a.as_str()))
        .collect();
    assert!(
        leaked.is_empty(),
        "raw authors in /metrics or the log: {leaked:?}"
    );

    // Every malformed message is in the dead-letter topic, with its reason.
    let letters = dead_letters(bootstrap, rejected, &authors);
    assert_eq!(
        letters.len(),
        rejected,
        "distinct dead-lettered source offsets vs rejected by the clean backfill"
    );
    let by_reason: BTreeMap<&str, u64> = letters.values().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.as_str()).or_default() += 1;
        m
    });
    for (reason, n) in &by_reason {
        assert_eq!(
            clean["rejected_by_reason"][*reason].as_u64(),
            Some(*n),
            "{reason}: {by_reason:?} vs {}",
            clean["rejected_by_reason"]
        );
    }
    let reasons: BTreeSet<_> = by_reason.keys().collect();
    assert!(
        reasons.len() >= 5,
        "the workload has most reasons: {reasons:?}"
    );
    log
}

#[test]
fn run_survives_sigkill_on_the_mock_cluster_and_matches_a_clean_backfill() {
    let cluster: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext> =
        rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    cluster.create_topic(DLQ, 1, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    // Small enough for the mock cluster's 5 MB a partition.
    let w = workload(12, 250);
    kill_restart_and_compare(&w, &bootstrap, || {
        produce_lines(&bootstrap, TOPIC, &lines_of(&w.events));
    });

    assert!(w.lines > 3000);
}

/// Tansu, a Kafka-compatible broker, on a free loopback port; stopped when dropped.
struct Tansu {
    child: std::process::Child,
    bootstrap: String,
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_tansu(tansu: &Path) -> Tansu {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(tansu)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let bootstrap = format!("127.0.0.1:{port}");
    let tansu = Tansu { child, bootstrap };
    wait_until(
        Duration::from_secs(30),
        "Tansu to listen",
        || std::net::TcpStream::connect(&tansu.bootstrap).is_ok(),
        String::new,
    );
    tansu
}

#[test]
fn run_survives_sigkill_on_a_real_broker_and_matches_a_clean_backfill() {
    let Some(tansu) = external_tool("BUILDCOST_TANSU", "tansu", &["--version"]) else {
        return;
    };
    let Some(python) = python_with(&["confluent_kafka"]) else {
        return;
    };
    let broker = start_tansu(&tansu);
    let w = workload(20, 300);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/produce.py");
    let log = kill_restart_and_compare(&w, &broker.bootstrap, || {
        let out = run_ok(
            Command::new(&python)
                .arg(&script)
                .args([&broker.bootstrap, TOPIC, DLQ, &PARTITIONS.to_string()])
                .arg(&w.events),
        );
        let sent: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert_eq!(sent, w.lines, "messages produced by confluent-kafka");
    });
    let rereads = log.matches("resumed past the committed offset").count();
    eprintln!("partitions re-read after the broker resumed past the committed offset: {rereads}");
}
