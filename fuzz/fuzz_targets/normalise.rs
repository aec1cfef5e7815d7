//! The CI-system normalisers (GitHub, GitLab, Jenkins, CDEvents) on arbitrary bytes: an event,
//! an ignored payload or a rejection, never a panic.
#![no_main]

use std::sync::LazyLock;

use buildcost_adapters::{Format, Normaliser};
use buildcost_model::config::Config;
use libfuzzer_sys::fuzz_target;

static NORMALISER: LazyLock<Normaliser> =
    LazyLock::new(|| Normaliser::new(&Config::default()).expect("the default mapping"));

fuzz_target!(|data: &[u8]| {
    for format in Format::ALL {
        let _ = NORMALISER.normalise(*format, data);
    }
});
