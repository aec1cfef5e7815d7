//! The event decoder on arbitrary bytes: a row or exactly one rejection, never a panic, and the
//! row obeys the spec's rules whatever came in.
#![no_main]

use std::sync::LazyLock;

use buildcost_model::{Classifier, Decoder, Pseudonymiser, DEFAULT_MAX_EVENT_BYTES};
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

static DECODER: LazyLock<Decoder> = LazyLock::new(|| {
    Decoder::new(
        DEFAULT_MAX_EVENT_BYTES,
        Pseudonymiser::new(b"fuzz").expect("a key"),
        Classifier::builtin().expect("the built-in rules"),
    )
});

fuzz_target!(|data: &[u8]| {
    let now = Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap();
    match DECODER.decode(data, now) {
        Ok(row) => {
            assert!(data.len() <= DEFAULT_MAX_EVENT_BYTES);
            assert!(!row.event_id.is_empty() && !row.team.trim().is_empty());
            assert!(row.finished_at >= row.started_at, "{row:?}");
            assert!(row.finished_at <= now + chrono::Duration::hours(1), "{row:?}");
        }
        Err(rejection) => assert!(!rejection.detail.is_empty()),
    }
});
