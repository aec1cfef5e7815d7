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
            deliveries: false,
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

/// The offsets `group` committed on each partition of the topic, as the broker returns them to
/// a client outside the group.
fn committed(bootstrap: &str, group: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition(TOPIC, p);
    }
    consumer
        .committed_offsets(list, Duration::from_secs(10))
        .map(|offsets| {
            offsets
                .elements()
                .iter()
                .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(0).max(0)))
                .collect()
        })
        .unwrap_or_default()
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
    // Caught up: the group's committed offsets, as the broker returns them to another client,
    // cover every message produced (offsets run from 0 without gaps). Not the lag gauge: Tansu
    // may keep reporting a high watermark past the last offset (docs/operations.md).
    let produced = lines_of(&w.events).len() as i64;
    wait_until(
        Duration::from_secs(60),
        "the committed offsets to cover every message produced",
        || committed(bootstrap, "e2e").values().sum::<i64>() == produced,
        || {
            format!(
                "committed {:?} of {produced}; lag {:?}; stored offsets {}\n--- the restarted run\n{}\n--- the killed runs\n{first_log}",
                committed(bootstrap, "e2e"),
                lag(&second.get("/metrics").1),
                stored_offsets(&store_dir),
                second.log_text()
            )
        },
    );
    // The gauge is there for every partition the run holds, empty ones and ones the group
    // never committed on included (0, or the whole partition). A killed run stays in the group
    // until its session expires (45 s by default), and each expiry is a rebalance: on the mock
    // cluster one that waits up to the session timeout for members to rejoin, with the
    // partitions revoked meanwhile. Three kills can take a few of those.
    wait_until(
        Duration::from_secs(150),
        "a lag gauge for every partition",
        || lag(&second.get("/metrics").1).len() == PARTITIONS as usize,
        || {
            let log = second.log_text();
            let rebalances: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("partitions assigned") || l.contains("rebalance"))
                .collect();
            format!(
                "lag {:?}; committed {:?}\n--- the restarted run's rebalances\n{}\n--- its log\n{log}",
                lag(&second.get("/metrics").1),
                committed(bootstrap, "e2e"),
                rebalances.join("\n")
            )
        },
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

/// Produces every line of `events` to the topic with the independent `confluent-kafka` client
/// (`tests/kafka/produce.py`, which creates the topics), checking all were acknowledged.
fn produce_with_confluent_kafka(python: &Path, bootstrap: &str, events: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/produce.py");
    let out = run_ok(
        Command::new(python)
            .arg(&script)
            .args([bootstrap, TOPIC, DLQ, &PARTITIONS.to_string()])
            .arg(events),
    );
    let sent: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(
        sent,
        lines_of(events).len(),
        "messages produced by confluent-kafka"
    );
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
    let log = kill_restart_and_compare(&w, &broker.bootstrap, || {
        produce_with_confluent_kafka(&python, &broker.bootstrap, &w.events);
    });
    let rereads = log.matches("resumed past the committed offset").count();
    eprintln!("partitions re-read after the broker resumed past the committed offset: {rereads}");
}

/// Where the campaign kills `run`: a crash point (`BUILDCOST_CRASH_AT`, the n-th visit) or a
/// SIGKILL from outside after some milliseconds.
#[derive(Debug, Clone)]
enum Kill {
    At(&'static str, u64),
    After(u64),
}

/// The consumer session of the crash campaign (librdkafka's default is 45 s).
const SESSION_MS: u64 = 2000;

/// A small deterministic generator (the campaign is reproducible from its seed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Every `.parquet` under `store` that is zero-length or does not read back whole.
fn unreadable_files(store: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    for day in std::fs::read_dir(store).into_iter().flatten().flatten() {
        if !day.file_name().to_string_lossy().starts_with("date=") {
            continue;
        }
        for file in std::fs::read_dir(day.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = file.path();
            if path.extension().is_none_or(|e| e != "parquet") {
                continue;
            }
            let readable = std::fs::File::open(&path)
                .ok()
                .filter(|f| f.metadata().is_ok_and(|m| m.len() > 0))
                .and_then(|f| {
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).ok()
                })
                .and_then(|b| b.build().ok())
                .is_some_and(|reader| reader.into_iter().all(|batch| batch.is_ok()));
            if !readable {
                bad.push(path.display().to_string());
            }
        }
    }
    bad
}

/// The crash campaign of docs/reliability.md: one workload on a real broker; `run` stopped with
/// SIGTERM with batches in flight, then killed 20 times (16 at crash points: mid-batch,
/// mid-write, after the rename and before the commit, mid-commit; 4 from outside at random
/// moments), then run to the end. Every valid event stored exactly once, no unreadable file,
/// every message the SIGTERMed run handled committed, and the same gauges as a clean backfill.
fn crash_campaign(bootstrap: &str, produce: impl Fn(&Path)) {
    // No re-sent events in this workload: a build stored twice would be a replay.
    let dir = tempfile::tempdir().unwrap();
    let at = Utc::now()
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap()
        .to_rfc3339();
    let events = generate(
        dir.path(),
        &Generate {
            seed: 29,
            days: 20,
            per_day: 600,
            teams: 30,
            invalid_ratio: 0.03,
            duplicate_ratio: 0.0,
            end: at.clone(),
            deliveries: false,
        },
    );
    let lines = lines_of(&events).len();
    let w = Workload {
        dir,
        events,
        at,
        lines,
    };
    let (clean, expected) = clean_backfill(&w);
    let accepted = clean["accepted"].as_u64().unwrap();
    // The first 2,500 messages for the SIGTERM phase, the rest for the kills.
    let all = lines_of(&w.events);
    let (first_part, second_part) = all.split_at(2500);
    let parts = [
        w.dir.path().join("part-1.ndjson"),
        w.dir.path().join("part-2.ndjson"),
    ];
    std::fs::write(&parts[0], first_part.join("\n") + "\n").unwrap();
    std::fs::write(&parts[1], second_part.join("\n") + "\n").unwrap();
    produce(&parts[0]);

    let config = config_dir(
        &w,
        "campaign",
        &format!(
            "[kafka]\nbrokers = \"{bootstrap}\"\ntopic = \"{TOPIC}\"\ngroup_id = \"campaign\"\n\
             dead_letter_topic = \"{DLQ}\"\n[kafka.properties]\n\"reconnect.backoff.max.ms\" = \"1000\"\n\
             # A killed member holds its partitions until its session expires (45 s by default).\n\
             \"session.timeout.ms\" = \"{SESSION_MS}\"\n\"heartbeat.interval.ms\" = \"500\"\n\
             [ingest]\nbatch_rows = 150\nlinger = \"300ms\"\n"
        ),
    );
    let store_dir = config.parent().unwrap().join("store");
    let store = buildcost_store::Store::open(&store_dir).unwrap();
    let stored = || store.event_id_counts().map_or(0, |c| c.len() as u64);

    // First, SIGTERM with batches in flight, while the group has no dead members (Tansu keeps
    // a killed member's partitions for a while): they are written and committed, so no later
    // run replays them. A long linger keeps every message the run takes in flight until the
    // SIGTERM.
    let fast = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        fast.replace("linger = \"300ms\"", "linger = \"10m\"")
            .replace("batch_rows = 150", "batch_rows = 1000000"),
    )
    .unwrap();
    let term = service(&config, "run", &w.at);
    wait_until(
        Duration::from_secs(120),
        "the run to hold 1,500 messages in flight",
        || {
            term.metric("buildcost_consumer_pending_messages")
                .unwrap_or(0.0)
                >= 1500.0
        },
        || term.log_text(),
    );
    let in_flight = term
        .metric("buildcost_consumer_pending_messages")
        .unwrap_or(0.0);
    assert_eq!(stored(), 0, "nothing is written before the linger");
    let mut log = term.log_text();
    let (status, out) = term.terminate();
    assert!(status.success(), "SIGTERM exit status {status}");
    std::fs::write(&config, &fast).unwrap();
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let stored_at_sigterm = stored();
    assert!(
        stored_at_sigterm > 0 && summary["accepted"].as_u64() == Some(stored_at_sigterm),
        "the in-flight batches were written at SIGTERM: {summary}"
    );
    // Nothing the SIGTERMed run took is left uncommitted, so no later run replays any of it:
    // the group's committed offsets, as the broker returns them to a client outside the group,
    // add up to the messages the run handled (the first part starts every partition at offset
    // 0, without gaps, and re-sends nothing). Read from the broker, not from a next run: Tansu
    // may report a high watermark past the last offset and keep a lag the run cannot take down.
    let handled = ["accepted", "rejected", "duplicates", "ignored"]
        .iter()
        .map(|k| summary[*k].as_u64().unwrap_or(0))
        .sum::<u64>() as i64;
    let produced_first = lines_of(&parts[0]).len() as i64;
    wait_until(
        Duration::from_secs(30),
        "the committed offsets to add up to the messages the SIGTERMed run handled",
        || {
            let at = committed(bootstrap, "campaign");
            at.len() == PARTITIONS as usize && at.values().sum::<i64>() == handled
        },
        || {
            format!(
                "committed {:?}; handled {handled}; summary {summary}\n{log}",
                committed(bootstrap, "campaign")
            )
        },
    );
    assert!(
        handled > 0 && handled <= produced_first,
        "the SIGTERMed run handled {handled} of {produced_first} messages"
    );
    produce(&parts[1]);

    let mut rng = Lcg(7);
    let mut plan = Vec::new();
    for round in 0..4 {
        plan.push(Kill::At("mid_batch", 1 + rng.below(400)));
        plan.push(Kill::At("mid_write", 1 + rng.below(3)));
        plan.push(Kill::At("after_rename", 1 + rng.below(3)));
        plan.push(Kill::At("mid_commit", 1 + rng.below(3)));
        plan.push(Kill::After(100 + rng.below(800) + round * 50));
    }
    let mut progress = Vec::new();
    for kill in &plan {
        let mut cmd = buildcost();
        cmd.arg("--config")
            .arg(&config)
            .args(["run", "--listen", "127.0.0.1:0", "--at", &w.at]);
        if let Kill::At(point, n) = kill {
            cmd.env(buildcost_store::CRASH_AT_ENV, format!("{point}:{n}"));
        }
        let mut run = Served::start(&mut cmd);
        match kill {
            Kill::At(..) => {
                let deadline = std::time::Instant::now() + Duration::from_secs(120);
                while run.child.try_wait().unwrap().is_none() {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "run never crashed at {kill:?}\n{}",
                        run.log_text()
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Kill::After(ms) => {
                std::thread::sleep(Duration::from_millis(*ms));
                signal(&run.child, "KILL");
            }
        }
        let status = run.child.wait().unwrap();
        assert!(!status.success(), "{kill:?}: the run was killed, {status}");
        log.push_str(&run.log_text());
        progress.push(stored());
        // The broker notices a dead member when its session expires and a member joins after
        // that. Tansu 0.6 evicts it only then: a member joining earlier is given part of the
        // partitions and keeps it, while the dead member holds the rest. A real deployment
        // restarts after tens of seconds; the test waits out the session it configured.
        std::thread::sleep(Duration::from_millis(SESSION_MS + 500));
    }
    eprintln!(
        "campaign: builds stored after each of the {} kills: {progress:?} of {accepted}",
        plan.len()
    );

    let last = service(&config, "run", &w.at);
    wait_until(
        Duration::from_secs(180),
        "the last run to store every build and catch up",
        || {
            stored() >= accepted
                && committed(bootstrap, "campaign").values().sum::<i64>() == w.lines as i64
        },
        || {
            format!(
                "{} of {accepted} stored; committed {:?} of {}; lag {:?}\n{}",
                stored(),
                committed(bootstrap, "campaign"),
                w.lines,
                lag(&last.get("/metrics").1),
                last.log_text()
            )
        },
    );
    let refreshes = |s: &Served| s.metric("buildcost_refreshes_total").unwrap_or(0.0);
    let seen = refreshes(&last);
    wait_until(
        Duration::from_secs(60),
        "two more refreshes",
        || refreshes(&last) >= seen + 2.0,
        || last.log_text(),
    );
    let (_, served) = last.get("/metrics");
    assert_same_gauges(
        &expected,
        &business_series(&served),
        "run after the crash campaign",
    );
    assert_bounded_labels(&served, &teams_of(&w.events));
    log.push_str(&last.log_text());
    let (status, _) = last.terminate();
    assert!(status.success());

    let counts = store.event_id_counts().unwrap();
    let twice = counts.values().filter(|n| **n > 1).count();
    let unreadable = unreadable_files(&store_dir);
    // Temporary files of the writes killed mid-write: never read; quarantined by the first
    // start-up at least a minute after the crash.
    let temp_files = walk_files(&store_dir)
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".parquet.tmp"))
        .count();
    eprintln!(
        "campaign figures: kills {}, valid events {accepted}, stored {}, stored twice {twice}, \
         unreadable files {}, temporary files left {temp_files}, \
         in flight at SIGTERM {in_flight}, stored by the SIGTERMed run {}, handled and committed at SIGTERM {handled}",
        plan.len(),
        counts.len(),
        unreadable.len(),
        stored_at_sigterm,
    );
    assert_eq!(
        counts.len() as u64,
        accepted,
        "builds stored = distinct valid events"
    );
    assert_eq!(twice, 0, "builds stored twice");
    assert!(unreadable.is_empty(), "unreadable files: {unreadable:?}");
    // Privacy: no raw author in any Parquet file, log line, /metrics or dead letter.
    let authors = raw_authors(&w.events);
    assert!(authors.len() > 50, "the workload has authors to look for");
    let rejected = clean["rejected"].as_u64().unwrap() as usize;
    let letters = dead_letters(bootstrap, rejected, &authors);
    assert_eq!(letters.len(), rejected, "every rejection dead-lettered");
    for (name, hay) in [
        ("the logs", log.to_lowercase()),
        ("/metrics", served.to_lowercase()),
        ("the Parquet files", parquet_text(&store_dir)),
    ] {
        let leaked = authors.iter().filter(|a| hay.contains(a.as_str())).count();
        assert_eq!(leaked, 0, "raw authors in {name}");
    }
    // The pseudonym key: mode 0600, and in no log line (as hex or as text).
    let key_path = store_dir.join("pseudonym.key");
    let key = std::fs::read(&key_path).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "pseudonym key mode {mode:o}");
    }
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        !log.to_lowercase().contains(&hex),
        "the pseudonym key in a log"
    );
    assert!(!log.contains(String::from_utf8_lossy(&key).as_ref()));
    let figures = serde_json::json!({
        "kills": plan.len(),
        "kills_at_crash_points": plan.iter().filter(|k| matches!(k, Kill::At(..))).count(),
        "valid_events": accepted,
        "stored": counts.len(),
        "stored_twice": twice,
        "unreadable_files": unreadable.len(),
        "temporary_files_left": temp_files,
        "in_flight_at_sigterm": in_flight,
        "stored_by_the_sigtermed_run": stored_at_sigterm,
        "committed_at_sigterm": handled,
        "dead_lettered_origins": letters.len(),
        "raw_authors_found": 0,
    });
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("crash_campaign.json"), figures.to_string()).unwrap();
}

/// Files under `dir`, recursively (none when it does not exist).
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            files.extend(walk_files(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

#[test]
fn run_survives_a_campaign_of_twenty_kills_on_a_real_broker() {
    let Some(tansu) = external_tool("BUILDCOST_TANSU", "tansu", &["--version"]) else {
        return;
    };
    let Some(python) = python_with(&["confluent_kafka"]) else {
        return;
    };
    let broker = start_tansu(&tansu);
    crash_campaign(&broker.bootstrap, |events| {
        produce_with_confluent_kafka(&python, &broker.bootstrap, events);
    });
}

/// Issue 17's scale-out: two `buildcost ingest` processes in one consumer group and a
/// `buildcost serve`, all on one prefix of a real S3 server (SeaweedFS). One ingester is
/// SIGKILLed midway; then the object store is stopped for a few seconds (writes fail and are
/// retried, nothing is committed meanwhile, `serve` keeps answering from its last snapshot and
/// stays ready) and started again on its data. In the end: every build stored, the gauges of a
/// clean single-process backfill, every rejection dead-lettered, no raw author in the bucket
/// (read back with pyarrow).
///
/// The broker is librdkafka's mock cluster (over TCP, the processes are separate): on Tansu 0.6
/// two live members of one group rebalance every 1-2 s for as long as both run (161 rebalances
/// in 4 minutes, in-flight batches dropped each time) and a member that joins second may never
/// be given a partition, so a two-member group cannot be shown on it (docs/operations.md).
#[test]
fn two_ingesters_and_serve_on_one_bucket_survive_a_kill_and_an_object_store_outage() {
    let Some(python) = python_with(&["pyarrow"]) else {
        return;
    };
    let Some(weed) = Seaweed::find() else {
        return;
    };
    let cluster: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext> =
        rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    cluster.create_topic(DLQ, 1, 1).unwrap();
    let bootstrap = &cluster.bootstrap_servers();
    // Small enough for the mock cluster's 5 MB a partition.
    let w = workload(12, 250);
    let (clean, expected) = clean_backfill(&w);
    let accepted = clean["accepted"].as_u64().unwrap();
    let resent = clean["duplicates"].as_u64().unwrap();
    let mut seaweed = Seaweed::start(&weed, &w.dir.path().join("seaweed"), "buildcost");
    let dir = w.dir.path().join("scale-out");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(w.dir.path().join("teams.csv"), dir.join("teams.csv")).unwrap();
    let group = "scale-out";
    let config = write_s3_config(
        &dir,
        &seaweed,
        "shared/history",
        &format!(
            "[kafka]\nbrokers = \"{bootstrap}\"\ntopic = \"{TOPIC}\"\ngroup_id = \"{group}\"\n\
             dead_letter_topic = \"{DLQ}\"\n[kafka.properties]\n\"reconnect.backoff.max.ms\" = \"1000\"\n\
             \"session.timeout.ms\" = \"{SESSION_MS}\"\n\"heartbeat.interval.ms\" = \"500\"\n\
             [ingest]\nbatch_rows = 150\nlinger = \"300ms\"\n"
        ),
    );
    let start = |command: &str| {
        let mut cmd = buildcost();
        s3_credentials(&mut cmd).arg("--config").arg(&config).args([
            command,
            "--listen",
            "127.0.0.1:0",
        ]);
        if command == "serve" {
            cmd.args(["--at", &w.at]);
        }
        Served::start(&mut cmd)
    };
    let stored = || {
        let mut cmd = buildcost();
        let out = s3_credentials(&mut cmd)
            .env("BUILDCOST_LOG", "error")
            .arg("--config")
            .arg(&config)
            .args([
                "query",
                "--format",
                "csv",
                "SELECT count(DISTINCT event_id) AS n FROM raw_builds",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let counter = |s: &Served, name: &str| s.metric(name).unwrap_or(0.0);
    let all = lines_of(&w.events);
    let (first_part, second_part) = all.split_at(all.len() / 2);
    let parts = [dir.join("part-1.ndjson"), dir.join("part-2.ndjson")];
    std::fs::write(&parts[0], first_part.join("\n") + "\n").unwrap();
    std::fs::write(&parts[1], second_part.join("\n") + "\n").unwrap();
    produce_lines(bootstrap, TOPIC, &lines_of(&parts[0]));

    let a = start("ingest");
    let b = start("ingest");
    let serve = start("serve");
    let mut log = String::new();
    // Midway through the first half: SIGKILL one ingester.
    wait_until(
        Duration::from_secs(120),
        "the ingesters to store part of the first half",
        || {
            counter(&a, "buildcost_rows_written_total")
                + counter(&b, "buildcost_rows_written_total")
                >= 600.0
        },
        || format!("{}\n{}", a.log_text(), b.log_text()),
    );
    log.push_str(&a.log_text());
    a.kill();
    let killed_at = std::time::Instant::now();
    wait_until(
        Duration::from_secs(60),
        "serve to be ready on the bucket",
        || serve.get("/readyz").0 == 200,
        || serve.log_text(),
    );
    let snapshot = business_series(&serve.get("/metrics").1);

    // The object store goes away while messages keep coming.
    seaweed.stop();
    produce_lines(bootstrap, TOPIC, &lines_of(&parts[1]));
    let failures_before = counter(&b, "buildcost_store_write_failures_total")
        + counter(&b, "buildcost_store_read_failures_total");
    wait_until(
        Duration::from_secs(60),
        "the surviving ingester to fail a store request",
        || {
            counter(&b, "buildcost_store_write_failures_total")
                + counter(&b, "buildcost_store_read_failures_total")
                > failures_before
        },
        || b.log_text(),
    );
    let committed_early = committed(bootstrap, group);
    let refresh_failures = counter(&serve, "buildcost_refresh_failures_total");
    wait_until(
        Duration::from_secs(60),
        "more failed store requests and a failed refresh while the store is down",
        || {
            counter(&b, "buildcost_store_write_failures_total")
                + counter(&b, "buildcost_store_read_failures_total")
                >= failures_before + 2.0
                && counter(&serve, "buildcost_refresh_failures_total") > refresh_failures
        },
        || format!("{}\n{}", b.log_text(), serve.log_text()),
    );
    let committed_late = committed(bootstrap, group);
    assert_eq!(
        committed_early, committed_late,
        "offsets committed while the object store was down"
    );
    // serve answers from its last snapshot and stays ready.
    assert_eq!(
        serve.get("/readyz").0,
        200,
        "serve not ready during the outage"
    );
    assert_eq!(
        business_series(&serve.get("/metrics").1),
        snapshot,
        "serve's gauges during the outage"
    );
    let outage_failures = counter(&b, "buildcost_store_write_failures_total")
        + counter(&b, "buildcost_store_read_failures_total");
    seaweed.resume();

    // The surviving ingester catches up by itself: its retried writes land.
    let written = counter(&b, "buildcost_rows_written_total");
    wait_until(
        Duration::from_secs(120),
        "the surviving ingester to write again after the outage",
        || counter(&b, "buildcost_rows_written_total") > written,
        || b.log_text(),
    );
    // A replacement for the killed ingester, as a Deployment would start one; the survivor is
    // restarted too (SIGTERM: it flushes and commits), after the dead member's session.
    log.push_str(&b.log_text());
    let (status, _) = b.terminate();
    assert!(status.success(), "the surviving ingester stopped cleanly");
    let session = Duration::from_millis(SESSION_MS + 500);
    if let Some(left) = session.checked_sub(killed_at.elapsed()) {
        std::thread::sleep(left);
    }
    let a2 = start("ingest");
    let b2 = start("ingest");
    wait_until(
        Duration::from_secs(240),
        "every build stored and every message committed",
        || {
            committed(bootstrap, group).values().sum::<i64>() == w.lines as i64
                && stored() >= accepted
        },
        || {
            format!(
                "{} of {accepted} stored; committed {:?} of {}\n{}\n{}",
                stored(),
                committed(bootstrap, group),
                w.lines,
                a2.log_text(),
                b2.log_text()
            )
        },
    );
    let refreshes = |s: &Served| s.metric("buildcost_refreshes_total").unwrap_or(0.0);
    let seen = refreshes(&serve);
    wait_until(
        Duration::from_secs(60),
        "two more refreshes of serve",
        || refreshes(&serve) >= seen + 2.0,
        || serve.log_text(),
    );
    let served = serve.get("/metrics").1;
    assert_same_gauges(
        &expected,
        &business_series(&served),
        "serve on the bucket after the kill and the outage",
    );
    assert_bounded_labels(&served, &teams_of(&w.events));
    for s in [&a2, &b2, &serve] {
        log.push_str(&s.log_text());
    }
    for s in [a2, b2, serve] {
        let (status, _) = s.terminate();
        assert!(status.success());
    }

    // The bucket read by another engine: every build, no person.
    let authors = raw_authors(&w.events);
    let authors_file = dir.join("authors.txt");
    std::fs::write(&authors_file, authors.join("\n")).unwrap();
    let read = bucket_tool(
        &python,
        &seaweed,
        &[
            "summary",
            "buildcost/shared/history",
            authors_file.to_str().unwrap(),
        ],
    );
    let rejected = clean["rejected"].as_u64().unwrap() as usize;
    let letters = dead_letters(bootstrap, rejected, &authors);
    let figures = serde_json::json!({
        "valid_events": accepted,
        "stored_distinct": read["distinct_ids"],
        "rows": read["rows"],
        "ids_stored_twice": read["ids_stored_twice"],
        "resent_in_workload": resent,
        "store_failures_during_outage": outage_failures - failures_before,
        "dead_lettered": letters.len(),
        "raw_authors_found": read["raw_authors_found"],
    });
    eprintln!("scale-out figures: {figures}");
    assert_eq!(read["distinct_ids"].as_u64(), Some(accepted), "{read}");
    // A copy may be stored twice only when its copies raced on partitions of two ingesters:
    // never more than the workload re-sent (every view keeps one, as the gauges show).
    assert!(
        read["ids_stored_twice"].as_u64().unwrap() <= resent,
        "{read}"
    );
    assert_eq!(read["raw_authors_found"], 0, "{read}");
    assert_eq!(letters.len(), rejected, "every rejection dead-lettered");
    let hay = log.to_lowercase();
    assert_eq!(
        authors.iter().filter(|a| hay.contains(a.as_str())).count(),
        0,
        "raw authors in the logs"
    );
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("scale_out_s3.json"), figures.to_string()).unwrap();
}
