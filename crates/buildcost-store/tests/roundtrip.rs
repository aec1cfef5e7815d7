//! Property test: any batch of valid rows survives Arrow → Parquet → Arrow unchanged.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use buildcost_model::{
    BatchBuilder, BuildRow, CategorySource, FailureCategory, FailureStage, Status, Trigger,
    Vocabulary,
};
use buildcost_store::Store;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use proptest::prelude::*;

fn pick<T: Vocabulary + std::fmt::Debug>() -> impl Strategy<Value = T> {
    proptest::sample::select(T::ALL)
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // Any microsecond between 1970 and 2100.
    (0i64..4_102_444_800_000_000).prop_map(|us| Utc.timestamp_micros(us).unwrap())
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{1,24}"
}

prop_compose! {
    fn row()(
        ids in (text(), text(), text(), text(), text()),
        opt in (proptest::option::of(text()), proptest::option::of(text()), proptest::option::of("[0-9a-f]{16}"), proptest::option::of(text())),
        times in (proptest::option::of(instant()), instant(), 0i64..604_800_000_000, instant()),
        kinds in (pick::<Trigger>(), pick::<Status>(), proptest::option::of(pick::<FailureStage>()), proptest::option::of(pick::<FailureCategory>()), proptest::option::of(pick::<CategorySource>())),
        numbers in (proptest::option::of(0.001f64..512.0), proptest::option::of(0.0f64..4096.0), proptest::option::of(0i64..16), 1i64..10, any::<bool>()),
        labels in proptest::collection::btree_map(text(), "\\PC{0,12}", 0..4),
        request_ids in proptest::collection::btree_set(text(), 0..4),
    ) -> BuildRow {
        let (event_id, source, build_id, pipeline, repository) = ids;
        let (branch, commit, author_key, correlation_id) = opt;
        let (queued_at, started_at, duration_us, ingested_at) = times;
        let (trigger, status, failure_stage, failure_category, category_source) = kinds;
        let (cpu_cores, memory_gb, gpus, attempt, superseded) = numbers;
        let finished_at = started_at + chrono::Duration::microseconds(duration_us);
        BuildRow {
            event_id, source, build_id, pipeline, repository: repository.clone(), branch, commit,
            trigger, team: repository.to_lowercase(), product: "p".into(), author_key, queued_at, started_at, finished_at,
            duration_s: duration_us as f64 / 1e6, status, failure_stage, failure_category, category_source,
            runner_class: "medium".into(), cpu_cores, memory_gb, gpus, attempt, superseded, correlation_id,
            request_ids: request_ids.into_iter().collect(), labels: labels.into_iter().collect(), ingested_at,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn batches_round_trip_through_parquet(rows in proptest::collection::vec(row(), 0..40)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut builder = BatchBuilder::new();
        for r in &rows {
            builder.append(r);
        }
        prop_assert_eq!(builder.len(), rows.len());
        let batch = builder.finish().unwrap();
        prop_assert_eq!(batch.num_rows(), rows.len());
        let path = store.write_batch(NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(), "p", &batch).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap().build().unwrap();
        let read: Vec<_> = reader.map(|b| b.unwrap()).collect();
        let read = arrow::compute::concat_batches(&buildcost_model::build_schema(), &read).unwrap();
        prop_assert_eq!(read, batch);
    }
}
