//! Rows waiting to be written, one Arrow batch per table (builds, deployments, requests) and
//! UTC day.

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow::record_batch::RecordBatch;
use buildcost_model::{BatchBuilder, DeploymentBuilder, Event, RequestBuilder};
use buildcost_store::{EventIndex, Staged, Store, Table};
use chrono::NaiveDate;
use rayon::prelude::*;

use crate::Result;

/// Rows a day's builder has room for before it grows.
const DAY_ROWS: usize = 16_384;

/// Rows a deployments' or requests' day builder has room for before it grows.
const DELIVERY_DAY_ROWS: usize = 256;

/// Pending rows grouped by the table and day they are stored under, with their event ids (so
/// that a batch that is dropped can be forgotten by the index).
#[derive(Default)]
pub struct DayBatches {
    days: BTreeMap<(Table, NaiveDate), Day>,
    rows: usize,
    /// Files written by an attempt that failed on a later day, reported by the attempt that
    /// finishes.
    written: Vec<(PathBuf, usize)>,
}

/// One day's rows: those of a write that failed (kept so the retry writes the same rows) and
/// those added since.
struct Day {
    builder: Builder,
    finished: Option<RecordBatch>,
    ids: Vec<String>,
}

/// The batch builder of one table (one per table and day pending: few, so their sizes matter
/// less than an indirection).
#[allow(clippy::large_enum_variant)]
enum Builder {
    Builds(BatchBuilder),
    Deployments(DeploymentBuilder),
    Requests(RequestBuilder),
}

impl Builder {
    fn of(table: Table) -> Builder {
        match table {
            Table::Builds => Builder::Builds(BatchBuilder::with_capacity(DAY_ROWS)),
            Table::Deployments => {
                Builder::Deployments(DeploymentBuilder::with_capacity(DELIVERY_DAY_ROWS))
            }
            Table::Requests => Builder::Requests(RequestBuilder::with_capacity(DELIVERY_DAY_ROWS)),
        }
    }

    fn append(&mut self, event: &Event) {
        match (self, event) {
            (Builder::Builds(b), Event::Build(row)) => b.append(row),
            (Builder::Deployments(b), Event::Deployment(row)) => b.append(row),
            (Builder::Requests(b), Event::Request(row)) => b.append(row),
            // `table_of` picks the builder from the event, so the kinds always match.
            _ => debug_assert!(false, "an event in another kind's builder"),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Builder::Builds(b) => b.is_empty(),
            Builder::Deployments(b) => b.is_empty(),
            Builder::Requests(b) => b.is_empty(),
        }
    }

    fn finish(&mut self) -> buildcost_model::Result<RecordBatch> {
        match self {
            Builder::Builds(b) => b.finish(),
            Builder::Deployments(b) => b.finish(),
            Builder::Requests(b) => b.finish(),
        }
    }
}

/// The table an event is stored in.
pub fn table_of(event: &Event) -> Table {
    match event {
        Event::Build(_) => Table::Builds,
        Event::Deployment(_) => Table::Deployments,
        Event::Request(_) => Table::Requests,
    }
}

impl DayBatches {
    /// Adds one event.
    pub fn push(&mut self, event: Event) {
        let table = table_of(&event);
        let day = self
            .days
            .entry((table, event.day()))
            .or_insert_with(|| Day {
                builder: Builder::of(table),
                finished: None,
                ids: Vec::new(),
            });
        day.builder.append(&event);
        day.ids.push(event.event_id().to_owned());
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
        for ((_, day), pending) in self.days {
            pending.ids.iter().for_each(|id| index.remove(day, id));
        }
    }

    /// Writes one file per table and day, named by `name(day)` (prefixed with the table for
    /// deployments and requests, [`Table::file_name`]), and returns every file written. The
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
        let mut jobs: Vec<((Table, NaiveDate), String, RecordBatch)> =
            Vec::with_capacity(self.days.len());
        for (&(table, day), pending) in &mut self.days {
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
            jobs.push(((table, day), table.file_name(&name(day)), batch));
        }
        let results: Vec<buildcost_store::Result<Staged>> = jobs
            .par_iter()
            .map(|((table, day), name, batch)| store.stage_in(*table, *day, name, batch))
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
        for ((at, _, batch), file) in jobs.into_iter().zip(staged) {
            match file.publish() {
                Ok(path) => {
                    if let Some(pending) = self.days.remove(&at) {
                        index.written(at.1, path.clone(), pending.ids.len());
                        self.rows -= pending.ids.len();
                    }
                    self.written.push((path, batch.num_rows()));
                }
                Err(e) => {
                    if let Some(pending) = self.days.get_mut(&at) {
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
