//! The consumer's librdkafka context: statistics (lag per partition, brokers up), the
//! rebalance callbacks (commit what is durable before partitions go), librdkafka's log lines.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

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
pub(crate) struct Shared {
    pub revoked: Vec<i32>,
    /// Partitions came in: another process may have stored part of them.
    pub assigned: bool,
    pub durable_uncommitted: HashMap<i32, i64>,
}

/// The consumer's context: commits what is durable before partitions are revoked.
pub struct IngestContext {
    pub(crate) topic: String,
    pub(crate) shared: Arc<Mutex<Shared>>,
    pub(crate) status: Arc<Mutex<ConsumerStatus>>,
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
pub(crate) struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    pub fn report(&mut self, error: &KafkaError) {
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
