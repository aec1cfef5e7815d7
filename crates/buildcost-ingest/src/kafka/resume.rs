//! Where a partition resumes after an assignment. A broker must resume exactly at the
//! committed offset, but some (Tansu 0.6) answer a fetch that starts inside a record batch with
//! the *next* batch, or with nothing when it is the last one: the partition is then re-read
//! from earlier, and what precedes the committed offset — stored already — is skipped.

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::KafkaIngest;

/// Where a partition resumed after an assignment, checked against its committed offset.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Resume {
    /// Re-reading from `from` because the broker skipped past the committed offset; messages
    /// before `committed` are stored already and are skipped.
    Probing { committed: i64, from: i64 },
    /// Verified: messages before `committed` are skipped (already stored).
    Settled { committed: i64 },
}

/// How far before the committed offset a re-read starts at first: more than a producer batch.
const REREAD_WINDOW: i64 = 10_000;
/// How long an assigned partition may stay silent before it is re-read from earlier: a broker
/// that cannot serve a fetch starting inside the *last* record batch (Tansu 0.6) answers
/// nothing at all, so no first message ever reveals the skip.
const SILENT_AFTER_ASSIGNMENT: Duration = Duration::from_secs(5);

impl KafkaIngest {
    /// Whether a message is new work. The first message of a partition after an assignment is
    /// checked against the committed offset: a broker must resume exactly there, but some
    /// (Tansu 0.6) answer a fetch that starts inside a record batch with the *next* batch, which
    /// would lose the rest of that batch. Then the partition is re-read from
    /// `REREAD_WINDOW` earlier (or from its start), and what precedes the committed offset —
    /// stored already — is skipped.
    pub(crate) fn resumes_here(&mut self, partition: i32, offset: i64) -> bool {
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
    pub(crate) fn probe_silent_partitions(&mut self) {
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
}
