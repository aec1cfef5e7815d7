//! The build event a normaliser produces: the spec's schema (version 1), as JSON.

use std::collections::BTreeMap;

use serde::Serialize;

/// One build event (spec section 2). Serialises to the JSON the core decoder reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildEvent {
    pub schema_version: u8,
    pub event_id: String,
    pub source: String,
    pub build_id: String,
    pub pipeline: String,
    pub repository: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    pub team: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// The CI system's user name; replaced by a pseudonym at ingest, never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_category: Option<String>,
    /// Error text the CI system reported; used only to classify the failure at ingest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_excerpt: Option<String>,
    pub runner_class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The PR title or head commit subject: request ids are found in it at ingest; never
    /// stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_title: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl BuildEvent {
    /// The event as one line of JSON.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // A struct of strings and integers always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
