//! The core of every source: decode, de-duplicate, batch by day, write, dead-letter.

use buildcost_adapters::{Format, Normalised, Normaliser};
use buildcost_model::{Decoder, RejectCounts, Rejection};
use buildcost_store::{EventIndex, Store};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::dead_letter::{DeadLetterSink, Origin};
use crate::intake::{Intake, Pending};
use crate::Result;

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Duplicate,
    Rejected(buildcost_model::RejectReason),
}

/// Counts of an ingest run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestSummary {
    /// Accepted events of every kind.
    pub accepted: u64,
    /// Of `accepted`: deployments and requests (the rest are builds).
    pub accepted_deployments: u64,
    pub accepted_requests: u64,
    pub duplicates: u64,
    pub rejected_by_reason: RejectCounts,
    /// Accepted builds whose runner class is not in the price table (priced at `pricing.default`).
    pub unpriced: u64,
    pub files_written: u64,
    /// Rejected messages confirmed by the dead-letter sink (Kafka; the file sink counts in `rejected`).
    pub dead_lettered: u64,
    pub rows_written: u64,
    /// Errors the Kafka consumer reported (each retried with a backoff).
    pub consumer_errors: u64,
    /// Offset commits that failed (retried; the rows were durable already).
    pub commit_failures: u64,
    /// Batch writes the store refused (disk full, an I/O error); each is retried, nothing
    /// past it committed.
    pub store_write_failures: u64,
    /// Reads of the store's event ids (for de-duplication) that failed because the store
    /// could not be reached; each is retried after a backoff, the message held meanwhile.
    pub store_read_failures: u64,
    /// Native CI payloads that were not a finished build at the configured level (`--format`).
    pub ignored: u64,
}

impl IngestSummary {
    /// Total rejections.
    pub fn rejected(&self) -> u64 {
        self.rejected_by_reason.total()
    }

    /// The one-line JSON summary `ingest` prints last.
    pub fn to_json(&self) -> Value {
        let by_reason: serde_json::Map<String, Value> = self
            .rejected_by_reason
            .iter()
            .map(|(r, n)| (r.as_str().to_owned(), json!(n)))
            .collect();
        json!({
            "accepted": self.accepted,
            "accepted_by_kind": {
                "build": self.accepted - self.accepted_deployments - self.accepted_requests,
                "deployment": self.accepted_deployments,
                "request": self.accepted_requests,
            },
            "rejected": self.rejected(),
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "rejected_by_reason": by_reason,
            "unpriced": self.unpriced,
            "files_written": self.files_written,
        })
    }
}

/// Turns messages into stored builds: decodes each one, drops ids already stored, batches rows
/// per UTC day and writes each day's rows as one Parquet file per flush.
pub struct Ingestor<'s> {
    decoder: Decoder,
    store: &'s Store,
    intake: Intake,
    pending: Pending,
    batch_rows: usize,
    file_prefix: String,
    next_file: u64,
    summary: IngestSummary,
}

impl<'s> Ingestor<'s> {
    /// An ingestor writing to `store`. `index` holds the ids already stored
    /// ([`Store::event_index`]); `file_prefix` makes this run's file names unique.
    pub fn new(
        decoder: Decoder,
        store: &'s Store,
        index: EventIndex,
        file_prefix: impl Into<String>,
    ) -> Self {
        Ingestor {
            decoder,
            store,
            intake: Intake {
                index,
                priced: None,
            },
            pending: Pending::default(),
            batch_rows: 100_000,
            file_prefix: file_prefix.into(),
            next_file: 0,
            summary: IngestSummary::default(),
        }
    }

    /// Flush once this many rows are pending.
    pub fn with_batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.max(1);
        self
    }

    /// The runner classes of the price table, to count unpriced builds.
    pub fn with_priced_classes(mut self, classes: impl IntoIterator<Item = String>) -> Self {
        self.intake.priced = Some(classes.into_iter().collect());
        self
    }

    /// The decoder (sources that decode in parallel borrow it).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The counts so far.
    pub fn summary(&self) -> &IngestSummary {
        &self.summary
    }

    /// Ingests one message received at `now`; a rejected one goes to `dead_letters`.
    ///
    /// # Errors
    /// Writing a full batch or a dead letter failed.
    pub fn push(
        &mut self,
        payload: &[u8],
        origin: &Origin,
        now: DateTime<Utc>,
        dead_letters: &mut dyn DeadLetterSink,
    ) -> Result<Outcome> {
        let decoded = self.decoder.decode(payload, now);
        self.push_decoded(decoded, payload, origin, now, dead_letters)
    }

    /// Ingests one message already decoded (by [`Ingestor::decoder`], maybe on another
    /// thread): the same as [`Ingestor::push`] after the decode.
    ///
    /// # Errors
    /// As [`Ingestor::push`].
    pub fn push_decoded(
        &mut self,
        decoded: std::result::Result<buildcost_model::Event, Rejection>,
        payload: &[u8],
        origin: &Origin,
        now: DateTime<Utc>,
        dead_letters: &mut dyn DeadLetterSink,
    ) -> Result<Outcome> {
        let outcome = self.intake.take(
            decoded,
            payload,
            origin,
            now,
            &mut self.pending,
            dead_letters,
        );
        self.count_pending();
        let outcome = outcome?;
        if self.pending.rows.len() >= self.batch_rows {
            self.flush(dead_letters)?;
        }
        Ok(outcome)
    }

    /// Counts a rejected message, dead-letters `payload` (made safe first) and records it in
    /// the rejection ledger at its next flush.
    ///
    /// # Errors
    /// The dead letter could not be written.
    pub fn reject(
        &mut self,
        rejection: &Rejection,
        origin: &Origin,
        payload: &[u8],
        now: DateTime<Utc>,
        dead_letters: &mut dyn DeadLetterSink,
    ) -> Result<Outcome> {
        self.push_decoded(Err(rejection.clone()), payload, origin, now, dead_letters)
    }

    /// Moves the counts of what was taken into the summary (the backfill counts a message
    /// when it is taken; its rows are durable by the end of the run).
    fn count_pending(&mut self) {
        std::mem::take(&mut self.pending.counted).add_to(&mut self.summary);
    }

    /// Ingests one native payload of a CI system: each build event its normaliser gives is
    /// [pushed](Ingestor::push); a payload that is not a finished build is counted as ignored;
    /// a rejected one is dead-lettered as the part of the build that could be read (never the
    /// native payload, which names people).
    ///
    /// # Errors
    /// As [`Ingestor::push`].
    pub fn push_native(
        &mut self,
        normaliser: &Normaliser,
        format: Format,
        payload: &[u8],
        origin: &Origin,
        now: DateTime<Utc>,
        dead_letters: &mut dyn DeadLetterSink,
    ) -> Result<()> {
        match normaliser.normalise(format, payload) {
            n @ (Normalised::Events(_) | Normalised::Deployment(_)) => {
                for (_, message) in n.messages().unwrap_or_default() {
                    self.push(&message, origin, now, dead_letters)?;
                }
            }
            Normalised::Ignored(why) => {
                tracing::debug!(%origin, why, "not a finished build; ignored");
                self.summary.ignored += 1;
            }
            Normalised::Rejected(r) => {
                let partial = serde_json::to_vec(&r.partial).unwrap_or_default();
                self.reject(
                    &Rejection::new(r.reason, r.detail),
                    origin,
                    &partial,
                    now,
                    dead_letters,
                )?;
            }
        }
        Ok(())
    }

    /// Writes every pending row (one file per day) and makes the dead letters durable.
    ///
    /// # Errors
    /// A write failed; the ids of the rows not written are forgotten, so a later run stores them.
    pub fn flush(&mut self, dead_letters: &mut dyn DeadLetterSink) -> Result<()> {
        dead_letters.flush()?;
        let mut rows = std::mem::take(&mut self.pending.rows);
        let (prefix, next) = (&self.file_prefix, &mut self.next_file);
        let written = rows.write(self.store, &mut self.intake.index, |_| {
            let name = format!("{prefix}-{next:06}");
            *next += 1;
            name
        });
        let written = match written {
            Ok(written) => written,
            Err(e) => {
                rows.discard(&mut self.intake.index);
                return Err(e);
            }
        };
        for (path, rows) in written {
            tracing::debug!(path = %path.display(), rows, "wrote partition file");
            self.summary.files_written += 1;
            self.summary.rows_written += rows as u64;
        }
        if !self.pending.rejected.is_empty() {
            let name = format!("{}-{:06}", self.file_prefix, self.next_file);
            self.next_file += 1;
            self.store.write_rejections(&name, &self.pending.rejected)?;
            self.pending.rejected.clear();
        }
        Ok(())
    }

    /// Flushes and returns the final counts.
    ///
    /// # Errors
    /// The last flush failed.
    pub fn finish(mut self, dead_letters: &mut dyn DeadLetterSink) -> Result<IngestSummary> {
        self.flush(dead_letters)?;
        Ok(self.summary)
    }
}
