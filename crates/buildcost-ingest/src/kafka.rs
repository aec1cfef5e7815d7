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

mod context;
mod dead_letters;
mod resume;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use buildcost_model::Decoder;
use buildcost_store::{EventIndex, Store};
use chrono::Utc;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

pub use context::{ConsumerStatus, IngestContext};
pub use dead_letters::{produce_dead_letter, KafkaDeadLetters};

use crate::dead_letter::Origin;
use crate::ingestor::IngestSummary;
use crate::intake::{Intake, Pending};
use crate::{Error, Result};
use context::{ErrorLog, Shared};
use resume::Resume;

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

/// One partition's messages since its last commit.
struct PartitionBatch {
    first_offset: i64,
    last_offset: i64,
    messages: usize,
    started: Instant,
    /// Rows by day, rejections for the ledger, and what the batch adds to the summary once it
    /// is durable: nothing if it is dropped (its partition revoked), since its messages will be
    /// read and counted again, so the `_total` counters never count a message twice and never
    /// go down.
    pending: Pending,
    dead_letters: KafkaDeadLetters,
    /// Set while the store refuses the batch's write: when to try again, and how many times
    /// it failed. Nothing of the batch is committed meanwhile.
    retry: Option<(Instant, u32)>,
}

/// Consumes the topic until `shutdown` turns true, then flushes and commits.
pub struct KafkaIngest {
    settings: KafkaSettings,
    consumer: StreamConsumer<IngestContext>,
    producer: FutureProducer,
    shared: Arc<Mutex<Shared>>,
    decoder: Decoder,
    store: Store,
    intake: Intake,
    batches: BTreeMap<i32, PartitionBatch>,
    summary: Arc<Mutex<IngestSummary>>,
    status: Arc<Mutex<ConsumerStatus>>,
    resume: HashMap<i32, Resume>,
    /// When the current assignment arrived.
    assigned_at: Option<Instant>,
    /// When silent partitions were last looked for.
    last_probe: Option<Instant>,
}

/// The first wait before writing a batch again after the store refused it; it doubles per
/// failure up to [`STORE_RETRY_MAX`].
const STORE_RETRY_MIN: Duration = Duration::from_millis(500);
const STORE_RETRY_MAX: Duration = Duration::from_secs(15);
/// The wait after the `failures`-th store failure in a row: doubling from
/// [`STORE_RETRY_MIN`] up to [`STORE_RETRY_MAX`].
fn store_backoff(failures: u32) -> Duration {
    STORE_RETRY_MIN
        .saturating_mul(1 << failures.saturating_sub(1).min(5))
        .min(STORE_RETRY_MAX)
}

/// How long a message waits for an unreachable store before the ingester gives up (and
/// exits, to be restarted): well inside the consumer's `max.poll.interval.ms` (5 minutes).
const STORE_READ_WAIT: Duration = Duration::from_secs(120);

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
        let priced = settings.priced_classes.clone();
        Ok(KafkaIngest {
            settings,
            consumer,
            producer,
            shared,
            decoder,
            store,
            intake: Intake { index, priced },
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
            let waiting_since = Instant::now();
            let read = loop {
                match self.intake.index.catch_up() {
                    Ok(read) => break read,
                    Err(e) if e.is_unavailable() && waiting_since.elapsed() < STORE_READ_WAIT => {
                        self.count(|s| s.store_read_failures += 1);
                        tracing::error!(error = %e, "the store cannot be read to catch up on other ingesters' files; trying again");
                        std::thread::sleep(STORE_RETRY_MIN);
                    }
                    Err(e) => return Err(e.into()),
                }
            };
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
                batch.pending.rows.discard(&mut self.intake.index);
            }
        }
        Ok(())
    }

    fn handle(&mut self, partition: i32, offset: i64, payload: &[u8]) -> Result<()> {
        let batch = match self.batches.entry(partition) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(PartitionBatch {
                first_offset: offset,
                last_offset: offset,
                messages: 0,
                started: Instant::now(),
                pending: Pending::default(),
                dead_letters: KafkaDeadLetters::new(
                    self.producer.clone(),
                    &self.settings.dead_letter_topic,
                ),
                retry: None,
            }),
        };
        batch.last_offset = offset;
        batch.messages += 1;
        let now = Utc::now();
        let origin = Origin::Kafka {
            topic: self.settings.topic.clone(),
            partition,
            offset,
        };
        // The index reads a day's stored ids on its first event: while the store cannot be
        // reached the message is held (the consumer takes no other) and tried again after a
        // backoff, for up to STORE_READ_WAIT; nothing is committed meanwhile.
        let mut failures: u32 = 0;
        let waiting_since = Instant::now();
        loop {
            match self.intake.take(
                self.decoder.decode(payload, now),
                payload,
                &origin,
                now,
                &mut batch.pending,
                &mut batch.dead_letters,
            ) {
                Ok(_) => break,
                Err(Error::Store(e))
                    if e.is_unavailable() && waiting_since.elapsed() < STORE_READ_WAIT =>
                {
                    failures += 1;
                    let backoff = store_backoff(failures);
                    if let Ok(mut s) = self.summary.lock() {
                        s.store_read_failures += 1;
                    }
                    tracing::error!(
                        partition,
                        offset,
                        failures,
                        retry_in_ms = backoff.as_millis() as u64,
                        error = %e,
                        "the store cannot be read to de-duplicate; the message is held and tried again"
                    );
                    std::thread::sleep(backoff);
                }
                Err(e) => return Err(e),
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
        let delivered = batch.dead_letters.delivered().await?;
        self.count(|s| s.dead_lettered += delivered);
        let name = format!(
            "kafka-{}-{partition}-{:020}-{:020}",
            safe_topic(&self.settings.topic),
            batch.first_offset,
            batch.last_offset
        );
        // The rejection ledger first: rewriting it under the same name is idempotent, while the
        // rows' write reports its files once, so it comes last and a retry never loses them.
        let written = if batch.pending.rejected.is_empty() {
            Ok(())
        } else {
            self.store
                .write_rejections(&name, &batch.pending.rejected)
                .map(|_| ())
                .map_err(Error::from)
        }
        .and_then(|()| {
            batch
                .pending
                .rows
                .write(&self.store, &mut self.intake.index, |_| name.clone())
        });
        let written = match written {
            Ok(written) => written,
            Err(e) if last => return Err(e),
            Err(e) => {
                let failures = batch.retry.map_or(1, |(_, n)| n + 1);
                let backoff = store_backoff(failures);
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
        let counted = &batch.pending.counted;
        self.count(|s| {
            s.files_written += written.len() as u64;
            s.rows_written += rows as u64;
            counted.add_to(s);
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
