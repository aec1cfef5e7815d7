//! A metrics refresh at 60,000 builds a day over the 28-day window with 1,500 teams — the full
//! computation once (printed), the service's incremental refresh warm (benchmarked) — and
//! encoding `/metrics` from its snapshot.
//!
//! `cargo bench -p buildcost-bench --bench refresh` (the set-up generates and stores 1.68
//! million builds first: a minute or two). `BUILDCOST_BENCH_PER_DAY` and
//! `BUILDCOST_BENCH_TEAMS` scale it; `BUILDCOST_BENCH_COMPARE=1` also times the snapshot with
//! `builds` re-evaluated by each of its queries, the way it was computed before.

use buildcost_ingest::{ingest_ndjson, Ingestor, MemoryDeadLetters};
use buildcost_query::{QuerySettings, Snapshot};
use criterion::{criterion_group, criterion_main, Criterion};

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn refresh(c: &mut Criterion) {
    let per_day = env_or("BUILDCOST_BENCH_PER_DAY", 60_000);
    let teams = env_or("BUILDCOST_BENCH_TEAMS", 1_500) as usize;
    let Ok(dir) = tempfile::tempdir() else {
        panic!("a temporary folder");
    };
    let Ok(store) = buildcost_store::Store::open(dir.path()) else {
        panic!("a store");
    };
    let started = std::time::Instant::now();
    let text = buildcost_bench::events(teams, 28, per_day).join("\n");
    let index = store.event_index();
    let mut ingestor = Ingestor::new(buildcost_bench::decoder(), &store, index, "bench");
    let mut dead = MemoryDeadLetters::default();
    let stored = ingest_ndjson(
        &mut text.as_bytes(),
        "bench",
        &mut ingestor,
        &mut dead,
        buildcost_bench::end(),
        &mut |_| {},
    )
    .and_then(|_| ingestor.finish(&mut dead));
    let Ok(summary) = stored else {
        panic!("the workload is stored");
    };
    eprintln!(
        "refresh: {} builds of {teams} teams stored in {:.1} s",
        summary.accepted,
        started.elapsed().as_secs_f64()
    );
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    else {
        panic!("a runtime");
    };
    let settings = QuerySettings::default();
    let at = buildcost_bench::end();
    let snapshot = |store: &buildcost_store::Store| {
        runtime.block_on(async { Snapshot::of_store(store, &settings, at).await.ok() })
    };
    let first = std::time::Instant::now();
    let Some(once) = snapshot(&store) else {
        panic!("a snapshot");
    };
    eprintln!(
        "refresh: {} team rows; the first refresh took {:.2} s",
        once.teams.len(),
        first.elapsed().as_secs_f64()
    );
    if std::env::var("BUILDCOST_BENCH_COMPARE").is_ok_and(|v| v == "1") {
        // The reference of the same run: every query of the snapshot over the `builds` view.
        let before = std::time::Instant::now();
        let per_query = runtime.block_on(async {
            let ctx = buildcost_query::BuildcostContext::open(&store, &settings, at)
                .await
                .ok()?;
            Snapshot::compute(&ctx).await.ok()
        });
        eprintln!(
            "refresh: the same snapshot with `builds` re-evaluated by each query took {:.2} s (equal: {})",
            before.elapsed().as_secs_f64(),
            per_query.as_ref() == Some(&once)
        );
    }
    // The service's refresh: incremental. The first call classifies the window's closed days,
    // later ones only the open day.
    // At 18:00 of the last day: the open day holds 45,000 builds and every window starts
    // inside a day, as in a service's refresh at any time of day.
    let at = at - chrono::Duration::hours(6);
    let incremental = std::sync::Mutex::new(buildcost_query::Incremental::new());
    let refresh = || {
        let mut cache = incremental.lock().ok()?;
        runtime.block_on(cache.snapshot(&store, &settings, at)).ok()
    };
    let cold = std::time::Instant::now();
    let first_incremental = refresh();
    eprintln!(
        "refresh: the first incremental refresh at {at} (history scan + {} closed days classified) took {:.2} s ({} team rows)",
        incremental
            .lock()
            .map_or(0, |c| c.last_work().days_classified),
        cold.elapsed().as_secs_f64(),
        first_incremental.map_or(0, |s| s.teams.len())
    );
    let mut group = c.benchmark_group("refresh");
    group.sample_size(10);
    group.bench_function("incremental_warm", |b| b.iter(|| refresh().is_some()));
    group.bench_function("encode_metrics", |b| {
        b.iter(|| buildcost_exporter::business_text(&once).map(|t| t.len()))
    });
    group.finish();
}

criterion_group!(benches, refresh);
criterion_main!(benches);
