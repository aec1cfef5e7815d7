//! The configuration file (spec section 9): one serde struct per concern, every key defaulted,
//! unknown keys refused, cross-field rules checked by [`Config::validate`] with the key named.
//!
//! Loading from disk and resolving relative paths is the binary's job; this module is pure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::decode::DEFAULT_MAX_EVENT_BYTES;
use crate::{Error, Result};

/// The whole configuration.
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
}

/// `[store]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Folder of the Parquet store.
    pub path: PathBuf,
    /// Partitions (days) older than this are deleted.
    pub retention_days: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: default_store_path(),
            retention_days: default_retention_days(),
        }
    }
}

fn default_store_path() -> PathBuf {
    PathBuf::from("./buildcost-data")
}
fn default_retention_days() -> u32 {
    400
}

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

/// `[http]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: String,
    /// PEM certificate (chain) for HTTPS; with `tls_key_file`, or neither.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// User name → bcrypt hash of the password (`$2b$…`, as `htpasswd -nbB` or Prometheus'
    /// exporter-toolkit take). When set, every endpoint asks for HTTP basic auth.
    pub basic_auth_users: BTreeMap<String, String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9898".into(),
            tls_cert_file: None,
            tls_key_file: None,
            basic_auth_users: BTreeMap::new(),
        }
    }
}

/// Whether `hash` has the shape of a bcrypt hash: `$2a$`, `$2b$`, `$2x$` or `$2y$`, a two-digit
/// cost, then 53 characters of bcrypt's base64.
pub fn is_bcrypt_hash(hash: &str) -> bool {
    let b = hash.as_bytes();
    b.len() == 60
        && hash.starts_with("$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

/// `[refresh]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshConfig {
    /// A humantime duration: `60s`, `5m`.
    pub interval: String,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            interval: "60s".into(),
        }
    }
}

impl RefreshConfig {
    /// The parsed interval.
    ///
    /// # Errors
    /// Not a humantime duration, or zero.
    pub fn interval(&self) -> Result<Duration> {
        let d = humantime::parse_duration(&self.interval).map_err(|e| Error::Config {
            key: "refresh.interval".into(),
            message: format!(
                "`{}` is not a duration like `60s` or `5m`: {e}",
                self.interval
            ),
        })?;
        if d.is_zero() {
            return Err(Error::Config {
                key: "refresh.interval".into(),
                message: "must be longer than 0s".into(),
            });
        }
        Ok(d)
    }
}

/// `[ingest]` (not in the first spec: the knobs of decoding and batching).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Messages larger than this are rejected as `too_large`.
    pub max_event_bytes: usize,
    /// Rows per Parquet file written by a backfill; messages per partition batch from Kafka.
    pub batch_rows: usize,
    /// A Kafka partition's batch is written once its first message is this old (humantime).
    pub linger: String,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            batch_rows: 100_000,
            linger: "2s".into(),
        }
    }
}

impl IngestConfig {
    /// The parsed linger time.
    ///
    /// # Errors
    /// Not a humantime duration, or zero.
    pub fn linger(&self) -> Result<Duration> {
        let d = humantime::parse_duration(&self.linger).map_err(|e| Error::Config {
            key: "ingest.linger".into(),
            message: format!(
                "`{}` is not a duration like `2s` or `500ms`: {e}",
                self.linger
            ),
        })?;
        if d.is_zero() {
            return Err(key_error("ingest.linger", "must be longer than 0s"));
        }
        Ok(d)
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

/// `[teams]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TeamsConfig {
    /// CSV `team,product,developers,peer_group`; optional.
    pub file: Option<PathBuf>,
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
    fn check(&self, prefix: &str) -> Result<()> {
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
                return Err(Error::Config {
                    key: format!("{prefix}.{name}"),
                    message: format!("is {value}; it must be a finite number {rule}"),
                });
            }
        }
        if self.gpus.fract() != 0.0 {
            return Err(Error::Config {
                key: format!("{prefix}.gpus"),
                message: format!("is {}; it must be a whole number", self.gpus),
            });
        }
        Ok(())
    }
}

/// `[[mapping]]`: one rule for the CI-system adapters. A rule matches a build when every match
/// key it has (`repository`, `namespace`, `runner`) matches; it then gives the outputs it has
/// (`team`, `product`, `runner_class`) to a build whose payload does not carry them. For each
/// output, the first matching rule that sets it wins. Patterns are globs (`*`, `?`, `[ab]`,
/// `{a,b}`), case-insensitive, and `*` also matches `/`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MappingRule {
    /// Glob on the repository (`octo-org/payments-*`, `gitlab-org/gitlab-test`).
    pub repository: Option<String>,
    /// Glob on the namespace: GitHub owner, GitLab group path, Jenkins folder, Kubernetes namespace.
    pub namespace: Option<String>,
    /// Glob on a runner label, runner tag or node name; matches when any of them does.
    pub runner: Option<String>,
    pub team: Option<String>,
    pub product: Option<String>,
    pub runner_class: Option<String>,
}

impl MappingRule {
    /// The match keys this rule has, as (key, pattern).
    pub fn patterns(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("repository", self.repository.as_deref()),
            ("namespace", self.namespace.as_deref()),
            ("runner", self.runner.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
    }

    fn check(&self, prefix: &str) -> Result<()> {
        if self.patterns().next().is_none() {
            return Err(key_error(
                prefix,
                "needs at least one of `repository`, `namespace`, `runner` to match on",
            ));
        }
        if self.team.is_none() && self.product.is_none() && self.runner_class.is_none() {
            return Err(key_error(
                prefix,
                "needs at least one of `team`, `product`, `runner_class` to set",
            ));
        }
        for (key, pattern) in self.patterns() {
            glob(pattern).map_err(|e| key_error(&format!("{prefix}.{key}"), e))?;
        }
        for (key, value) in [
            ("team", &self.team),
            ("product", &self.product),
            ("runner_class", &self.runner_class),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(key_error(&format!("{prefix}.{key}"), "must not be empty"));
            }
        }
        Ok(())
    }
}

/// Compiles a `[[mapping]]` pattern: a case-insensitive glob where `*` also matches `/`.
///
/// # Errors
/// Not a glob (an unclosed `[` or `{`); the message says what is wrong.
pub fn glob(pattern: &str) -> std::result::Result<globset::GlobMatcher, String> {
    globset::GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("`{pattern}` is not a glob pattern: {}", e.kind()))
}

/// Which native events are builds. A CI run is reported at two levels (a GitHub workflow run
/// and its jobs, a GitLab pipeline and its jobs, a Tekton PipelineRun and its TaskRuns);
/// counting both would count the same runner time twice, so each source takes one level and
/// acknowledges the other without storing it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationsConfig {
    /// `jobs` (`workflow_job`, the default: each job knows its runner) or `runs` (`workflow_run`).
    pub github_builds: String,
    /// `jobs` (Job Hook, the default) or `pipelines` (Pipeline Hook).
    pub gitlab_builds: String,
    /// `taskruns` (the default) or `pipelineruns`.
    pub cdevents_builds: String,
}

impl Default for IntegrationsConfig {
    fn default() -> Self {
        IntegrationsConfig {
            github_builds: "jobs".into(),
            gitlab_builds: "jobs".into(),
            cdevents_builds: "taskruns".into(),
        }
    }
}

impl IntegrationsConfig {
    fn check(&self) -> Result<()> {
        for (key, value, allowed) in [
            (
                "integrations.github_builds",
                &self.github_builds,
                ["jobs", "runs"],
            ),
            (
                "integrations.gitlab_builds",
                &self.gitlab_builds,
                ["jobs", "pipelines"],
            ),
            (
                "integrations.cdevents_builds",
                &self.cdevents_builds,
                ["taskruns", "pipelineruns"],
            ),
        ] {
            if !allowed.contains(&value.as_str()) {
                return Err(key_error(
                    key,
                    format!("`{value}` is not one of `{}`, `{}`", allowed[0], allowed[1]),
                ));
            }
        }
        Ok(())
    }
}

/// `[webhook]`: the receiver `buildcost webhook`. A source whose secret is not configured is
/// refused (403), never accepted unverified.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    pub listen: String,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// File holding the GitHub webhook secret (checks `X-Hub-Signature-256`).
    pub github_secret_file: Option<PathBuf>,
    /// File holding the GitLab secret token (checks `X-Gitlab-Token`).
    pub gitlab_token_file: Option<PathBuf>,
    /// File holding the bearer token of `/webhook/jenkins` and `/webhook/cdevents`
    /// (`Authorization: Bearer …`).
    pub token_file: Option<PathBuf>,
    /// PEM certificate (chain) for HTTPS on the webhook; with `tls_key_file`, or neither.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            listen: "127.0.0.1:9899".into(),
            max_body_bytes: 1024 * 1024,
            github_secret_file: None,
            gitlab_token_file: None,
            token_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

fn key_error(key: &str, message: impl Into<String>) -> Error {
    Error::Config {
        key: key.into(),
        message: message.into(),
    }
}

impl Config {
    /// Parses a configuration file's text (no validation, no path resolution).
    ///
    /// # Errors
    /// Not TOML, an unknown key, or a value of the wrong type; the message names the key.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::ConfigSyntax(e.to_string()))
    }

    /// Makes relative paths relative to `base` (the config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() && !p.to_string_lossy().starts_with("s3://") {
                *p = base.join(&*p);
            }
        };
        join(&mut self.store.path);
        if let Some(p) = &mut self.privacy.pseudonym_key_file {
            join(p);
        }
        if let Some(p) = &mut self.teams.file {
            join(p);
        }
        if let Some(p) = &mut self.classifier.rules_file {
            join(p);
        }
        for p in [
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
    }

    /// The pseudonym key file: the configured one, else `<store.path>/pseudonym.key`.
    pub fn pseudonym_key_file(&self) -> PathBuf {
        self.privacy
            .pseudonym_key_file
            .clone()
            .unwrap_or_else(|| self.store.path.join("pseudonym.key"))
    }

    /// Checks every rule that a type cannot express.
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self) -> Result<()> {
        if self.store.path.as_os_str().is_empty() {
            return Err(key_error("store.path", "must not be empty"));
        }
        if self.store.path.to_string_lossy().starts_with("s3://") {
            return Err(key_error(
                "store.path",
                "object storage (s3://) is not supported by this build yet; use a local folder",
            ));
        }
        if self.store.retention_days == 0 {
            return Err(key_error("store.retention_days", "must be at least 1"));
        }
        for (key, value) in [
            ("kafka.brokers", &self.kafka.brokers),
            ("kafka.topic", &self.kafka.topic),
            ("kafka.group_id", &self.kafka.group_id),
            ("kafka.dead_letter_topic", &self.kafka.dead_letter_topic),
        ] {
            if value.trim().is_empty() {
                return Err(key_error(key, "must not be empty"));
            }
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(key_error(
                "http.listen",
                format!(
                    "`{}` is not an address like 127.0.0.1:9898",
                    self.http.listen
                ),
            ));
        }
        match (&self.http.tls_cert_file, &self.http.tls_key_file) {
            (Some(_), None) => {
                return Err(key_error(
                    "http.tls_key_file",
                    "is required with http.tls_cert_file",
                ))
            }
            (None, Some(_)) => {
                return Err(key_error(
                    "http.tls_cert_file",
                    "is required with http.tls_key_file",
                ))
            }
            _ => {}
        }
        for (user, hash) in &self.http.basic_auth_users {
            let key = format!("http.basic_auth_users.{user}");
            if user.is_empty() || user.contains(':') {
                return Err(key_error(&key, "a user name is not empty and has no `:`"));
            }
            if !is_bcrypt_hash(hash) {
                return Err(key_error(
                    &key,
                    "must be a bcrypt hash like $2b$10$… (make one with `htpasswd -nbBC 10 USER PASSWORD` or `buildcost hash-password`), never the password itself",
                ));
            }
        }
        self.refresh.interval()?;
        if self.ingest.max_event_bytes == 0 {
            return Err(key_error("ingest.max_event_bytes", "must be at least 1"));
        }
        if self.ingest.batch_rows == 0 {
            return Err(key_error("ingest.batch_rows", "must be at least 1"));
        }
        self.ingest.linger()?;
        if self.privacy.min_team_size == 0 {
            return Err(key_error("privacy.min_team_size", "must be at least 1"));
        }
        if self.baseline.window_days == 0 {
            return Err(key_error("baseline.window_days", "must be at least 1"));
        }
        if self.baseline.min_peers == 0 {
            return Err(key_error("baseline.min_peers", "must be at least 1"));
        }
        if !(self.baseline.k_sigma.is_finite() && self.baseline.k_sigma > 0.0) {
            return Err(key_error(
                "baseline.k_sigma",
                "must be a finite number greater than 0",
            ));
        }
        if self.pricing.currency.trim().is_empty() {
            return Err(key_error("pricing.currency", "must not be empty"));
        }
        self.pricing.default.check("pricing.default")?;
        for (name, class) in &self.pricing.runner_classes {
            class
                .resolve(&self.pricing.default)
                .check(&format!("pricing.runner_classes.\"{name}\""))?;
        }
        for (i, rule) in self.mapping.iter().enumerate() {
            rule.check(&format!("mapping[{i}]"))?;
        }
        self.integrations.check()?;
        if self.webhook.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(key_error(
                "webhook.listen",
                format!(
                    "`{}` is not an address like 127.0.0.1:9899",
                    self.webhook.listen
                ),
            ));
        }
        if self.webhook.max_body_bytes == 0 {
            return Err(key_error("webhook.max_body_bytes", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_spec_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.store.retention_days, 400);
        assert_eq!(c.kafka.topic, "ci.build-events");
        assert_eq!(c.kafka.dead_letter_topic, "ci.build-events.dlq");
        assert_eq!(c.http.listen, "127.0.0.1:9898");
        assert_eq!(c.refresh.interval().unwrap(), Duration::from_secs(60));
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
            ("[store]\npath = \"s3://bucket/x\"\n", "store.path"),
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
            let e = Config::from_toml(text)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text:?} gave {e}");
        }
        let e = Config::from_toml("[baseline]\nwindow_days = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("window_days"), "{e}");
    }

    #[test]
    fn runner_class_keys_fall_back_to_the_default() {
        let c = Config::from_toml(
            "[pricing.default]\ncpu_cores = 2\nmemory_gb = 8\neur_per_cpu_hour = 0.05\n\
             [pricing.runner_classes.large]\ncpu_cores = 8\n",
        )
        .unwrap();
        let large = c.pricing.runner_classes["large"].resolve(&c.pricing.default);
        assert_eq!(large.cpu_cores, 8.0);
        assert_eq!(large.memory_gb, 8.0);
        assert_eq!(large.eur_per_cpu_hour, 0.05);
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
