//! What the benchmarks in `benches/` share: a realistic mix of generated events.

use buildcost_generate::{GenStats, Generator, GeneratorConfig};
use buildcost_model::{Classifier, Decoder, Pseudonymiser};
use chrono::{DateTime, TimeZone, Utc};

/// The instant the generated workloads end at.
pub fn end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// `days` of `per_day` valid builds of `teams` teams, as NDJSON lines (no malformed ones).
pub fn events(teams: usize, days: u32, per_day: u32) -> Vec<String> {
    let mut generator = Generator::new(GeneratorConfig {
        seed: 7,
        teams,
        days,
        builds_per_day: per_day,
        end: end(),
        // Builds only: the benchmarks' figures are per build, comparable with earlier runs.
        deliveries: false,
        ..GeneratorConfig::default()
    });
    let mut lines = Vec::new();
    let mut stats = GenStats::default();
    generator.for_each_line(&mut |l| lines.push(l.to_owned()), &mut stats);
    lines
}

/// The decoder of the service, with a fixed key.
///
/// # Panics
/// Never: the key and the built-in rules are valid.
pub fn decoder() -> Decoder {
    #[allow(clippy::expect_used)]
    Decoder::new(
        65_536,
        Pseudonymiser::new(b"bench-key-bench-key-bench-key-32").expect("a valid key"),
        Classifier::builtin().expect("the built-in rules"),
    )
}
