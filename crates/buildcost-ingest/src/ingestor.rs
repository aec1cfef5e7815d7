//! The core of every source: decode, de-duplicate, batch by day, write, dead-letter.

use std::collections::BTreeSet;

use buildcost_adapters::{Format, Normalised, Normaliser};
use buildcost_model::{Decoder, RejectCounts, Rejection};
use buildcost_store::{EventIndex, Store};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::day_batches::DayBatches;
use crate::dead_letter::{DeadLetter, DeadLetterSink, Origin};
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
    pub accepted: u64,
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
            "rejected": self.rejected(),
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "rejected_by_reason": by_reason,
            "unpriced": self.unpriced,
            "files_written": self.files_written,
        })
    }
}

/// Largest payload whose `finished_at` is looked for when it is rejected.
const MAX_DATED_REJECT_BYTES: usize = 1 << 20;

/// The instant a rejected message is counted at in the rejection ledger: the `finished_at` it
/// carries when that can be read (so a backfill of last month counts its rejections in last
/// month's reports), else `now`, the instant it was rejected.
pub(crate) fn rejected_at(payload: &[u8], now: DateTime<Utc>) -> DateTime<Utc> {
    #[derive(serde::Deserialize)]
    struct Dated {
        finished_at: Option<String>,
    }
    if payload.len() > MAX_DATED_REJECT_BYTES {
        return now;
    }
    serde_json::from_slice::<Dated>(payload)
        .ok()
        .and_then(|d| d.finished_at)
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| *t <= now)
        .unwrap_or(now)
}

/// Whether a build's runner class is missing from the price table (so it is priced at
/// `pricing.default`); `None` (no price table given) counts nothing.
pub(crate) fn is_unpriced(priced: Option<&BTreeSet<String>>, runner_class: &str) -> bool {
    priced.is_some_and(|classes| !classes.contains(runner_class))
}

/// Turns messages into stored builds: decodes each one, drops ids already stored, batches rows
/// per UTC day and writes each day's rows as one Parquet file per flush.
pub struct Ingestor<'s> {
    decoder: Decoder,
    store: &'s Store,
    index: EventIndex,
    priced_classes: Option<BTreeSet<String>>,
    pending: DayBatches,
    batch_rows: usize,
    file_prefix: String,
    next_file: u64,
    /// Rejections not yet recorded in the store's ledger.
    rejected: Vec<buildcost_store::Rejected>,
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
            index,
            priced_classes: None,
            pending: DayBatches::default(),
            batch_rows: 100_000,
            file_prefix: file_prefix.into(),
            next_file: 0,
            rejected: Vec::new(),
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
        self.priced_classes = Some(classes.into_iter().collect());
        self
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
        let row = match self.decoder.decode(payload, now) {
            Ok(row) => row,
            Err(rejection) => return self.reject(&rejection, origin, payload, now, dead_letters),
        };
        if !self.index.insert(row.day(), &row.event_id)? {
            self.summary.duplicates += 1;
            return Ok(Outcome::Duplicate);
        }
        if is_unpriced(self.priced_classes.as_ref(), &row.runner_class) {
            self.summary.unpriced += 1;
        }
        self.summary.accepted += 1;
        self.pending.push(row);
        if self.pending.len() >= self.batch_rows {
            self.flush(dead_letters)?;
        }
        Ok(Outcome::Accepted)
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
        self.summary.rejected_by_reason.add(rejection.reason, 1);
        dead_letters.send(&DeadLetter::new(rejection, origin, payload))?;
        self.rejected.push(buildcost_store::Rejected {
            at: rejected_at(payload, now),
            reason: rejection.reason.as_str().to_owned(),
            origin: origin.to_string(),
        });
        Ok(Outcome::Rejected(rejection.reason))
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
            Normalised::Events(events) => {
                for event in events {
                    self.push(&event.to_json_bytes(), origin, now, dead_letters)?;
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
        let mut pending = std::mem::take(&mut self.pending);
        let (prefix, next) = (&self.file_prefix, &mut self.next_file);
        let written = pending.write(self.store, &mut self.index, |_| {
            let name = format!("{prefix}-{next:06}");
            *next += 1;
            name
        });
        let written = match written {
            Ok(written) => written,
            Err(e) => {
                pending.discard(&mut self.index);
                return Err(e);
            }
        };
        for (path, rows) in written {
            tracing::debug!(path = %path.display(), rows, "wrote partition file");
            self.summary.files_written += 1;
            self.summary.rows_written += rows as u64;
        }
        if !self.rejected.is_empty() {
            let name = format!("{}-{:06}", self.file_prefix, self.next_file);
            self.next_file += 1;
            self.store.write_rejections(&name, &self.rejected)?;
            self.rejected.clear();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_dated_by_their_build_when_it_says_when() {
        let now = Utc::now();
        let dated = br#"{"schema_version": 9, "finished_at": "2026-11-02T10:00:00Z"}"#;
        assert_eq!(
            rejected_at(dated, now).to_rfc3339(),
            "2026-11-02T10:00:00+00:00"
        );
        for undated in [
            &b"not json"[..],
            br#"{"finished_at": "yesterday"}"#,
            br#"{"finished_at": 5}"#,
            br#"{"finished_at": "2999-01-01T00:00:00Z"}"#,
        ] {
            assert_eq!(rejected_at(undated, now), now);
        }
    }
}
