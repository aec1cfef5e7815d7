//! The sections of the configuration file (spec section 9) that the model's rules read:
//! `[pricing]` (the price of a build), `[privacy]` (pseudonyms, the minimum team size) and
//! `[classifier]` (failure categories); and what every crate's section shares: the error that
//! names a key ([`ConfigError`]) and durations written like `60s` ([`duration`]).
//!
//! Each crate owns its section (its struct, defaults and `validate()`); the binary composes
//! them into one file. Loading from disk is the binary's job; this module is pure.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A configuration key with a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration key `{key}`: {message}")]
pub struct ConfigError {
    /// The key, dotted from the file's top: `baseline.k_sigma`.
    pub key: String,
    pub message: String,
}

impl ConfigError {
    /// The error of `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A duration written as text (`60s`, `5m`, `500ms`), parsed once, when the file is read.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Parses `60s`, `5m`, `1h 30m`.
    ///
    /// # Errors
    /// Not a duration; the message shows the text and an example.
    pub fn parse(text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text)
            .map_err(|e| format!("`{text}` is not a duration like `60s` or `5m`: {e}"))
    }

    /// Deserializes a duration from its text (`#[serde(with = "duration")]`).
    ///
    /// # Errors
    /// The text is not a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    /// Serializes a duration as text (`1m 30s`).
    ///
    /// # Errors
    /// As the serializer's.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// `[privacy]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    pub min_team_size: u32,
    /// Default `<store.path>/pseudonym.key`.
    pub pseudonym_key_file: Option<PathBuf>,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            min_team_size: 5,
            pseudonym_key_file: None,
        }
    }
}

impl PrivacyConfig {
    /// Checks the section.
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_team_size == 0 {
            return Err(ConfigError::new(
                "privacy.min_team_size",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `[classifier]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    /// Replaces the built-in rules; optional.
    pub rules_file: Option<PathBuf>,
}

/// `[pricing]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PricingConfig {
    pub currency: String,
    pub default: PriceDefaults,
    pub runner_classes: BTreeMap<String, RunnerPrice>,
}

impl Default for PricingConfig {
    fn default() -> Self {
        PricingConfig {
            currency: "EUR".into(),
            default: PriceDefaults::default(),
            runner_classes: BTreeMap::new(),
        }
    }
}

/// `[pricing.default]`: the fallback for every missing class and every missing key.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PriceDefaults {
    pub cpu_cores: f64,
    pub memory_gb: f64,
    pub gpus: f64,
    pub eur_per_cpu_hour: f64,
    pub eur_per_gb_hour: f64,
    pub eur_per_gpu_hour: f64,
    pub eur_per_build: f64,
}

impl Default for PriceDefaults {
    /// A small cloud VM's list price, rounded: 2 vCPU, 4 GB.
    fn default() -> Self {
        PriceDefaults {
            cpu_cores: 2.0,
            memory_gb: 4.0,
            gpus: 0.0,
            eur_per_cpu_hour: 0.04,
            eur_per_gb_hour: 0.005,
            eur_per_gpu_hour: 2.5,
            eur_per_build: 0.0,
        }
    }
}

/// `[pricing.runner_classes."NAME"]`: each key optional.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunnerPrice {
    pub cpu_cores: Option<f64>,
    pub memory_gb: Option<f64>,
    pub gpus: Option<f64>,
    pub eur_per_cpu_hour: Option<f64>,
    pub eur_per_gb_hour: Option<f64>,
    pub eur_per_gpu_hour: Option<f64>,
    pub eur_per_build: Option<f64>,
}

impl RunnerPrice {
    /// Every key filled, missing ones from `default` (spec section 5).
    pub fn resolve(&self, default: &PriceDefaults) -> PriceDefaults {
        PriceDefaults {
            cpu_cores: self.cpu_cores.unwrap_or(default.cpu_cores),
            memory_gb: self.memory_gb.unwrap_or(default.memory_gb),
            gpus: self.gpus.unwrap_or(default.gpus),
            eur_per_cpu_hour: self.eur_per_cpu_hour.unwrap_or(default.eur_per_cpu_hour),
            eur_per_gb_hour: self.eur_per_gb_hour.unwrap_or(default.eur_per_gb_hour),
            eur_per_gpu_hour: self.eur_per_gpu_hour.unwrap_or(default.eur_per_gpu_hour),
            eur_per_build: self.eur_per_build.unwrap_or(default.eur_per_build),
        }
    }
}

impl PriceDefaults {
    fn check(&self, prefix: &str) -> Result<(), ConfigError> {
        let fields = [
            ("cpu_cores", self.cpu_cores, true),
            ("memory_gb", self.memory_gb, false),
            ("gpus", self.gpus, false),
            ("eur_per_cpu_hour", self.eur_per_cpu_hour, false),
            ("eur_per_gb_hour", self.eur_per_gb_hour, false),
            ("eur_per_gpu_hour", self.eur_per_gpu_hour, false),
            ("eur_per_build", self.eur_per_build, false),
        ];
        for (name, value, strictly_positive) in fields {
            let ok = value.is_finite()
                && if strictly_positive {
                    value > 0.0
                } else {
                    value >= 0.0
                };
            if !ok {
                let rule = if strictly_positive {
                    "greater than 0"
                } else {
                    "0 or more"
                };
                return Err(ConfigError::new(
                    format!("{prefix}.{name}"),
                    format!("is {value}; it must be a finite number {rule}"),
                ));
            }
        }
        if self.gpus.fract() != 0.0 {
            return Err(ConfigError::new(
                format!("{prefix}.gpus"),
                format!("is {}; it must be a whole number", self.gpus),
            ));
        }
        Ok(())
    }
}

impl PricingConfig {
    /// Checks the section: every price of the default and of each class.
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.currency.trim().is_empty() {
            return Err(ConfigError::new("pricing.currency", "must not be empty"));
        }
        self.default.check("pricing.default")?;
        for (name, class) in &self.runner_classes {
            class
                .resolve(&self.default)
                .check(&format!("pricing.runner_classes.\"{name}\""))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_class_keys_fall_back_to_the_default() {
        let c: PricingConfig = toml::from_str(
            "[default]\ncpu_cores = 2\nmemory_gb = 8\neur_per_cpu_hour = 0.05\n\
             [runner_classes.large]\ncpu_cores = 8\n",
        )
        .unwrap();
        let large = c.runner_classes["large"].resolve(&c.default);
        assert_eq!(large.cpu_cores, 8.0);
        assert_eq!(large.memory_gb, 8.0);
        assert_eq!(large.eur_per_cpu_hour, 0.05);
    }

    #[test]
    fn bad_prices_name_their_key() {
        let mut c = PricingConfig::default();
        c.default.eur_per_cpu_hour = -0.1;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("pricing.default.eur_per_cpu_hour"), "{e}");
        let mut c = PricingConfig::default();
        c.runner_classes.insert(
            "gpu-xl".into(),
            RunnerPrice {
                cpu_cores: Some(0.0),
                ..RunnerPrice::default()
            },
        );
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("pricing.runner_classes.\"gpu-xl\".cpu_cores"),
            "{e}"
        );
    }

    #[test]
    fn durations_read_as_text() {
        assert_eq!(
            duration::parse("60s"),
            Ok(std::time::Duration::from_secs(60))
        );
        assert!(duration::parse("soon").unwrap_err().contains("soon"));
    }
}
