//! What every source does with a decoded message, in one place: drop an id already stored,
//! count, batch the row by day; or count the rejection, dead-letter the payload (made safe)
//! and record it for the rejection ledger. The NDJSON backfill ([`crate::Ingestor`]) and the
//! Kafka consumer ([`crate::KafkaIngest`]) both call [`Intake::take`]; decoding happens before,
//! in parallel where the source allows it.

use std::collections::BTreeSet;

use buildcost_model::{Event, RejectCounts, Rejection};
use buildcost_store::{EventIndex, Rejected};
use chrono::{DateTime, Utc};

use crate::day_batches::DayBatches;
use crate::dead_letter::{DeadLetter, DeadLetterSink, Origin};
use crate::ingestor::{IngestSummary, Outcome};
use crate::Result;

/// Largest payload whose `finished_at` is looked for when it is rejected.
const MAX_DATED_REJECT_BYTES: usize = 1 << 20;

/// The counts a stretch of messages adds to an [`IngestSummary`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Counted {
    pub accepted: u64,
    pub deployments: u64,
    pub requests: u64,
    pub unpriced: u64,
    pub duplicates: u64,
    pub rejected: RejectCounts,
}

impl Counted {
    /// Adds these counts to `summary`.
    pub fn add_to(&self, summary: &mut IngestSummary) {
        summary.accepted += self.accepted;
        summary.accepted_deployments += self.deployments;
        summary.accepted_requests += self.requests;
        summary.unpriced += self.unpriced;
        summary.duplicates += self.duplicates;
        summary.rejected_by_reason.merge(&self.rejected);
    }
}

/// What a stretch of messages leaves to write: rows by day, rejections for the ledger, and
/// their counts (added to the summary once the writes are durable).
#[derive(Default)]
pub(crate) struct Pending {
    pub rows: DayBatches,
    pub rejected: Vec<Rejected>,
    pub counted: Counted,
}

/// The state shared by a source's messages: the stored ids and the priced runner classes.
pub(crate) struct Intake {
    pub index: EventIndex,
    /// Runner classes of the price table, to count unpriced builds (`None`: not counted).
    pub priced: Option<BTreeSet<String>>,
}

impl Intake {
    /// Takes one decoded message (its `payload` as received, from `origin`, at `now`) into
    /// `pending`; a rejected one is dead-lettered through `dead_letters` at once.
    ///
    /// # Errors
    /// The index could not read a day's ids, or the dead letter could not be kept.
    pub fn take(
        &mut self,
        decoded: std::result::Result<Event, Rejection>,
        payload: &[u8],
        origin: &Origin,
        now: DateTime<Utc>,
        pending: &mut Pending,
        dead_letters: &mut dyn DeadLetterSink,
    ) -> Result<Outcome> {
        match decoded {
            Ok(event) => {
                if !self.index.insert(event.day(), event.event_id())? {
                    pending.counted.duplicates += 1;
                    return Ok(Outcome::Duplicate);
                }
                match &event {
                    Event::Build(row) => {
                        if self
                            .priced
                            .as_ref()
                            .is_some_and(|classes| !classes.contains(&row.runner_class))
                        {
                            pending.counted.unpriced += 1;
                        }
                    }
                    Event::Deployment(_) => pending.counted.deployments += 1,
                    Event::Request(_) => pending.counted.requests += 1,
                }
                pending.counted.accepted += 1;
                pending.rows.push(event);
                Ok(Outcome::Accepted)
            }
            Err(rejection) => {
                reject(&rejection, payload, origin, now, pending, dead_letters)?;
                Ok(Outcome::Rejected(rejection.reason))
            }
        }
    }
}

/// Counts a rejection, dead-letters `payload` (made safe first) and records it for the ledger.
///
/// # Errors
/// The dead letter could not be kept.
pub(crate) fn reject(
    rejection: &Rejection,
    payload: &[u8],
    origin: &Origin,
    now: DateTime<Utc>,
    pending: &mut Pending,
    dead_letters: &mut dyn DeadLetterSink,
) -> Result<()> {
    dead_letters.send(&DeadLetter::new(rejection, origin, payload))?;
    pending.counted.rejected.add(rejection.reason, 1);
    pending.rejected.push(Rejected {
        at: rejected_at(payload, now),
        reason: rejection.reason.as_str().to_owned(),
        origin: origin.to_string(),
    });
    tracing::debug!(%origin, reason = %rejection.reason, "dead-lettered");
    Ok(())
}

/// The instant a rejected message is counted at in the rejection ledger: the `finished_at` (a
/// request's `requested_at`) it carries when that can be read (so a backfill of last month counts its rejections in last
/// month's reports), else `now`, the instant it was rejected.
pub(crate) fn rejected_at(payload: &[u8], now: DateTime<Utc>) -> DateTime<Utc> {
    #[derive(serde::Deserialize)]
    struct Dated {
        finished_at: Option<String>,
        requested_at: Option<String>,
    }
    if payload.len() > MAX_DATED_REJECT_BYTES {
        return now;
    }
    serde_json::from_slice::<Dated>(payload)
        .ok()
        .and_then(|d| d.finished_at.or(d.requested_at))
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| *t <= now)
        .unwrap_or(now)
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
