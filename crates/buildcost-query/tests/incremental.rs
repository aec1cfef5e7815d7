//! The incremental refresh gives the figures of the full computation, at every instant, after
//! late events in a closed day, before the window and after a settings change, and does only
//! the work it should (days classified, history rescanned).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use buildcost_generate::{GenStats, Generator, GeneratorConfig};
use buildcost_ingest::{ingest_ndjson, Ingestor, MemoryDeadLetters};
use buildcost_model::config::{PricingConfig, RunnerPrice};
use buildcost_model::{Classifier, Decoder, Pseudonymiser, WasteClass};
use buildcost_query::config::BaselineConfig;
use buildcost_query::{
    BuildcostContext, Incremental, QuerySettings, Snapshot, TeamFigures, TeamsFile, WindowFigures,
};
use buildcost_store::Store;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

fn end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()
}

fn ingest(store: &Store, lines: &[String], name: &str) {
    let decoder = Decoder::new(
        65536,
        Pseudonymiser::new(b"k").unwrap(),
        Classifier::builtin().unwrap(),
    );
    let mut ingestor = Ingestor::new(decoder, store, store.event_index(), name);
    let mut dead = MemoryDeadLetters::default();
    let text = lines.join("\n");
    ingest_ndjson(
        &mut text.as_bytes(),
        name,
        &mut ingestor,
        &mut dead,
        end(),
        &mut |_| {},
    )
    .unwrap();
    ingestor.finish(&mut dead).unwrap();
}

fn generator(days: u32, per_day: u32) -> Generator {
    Generator::new(GeneratorConfig {
        seed: 11,
        teams: 24,
        days,
        builds_per_day: per_day,
        end: end(),
        duplicate_ratio: 0.01,
        ..GeneratorConfig::default()
    })
}

fn generated(days: u32, per_day: u32) -> Vec<String> {
    let mut lines = Vec::new();
    generator(days, per_day)
        .for_each_line(&mut |l| lines.push(l.to_owned()), &mut GenStats::default());
    lines
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn same_window(what: &str, a: &WindowFigures, b: &WindowFigures) {
    assert_eq!(
        a.builds_by_status, b.builds_by_status,
        "{what}: builds by status"
    );
    assert_eq!(
        a.builds_by_waste, b.builds_by_waste,
        "{what}: builds by waste class"
    );
    assert!(
        close(a.cost_eur, b.cost_eur),
        "{what}: cost {} vs {}",
        a.cost_eur,
        b.cost_eur
    );
    for (x, y) in a.cost_by_waste.iter().zip(b.cost_by_waste) {
        assert!(close(*x, y), "{what}: waste cost {x} vs {y}");
    }
}

fn same_team(a: &TeamFigures, b: &TeamFigures) {
    let what = format!("{}/{}", a.team, a.product);
    assert_eq!(
        (&a.team, &a.product, a.developers),
        (&b.team, &b.product, b.developers)
    );
    assert_eq!(
        a.windows.keys().collect::<Vec<_>>(),
        b.windows.keys().collect::<Vec<_>>()
    );
    for (w, fa) in &a.windows {
        same_window(&format!("{what} {w}"), fa, &b.windows[w]);
    }
    match (&a.baseline, &b.baseline) {
        (None, None) => {}
        (Some(x), Some(y)) => {
            assert_eq!(
                (&x.peer_group, &x.status),
                (&y.peer_group, &y.status),
                "{what}"
            );
            for (p, q) in [
                (x.cost_per_developer_eur, y.cost_per_developer_eur),
                (x.zscore, y.zscore),
                (x.expected_eur, y.expected_eur),
                (x.lower_eur, y.lower_eur),
                (x.upper_eur, y.upper_eur),
            ] {
                assert!(close(p, q), "{what}: baseline {p} vs {q}");
            }
        }
        _ => panic!("{what}: baseline on one side only"),
    }
}

/// A success event `event_id`, finished at `finished`, of the same (repository, pipeline,
/// commit) and team as the first-ranked success (waste class `none`) that finished in `window`.
async fn rerun_of_a_first_success(
    store: &Store,
    settings: &QuerySettings,
    window: (DateTime<Utc>, DateTime<Utc>),
    event_id: &str,
    finished: DateTime<Utc>,
) -> serde_json::Value {
    let probe = BuildcostContext::open(store, settings, window.1)
        .await
        .unwrap();
    let rows = probe
        .sql(&format!(
            "SELECT repository, pipeline, commit, team, product, runner_class FROM builds \
             WHERE status = 'success' AND waste_class = 'none' AND commit IS NOT NULL \
             AND finished_at >= arrow_cast('{}', 'Timestamp(µs, \"UTC\")') \
             AND finished_at < arrow_cast('{}', 'Timestamp(µs, \"UTC\")') ORDER BY event_id LIMIT 1",
            window.0.to_rfc3339(),
            window.1.to_rfc3339()
        ))
        .await
        .unwrap();
    let value = |name: &str| {
        use arrow::array::AsArray;
        rows[0]
            .column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .value(0)
            .to_owned()
    };
    json!({
        "schema_version": 1, "event_id": event_id, "source": "jenkins", "build_id": event_id,
        "pipeline": value("pipeline"), "repository": value("repository"),
        "commit": value("commit"), "team": value("team"), "product": value("product"),
        "runner_class": value("runner_class"),
        "started_at": (finished - Duration::minutes(10)).to_rfc3339(),
        "finished_at": finished.to_rfc3339(), "status": "success",
    })
}

/// The incremental snapshot equals the full one (integers exactly, euros to 1e-9).
async fn check(
    inc: &mut Incremental,
    store: &Store,
    settings: &QuerySettings,
    at: DateTime<Utc>,
) -> Snapshot {
    let fast = inc.snapshot(store, settings, at).await.unwrap();
    let full = Snapshot::of_store(store, settings, at).await.unwrap();
    assert_eq!(fast.at, full.at);
    assert_eq!(fast.teams.len(), full.teams.len(), "team rows at {at}");
    for (a, b) in fast.teams.iter().zip(&full.teams) {
        same_team(a, b);
    }
    assert_eq!(fast.org.developers, full.org.developers);
    for (w, fa) in &fast.org.windows {
        same_window(&format!("org {w} at {at}"), fa, &full.org.windows[w]);
    }
    assert!(!fast.teams.is_empty());
    fast
}

#[tokio::test]
async fn the_incremental_refresh_equals_the_full_computation() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    ingest(&store, &generated(45, 400), "history");
    let settings = QuerySettings::default();
    let mut inc = Incremental::new();

    // The first refresh reads the history before the window and classifies the window.
    let t0 = end() - Duration::days(10) + Duration::hours(5);
    check(&mut inc, &store, &settings, t0).await;
    let work = inc.last_work();
    assert!(work.history_rescanned);
    assert_eq!(work.days_classified, 28, "the 28 closed days of the window");

    // Later the same day: nothing but the open day.
    check(&mut inc, &store, &settings, t0 + Duration::hours(4)).await;
    assert_eq!(inc.last_work().days_classified, 0);
    assert!(!inc.last_work().history_rescanned);

    // The next day: the day that closed, nothing else; the day that left the window joins
    // the history without a rescan.
    check(&mut inc, &store, &settings, t0 + Duration::days(1)).await;
    assert_eq!(inc.last_work().days_classified, 1);
    assert_eq!(
        inc.last_work().days_reread,
        2,
        "the days the 7- and 28-day windows now start in, read again for their rows"
    );
    assert!(!inc.last_work().history_rescanned);

    // The same for a first success of the open day (whose look-ups into the earlier days'
    // keys are kept between refreshes): a late success of its key on a closed day makes it
    // a duplicate at the next refresh.
    let noon = t0 + Duration::days(1) + Duration::hours(7);
    let before = check(&mut inc, &store, &settings, noon).await;
    let open_start = noon.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
    let late = rerun_of_a_first_success(
        &store,
        &settings,
        (open_start, noon),
        "late-for-the-open-day",
        open_start - Duration::days(3),
    )
    .await;
    ingest(&store, &[late.to_string()], "late-open");
    let after = check(&mut inc, &store, &settings, noon).await;
    let dup = |s: &Snapshot| s.org.windows["7d"].waste_builds(WasteClass::Duplicate);
    assert_eq!(
        dup(&after),
        dup(&before) + 1,
        "the open day's success is now a duplicate"
    );

    // A late success in a closed day of the window, earlier than a later day's first success
    // of the same key: that later build becomes a duplicate, in both computations.
    let at = end();
    let before = check(&mut inc, &store, &settings, at).await;
    let late = rerun_of_a_first_success(
        &store,
        &settings,
        (end() - Duration::days(2), at),
        "late-success",
        end() - Duration::days(6) - Duration::hours(3),
    )
    .await;
    ingest(&store, &[late.to_string()], "late");
    let after = check(&mut inc, &store, &settings, at).await;
    assert!(!inc.last_work().history_rescanned);
    assert_eq!(
        inc.last_work().days_classified,
        7,
        "the late day (10-26) and the 6 closed days after it, whose earlier keys changed"
    );
    let dup = |s: &Snapshot| s.org.windows["28d"].waste_builds(WasteClass::Duplicate);
    assert_eq!(
        dup(&after),
        dup(&before) + 1,
        "the later success is now a duplicate"
    );

    // A very late event before the window: the history is read again.
    let old = end() - Duration::days(40);
    let ancient = json!({
        "schema_version": 1, "event_id": "ancient", "source": "jenkins", "build_id": "2",
        "pipeline": "p", "repository": "r", "commit": "c", "team": late["team"],
        "runner_class": "small", "started_at": (old - Duration::minutes(5)).to_rfc3339(),
        "finished_at": old.to_rfc3339(), "status": "success",
    });
    ingest(&store, &[ancient.to_string()], "ancient");
    check(&mut inc, &store, &settings, at).await;
    assert!(inc.last_work().history_rescanned);

    // Other settings: everything again.
    let mut other = settings.clone();
    other.baseline.k_sigma = 1.5;
    check(&mut inc, &store, &other, at).await;
    assert!(inc.last_work().history_rescanned);
    assert_eq!(inc.last_work().days_classified, 28);
}

/// Every input of the figures the default settings leave out: a teams file (listed sizes,
/// products and peer groups), priced runner classes with per-build fees and GPUs, a 35-day
/// baseline window starting mid-day, more peers wanted, a tighter band; at instants cutting
/// every window inside a day.
#[tokio::test]
async fn the_incremental_refresh_equals_the_full_computation_with_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    ingest(&store, &generated(50, 300), "history");
    let mut pricing = PricingConfig::default();
    pricing.runner_classes.insert(
        "large".into(),
        RunnerPrice {
            cpu_cores: Some(8.0),
            eur_per_build: Some(0.02),
            ..RunnerPrice::default()
        },
    );
    pricing.runner_classes.insert(
        "gpu".into(),
        RunnerPrice {
            gpus: Some(1.0),
            eur_per_gpu_hour: Some(2.5),
            ..RunnerPrice::default()
        },
    );
    let mut teams = generator(50, 300).teams_csv();
    // One listed team joins a peer group of its own name; the file's sizes stay.
    teams = teams.replacen(",\n", ",special\n", 1);
    let settings = QuerySettings {
        pricing,
        baseline: BaselineConfig {
            window_days: 35,
            min_peers: 4,
            k_sigma: 1.0,
        },
        min_team_size: 4,
        teams: TeamsFile::parse(&teams).unwrap(),
        delivery: buildcost_model::DeliveryConfig::default(),
    };
    assert!(!settings.teams.entries.is_empty());
    let mut inc = Incremental::new();
    for hours in [-30, -7, 0, 5, 29] {
        let at = end() - Duration::days(3) + Duration::hours(hours) + Duration::minutes(17);
        let s = check(&mut inc, &store, &settings, at).await;
        assert!(
            s.teams.iter().any(|t| t.baseline.is_some()),
            "some team has a baseline at {at}"
        );
    }
    assert!(
        !inc.last_work().history_rescanned,
        "moving forward needs no rescan"
    );
}

/// Two ingesters that raced on one event (each loaded the index before the other wrote) store
/// two copies; every computation keeps the first stored copy only, with its own cost.
#[tokio::test]
async fn a_build_stored_twice_counts_once_with_its_first_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    ingest(&store, &generated(3, 50), "history");
    let decoder = || {
        Decoder::new(
            65536,
            Pseudonymiser::new(b"k").unwrap(),
            Classifier::builtin().unwrap(),
        )
    };
    let finished = end() - Duration::hours(30);
    // Each ingester has read the day's ids before the other writes.
    let index = || {
        let mut index = store.event_index();
        assert!(!index.contains(finished.date_naive(), "raced").unwrap());
        index
    };
    let (first, second) = (index(), index());
    let first = Ingestor::new(decoder(), &store, first, "first");
    let second = Ingestor::new(decoder(), &store, second, "second");
    let copy = |minutes: i64| {
        json!({
            "schema_version": 1, "event_id": "raced", "source": "jenkins", "build_id": "9",
            "pipeline": "p", "repository": "r", "commit": "c", "team": "racers",
            "runner_class": "small", "status": "failure",
            "started_at": (finished - Duration::minutes(minutes)).to_rfc3339(),
            "finished_at": finished.to_rfc3339(),
        })
        .to_string()
    };
    // The second copy is ingested a minute later (ingested_at orders the copies).
    for (mut ingestor, minutes, later) in [(first, 60, 0), (second, 600, 1)] {
        let mut dead = MemoryDeadLetters::default();
        let line = copy(minutes);
        ingest_ndjson(
            &mut line.as_bytes(),
            "race",
            &mut ingestor,
            &mut dead,
            end() + Duration::minutes(later),
            &mut |_| {},
        )
        .unwrap();
        ingestor.finish(&mut dead).unwrap();
    }
    let settings = QuerySettings::default();
    let at = end();
    let ctx = BuildcostContext::open(&store, &settings, at).await.unwrap();
    let count = |sql: &str| {
        let ctx = &ctx;
        let sql = sql.to_owned();
        async move {
            let batches = ctx.sql(&sql).await.unwrap();
            buildcost_query::integer_value(&batches[0], "n", 0).unwrap()
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM raw_builds WHERE event_id = 'raced'").await,
        2,
        "both copies are stored"
    );
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM builds WHERE event_id = 'raced'").await,
        1
    );
    let batches = ctx
        .sql("SELECT duration_s FROM builds WHERE event_id = 'raced'")
        .await
        .unwrap();
    let duration = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Float64Array>()
        .unwrap()
        .value(0);
    assert_eq!(duration, 3600.0, "the first stored copy");
    // The rolled-up days de-duplicate the same way (the check compares every figure).
    let s = check(&mut Incremental::new(), &store, &settings, at).await;
    assert_eq!(
        s.org.windows["7d"].status_builds(buildcost_model::Status::Failure),
        count("SELECT COUNT(*) AS n FROM builds WHERE status = 'failure' AND finished_at >= arrow_cast('2026-10-26T00:00:00Z', 'Timestamp(µs, \"UTC\")')").await
    );
}

/// The rollup objects a persisting engine left in the store, by kind (`keys`, `rollup`).
fn stored_rollups(store: &Store, kind: &str) -> Vec<std::path::PathBuf> {
    let dir = store.root().join("_rollups/v1");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.extension().is_some_and(|e| e == kind));
    out.sort();
    out
}

/// A persisting engine keeps each closed day's rollup in the store. A new engine (a cold
/// `metrics --at`, a restarted service) reads the rollups instead of the Parquet files and
/// gives the same figures to the last bit; a day whose files changed, or whose rollup is
/// damaged, is read from its files again.
#[tokio::test]
async fn stored_rollups_give_the_same_figures_to_the_last_bit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    ingest(&store, &generated(40, 300), "history");
    let settings = QuerySettings::default();
    let at = end();

    let mut first = buildcost_query::Engine::new().persisting();
    let computed = check(&mut first, &store, &settings, at).await;
    assert_eq!(first.last_work().days_classified, 28);
    assert_eq!(first.last_work().days_loaded, 0);
    assert_eq!(
        stored_rollups(&store, "rollup").len(),
        28,
        "the window's closed days"
    );
    assert_eq!(
        stored_rollups(&store, "keys").len(),
        40,
        "every closed day's success keys, those before the window too"
    );

    let mut second = buildcost_query::Engine::new().persisting();
    let loaded = second.snapshot(&store, &settings, at).await.unwrap();
    assert_eq!(second.last_work().days_loaded, 28);
    assert_eq!(second.last_work().days_classified, 0);
    assert_eq!(loaded, computed, "the same figures, bit for bit");
    let in_memory = Incremental::new()
        .snapshot(&store, &settings, at)
        .await
        .unwrap();
    assert_eq!(in_memory, computed);

    // A late event in a closed day of the window: that day's rollup is stale.
    let late_day = end() - Duration::days(3);
    let late = rerun_of_a_first_success(
        &store,
        &settings,
        (end() - Duration::days(2), at),
        "late-for-the-rollups",
        late_day - Duration::hours(2),
    )
    .await;
    ingest(&store, &[late.to_string()], "late-rollups");
    let mut third = buildcost_query::Engine::new().persisting();
    let after = check(&mut third, &store, &settings, at).await;
    assert_eq!(
        third.last_work().days_classified,
        2,
        "the late event's day, and the later day whose first success it now precedes \
         (its rollup kept no sums for that build: it repeated nothing then)"
    );
    assert_eq!(
        third.last_work().days_loaded,
        27,
        "every other day from its rollup (that later day first, before it was read again)"
    );
    let dup = |s: &Snapshot| s.org.windows["28d"].waste_builds(WasteClass::Duplicate);
    assert_eq!(dup(&after), dup(&computed) + 1);

    // A damaged rollup is never used.
    let victim = &stored_rollups(&store, "rollup")[5];
    let bytes = std::fs::read(victim).unwrap();
    std::fs::write(victim, &bytes[..bytes.len() / 2]).unwrap();
    let mut fourth = buildcost_query::Engine::new().persisting();
    let again = fourth.snapshot(&store, &settings, at).await.unwrap();
    assert_eq!(fourth.last_work().days_classified, 1);
    assert_eq!(again, after);

    // Other prices: other rollups, the figures of those prices.
    let mut pricing = PricingConfig::default();
    pricing.default.eur_per_build = 0.05;
    let priced = QuerySettings {
        pricing,
        ..settings.clone()
    };
    let mut fifth = buildcost_query::Engine::new().persisting();
    check(&mut fifth, &store, &priced, at).await;
    assert_eq!(fifth.last_work().days_loaded, 0);
    assert_eq!(stored_rollups(&store, "rollup").len(), 56);
}
