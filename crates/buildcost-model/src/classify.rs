//! Failure classification from log excerpts (spec section 3).
//!
//! Rules are data: a TOML list of `(toolchain, category, pattern)` tried in order, first match
//! wins. The built-in set (`rules/default.toml`) covers javac, rustc, go, tsc, eslint, prettier,
//! python/pytest, maven, gradle and npm; an operator replaces it with `classifier.rules_file`.

use regex::RegexSet;
use serde::Deserialize;

use crate::event::{CategorySource, FailureCategory, FailureStage};
use crate::{Error, Result};

/// The built-in rules file, shipped inside the binary.
pub const DEFAULT_RULES: &str = include_str!("../rules/default.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    #[serde(default)]
    toolchain: Option<String>,
    category: String,
    pattern: String,
}

/// One compiled rule, kept for reporting which rule matched.
#[derive(Debug, Clone)]
pub struct Rule {
    pub toolchain: String,
    pub category: FailureCategory,
    pub pattern: String,
}

/// Classifies failed builds by their log excerpt, then their failure stage.
#[derive(Debug, Clone)]
pub struct Classifier {
    rules: Vec<Rule>,
    set: RegexSet,
}

impl Classifier {
    /// The classifier with the built-in rules.
    ///
    /// # Errors
    /// Never in a released build (the built-in rules are tested); kept fallible for symmetry.
    pub fn builtin() -> Result<Self> {
        Self::from_toml(DEFAULT_RULES)
    }

    /// A classifier from a rules file's text.
    ///
    /// # Errors
    /// The text is not a rules file, names a category the log cannot tell (`flaky_test`,
    /// `unknown`) or one that does not exist, or a pattern does not compile.
    pub fn from_toml(text: &str) -> Result<Self> {
        let file: RulesFile =
            toml::from_str(text).map_err(|e| Error::ClassifierFile(e.to_string()))?;
        let mut rules = Vec::with_capacity(file.rule.len());
        for (index, spec) in file.rule.into_iter().enumerate() {
            let category = FailureCategory::parse(&spec.category)
                .filter(|c| !matches!(c, FailureCategory::FlakyTest | FailureCategory::Unknown))
                .ok_or_else(|| Error::ClassifierRule {
                    index,
                    pattern: spec.pattern.clone(),
                    message: format!(
                        "category `{}` is not one of syntax, compile, lint, format, test, dependency, infra",
                        spec.category
                    ),
                })?;
            if let Err(e) = regex::Regex::new(&spec.pattern) {
                return Err(Error::ClassifierRule {
                    index,
                    pattern: spec.pattern,
                    message: e.to_string(),
                });
            }
            rules.push(Rule {
                toolchain: spec.toolchain.unwrap_or_else(|| "any".into()),
                category,
                pattern: spec.pattern,
            });
        }
        let set = RegexSet::new(rules.iter().map(|r| r.pattern.as_str())).map_err(|e| {
            Error::ClassifierFile(format!("the rules do not compile together: {e}"))
        })?;
        Ok(Classifier { rules, set })
    }

    /// The rules, in match order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first rule matching a log excerpt, if any.
    pub fn match_log(&self, log: &str) -> Option<&Rule> {
        self.set.matches(log).iter().next().map(|i| &self.rules[i])
    }

    /// The category of a failed build with no category of its own: the log first, then the
    /// stage, then `unknown`; with where it came from.
    pub fn classify(
        &self,
        log_excerpt: Option<&str>,
        stage: Option<FailureStage>,
    ) -> (FailureCategory, CategorySource) {
        if let Some(rule) = log_excerpt.and_then(|log| self.match_log(log)) {
            return (rule.category, CategorySource::Log);
        }
        if let Some(category) = stage.and_then(FailureStage::implied_category) {
            return (category, CategorySource::Stage);
        }
        (FailureCategory::Unknown, CategorySource::Default)
    }
}

#[cfg(test)]
mod tests;
