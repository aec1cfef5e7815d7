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

use buildcost_model::Prices;
use buildcost_store::{DataFile, Store};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use day::{Candidate, Classified, DayReader, DayRollup, Row};
use window::{team_key, DayView, RowsView, TeamKey, TeamSums};

use crate::delivery::{self, read::DeliveryReader};
use crate::{QuerySettings, Result, RowOf, Snapshot, TeamInfo};

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
    /// The day's distinct success keys, sorted.
    keys: Vec<u64>,
    /// Candidates whose sums are known: every one when `complete` (the day was classified
    /// from its files here), else those its stored rollup kept (the ones that repeated an
    /// earlier day when it was made). Sorted by key.
    candidates: Vec<Candidate>,
    complete: bool,
    /// Per candidate: whether an earlier day has its key (set by the resolution).
    repeats: Vec<bool>,
    /// The day by team key, every candidate as `none`.
    base: Vec<(TeamKey, TeamSums)>,
    /// The repeating candidates' sums, by the team key they leave for `duplicate`.
    moves: Vec<(TeamKey, TeamSums)>,
    authors: Vec<(u32, u64)>,
    /// Builds of runner classes missing from the price table.
    unpriced: TeamSums,
    /// The fine cells, pipelines and categories: kept while the day's rollup is still to be
    /// stored, while a window cuts the day (its rows point at its cells), and for days a
    /// report lists ([`Engine::detail`]).
    detail: Option<DayRollup>,
    /// Kept only while a window starts inside the day.
    rows: Option<Vec<Row>>,
    /// Whether `repeats` and `moves` are current.
    resolved: bool,
    /// Whether the rollup in the store matches this day (files, prices, repeats).
    stored: bool,
}

impl Day {
    fn new(fingerprint: u64, names: &mut Names, prices: &Prices, loaded: Loaded) -> Day {
        let (rollup, keys, candidates, complete, rows, stored) = match loaded {
            Loaded::Read(c) => {
                let keys = c.candidates.iter().map(|x| x.key).collect();
                (c.rollup, keys, c.candidates, true, Some(c.rows), false)
            }
            Loaded::Stored(rollup, keys) => {
                let candidates = rollup.repeats.clone();
                (rollup, keys, candidates, false, None, true)
            }
        };
        let (mut rollup, ids) = intern(names, rollup);
        let candidates = candidates
            .into_iter()
            .map(|mut c| {
                remap_cell(&mut c.cell, &ids);
                c
            })
            .collect::<Vec<_>>();
        rollup.repeats.clear();
        let mut base: HashMap<TeamKey, TeamSums> = HashMap::new();
        let mut unpriced = TeamSums::default();
        for cell in &rollup.cells {
            let e = base.entry(team_key(&cell.key, false)).or_default();
            e.builds += cell.sums.builds;
            e.cost += cell.sums.cost;
            if !prices.is_priced(names.name(cell.key.runner_class)) {
                unpriced.builds += cell.sums.builds;
                unpriced.cost += cell.sums.cost;
            }
        }
        let mut base: Vec<(TeamKey, TeamSums)> = base.into_iter().collect();
        base.sort_unstable_by_key(|(k, _)| *k);
        Day {
            fingerprint,
            keys,
            repeats: vec![false; candidates.len()],
            candidates,
            complete,
            base,
            moves: Vec::new(),
            authors: std::mem::take(&mut rollup.authors),
            unpriced,
            detail: Some(rollup),
            rows,
            resolved: false,
            stored,
        }
    }

    /// Resolves the day's candidates: a key repeats when it is in `older` (sorted) or
    /// `earlier` says so. `false` when a key repeats whose candidate's sums are not known
    /// (the day must be read from its files again).
    fn resolve(&mut self, older: &[u64], earlier: impl Fn(u64) -> bool) -> bool {
        let mut moves: HashMap<TeamKey, TeamSums> = HashMap::new();
        let mut flags = vec![false; self.candidates.len()];
        let in_older = present(&self.keys, older);
        for (key, old) in self.keys.iter().zip(in_older) {
            if !old && !earlier(*key) {
                continue;
            }
            let Ok(i) = self.candidates.binary_search_by_key(key, |c| c.key) else {
                return false;
            };
            flags[i] = true;
            let c = &self.candidates[i];
            let e = moves.entry(team_key(&c.cell, false)).or_default();
            e.builds += c.sums.builds;
            e.cost += c.sums.cost;
        }
        let mut moves: Vec<(TeamKey, TeamSums)> = moves.into_iter().collect();
        moves.sort_unstable_by_key(|(k, _)| *k);
        self.moves = moves;
        self.repeats = flags;
        self.resolved = true;
        true
    }

    /// The repeating candidates, for the stored rollup.
    fn repeating(&self) -> Vec<Candidate> {
        self.candidates
            .iter()
            .zip(&self.repeats)
            .filter(|(_, r)| **r)
            .map(|(c, _)| *c)
            .collect()
    }

    /// Drops what the day no longer needs: every candidate but the repeating ones (once no
    /// rows point at them), and the detail (once stored when `persist`, unless wanted).
    fn compact(&mut self, keep_detail: bool, persist: bool) {
        if self.rows.is_none() && self.complete {
            self.candidates = self.repeating();
            self.repeats = vec![true; self.candidates.len()];
            self.complete = false;
        }
        if !keep_detail && self.rows.is_none() && (self.stored || !persist) {
            self.detail = None;
        }
    }
}

/// Figures of one store, from days classified once. Keep one per process: the service calls
/// [`Engine::snapshot`] at each refresh and pays only for what changed.
#[derive(Debug, Default)]
pub struct Engine {
    /// The settings the cache was built with.
    settings_key: String,
    /// Whether closed days' rollups are kept in (and read from) the store.
    persist: bool,
    /// Days whose pipelines and categories are kept for [`Engine::detail`].
    detail_days: Option<(NaiveDate, NaiveDate)>,
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
    sizes: BTreeMap<String, TeamInfo>,
    /// What the delivery figures read (deployments, requests, builds with request ids).
    delivery: DeliveryReader,
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

    /// Keeps, for the closed days `[from, to)`, what [`Engine::detail`] lists (pipelines,
    /// avoidable failures by category). Other days keep sums only.
    pub fn keep_detail(&mut self, from: NaiveDate, to: NaiveDate) {
        self.detail_days = Some((from, to));
    }

    /// What the last snapshot did.
    pub fn last_work(&self) -> RefreshWork {
        self.last
    }

    /// Every team of the last snapshot (builds in its 28 days) with its product and size,
    /// small teams included: what the small-team placement ([`crate::RowOf`]) reads.
    pub fn teams(&self) -> BTreeMap<String, TeamInfo> {
        self.sizes.clone()
    }

    /// The size of `team` at the last snapshot, if it had builds in its 28 days (also for a
    /// team below the minimum size, which the snapshot shows only merged).
    pub fn team_size(&self, team: &str) -> Option<u64> {
        self.sizes.get(team).map(|t| t.developers)
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
                detail_days: self.detail_days,
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
        // Merged among themselves first, then into the older keys once: a window moving by a
        // month (the FOCUS export) costs one pass over the history, not one a day.
        let gone: Vec<NaiveDate> = self.days.range(..first).map(|(d, _)| *d).collect();
        let mut gone_keys = Vec::new();
        for day in gone {
            if let Some(d) = self.days.remove(&day) {
                gone_keys.push(d.keys);
                self.older_fingerprint = self
                    .older_fingerprint
                    .map(|f| f.wrapping_add(day_print(day, d.fingerprint)));
                self.closed_keys = None;
            }
        }
        if !gone_keys.is_empty() {
            self.older = merge(&self.older, &merge_all(gone_keys));
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
                    } else if !rows && d.rows.is_some() {
                        d.rows = None;
                    }
                }
                _ => wanted.push((day, print, rows)),
            }
            day = day.succ_opt().unwrap_or(open);
        }
        let persist = self.persist;
        let load =
            |(day, print, rows): &(NaiveDate, u64, bool)| -> Result<(NaiveDate, u64, Loaded)> {
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
                )?;
                Ok((*day, *print, loaded))
            };
        let loaded: Vec<(NaiveDate, u64, Loaded)> =
            wanted.par_iter().map(load).collect::<Result<_>>()?;
        // Days whose builds were classified by this snapshot, each counted once.
        let mut classified: BTreeSet<NaiveDate> = BTreeSet::new();
        for (day, print, loaded) in loaded {
            let again = self.days.get(&day).is_some_and(|d| d.fingerprint == print);
            match &loaded {
                Loaded::Read(_) if again => work.days_reread += 1,
                Loaded::Read(_) => {
                    classified.insert(day);
                }
                Loaded::Stored(..) => work.days_loaded += 1,
            }
            let mut fresh = Day::new(print, &mut self.names, &prices, loaded);
            fresh.rows = fresh.rows.take().filter(|_| cut.contains(&day));
            if again {
                // The same files read again for their rows: nothing changed for later days.
                if let Some(old) = self.days.get(&day) {
                    fresh.stored = old.stored;
                }
            } else {
                let keys_changed = self.days.get(&day).is_none_or(|d| d.keys != fresh.keys);
                let changed_from = if keys_changed {
                    day
                } else {
                    day.succ_opt().unwrap_or(day)
                };
                resolve_from = Some(resolve_from.map_or(changed_from, |r| r.min(changed_from)));
                self.closed_keys = None;
            }
            self.days.insert(day, fresh);
        }

        // Resolve the window's closed days in date order: each against the older keys and the
        // keys of the window's days before it. A day whose newly repeating key's sums are not
        // known (its stored rollup predates a late event) is read from its files, then again.
        let mut first_pass = true;
        loop {
            let pending = self.days.values().any(|d| !d.resolved);
            if self.closed_keys.is_some() && resolve_from.is_none() && !pending {
                break;
            }
            let mut seen: HashSet<u64> = HashSet::new();
            let mut unknown: Vec<(NaiveDate, u64)> = Vec::new();
            for (day, d) in &mut self.days {
                let again = d.resolved && resolve_from.is_some_and(|r| *day >= r);
                if again || !d.resolved {
                    // A day resolved by an earlier snapshot whose classes are done again.
                    if again && first_pass {
                        classified.insert(*day);
                    }
                    let known = d.resolve(&self.older, |k| seen.contains(&k));
                    if !known {
                        unknown.push((*day, d.fingerprint));
                    }
                }
                seen.extend(d.keys.iter().copied());
            }
            first_pass = false;
            if unknown.is_empty() {
                self.closed_keys = Some(seen);
                break;
            }
            let reread: Vec<(NaiveDate, u64, Loaded)> = unknown
                .par_iter()
                .map(|(day, print)| {
                    let files = by_day.get(day).map_or(&[][..], Vec::as_slice);
                    Ok((
                        *day,
                        *print,
                        Loaded::Read(day::classify(store, files, &prices)?),
                    ))
                })
                .collect::<Result<_>>()?;
            for (day, print, loaded) in reread {
                classified.insert(day);
                let mut fresh = Day::new(print, &mut self.names, &prices, loaded);
                fresh.rows = fresh.rows.take().filter(|_| cut.contains(&day));
                self.days.insert(day, fresh);
            }
            resolve_from = unknown.iter().map(|(d, _)| *d).min();
        }

        // Store the closed days' rollups not stored yet (their repeats now known), then keep
        // only what later snapshots need.
        let due: Vec<(NaiveDate, u64, DayRollup)> = if persist {
            self.days
                .iter()
                .filter(|(day, d)| **day < today && !d.stored && d.fingerprint != 0)
                .filter_map(|(day, d)| {
                    let detail = d.detail.as_ref()?;
                    let mut rollup = localize(&self.names, detail, &d.authors, &d.repeating());
                    rollup.repeats.sort_unstable_by_key(|c| c.key);
                    Some((*day, d.fingerprint, rollup))
                })
                .collect()
        } else {
            Vec::new()
        };
        due.par_iter().for_each(|(day, print, rollup)| {
            persist::write(store, *day, *print, prices_hash, rollup);
            if let Some(keys) = self.days.get(day).map(|d| &d.keys) {
                persist::write_keys(store, *day, *print, keys);
            }
        });
        let detail_days = self.detail_days;
        for (day, d) in &mut self.days {
            if due.iter().any(|(x, _, _)| x == day) {
                d.stored = true;
            }
            let keep = detail_days.is_some_and(|(from, to)| *day >= from && *day < to);
            d.compact(keep, persist);
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
        let mut today_day = Day::new(
            0,
            &mut self.names,
            &prices,
            Loaded::Read(self.open.classify(open_files)),
        );
        let closed_keys = self.closed_keys.as_ref();
        today_day.resolve(&self.older, |k| closed_keys.is_some_and(|c| c.contains(&k)));

        let mut views: Vec<DayView<'_>> = self.days.iter().map(|(day, d)| view(*day, d)).collect();
        views.push(view(open, &today_day));
        let (mut snapshot, sizes) = window::snapshot(at, settings, &self.names, &views)?;
        let prices_key = format!("{prices_hash:?}");
        if let Some(facts) = self
            .delivery
            .facts(store, &by_day, &prices, &prices_key, at)?
        {
            let row_of = RowOf::new(&sizes, u64::from(settings.min_team_size));
            snapshot.delivery = delivery::figures(&facts, at, &settings.delivery, &sizes, &row_of);
        }
        work.days_classified = classified.len();
        self.last = work;
        self.sizes = sizes;
        Ok(snapshot)
    }

    /// What the weekly report lists of the closed days `[from, to)` of the last snapshot's
    /// window: each team's pipelines and avoidable failures by category, and the builds of
    /// runner classes missing from the price table. The days must have been kept with
    /// [`Engine::keep_detail`] (or the engine not be persisting).
    ///
    /// # Errors
    /// A day of the range is not in the window of the last snapshot, or its detail was not
    /// kept (a bug of the caller).
    pub fn detail(&self, from: NaiveDate, to: NaiveDate) -> Result<Detail> {
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
            let detail = d.detail.as_ref().ok_or_else(|| {
                crate::Error::Shape(format!("the detail of {day} was not kept (a bug)"))
            })?;
            for p in &detail.pipelines {
                let e = pipelines
                    .entry((p.team, p.repository, p.pipeline))
                    .or_default();
                e.0.builds += p.all.builds;
                e.0.cost += p.all.cost;
                e.1.builds += p.avoidable.builds;
                e.1.cost += p.avoidable.cost;
            }
            for (team, category, n) in &detail.categories {
                *categories.entry((*team, *category)).or_default() += n;
            }
            unpriced.builds += d.unpriced.builds;
            unpriced.cost += d.unpriced.cost;
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
        Ok(merge_all(lists))
    }
}

/// A day as the window computation reads it.
fn view(day: NaiveDate, d: &Day) -> DayView<'_> {
    DayView {
        day,
        base: &d.base,
        moves: &d.moves,
        authors: &d.authors,
        rows: d.rows.as_deref().and_then(|rows| {
            Some(RowsView {
                rows,
                cells: &d.detail.as_ref()?.cells,
                repeats: &d.repeats,
            })
        }),
    }
}

/// The builds of one UTC day of one (team, product, CI system, repository, runner class, waste
/// class), as the figures classify them: the grain of the FOCUS export. Teams by their own
/// name (small ones are merged by the caller, [`crate::RowOf`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub day: NaiveDate,
    pub team: String,
    pub product: String,
    pub source: String,
    pub repository: String,
    pub runner_class: String,
    pub waste: buildcost_model::WasteClass,
    pub builds: u64,
    /// Σ `cost_eur`, exact.
    pub cost: buildcost_model::Exact,
    /// Σ (finished_at − started_at) / 3600, exact.
    pub hours: buildcost_model::Exact,
}

/// Days the export classifies per snapshot: bounds the detail held in memory.
const CHARGE_CHUNK_DAYS: u32 = 31;

impl Engine {
    /// Every build of the UTC days `[from, to)` as [`Charge`]s, a day at a time in day order
    /// (`f` gets each day's, sorted), classified exactly as the gauges are (a success that
    /// repeats any earlier day's is `duplicate`, whatever the window). Works through the range
    /// a month at a time, so memory holds a month's detail, not the range's. Team sizes at
    /// the end of the range come from a snapshot there, before ([`Engine::teams`]).
    ///
    /// # Errors
    /// The store cannot be read, or `f` failed.
    pub fn charges(
        &mut self,
        store: &Store,
        settings: &QuerySettings,
        from: NaiveDate,
        to: NaiveDate,
        f: &mut dyn FnMut(NaiveDate, Vec<Charge>) -> Result<()>,
    ) -> Result<()> {
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
        // A history of a month: the window's days are classified against every older day.
        let mut chunked = settings.clone();
        chunked.baseline.window_days = CHARGE_CHUNK_DAYS;
        let mut start = from;
        while start < to {
            let end = (start + Duration::days(i64::from(CHARGE_CHUNK_DAYS))).min(to);
            self.keep_detail(start, end);
            self.snapshot_now(store, &chunked, midnight(end))?;
            let mut day = start;
            while day < end {
                f(day, self.day_charges(day))?;
                day = day.succ_opt().unwrap_or(end);
            }
            start = end;
        }
        self.detail_days = None;
        Ok(())
    }

    /// The charges of one closed day held with its detail: its cells, each repeating
    /// candidate moved from `none` to `duplicate`, summed over statuses.
    fn day_charges(&self, day: NaiveDate) -> Vec<Charge> {
        let Some(d) = self.days.get(&day) else {
            return Vec::new();
        };
        let Some(detail) = d.detail.as_ref() else {
            return Vec::new();
        };
        type Key = (u32, u32, u32, u32, u32, u8);
        let key = |k: &day::CellKey| {
            (
                k.team,
                k.product,
                k.source,
                k.repository,
                k.runner_class,
                k.waste,
            )
        };
        let mut sums: BTreeMap<Key, day::Sums> = BTreeMap::new();
        for c in &detail.cells {
            sums.entry(key(&c.key)).or_default().add(&c.sums);
        }
        for c in d.repeating() {
            if let Some(s) = sums.get_mut(&key(&c.cell)) {
                s.builds -= c.sums.builds.min(s.builds);
                s.cost -= c.sums.cost;
                s.hours -= c.sums.hours;
            }
            let dup = c.cell.with_waste(buildcost_model::WasteClass::Duplicate);
            sums.entry(key(&dup)).or_default().add(&c.sums);
        }
        let name = |id: u32| self.names.name(id).to_owned();
        let mut out: Vec<Charge> = sums
            .into_iter()
            .filter(|(_, s)| s.builds > 0)
            .map(
                |((team, product, source, repository, runner, waste), s)| Charge {
                    day,
                    team: name(team),
                    product: name(product),
                    source: name(source),
                    repository: name(repository),
                    runner_class: name(runner),
                    waste: buildcost_model::WasteClass::from_index(waste)
                        .unwrap_or(buildcost_model::WasteClass::None),
                    builds: s.builds,
                    cost: s.cost,
                    hours: s.hours,
                },
            )
            .collect();
        out.sort_by(|a, b| {
            (
                &a.team,
                &a.product,
                &a.source,
                &a.repository,
                &a.runner_class,
                a.waste.index(),
            )
                .cmp(&(
                    &b.team,
                    &b.product,
                    &b.source,
                    &b.repository,
                    &b.runner_class,
                    b.waste.index(),
                ))
        });
        out
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

/// A closed day as loaded: classified from its files, or its stored rollup and keys.
enum Loaded {
    Read(Classified),
    Stored(DayRollup, Vec<u64>),
}

/// Loads one closed day: its stored rollup when current (and its rows are not needed), else
/// its files, classified.
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
) -> Result<Loaded> {
    if persist && !rows {
        let stored = persist::read_rollup(store, day, print, prices_hash)
            .zip(persist::read_keys(store, day, print));
        if let Some((rollup, keys)) = stored {
            return Ok(Loaded::Stored(rollup, keys));
        }
    }
    Ok(Loaded::Read(day::classify(store, files, prices)?))
}

/// A rollup in the engine's numbers (its own names interned; its name table cleared), and
/// the engine's number of each of its names.
fn intern(names: &mut Names, mut rollup: DayRollup) -> (DayRollup, Vec<u32>) {
    let ids: Vec<u32> = rollup.names.iter().map(|n| names.id(n)).collect();
    for c in &mut rollup.cells {
        remap_cell(&mut c.key, &ids);
    }
    let id = |n: u32| ids.get(n as usize).copied().unwrap_or(u32::MAX);
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
    (rollup, ids)
}

/// Replaces the rollup's name numbers of a cell key by the engine's (`ids[n]`).
fn remap_cell(k: &mut day::CellKey, ids: &[u32]) {
    *k = k.map_names(|n| ids.get(n as usize).copied().unwrap_or(u32::MAX));
}

/// The day's detail, `authors` and `repeats` as a rollup with names of its own, to be stored.
fn localize(
    names: &Names,
    detail: &DayRollup,
    authors: &[(u32, u64)],
    repeats: &[Candidate],
) -> DayRollup {
    let mut local: HashMap<u32, u32> = HashMap::new();
    let mut table: Vec<String> = Vec::new();
    let mut id = |n: u32| {
        *local.entry(n).or_insert_with(|| {
            table.push(names.name(n).to_owned());
            u32::try_from(table.len() - 1).unwrap_or(u32::MAX)
        })
    };
    let mut cell = |k: &day::CellKey| k.map_names(&mut id);
    let cells = detail
        .cells
        .iter()
        .map(|c| day::Cell {
            key: cell(&c.key),
            sums: c.sums,
        })
        .collect();
    let repeats = repeats
        .iter()
        .map(|c| Candidate {
            cell: cell(&c.cell),
            ..*c
        })
        .collect();
    let pipelines = detail
        .pipelines
        .iter()
        .map(|p| day::PipelineCell {
            team: id(p.team),
            repository: id(p.repository),
            pipeline: id(p.pipeline),
            ..*p
        })
        .collect();
    let categories = detail
        .categories
        .iter()
        .map(|(t, c, n)| (id(*t), id(*c), *n))
        .collect();
    let authors = authors.iter().map(|(t, a)| (id(*t), *a)).collect();
    DayRollup {
        names: table,
        cells,
        repeats,
        pipelines,
        categories,
        authors,
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

/// Sorted, distinct lists as one, merged pairwise on every core.
fn merge_all(mut lists: Vec<Vec<u64>>) -> Vec<u64> {
    while lists.len() > 1 {
        lists = lists
            .into_par_iter()
            .chunks(2)
            .map(|pair| match pair.as_slice() {
                [a, b] => merge(a, b),
                _ => pair.into_iter().next().unwrap_or_default(),
            })
            .collect();
    }
    lists.pop().unwrap_or_default()
}

/// For each of the sorted `queries`, whether the sorted `set` holds it: one pass over both,
/// galloping ahead in `set`, so a day's keys are looked up in a year of keys without a
/// cache miss per step of a binary search.
fn present(queries: &[u64], set: &[u64]) -> Vec<bool> {
    let mut out = Vec::with_capacity(queries.len());
    let mut base = 0;
    for q in queries {
        let mut bound = 1;
        while base + bound < set.len() && set[base + bound] < *q {
            bound *= 2;
        }
        let end = (base + bound + 1).min(set.len());
        let i = base + set[base..end].partition_point(|x| x < q);
        out.push(i < set.len() && set[i] == *q);
        base = i;
    }
    out
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
    fn looks_up_sorted_keys_in_one_pass() {
        let set: Vec<u64> = (0..1000).map(|i| i * 3).collect();
        let queries: Vec<u64> = vec![0, 1, 3, 299, 300, 2997, 2998, 5000];
        let expected: Vec<bool> = queries
            .iter()
            .map(|q| set.binary_search(q).is_ok())
            .collect();
        assert_eq!(present(&queries, &set), expected);
        assert_eq!(present(&[5], &[]), vec![false]);
        let lists = vec![vec![1, 4, 9], vec![2, 4], vec![0], vec![9, 10]];
        assert_eq!(merge_all(lists), vec![0, 1, 2, 4, 9, 10]);
    }

    #[test]
    fn merges_sorted_lists_without_repeats() {
        assert_eq!(merge(&[1, 3, 5], &[2, 3, 6]), vec![1, 2, 3, 5, 6]);
        assert_eq!(merge(&[], &[4]), vec![4]);
    }
}
