//! Parquet writes through the store: rows/s, and the bytes per build on disk (printed).
//!
//! `cargo bench -p buildcost-bench --bench parquet`.

use buildcost_model::BatchBuilder;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn parquet(c: &mut Criterion) {
    let lines = buildcost_bench::events(60, 1, 100_000);
    let decoder = buildcost_bench::decoder();
    let now = buildcost_bench::end();
    let mut builder = BatchBuilder::new();
    for l in &lines {
        if let Ok(row) = decoder.decode(l.as_bytes(), now) {
            builder.append(&row);
        }
    }
    let Ok(batch) = builder.finish() else {
        panic!("the generated events make a batch");
    };
    let rows = batch.num_rows();
    let Ok(dir) = tempfile::tempdir() else {
        panic!("a temporary folder");
    };
    let Ok(store) = buildcost_store::Store::open(dir.path()) else {
        panic!("a store");
    };
    let day = now.date_naive();
    if let Ok(path) = store.write_batch(day, "size", &batch) {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "parquet: {rows} rows, {size} bytes, {:.1} bytes per build",
            size as f64 / rows as f64
        );
    }
    let mut group = c.benchmark_group("parquet");
    group.throughput(Throughput::Elements(rows as u64));
    group.sample_size(10);
    group.bench_function("write_batch", |b| {
        b.iter(|| store.write_batch(day, "bench", &batch).is_ok());
    });
    group.finish();
}

criterion_group!(benches, parquet);
criterion_main!(benches);
