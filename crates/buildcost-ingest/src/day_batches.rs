//! Rows waiting to be written, one Arrow batch per UTC day.

use std::collections::BTreeMap;
use std::path::PathBuf;

use buildcost_model::{BatchBuilder, BuildRow};
use buildcost_store::{EventIndex, Store};
use chrono::NaiveDate;

use crate::Result;

/// Pending rows grouped by the day they are stored under, with their event ids (so that a batch
/// that is dropped or fails to write can be forgotten by the index).
#[derive(Default)]
pub struct DayBatches {
    days: BTreeMap<NaiveDate, (BatchBuilder, Vec<String>)>,
    rows: usize,
}

impl DayBatches {
    /// Adds one row.
    pub fn push(&mut self, row: BuildRow) {
        let (builder, ids) = self
            .days
            .entry(row.day())
            .or_insert_with(|| (BatchBuilder::new(), Vec::new()));
        builder.append(&row);
        ids.push(row.event_id);
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
        for (_, (_, ids)) in self.days {
            ids.iter().for_each(|id| index.remove(id));
        }
    }

    /// Writes one file per day, named by `name(day)`. On an error the ids of every row not
    /// written are forgotten by `index`, so the rows can be stored by a later attempt.
    ///
    /// # Errors
    /// The first write that failed.
    pub fn write(
        self,
        store: &Store,
        index: &mut EventIndex,
        mut name: impl FnMut(NaiveDate) -> String,
    ) -> Result<Vec<(PathBuf, usize)>> {
        let mut written = Vec::new();
        let mut failed = None;
        for (day, (mut builder, ids)) in self.days {
            if failed.is_some() {
                ids.iter().for_each(|id| index.remove(id));
                continue;
            }
            let result = builder
                .finish()
                .map_err(crate::Error::from)
                .and_then(|batch| {
                    Ok((
                        store.write_batch(day, &name(day), &batch)?,
                        batch.num_rows(),
                    ))
                });
            match result {
                Ok(file) => {
                    index.mark_file(file.0.clone());
                    written.push(file);
                }
                Err(e) => {
                    ids.iter().for_each(|id| index.remove(id));
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }
}
