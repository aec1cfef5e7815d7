//! The set of stored event ids, for de-duplication across runs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_128;

/// Every `event_id` the store holds, as 128-bit hashes (16 bytes an event; a collision between
/// two different ids is about 1 in 10^25 at a year of events).
#[derive(Debug, Default, Clone)]
pub struct EventIndex {
    seen: HashSet<u128>,
    /// The data files whose ids are in `seen`, so a catch-up reads only newer files.
    files: HashSet<PathBuf>,
}

impl EventIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an id; `false` when it was already there (a duplicate).
    pub fn insert(&mut self, event_id: &str) -> bool {
        self.seen.insert(xxh3_128(event_id.as_bytes()))
    }

    /// The hash an id is recorded under.
    pub(crate) fn hash(event_id: &str) -> u128 {
        xxh3_128(event_id.as_bytes())
    }

    /// Records ids by their [`EventIndex::hash`].
    pub(crate) fn extend_hashes(&mut self, hashes: impl IntoIterator<Item = u128>) {
        self.seen.extend(hashes);
    }

    /// Whether an id is recorded.
    pub fn contains(&self, event_id: &str) -> bool {
        self.seen.contains(&xxh3_128(event_id.as_bytes()))
    }

    /// Forgets an id (used when a batch could not be written).
    pub fn remove(&mut self, event_id: &str) {
        self.seen.remove(&xxh3_128(event_id.as_bytes()));
    }

    /// How many ids are recorded.
    pub fn len(&self) -> usize {
        self.seen.len()
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
        self.seen.is_empty()
    }
}
