//! Days of builds rolled up for the incremental refresh: one day's stored files read, priced
//! and classified as the `builds` view does it (`sql/builds.sql`), kept as a few thousand
//! totals per (team, product, status, waste class) plus the distinct (team, author) pairs,
//! and the rows themselves only where a window cuts through the day.
//!
//! The view stays the definition: [`crate::Snapshot::of_store`] evaluates it with DataFusion,
//! and a test checks that the figures from the rollups equal it on every fixture. This code
//! exists because the refresh runs every few seconds: reading 17 columns of a day straight
//! into compact rows costs some 30 ms for 60,000 builds, where the view's two window
//! functions over every column cost over half a second.

mod figures;

pub(crate) use figures::{figures, DayView};

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use buildcost_model::config::{PriceDefaults, PricingConfig};
use buildcost_model::{Status, WasteClass};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

use crate::snapshot::{floats, strings, typed};
use crate::{Error, Result};

/// The stored columns a day's classification reads.
const READ_COLUMNS: &[&str] = &[
    "event_id",
    "ingested_at",
    "finished_at",
    "team",
    "product",
    "author_key",
    "status",
    "superseded",
    "failure_category",
    "repository",
    "pipeline",
    "commit",
    "runner_class",
    "cpu_cores",
    "memory_gb",
    "gpus",
    "duration_s",
];

/// The author of a build without one.
pub(crate) const NO_AUTHOR: u32 = u32::MAX;

/// Team, product and author names as small numbers, for the life of one cache.
#[derive(Debug, Default)]
pub(crate) struct Names {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Names {
    /// The number of `name`, given on first sight.
    pub(crate) fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        // More than four billion distinct names would share the last number; the store's
        // names are bounded by the org's teams, products and people.
        let id = u32::try_from(self.names.len())
            .unwrap_or(NO_AUTHOR - 1)
            .min(NO_AUTHOR - 1);
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// The name of `id`.
    pub(crate) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }
}

/// Each runner class's resolved prices, and the default for the rest (spec section 5).
#[derive(Debug)]
pub(crate) struct Prices {
    classes: HashMap<String, PriceDefaults>,
    default: PriceDefaults,
}

impl Prices {
    pub(crate) fn new(pricing: &PricingConfig) -> Self {
        Prices {
            classes: pricing
                .runner_classes
                .iter()
                .map(|(name, class)| (name.clone(), class.resolve(&pricing.default)))
                .collect(),
            default: pricing.default,
        }
    }

    /// A build's cost in the `builds` view's order of operations, so it is the same number.
    fn cost(
        &self,
        runner_class: &str,
        duration_s: f64,
        cpu_cores: Option<f64>,
        memory_gb: Option<f64>,
        gpus: Option<i64>,
    ) -> f64 {
        let p = self.classes.get(runner_class).unwrap_or(&self.default);
        let cpu = cpu_cores.unwrap_or(p.cpu_cores);
        let memory = memory_gb.unwrap_or(p.memory_gb);
        #[allow(clippy::cast_precision_loss)] // as SQL's CAST(gpus AS DOUBLE)
        let gpus = gpus.map_or(p.gpus, |g| g as f64);
        (duration_s / 3600.0)
            * (cpu * p.eur_per_cpu_hour + memory * p.eur_per_gb_hour + gpus * p.eur_per_gpu_hour)
            + p.eur_per_build
    }
}

/// One priced, classified build.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    /// Microseconds since the epoch.
    pub finished_at: i64,
    pub cost: f64,
    pub team: u32,
    pub product: u32,
    /// [`NO_AUTHOR`] for none.
    pub author: u32,
    pub status: Status,
    pub waste: WasteClass,
}

/// Builds and cost of one (team, product, status, waste class).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    pub team: u32,
    pub product: u32,
    pub status: Status,
    pub waste: WasteClass,
    pub builds: u64,
    pub cost: f64,
}

/// A set of builds summed up: everything the snapshot reads of a whole day.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    /// Sorted by key; each cost summed in the rows' order.
    pub cells: Vec<Cell>,
    /// Distinct (team, author) pairs as [`pair`]s, sorted.
    pub authors: Vec<u64>,
}

impl Totals {
    pub(crate) fn of(rows: &[Row]) -> Totals {
        let mut cells: HashMap<(u32, u32, Status, WasteClass), (u64, f64)> = HashMap::new();
        let mut authors = Vec::new();
        for r in rows {
            let c = cells
                .entry((r.team, r.product, r.status, r.waste))
                .or_default();
            c.0 += 1;
            c.1 += r.cost;
            if r.author != NO_AUTHOR {
                authors.push(pair(r.team, r.author));
            }
        }
        authors.sort_unstable();
        authors.dedup();
        let mut cells: Vec<Cell> = cells
            .into_iter()
            .map(|((team, product, status, waste), (builds, cost))| Cell {
                team,
                product,
                status,
                waste,
                builds,
                cost,
            })
            .collect();
        cells.sort_by_key(|c| (c.team, c.product, c.status, c.waste));
        Totals { cells, authors }
    }
}

/// A (team, author) pair as one number.
pub(crate) fn pair(team: u32, author: u32) -> u64 {
    (u64::from(team) << 32) | u64::from(author)
}

/// The builds of stored files as read, by path and size: the open day's files are read once,
/// not at every refresh (a stored file never changes; a rewritten one has another size).
#[derive(Debug, Default)]
pub(crate) struct FileCache {
    files: HashMap<PathBuf, (u64, Vec<(u128, Stored)>)>,
}

/// One day classified: its rows sorted by `finished_at`, and its success keys.
#[derive(Debug)]
pub(crate) struct ClassifiedDay {
    pub rows: Vec<Row>,
    /// Hashes of the day's success keys, sorted, distinct.
    pub keys: Vec<u64>,
}

/// A build read from the store, priced, with its class as far as the build alone decides it.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    row: Row,
    ingested_at: i64,
    /// For a success with a commit: its key's hash and its event id (the rank's tie-break).
    success: Option<(u64, Box<str>)>,
}

/// Reads `files` (one day's) and classifies them as the `builds` view does: the first stored
/// copy of each event id; a success is a `duplicate` when another success of its key finished
/// earlier that day (ties by event id), or when `seen_before` knows its key.
///
/// # Errors
/// A file cannot be read as the build schema.
pub(crate) fn classify_day(
    files: &[PathBuf],
    names: &mut Names,
    prices: &Prices,
    mut seen_before: impl FnMut(u64) -> bool,
    mut cache: Option<&mut FileCache>,
) -> Result<ClassifiedDay> {
    let mut stored: Vec<Stored> = Vec::new();
    let mut by_id: HashMap<u128, usize> = HashMap::new();
    let mut keep = |id: u128, s: Stored| match by_id.get(&id) {
        // ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY ingested_at, finished_at)
        Some(&i) => {
            let kept: &Stored = &stored[i];
            if (s.ingested_at, s.row.finished_at) < (kept.ingested_at, kept.row.finished_at) {
                stored[i] = s;
            }
        }
        None => {
            by_id.insert(id, stored.len());
            stored.push(s);
        }
    };
    for path in files {
        let Some(cache) = cache.as_deref_mut() else {
            read_file(path, names, prices, &mut keep)?;
            continue;
        };
        let size = std::fs::metadata(path)
            .map_err(|e| Error::StoredFile {
                path: path.clone(),
                message: e.to_string(),
            })?
            .len();
        if cache.files.get(path).is_none_or(|(s, _)| *s != size) {
            let mut read = Vec::new();
            read_file(path, names, prices, &mut |id, s| read.push((id, s)))?;
            cache.files.insert(path.clone(), (size, read));
        }
        if let Some((_, read)) = cache.files.get(path) {
            for (id, s) in read {
                keep(*id, s.clone());
            }
        }
    }
    if let Some(cache) = cache {
        cache.files.retain(|path, _| files.contains(path));
    }

    // The first success of each key: ORDER BY finished_at, event_id.
    let mut first: HashMap<u64, usize> = HashMap::new();
    for (i, s) in stored.iter().enumerate() {
        if let Some((key, id)) = &s.success {
            first
                .entry(*key)
                .and_modify(|j| {
                    let other = &stored[*j];
                    let other_id = other.success.as_ref().map_or("", |(_, id)| id);
                    if (s.row.finished_at, id.as_ref()) < (other.row.finished_at, other_id) {
                        *j = i;
                    }
                })
                .or_insert(i);
        }
    }
    let mut keys: Vec<u64> = first.keys().copied().collect();
    keys.sort_unstable();
    let mut rows: Vec<Row> = stored
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut row = s.row;
            if let Some((key, _)) = &s.success {
                if first.get(key) != Some(&i) || seen_before(*key) {
                    row.waste = WasteClass::Duplicate;
                }
            }
            row
        })
        .collect();
    rows.sort_by_key(|r| r.finished_at);
    Ok(ClassifiedDay { rows, keys })
}

/// The success keys of `files`, sorted and distinct: what the days before the window leave
/// behind for the `duplicate` class.
///
/// # Errors
/// A file cannot be read as the build schema.
pub(crate) fn success_keys(files: &[PathBuf]) -> Result<Vec<u64>> {
    let mut keys = Vec::new();
    for path in files {
        for_each_batch(
            path,
            &["status", "repository", "pipeline", "commit"],
            &mut |b| {
                let text = |name: &str| strings(b, name);
                let (status, repository, pipeline, commit) = (
                    text("status")?,
                    text("repository")?,
                    text("pipeline")?,
                    text("commit")?,
                );
                for i in 0..b.num_rows() {
                    if status.value(i) == "success" && commit.is_valid(i) {
                        keys.push(key_hash(
                            repository.value(i),
                            pipeline.value(i),
                            commit.value(i),
                        ));
                    }
                }
                Ok(())
            },
        )?;
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// The 64-bit hash of a success key (repository, pipeline, commit).
pub(crate) fn key_hash(repository: &str, pipeline: &str, commit: &str) -> u64 {
    let mut bytes = Vec::with_capacity(repository.len() + pipeline.len() + commit.len() + 2);
    bytes.extend_from_slice(repository.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(pipeline.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(commit.as_bytes());
    xxh3_64(&bytes)
}

/// The class of a build as far as the build alone decides it (spec section 6, first match
/// wins); `duplicate` needs the other builds.
fn base_class(status: Status, superseded: bool, category: Option<&str>) -> WasteClass {
    match (status, category) {
        (Status::Cancelled, _) if superseded => WasteClass::Superseded,
        (Status::Failure, Some("syntax" | "compile" | "lint" | "format")) => {
            WasteClass::AvoidableFailure
        }
        (Status::Failure, Some("flaky_test")) => WasteClass::Flaky,
        (Status::Error, _) | (Status::Failure, Some("infra")) => WasteClass::InfraFailure,
        (Status::Timeout, _) => WasteClass::Timeout,
        (Status::Cancelled, _) => WasteClass::Cancelled,
        _ => WasteClass::None,
    }
}

/// Calls `f` with every batch of `columns` of one stored file.
fn for_each_batch(
    path: &Path,
    columns: &[&str],
    f: &mut dyn FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    let fail = |message: String| Error::StoredFile {
        path: path.into(),
        message,
    };
    let file = File::open(path).map_err(|e| fail(e.to_string()))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| fail(e.to_string()))?;
    let roots = columns
        .iter()
        .map(|c| builder.schema().index_of(c))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(16_384)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| fail(e.to_string()))?;
        f(&batch).map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

/// Calls `f` with every build of one stored file: its event id's hash and the build.
fn read_file(
    path: &Path,
    names: &mut Names,
    prices: &Prices,
    f: &mut dyn FnMut(u128, Stored),
) -> Result<()> {
    for_each_batch(path, READ_COLUMNS, &mut |b| read_batch(b, names, prices, f))
}

fn opt_s(a: &StringArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

fn read_batch(
    b: &RecordBatch,
    names: &mut Names,
    prices: &Prices,
    f: &mut dyn FnMut(u128, Stored),
) -> Result<()> {
    let text = |name: &str| strings(b, name);
    let float = |name: &str| floats(b, name);
    let time = |name: &str| {
        typed(b, name, "timestamp", |c| {
            c.as_primitive_opt::<TimestampMicrosecondType>()
        })
    };
    let int = |name: &str| typed(b, name, "BIGINT", |c| c.as_primitive_opt::<Int64Type>());
    let flag = |name: &str| typed(b, name, "BOOLEAN", |c| c.as_boolean_opt());
    let (event_id, team, product, author) = (
        text("event_id")?,
        text("team")?,
        text("product")?,
        text("author_key")?,
    );
    let (status, category, runner) = (
        text("status")?,
        text("failure_category")?,
        text("runner_class")?,
    );
    let (repository, pipeline, commit) = (text("repository")?, text("pipeline")?, text("commit")?);
    let (ingested_at, finished_at) = (time("ingested_at")?, time("finished_at")?);
    let (duration, cpu, memory, gpus) = (
        float("duration_s")?,
        float("cpu_cores")?,
        float("memory_gb")?,
        int("gpus")?,
    );
    let superseded = flag("superseded")?;
    let opt_f = |a: &Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
    for i in 0..b.num_rows() {
        let s = Status::parse(status.value(i)).ok_or_else(|| {
            Error::Shape(format!("unknown status `{}` in the store", status.value(i)))
        })?;
        let cost = prices.cost(
            runner.value(i),
            duration.value(i),
            opt_f(cpu, i),
            opt_f(memory, i),
            gpus.is_valid(i).then(|| gpus.value(i)),
        );
        let success = match (s, opt_s(commit, i)) {
            (Status::Success, Some(c)) => Some((
                key_hash(repository.value(i), pipeline.value(i), c),
                event_id.value(i).into(),
            )),
            _ => None,
        };
        let row = Row {
            finished_at: finished_at.value(i),
            cost,
            team: names.id(team.value(i)),
            product: names.id(product.value(i)),
            author: opt_s(author, i).map_or(NO_AUTHOR, |a| names.id(a)),
            status: s,
            waste: base_class(s, superseded.value(i), opt_s(category, i)),
        };
        f(
            xxh3_128(event_id.value(i).as_bytes()),
            Stored {
                row,
                ingested_at: ingested_at.value(i),
                success,
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_class_wins() {
        assert_eq!(
            base_class(Status::Cancelled, true, Some("syntax")),
            WasteClass::Superseded
        );
        assert_eq!(
            base_class(Status::Failure, false, Some("lint")),
            WasteClass::AvoidableFailure
        );
        assert_eq!(
            base_class(Status::Failure, false, Some("infra")),
            WasteClass::InfraFailure
        );
        assert_eq!(
            base_class(Status::Failure, false, Some("test")),
            WasteClass::None
        );
        assert_eq!(
            base_class(Status::Error, false, None),
            WasteClass::InfraFailure
        );
        assert_eq!(base_class(Status::Success, true, None), WasteClass::None);
    }

    #[test]
    fn names_are_numbered_once() {
        let mut names = Names::default();
        let a = names.id("alpha");
        assert_eq!(names.id("beta"), a + 1);
        assert_eq!(names.id("alpha"), a);
        assert_eq!(names.name(a + 1), "beta");
    }
}
