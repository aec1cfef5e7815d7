use buildcost_model::{BatchBuilder, Classifier, Decoder, Pseudonymiser};
use chrono::{TimeZone, Utc};

use super::*;

pub(crate) fn batch(ids: &[&str]) -> RecordBatch {
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
        b.append(
            &decoder
                .decode(event.as_bytes(), now)
                .unwrap()
                .into_build()
                .unwrap(),
        );
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
fn a_staged_file_is_invisible_until_published_and_gone_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let kept = store.stage(day(2), "kept", &batch(&["a"])).unwrap();
    let dropped = store.stage(day(3), "dropped", &batch(&["b"])).unwrap();
    assert!(
        store.list_files().unwrap().is_empty(),
        "staged is not visible"
    );
    drop(dropped);
    let path = kept.publish().unwrap();
    let files = store.list_files().unwrap();
    assert_eq!(
        files.iter().map(|f| &f.path).collect::<Vec<_>>(),
        vec![&path]
    );
    for d in [day(2), day(3)] {
        let leftovers: Vec<_> = std::fs::read_dir(store.partition_dir(d))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(
            leftovers.is_empty(),
            "no temporary file left: {leftovers:?}"
        );
    }
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
    let mut index = store.event_index();
    assert!(index.contains(day(2), "e1").unwrap());
    assert!(index.contains(day(3), "e3").unwrap());
    assert!(!index.contains(day(3), "e4").unwrap());
    assert_eq!(index.held(), 3, "a rewritten file holds its ids once");
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

/// Overwrites every byte between the leading magic and the footer: the footer still parses,
/// the pages do not.
fn damage_pages(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let len = bytes.len();
    let footer = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().unwrap()) as usize;
    for b in &mut bytes[4..len - 8 - footer] {
        *b = 0xA5;
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn damaged_files_and_old_temp_files_are_quarantined_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let good = store.write_batch(day(2), "good", &batch(&["e1"])).unwrap();
    let truncated = store
        .write_batch(day(2), "truncated", &batch(&["e2", "e3"]))
        .unwrap();
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let part = store.partition_dir(day(2));
    std::fs::write(part.join("empty.parquet"), b"").unwrap();
    std::fs::write(part.join("garbage.parquet"), b"PAR1 not really").unwrap();
    std::fs::write(part.join(".stray.parquet.tmp"), b"half a file").unwrap();
    // A file of another schema is not a build file.
    let other = arrow::record_batch::RecordBatch::try_from_iter([(
        "x",
        std::sync::Arc::new(arrow::array::Int64Array::from(vec![1])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    let bytes = encode(&other, &part.join("other.parquet"), None).unwrap();
    std::fs::write(part.join("other.parquet"), &bytes).unwrap();

    // A young temporary file may belong to a running writer: it stays.
    let moved = store
        .quarantine_damaged(std::time::Duration::from_secs(3600))
        .unwrap();
    let mut names: Vec<_> = moved
        .iter()
        .map(|q| q.from.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "empty.parquet",
            "garbage.parquet",
            "other.parquet",
            "truncated.parquet"
        ]
    );
    assert!(moved
        .iter()
        .any(|q| q.reason.contains("zero-length") && q.to.exists()));
    assert!(part.join(".stray.parquet.tmp").exists());
    let moved = store.quarantine_damaged(std::time::Duration::ZERO).unwrap();
    assert_eq!(moved.len(), 1);
    assert!(moved[0].reason.contains("stray temporary file"));
    assert_eq!(store.quarantined(), 5);

    let files: Vec<_> = store
        .list_files()
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(files, vec![good]);
    assert_eq!(store.event_id_counts().unwrap().len(), 1);
    let quarantine = dir
        .path()
        .join(crate::QUARANTINE_DIR)
        .join("date=2026-11-02");
    assert_eq!(std::fs::read_dir(quarantine).unwrap().count(), 5);
}

#[test]
fn a_file_with_a_sound_footer_and_damaged_pages_is_quarantined_by_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.write_batch(day(2), "good", &batch(&["e1"])).unwrap();
    let ids: Vec<String> = (0..500).map(|i| format!("id-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let damaged = store.write_batch(day(3), "damaged", &batch(&refs)).unwrap();
    damage_pages(&damaged);
    assert!(
        store
            .quarantine_damaged(std::time::Duration::ZERO)
            .unwrap()
            .is_empty(),
        "the footer check alone does not see damaged pages"
    );
    let mut index = store.event_index();
    assert!(index.contains(day(2), "e1").unwrap());
    assert!(
        !index.contains(day(3), "id-7").unwrap(),
        "none of the damaged file's ids is known"
    );
    assert!(!damaged.exists());
    assert_eq!(store.quarantined(), 1);
    assert_eq!(store.list_files().unwrap().len(), 1);
}
