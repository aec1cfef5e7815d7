//! Rows waiting to be written, one Arrow batch per UTC day.

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow::record_batch::RecordBatch;
use buildcost_model::{BatchBuilder, BuildRow};
use buildcost_store::{EventIndex, Store};
use chrono::NaiveDate;

use crate::Result;

/// Pending rows grouped by the day they are stored under, with their event ids (so that a batch
/// that is dropped can be forgotten by the index).
#[derive(Default)]
pub struct DayBatches {
    days: BTreeMap<NaiveDate, Day>,
    rows: usize,
    /// Files written by an attempt that failed on a later day, reported by the attempt that
    /// finishes.
    written: Vec<(PathBuf, usize)>,
}

/// One day's rows: those of a write that failed (kept so the retry writes the same rows) and
/// those added since.
struct Day {
    builder: BatchBuilder,
    finished: Option<RecordBatch>,
    ids: Vec<String>,
}

impl DayBatches {
    /// Adds one row.
    pub fn push(&mut self, row: BuildRow) {
        let day = self.days.entry(row.day()).or_insert_with(|| Day {
            builder: BatchBuilder::new(),
            finished: None,
            ids: Vec::new(),
        });
        day.builder.append(&row);
        day.ids.push(row.event_id);
        self.rows += 1;
    }

    /// Rows pending.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Drops every pending row and forgets their ids in `index`.
    pub fn discard(self, index: &mut EventIndex) {
        for (day, pending) in self.days {
            pending.ids.iter().for_each(|id| index.remove(day, id));
        }
    }

    /// Writes one file per day, named by `name(day)`, and returns every file written. On an
    /// error the days not written stay pending (their ids stay in `index`), so calling `write`
    /// again retries exactly them; [`DayBatches::discard`] gives them up.
    ///
    /// # Errors
    /// The first write that failed.
    pub fn write(
        &mut self,
        store: &Store,
        index: &mut EventIndex,
        mut name: impl FnMut(NaiveDate) -> String,
    ) -> Result<Vec<(PathBuf, usize)>> {
        while let Some(mut entry) = self.days.first_entry() {
            let day = *entry.key();
            let pending = entry.get_mut();
            let batch = match pending.finished.take() {
                Some(failed) if pending.builder.is_empty() => failed,
                Some(failed) => {
                    // Rows came after a failed write of this day: they join its batch.
                    let added = pending.builder.finish()?;
                    arrow::compute::concat_batches(&failed.schema(), [&failed, &added])
                        .map_err(buildcost_model::Error::from)?
                }
                None => pending.builder.finish()?,
            };
            match store.write_batch(day, &name(day), &batch) {
                Ok(path) => {
                    let rows = batch.num_rows();
                    index.written(day, path.clone(), pending.ids.len());
                    self.written.push((path, rows));
                    self.rows -= pending.ids.len();
                    entry.remove();
                }
                Err(e) => {
                    pending.finished = Some(batch);
                    return Err(e.into());
                }
            }
        }
        Ok(std::mem::take(&mut self.written))
    }
}
