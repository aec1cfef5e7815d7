//! Day rollups kept in the store, so a cold start, a report or an export of a year reads
//! totals instead of 22 million rows.
//!
//! Two objects a day under `_rollups/v1/` (a folder other engines skip: Hive-style readers
//! ignore names starting with `_`):
//! - `<day>.keys`: the day's distinct success keys, sorted (8 bytes each): all that the days
//!   before a window contribute to its `duplicate` class;
//! - `<day>.<prices>.rollup`: the day's [`DayRollup`] (postcard, zstd), per price table:
//!   its cells, pipelines, authors and the candidates that repeated an earlier day.
//!
//! Each starts with the fingerprint of the day's files it was made from (names, sizes,
//! modification times); one that does not match the files listed now is stale and made again.
//! A write that fails (a read-only store) only costs the next reader the work again.

use buildcost_model::config::PricingConfig;
use buildcost_store::Store;
use chrono::NaiveDate;
use xxhash_rust::xxh3::xxh3_64;

use super::day::{CellKey, DayRollup};

/// The rollups of this format, under the store's [`buildcost_store::ROLLUPS_DIR`].
const FOLDER: &str = "_rollups/v1";
const KEYS_MAGIC: &[u8; 8] = b"BCKEYS01";
const ROLLUP_MAGIC: &[u8; 8] = b"BCROLL02";
/// A rollup larger than this when inflated is not one of ours.
const MAX_ROLLUP_BYTES: usize = 1 << 30;

/// A hash of the price table: rollups of different prices never mix.
pub(crate) fn prices_hash(pricing: &PricingConfig) -> u64 {
    xxh3_64(format!("{pricing:?}").as_bytes())
}

fn keys_key(day: NaiveDate) -> String {
    format!("{FOLDER}/{day}.keys")
}

fn rollup_key(day: NaiveDate, prices: u64) -> String {
    format!("{FOLDER}/{day}.{prices:016x}.rollup")
}

/// The day's success keys, if stored for this fingerprint.
pub(crate) fn read_keys(store: &Store, day: NaiveDate, fingerprint: u64) -> Option<Vec<u64>> {
    let bytes = store.read_blob(&keys_key(day)).ok()??;
    let body = checked(&bytes, KEYS_MAGIC, fingerprint)?;
    if body.len() % 8 != 0 {
        return None;
    }
    let keys: Vec<u64> = body
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    keys.windows(2).all(|w| w[0] < w[1]).then_some(keys)
}

/// The day's rollup, if stored for this fingerprint and these prices.
pub(crate) fn read_rollup(
    store: &Store,
    day: NaiveDate,
    fingerprint: u64,
    prices: u64,
) -> Option<DayRollup> {
    let bytes = store.read_blob(&rollup_key(day, prices)).ok()??;
    let body = checked(&bytes, ROLLUP_MAGIC, fingerprint)?;
    let plain = zstd::bulk::decompress(body, MAX_ROLLUP_BYTES).ok()?;
    let rollup: DayRollup = postcard::from_bytes(&plain).ok()?;
    rollup.is_consistent().then_some(rollup)
}

/// Stores a day's success keys alone (a day before every window of the snapshot).
pub(crate) fn write_keys(store: &Store, day: NaiveDate, fingerprint: u64, keys: &[u64]) {
    let mut bytes = header(KEYS_MAGIC, fingerprint);
    for k in keys {
        bytes.extend_from_slice(&k.to_le_bytes());
    }
    if let Err(e) = store.write_blob(&keys_key(day), &bytes) {
        warn_once(&e.to_string());
    }
}

/// Logs that the store takes no rollups, once per process.
fn warn_once(error: &str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(error, "cannot store day rollups in the store (read-only?); figures are computed from the Parquet files each time");
    });
}

/// Stores a day's rollup; a failure is logged once per process and ignored.
pub(crate) fn write(
    store: &Store,
    day: NaiveDate,
    fingerprint: u64,
    prices: u64,
    rollup: &DayRollup,
) {
    let result = postcard::to_allocvec(rollup)
        .map_err(|e| e.to_string())
        .and_then(|plain| zstd::bulk::compress(&plain, 3).map_err(|e| e.to_string()))
        .and_then(|packed| {
            let mut body = header(ROLLUP_MAGIC, fingerprint);
            body.extend_from_slice(&packed);
            store
                .write_blob(&rollup_key(day, prices), &body)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        warn_once(&e);
    }
}

fn header(magic: &[u8; 8], fingerprint: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 << 16);
    out.extend_from_slice(magic);
    out.extend_from_slice(&fingerprint.to_le_bytes());
    out
}

fn checked<'a>(bytes: &'a [u8], magic: &[u8; 8], fingerprint: u64) -> Option<&'a [u8]> {
    let (head, body) = (bytes.get(..16)?, bytes.get(16..)?);
    (head[..8] == magic[..] && head[8..] == fingerprint.to_le_bytes()).then_some(body)
}

impl DayRollup {
    /// Whether every number in the rollup points inside it (a damaged or foreign object is
    /// never used).
    pub(crate) fn is_consistent(&self) -> bool {
        let names = self.names.len();
        let name = |n: u32| (n as usize) < names;
        let cell = |k: &CellKey| k.names().into_iter().all(name);
        self.cells.iter().all(|c| cell(&c.key))
            && self.repeats.iter().all(|c| cell(&c.cell))
            && self.repeats.windows(2).all(|w| w[0].key < w[1].key)
            && self
                .pipelines
                .iter()
                .all(|p| name(p.team) && name(p.repository) && name(p.pipeline))
            && self.categories.iter().all(|(t, c, _)| name(*t) && name(*c))
            && self.authors.iter().all(|(t, _)| name(*t))
    }
}
