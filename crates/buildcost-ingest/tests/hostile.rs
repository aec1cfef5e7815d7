//! The hostile corpus (`tests/hostile/corpus.json`, made by `make_corpus.py`): every message
//! gets the outcome the spec gives it, nothing panics, and through Kafka every rejection is
//! dead-lettered with its reason and without the author.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use buildcost_ingest::{KafkaIngest, KafkaSettings};
use buildcost_model::{Classifier, Decoder, Pseudonymiser, DEFAULT_MAX_EVENT_BYTES};
use buildcost_store::Store;
use chrono::Utc;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use tokio::sync::watch;

const TOPIC: &str = "hostile";
const DLQ: &str = "hostile.dlq";
/// The one raw identity in the corpus; it must come out nowhere.
const AUTHOR: &str = "Hostile Person";
/// Kafka's default message limit is 1 MB: bigger entries go through the decoder only.
const KAFKA_MAX: usize = 900 * 1024;

struct Entry {
    name: String,
    expect: String,
    bytes: Vec<u8>,
}

fn corpus() -> Vec<Entry> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile/corpus.json");
    let entries: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    entries
        .into_iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            let bytes = if let Some(t) = e["text"].as_str() {
                t.as_bytes().to_vec()
            } else if let Some(h) = e["hex"].as_str() {
                (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                    .collect()
            } else {
                let r = &e["repeat"];
                let s = |k: &str| r[k].as_str().unwrap().to_owned();
                let times = usize::try_from(r["times"].as_u64().unwrap()).unwrap();
                format!("{}{}{}", s("prefix"), s("unit").repeat(times), s("suffix")).into_bytes()
            };
            Entry {
                name: text("name"),
                expect: text("expect"),
                bytes,
            }
        })
        .collect()
}

/// The decoder of the corpus: a retention of 20 years, so "year 0" and a build of 2001 are too
/// old while the corpus's 2026 builds stay young for as long as this test lives.
fn decoder() -> Decoder {
    Decoder::new(
        DEFAULT_MAX_EVENT_BYTES,
        Pseudonymiser::new(b"hostile").unwrap(),
        Classifier::builtin().unwrap(),
    )
    .with_retention_days(20 * 365)
}

#[test]
fn the_corpus_is_big_enough_and_names_each_entry_once() {
    let entries = corpus();
    assert!(entries.len() >= 60, "{} entries", entries.len());
    let mut names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), entries.len(), "entry names are unique");
}

#[test]
fn every_hostile_message_gets_the_outcome_the_spec_gives_it_and_nothing_panics() {
    let decoder = decoder();
    let mut wrong = Vec::new();
    for entry in corpus() {
        let outcome = std::panic::catch_unwind(|| decoder.decode(&entry.bytes, Utc::now()));
        let got = match outcome {
            Err(_) => "a panic".to_owned(),
            Ok(Ok(row)) => {
                assert!(
                    !format!("{row:?}").contains(AUTHOR),
                    "{}: the row holds the raw author",
                    entry.name
                );
                "accepted".to_owned()
            }
            Ok(Err(rejection)) => {
                assert!(
                    !rejection.detail.contains(AUTHOR),
                    "{}: the detail quotes the author",
                    entry.name
                );
                rejection.reason.as_str().to_owned()
            }
        };
        if got != entry.expect {
            wrong.push(format!(
                "{}: expected {}, got {got}",
                entry.name, entry.expect
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_kafka_every_rejection_is_dead_lettered_with_its_reason_and_no_author() {
    let entries = corpus();
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 1, 1).unwrap();
    cluster.create_topic(DLQ, 1, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("message.max.bytes", "1000000")
        .create()
        .unwrap();
    // One partition, in order: offset i is the i-th entry sent.
    let mut sent = Vec::new();
    for entry in entries.iter().filter(|e| e.bytes.len() <= KAFKA_MAX) {
        producer
            .send(
                FutureRecord::<(), [u8]>::to(TOPIC).payload(&entry.bytes),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        sent.push(entry);
    }
    let skipped = entries.len() - sent.len();
    eprintln!("{skipped} entries over {KAFKA_MAX} bytes go through the decoder test only (Kafka's message limit)");
    assert!(skipped <= 1, "only the 10 MB entry is too big for Kafka");

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let settings = KafkaSettings {
        brokers: bootstrap.clone(),
        topic: TOPIC.into(),
        group_id: "hostile".into(),
        dead_letter_topic: DLQ.into(),
        properties: BTreeMap::new(),
        batch_messages: 25,
        linger: Duration::from_millis(100),
        priced_classes: None,
    };
    let mut ingest =
        KafkaIngest::new(settings, decoder(), store.clone(), store.event_index()).unwrap();
    let summary = ingest.summary();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move { ingest.run(stopped).await });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = summary.lock().unwrap().clone();
        if s.accepted + s.duplicates + s.rejected() >= sent.len() as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "timed out: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let s = summary.lock().unwrap().clone();
    let expected_accepted = sent.iter().filter(|e| e.expect == "accepted").count();
    assert_eq!(s.accepted as usize, expected_accepted, "{s:?}");
    assert_eq!(
        s.rejected() as usize,
        sent.len() - expected_accepted,
        "{s:?}"
    );
    assert_eq!(
        s.dead_lettered,
        s.rejected(),
        "every rejection acknowledged by the DLQ"
    );
    assert_eq!(store.event_id_counts().unwrap().len(), expected_accepted);

    let mut by_offset = BTreeMap::new();
    for letter in common::read_dead_letters(&bootstrap, DLQ, "hostile-dlq", s.rejected() as usize) {
        let h = &letter.headers;
        assert!(
            !letter.payload.contains(AUTHOR),
            "a dead letter holds the author: {h:?}"
        );
        assert!(!h.values().any(|v| v.contains(AUTHOR)), "{h:?}");
        let offset: usize = h["buildcost.source.offset"].parse().unwrap();
        by_offset.insert(offset, h["buildcost.reason"].clone());
    }
    let mut wrong = Vec::new();
    for (offset, entry) in sent.iter().enumerate() {
        let got = by_offset
            .get(&offset)
            .map_or("not dead-lettered", String::as_str);
        let want = if entry.expect == "accepted" {
            "not dead-lettered"
        } else {
            entry.expect.as_str()
        };
        if got != want {
            wrong.push(format!("{}: expected {want}, got {got}", entry.name));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
