//! `[kafka]` and `[ingest]`: the topic to consume and how messages are decoded and batched.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use buildcost_model::config::{duration, ConfigError};
use buildcost_model::DEFAULT_MAX_EVENT_BYTES;
use serde::{Deserialize, Serialize};

use crate::KafkaSettings;

/// `[kafka]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    pub brokers: String,
    pub topic: String,
    pub group_id: String,
    pub dead_letter_topic: String,
    /// Passed to librdkafka as they are (`security.protocol`, `sasl.*`, …).
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "localhost:9092".into(),
            topic: "ci.build-events".into(),
            group_id: "buildcost".into(),
            dead_letter_topic: "ci.build-events.dlq".into(),
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// Checks the section.
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("kafka.brokers", &self.brokers),
            ("kafka.topic", &self.topic),
            ("kafka.group_id", &self.group_id),
            ("kafka.dead_letter_topic", &self.dead_letter_topic),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::new(key, "must not be empty"));
            }
        }
        Ok(())
    }

    /// What the consumer needs: this section, batching from `[ingest]`, and the priced
    /// runner classes (to count unpriced builds).
    pub fn settings(
        &self,
        ingest: &IngestConfig,
        priced_classes: BTreeSet<String>,
    ) -> KafkaSettings {
        KafkaSettings {
            brokers: self.brokers.clone(),
            topic: self.topic.clone(),
            group_id: self.group_id.clone(),
            dead_letter_topic: self.dead_letter_topic.clone(),
            properties: self.properties.clone(),
            batch_messages: ingest.batch_rows,
            linger: ingest.linger,
            priced_classes: Some(priced_classes),
        }
    }
}

/// `[ingest]`: the knobs of decoding and batching.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Messages larger than this are rejected as `too_large`.
    pub max_event_bytes: usize,
    /// Rows per Parquet file written by a backfill; messages per partition batch from Kafka.
    pub batch_rows: usize,
    /// A Kafka partition's batch is written once its first message is this old (`2s`).
    #[serde(with = "duration")]
    pub linger: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            batch_rows: 100_000,
            linger: Duration::from_secs(2),
        }
    }
}

impl IngestConfig {
    /// Checks the section.
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_event_bytes == 0 {
            return Err(ConfigError::new(
                "ingest.max_event_bytes",
                "must be at least 1",
            ));
        }
        if self.batch_rows == 0 {
            return Err(ConfigError::new("ingest.batch_rows", "must be at least 1"));
        }
        if self.linger.is_zero() {
            return Err(ConfigError::new("ingest.linger", "must be longer than 0s"));
        }
        Ok(())
    }
}
