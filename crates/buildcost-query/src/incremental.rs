//! The incremental refresh: closed days are read, priced and classified once and kept rolled
//! up ([`crate::rollup`]); a refresh reads only the open day and sums the kept totals.
//!
//! Every waste class but one depends on the build alone. `duplicate` depends on history: a
//! success is a duplicate when another success of the same (repository, pipeline, commit)
//! finished earlier, on any day. So each classified day also keeps the 64-bit hashes of its
//! success keys, and the days before the snapshot's window are summed up in one sorted list
//! of such hashes (8 bytes a key). A day's successes are ranked within the day; the first
//! success of a key becomes `duplicate` when its key was seen on an earlier day.
//!
//! A day keeps its totals (per team, product, status and waste class, and its distinct
//! (team, author) pairs); its rows only while a window (7 or 28 days, or the baseline's) starts
//! inside it. The open day is read at every refresh.
//!
//! A day is classified again when its files change (a late event, a replay), and so is every
//! later day whose earlier keys changed with it; a change to the days before the window
//! (retention, a very late event) rebuilds the key list. The figures equal those of the full
//! computation ([`Snapshot::of_store`], the SQL views) up to the order of floating-point
//! sums: a test checks it on every fixture. Two limits, both documented: a 64-bit hash
//! collision between two success keys (about one in 10^11 at a year of 60,000 builds a day)
//! would make a success a duplicate; and the two copies of an event id stored on two
//! different days (only possible when a re-sent event's `finished_at` was changed and two
//! ingesters raced on it) count once per day.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use buildcost_store::Store;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use xxhash_rust::xxh3::xxh3_64;

use crate::rollup::{self, ClassifiedDay, DayView, FileCache, Names, Prices, Row, Totals};
use crate::{QuerySettings, Result, Snapshot};

/// One classified day.
#[derive(Debug)]
struct Day {
    /// The day's files, names and sizes.
    fingerprint: u64,
    totals: Totals,
    /// Hashes of the day's success keys, sorted, distinct.
    keys: Vec<u64>,
    /// Kept only while a window starts inside the day.
    rows: Option<Vec<Row>>,
}

/// What was done by one [`Incremental::snapshot`], for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshWork {
    /// Closed days classified (the rest came from the cache).
    pub days_classified: usize,
    /// Unchanged closed days read again for their rows, because a window now starts inside
    /// them.
    pub days_reread: usize,
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
    names: Names,
    /// The open day's files as read.
    open_files: FileCache,
    /// Whether an earlier day has each success key of the open day: looked up once per key
    /// (a binary search in a year of keys costs microseconds), kept while the earlier days'
    /// keys stay the same.
    open_seen: HashMap<u64, bool>,
    open_seen_day: Option<NaiveDate>,
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
    /// The store cannot be listed or read.
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
        let prices = Prices::new(&settings.pricing);
        let first = (at - settings.history()).date_naive();
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
        // Closed days only: the open day's files are checked by its cache as they are read.
        let fingerprints: BTreeMap<NaiveDate, u64> = by_day
            .range(..open)
            .map(|(day, files)| Ok((*day, fingerprint(files)?)))
            .collect::<Result<_>>()?;

        // An instant earlier than the last one: days from the open one on are no longer closed.
        self.days.retain(|day, _| *day < open);
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
            self.older = rollup::success_keys(&files)?;
            self.older_fingerprint = Some(older_now);
            self.days.clear();
            work.history_rescanned = true;
        }

        // Closed days of the window, oldest first: a day whose earlier keys changed is
        // classified again even when its own files did not change; a day a window now starts
        // in is read again for its rows.
        let cut = cut_days(at, settings);
        let mut earlier_changed = false;
        let mut day = first;
        while day < open {
            let print = fingerprints.get(&day).copied().unwrap_or(0);
            let keep_rows = cut.contains(&day);
            let cached = self
                .days
                .get(&day)
                .map(|d| (d.fingerprint == print, d.rows.is_some()));
            match cached {
                Some((true, has_rows)) if !earlier_changed => {
                    if keep_rows && !has_rows {
                        // Same files, same class: only the rows are wanted now.
                        let files = by_day.get(&day).map_or(&[][..], Vec::as_slice);
                        let rows = self.classify(files, &prices, day, false)?.rows;
                        work.days_reread += 1;
                        if let Some(d) = self.days.get_mut(&day) {
                            d.rows = Some(rows);
                        }
                    } else if !keep_rows && has_rows {
                        if let Some(d) = self.days.get_mut(&day) {
                            d.rows = None;
                        }
                    }
                }
                _ => {
                    let files = by_day.get(&day).map_or(&[][..], Vec::as_slice);
                    let classified = self.classify(files, &prices, day, false)?;
                    work.days_classified += 1;
                    let keys_changed = self
                        .days
                        .get(&day)
                        .is_none_or(|d| d.keys != classified.keys);
                    earlier_changed |= keys_changed;
                    let totals = Totals::of(&classified.rows);
                    self.days.insert(
                        day,
                        Day {
                            fingerprint: print,
                            totals,
                            keys: classified.keys,
                            rows: keep_rows.then_some(classified.rows),
                        },
                    );
                }
            }
            day = day.succ_opt().unwrap_or(open);
        }

        // The open day, every time.
        if work.days_classified > 0 || work.history_rescanned || self.open_seen_day != Some(open) {
            self.open_seen.clear();
            self.open_seen_day = Some(open);
        }
        let files = by_day.get(&open).map_or(&[][..], Vec::as_slice);
        let today = self.classify(files, &prices, open, true)?;
        let empty = Totals::default();
        let mut views: Vec<DayView<'_>> = self
            .days
            .iter()
            .map(|(day, d)| DayView {
                day: *day,
                totals: &d.totals,
                rows: d.rows.as_deref(),
            })
            .collect();
        views.push(DayView {
            day: open,
            totals: &empty,
            rows: Some(&today.rows),
        });
        let snapshot = rollup::figures(at, settings, &self.names, &views)?;
        self.last = work;
        Ok(snapshot)
    }

    /// Classifies one day's files against the success keys of every earlier day; the open
    /// day's files are read through the cache.
    fn classify(
        &mut self,
        files: &[PathBuf],
        prices: &Prices,
        day: NaiveDate,
        open: bool,
    ) -> Result<ClassifiedDay> {
        let earlier: Vec<&[u64]> = std::iter::once(self.older.as_slice())
            .chain(self.days.range(..day).map(|(_, d)| d.keys.as_slice()))
            .collect();
        let look_up = |h: u64| earlier.iter().any(|k| k.binary_search(&h).is_ok());
        if open {
            let seen = &mut self.open_seen;
            let seen_before = |h: u64| *seen.entry(h).or_insert_with(|| look_up(h));
            rollup::classify_day(
                files,
                &mut self.names,
                prices,
                seen_before,
                Some(&mut self.open_files),
            )
        } else {
            rollup::classify_day(files, &mut self.names, prices, look_up, None)
        }
    }
}

/// The days a window of the snapshot at `at` starts inside of (not at their midnight).
fn cut_days(at: DateTime<Utc>, settings: &QuerySettings) -> BTreeSet<NaiveDate> {
    [7, 28, i64::from(settings.baseline.window_days)]
        .into_iter()
        .map(|days| at - Duration::days(days))
        .filter(|start| start.time() != NaiveTime::MIN)
        .map(|start| start.date_naive())
        .collect()
}

/// A day's files, by name and size.
fn fingerprint(files: &[PathBuf]) -> Result<u64> {
    let mut text = String::new();
    for f in files {
        let len = std::fs::metadata(f)
            .map_err(|e| crate::Error::StoredFile {
                path: f.clone(),
                message: e.to_string(),
            })?
            .len();
        text.push_str(&format!("{}\t{len}\n", f.display()));
    }
    Ok(xxh3_64(text.as_bytes()))
}

/// A day's fingerprint as a term of an order-free sum over days.
fn day_print(day: NaiveDate, fingerprint: u64) -> u64 {
    xxh3_64(format!("{day}\t{fingerprint}").as_bytes())
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
