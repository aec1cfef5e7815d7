//! The set of stored event ids, for de-duplication across runs.
//!
//! Every copy of an event is stored under the same UTC day (that of its `finished_at`), so the
//! index is kept per day, and a day's ids are read (the `event_id` column of its files) only
//! when an event of that day arrives. A day stays in memory while it is used; when the days
//! held pass a budget of ids, the least recently used ones with nothing pending are dropped, and
//! read again should an event of theirs come back. Memory is then bound by the days an ingester
//! writes, not by the store's history: a service taking today's builds on a store holding a
//! year reads a few days, not 22 million ids. A day read from its files costs 16 bytes an id (a
//! sorted array of 128-bit hashes); ids added since sit in a hash set until the day has nothing
//! pending.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use chrono::NaiveDate;
use xxhash_rust::xxh3::xxh3_128;

use crate::{Result, Store};

/// Ids held in memory before days are dropped: 4 Mi ids, 64 MiB as 128-bit hashes (70 days at
/// 60,000 builds a day).
pub const DEFAULT_BUDGET: usize = 1 << 22;
/// A day's added ids join its sorted array once this many wait and none is pending.
const COMPACT_AT: usize = 1024;

/// The stored `event_id`s, as 128-bit hashes (a collision between two different ids is about
/// 1 in 10^25 at a year of events), read from the store a day at a time.
#[derive(Debug)]
pub struct EventIndex {
    /// Where days are read from; `None`: in memory only (nothing read, nothing dropped).
    store: Option<Store>,
    days: HashMap<NaiveDate, Day>,
    /// Ids held over every day.
    held: usize,
    budget: usize,
    /// Ticks on every use of a day, for least-recently-used dropping.
    clock: u64,
}

#[derive(Debug, Default)]
struct Day {
    /// Sorted, distinct: read from the day's files (or compacted from `added`).
    stored: Vec<u128>,
    /// Inserted by this process since.
    added: HashSet<u128>,
    /// The names of the day's files whose ids are held.
    files: HashSet<String>,
    /// Inserted ids not yet durable in a file: the day is not dropped while any is.
    pending: usize,
    used: u64,
}

impl Day {
    fn contains(&self, h: u128) -> bool {
        self.added.contains(&h) || self.stored.binary_search(&h).is_ok()
    }

    fn held(&self) -> usize {
        self.stored.len() + self.added.len()
    }

    /// Adds ids to the sorted array.
    fn absorb(&mut self, ids: impl IntoIterator<Item = u128>) {
        self.stored.extend(ids);
        self.stored.sort_unstable();
        self.stored.dedup();
    }

    /// Reads the ids of the day's files not read yet (all of them for a day just created);
    /// returns how many files were read (a damaged one is quarantined instead).
    fn read_new_files(&mut self, store: &Store, day: NaiveDate) -> Result<usize> {
        // Nothing is kept unless every new file was read: a store that stops answering
        // half-way leaves the day as it was, to be read again.
        let mut read = 0;
        let mut ids = Vec::new();
        let mut names = Vec::new();
        for key in store.day_files(day)? {
            let name = crate::store::key_name(&key).to_owned();
            if self.files.contains(&name) {
                continue;
            }
            if store.read_ids(&key, &mut ids)? {
                read += 1;
            }
            names.push(name);
        }
        self.files.extend(names);
        if !ids.is_empty() {
            self.absorb(ids);
        }
        Ok(read)
    }
}

impl Default for EventIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl EventIndex {
    /// An index in memory only, not backed by a store: for tests and one-off checks.
    pub fn new() -> Self {
        EventIndex {
            store: None,
            days: HashMap::new(),
            held: 0,
            budget: DEFAULT_BUDGET,
            clock: 0,
        }
    }

    /// An index reading days from `store` as events of theirs arrive.
    pub(crate) fn for_store(store: Store) -> Self {
        EventIndex {
            store: Some(store),
            ..Self::new()
        }
    }

    /// Sets how many ids may be held before unused days are dropped (at least one day is
    /// always held).
    #[must_use]
    pub fn with_budget(mut self, ids: usize) -> Self {
        self.budget = ids;
        self
    }

    /// The hash an id is recorded under.
    pub(crate) fn hash(event_id: &str) -> u128 {
        xxh3_128(event_id.as_bytes())
    }

    /// Records an id stored under `day`; `false` when it was already there (a duplicate). The
    /// id is pending until [`EventIndex::written`] or [`EventIndex::remove`].
    ///
    /// # Errors
    /// The day's files cannot be listed, or a damaged one cannot be quarantined.
    pub fn insert(&mut self, day: NaiveDate, event_id: &str) -> Result<bool> {
        let h = Self::hash(event_id);
        let d = self.day(day)?;
        if d.contains(h) {
            return Ok(false);
        }
        d.added.insert(h);
        d.pending += 1;
        self.held += 1;
        if self.held > self.budget {
            self.drop_days(day);
        }
        Ok(true)
    }

    /// Whether an id is recorded under `day`.
    ///
    /// # Errors
    /// As [`EventIndex::insert`].
    pub fn contains(&mut self, day: NaiveDate, event_id: &str) -> Result<bool> {
        let h = Self::hash(event_id);
        Ok(self.day(day)?.contains(h))
    }

    /// Forgets a pending id (its batch could not be written and is given up).
    pub fn remove(&mut self, day: NaiveDate, event_id: &str) {
        if let Some(d) = self.days.get_mut(&day) {
            if d.added.remove(&Self::hash(event_id)) {
                self.held -= 1;
            }
            d.pending = d.pending.saturating_sub(1);
        }
    }

    /// Records that the file at `path` made `ids` pending ids of `day` durable.
    pub fn written(&mut self, day: NaiveDate, path: impl Into<PathBuf>, ids: usize) {
        if let Some(d) = self.days.get_mut(&day) {
            let path: PathBuf = path.into();
            if let Some(name) = path.file_name() {
                d.files.insert(name.to_string_lossy().into_owned());
            }
            d.pending = d.pending.saturating_sub(ids);
            if d.pending == 0 && d.added.len() >= COMPACT_AT {
                let added = std::mem::take(&mut d.added);
                self.held -= added.len();
                let before = d.stored.len();
                d.absorb(added);
                self.held += d.stored.len() - before;
            }
        }
    }

    /// Reads the files other processes wrote, since this index read them, into the days it
    /// holds (a day read later reads all of its files then); returns how many files were read.
    /// An ingester calls it when it is given partitions another process owned, so a replay of
    /// what that process stored is recognised as duplicates.
    ///
    /// # Errors
    /// As [`EventIndex::insert`].
    pub fn catch_up(&mut self) -> Result<usize> {
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let mut read = 0;
        for (day, d) in &mut self.days {
            let before = d.held();
            read += d.read_new_files(store, *day)?;
            self.held = self.held + d.held() - before;
        }
        Ok(read)
    }

    /// Ids held in memory.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Days held in memory.
    pub fn days_held(&self) -> usize {
        self.days.len()
    }

    /// The day's ids, read from the store the first time (or after it was dropped).
    fn day(&mut self, day: NaiveDate) -> Result<&mut Day> {
        self.clock += 1;
        if !self.days.contains_key(&day) {
            let mut d = Day::default();
            if let Some(store) = &self.store {
                d.read_new_files(store, day)?;
            }
            self.held += d.held();
            self.days.insert(day, d);
        }
        if self.held > self.budget {
            self.drop_days(day);
        }
        let clock = self.clock;
        let d = self.days.get_mut(&day).expect("held above");
        d.used = clock;
        Ok(d)
    }

    /// Drops the least recently used days with nothing pending, other than `keep`, until a
    /// quarter of the budget is free (so dropping is not repeated on every insert).
    fn drop_days(&mut self, keep: NaiveDate) {
        if self.store.is_none() {
            return;
        }
        let mut idle: Vec<(u64, NaiveDate)> = self
            .days
            .iter()
            .filter(|(day, d)| **day != keep && d.pending == 0)
            .map(|(day, d)| (d.used, *day))
            .collect();
        idle.sort_unstable();
        let target = self.budget - self.budget / 4;
        for (_, day) in idle {
            if self.held <= target {
                break;
            }
            if let Some(d) = self.days.remove(&day) {
                self.held -= d.held();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;
    use crate::store::tests::batch;

    fn day(d: u8) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, u32::from(d % 4) + 1).unwrap()
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// An event of a day arrives.
        Insert(u8, u8),
        /// The day's pending ids are written to a file.
        Flush(u8),
        /// The day's pending ids are given up (a revoked partition).
        Discard(u8),
        /// Another ingester writes an id of the day; this one catches up.
        Other(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<u8>(), any::<u8>()).prop_map(|(d, n)| Op::Insert(d, n)),
            2 => any::<u8>().prop_map(Op::Flush),
            1 => any::<u8>().prop_map(Op::Discard),
            1 => (any::<u8>(), any::<u8>()).prop_map(|(d, n)| Op::Other(d, n)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Whatever days are dropped and read again (a budget of a few ids drops them all the
        /// time), the index answers as the set of stored and pending ids does.
        #[test]
        fn answers_as_the_stored_and_pending_ids_whatever_it_drops(
            ops in proptest::collection::vec(op(), 1..60),
            budget in 1usize..12,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let mut index = store.event_index().with_budget(budget);
            let mut stored: BTreeSet<(NaiveDate, String)> = BTreeSet::new();
            let mut pending: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
            let mut files = 0;
            let mut write = |d: NaiveDate, ids: &[String]| {
                files += 1;
                let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                store.write_batch(d, &format!("f{files}"), &batch(&refs)).unwrap()
            };
            for op in ops {
                match op.clone() {
                    Op::Insert(d, n) => {
                        let (d, id) = (day(d), format!("e{}", n % 16));
                        let known = stored.contains(&(d, id.clone()))
                            || pending.get(&d).is_some_and(|p| p.contains(&id));
                        prop_assert_eq!(index.insert(d, &id).unwrap(), !known, "insert {} {}", d, id);
                        if !known {
                            pending.entry(d).or_default().push(id);
                        }
                    }
                    Op::Flush(d) => {
                        let d = day(d);
                        let ids = pending.remove(&d).unwrap_or_default();
                        if !ids.is_empty() {
                            let path = write(d, &ids);
                            index.written(d, path, ids.len());
                            stored.extend(ids.into_iter().map(|id| (d, id)));
                        }
                    }
                    Op::Discard(d) => {
                        let d = day(d);
                        for id in pending.remove(&d).unwrap_or_default() {
                            index.remove(d, &id);
                        }
                    }
                    Op::Other(d, n) => {
                        let (d, id) = (day(d), format!("e{}", n % 16));
                        write(d, std::slice::from_ref(&id));
                        stored.insert((d, id));
                        index.catch_up().unwrap();
                    }
                }
                if matches!(op, Op::Insert(..)) {
                    // Over the budget only while every day held but the one just used is pending.
                    let idle = index.days.values().filter(|d| d.pending == 0).count();
                    prop_assert!(index.held() <= budget || idle <= 1, "held {}", index.held());
                }
            }
            for d in 0..4 {
                for n in 0..16 {
                    let (d, id) = (day(d), format!("e{n}"));
                    let known = stored.contains(&(d, id.clone()))
                        || pending.get(&d).is_some_and(|p| p.contains(&id));
                    prop_assert_eq!(index.contains(d, &id).unwrap(), known, "contains {} {}", d, id);
                }
            }
        }
    }

    /// A store of `days` days of 100 ids each, `d<day>-<n>`.
    fn store_of_days(dir: &std::path::Path, days: u8) -> Store {
        let store = Store::open(dir).unwrap();
        for d in 0..days {
            let ids: Vec<String> = (0..100).map(|i| format!("d{d}-{i}")).collect();
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            store.write_batch(day(d), "a", &batch(&refs)).unwrap();
        }
        store
    }

    #[test]
    fn a_store_of_many_days_is_read_only_where_events_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_of_days(dir.path(), 4);
        let mut index = store.event_index();
        assert_eq!(index.held(), 0, "nothing is read up front");
        assert!(
            !index.insert(day(3), "d3-7").unwrap(),
            "a stored id is a duplicate"
        );
        assert!(index.insert(day(3), "new").unwrap());
        assert_eq!((index.days_held(), index.held()), (1, 101));
        // The same id under another day is another event's id as far as the index knows.
        assert!(index.insert(day(2), "new").unwrap());
        assert_eq!(index.days_held(), 2);
    }

    #[test]
    fn days_over_the_budget_are_dropped_unless_pending_and_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_of_days(dir.path(), 3);
        let mut index = store.event_index().with_budget(150);
        assert!(index.insert(day(0), "pending").unwrap());
        assert!(!index.insert(day(1), "d1-1").unwrap());
        assert!(!index.insert(day(2), "d2-2").unwrap());
        // Day 1 went when day 2 came (least recently used, nothing pending); day 0 stayed,
        // its id pending.
        assert_eq!(index.days_held(), 2);
        assert!(index.held() <= 201, "held {}", index.held());
        assert!(
            !index.insert(day(0), "pending").unwrap(),
            "a pending id is never forgotten"
        );
        assert!(
            !index.insert(day(1), "d1-99").unwrap(),
            "a dropped day is read again"
        );
    }

    #[test]
    fn in_memory_it_never_drops() {
        let mut index = EventIndex::new().with_budget(2);
        for i in 0..10 {
            assert!(index.insert(day(i), &format!("e{i}")).unwrap());
            index.written(day(i), format!("f{i}"), 1);
        }
        assert_eq!(index.held(), 10);
        assert!(!index.insert(day(4), "e4").unwrap());
    }

    #[test]
    fn a_day_compacts_once_nothing_is_pending() {
        let mut index = EventIndex::new();
        let n = COMPACT_AT * 2 + 5;
        for i in 0..n {
            assert!(index.insert(day(0), &format!("id-{i}")).unwrap());
        }
        index.written(day(0), "a", n - 1);
        assert_eq!(index.days[&day(0)].stored.len(), 0, "one still pending");
        index.written(day(0), "b", 1);
        let d = &index.days[&day(0)];
        assert_eq!((d.stored.len(), d.added.len()), (n, 0));
        assert_eq!(index.held(), n);
        for i in (0..n).step_by(97) {
            assert!(!index.insert(day(0), &format!("id-{i}")).unwrap());
        }
    }
}
