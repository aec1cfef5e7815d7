//! The Kafka source: a consumer in a consumer group that stores builds durably before it
//! commits their offsets.
//!
//! Delivery: at-least-once from the broker, exactly-once in the figures. Messages are batched per
//! partition; a batch becomes one Parquet file per day, named from (topic, partition, first
//! offset, last offset), and only once those files are durable is `last + 1` committed. After a
//! crash the uncommitted messages come again: their ids are already in the store's files, which
//! the index reads per day (or the same file name is rewritten), and the `builds` view keeps one
//! row per `event_id` in any case.
//! Rejected messages go to the dead-letter topic, with the reason and where they came from in
//! headers, before the offsets past them are committed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use buildcost_model::Decoder;
use buildcost_store::{EventIndex, Store};
use chrono::Utc;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::day_batches::DayBatches;
use crate::dead_letter::{safe_payload, Origin, SafePayload};
use crate::ingestor::{is_unpriced, IngestSummary};
use crate::{Error, Result};

/// What the Kafka source needs to know.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub topic: String,
    pub group_id: String,
    pub dead_letter_topic: String,
    /// Passed to librdkafka as they are (security, SASL, timeouts, …).
    pub properties: BTreeMap<String, String>,
    /// A partition's batch is written once it holds this many messages…
    pub batch_messages: usize,
    /// …or once its first message is this old.
    pub linger: Duration,
    /// Runner classes of the price table, to count unpriced builds (`None`: not counted).
    pub priced_classes: Option<BTreeSet<String>>,
}

impl KafkaSettings {
    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        // librdkafka's own messages go to our log at their level (`debug` properties included).
        c.set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }
}

/// What the consumer knows about its partitions and brokers, from librdkafka's statistics
/// (every `statistics.interval.ms`, 1 s unless `[kafka.properties]` says otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerStatus {
    /// Partitions assigned to this consumer (kept by the rebalance callback).
    pub assigned: BTreeSet<i32>,
    /// Messages between the committed offset and the high watermark, per assigned partition
    /// whose high watermark is known; from the low watermark on a partition the group has
    /// committed nothing on (0 when it is empty).
    pub lag: BTreeMap<i32, i64>,
    /// Brokers the consumer has a working connection to.
    pub brokers_up: usize,
    /// Whether statistics have arrived at least once.
    pub reported: bool,
    /// The last committed offset the statistics reported per assigned partition: a seek makes
    /// librdkafka forget it until the next commit, and the lag stays known meanwhile.
    pub last_committed: BTreeMap<i32, i64>,
    /// Messages consumed and held in batches that are not durable yet (nothing of them is
    /// committed): what a SIGTERM flushes and a SIGKILL makes the broker deliver again.
    pub pending_messages: u64,
}

/// Partitions revoked by a rebalance, for the loop to drop their in-flight work; and offsets that
/// are durable but whose commit failed, to commit before the partitions go.
#[derive(Default)]
struct Shared {
    revoked: Vec<i32>,
    /// Partitions came in: another process may have stored part of them.
    assigned: bool,
    durable_uncommitted: HashMap<i32, i64>,
}

/// The consumer's context: commits what is durable before partitions are revoked.
pub struct IngestContext {
    topic: String,
    shared: Arc<Mutex<Shared>>,
    status: Arc<Mutex<ConsumerStatus>>,
}

impl ClientContext for IngestContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(facility = fac, "librdkafka: {log_message}")
            }
            L::Warning => tracing::warn!(facility = fac, "librdkafka: {log_message}"),
            L::Notice | L::Info => tracing::info!(facility = fac, "librdkafka: {log_message}"),
            L::Debug => tracing::debug!(facility = fac, "librdkafka: {log_message}"),
        }
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        let Ok(mut status) = self.status.lock() else {
            return;
        };
        let mut lag = BTreeMap::new();
        if let Some(topic) = statistics.topics.get(&self.topic) {
            for p in topic.partitions.values() {
                // Only partitions assigned to us (the rebalance callback keeps that list); a
                // lag of -1 means "not known yet" (no committed offset or watermark).
                if !status.assigned.contains(&p.partition) {
                    continue;
                }
                if p.committed_offset >= 0 {
                    status
                        .last_committed
                        .insert(p.partition, p.committed_offset);
                }
                let committed = status.last_committed.get(&p.partition).copied();
                if p.consumer_lag >= 0 {
                    lag.insert(p.partition, p.consumer_lag);
                } else if let (Some(committed), true) = (committed, p.hi_offset >= 0) {
                    // Committed past the watermark the broker reported (some brokers report
                    // it late, or per batch), or a seek made librdkafka forget its committed
                    // offset (a re-read): the last one known stands.
                    lag.insert(p.partition, (p.hi_offset - committed).max(0));
                } else if let Some(lag_from_start) = uncommitted_lag(p) {
                    lag.insert(p.partition, lag_from_start);
                }
            }
        }
        let brokers_up = statistics
            .brokers
            .values()
            .filter(|b| b.nodeid >= 0 && b.state == "UP")
            .count();
        status.lag = lag;
        status.brokers_up = brokers_up;
        status.reported = true;
    }
}

/// The lag of a partition the group has committed nothing on: everything from the low
/// watermark (`auto.offset.reset` is `earliest`), 0 when it is empty. Only once librdkafka is
/// fetching (`active`): by then it has asked the group for a committed offset and found none,
/// so a partition with a commit never reads as its whole length while that answer is on the way.
fn uncommitted_lag(p: &rdkafka::statistics::Partition) -> Option<i64> {
    (p.fetch_state == "active" && p.committed_offset < 0 && p.lo_offset >= 0 && p.hi_offset >= 0)
        .then(|| (p.hi_offset - p.lo_offset).max(0))
}

impl ConsumerContext for IngestContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut status) = self.status.lock() else {
            return;
        };
        match rebalance {
            Rebalance::Assign(list) => {
                if let Ok(mut shared) = self.shared.lock() {
                    shared.assigned = true;
                }
                status.assigned = list
                    .elements_for_topic(&self.topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                tracing::info!(partitions = ?status.assigned, "partitions assigned");
            }
            Rebalance::Revoke(_) => {
                status.assigned.clear();
                status.lag.clear();
                status.last_committed.clear();
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let Ok(mut shared) = self.shared.lock() else {
            return;
        };
        let mut commit = TopicPartitionList::new();
        for element in list.elements_for_topic(&self.topic) {
            let partition = element.partition();
            shared.revoked.push(partition);
            if let Some(next) = shared.durable_uncommitted.remove(&partition) {
                let _ = commit.add_partition_offset(&self.topic, partition, Offset::Offset(next));
            }
        }
        if commit.count() > 0 {
            if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
                tracing::warn!(error = %e, "could not commit durable offsets before a rebalance; they will be replayed and de-duplicated");
            }
        }
        tracing::info!(
            partitions = list.count(),
            "partitions revoked; in-flight batches of them are dropped"
        );
    }
}

/// Logs consumer errors without flooding the log: the first at once, then at most one line
/// every 10 s with how many were left out.
#[derive(Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn report(&mut self, error: &KafkaError) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(error = %error, suppressed = self.suppressed, "Kafka consumer error; librdkafka retries");
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

/// One partition's messages since its last commit.
struct PartitionBatch {
    first_offset: i64,
    last_offset: i64,
    rows: DayBatches,
    messages: usize,
    started: Instant,
    dead_letters: Vec<rdkafka::producer::DeliveryFuture>,
    /// Recorded in the store's rejection ledger with the batch.
    rejected: Vec<buildcost_store::Rejected>,
    /// Set while the store refuses the batch's write: when to try again, and how many times
    /// it failed. Nothing of the batch is committed meanwhile.
    retry: Option<(Instant, u32)>,
    /// What the batch will add to the summary once it is durable; nothing if it is dropped
    /// (its partition revoked), since its messages will be read and counted again: the
    /// `_total` counters never count a message twice and never go down.
    counted: Counted,
}

/// The counts one batch adds to the [`IngestSummary`].
#[derive(Debug, Default)]
struct Counted {
    accepted: u64,
    unpriced: u64,
    duplicates: u64,
    rejected: buildcost_model::RejectCounts,
}

/// Consumes the topic until `shutdown` turns true, then flushes and commits.
pub struct KafkaIngest {
    settings: KafkaSettings,
    consumer: StreamConsumer<IngestContext>,
    producer: FutureProducer,
    shared: Arc<Mutex<Shared>>,
    decoder: Decoder,
    store: Store,
    index: EventIndex,
    batches: BTreeMap<i32, PartitionBatch>,
    summary: Arc<Mutex<IngestSummary>>,
    status: Arc<Mutex<ConsumerStatus>>,
    resume: HashMap<i32, Resume>,
    /// When the current assignment arrived.
    assigned_at: Option<Instant>,
    /// When silent partitions were last looked for.
    last_probe: Option<Instant>,
}

/// Where a partition resumed after an assignment, checked against its committed offset.
#[derive(Debug, Clone, Copy)]
enum Resume {
    /// Re-reading from `from` because the broker skipped past the committed offset; messages
    /// before `committed` are stored already and are skipped.
    Probing { committed: i64, from: i64 },
    /// Verified: messages before `committed` are skipped (already stored).
    Settled { committed: i64 },
}

/// The first wait before writing a batch again after the store refused it; it doubles per
/// failure up to [`STORE_RETRY_MAX`].
const STORE_RETRY_MIN: Duration = Duration::from_millis(500);
const STORE_RETRY_MAX: Duration = Duration::from_secs(15);

/// How far before the committed offset a re-read starts at first: more than a producer batch.
const REREAD_WINDOW: i64 = 10_000;
/// How long an assigned partition may stay silent before it is re-read from earlier: a broker
/// that cannot serve a fetch starting inside the *last* record batch (Tansu 0.6) answers
/// nothing at all, so no first message ever reveals the skip.
const SILENT_AFTER_ASSIGNMENT: Duration = Duration::from_secs(5);

fn kafka_err(context: &'static str) -> impl FnOnce(KafkaError) -> Error {
    move |e| Error::Kafka { context, source: e }
}

/// A file-name-safe spelling of a topic.
fn safe_topic(topic: &str) -> String {
    topic
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl KafkaIngest {
    /// Connects (lazily, as librdkafka does) and subscribes to the topic.
    ///
    /// # Errors
    /// A property librdkafka refuses, or the subscription fails.
    pub fn new(
        settings: KafkaSettings,
        decoder: Decoder,
        store: Store,
        index: EventIndex,
    ) -> Result<Self> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let status = Arc::new(Mutex::new(ConsumerStatus::default()));
        let context = IngestContext {
            topic: settings.topic.clone(),
            shared: shared.clone(),
            status: status.clone(),
        };
        let consumer: StreamConsumer<IngestContext> = settings
            .client_config()
            .set("group.id", &settings.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Consumer lag per partition and broker state come from librdkafka's statistics.
            .set(
                "statistics.interval.ms",
                settings
                    .properties
                    .get("statistics.interval.ms")
                    .map_or("1000", String::as_str),
            )
            .create_with_context(context)
            .map_err(kafka_err("create the consumer"))?;
        consumer
            .subscribe(&[&settings.topic])
            .map_err(kafka_err("subscribe"))?;
        let producer: FutureProducer = settings
            .client_config()
            .set("enable.idempotence", "true")
            .create()
            .map_err(kafka_err("create the dead-letter producer"))?;
        Ok(KafkaIngest {
            settings,
            consumer,
            producer,
            shared,
            decoder,
            store,
            index,
            batches: BTreeMap::new(),
            summary: Arc::new(Mutex::new(IngestSummary::default())),
            status,
            resume: HashMap::new(),
            assigned_at: None,
            last_probe: None,
        })
    }

    /// Consumer lag and broker state (shared, for metrics and readiness).
    pub fn status(&self) -> Arc<Mutex<ConsumerStatus>> {
        self.status.clone()
    }

    /// The running counts (shared, for metrics).
    pub fn summary(&self) -> Arc<Mutex<IngestSummary>> {
        self.summary.clone()
    }

    fn count(&self, f: impl FnOnce(&mut IngestSummary)) {
        if let Ok(mut s) = self.summary.lock() {
            f(&mut s);
        }
    }

    /// Runs until `shutdown` is true: then writes what is pending, commits it and returns.
    ///
    /// # Errors
    /// The store or the dead-letter topic failed; nothing past the failure is committed.
    pub async fn run(&mut self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let mut tick = tokio::time::interval(self.settings.linger.min(Duration::from_millis(200)));
        let mut errors = ErrorLog::default();
        let mut last_retry = Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                message = self.consumer.recv(), if !self.stalled() => match message {
                    Ok(m) => {
                        let (partition, offset) = (m.partition(), m.offset());
                        let payload = m.payload().unwrap_or_default().to_vec();
                        drop(m);
                        self.apply_rebalance()?;
                        if self.resumes_here(partition, offset) {
                            self.handle(partition, offset, &payload)?;
                        }
                    }
                    Err(e) => {
                        // librdkafka reconnects and retries by itself, with its own backoff
                        // (`reconnect.backoff.ms`); these errors report what it goes through and
                        // arrive no faster than its retries. Pausing here would only make the
                        // queued reports of an outage delay the recovery after it.
                        self.count(|s| s.consumer_errors += 1);
                        errors.report(&e);
                    }
                },
                _ = tick.tick() => {}
            }
            self.apply_rebalance()?;
            self.probe_silent_partitions();
            self.flush_due(false).await?;
            let pending = self.batches.values().map(|b| b.messages as u64).sum();
            if let Ok(mut status) = self.status.lock() {
                status.pending_messages = pending;
            }
            if last_retry.elapsed() >= Duration::from_secs(1) {
                last_retry = Instant::now();
                self.retry_commits();
            }
        }
        self.flush_due(true).await?;
        self.retry_commits();
        Ok(())
    }

    /// Acts on a rebalance: drops the in-flight batches of revoked partitions and, after an
    /// assignment, adds to the index what other ingesters stored meanwhile.
    fn apply_rebalance(&mut self) -> Result<()> {
        let (revoked, assigned) = match self.shared.lock() {
            Ok(mut s) => (
                std::mem::take(&mut s.revoked),
                std::mem::take(&mut s.assigned),
            ),
            Err(_) => return Ok(()),
        };
        if assigned {
            // Where each newly assigned partition resumes is checked on its first message.
            self.resume.clear();
            self.assigned_at = Some(Instant::now());
            let read = self.index.catch_up()?;
            if read > 0 {
                tracing::info!(
                    files = read,
                    "read the ids of files other ingesters wrote since start-up"
                );
            }
        }
        for partition in revoked {
            if let Some(batch) = self.batches.remove(&partition) {
                tracing::debug!(
                    partition,
                    messages = batch.messages,
                    "dropping in-flight batch of a revoked partition"
                );
                batch.rows.discard(&mut self.index);
            }
        }
        Ok(())
    }

    /// Whether a message is new work. The first message of a partition after an assignment is
    /// checked against the committed offset: a broker must resume exactly there, but some
    /// (Tansu 0.6) answer a fetch that starts inside a record batch with the *next* batch, which
    /// would lose the rest of that batch. Then the partition is re-read from
    /// `REREAD_WINDOW` earlier (or from its start), and what precedes the committed offset —
    /// stored already — is skipped.
    fn resumes_here(&mut self, partition: i32, offset: i64) -> bool {
        match self.resume.get(&partition).copied() {
            Some(Resume::Settled { committed }) => offset >= committed,
            Some(Resume::Probing { committed, from }) => {
                if offset <= committed {
                    self.resume.insert(partition, Resume::Settled { committed });
                    tracing::info!(
                        partition,
                        committed,
                        from,
                        "re-read reached the committed offset"
                    );
                    return offset == committed;
                }
                let low = self.low_watermark(partition);
                if from > low {
                    self.reread(partition, committed, low);
                } else {
                    tracing::warn!(
                        partition,
                        committed,
                        first = offset,
                        "offsets missing from the partition's start; continuing after the gap"
                    );
                    self.resume.insert(partition, Resume::Settled { committed });
                    return true;
                }
                false
            }
            None => {
                let committed = self.committed_offset(partition);
                let Some(committed) = committed.filter(|c| offset > *c) else {
                    // The usual case: resumed at (or, redelivering, before) the committed offset.
                    let floor = committed.unwrap_or(0);
                    self.resume
                        .insert(partition, Resume::Settled { committed: floor });
                    return offset >= floor;
                };
                let low = self.low_watermark(partition);
                if committed < low {
                    // Retention deleted what was never read: nothing to go back to.
                    tracing::warn!(
                        partition,
                        committed,
                        low,
                        "the committed offset is older than the partition's start"
                    );
                    self.resume.insert(partition, Resume::Settled { committed });
                    return true;
                }
                tracing::warn!(partition, committed, first = offset, "the broker resumed past the committed offset; re-reading from earlier so nothing is skipped");
                self.reread(partition, committed, (committed - REREAD_WINDOW).max(low));
                false
            }
        }
    }

    /// Re-reads every assigned partition that has sent nothing since the assignment, at least
    /// [`SILENT_AFTER_ASSIGNMENT`] ago, although the consumer's statistics show messages past
    /// its committed offset: that offset may lie inside the last record batch, which such a
    /// broker never serves. What precedes the committed offset is skipped as on any re-read;
    /// a partition is probed at most once per assignment (it then has a resume state). The
    /// statistics' high watermark comes from fetch responses, which Tansu keeps current, unlike
    /// its offset listing.
    fn probe_silent_partitions(&mut self) {
        let Some(assigned) = self.assigned_at else {
            return;
        };
        if assigned.elapsed() < SILENT_AFTER_ASSIGNMENT
            || self
                .last_probe
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last_probe = Some(Instant::now());
        let waiting: Vec<i32> = match self.status.lock() {
            Ok(s) => s
                .lag
                .iter()
                .filter(|(p, lag)| {
                    **lag > 0 && s.assigned.contains(p) && !self.resume.contains_key(p)
                })
                .map(|(p, _)| *p)
                .collect(),
            Err(_) => return,
        };
        for partition in waiting {
            let Some(committed) = self.committed_offset(partition) else {
                continue;
            };
            let low = self.low_watermark(partition);
            if committed <= low {
                continue;
            }
            tracing::info!(
                partition,
                committed,
                "no message since the assignment; re-reading from before the committed offset in case the broker cannot resume inside a record batch"
            );
            self.reread(partition, committed, (committed - REREAD_WINDOW).max(low));
        }
    }

    fn reread(&mut self, partition: i32, committed: i64, from: i64) {
        // The seek makes librdkafka forget the committed offset until the next commit; the lag
        // is measured from this one meanwhile, not from the partition's start.
        if let Ok(mut status) = self.status.lock() {
            status.last_committed.insert(partition, committed);
        }
        self.resume
            .insert(partition, Resume::Probing { committed, from });
        if let Err(e) = self.consumer.seek(
            &self.settings.topic,
            partition,
            Offset::Offset(from),
            Duration::from_secs(10),
        ) {
            tracing::warn!(partition, from, error = %e, "seek failed; the partition resumes where the broker put it");
            self.resume.insert(partition, Resume::Settled { committed });
        }
    }

    fn committed_offset(&self, partition: i32) -> Option<i64> {
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.settings.topic, partition);
        let committed = self
            .consumer
            .committed_offsets(list, Duration::from_secs(10))
            .ok()?;
        committed
            .find_partition(&self.settings.topic, partition)
            .and_then(|e| e.offset().to_raw())
            .filter(|o| *o >= 0)
    }

    fn low_watermark(&self, partition: i32) -> i64 {
        self.consumer
            .fetch_watermarks(&self.settings.topic, partition, Duration::from_secs(10))
            .map_or(0, |(low, _)| low.max(0))
    }

    fn handle(&mut self, partition: i32, offset: i64, payload: &[u8]) -> Result<()> {
        let batch = self
            .batches
            .entry(partition)
            .or_insert_with(|| PartitionBatch {
                first_offset: offset,
                last_offset: offset,
                rows: DayBatches::default(),
                messages: 0,
                started: Instant::now(),
                dead_letters: Vec::new(),
                rejected: Vec::new(),
                retry: None,
                counted: Counted::default(),
            });
        batch.last_offset = offset;
        batch.messages += 1;
        match self.decoder.decode(payload, Utc::now()) {
            Ok(row) => {
                if self.index.insert(row.day(), &row.event_id)? {
                    let unpriced =
                        is_unpriced(self.settings.priced_classes.as_ref(), &row.runner_class);
                    batch.rows.push(row);
                    batch.counted.accepted += 1;
                    batch.counted.unpriced += u64::from(unpriced);
                } else {
                    batch.counted.duplicates += 1;
                }
            }
            Err(rejection) => {
                let origin = Origin::Kafka {
                    topic: self.settings.topic.clone(),
                    partition,
                    offset,
                };
                let body = match safe_payload(payload) {
                    SafePayload::Json(map) => serde_json::to_vec(&map).unwrap_or_default(),
                    SafePayload::Text { text, .. } => text.into_bytes(),
                };
                let (partition_s, offset_s) = (partition.to_string(), offset.to_string());
                let headers = OwnedHeaders::new()
                    .insert(Header {
                        key: "buildcost.reason",
                        value: Some(rejection.reason.as_str()),
                    })
                    .insert(Header {
                        key: "buildcost.detail",
                        value: Some(rejection.detail.as_str()),
                    })
                    .insert(Header {
                        key: "buildcost.source.topic",
                        value: Some(self.settings.topic.as_str()),
                    })
                    .insert(Header {
                        key: "buildcost.source.partition",
                        value: Some(partition_s.as_str()),
                    })
                    .insert(Header {
                        key: "buildcost.source.offset",
                        value: Some(offset_s.as_str()),
                    });
                let record = FutureRecord::<(), [u8]>::to(&self.settings.dead_letter_topic)
                    .payload(&body)
                    .headers(headers);
                let delivery =
                    self.producer
                        .send_result(record)
                        .map_err(|(e, _)| Error::Kafka {
                            context: "queue a dead letter",
                            source: e,
                        })?;
                if let Some(batch) = self.batches.get_mut(&partition) {
                    batch.dead_letters.push(delivery);
                    batch.counted.rejected.add(rejection.reason, 1);
                    batch.rejected.push(buildcost_store::Rejected {
                        at: crate::ingestor::rejected_at(payload, Utc::now()),
                        reason: rejection.reason.as_str().to_owned(),
                        origin: origin.to_string(),
                    });
                }
                tracing::debug!(%origin, reason = %rejection.reason, "dead-lettered");
            }
        }
        buildcost_store::crash_point("mid_batch");
        Ok(())
    }

    async fn flush_due(&mut self, all: bool) -> Result<()> {
        let due: Vec<i32> = self
            .batches
            .iter()
            .filter(|(_, b)| match b.retry {
                Some((at, _)) => all || Instant::now() >= at,
                None => {
                    all || b.messages >= self.settings.batch_messages
                        || b.started.elapsed() >= self.settings.linger
                }
            })
            .map(|(p, _)| *p)
            .collect();
        for partition in due {
            if let Some(batch) = self.batches.remove(&partition) {
                self.flush(partition, batch, all).await?;
            }
        }
        Ok(())
    }

    /// Whether a batch waits for the store: no more messages are taken meanwhile, so memory
    /// stays bounded and librdkafka's own queue holds the rest.
    fn stalled(&self) -> bool {
        self.batches.values().any(|b| b.retry.is_some())
    }

    /// Makes one partition's batch durable, then commits past it. When the store refuses the
    /// write (disk full, an I/O error) nothing is committed: the batch is kept and written again
    /// after a backoff, and the failure is logged and counted; only at shutdown (`last`) is the
    /// failure returned.
    async fn flush(&mut self, partition: i32, mut batch: PartitionBatch, last: bool) -> Result<()> {
        for delivery in std::mem::take(&mut batch.dead_letters) {
            match delivery.await {
                Ok(Ok(_)) => self.count(|s| s.dead_lettered += 1),
                Ok(Err((e, _))) => {
                    return Err(Error::Kafka {
                        context: "deliver a dead letter",
                        source: e,
                    })
                }
                Err(_) => {
                    return Err(Error::Kafka {
                        context: "deliver a dead letter",
                        source: KafkaError::Canceled,
                    })
                }
            }
        }
        let name = format!(
            "kafka-{}-{partition}-{:020}-{:020}",
            safe_topic(&self.settings.topic),
            batch.first_offset,
            batch.last_offset
        );
        // The rejection ledger first: rewriting it under the same name is idempotent, while the
        // rows' write reports its files once, so it comes last and a retry never loses them.
        let written = if batch.rejected.is_empty() {
            Ok(())
        } else {
            self.store
                .write_rejections(&name, &batch.rejected)
                .map(|_| ())
                .map_err(Error::from)
        }
        .and_then(|()| {
            batch
                .rows
                .write(&self.store, &mut self.index, |_| name.clone())
        });
        let written = match written {
            Ok(written) => written,
            Err(e) if last => return Err(e),
            Err(e) => {
                let failures = batch.retry.map_or(1, |(_, n)| n + 1);
                let backoff = STORE_RETRY_MIN
                    .saturating_mul(1 << (failures - 1).min(5))
                    .min(STORE_RETRY_MAX);
                self.count(|s| s.store_write_failures += 1);
                tracing::error!(
                    partition,
                    first_offset = batch.first_offset,
                    last_offset = batch.last_offset,
                    failures,
                    retry_in_ms = backoff.as_millis() as u64,
                    error = %e,
                    "the store refused a write; nothing is committed, the batch is kept and written again"
                );
                batch.retry = Some((Instant::now() + backoff, failures));
                self.batches.insert(partition, batch);
                return Ok(());
            }
        };
        if let Some((_, failures)) = batch.retry {
            tracing::info!(
                partition,
                failures,
                "the store took the batch after it failed"
            );
        }
        let rows: usize = written.iter().map(|(_, r)| *r).sum();
        let c = &batch.counted;
        self.count(|s| {
            s.files_written += written.len() as u64;
            s.rows_written += rows as u64;
            s.accepted += c.accepted;
            s.unpriced += c.unpriced;
            s.duplicates += c.duplicates;
            s.rejected_by_reason.merge(&c.rejected);
        });
        buildcost_store::crash_point("after_rename");
        let next = batch.last_offset + 1;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.settings.topic, partition, Offset::Offset(next))
            .map_err(kafka_err("build the commit"))?;
        if buildcost_store::crash_due("mid_commit") {
            let _ = self.consumer.commit(&list, CommitMode::Async);
            buildcost_store::crash_now();
        }
        match self.consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => {
                if let Ok(mut s) = self.shared.lock() {
                    s.durable_uncommitted.remove(&partition);
                }
                tracing::debug!(partition, next, rows, "committed after durable write");
            }
            Err(e) => {
                self.count(|s| s.commit_failures += 1);
                tracing::warn!(partition, next, error = %e, "commit failed; retrying later (the rows are durable, a replay is de-duplicated)");
                if let Ok(mut s) = self.shared.lock() {
                    s.durable_uncommitted.insert(partition, next);
                }
            }
        }
        Ok(())
    }

    /// Commits durable offsets whose commit failed before; forgets those that go through.
    fn retry_commits(&self) {
        let pending: Vec<(i32, i64)> = match self.shared.lock() {
            Ok(s) => s
                .durable_uncommitted
                .iter()
                .map(|(p, o)| (*p, *o))
                .collect(),
            Err(_) => return,
        };
        let mut list = TopicPartitionList::new();
        for (p, o) in &pending {
            let _ = list.add_partition_offset(&self.settings.topic, *p, Offset::Offset(*o));
        }
        if list.count() == 0 {
            return;
        }
        match self.consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => {
                if let Ok(mut s) = self.shared.lock() {
                    for (p, o) in pending {
                        // A later flush may have moved the partition on meanwhile.
                        if s.durable_uncommitted.get(&p) == Some(&o) {
                            s.durable_uncommitted.remove(&p);
                        }
                    }
                }
                tracing::info!(partitions = list.count(), "retried commits went through");
            }
            Err(e) => {
                self.count(|s| s.commit_failures += 1);
                tracing::warn!(error = %e, "retrying commits failed; retrying later (a replay is de-duplicated)");
            }
        }
    }
}
