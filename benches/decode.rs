//! Bytes → validated, pseudonymised, classified rows → Arrow record batch, on one core.
//!
//! `cargo bench -p buildcost-bench --bench decode`; criterion prints events/s (the `elem/s` of
//! the throughput line) for a realistic generated mix (see docs/performance.md).

use buildcost_model::BatchBuilder;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn decode(c: &mut Criterion) {
    let lines = buildcost_bench::events(60, 1, 20_000);
    let bytes: usize = lines.iter().map(String::len).sum();
    eprintln!(
        "decode: {} events, {:.0} bytes per event on average",
        lines.len(),
        bytes as f64 / lines.len() as f64
    );
    let decoder = buildcost_bench::decoder();
    let now = buildcost_bench::end();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.sample_size(20);
    group.bench_function("bytes_to_rows", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for l in &lines {
                ok += usize::from(decoder.decode(l.as_bytes(), now).is_ok());
            }
            assert_eq!(ok, lines.len());
        });
    });
    group.bench_function("bytes_to_arrow_batch", |b| {
        b.iter(|| {
            let mut batch = BatchBuilder::new();
            for l in &lines {
                if let Ok(buildcost_model::Event::Build(row)) = decoder.decode(l.as_bytes(), now) {
                    batch.append(&row);
                }
            }
            batch.finish().map(|b| b.num_rows()).unwrap_or(0)
        });
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
