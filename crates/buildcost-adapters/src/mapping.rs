//! `[[mapping]]` rules: team, product and runner class for builds whose payload lacks them.

use crate::config::{glob, MappingRule};
use globset::GlobMatcher;

/// What a rule can match on, for one build.
#[derive(Debug, Clone, Default)]
pub struct Subject<'a> {
    pub repository: &'a str,
    pub namespace: Option<&'a str>,
    /// Runner labels, runner tags or node names.
    pub runners: &'a [String],
}

#[derive(Debug)]
struct Rule {
    repository: Option<GlobMatcher>,
    namespace: Option<GlobMatcher>,
    runner: Option<GlobMatcher>,
    team: Option<String>,
    product: Option<String>,
    runner_class: Option<String>,
}

impl Rule {
    fn matches(&self, s: &Subject<'_>) -> bool {
        self.repository
            .as_ref()
            .is_none_or(|g| g.is_match(s.repository))
            && self
                .namespace
                .as_ref()
                .is_none_or(|g| s.namespace.is_some_and(|n| g.is_match(n)))
            && self
                .runner
                .as_ref()
                .is_none_or(|g| s.runners.iter().any(|r| g.is_match(r)))
    }
}

/// The compiled rules, in configuration order.
#[derive(Debug, Default)]
pub struct Mapper {
    rules: Vec<Rule>,
}

/// An output of the rules.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Output {
    Team,
    Product,
    RunnerClass,
}

impl Mapper {
    /// Compiles `rules`.
    ///
    /// # Errors
    /// A pattern is not a glob; the message names the rule (`mapping[2].repository`).
    pub fn new(rules: &[MappingRule]) -> Result<Self, String> {
        let compile = |i: usize, key: &str, p: &Option<String>| -> Result<_, String> {
            p.as_deref()
                .map(glob)
                .transpose()
                .map_err(|e| format!("mapping[{i}].{key}: {e}"))
        };
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Ok(Rule {
                    repository: compile(i, "repository", &r.repository)?,
                    namespace: compile(i, "namespace", &r.namespace)?,
                    runner: compile(i, "runner", &r.runner)?,
                    team: r.team.clone(),
                    product: r.product.clone(),
                    runner_class: r.runner_class.clone(),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Mapper { rules })
    }

    /// The value of the first matching rule that sets `output`, with the rule's index.
    pub(crate) fn find(&self, output: Output, subject: &Subject<'_>) -> Option<(usize, &str)> {
        self.rules.iter().enumerate().find_map(|(i, r)| {
            let value = match output {
                Output::Team => r.team.as_deref(),
                Output::Product => r.product.as_deref(),
                Output::RunnerClass => r.runner_class.as_deref(),
            }?;
            r.matches(subject).then_some((i, value))
        })
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(repository: Option<&str>, runner: Option<&str>, team: Option<&str>) -> MappingRule {
        MappingRule {
            repository: repository.map(str::to_owned),
            runner: runner.map(str::to_owned),
            team: team.map(str::to_owned),
            runner_class: runner.map(|_| "large".to_owned()),
            ..MappingRule::default()
        }
    }

    #[test]
    fn the_first_matching_rule_that_sets_an_output_wins() {
        let mapper = Mapper::new(&[
            rule(Some("acme/pay-*"), None, Some("payments")),
            rule(Some("ACME/*"), None, Some("platform")),
            rule(None, Some("big-*"), None),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let labels = vec!["linux".to_owned(), "big-x64".to_owned()];
        let subject = |repository| Subject {
            repository,
            namespace: Some("acme"),
            runners: &labels,
        };
        assert_eq!(
            mapper.find(Output::Team, &subject("acme/pay-api")),
            Some((0, "payments"))
        );
        assert_eq!(
            mapper.find(Output::Team, &subject("acme/group/web")),
            Some((1, "platform")),
            "`*` also matches `/`, and patterns ignore case"
        );
        assert_eq!(mapper.find(Output::Team, &subject("other/web")), None);
        assert_eq!(
            mapper.find(Output::RunnerClass, &subject("other/web")),
            Some((2, "large"))
        );
        assert_eq!(mapper.find(Output::Product, &subject("acme/pay-api")), None);
    }

    #[test]
    fn a_bad_pattern_names_its_rule() {
        let e = Mapper::new(&[rule(Some("acme/[pay"), None, Some("t"))]).unwrap_err();
        assert!(e.starts_with("mapping[0].repository:"), "{e}");
    }
}
