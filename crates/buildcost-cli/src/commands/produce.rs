//! Producing generated events into Kafka: shared by `demo` and `generate --kafka`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::Config;
use anyhow::{Context, Result};
use buildcost_generate::{GenStats, Generator};
use chrono::{TimeDelta, Utc};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

/// A producer for the configured brokers, with `[kafka.properties]` (TLS, SASL, …).
///
/// # Errors
/// librdkafka refuses a property.
pub fn producer(config: &Config) -> Result<ThreadedProducer<DefaultProducerContext>> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka.brokers);
    c.set("linger.ms", "20");
    for (k, v) in &config.kafka.properties {
        c.set(k, v);
    }
    c.create()
        .context("cannot create the Kafka producer (check [kafka])")
}

/// Sends one message, waiting while librdkafka's queue is full; false once feeding stopped.
pub fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    payload: &[u8],
    feeding: &AtomicBool,
) -> bool {
    let mut record = BaseRecord::<(), [u8]>::to(topic).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return true,
            Err((e, back)) => {
                if e.rdkafka_error_code() != Some(RDKafkaErrorCode::QueueFull) {
                    tracing::warn!(error = %e, "the demo feed could not produce a message");
                    return true;
                }
                if !feeding.load(Ordering::Relaxed) {
                    return false;
                }
                // Back-pressure: librdkafka's background thread drains the queue.
                std::thread::sleep(Duration::from_millis(5));
                record = back;
            }
        }
    }
}

/// Live builds until `running` turns false: every second, the builds of `speed` seconds of a
/// `builds_per_day` organisation, finished in the last second (so the figures stay realistic).
pub fn live(
    generator: &mut Generator,
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    running: &AtomicBool,
    builds_per_day: u32,
    speed: u32,
) -> GenStats {
    let per_second = f64::from(builds_per_day) * f64::from(speed) / 86_400.0;
    let mut owed = 0.0;
    let mut stats = GenStats::default();
    while running.load(Ordering::Relaxed) {
        // Pacing the feed, not synchronising anything.
        std::thread::sleep(Duration::from_secs(1));
        owed += per_second;
        let n = owed.floor();
        owed -= n;
        let lines = generator.span(Utc::now(), TimeDelta::seconds(1), n as u32, &mut stats);
        for line in lines {
            if !send(producer, topic, line.as_bytes(), running) {
                return stats;
            }
        }
    }
    stats
}
