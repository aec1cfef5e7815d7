//! Parquet writes through the store: rows/s, and the bytes per build on disk (printed); beside
//! them, as the reference of the same run, the same batch written with the writer's defaults and
//! zstd (the store's settings before it chose encodings per column).
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
        if let Ok(buildcost_model::Event::Build(row)) = decoder.decode(l.as_bytes(), now) {
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
    let reference = |path: &std::path::Path| -> usize {
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(
                parquet::basic::ZstdLevel::default(),
            ))
            .build();
        let Ok(file) = std::fs::File::create(path) else {
            return 0;
        };
        let Ok(mut writer) =
            parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props))
        else {
            return 0;
        };
        if writer.write(&batch).is_err() {
            return 0;
        }
        writer.close().map(|_| ()).ok();
        std::fs::metadata(path).map_or(0, |m| m.len() as usize)
    };
    let reference_path = dir.path().join("reference.parquet");
    let size = reference(&reference_path);
    eprintln!(
        "parquet reference (writer defaults, zstd): {size} bytes, {:.1} bytes per build",
        size as f64 / rows as f64
    );
    let mut group = c.benchmark_group("parquet");
    group.throughput(Throughput::Elements(rows as u64));
    group.sample_size(10);
    group.bench_function("write_batch", |b| {
        b.iter(|| store.write_batch(day, "bench", &batch).is_ok());
    });
    group.bench_function("reference_defaults", |b| {
        b.iter(|| reference(&reference_path));
    });
    group.finish();
}

criterion_group!(benches, parquet);
criterion_main!(benches);
