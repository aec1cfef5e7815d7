//! The Kafka source against librdkafka's in-process mock cluster: commit only after durable,
//! dead letters with their reason, and no build stored twice after a crash and a replay.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use buildcost_ingest::{IngestSummary, KafkaIngest, KafkaSettings};
use buildcost_model::{Classifier, Decoder, Pseudonymiser};
use buildcost_store::Store;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::TopicPartitionList;
use tokio::sync::watch;

const TOPIC: &str = "ci.build-events";
const DLQ: &str = "ci.build-events.dlq";

fn event(i: usize) -> String {
    format!(
        r#"{{"schema_version":1,"event_id":"k-{i}","source":"gitlab","build_id":"{i}","pipeline":"p","repository":"r","team":"t{}","author":"Person {i}","started_at":"2026-11-01T10:00:00Z","finished_at":"2026-11-0{}T10:30:00Z","status":"success","runner_class":"small"}}"#,
        i % 3,
        1 + i % 2
    )
}

/// `valid` distinct events, every tenth sent twice, and `invalid` malformed messages.
fn workload(valid: usize, invalid: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..valid {
        out.push(event(i).into_bytes());
        if i % 10 == 0 {
            out.push(event(i).into_bytes());
        }
    }
    for i in 0..invalid {
        out.push(
            format!(r#"{{"schema_version":1,"event_id":"bad-{i}","author":"Secret Person"}}"#)
                .into_bytes(),
        );
    }
    out
}

async fn produce(bootstrap: &str, messages: &[Vec<u8>]) {
    produce_to(bootstrap, messages, None).await;
}

/// Produces `messages` to `partition`, or, without one, spread by key over the partitions.
async fn produce_to(bootstrap: &str, messages: &[Vec<u8>], partition: Option<i32>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (i, m) in messages.iter().enumerate() {
        let key = (i % 7).to_string();
        let mut record = FutureRecord::to(TOPIC).payload(m).key(&key);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        producer.send(record, Duration::from_secs(5)).await.unwrap();
    }
}

fn settings(bootstrap: &str) -> KafkaSettings {
    // BUILDCOST_LOG=debug shows the ingester's and librdkafka's logs when a test fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BUILDCOST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_test_writer()
        .try_init();
    KafkaSettings {
        brokers: bootstrap.to_owned(),
        topic: TOPIC.into(),
        group_id: "buildcost-test".into(),
        dead_letter_topic: DLQ.into(),
        properties: BTreeMap::from([("session.timeout.ms".into(), "6000".into())]),
        batch_messages: 40,
        linger: Duration::from_millis(150),
        priced_classes: None,
    }
}

fn decoder() -> Decoder {
    Decoder::new(
        65536,
        Pseudonymiser::new(b"k").unwrap(),
        Classifier::builtin().unwrap(),
    )
}

fn processed(s: &Arc<Mutex<IngestSummary>>) -> u64 {
    let s = s.lock().unwrap();
    s.accepted + s.duplicates + s.rejected()
}

/// Waits until `done` holds, failing the test after `limit`.
async fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stored_rows(store: &Store) -> usize {
    store.event_id_counts().unwrap().len()
}

fn committed(bootstrap: &str, group: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(TOPIC, p);
    }
    let offsets = consumer
        .committed_offsets(list, Duration::from_secs(5))
        .unwrap();
    offsets
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap_or(0).max(0))
        .sum()
}

/// Runs an ingester until it has processed `expected` messages, then stops it gracefully.
async fn consume(settings: KafkaSettings, store: &Store, expected: u64) -> IngestSummary {
    let mut ingest =
        KafkaIngest::new(settings, decoder(), store.clone(), store.event_index()).unwrap();
    let summary = ingest.summary();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move { ingest.run(stopped).await });
    wait_for(Duration::from_secs(60), "every message", || {
        processed(&summary) >= expected
    })
    .await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let s = summary.lock().unwrap().clone();
    s
}

/// A one-broker mock cluster with the topic (`partitions`) and the dead-letter topic.
fn mock_cluster(
    partitions: i32,
) -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
) {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, partitions, 1).unwrap();
    cluster.create_topic(DLQ, 1, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    (cluster, bootstrap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_every_build_once_commits_after_durable_and_dead_letters_the_rest() {
    let (_cluster, bootstrap) = mock_cluster(3);
    let messages = workload(300, 12);
    produce(&bootstrap, &messages).await;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let s = consume(settings(&bootstrap), &store, messages.len() as u64).await;
    assert_eq!(
        (s.accepted, s.duplicates, s.rejected(), s.dead_lettered),
        (300, 30, 12, 12),
        "{s:?}"
    );
    assert_eq!(stored_rows(&store), 300);
    assert_eq!(
        committed(&bootstrap, "buildcost-test", 3),
        messages.len() as i64,
        "every offset committed after the final flush"
    );
    // File names come from topic, partition and offsets.
    let names: Vec<_> = store
        .list_files()
        .unwrap()
        .iter()
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("kafka-ci.build-events-")),
        "{names:?}"
    );

    // The dead letters carry reason and origin in headers, and no author.
    let letters = common::read_dead_letters(&bootstrap, DLQ, "dlq-reader", 12);
    assert_eq!(letters.len(), 12);
    for common::DeadLetter { headers, payload } in letters {
        assert_eq!(headers["buildcost.reason"], "missing_field");
        assert_eq!(headers["buildcost.source.topic"], TOPIC);
        assert!(
            headers.contains_key("buildcost.source.partition")
                && headers.contains_key("buildcost.source.offset")
        );
        assert!(!payload.contains("Secret"), "{payload}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_durable_but_uncommitted_messages_stores_nothing_twice() {
    let (_cluster, bootstrap) = mock_cluster(2);
    let messages = workload(200, 0);
    produce(&bootstrap, &messages).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    // A first run stores and commits everything…
    let first = consume(settings(&bootstrap), &store, messages.len() as u64).await;
    assert_eq!(first.accepted, 200);
    assert_eq!(stored_rows(&store), 200);
    // …then its commits are lost, as if it had died after the rename and before the commit:
    // a consumer group with no committed offsets reads every message again.
    let replay = KafkaSettings {
        group_id: "replay".into(),
        ..settings(&bootstrap)
    };
    let second = consume(replay, &store, messages.len() as u64).await;
    assert_eq!(second.accepted, 0, "{second:?}");
    assert_eq!(second.duplicates, messages.len() as u64, "{second:?}");
    assert_eq!(stored_rows(&store), 200);
    assert_eq!(committed(&bootstrap, "replay", 2), messages.len() as i64);
}

/// An ingester running in the background.
struct Running {
    summary: Arc<Mutex<IngestSummary>>,
    status: Arc<Mutex<buildcost_ingest::ConsumerStatus>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<buildcost_ingest::Result<()>>,
}

impl Running {
    fn start(settings: KafkaSettings, store: &Store) -> Running {
        let mut ingest =
            KafkaIngest::new(settings, decoder(), store.clone(), store.event_index()).unwrap();
        let (summary, status) = (ingest.summary(), ingest.status());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move { ingest.run(stopped).await });
        Running {
            summary,
            status,
            stop,
            task,
        }
    }

    fn counts(&self) -> IngestSummary {
        self.summary.lock().unwrap().clone()
    }

    async fn finish(self) -> IngestSummary {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
        let s = self.summary.lock().unwrap().clone();
        s
    }
}

/// Fails unless exactly `expected` distinct builds are stored and none in more than one row,
/// but for ids in `resent` (the workload's own re-sends: two copies on partitions owned by two
/// ingesters at once can both be stored; the `builds` view keeps one).
fn assert_stored_once_but(store: &Store, expected: usize, resent: &[String]) {
    let counts = store.event_id_counts().unwrap();
    let twice: Vec<_> = counts
        .iter()
        .filter(|(id, n)| **n > 1 && !resent.contains(id))
        .collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    assert_eq!(counts.len(), expected, "distinct builds stored");
}

fn assert_stored_once(store: &Store, expected: usize) {
    assert_stored_once_but(store, expected, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_goes_down_and_comes_back_loses_nothing() {
    let (cluster, bootstrap) = mock_cluster(2);
    let messages = workload(300, 6);
    let (first, second) = messages.split_at(150);
    produce(&bootstrap, first).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut fast_reconnect = settings(&bootstrap);
    // librdkafka backs off reconnects up to 10 s by default; 1 s keeps the test short.
    fast_reconnect
        .properties
        .insert("reconnect.backoff.max.ms".into(), "1000".into());
    let running = Running::start(fast_reconnect, &store);
    wait_for(Duration::from_secs(60), "the first half", || {
        processed(&running.summary) >= first.len() as u64
    })
    .await;

    cluster.broker_down(1).unwrap();
    wait_for(
        Duration::from_secs(60),
        "the consumer to see the broker go",
        || running.status.lock().unwrap().brokers_up == 0,
    )
    .await;
    let down = Instant::now();
    cluster.broker_up(1).unwrap();
    wait_for(Duration::from_secs(60), "the broker to be back", || {
        running.status.lock().unwrap().brokers_up == 1
    })
    .await;
    produce(&bootstrap, second).await;
    wait_for(Duration::from_secs(150), "the second half", || {
        processed(&running.summary) >= messages.len() as u64
    })
    .await;
    let caught_up = down.elapsed();
    let s = running.finish().await;
    assert_eq!((s.accepted, s.rejected()), (300, 6), "{s:?}");
    assert_stored_once(&store, 300);
    let (lost, doubles) = losses_and_doubles(&store, 300);
    record_figures(
        "broker_down_and_up",
        &serde_json::json!({
            "lost": lost,
            "stored_twice": doubles,
            "seconds_to_catch_up_after_the_broker_is_back": caught_up.as_secs_f64(),
            "consumer_errors": s.consumer_errors,
        }),
    );
    assert_eq!(
        committed(&bootstrap, "buildcost-test", 2),
        messages.len() as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commits_are_retried_and_nothing_is_stored_twice() {
    let (cluster, bootstrap) = mock_cluster(2);
    let messages = workload(200, 0);
    produce(&bootstrap, &messages).await;
    // The next four offset commits fail with an error librdkafka does not retry itself.
    cluster.request_errors(
        rdkafka::types::RDKafkaApiKey::OffsetCommit,
        &[rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE; 4],
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let running = Running::start(settings(&bootstrap), &store);
    wait_for(
        Duration::from_secs(60),
        "every message and a failed commit",
        || {
            let s = running.counts();
            s.accepted + s.duplicates >= messages.len() as u64 && s.commit_failures > 0
        },
    )
    .await;
    // The retries (every second) get through once the injected errors are used up.
    wait_for(Duration::from_secs(60), "the commits to catch up", || {
        committed(&bootstrap, "buildcost-test", 2) == messages.len() as i64
    })
    .await;
    let s = running.finish().await;
    assert!(s.commit_failures >= 1, "{s:?}");
    assert_stored_once(&store, 200);
    let (lost, doubles) = losses_and_doubles(&store, 200);
    record_figures(
        "offset_commit_errors",
        &serde_json::json!({
            "injected_errors": 4,
            "failed_commits": s.commit_failures,
            "lost": lost,
            "stored_twice": doubles,
        }),
    );

    // A restart of the group reads nothing again: the commits are where the data is.
    let again = Running::start(settings(&bootstrap), &store);
    let s = again.finish().await;
    assert_eq!((s.accepted, s.duplicates), (0, 0), "{s:?}");
}

/// Consumes 200 valid and `invalid` malformed messages with `errors` injected on `api`: nothing
/// lost, nothing stored twice; records the figures under `name`.
async fn injected_errors_lose_nothing(
    name: &str,
    api: rdkafka::types::RDKafkaApiKey,
    errors: &[rdkafka::types::RDKafkaRespErr],
    invalid: usize,
) {
    let (cluster, bootstrap) = mock_cluster(2);
    let messages = workload(200, invalid);
    produce(&bootstrap, &messages).await;
    cluster.request_errors(api, errors);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let started = Instant::now();
    let s = consume(settings(&bootstrap), &store, messages.len() as u64).await;
    let took = started.elapsed();
    assert_eq!((s.accepted, s.rejected()), (200, invalid as u64), "{s:?}");
    assert_stored_once(&store, 200);
    let (lost, doubles) = losses_and_doubles(&store, 200);
    record_figures(
        name,
        &serde_json::json!({
            "injected_errors": errors.len(),
            "lost": lost,
            "stored_twice": doubles,
            "seconds_to_consume_all": took.as_secs_f64(),
        }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_errors_are_retried_without_loss() {
    injected_errors_lose_nothing(
        "fetch_errors",
        rdkafka::types::RDKafkaApiKey::Fetch,
        &[rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 6],
        4,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ingesters_share_the_partitions_and_one_dying_loses_nothing() {
    let (_cluster, bootstrap) = mock_cluster(4);
    let messages = workload(400, 8);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = Running::start(settings(&bootstrap), &store);
    let b = Running::start(settings(&bootstrap), &store);
    // Both members get partitions before the events arrive.
    wait_for(
        Duration::from_secs(60),
        "both members to be assigned",
        || {
            !a.status.lock().unwrap().assigned.is_empty()
                && !b.status.lock().unwrap().assigned.is_empty()
        },
    )
    .await;
    produce(&bootstrap, &messages).await;
    wait_for(Duration::from_secs(60), "A to take some messages", || {
        processed(&a.summary) > 0
    })
    .await;
    // A dies without flushing or committing: its in-flight batches are lost, B re-reads them.
    a.task.abort();
    let _ = a.task.await;
    let killed = Instant::now();
    wait_for(
        Duration::from_secs(90),
        "B to own every partition and catch up",
        || committed(&bootstrap, "buildcost-test", 4) == messages.len() as i64,
    )
    .await;
    let recovery = killed.elapsed();
    let sb = b.finish().await;
    assert!(sb.accepted > 0, "{sb:?}");
    let resent: Vec<String> = (0..400).step_by(10).map(|i| format!("k-{i}")).collect();
    assert_stored_once_but(&store, 400, &resent);
    let counts = store.event_id_counts().unwrap();
    let doubles = counts
        .iter()
        .filter(|(id, n)| **n > 1 && !resent.contains(id))
        .count();
    record_figures(
        "two_ingesters_one_killed",
        &serde_json::json!({
            "lost": 400 - counts.len() as i64,
            "stored_twice": doubles,
            "seconds_until_every_offset_committed_after_the_kill": recovery.as_secs_f64(),
        }),
    );
}

/// Writes one fault test's figures to `<target>/tmp/reliability/<test>.json`, the table
/// `docs/reliability.md` reports (`cargo test` hides a passing test's output).
fn record_figures(test: &str, figures: &serde_json::Value) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{test}.json")), figures.to_string()).unwrap();
    eprintln!("figures {test}: {figures}");
}

/// Lost and twice-stored builds of a store that should hold `expected` distinct ones.
fn losses_and_doubles(store: &Store, expected: usize) -> (i64, usize) {
    let counts = store.event_id_counts().unwrap();
    let doubles = counts.values().filter(|n| **n > 1).count();
    (expected as i64 - counts.len() as i64, doubles)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_refuses_writes_gets_no_commit_and_the_batch_is_written_once_it_recovers() {
    let (_cluster, bootstrap) = mock_cluster(2);
    let messages = workload(200, 0);
    produce(&bootstrap, &messages).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // A regular file where a day's folder belongs: every write of that day fails with an I/O
    // error, as on a full or broken disk.
    let blocked = store.partition_dir(chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
    std::fs::write(&blocked, b"in the way").unwrap();

    let running = Running::start(settings(&bootstrap), &store);
    wait_for(Duration::from_secs(60), "two refused writes", || {
        running.counts().store_write_failures >= 2
    })
    .await;
    assert_eq!(
        committed(&bootstrap, "buildcost-test", 2),
        0,
        "nothing is committed while the store refuses the batch"
    );
    assert!(
        store.list_files().unwrap().is_empty(),
        "a refused write leaves nothing visible"
    );
    std::fs::remove_file(&blocked).unwrap();
    let healed = Instant::now();
    wait_for(
        Duration::from_secs(60),
        "the commits after the store heals",
        || committed(&bootstrap, "buildcost-test", 2) == messages.len() as i64,
    )
    .await;
    let recovery = healed.elapsed();
    let s = running.finish().await;
    assert_eq!(s.accepted, 200, "{s:?}");
    assert_stored_once(&store, 200);
    let (lost, doubles) = losses_and_doubles(&store, 200);
    record_figures(
        "store_refuses_writes",
        &serde_json::json!({
            "refused_writes": s.store_write_failures,
            "lost": lost,
            "stored_twice": doubles,
            "recovery_seconds": recovery.as_secs_f64(),
        }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_broker_delays_but_loses_nothing() {
    let (cluster, bootstrap) = mock_cluster(2);
    let messages = workload(200, 4);
    produce(&bootstrap, &messages).await;
    // 300 ms each way on every request: a congested or far-away broker.
    cluster
        .broker_round_trip_time(1, Duration::from_millis(300))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let started = Instant::now();
    let s = consume(settings(&bootstrap), &store, messages.len() as u64).await;
    let took = started.elapsed();
    assert_eq!((s.accepted, s.rejected()), (200, 4), "{s:?}");
    assert_stored_once(&store, 200);
    assert_eq!(
        committed(&bootstrap, "buildcost-test", 2),
        messages.len() as i64
    );
    let (lost, doubles) = losses_and_doubles(&store, 200);
    record_figures(
        "slow_broker",
        &serde_json::json!({
            "rtt_ms": 300,
            "lost": lost,
            "stored_twice": doubles,
            "seconds_to_consume_all": took.as_secs_f64(),
        }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_group_errors_delay_the_assignment_but_lose_nothing() {
    injected_errors_lose_nothing(
        "join_group_errors",
        rdkafka::types::RDKafkaApiKey::JoinGroup,
        &[rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS; 5],
        0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lag_covers_every_assigned_partition_before_the_first_commit_and_when_empty() {
    // Everything on partition 0; partitions 1 and 2 stay empty, and the group has never
    // committed anything: a fresh group on a backlog.
    let (_cluster, bootstrap) = mock_cluster(3);
    let messages = workload(120, 0);
    produce_to(&bootstrap, &messages, Some(0)).await;
    let n = messages.len() as i64;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let lag = |r: &Running| r.status.lock().unwrap().lag.clone();
    let expect = |first: i64| BTreeMap::from([(0, first), (1, 0), (2, 0)]);

    // Every message held in a batch, nothing committed: the backlog shows on partition 0 and
    // the empty partitions read 0.
    let mut holding = settings(&bootstrap);
    holding.linger = Duration::from_secs(600);
    holding.batch_messages = 1_000_000;
    let first = Running::start(holding, &store);
    wait_for(Duration::from_secs(60), "the backlog in the lag", || {
        lag(&first) == expect(n)
    })
    .await;
    assert_eq!(first.status.lock().unwrap().pending_messages, n as u64);
    let s = first.finish().await;
    assert_eq!((s.accepted + s.duplicates) as i64, n, "{s:?}");

    // Committed on partition 0, still nothing on the others: 0 everywhere.
    let second = Running::start(settings(&bootstrap), &store);
    wait_for(
        Duration::from_secs(60),
        "a lag of 0 on every partition",
        || lag(&second) == expect(0),
    )
    .await;
    let s = second.finish().await;
    assert_eq!(
        (s.accepted, s.duplicates),
        (0, 0),
        "nothing read again: {s:?}"
    );
}
