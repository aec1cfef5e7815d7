//! The figures engine: every command's figures (the service's gauges, `metrics --at`, the
//! weekly reports, the FOCUS export) from days of builds priced and classified once.
//!
//! A day is read from its Parquet files once, priced with [`buildcost_model::Prices`] and
//! classified with [`buildcost_model::WasteClass::of_build`] — the functions the SQL views call
//! — and kept as a few thousand exact sums ([`day::DayRollup`]). Figures at an instant sum the
//! days of their windows and apply the team rules of [`crate::peer`]; only a day a window cuts
//! through is read row by row.
//!
//! `duplicate` is the one class that depends on other days: a day's first success of a
//! (repository, pipeline, commit) is a duplicate when an earlier stored day has a success of
//! it. Each day keeps its success keys (8 bytes each); the days before a window are summed up
//! in one sorted list of them, and the window's days are resolved in date order. A day whose
//! files change (a late event, a replay) is read again, and the days after it are resolved
//! again when its keys changed.
//!
//! An engine kept by the service ([`Engine::snapshot`] at every refresh) reads only what
//! changed since the last call: the open day's new files, a day that closed. An engine made
//! [`persisting`](Engine::persisting) also keeps each closed day's rollup in the store
//! (`_rollups/`, rebuilt when the day's files change), so a cold start or a report over a year
//! reads totals, not every row. Sums are integers of 10⁻¹² € ([`buildcost_model::Exact`]): the
//! same store and instant give the same figures to the last bit, however the work was split.

mod day;
mod persist;
mod window;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use buildcost_model::{Prices, WasteClass};
use buildcost_store::{DataFile, Store};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use day::{Classified, DayReader, DayRollup, Row};
use window::{team_key, DayView, RowsView, TeamKey, TeamSums};

use crate::{QuerySettings, Result, Snapshot};

/// What was done by one [`Engine::snapshot`], for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshWork {
    /// Closed days whose builds were classified: read from their files, or resolved again
    /// because the success keys of an earlier day changed.
    pub days_classified: usize,
    /// Unchanged closed days read again for their rows, because a window now starts inside
    /// them.
    pub days_reread: usize,
    /// Closed days taken from their rollup in the store instead of their files.
    pub days_loaded: usize,
    /// Whether the success keys of the days before the window were read again.
    pub history_rescanned: bool,
}

/// The names of teams, products, repositories, … as small numbers, for the life of an engine.
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
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// The name of `id`.
    pub(crate) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }
}

/// One closed day of the window, in the engine's numbers.
#[derive(Debug)]
struct Day {
    fingerprint: u64,
    rollup: DayRollup,
    /// Per candidate: whether an earlier day has its key.
    repeats: Vec<bool>,
    /// The whole day by team key, `repeats` applied.
    totals: Vec<(TeamKey, TeamSums)>,
    /// Kept only while a window starts inside the day.
    rows: Option<Vec<Row>>,
    /// Whether `repeats` and `totals` are current.
    resolved: bool,
}

/// Figures of one store, from days classified once. Keep one per process: the service calls
/// [`Engine::snapshot`] at each refresh and pays only for what changed.
#[derive(Debug, Default)]
pub struct Engine {
    /// The settings the cache was built with.
    settings_key: String,
    /// Whether closed days' rollups are kept in (and read from) the store.
    persist: bool,
    names: Names,
    /// Success keys of every stored day before the window's first, sorted, distinct.
    older: Vec<u64>,
    /// The files of those days, summed up.
    older_fingerprint: Option<u64>,
    /// The closed days of the window.
    days: BTreeMap<NaiveDate, Day>,
    /// Success keys of every closed day of the window (for the open day's candidates);
    /// `None` after a closed day changed.
    closed_keys: Option<HashSet<u64>>,
    /// The open day's files as read.
    open: DayReader,
    open_day: Option<NaiveDate>,
    last: RefreshWork,
    /// Every team's size at the last snapshot, small teams included.
    sizes: BTreeMap<String, u64>,
}

impl std::fmt::Debug for DayReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DayReader")
    }
}

/// The name the service's first engine had; kept for library users.
pub type Incremental = Engine;

impl Engine {
    /// An engine that keeps everything in memory and writes nothing to the store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same engine, also keeping each closed day's rollup in the store and reading it
    /// back instead of the day's files while they do not change (see the module docs).
    #[must_use]
    pub fn persisting(mut self) -> Self {
        self.persist = true;
        self
    }

    /// What the last snapshot did.
    pub fn last_work(&self) -> RefreshWork {
        self.last
    }

    /// The size of `team` at the last snapshot, if it had builds in its 28 days (also for a
    /// team below the minimum size, which the snapshot shows only merged).
    pub fn team_size(&self, team: &str) -> Option<u64> {
        self.sizes.get(team).copied()
    }

    /// The snapshot of `store` at `at`: the figures of the SQL views ([`Snapshot::of_store`]).
    ///
    /// # Errors
    /// The store cannot be listed or read.
    pub async fn snapshot(
        &mut self,
        store: &Store,
        settings: &QuerySettings,
        at: DateTime<Utc>,
    ) -> Result<Snapshot> {
        self.snapshot_now(store, settings, at)
    }

    /// [`Engine::snapshot`], on the calling thread (and rayon's).
    ///
    /// # Errors
    /// The store cannot be listed or read.
    pub fn snapshot_now(
        &mut self,
        store: &Store,
        settings: &QuerySettings,
        at: DateTime<Utc>,
    ) -> Result<Snapshot> {
        let mut work = RefreshWork::default();
        let settings_key = format!("{settings:?}");
        if settings_key != self.settings_key {
            *self = Engine {
                settings_key,
                persist: self.persist,
                ..Engine::default()
            };
        }
        let prices = Prices::new(&settings.pricing);
        let prices_hash = persist::prices_hash(&settings.pricing);
        let first = (at - settings.history()).date_naive();
        let open = at.date_naive();
        let today = Utc::now().date_naive();

        let mut by_day: BTreeMap<NaiveDate, Vec<DataFile>> = BTreeMap::new();
        for f in store.list_files()? {
            if f.day <= open {
                by_day.entry(f.day).or_default().push(f);
            }
        }
        for files in by_day.values_mut() {
            files.sort();
        }
        let fingerprints: BTreeMap<NaiveDate, u64> = by_day
            .range(..open)
            .map(|(day, files)| (*day, fingerprint(files)))
            .collect();

        // An instant earlier than the last one: days from the open one on are no longer closed.
        if self.days.range(open..).next().is_some() {
            self.days.retain(|day, _| *day < open);
            self.closed_keys = None;
        }
        // Days that slid out of the window: their keys join the older ones.
        let gone: Vec<NaiveDate> = self.days.range(..first).map(|(d, _)| *d).collect();
        for day in gone {
            if let Some(d) = self.days.remove(&day) {
                let keys: Vec<u64> = d.rollup.candidates.iter().map(|c| c.key).collect();
                self.older = merge(&self.older, &keys);
                self.older_fingerprint = self
                    .older_fingerprint
                    .map(|f| f.wrapping_add(day_print(day, d.fingerprint)));
                self.closed_keys = None;
            }
        }
        let older_now = fingerprints
            .range(..first)
            .fold(0u64, |acc, (day, f)| acc.wrapping_add(day_print(*day, *f)));
        let mut resolve_from: Option<NaiveDate> = None;
        if self.older_fingerprint != Some(older_now) {
            self.older = self.older_keys(store, &by_day, &fingerprints, first)?;
            self.older_fingerprint = Some(older_now);
            work.history_rescanned = true;
            resolve_from = Some(first);
        }

        // Closed days of the window: load the new and changed ones (in parallel), read again
        // for their rows those a window now starts in.
        let cut = cut_days(at, settings);
        let mut wanted: Vec<(NaiveDate, u64, bool)> = Vec::new();
        let mut day = first;
        while day < open {
            let print = fingerprints.get(&day).copied().unwrap_or(0);
            let rows = cut.contains(&day);
            match self.days.get_mut(&day) {
                Some(d) if d.fingerprint == print => {
                    if rows && d.rows.is_none() {
                        wanted.push((day, print, true));
                    } else if !rows {
                        d.rows = None;
                    }
                }
                _ => wanted.push((day, print, rows)),
            }
            day = day.succ_opt().unwrap_or(open);
        }
        let persist = self.persist;
        let loaded: Vec<(NaiveDate, u64, Loaded)> = wanted
            .par_iter()
            .map(|(day, print, rows)| {
                let files = by_day.get(day).map_or(&[][..], Vec::as_slice);
                let loaded = load_day(
                    store,
                    files,
                    &prices,
                    *day,
                    *print,
                    *rows,
                    persist,
                    prices_hash,
                    today,
                )?;
                Ok((*day, *print, loaded))
            })
            .collect::<Result<_>>()?;
        for (day, print, loaded) in loaded {
            let rows_only = self.days.get(&day).is_some_and(|d| d.fingerprint == print);
            if rows_only {
                work.days_reread += 1;
                if let (Some(d), Loaded::Read(c)) = (self.days.get_mut(&day), loaded) {
                    d.rows = Some(c.rows);
                }
                continue;
            }
            let (rollup, rows) = match loaded {
                Loaded::Read(c) => {
                    work.days_classified += 1;
                    (c.rollup, Some(c.rows))
                }
                Loaded::Stored(r) => {
                    work.days_loaded += 1;
                    (r, None)
                }
            };
            let rollup = intern(&mut self.names, rollup);
            let keys_changed = self
                .days
                .get(&day)
                .is_none_or(|d| !same_keys(&d.rollup, &rollup));
            let changed_from = if keys_changed {
                day
            } else {
                day.succ_opt().unwrap_or(day)
            };
            resolve_from = Some(resolve_from.map_or(changed_from, |r| r.min(changed_from)));
            self.days.insert(
                day,
                Day {
                    fingerprint: print,
                    repeats: Vec::new(),
                    totals: Vec::new(),
                    rows: rows.filter(|_| cut.contains(&day)),
                    rollup,
                    resolved: false,
                },
            );
            self.closed_keys = None;
        }

        // Resolve the window's closed days in date order: each against the older keys and the
        // keys of the window's days before it.
        if self.closed_keys.is_none() || resolve_from.is_some() {
            let mut seen: HashSet<u64> = HashSet::new();
            let mut resolved_again = 0;
            for (day, d) in &mut self.days {
                let again = d.resolved && resolve_from.is_some_and(|r| *day >= r);
                if again || !d.resolved {
                    resolved_again += usize::from(again);
                    d.repeats = d
                        .rollup
                        .candidates
                        .iter()
                        .map(|c| self.older.binary_search(&c.key).is_ok() || seen.contains(&c.key))
                        .collect();
                    d.totals = team_totals(&d.rollup, &d.repeats);
                    d.resolved = true;
                }
                seen.extend(d.rollup.candidates.iter().map(|c| c.key));
            }
            work.days_classified += resolved_again;
            self.closed_keys = Some(seen);
        }

        // The open day, every time: its new files read, classified, resolved.
        if self.open_day != Some(open) {
            self.open = DayReader::default();
            self.open_day = Some(open);
        }
        // At midnight the open day holds nothing before `at`: its files need no reading.
        let open_files = if at.time() == NaiveTime::MIN {
            &[][..]
        } else {
            by_day.get(&open).map_or(&[][..], Vec::as_slice)
        };
        self.open.read(store, open_files, &prices)?;
        let today_classified = self.open.classify(open_files);
        let open_rollup = intern(&mut self.names, today_classified.rollup);
        let closed_keys = self.closed_keys.as_ref();
        let open_repeats: Vec<bool> = open_rollup
            .candidates
            .iter()
            .map(|c| {
                self.older.binary_search(&c.key).is_ok()
                    || closed_keys.is_some_and(|k| k.contains(&c.key))
            })
            .collect();
        let open_totals = team_totals(&open_rollup, &open_repeats);

        let mut views: Vec<DayView<'_>> = self
            .days
            .iter()
            .map(|(day, d)| DayView {
                day: *day,
                totals: &d.totals,
                authors: &d.rollup.authors,
                rows: d.rows.as_deref().map(|rows| RowsView {
                    rows,
                    cells: &d.rollup.cells,
                    repeats: &d.repeats,
                }),
            })
            .collect();
        views.push(DayView {
            day: open,
            totals: &open_totals,
            authors: &open_rollup.authors,
            rows: Some(RowsView {
                rows: &today_classified.rows,
                cells: &open_rollup.cells,
                repeats: &open_repeats,
            }),
        });
        let (snapshot, sizes) = window::snapshot(at, settings, &self.names, &views)?;
        self.last = work;
        self.sizes = sizes;
        Ok(snapshot)
    }

    /// What the weekly report lists of the closed days `[from, to)` of the last snapshot's
    /// window: each team's pipelines and avoidable failures by category, and the builds of
    /// runner classes missing from the price table.
    ///
    /// # Errors
    /// A day of the range is not in the window of the last snapshot (a bug of the caller).
    pub fn detail(
        &self,
        settings: &QuerySettings,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Detail> {
        let prices = Prices::new(&settings.pricing);
        let mut pipelines: BTreeMap<(u32, u32, u32), (TeamSums, TeamSums)> = BTreeMap::new();
        let mut categories: BTreeMap<(u32, u32), u64> = BTreeMap::new();
        let mut unpriced = TeamSums::default();
        let mut day = from;
        while day < to {
            let d = self.days.get(&day).ok_or_else(|| {
                crate::Error::Shape(format!(
                    "{day} is not a closed day of the last snapshot's window (a bug)"
                ))
            })?;
            {
                for p in &d.rollup.pipelines {
                    let e = pipelines
                        .entry((p.team, p.repository, p.pipeline))
                        .or_default();
                    e.0.builds += p.all.builds;
                    e.0.cost += p.all.cost;
                    e.1.builds += p.avoidable.builds;
                    e.1.cost += p.avoidable.cost;
                }
                for (team, category, n) in &d.rollup.categories {
                    *categories.entry((*team, *category)).or_default() += n;
                }
                for c in &d.rollup.cells {
                    if !prices.is_priced(self.names.name(c.key.runner_class)) {
                        unpriced.builds += c.sums.builds;
                        unpriced.cost += c.sums.cost;
                    }
                }
            }
            day = day.succ_opt().unwrap_or(to);
        }
        let name = |id: u32| self.names.name(id).to_owned();
        let mut out = Detail {
            unpriced_builds: unpriced.builds,
            unpriced_cost_eur: unpriced.cost.to_f64(),
            ..Detail::default()
        };
        for ((team, repository, pipeline), (all, avoidable)) in pipelines {
            out.pipelines
                .entry(name(team))
                .or_default()
                .push(PipelineTotal {
                    repository: name(repository),
                    pipeline: name(pipeline),
                    builds: all.builds,
                    cost_eur: all.cost.to_f64(),
                    avoidable_failures: avoidable.builds,
                    avoidable_eur: avoidable.cost.to_f64(),
                });
        }
        for ((team, category), n) in categories {
            out.categories
                .entry(name(team))
                .or_default()
                .insert(name(category), n);
        }
        for lines in out.pipelines.values_mut() {
            lines.sort_by(|a, b| (&a.repository, &a.pipeline).cmp(&(&b.repository, &b.pipeline)));
        }
        Ok(out)
    }

    /// The success keys of every day before `first`, sorted and distinct: from their stored
    /// key lists where they are current, else from their files.
    fn older_keys(
        &self,
        store: &Store,
        by_day: &BTreeMap<NaiveDate, Vec<DataFile>>,
        fingerprints: &BTreeMap<NaiveDate, u64>,
        first: NaiveDate,
    ) -> Result<Vec<u64>> {
        let days: Vec<(&NaiveDate, &Vec<DataFile>)> = by_day.range(..first).collect();
        let persist = self.persist;
        let today = Utc::now().date_naive();
        let lists: Vec<Vec<u64>> = days
            .par_iter()
            .map(|(day, files)| {
                let print = fingerprints.get(day).copied().unwrap_or(0);
                if persist {
                    if let Some(keys) = persist::read_keys(store, **day, print) {
                        return Ok(keys);
                    }
                }
                let keys = day::success_keys(store, files)?;
                if persist && **day < today && !files.is_empty() {
                    persist::write_keys(store, **day, print, &keys);
                }
                Ok(keys)
            })
            .collect::<Result<_>>()?;
        let mut keys: Vec<u64> = lists.concat();
        keys.par_sort_unstable();
        keys.dedup();
        Ok(keys)
    }
}

/// One pipeline of a team over some days (by name, never who ran it).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PipelineTotal {
    pub repository: String,
    pub pipeline: String,
    pub builds: u64,
    pub cost_eur: f64,
    pub avoidable_failures: u64,
    pub avoidable_eur: f64,
}

/// What [`Engine::detail`] gives: by team name (every team, small ones too: the caller
/// decides what may be shown).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detail {
    /// Each team's pipelines, sorted by (repository, pipeline).
    pub pipelines: BTreeMap<String, Vec<PipelineTotal>>,
    /// Each team's avoidable failures by failure category.
    pub categories: BTreeMap<String, BTreeMap<String, u64>>,
    /// Builds whose runner class is not in the price table (priced at the default).
    pub unpriced_builds: u64,
    pub unpriced_cost_eur: f64,
}

/// A closed day as loaded: classified from its files, or its stored rollup.
enum Loaded {
    Read(Classified),
    Stored(DayRollup),
}

/// Loads one closed day: its stored rollup when current (and its rows are not needed), else
/// its files, classified (and stored, for a day that is over).
#[allow(clippy::too_many_arguments)]
fn load_day(
    store: &Store,
    files: &[DataFile],
    prices: &Prices,
    day: NaiveDate,
    print: u64,
    rows: bool,
    persist: bool,
    prices_hash: u64,
    today: NaiveDate,
) -> Result<Loaded> {
    if persist && !rows {
        if let Some(rollup) = persist::read_rollup(store, day, print, prices_hash) {
            return Ok(Loaded::Stored(rollup));
        }
    }
    let classified = day::classify(store, files, prices)?;
    if persist && day < today && !files.is_empty() {
        persist::write(store, day, print, prices_hash, &classified.rollup);
    }
    Ok(Loaded::Read(classified))
}

/// Whether two rollups of a day have the same success keys.
fn same_keys(a: &DayRollup, b: &DayRollup) -> bool {
    a.candidates.len() == b.candidates.len()
        && a.candidates
            .iter()
            .zip(&b.candidates)
            .all(|(x, y)| x.key == y.key)
}

/// A rollup in the engine's numbers (its own names interned).
fn intern(names: &mut Names, mut rollup: DayRollup) -> DayRollup {
    let ids: Vec<u32> = rollup.names.iter().map(|n| names.id(n)).collect();
    let id = |n: u32| ids.get(n as usize).copied().unwrap_or(u32::MAX);
    for c in &mut rollup.cells {
        let k = &mut c.key;
        (k.team, k.product, k.source, k.repository, k.runner_class) = (
            id(k.team),
            id(k.product),
            id(k.source),
            id(k.repository),
            id(k.runner_class),
        );
    }
    for p in &mut rollup.pipelines {
        (p.team, p.repository, p.pipeline) = (id(p.team), id(p.repository), id(p.pipeline));
    }
    for c in &mut rollup.categories {
        (c.0, c.1) = (id(c.0), id(c.1));
    }
    for a in &mut rollup.authors {
        a.0 = id(a.0);
    }
    rollup.authors.sort_unstable();
    rollup.names.clear();
    rollup
}

/// A day's builds by team key, its candidates that repeat an earlier day moved to
/// `duplicate`.
fn team_totals(rollup: &DayRollup, repeats: &[bool]) -> Vec<(TeamKey, TeamSums)> {
    let mut out: HashMap<TeamKey, TeamSums> = HashMap::new();
    for cell in &rollup.cells {
        let e = out.entry(team_key(cell, false)).or_default();
        e.builds += cell.sums.builds;
        e.cost += cell.sums.cost;
    }
    for (c, repeat) in rollup.candidates.iter().zip(repeats) {
        let Some(cell) = rollup.cells.get(c.cell as usize).filter(|_| *repeat) else {
            continue;
        };
        let from = out.entry(team_key(cell, false)).or_default();
        from.builds = from.builds.saturating_sub(c.sums.builds);
        from.cost -= c.sums.cost;
        let to = out.entry(team_key(cell, true)).or_default();
        to.builds += c.sums.builds;
        to.cost += c.sums.cost;
    }
    let mut out: Vec<(TeamKey, TeamSums)> = out
        .into_iter()
        .filter(|(_, s)| s.builds > 0 || s.cost != buildcost_model::Exact::ZERO)
        .collect();
    out.sort_unstable_by_key(|(k, _)| *k);
    debug_assert!(out
        .iter()
        .all(|(k, _)| WasteClass::from_index(k.3).is_some()));
    out
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

/// A day's files, by name, size and modification time.
fn fingerprint(files: &[DataFile]) -> u64 {
    let mut text = String::new();
    for f in files {
        text.push_str(&format!("{}\t{}\t{}\n", f.name(), f.size, f.modified));
    }
    xxh3_64(text.as_bytes())
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
