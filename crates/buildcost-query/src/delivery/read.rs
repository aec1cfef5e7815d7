//! Reads what the delivery figures need from the store, once per file: the builds that carry
//! request ids (every day), the builds of the 28-day window (for orphan repositories), every
//! deployment and every request. A closed day's builds are kept as day facts; only the
//! newest day's files are kept per file, so the service reads just its new files at a refresh.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use buildcost_model::{DeploymentStatus, Exact, Prices};
use buildcost_store::{DataFile, Store, Table};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use xxhash_rust::xxh3::xxh3_128;

use super::{commit_key, Deployment, Facts, Request, RequestBuild, WindowBuild};
use crate::engine::Names;
use crate::snapshot::{floats, opt_str, strings, typed};
use crate::{Error, Result};

/// The build columns read.
const BUILD_COLUMNS: &[&str] = &[
    "event_id",
    "ingested_at",
    "finished_at",
    "team",
    "repository",
    "commit",
    "runner_class",
    "duration_s",
    "cpu_cores",
    "memory_gb",
    "gpus",
    "request_ids",
];

/// One build as read: its id and ingestion (to keep the first stored copy), its window form
/// and, when it carries request ids, its request form.
struct BuildRead {
    id: u128,
    ingested_at: i64,
    window: WindowBuild,
    request: Option<RequestBuild>,
}

/// One file as read, with the size and modification time it had.
struct FileRead<T> {
    size: u64,
    modified: i64,
    rows: Vec<T>,
}

/// One closed day of builds: the files it was made from and its facts.
struct BuildDay {
    print: Vec<(PathBuf, u64, i64)>,
    requests: Vec<RequestBuild>,
    /// Kept while the day can be in a 28-day window.
    window: Option<Vec<WindowBuild>>,
}

/// The store's delivery facts, read incrementally (see the module's header).
#[derive(Default)]
pub(crate) struct DeliveryReader {
    pub names: Names,
    build_days: BTreeMap<NaiveDate, BuildDay>,
    open_files: HashMap<PathBuf, FileRead<BuildRead>>,
    deployments: TableRows<Deployment>,
    requests: TableRows<Request>,
    /// The prices the build days were read with (a change reads them again).
    prices_key: String,
}

impl std::fmt::Debug for DeliveryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryReader")
            .field("build_days", &self.build_days.len())
            .field("deployments", &self.deployments.rows.len())
            .field("requests", &self.requests.rows.len())
            .finish()
    }
}

fn print_of(files: &[DataFile]) -> Vec<(PathBuf, u64, i64)> {
    files
        .iter()
        .map(|f| (f.path.clone(), f.size, f.modified))
        .collect()
}

fn times<'a>(
    b: &'a RecordBatch,
    name: &str,
) -> Result<&'a arrow::array::PrimitiveArray<TimestampMicrosecondType>> {
    typed(b, name, "timestamp", |c| {
        c.as_primitive_opt::<TimestampMicrosecondType>()
    })
}

/// The strings of row `i` of a list-of-strings column, interned.
fn id_list(
    list: Option<&arrow::array::ListArray>,
    i: usize,
    names: &mut Names,
) -> Result<Box<[u32]>> {
    let Some(list) = list else {
        return Ok(Box::new([]));
    };
    if list.is_null(i) {
        return Ok(Box::new([]));
    }
    let values = list.value(i);
    let values = values
        .as_string_opt::<i32>()
        .ok_or_else(|| Error::Shape("a list of ids is not a list of strings".into()))?;
    let mut ids: Vec<u32> = (0..values.len())
        .filter(|j| values.is_valid(*j))
        .map(|j| names.id(values.value(j)))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids.into_boxed_slice())
}

impl DeliveryReader {
    /// Whether the store holds any deployment or request: without them there is nothing to
    /// deliver, and the builds are not read.
    fn has_delivery_events(&self) -> bool {
        !self.deployments.files.is_empty() || !self.requests.files.is_empty()
    }

    /// Reads what changed and gives the facts stored before `at`. `by_day`: the build files
    /// of every day up to `at`'s, each day's sorted (the engine's listing of this snapshot).
    ///
    /// # Errors
    /// The store cannot be listed or a file cannot be read.
    pub fn facts(
        &mut self,
        store: &Store,
        by_day: &BTreeMap<NaiveDate, Vec<DataFile>>,
        prices: &Prices,
        prices_key: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Facts<'_>>> {
        let open = at.date_naive();
        let names = &mut self.names;
        self.deployments.read(
            store,
            Table::Deployments,
            open,
            names,
            read_deployments,
            |d| d.finished_at,
        )?;
        self.requests
            .read(store, Table::Requests, open, names, read_requests, |r| {
                r.requested_at
            })?;
        if !self.has_delivery_events() {
            return Ok(None);
        }
        if self.prices_key != prices_key {
            self.build_days.clear();
            self.open_files.clear();
            self.prices_key = prices_key.to_owned();
        }
        let window_first = (at - Duration::days(28)).date_naive();
        self.build_days
            .retain(|day, _| *day <= open && by_day.contains_key(day));
        let newest = by_day.range(..=open).next_back().map(|(day, _)| *day);
        for (day, files) in by_day.range(..=open) {
            let print = print_of(files);
            let in_window = *day >= window_first;
            let known = self.build_days.get_mut(day);
            match known {
                Some(d) if d.print == print && (!in_window || d.window.is_some()) => {
                    if !in_window {
                        d.window = None;
                    }
                    continue;
                }
                _ => {}
            }
            let facts =
                self.read_build_day(store, files, prices, in_window, Some(*day) == newest)?;
            self.build_days.insert(*day, facts);
        }

        let at_us = at.timestamp_micros();
        let start = (at - Duration::days(28)).timestamp_micros();
        let mut facts = Facts {
            names: &self.names,
            request_builds: Vec::new(),
            window_builds: Vec::new(),
            deployments: self
                .deployments
                .rows
                .iter()
                .filter(|d| d.finished_at < at_us)
                .collect(),
            requests: self
                .requests
                .rows
                .iter()
                .filter(|r| r.requested_at < at_us)
                .collect(),
        };
        for day in self.build_days.values() {
            facts
                .request_builds
                .extend(day.requests.iter().filter(|b| b.finished_at < at_us));
            if let Some(window) = &day.window {
                facts.window_builds.extend(
                    window
                        .iter()
                        .filter(|b| b.finished_at >= start && b.finished_at < at_us),
                );
            }
        }
        Ok(Some(facts))
    }

    /// Reads one day of builds (only its new files when it is the newest day) and keeps the
    /// first stored copy of each event id (by `ingested_at`, then `finished_at`, as the
    /// engine does).
    fn read_build_day(
        &mut self,
        store: &Store,
        files: &[DataFile],
        prices: &Prices,
        in_window: bool,
        newest: bool,
    ) -> Result<BuildDay> {
        let mut read: HashMap<PathBuf, FileRead<BuildRead>> = HashMap::new();
        for file in files {
            if let Some(known) = self.open_files.remove(&file.path) {
                if (known.size, known.modified) == (file.size, file.modified) {
                    read.insert(file.path.clone(), known);
                    continue;
                }
            }
            let mut rows = Vec::new();
            let names = &mut self.names;
            store.read_columns(file, BUILD_COLUMNS, &mut |batch| {
                read_builds(batch, names, prices, &mut rows)
                    .map_err(|e| Error::stored_file(file, &e))
            })?;
            read.insert(
                file.path.clone(),
                FileRead {
                    size: file.size,
                    modified: file.modified,
                    rows,
                },
            );
        }
        let mut first: HashMap<u128, &BuildRead> = HashMap::new();
        for file in files {
            for b in read.get(&file.path).map_or(&[][..], |f| f.rows.as_slice()) {
                first
                    .entry(b.id)
                    .and_modify(|kept| {
                        if (b.ingested_at, b.window.finished_at)
                            < (kept.ingested_at, kept.window.finished_at)
                        {
                            *kept = b;
                        }
                    })
                    .or_insert(b);
            }
        }
        let mut kept: Vec<&BuildRead> = first.into_values().collect();
        kept.sort_by_key(|b| (b.window.finished_at, b.id));
        let day = BuildDay {
            print: print_of(files),
            requests: kept.iter().filter_map(|b| b.request.clone()).collect(),
            window: in_window.then(|| kept.iter().map(|b| b.window).collect()),
        };
        if newest {
            self.open_files.extend(read);
        } else {
            self.open_files.clear();
        }
        Ok(day)
    }
}

/// The rows of a deployments' or requests' table: what each file held, and the first stored
/// copy of each event id, by instant.
struct TableRows<T> {
    files: HashMap<PathBuf, FileRead<(u128, i64, T)>>,
    rows: Vec<T>,
}

impl<T> Default for TableRows<T> {
    fn default() -> Self {
        TableRows {
            files: HashMap::new(),
            rows: Vec::new(),
        }
    }
}

impl<T: Clone> TableRows<T> {
    /// Reads `table`'s files up to the day `open` not read yet, forgets those gone, and keeps
    /// the rows again when anything changed.
    fn read(
        &mut self,
        store: &Store,
        table: Table,
        open: NaiveDate,
        names: &mut Names,
        read: RowReader<(u128, i64, T)>,
        instant: fn(&T) -> i64,
    ) -> Result<()> {
        let files: Vec<DataFile> = store
            .list_table(table)?
            .into_iter()
            .filter(|f| f.day <= open)
            .collect();
        let schema = match table {
            Table::Deployments => buildcost_model::deployment_schema(),
            _ => buildcost_model::request_schema(),
        };
        let columns = column_names(&schema);
        if refresh(&mut self.files, store, &files, &columns, names, read)? {
            self.rows = first_copies(&self.files, &files, instant);
        }
        Ok(())
    }
}

type RowReader<T> = fn(&RecordBatch, &mut Names, &mut Vec<T>) -> Result<()>;

/// Reads the files of `files` not read yet, forgets those gone; whether anything changed.
fn refresh<T>(
    cache: &mut HashMap<PathBuf, FileRead<T>>,
    store: &Store,
    files: &[DataFile],
    columns: &[String],
    names: &mut Names,
    read: RowReader<T>,
) -> Result<bool> {
    let before = cache.len();
    cache.retain(|path, _| files.iter().any(|f| &f.path == path));
    let mut changed = cache.len() != before;
    for file in files {
        if cache
            .get(&file.path)
            .is_some_and(|k| (k.size, k.modified) == (file.size, file.modified))
        {
            continue;
        }
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let mut rows = Vec::new();
        store.read_columns(file, &columns, &mut |batch| {
            read(batch, names, &mut rows).map_err(|e| Error::stored_file(file, &e))
        })?;
        cache.insert(
            file.path.clone(),
            FileRead {
                size: file.size,
                modified: file.modified,
                rows,
            },
        );
        changed = true;
    }
    Ok(changed)
}

/// Every column of a table (deployments and requests are read whole).
fn column_names(schema: &arrow::datatypes::Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// The first stored copy of each event id of each day (by `ingested_at`, then the instant).
fn first_copies<T: Clone>(
    cache: &HashMap<PathBuf, FileRead<(u128, i64, T)>>,
    files: &[DataFile],
    instant: impl Fn(&T) -> i64,
) -> Vec<T> {
    let mut first: HashMap<(NaiveDate, u128), &(u128, i64, T)> = HashMap::new();
    for file in files {
        for row in cache.get(&file.path).map_or(&[][..], |f| f.rows.as_slice()) {
            first
                .entry((file.day, row.0))
                .and_modify(|kept| {
                    if (row.1, instant(&row.2)) < (kept.1, instant(&kept.2)) {
                        *kept = row;
                    }
                })
                .or_insert(row);
        }
    }
    let mut rows: Vec<&(u128, i64, T)> = first.into_values().collect();
    rows.sort_by_key(|r| (instant(&r.2), r.0));
    rows.into_iter().map(|r| r.2.clone()).collect()
}

fn read_builds(
    b: &RecordBatch,
    names: &mut Names,
    prices: &Prices,
    out: &mut Vec<BuildRead>,
) -> Result<()> {
    let text = |name: &str| strings(b, name);
    let (event_id, team, repository, commit, runner) = (
        text("event_id")?,
        text("team")?,
        text("repository")?,
        text("commit")?,
        text("runner_class")?,
    );
    let (ingested_at, finished_at) = (times(b, "ingested_at")?, times(b, "finished_at")?);
    let (duration, cpu, memory) = (
        floats(b, "duration_s")?,
        floats(b, "cpu_cores")?,
        floats(b, "memory_gb")?,
    );
    let gpus = typed(b, "gpus", "BIGINT", |c| c.as_primitive_opt::<Int64Type>())?;
    let request_ids = b
        .column_by_name("request_ids")
        .and_then(|c| c.as_list_opt::<i32>());
    let opt_f = |a: &arrow::array::Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
    for i in 0..b.num_rows() {
        let cost = Exact::from_f64(prices.cost(
            runner.value(i),
            duration.value(i),
            opt_f(cpu, i),
            opt_f(memory, i),
            gpus.is_valid(i).then(|| gpus.value(i)),
        ));
        let repo = names.id(repository.value(i));
        let ids = id_list(request_ids, i, names)?;
        let request = (!ids.is_empty()).then(|| RequestBuild {
            finished_at: finished_at.value(i),
            cost,
            repository: repo,
            commit: opt_str(commit, i).map(commit_key),
            request_ids: ids,
        });
        out.push(BuildRead {
            id: xxh3_128(event_id.value(i).as_bytes()),
            ingested_at: ingested_at.value(i),
            window: WindowBuild {
                finished_at: finished_at.value(i),
                repository: repo,
                team: names.id(team.value(i)),
                cost,
            },
            request,
        });
    }
    Ok(())
}

fn read_deployments(
    b: &RecordBatch,
    names: &mut Names,
    out: &mut Vec<(u128, i64, Deployment)>,
) -> Result<()> {
    let text = |name: &str| strings(b, name);
    let (event_id, repository, commit, environment, team, product, status) = (
        text("event_id")?,
        text("repository")?,
        text("commit")?,
        text("environment")?,
        text("team")?,
        text("product")?,
        text("status")?,
    );
    let (ingested_at, finished_at) = (times(b, "ingested_at")?, times(b, "finished_at")?);
    let ids = b
        .column_by_name("correlation_ids")
        .and_then(|c| c.as_list_opt::<i32>());
    for i in 0..b.num_rows() {
        let status = DeploymentStatus::parse(status.value(i)).ok_or_else(|| {
            Error::Shape(format!(
                "unknown deployment status `{}` in the store",
                status.value(i)
            ))
        })?;
        out.push((
            xxh3_128(event_id.value(i).as_bytes()),
            ingested_at.value(i),
            Deployment {
                event_id: event_id.value(i).to_owned(),
                finished_at: finished_at.value(i),
                repository: names.id(repository.value(i)),
                commit: commit_key(commit.value(i)),
                environment: environment.value(i).to_owned(),
                team: team.value(i).to_owned(),
                product: product.value(i).to_owned(),
                status,
                correlation_ids: id_list(ids, i, names)?,
            },
        ));
    }
    Ok(())
}

fn read_requests(
    b: &RecordBatch,
    names: &mut Names,
    out: &mut Vec<(u128, i64, Request)>,
) -> Result<()> {
    let (event_id, id) = (strings(b, "event_id")?, strings(b, "correlation_id")?);
    let (ingested_at, requested_at) = (times(b, "ingested_at")?, times(b, "requested_at")?);
    for i in 0..b.num_rows() {
        out.push((
            xxh3_128(event_id.value(i).as_bytes()),
            ingested_at.value(i),
            Request {
                request_id: names.id(id.value(i)),
                requested_at: requested_at.value(i),
            },
        ));
    }
    Ok(())
}
