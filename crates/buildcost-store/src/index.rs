//! The set of stored event ids, for de-duplication across runs.
//!
//! A year of builds is 22 million ids, so the layout is about memory: most ids sit in one sorted
//! array of 128-bit hashes (16 bytes an id, nothing more), found through a directory of their
//! top 20 bits (4 MiB; fewer for a smaller store) and a binary search over the few ids that share them. Ids added since
//! the array was last rebuilt wait in a small hash set, merged into the array (in place,
//! from the back) once it holds a sixteenth of the array. A hash set of every id costs 19 to
//! 38 bytes an id instead.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_128;

/// At most this many top bits of a hash index the directory (a slot per 16 ids or so).
const DIRECTORY_BITS: u32 = 20;
/// `recent` is merged into `sorted` when it holds this many ids, or a sixteenth of `sorted`.
const MIN_MERGE: usize = 1 << 18;

/// Every `event_id` the store holds, as 128-bit hashes (a collision between two different ids
/// is about 1 in 10^25 at a year of events).
#[derive(Debug, Default, Clone)]
pub struct EventIndex {
    /// Sorted, distinct.
    sorted: Vec<u128>,
    /// For each value of the top `bits` of a hash, where its ids start in `sorted`; one more
    /// entry for the end. Empty while `sorted` is.
    directory: Vec<u32>,
    bits: u32,
    /// Added since the last merge; none of them in `sorted`.
    recent: HashSet<u128>,
    /// In `sorted` but removed since (a batch that could not be written).
    removed: HashSet<u128>,
    /// The data files whose ids are in the index, so a catch-up reads only newer files.
    files: HashSet<PathBuf>,
}

impl EventIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an id; `false` when it was already there (a duplicate).
    pub fn insert(&mut self, event_id: &str) -> bool {
        self.insert_hash(Self::hash(event_id))
    }

    /// The hash an id is recorded under.
    pub(crate) fn hash(event_id: &str) -> u128 {
        xxh3_128(event_id.as_bytes())
    }

    /// Records ids by their [`EventIndex::hash`].
    pub(crate) fn extend_hashes(&mut self, hashes: impl IntoIterator<Item = u128>) {
        for h in hashes {
            self.insert_hash(h);
        }
    }

    fn insert_hash(&mut self, h: u128) -> bool {
        if self.in_sorted(h) {
            // Present unless removed; a removed one comes back.
            return self.removed.remove(&h);
        }
        if !self.recent.insert(h) {
            return false;
        }
        if self.recent.len() >= MIN_MERGE.max(self.sorted.len() / 16) {
            self.merge();
        }
        true
    }

    /// Whether an id is recorded.
    pub fn contains(&self, event_id: &str) -> bool {
        let h = Self::hash(event_id);
        self.recent.contains(&h) || (self.in_sorted(h) && !self.removed.contains(&h))
    }

    /// Forgets an id (used when a batch could not be written).
    pub fn remove(&mut self, event_id: &str) {
        let h = Self::hash(event_id);
        if !self.recent.remove(&h) && self.in_sorted(h) {
            self.removed.insert(h);
        }
    }

    /// How many ids are recorded.
    pub fn len(&self) -> usize {
        self.sorted.len() - self.removed.len() + self.recent.len()
    }

    /// Records that every id of the data file at `path` is in the index.
    pub fn mark_file(&mut self, path: impl Into<PathBuf>) {
        self.files.insert(path.into());
    }

    /// Whether the ids of the data file at `path` are in the index.
    pub fn has_file(&self, path: &Path) -> bool {
        self.files.contains(path)
    }

    /// Whether no id is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `h` is in `sorted` (removed or not).
    fn in_sorted(&self, h: u128) -> bool {
        if self.sorted.is_empty() {
            return false;
        }
        let slot = bucket(h, self.bits);
        let (from, to) = (
            self.directory[slot] as usize,
            self.directory[slot + 1] as usize,
        );
        self.sorted[from..to].binary_search(&h).is_ok()
    }

    /// Moves `recent` into `sorted` (dropping the removed ids) and rebuilds the directory.
    fn merge(&mut self) {
        let mut add: Vec<u128> = self.recent.drain().collect();
        add.sort_unstable();
        if !self.removed.is_empty() {
            let removed = std::mem::take(&mut self.removed);
            self.sorted.retain(|h| !removed.contains(h));
        }
        // In place, from the back: `sorted` grows by `add.len()` and the two sorted runs are
        // merged into it largest first, so no second copy of the array is ever made.
        let old = self.sorted.len();
        self.sorted.reserve_exact(add.len());
        self.sorted.resize(old + add.len(), 0);
        let (mut i, mut j, mut k) = (old, add.len(), old + add.len());
        while j > 0 {
            if i > 0 && self.sorted[i - 1] > add[j - 1] {
                self.sorted[k - 1] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k - 1] = add[j - 1];
                j -= 1;
            }
            k -= 1;
        }
        self.recent.shrink_to(MIN_MERGE);
        self.rebuild_directory();
    }

    fn rebuild_directory(&mut self) {
        let n = self.sorted.len();
        self.bits = (usize::BITS - n.leading_zeros())
            .saturating_sub(4)
            .min(DIRECTORY_BITS);
        let slots = 1usize << self.bits;
        self.directory.clear();
        self.directory.reserve_exact(slots + 1);
        let mut at = 0usize;
        for slot in 0..slots {
            while at < n && bucket(self.sorted[at], self.bits) < slot {
                at += 1;
            }
            // More than four billion ids would not fit; the store holds far fewer.
            self.directory.push(u32::try_from(at).unwrap_or(u32::MAX));
        }
        self.directory
            .push(u32::try_from(self.sorted.len()).unwrap_or(u32::MAX));
    }
}

/// The directory slot of a hash: its top `bits` bits.
fn bucket(h: u128, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (h >> (128 - bits)) as usize
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16),
        Remove(u16),
        Merge,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => any::<u16>().prop_map(Op::Insert),
            2 => any::<u16>().prop_map(Op::Remove),
            1 => Just(Op::Merge),
        ]
    }

    proptest! {
        /// Any sequence of inserts, removals and merges answers as a plain set does.
        #[test]
        fn behaves_as_a_set(ops in proptest::collection::vec(op(), 1..400)) {
            let mut index = EventIndex::new();
            let mut model: HashSet<String> = HashSet::new();
            for op in ops {
                match op {
                    Op::Insert(n) => {
                        let id = format!("e{}", n % 300);
                        prop_assert_eq!(index.insert(&id), model.insert(id.clone()), "insert {}", id);
                    }
                    Op::Remove(n) => {
                        let id = format!("e{}", n % 300);
                        index.remove(&id);
                        model.remove(&id);
                    }
                    Op::Merge => index.merge(),
                }
                prop_assert_eq!(index.len(), model.len());
            }
            for n in 0..300 {
                let id = format!("e{n}");
                prop_assert_eq!(index.contains(&id), model.contains(&id), "contains {}", id);
            }
        }
    }

    #[test]
    fn a_large_index_merges_on_its_own_and_finds_every_id() {
        let mut index = EventIndex::new();
        let n = MIN_MERGE * 3 + 17;
        for i in 0..n {
            assert!(index.insert(&format!("id-{i}")));
        }
        assert!(index.sorted.len() >= MIN_MERGE * 3, "merged into the array");
        assert!(index.recent.len() < MIN_MERGE);
        assert_eq!(index.len(), n);
        assert!(index.sorted.windows(2).all(|w| w[0] < w[1]));
        for i in (0..n).step_by(997) {
            assert!(index.contains(&format!("id-{i}")));
            assert!(!index.insert(&format!("id-{i}")));
        }
        assert!(!index.contains("id-never"));
    }
}
