use buildcost_model::{BatchBuilder, Classifier, Decoder, Pseudonymiser};
use chrono::{TimeZone, Utc};

use super::*;

fn batch(ids: &[&str]) -> RecordBatch {
    let decoder = Decoder::new(
        65536,
        Pseudonymiser::new(b"k").unwrap(),
        Classifier::builtin().unwrap(),
    );
    let now = Utc.with_ymd_and_hms(2026, 11, 3, 0, 0, 0).unwrap();
    let mut b = BatchBuilder::new();
    for id in ids {
        let event = format!(
            r#"{{"schema_version":1,"event_id":"{id}","source":"jenkins","build_id":"1","pipeline":"p",
            "repository":"r","team":"t","author":"Some Body","started_at":"2026-11-02T10:00:00Z",
            "finished_at":"2026-11-02T10:01:00Z","status":"success","runner_class":"small"}}"#
        );
        b.append(&decoder.decode(event.as_bytes(), now).unwrap());
    }
    b.finish().unwrap()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

#[test]
fn writes_are_atomic_and_listed_in_a_stable_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.write_batch(day(2), "b", &batch(&["x"])).unwrap();
    store.write_batch(day(1), "a", &batch(&["y", "z"])).unwrap();
    store.write_batch(day(2), "a", &batch(&["w"])).unwrap();
    // Stray files are never data: temp files, other extensions, non-partition folders.
    std::fs::write(store.partition_dir(day(2)).join(".c.parquet.tmp"), b"half").unwrap();
    std::fs::create_dir_all(dir.path().join(DEAD_LETTER_DIR)).unwrap();
    std::fs::write(dir.path().join(DEAD_LETTER_DIR).join("x.parquet"), b"no").unwrap();
    let files: Vec<_> = store
        .list_files()
        .unwrap()
        .into_iter()
        .map(|f| {
            f.path
                .strip_prefix(dir.path())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        files,
        [
            "date=2026-11-01/a.parquet",
            "date=2026-11-02/a.parquet",
            "date=2026-11-02/b.parquet"
        ]
    );
    let leftovers: Vec<_> = std::fs::read_dir(store.partition_dir(day(1)))
        .unwrap()
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
}

#[test]
fn the_index_holds_every_stored_id_and_rewrites_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .write_batch(day(2), "a", &batch(&["e1", "e2"]))
        .unwrap();
    store
        .write_batch(day(2), "a", &batch(&["e1", "e2"]))
        .unwrap();
    store.write_batch(day(3), "b", &batch(&["e3"])).unwrap();
    let index = store.load_index().unwrap();
    assert_eq!(index.len(), 3);
    assert!(index.contains("e1") && index.contains("e3") && !index.contains("e4"));
}

#[test]
fn files_have_no_raw_author() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let path = store.write_batch(day(2), "a", &batch(&["e1"])).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes).to_lowercase();
    assert!(!text.contains("some body"));
}

#[test]
fn retention_deletes_only_older_days() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for d in [1, 2, 3, 4] {
        store.write_batch(day(d), "a", &batch(&["e"])).unwrap();
    }
    // today = 11-05, keep 2 days back: 11-03 and later stay.
    let deleted = store.apply_retention(day(5), 2).unwrap();
    assert_eq!(deleted, vec![day(1), day(2)]);
    let kept: Vec<_> = store
        .list_partitions()
        .unwrap()
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(kept, vec![day(3), day(4)]);
}

#[test]
fn a_file_that_is_not_parquet_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    std::fs::create_dir_all(store.partition_dir(day(2))).unwrap();
    std::fs::write(
        store.partition_dir(day(2)).join("broken.parquet"),
        b"not parquet",
    )
    .unwrap();
    let e = store.load_index().unwrap_err().to_string();
    assert!(e.contains("broken.parquet"), "{e}");
}
