//! Finding, reading and checking the configuration file.

use std::path::{Path, PathBuf};

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use buildcost_adapters::{IntegrationsConfig, MappingRule, NormaliserSettings};
use buildcost_exporter::config::{HttpConfig, RefreshConfig};
use buildcost_ingest::config::{IngestConfig, KafkaConfig};
use buildcost_model::config::{ClassifierConfig, ConfigError, PricingConfig, PrivacyConfig};
use buildcost_query::config::{BaselineConfig, TeamsConfig};
use buildcost_query::FiguresConfig;
use buildcost_store::config::StoreConfig;
use buildcost_webhook::WebhookConfig;
use serde::{Deserialize, Serialize};

/// The whole configuration file: each section is its crate's own (type, defaults and
/// checks); this composes them, resolves relative paths and checks what spans sections.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub store: StoreConfig,
    pub kafka: KafkaConfig,
    pub http: HttpConfig,
    pub refresh: RefreshConfig,
    pub ingest: IngestConfig,
    pub privacy: PrivacyConfig,
    pub baseline: BaselineConfig,
    pub teams: TeamsConfig,
    pub classifier: ClassifierConfig,
    pub pricing: PricingConfig,
    /// `[[mapping]]`: team, product and runner class for CI-system payloads that do not carry them.
    pub mapping: Vec<MappingRule>,
    pub integrations: IntegrationsConfig,
    pub webhook: WebhookConfig,
    /// `[focus]`: the FOCUS export's provider and billing account.
    pub focus: buildcost_report::focus::FocusConfig,
    /// `[delivery]`: request ids, production environments, orphan repositories, lead times.
    pub delivery: buildcost_model::DeliveryConfig,
    /// `[smtp]`: the relay `report weekly --send` mails through.
    pub smtp: buildcost_report::send::SmtpConfig,
}

impl Config {
    /// Parses a configuration file's text (no validation, no path resolution).
    ///
    /// # Errors
    /// Not TOML, an unknown key, or a value of the wrong type; the message names the key.
    pub fn from_toml(text: &str) -> Result<Self> {
        let deserializer =
            toml::Deserializer::parse(text).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            if key.is_empty() || key == "." {
                anyhow::anyhow!("configuration: {inner}")
            } else {
                anyhow::anyhow!("configuration key `{key}`: {inner}")
            }
        })
    }

    /// Makes relative paths relative to `base` (the config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() && !p.to_string_lossy().contains("://") {
                *p = base.join(&*p);
            }
        };
        join(&mut self.store.path);
        for p in [
            &mut self.privacy.pseudonym_key_file,
            &mut self.teams.file,
            &mut self.classifier.rules_file,
            &mut self.http.tls_cert_file,
            &mut self.http.tls_key_file,
            &mut self.webhook.tls_cert_file,
            &mut self.webhook.tls_key_file,
            &mut self.webhook.github_secret_file,
            &mut self.webhook.gitlab_token_file,
            &mut self.webhook.token_file,
        ]
        .into_iter()
        .flatten()
        {
            join(p);
        }
        self.smtp.resolve_paths(base);
        for route in &mut self.delivery.route {
            for secret in [&mut route.teams_webhook, &mut route.slack_webhook]
                .into_iter()
                .flatten()
            {
                secret.resolve(base);
            }
        }
    }

    /// The pseudonym key file: the configured one, else `<store.path>/pseudonym.key`.
    pub fn pseudonym_key_file(&self) -> PathBuf {
        self.privacy
            .pseudonym_key_file
            .clone()
            .unwrap_or_else(|| self.store.path.join("pseudonym.key"))
    }

    /// Checks every section, then what spans them.
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.store.validate()?;
        self.kafka.validate()?;
        self.http.validate()?;
        self.refresh.validate()?;
        self.ingest.validate()?;
        self.privacy.validate()?;
        self.baseline.validate()?;
        self.pricing.validate()?;
        for (i, rule) in self.mapping.iter().enumerate() {
            rule.validate(&format!("mapping[{i}]"))?;
        }
        self.integrations.validate()?;
        self.webhook.validate()?;
        self.focus.validate()?;
        self.delivery.validate()?;
        self.smtp.validate()?;
        if self.smtp.host.is_none() {
            if let Some(i) = self.delivery.route.iter().position(|r| !r.email.is_empty()) {
                return Err(ConfigError::new(
                    format!("delivery.route[{i}].email"),
                    "needs an [smtp] section with host and from",
                ));
            }
        }
        if self.store.is_remote() && self.privacy.pseudonym_key_file.is_none() {
            return Err(ConfigError::new(
                "privacy.pseudonym_key_file",
                "must be set when store.path is an object store: mount the key as a file (a \
                 Kubernetes Secret) in every replica; it is never created nor kept in the bucket",
            ));
        }
        Ok(())
    }

    /// What the figures depend on besides the stored builds.
    pub fn figures(&self) -> FiguresConfig {
        FiguresConfig {
            pricing: self.pricing.clone(),
            baseline: self.baseline.clone(),
            min_team_size: self.privacy.min_team_size,
            teams_file: self.teams.file.clone(),
            delivery: self.delivery.clone(),
        }
    }

    /// What the CI-system normalisers are configured with.
    pub fn normaliser(&self) -> NormaliserSettings {
        NormaliserSettings {
            mapping: self.mapping.clone(),
            integrations: self.integrations.clone(),
            priced_classes: self.priced_classes(),
            max_payload_bytes: self.webhook.max_body_bytes,
        }
    }

    /// The runner classes of the price table.
    pub fn priced_classes(&self) -> BTreeSet<String> {
        self.pricing.runner_classes.keys().cloned().collect()
    }
}

/// Where the configuration came from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    Defaults,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::File(p) => write!(f, "{}", p.display()),
            ConfigSource::Defaults => f.write_str("built-in defaults"),
        }
    }
}

/// Loads the configuration: `--config`, else `$BUILDCOST_CONFIG`, else `./buildcost.toml`,
/// else built-in defaults. Relative paths in a file are relative to the file's folder.
///
/// # Errors
/// A named file is missing, or the file is invalid; the message names the key.
pub fn load(explicit: Option<&Path>) -> Result<(Config, ConfigSource)> {
    let from_env = std::env::var_os("BUILDCOST_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let chosen = explicit.map(Path::to_path_buf).or(from_env);
    let path = match chosen {
        Some(p) => p,
        None => {
            let local = PathBuf::from("buildcost.toml");
            if !local.exists() {
                let config = Config::default();
                config.validate()?;
                return Ok((config, ConfigSource::Defaults));
            }
            local
        }
    };
    let config = load_file(&path)?;
    Ok((config, ConfigSource::File(path)))
}

/// Reads, resolves and validates one configuration file.
///
/// # Errors
/// As [`load`].
pub fn load_file(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration file `{}`", path.display()))?;
    let mut config = Config::from_toml(&text)
        .with_context(|| format!("invalid configuration file `{}`", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    config.resolve_paths(base);
    config
        .validate()
        .with_context(|| format!("invalid configuration file `{}`", path.display()))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn empty_file_gives_the_spec_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.store.retention_days, 400);
        assert_eq!(c.kafka.topic, "ci.build-events");
        assert_eq!(c.kafka.dead_letter_topic, "ci.build-events.dlq");
        assert_eq!(c.http.listen, "127.0.0.1:9898");
        assert_eq!(c.refresh.interval, Duration::from_secs(60));
        assert_eq!(c.privacy.min_team_size, 5);
        assert_eq!(
            (
                c.baseline.window_days,
                c.baseline.min_peers,
                c.baseline.k_sigma
            ),
            (28, 5, 2.0)
        );
        assert_eq!(c.pricing.currency, "EUR");
        assert_eq!(
            c.pseudonym_key_file(),
            PathBuf::from("./buildcost-data/pseudonym.key")
        );
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = Config::from_toml("[baseline]\nk_sgima = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("k_sgima"), "{e}");
        let e = Config::from_toml("[nonsense]\n").unwrap_err().to_string();
        assert!(e.contains("nonsense"), "{e}");
        let e = Config::from_toml("[pricing.runner_classes.small]\ncpus = 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cpus"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("[baseline]\nk_sigma = -1.0\n", "baseline.k_sigma"),
            ("[refresh]\ninterval = \"soon\"\n", "refresh.interval"),
            ("[http]\nlisten = \"localhost\"\n", "http.listen"),
            ("[privacy]\nmin_team_size = 0\n", "privacy.min_team_size"),
            (
                "[pricing.default]\neur_per_cpu_hour = -0.1\n",
                "pricing.default.eur_per_cpu_hour",
            ),
            (
                "[pricing.runner_classes.\"gpu-xl\"]\ncpu_cores = 0.0\n",
                "pricing.runner_classes.\"gpu-xl\".cpu_cores",
            ),
            (
                "[store]\npath = \"s3://bucket/x\"\n",
                "privacy.pseudonym_key_file",
            ),
            (
                "[store]\npath = \"s3://bucket/x\"\n[store.s3]\nendpoint = \"http://127.0.0.1:9000\"\n",
                "store.s3.allow_http",
            ),
            (
                "[store]\npath = \"s3://bucket/x\"\n[store.s3]\naccess_key_id = \"AK\"\n",
                "access_key_id",
            ),
            ("[store]\npath = \"ftp://bucket/x\"\n", "store.path"),
            (
                "[[mapping]]\nteam = \"a\"\n[[mapping]]\nrepository = \"x/[y\"\nteam = \"b\"\n",
                "mapping[0]",
            ),
            (
                "[[mapping]]\nrepository = \"x/*\"\nteam = \"a\"\n[[mapping]]\nrepository = \"x/[y\"\nteam = \"b\"\n",
                "mapping[1].repository",
            ),
            ("[[mapping]]\nrunner = \"gpu-*\"\n", "mapping[0]"),
            ("[integrations]\ngithub_builds = \"steps\"\n", "integrations.github_builds"),
            ("[webhook]\nlisten = \"9899\"\n", "webhook.listen"),
        ];
        for (text, key) in cases {
            // A value of the right type is checked by `validate`; one the file cannot even
            // read (a duration that is not one) when the file is read: both name the key.
            let e = match Config::from_toml(text) {
                Ok(c) => c.validate().unwrap_err().to_string(),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(key), "{text:?} gave {e}");
        }
        let e = Config::from_toml("[baseline]\nwindow_days = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("window_days"), "{e}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let mut c =
            Config::from_toml("[store]\npath = \"data\"\n[teams]\nfile = \"teams.csv\"\n").unwrap();
        c.resolve_paths(Path::new("/etc/buildcost"));
        assert_eq!(c.store.path, PathBuf::from("/etc/buildcost/data"));
        assert_eq!(
            c.teams.file,
            Some(PathBuf::from("/etc/buildcost/teams.csv"))
        );
        assert_eq!(
            c.pseudonym_key_file(),
            PathBuf::from("/etc/buildcost/data/pseudonym.key")
        );
    }
}
