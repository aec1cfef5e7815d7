//! Crash points for the crash-safety tests: `BUILDCOST_CRASH_AT=<point>:<n>` makes the process
//! SIGKILL itself the `n`-th time it reaches `<point>` — a crash exactly where a test wants one,
//! which a kill from outside only hits by luck. Unset (always, outside tests) it costs one
//! relaxed load per call.
//!
//! | point | where |
//! | --- | --- |
//! | `mid_batch` | a message was added to a batch that is not written yet |
//! | `mid_write` | a Parquet file is half written: rows in, no footer, not renamed |
//! | `after_rename` | a batch's files are durable and visible; its offsets are not committed |
//! | `mid_commit` | the commit of a batch's offsets was sent and not yet acknowledged |

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable that arms a crash point.
pub const CRASH_AT_ENV: &str = "BUILDCOST_CRASH_AT";

struct Armed {
    point: String,
    at: u64,
    seen: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(CRASH_AT_ENV).ok()?;
            let (point, at) = spec.split_once(':')?;
            Some(Armed {
                point: point.to_owned(),
                at: at.parse().ok()?,
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Whether reaching `point` now is the armed crash (counts the visit).
pub fn crash_due(point: &str) -> bool {
    match armed() {
        Some(a) if a.point == point => a.seen.fetch_add(1, Ordering::Relaxed) + 1 == a.at,
        _ => false,
    }
}

/// Kills the process with SIGKILL: no destructor, no flush, no commit.
pub fn crash_now() -> ! {
    // kill(1) rather than an unsafe libc call: the workspace forbids `unsafe`.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &std::process::id().to_string()])
        .status();
    // The signal is on its way; nothing runs meanwhile.
    loop {
        std::thread::park();
    }
}

/// SIGKILLs the process if `point` is the armed crash point and this is its `n`-th visit.
pub fn crash_point(point: &str) {
    if crash_due(point) {
        crash_now();
    }
}
