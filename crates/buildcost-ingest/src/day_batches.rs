//! Rows waiting to be written, one Arrow batch per UTC day.

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow::record_batch::RecordBatch;
use buildcost_model::{BatchBuilder, BuildRow};
use buildcost_store::{EventIndex, Staged, Store};
use chrono::NaiveDate;
use rayon::prelude::*;

use crate::Result;

/// Rows a day's builder has room for before it grows.
const DAY_ROWS: usize = 16_384;

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
            builder: BatchBuilder::with_capacity(DAY_ROWS),
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

    /// Writes one file per day, named by `name(day)`, and returns every file written. The
    /// days are staged in parallel and published only once every one is staged, so a failed
    /// write leaves nothing of the flush visible: the days stay pending (their ids stay in
    /// `index`) and calling `write` again retries them; [`DayBatches::discard`] gives them up.
    ///
    /// # Errors
    /// The first write that failed (of the earliest day).
    pub fn write(
        &mut self,
        store: &Store,
        index: &mut EventIndex,
        mut name: impl FnMut(NaiveDate) -> String,
    ) -> Result<Vec<(PathBuf, usize)>> {
        let mut jobs: Vec<(NaiveDate, String, RecordBatch)> = Vec::with_capacity(self.days.len());
        for (day, pending) in &mut self.days {
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
            jobs.push((*day, name(*day), batch));
        }
        let results: Vec<buildcost_store::Result<Staged>> = jobs
            .par_iter()
            .map(|(day, name, batch)| store.stage(*day, name, batch))
            .collect();
        let mut staged = Vec::with_capacity(results.len());
        let mut first_error = None;
        for result in results {
            match result {
                Ok(file) => staged.push(file),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            // Dropping the staged files removes them; every day stays pending.
            drop(staged);
            for (day, _, batch) in jobs {
                if let Some(pending) = self.days.get_mut(&day) {
                    pending.finished = Some(batch);
                }
            }
            return Err(e.into());
        }
        for ((day, _, batch), file) in jobs.into_iter().zip(staged) {
            match file.publish() {
                Ok(path) => {
                    if let Some(pending) = self.days.remove(&day) {
                        index.written(day, path.clone(), pending.ids.len());
                        self.rows -= pending.ids.len();
                    }
                    self.written.push((path, batch.num_rows()));
                }
                Err(e) => {
                    if let Some(pending) = self.days.get_mut(&day) {
                        pending.finished = Some(batch);
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(std::mem::take(&mut self.written)),
        }
    }
}
