//! The price of one build (spec section 5): the one function every path calls, the rolled-up
//! figures engine and the `build_cost` SQL function of the `builds` view alike.

use std::collections::HashMap;

use crate::config::{PriceDefaults, PricingConfig};

/// The resources a build is billed for: the event's own, else its runner class's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Billed {
    pub cpu_cores: f64,
    pub memory_gb: f64,
    pub gpus: f64,
}

/// Each configured runner class with every key filled from `[pricing.default]`, and the
/// default itself for classes the table does not list.
#[derive(Debug, Clone)]
pub struct Prices {
    classes: HashMap<String, PriceDefaults>,
    default: PriceDefaults,
}

impl Prices {
    /// The prices of a `[pricing]` section.
    pub fn new(pricing: &PricingConfig) -> Self {
        Prices {
            classes: pricing
                .runner_classes
                .iter()
                .map(|(name, class)| (name.clone(), class.resolve(&pricing.default)))
                .collect(),
            default: pricing.default,
        }
    }

    /// Whether the price table lists `runner_class`; a build of an unlisted class is priced at
    /// `[pricing.default]` and counted as unpriced.
    pub fn is_priced(&self, runner_class: &str) -> bool {
        self.classes.contains_key(runner_class)
    }

    /// The resolved prices of `runner_class`.
    pub fn class(&self, runner_class: &str) -> &PriceDefaults {
        self.classes.get(runner_class).unwrap_or(&self.default)
    }

    /// What a build is billed for: the event's `cpu_cores`, `memory_gb`, `gpus` when present,
    /// else its runner class's.
    pub fn billed(
        &self,
        runner_class: &str,
        cpu_cores: Option<f64>,
        memory_gb: Option<f64>,
        gpus: Option<i64>,
    ) -> Billed {
        let p = self.class(runner_class);
        Billed {
            cpu_cores: cpu_cores.unwrap_or(p.cpu_cores),
            memory_gb: memory_gb.unwrap_or(p.memory_gb),
            #[allow(clippy::cast_precision_loss)] // a GPU count is far below 2^53
            gpus: gpus.map_or(p.gpus, |g| g as f64),
        }
    }

    /// `cost_eur` of a build that ran `duration_s` seconds (queue time is not billed):
    ///
    /// ```text
    /// hours * (cpu_cores * eur_per_cpu_hour + memory_gb * eur_per_gb_hour
    ///          + gpus * eur_per_gpu_hour) + eur_per_build
    /// ```
    pub fn cost(
        &self,
        runner_class: &str,
        duration_s: f64,
        cpu_cores: Option<f64>,
        memory_gb: Option<f64>,
        gpus: Option<i64>,
    ) -> f64 {
        let p = self.class(runner_class);
        let b = self.billed(runner_class, cpu_cores, memory_gb, gpus);
        hours(duration_s)
            * (b.cpu_cores * p.eur_per_cpu_hour
                + b.memory_gb * p.eur_per_gb_hour
                + b.gpus * p.eur_per_gpu_hour)
            + p.eur_per_build
    }
}

/// The billed hours of a build that ran `duration_s` seconds.
pub fn hours(duration_s: f64) -> f64 {
    duration_s / 3600.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunnerPrice;

    fn pricing() -> PricingConfig {
        let mut p = PricingConfig::default();
        p.default.eur_per_build = 0.01;
        p.runner_classes.insert(
            "large".into(),
            RunnerPrice {
                cpu_cores: Some(8.0),
                eur_per_gpu_hour: Some(3.0),
                ..RunnerPrice::default()
            },
        );
        p
    }

    #[test]
    fn a_listed_class_takes_its_keys_and_the_default_for_the_rest() {
        let prices = Prices::new(&pricing());
        // 1800 s on `large`: 8 cores × 0.04 + 4 GB × 0.005 (default) + 0 GPUs, half an hour, + 0.01.
        let cost = prices.cost("large", 1800.0, None, None, None);
        assert!((cost - (0.5 * (8.0 * 0.04 + 4.0 * 0.005) + 0.01)).abs() < 1e-15);
        assert!(prices.is_priced("large"));
        // The event's resources win over the class's.
        let b = prices.billed("large", Some(2.0), Some(1.0), Some(1));
        assert_eq!((b.cpu_cores, b.memory_gb, b.gpus), (2.0, 1.0, 1.0));
        let cost = prices.cost("large", 3600.0, Some(2.0), Some(1.0), Some(1));
        assert!((cost - (2.0 * 0.04 + 0.005 + 3.0 + 0.01)).abs() < 1e-12);
    }

    #[test]
    fn an_unlisted_class_is_priced_at_the_default_and_unpriced() {
        let prices = Prices::new(&pricing());
        assert!(!prices.is_priced("gpu-xl"));
        let cost = prices.cost("gpu-xl", 3600.0, None, None, None);
        assert!((cost - (2.0 * 0.04 + 4.0 * 0.005 + 0.01)).abs() < 1e-15);
    }
}
