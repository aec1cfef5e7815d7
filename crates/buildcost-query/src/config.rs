//! `[baseline]` and `[teams]`: the sections the team figures read; and [`FiguresConfig`],
//! everything the figures depend on besides the stored builds.

use std::path::PathBuf;

use buildcost_model::config::{ConfigError, PricingConfig};
use serde::{Deserialize, Serialize};

use crate::{QuerySettings, Result, TeamsFile};

/// `[baseline]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    pub window_days: u32,
    pub min_peers: u32,
    pub k_sigma: f64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            window_days: 28,
            min_peers: 5,
            k_sigma: 2.0,
        }
    }
}

impl BaselineConfig {
    /// Checks the section.
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.window_days == 0 {
            return Err(ConfigError::new(
                "baseline.window_days",
                "must be at least 1",
            ));
        }
        if self.min_peers == 0 {
            return Err(ConfigError::new("baseline.min_peers", "must be at least 1"));
        }
        if !(self.k_sigma.is_finite() && self.k_sigma > 0.0) {
            return Err(ConfigError::new(
                "baseline.k_sigma",
                "must be a finite number greater than 0",
            ));
        }
        Ok(())
    }
}

/// `[teams]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TeamsConfig {
    /// CSV `team,product,developers,peer_group`; optional.
    pub file: Option<PathBuf>,
}

/// What the figures depend on besides the stored builds: `[pricing]`, `[baseline]`,
/// `privacy.min_team_size` and the teams file, read again by each [`FiguresConfig::settings`]
/// (so the service picks up an edited teams file at its next refresh).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FiguresConfig {
    pub pricing: PricingConfig,
    pub baseline: BaselineConfig,
    pub min_team_size: u32,
    pub teams_file: Option<PathBuf>,
    pub delivery: buildcost_model::DeliveryConfig,
}

impl FiguresConfig {
    /// The settings, reading the teams file if there is one.
    ///
    /// # Errors
    /// The teams file is unusable.
    pub fn settings(&self) -> Result<QuerySettings> {
        let teams = match &self.teams_file {
            Some(path) => TeamsFile::load(path)?,
            None => TeamsFile::default(),
        };
        Ok(QuerySettings {
            pricing: self.pricing.clone(),
            baseline: self.baseline.clone(),
            min_team_size: self.min_team_size,
            teams,
            delivery: self.delivery.clone(),
        })
    }
}
