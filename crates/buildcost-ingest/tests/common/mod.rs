//! Helpers shared by the Kafka tests of this crate.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};

/// A dead letter as a reader outside buildcost sees it: its headers and its payload as text.
pub struct DeadLetter {
    pub headers: BTreeMap<String, String>,
    pub payload: String,
}

/// Reads `topic` from the start in a group of its own (`group`) until `want` messages have
/// come or 30 s have passed; returns what came, for the caller to count and check.
pub fn read_dead_letters(
    bootstrap: &str,
    topic: &str,
    group: &str,
    want: usize,
) -> Vec<DeadLetter> {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(&[topic]).unwrap();
    let mut letters = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while letters.len() < want && Instant::now() < deadline {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(200)) {
            let headers = m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            letters.push(DeadLetter {
                headers,
                payload: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            });
        }
    }
    letters
}
