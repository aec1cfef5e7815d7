//! The incremental refresh: closed days are priced and classified once and kept; a refresh
//! classifies only the open day and evaluates the snapshot over the kept rows.
//!
//! Every waste class but one depends on the build alone. `duplicate` depends on history: a
//! success is a duplicate when another success of the same (repository, pipeline, commit)
//! finished earlier, on any day. So each classified day also keeps the 64-bit hashes of its
//! success keys, and the days before the snapshot's window are summed up in one sorted list
//! of such hashes (8 bytes a key). A day is classified by the `builds` view over its own files,
//! which ranks the successes within the day; a success the view left as `none` becomes
//! `duplicate` when its key was seen on an earlier day.
//!
//! A day is classified again when its files change (a late event, a replay), and so is every
//! later day whose earlier keys changed with it; a change to the days before the window
//! (retention, a very late event) rebuilds the key list. The figures equal those of the full
//! computation ([`Snapshot::of_store`]): a test checks it on every fixture. Two limits, both
//! documented: a 64-bit hash collision between two success keys (about one in 10^11 at a year
//! of 60,000 builds a day) would make a success a duplicate; and the two copies of an event id
//! stored on two different days (only possible when a re-sent event's `finished_at` was
//! changed and two ingesters raced on it) count once per day.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::Schema;
use buildcost_store::Store;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::datasource::MemTable;
use xxhash_rust::xxh3::xxh3_64;

use crate::context::BuildcostContext;
use crate::snapshot::{strings, Snapshot, SNAPSHOT_COLUMNS};
use crate::{Error, QuerySettings, Result};

/// The columns of a success key, read from a day's `builds` besides the snapshot's.
const KEY_COLUMNS: &[&str] = &["repository", "pipeline", "commit"];

/// One classified day.
#[derive(Debug)]
struct Day {
    /// The day's files, names and sizes.
    fingerprint: u64,
    /// `builds` of the day, [`SNAPSHOT_COLUMNS`] only.
    rows: Vec<RecordBatch>,
    /// Hashes of the day's success keys, sorted, distinct.
    keys: Vec<u64>,
}

/// What was done by one [`Incremental::snapshot`], for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshWork {
    /// Closed days classified (the rest came from the cache).
    pub days_classified: usize,
    /// Whether the success keys of the days before the window were read again.
    pub history_rescanned: bool,
}

/// Snapshots of one store, kept up to date incrementally. Keep one per process and call
/// [`Incremental::snapshot`] at each refresh.
#[derive(Debug, Default)]
pub struct Incremental {
    /// The settings the cache was built with (pricing and teams change costs and sizes).
    settings_key: String,
    /// Success-key hashes of every day before `days`' first, sorted, distinct.
    older: Vec<u64>,
    /// The files of those days, summed up.
    older_fingerprint: Option<u64>,
    days: BTreeMap<NaiveDate, Day>,
    last: RefreshWork,
}

impl Incremental {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the last snapshot did.
    pub fn last_work(&self) -> RefreshWork {
        self.last
    }

    /// The snapshot of `store` at `at`, equal to [`Snapshot::of_store`].
    ///
    /// # Errors
    /// The store cannot be listed or read, or a query failed.
    pub async fn snapshot(
        &mut self,
        store: &Store,
        settings: &QuerySettings,
        at: DateTime<Utc>,
    ) -> Result<Snapshot> {
        let mut work = RefreshWork::default();
        let settings_key = format!("{settings:?}");
        if settings_key != self.settings_key {
            *self = Incremental {
                settings_key,
                ..Incremental::default()
            };
        }
        let first = (at - settings.history()).date_naive();
        let schema = snapshot_schema(settings, at).await?;
        let open = at.date_naive();

        let mut by_day: BTreeMap<NaiveDate, Vec<PathBuf>> = BTreeMap::new();
        for f in store.list_files()? {
            if f.day <= open {
                by_day.entry(f.day).or_default().push(f.path);
            }
        }
        for files in by_day.values_mut() {
            files.sort();
        }
        let fingerprints: BTreeMap<NaiveDate, u64> = by_day
            .iter()
            .map(|(day, files)| Ok((*day, fingerprint(files)?)))
            .collect::<Result<_>>()?;

        // Days that slid out of the window: their keys join the older ones.
        let gone: Vec<NaiveDate> = self.days.range(..first).map(|(d, _)| *d).collect();
        for day in gone {
            if let Some(d) = self.days.remove(&day) {
                self.older = merge(&self.older, &d.keys);
                self.older_fingerprint = self
                    .older_fingerprint
                    .map(|f| f.wrapping_add(day_print(day, d.fingerprint)));
            }
        }
        let older_now = fingerprints
            .range(..first)
            .fold(0u64, |acc, (day, f)| acc.wrapping_add(day_print(*day, *f)));
        if self.older_fingerprint != Some(older_now) {
            let files: Vec<PathBuf> = by_day.range(..first).flat_map(|(_, f)| f.clone()).collect();
            self.older = success_keys(&files, settings, at).await?;
            self.older_fingerprint = Some(older_now);
            self.days.clear();
            work.history_rescanned = true;
        }

        // Closed days of the window, oldest first: a day whose earlier keys changed is
        // classified again even when its own files did not change.
        let mut earlier_changed = false;
        let mut day = first;
        while day < open {
            let print = fingerprints.get(&day).copied().unwrap_or(0);
            let cached = self.days.get(&day).is_some_and(|d| d.fingerprint == print);
            if earlier_changed || !cached {
                let files = by_day.get(&day).cloned().unwrap_or_default();
                let classified = self
                    .classify(&files, settings, &schema, at, day, print)
                    .await?;
                work.days_classified += 1;
                let keys_changed = self
                    .days
                    .get(&day)
                    .is_none_or(|d| d.keys != classified.keys);
                earlier_changed |= keys_changed;
                self.days.insert(day, classified);
            }
            day = day.succ_opt().unwrap_or(open);
        }

        // The open day, every time.
        let files = by_day.get(&open).cloned().unwrap_or_default();
        let today = self
            .classify(&files, settings, &schema, at, open, 0)
            .await?;

        let mut batches: Vec<RecordBatch> = self
            .days
            .values()
            .flat_map(|d| d.rows.iter().cloned())
            .collect();
        batches.extend(today.rows);
        let table = Arc::new(MemTable::try_new(schema, vec![batches])?);
        let ctx = BuildcostContext::over_builds(table, settings, at).await?;
        self.last = work;
        Snapshot::compute(&ctx).await
    }

    /// Classifies one day: the `builds` view over its files, then `duplicate` for a first
    /// success of the day whose key an earlier day has. The rows kept have `schema`.
    async fn classify(
        &self,
        files: &[PathBuf],
        settings: &QuerySettings,
        schema: &Arc<Schema>,
        at: DateTime<Utc>,
        day: NaiveDate,
        fingerprint: u64,
    ) -> Result<Day> {
        if files.is_empty() {
            return Ok(Day {
                fingerprint,
                rows: Vec::new(),
                keys: Vec::new(),
            });
        }
        let ctx = BuildcostContext::over_files(files, settings, at).await?;
        let columns = SNAPSHOT_COLUMNS.iter().chain(KEY_COLUMNS).copied();
        let batches = ctx
            .sql(&format!(
                "SELECT {} FROM builds",
                columns.collect::<Vec<_>>().join(", ")
            ))
            .await?;
        let earlier: Vec<&[u64]> = std::iter::once(self.older.as_slice())
            .chain(self.days.range(..day).map(|(_, d)| d.keys.as_slice()))
            .collect();
        let seen_before = |h: u64| earlier.iter().any(|k| k.binary_search(&h).is_ok());
        let mut keys = Vec::new();
        let mut rows = Vec::with_capacity(batches.len());
        for b in &batches {
            let (status, waste) = (strings(b, "status")?, strings(b, "waste_class")?);
            let (repo, pipeline, commit) = key_columns(b)?;
            let mut classes = Vec::with_capacity(b.num_rows());
            for i in 0..b.num_rows() {
                let mut class = waste.value(i);
                if status.value(i) == "success" && commit.is_valid(i) {
                    let h = key_hash(repo.value(i), pipeline.value(i), commit.value(i));
                    keys.push(h);
                    if class == "none" && seen_before(h) {
                        class = "duplicate";
                    }
                }
                classes.push(class);
            }
            let classes: Arc<dyn Array> = Arc::new(StringArray::from(classes));
            let columns = schema
                .fields()
                .iter()
                .map(|f| {
                    if f.name() == "waste_class" {
                        Ok(classes.clone())
                    } else {
                        b.column_by_name(f.name())
                            .cloned()
                            .ok_or_else(|| Error::Shape(format!("no column `{}`", f.name())))
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            rows.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(Day {
            fingerprint,
            rows,
            keys,
        })
    }
}

/// The schema of the kept rows: [`SNAPSHOT_COLUMNS`] of `builds`, as the view types them.
async fn snapshot_schema(settings: &QuerySettings, at: DateTime<Utc>) -> Result<Arc<Schema>> {
    let ctx = BuildcostContext::over_files(&[], settings, at).await?;
    let frame = ctx
        .session()
        .sql(&format!(
            "SELECT {} FROM builds",
            SNAPSHOT_COLUMNS.join(", ")
        ))
        .await?;
    Ok(Arc::new(frame.schema().as_arrow().clone()))
}

/// The [`KEY_COLUMNS`] of a batch.
fn key_columns(b: &RecordBatch) -> Result<(&StringArray, &StringArray, &StringArray)> {
    Ok((
        strings(b, KEY_COLUMNS[0])?,
        strings(b, KEY_COLUMNS[1])?,
        strings(b, KEY_COLUMNS[2])?,
    ))
}

/// The 64-bit hash of a success key (repository, pipeline, commit).
fn key_hash(repository: &str, pipeline: &str, commit: &str) -> u64 {
    let mut bytes = Vec::with_capacity(repository.len() + pipeline.len() + commit.len() + 2);
    bytes.extend_from_slice(repository.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(pipeline.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(commit.as_bytes());
    xxh3_64(&bytes)
}

/// A day's files, by name and size.
fn fingerprint(files: &[PathBuf]) -> Result<u64> {
    let mut text = String::new();
    for f in files {
        let len = std::fs::metadata(f)
            .map_err(|e| Error::Shape(format!("cannot read `{}`: {e}", f.display())))?
            .len();
        text.push_str(&format!("{}\t{len}\n", f.display()));
    }
    Ok(xxh3_64(text.as_bytes()))
}

/// A day's fingerprint as a term of an order-free sum over days.
fn day_print(day: NaiveDate, fingerprint: u64) -> u64 {
    xxh3_64(format!("{day}\t{fingerprint}").as_bytes())
}

/// The success keys of `files`, sorted and distinct.
async fn success_keys(
    files: &[PathBuf],
    settings: &QuerySettings,
    at: DateTime<Utc>,
) -> Result<Vec<u64>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let ctx = BuildcostContext::over_files(files, settings, at).await?;
    let batches = ctx
        .sql(&format!(
            "SELECT DISTINCT {} FROM raw_builds WHERE status = 'success' AND commit IS NOT NULL",
            KEY_COLUMNS.join(", ")
        ))
        .await?;
    let mut keys = Vec::new();
    for b in &batches {
        let (repo, pipeline, commit) = key_columns(b)?;
        for i in 0..b.num_rows() {
            keys.push(key_hash(repo.value(i), pipeline.value(i), commit.value(i)));
        }
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// Two sorted, distinct lists as one.
fn merge(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_sorted_lists_without_repeats() {
        assert_eq!(merge(&[1, 3, 5], &[2, 3, 6]), vec![1, 2, 3, 5, 6]);
        assert_eq!(merge(&[], &[4]), vec![4]);
    }
}
