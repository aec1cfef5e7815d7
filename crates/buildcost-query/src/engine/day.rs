//! One day of builds, priced and classified on its own: the unit the figures engine reads,
//! keeps and persists.
//!
//! Every waste class but `duplicate` depends on the build alone, and a build's `duplicate`
//! depends on the earlier builds of its key (repository, pipeline, commit). Inside a day the
//! successes of a key are ranked (`finished_at`, then `event_id`): all but the first are
//! duplicates. The first, a *candidate*, is a duplicate only if an earlier day has a success of
//! its key; that is decided when days are put together (the engine), so a day's cells depend on
//! its own files only. Candidates are counted in their cell as `none`; one found to repeat an
//! earlier day is moved to `duplicate`, exactly (the sums are [`Exact`]). Only those moves need
//! a candidate's own sums: a stored rollup keeps the sums of the candidates that repeated an
//! earlier day when it was written, and the day's keys; should another key repeat later (a late
//! event in an earlier day), the day is read from its files again.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, Float64Array, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use buildcost_model::{hours, Exact, FailureCategory, Prices, Status, WasteClass};
use buildcost_store::{DataFile, Store};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

use crate::snapshot::{floats, opt_str, strings, typed};
use crate::{Error, Result};

/// The stored columns a day's classification reads.
pub(crate) const READ_COLUMNS: &[&str] = &[
    "event_id",
    "source",
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

/// What a cell of builds is: the finest grain any figure reads (the FOCUS export's, with the
/// status for the build counts). Names are numbers in the rollup's own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct CellKey {
    pub team: u32,
    pub product: u32,
    pub source: u32,
    pub repository: u32,
    pub runner_class: u32,
    /// [`Status::index`].
    pub status: u8,
    /// [`WasteClass::index`].
    pub waste: u8,
}

impl CellKey {
    pub fn waste(&self) -> WasteClass {
        WasteClass::from_index(self.waste).unwrap_or(WasteClass::None)
    }

    /// The same cell with another waste class.
    pub fn with_waste(mut self, waste: WasteClass) -> Self {
        self.waste = waste.index();
        self
    }

    /// Its name numbers: team, product, source, repository, runner class.
    pub fn names(&self) -> [u32; 5] {
        [
            self.team,
            self.product,
            self.source,
            self.repository,
            self.runner_class,
        ]
    }

    /// The same cell with each name number `n` replaced by `f(n)` (into another name table).
    pub fn map_names(self, mut f: impl FnMut(u32) -> u32) -> Self {
        CellKey {
            team: f(self.team),
            product: f(self.product),
            source: f(self.source),
            repository: f(self.repository),
            runner_class: f(self.runner_class),
            ..self
        }
    }
}

/// Builds, cost and billed hours of a set of builds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sums {
    pub builds: u64,
    pub cost: Exact,
    pub hours: Exact,
}

impl Sums {
    pub fn add(&mut self, other: &Sums) {
        self.builds += other.builds;
        self.cost += other.cost;
        self.hours += other.hours;
    }
}

/// One cell of a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cell {
    pub key: CellKey,
    pub sums: Sums,
}

/// A day's first success of a key: `none` in its cell, unless an earlier day has the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Candidate {
    /// The 64-bit hash of (repository, pipeline, commit) ([`success_key`]).
    pub key: u64,
    /// Its cell (waste class `none`).
    pub cell: CellKey,
    pub sums: Sums,
}

/// A pipeline of a team in a day: what the weekly report lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PipelineCell {
    pub team: u32,
    pub repository: u32,
    pub pipeline: u32,
    pub all: Sums,
    /// Its builds of class `avoidable_failure`.
    pub avoidable: Sums,
}

/// A day's rollup, depending only on its own files (and the prices).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DayRollup {
    /// The names the numbers below stand for (teams, products, repositories, …).
    pub names: Vec<String>,
    /// Sorted by key, each key once; candidates included as `none`.
    pub cells: Vec<Cell>,
    /// The candidates that repeated an earlier day when the rollup was made, sorted by key.
    pub repeats: Vec<Candidate>,
    /// Sorted by (team, repository, pipeline).
    pub pipelines: Vec<PipelineCell>,
    /// Avoidable failures by (team, failure category name), sorted.
    pub categories: Vec<(u32, u32, u64)>,
    /// Distinct (team, author) pairs, sorted; an author as [`author_number`].
    pub authors: Vec<(u32, u64)>,
}

/// One build of a day a window cuts through: enough to add it to a window's sums.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Row {
    /// Microseconds since the epoch.
    pub finished_at: i64,
    /// Index into [`DayRollup::cells`].
    pub cell: u32,
    pub sums: Sums,
    /// [`author_number`], if the build has an author.
    pub author: Option<u64>,
    /// Index into [`Classified::candidates`] when the build is its key's candidate.
    pub candidate: Option<u32>,
}

/// A day classified from its files: the rollup (no repeats yet), every candidate, and the
/// rows sorted by `finished_at`.
pub(crate) struct Classified {
    pub rollup: DayRollup,
    /// Sorted by key, each key once: the day's distinct success keys.
    pub candidates: Vec<Candidate>,
    pub rows: Vec<Row>,
}

/// The 64-bit hash of a success key (repository, pipeline, commit). Two different keys share
/// a hash about once in 10¹¹ at a year of 60,000 builds a day (then a success would count as a
/// duplicate).
pub(crate) fn success_key(repository: &str, pipeline: &str, commit: &str) -> u64 {
    let mut bytes = Vec::with_capacity(repository.len() + pipeline.len() + commit.len() + 2);
    bytes.extend_from_slice(repository.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(pipeline.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(commit.as_bytes());
    xxh3_64(&bytes)
}

/// An author key as a number: the 16 hex digits of a pseudonym read as 64 bits (exact), any
/// other text (a store written by someone else) hashed.
pub(crate) fn author_number(author_key: &str) -> u64 {
    if author_key.len() == 16 {
        if let Ok(n) = u64::from_str_radix(author_key, 16) {
            return n;
        }
    }
    xxh3_64(author_key.as_bytes())
}

/// Names of one rollup, numbered from 0 in order of first sight.
#[derive(Default)]
struct LocalNames {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl LocalNames {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }
}

/// A build as read, before the day's ranking.
struct Read {
    ingested_at: i64,
    finished_at: i64,
    key: CellKey,
    pipeline: u32,
    category: Option<u32>,
    sums: Sums,
    author: Option<u64>,
    /// For a success with a commit: its key's hash and its event id (the rank's tie-break).
    success: Option<(u64, Box<str>)>,
}

/// The builds of a day's files as read, before the day's ranking; kept per file, so the open
/// day's files are read once, not at every refresh (a stored file never changes; a rewritten
/// one has another size or time).
#[derive(Default)]
pub(crate) struct DayReader {
    names: LocalNames,
    files: HashMap<std::path::PathBuf, FileRead>,
}

/// One file as read: its size and modification time, and its builds by event-id hash.
type FileRead = (u64, i64, Vec<(u128, Read)>);

impl DayReader {
    /// Reads `files` (one day's, sorted) that were not read yet, forgets the ones gone.
    ///
    /// # Errors
    /// A file cannot be read as the build schema.
    pub fn read(&mut self, store: &Store, files: &[DataFile], prices: &Prices) -> Result<()> {
        self.files
            .retain(|path, _| files.iter().any(|f| &f.path == path));
        for file in files {
            let known = self.files.get(&file.path);
            if known
                .is_some_and(|(size, modified, _)| (*size, *modified) == (file.size, file.modified))
            {
                continue;
            }
            let mut read = Vec::new();
            let names = &mut self.names;
            store.read_columns(file, READ_COLUMNS, &mut |batch| {
                read_batch(batch, names, prices, &mut |id, build| {
                    read.push((id, build))
                })
                .map_err(|e| Error::stored_file(file, &e))
            })?;
            self.files
                .insert(file.path.clone(), (file.size, file.modified, read));
        }
        Ok(())
    }

    /// Classifies what was read of `files` (in their order): the first stored copy of each
    /// event id (by `ingested_at`, then `finished_at`), each build's class as far as the day
    /// decides it.
    pub fn classify(&self, files: &[DataFile]) -> Classified {
        let mut builds: Vec<&Read> = Vec::new();
        let mut by_id: HashMap<u128, usize> = HashMap::new();
        for file in files {
            let Some((_, _, read)) = self.files.get(&file.path) else {
                continue;
            };
            for (id, build) in read {
                match by_id.get(id) {
                    Some(&i) => {
                        let kept = builds[i];
                        if (build.ingested_at, build.finished_at)
                            < (kept.ingested_at, kept.finished_at)
                        {
                            builds[i] = build;
                        }
                    }
                    None => {
                        by_id.insert(*id, builds.len());
                        builds.push(build);
                    }
                }
            }
        }
        drop(by_id);
        rank(&builds, self.names.names.clone())
    }
}

/// Reads and classifies one day's `files` (sorted), priced with `prices`.
///
/// # Errors
/// A file cannot be read as the build schema.
pub(crate) fn classify(store: &Store, files: &[DataFile], prices: &Prices) -> Result<Classified> {
    let mut reader = DayReader::default();
    reader.read(store, files, prices)?;
    Ok(reader.classify(files))
}

/// Ranks the successes of each key (`finished_at`, then `event_id`) and sums the day up.
fn rank(builds: &[&Read], names: Vec<String>) -> Classified {
    // The first success of each key: ORDER BY finished_at, event_id.
    let mut first: HashMap<u64, usize> = HashMap::new();
    for (i, b) in builds.iter().enumerate() {
        if let Some((key, id)) = &b.success {
            first
                .entry(*key)
                .and_modify(|j| {
                    let other = builds[*j];
                    let other_id = other.success.as_ref().map_or("", |(_, id)| id);
                    if (b.finished_at, id.as_ref()) < (other.finished_at, other_id) {
                        *j = i;
                    }
                })
                .or_insert(i);
        }
    }

    let mut cells: HashMap<CellKey, Sums> = HashMap::new();
    let mut pipelines: HashMap<(u32, u32, u32), (Sums, Sums)> = HashMap::new();
    let mut categories: HashMap<(u32, u32), u64> = HashMap::new();
    let mut authors: Vec<(u32, u64)> = Vec::new();
    // Each build's cell key after the ranking, and its success key when it is a candidate.
    let mut ranked: Vec<(CellKey, Option<u64>)> = Vec::with_capacity(builds.len());
    for (i, b) in builds.iter().enumerate() {
        let mut key = b.key;
        let mut candidate = None;
        if let Some((success, _)) = &b.success {
            if first.get(success) == Some(&i) {
                candidate = Some(*success);
            } else {
                key = key.with_waste(WasteClass::Duplicate);
            }
        }
        ranked.push((key, candidate));
        cells.entry(key).or_default().add(&b.sums);
        let p = pipelines
            .entry((key.team, key.repository, b.pipeline))
            .or_default();
        p.0.add(&b.sums);
        if key.waste() == WasteClass::AvoidableFailure {
            p.1.add(&b.sums);
            if let Some(c) = b.category {
                *categories.entry((key.team, c)).or_default() += 1;
            }
        }
        if let Some(a) = b.author {
            authors.push((key.team, a));
        }
    }

    let mut cells: Vec<Cell> = cells
        .into_iter()
        .map(|(key, sums)| Cell { key, sums })
        .collect();
    cells.sort_unstable_by_key(|c| c.key);
    let index_of: HashMap<CellKey, u32> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| (c.key, u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    let mut candidates: Vec<(Candidate, usize)> = builds
        .iter()
        .zip(&ranked)
        .enumerate()
        .filter_map(|(i, (b, (key, candidate)))| {
            candidate.map(|success| {
                (
                    Candidate {
                        key: success,
                        cell: *key,
                        sums: b.sums,
                    },
                    i,
                )
            })
        })
        .collect();
    candidates.sort_unstable_by_key(|(c, _)| c.key);
    let mut candidate_index: Vec<Option<u32>> = vec![None; builds.len()];
    for (n, (_, i)) in candidates.iter().enumerate() {
        candidate_index[*i] = u32::try_from(n).ok();
    }
    let mut rows: Vec<Row> = builds
        .iter()
        .zip(&ranked)
        .zip(candidate_index)
        .map(|((b, (key, _)), candidate)| Row {
            finished_at: b.finished_at,
            cell: index_of.get(key).copied().unwrap_or(0),
            sums: b.sums,
            author: b.author,
            candidate,
        })
        .collect();
    rows.sort_by_key(|r| r.finished_at);

    let mut pipelines: Vec<PipelineCell> = pipelines
        .into_iter()
        .map(
            |((team, repository, pipeline), (all, avoidable))| PipelineCell {
                team,
                repository,
                pipeline,
                all,
                avoidable,
            },
        )
        .collect();
    pipelines.sort_unstable_by_key(|p| (p.team, p.repository, p.pipeline));
    let mut categories: Vec<(u32, u32, u64)> = categories
        .into_iter()
        .map(|((t, c), n)| (t, c, n))
        .collect();
    categories.sort_unstable();
    authors.sort_unstable();
    authors.dedup();

    Classified {
        rollup: DayRollup {
            names,
            cells,
            repeats: Vec::new(),
            pipelines,
            categories,
            authors,
        },
        candidates: candidates.into_iter().map(|(c, _)| c).collect(),
        rows,
    }
}

fn read_batch(
    b: &RecordBatch,
    names: &mut LocalNames,
    prices: &Prices,
    f: &mut dyn FnMut(u128, Read),
) -> Result<()> {
    let text = |name: &str| strings(b, name);
    let float = |name: &str| floats(b, name);
    let time = |name: &str| {
        typed(b, name, "timestamp", |c| {
            c.as_primitive_opt::<TimestampMicrosecondType>()
        })
    };
    let (event_id, source, team, product, author) = (
        text("event_id")?,
        text("source")?,
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
    let (duration, cpu, memory) = (
        float("duration_s")?,
        float("cpu_cores")?,
        float("memory_gb")?,
    );
    let gpus = typed(b, "gpus", "BIGINT", |c| c.as_primitive_opt::<Int64Type>())?;
    let superseded = typed(b, "superseded", "BOOLEAN", |c| c.as_boolean_opt())?;
    let opt_f = |a: &Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
    for i in 0..b.num_rows() {
        let s = Status::parse(status.value(i)).ok_or_else(|| {
            Error::Shape(format!("unknown status `{}` in the store", status.value(i)))
        })?;
        let class = runner.value(i);
        let cost = prices.cost(
            class,
            duration.value(i),
            opt_f(cpu, i),
            opt_f(memory, i),
            gpus.is_valid(i).then(|| gpus.value(i)),
        );
        let category_text = opt_str(category, i);
        let waste = WasteClass::of_build(
            s,
            superseded.is_valid(i) && superseded.value(i),
            category_text.and_then(FailureCategory::parse),
            false,
        );
        let success = match (s, opt_str(commit, i)) {
            (Status::Success, Some(c)) => Some((
                success_key(repository.value(i), pipeline.value(i), c),
                event_id.value(i).into(),
            )),
            _ => None,
        };
        let key = CellKey {
            team: names.id(team.value(i)),
            product: names.id(product.value(i)),
            source: names.id(source.value(i)),
            repository: names.id(repository.value(i)),
            runner_class: names.id(class),
            status: s.index(),
            waste: waste.index(),
        };
        let read = Read {
            ingested_at: ingested_at.value(i),
            finished_at: finished_at.value(i),
            key,
            pipeline: names.id(pipeline.value(i)),
            category: category_text.map(|c| names.id(c)),
            sums: Sums {
                builds: 1,
                cost: Exact::from_f64(cost),
                hours: Exact::from_f64(hours(duration.value(i))),
            },
            author: opt_str(author, i).map(author_number),
            success,
        };
        f(xxh3_128(event_id.value(i).as_bytes()), read);
    }
    Ok(())
}

/// The success keys of `files`, sorted and distinct: all the days before a window give it.
///
/// # Errors
/// A file cannot be read as the build schema.
pub(crate) fn success_keys(store: &Store, files: &[DataFile]) -> Result<Vec<u64>> {
    let mut keys = Vec::new();
    for file in files {
        store
            .read_columns(
                file,
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
                            keys.push(success_key(
                                repository.value(i),
                                pipeline.value(i),
                                commit.value(i),
                            ));
                        }
                    }
                    Ok::<(), Error>(())
                },
            )
            .map_err(|e| Error::stored_file(file, &e))?;
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}
