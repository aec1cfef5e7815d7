//! Failure classification from log excerpts (spec section 3).
//!
//! Rules are data: a TOML list of `(toolchain, category, pattern)` tried in order, first match
//! wins. Before matching, [`clean`] takes off what the CI system added (ANSI colours, CR line
//! ends, collectors' timestamps). The built-in set (`rules/default.toml`, the toolchains listed
//! in `docs/events.md`) is measured against the labelled corpus in
//! `tests/classifier/corpus.toml`; an operator replaces it with `classifier.rules_file`.

mod clean;

pub use clean::clean;

use regex::bytes::{RegexSet, RegexSetBuilder};
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
            if let Err(e) = compile_set(std::slice::from_ref(&spec.pattern)) {
                return Err(Error::ClassifierRule {
                    index,
                    message: if e.to_string().contains("Unicode not allowed") {
                        format!("{e}\n(patterns are ASCII: write `(?u)` before a Unicode class such as `\\p{{L}}`)")
                    } else {
                        e.to_string()
                    },
                    pattern: spec.pattern,
                });
            }
            rules.push(Rule {
                toolchain: spec.toolchain.unwrap_or_else(|| "any".into()),
                category,
                pattern: spec.pattern,
            });
        }
        let patterns: Vec<&str> = rules.iter().map(|r| r.pattern.as_str()).collect();
        let set = compile_set(&patterns).map_err(|e| {
            Error::ClassifierFile(format!("the rules do not compile together: {e}"))
        })?;
        Ok(Classifier { rules, set })
    }

    /// The rules, in match order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first rule matching a log excerpt (after [`clean`]), if any.
    pub fn match_log(&self, log: &str) -> Option<&Rule> {
        self.first_match(log).map(|i| &self.rules[i])
    }

    /// The index of the first rule matching the cleaned excerpt.
    fn first_match(&self, log: &str) -> Option<usize> {
        self.set.matches(clean(log).as_bytes()).iter().next()
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

/// The rules as one set. `\d`, `\w`, `\s`, `\b` and `(?i)` are ASCII (a pattern opts into
/// Unicode with `(?u)`; literal non-ASCII text such as `✖` matches as written): a Unicode word
/// boundary would make the lazy DFA give up on every excerpt with a non-ASCII character and
/// fall back to the far slower NFA simulation. The DFA gets room for ~100 rules.
fn compile_set<S: AsRef<str>>(patterns: &[S]) -> std::result::Result<RegexSet, regex::Error> {
    RegexSetBuilder::new(patterns.iter().map(AsRef::as_ref))
        .unicode(false)
        .dfa_size_limit(64 << 20)
        .build()
}

#[cfg(test)]
mod tests;
