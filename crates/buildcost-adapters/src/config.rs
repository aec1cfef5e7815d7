//! `[[mapping]]` and `[integrations]`: how native CI payloads map to teams, products and
//! runner classes, and which level of a CI run counts as a build.

use buildcost_model::config::ConfigError;
use serde::{Deserialize, Serialize};

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

    /// Checks one rule; `prefix` is its key (`mapping[0]`).
    ///
    /// # Errors
    /// The first bad value, with its key.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.patterns().next().is_none() {
            return Err(ConfigError::new(
                prefix,
                "needs at least one of `repository`, `namespace`, `runner` to match on",
            ));
        }
        if self.team.is_none() && self.product.is_none() && self.runner_class.is_none() {
            return Err(ConfigError::new(
                prefix,
                "needs at least one of `team`, `product`, `runner_class` to set",
            ));
        }
        for (key, pattern) in self.patterns() {
            glob(pattern).map_err(|e| ConfigError::new(format!("{prefix}.{key}"), e))?;
        }
        for (key, value) in [
            ("team", &self.team),
            ("product", &self.product),
            ("runner_class", &self.runner_class),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(ConfigError::new(
                    format!("{prefix}.{key}"),
                    "must not be empty",
                ));
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
    /// Checks the section.
    ///
    /// # Errors
    /// A level that does not exist, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
                return Err(ConfigError::new(
                    key,
                    format!("`{value}` is not one of `{}`, `{}`", allowed[0], allowed[1]),
                ));
            }
        }
        Ok(())
    }
}
