//! Builds of the generated organisation, day by day, as NDJSON lines.

use std::collections::VecDeque;
use std::io::Write;

use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use serde_json::{json, Map, Value};

use crate::org::{build_org, GeneratorConfig, TeamSpec};

/// Counts of what was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenStats {
    /// Valid events of every kind: builds, deployments and requests.
    pub valid: u64,
    pub duplicates: u64,
    pub invalid: u64,
    /// Of `valid`: deployments (production and staging).
    pub deployments: u64,
    /// Of `valid`: request events.
    pub requests: u64,
}

impl GenStats {
    /// Valid builds.
    pub fn builds(&self) -> u64 {
        self.valid - self.deployments - self.requests
    }
}

/// (toolchain, failure stage, category given by the CI system or None, log excerpt)
type Failure = (&'static str, Option<&'static str>, &'static str);

/// Per toolchain: failures that a local editor would have caught, and the rest.
const FAILURES: &[&[Failure]] = &[
    // javac + maven
    &[
        ("compile", None, "[ERROR] COMPILATION ERROR :\n[ERROR] /src/main/java/com/acme/Order.java:[42,20] ';' expected\nOrder.java:42: error: ';' expected"),
        ("compile", None, "src/main/java/com/acme/Order.java:57: error: cannot find symbol\n  symbol: variable rate\n[ERROR] COMPILATION ERROR"),
        ("lint", None, "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-checkstyle-plugin:3.3.0:check on project order: You have 2 Checkstyle violations."),
        ("format", None, "[ERROR] Failed to execute goal com.diffplug.spotless:spotless-maven-plugin:2.40.0:check: The following files had format violations:"),
        ("unit_test", None, "[ERROR] Tests run: 214, Failures: 1, Errors: 0, Skipped: 2\n[ERROR] There are test failures."),
        ("dependencies", None, "[ERROR] Failed to execute goal on project order: Could not resolve dependencies for project com.acme:order:jar:1.4.0"),
    ],
    // go
    &[
        ("compile", None, "# example.com/billing\n./invoice.go:23:2: syntax error: unexpected newline in composite literal; possibly missing comma or }"),
        ("compile", None, "# example.com/billing\n./invoice.go:31:9: undefined: computeTotal"),
        ("lint", None, "invoice.go:12:2: ineffectual assignment to err (ineffassign)"),
        ("format", None, "invoice.go:1: File is not `gofmt`-ed with `-s` (gofmt)"),
        ("unit_test", None, "--- FAIL: TestInvoiceTotal (0.01s)\n    invoice_test.go:19: got 41, want 42\nFAIL\texample.com/billing\t0.214s"),
        ("dependencies", None, "go: example.com/billing imports github.com/acme/money: missing go.sum entry for module providing package"),
    ],
    // typescript / npm
    &[
        ("compile", None, "src/cart.ts(14,22): error TS1005: ',' expected."),
        ("compile", None, "src/cart.ts(30,7): error TS2322: Type 'string' is not assignable to type 'number'."),
        ("lint", None, "/builds/web/src/cart.ts\n  12:5  error  'total' is assigned a value but never used  no-unused-vars\n\n✖ 1 problem (1 error, 0 warnings)"),
        ("format", None, "[warn] src/cart.ts\n[warn] Code style issues found in the above file. Run Prettier with --write to fix."),
        ("unit_test", None, "Tests:       2 failed, 118 passed, 120 total\nnpm ERR! Test failed.  See above for more details."),
        ("dependencies", None, "npm ERR! code ERESOLVE\nnpm ERR! ERESOLVE unable to resolve dependency tree"),
    ],
    // python
    &[
        ("compile", None, "  File \"billing/invoice.py\", line 12\n    def total(self)\n                   ^\nSyntaxError: expected ':'"),
        ("lint", None, "billing/invoice.py:3:1: F401 'os' imported but unused"),
        ("format", None, "would reformat billing/invoice.py\n1 file would be reformatted, 12 files would be left unchanged."),
        ("unit_test", None, "FAILED tests/test_invoice.py::test_total - AssertionError: assert 41 == 42\n==== 1 failed, 87 passed in 3.21s ===="),
        ("integration_test", Some("flaky_test"), "FAILED tests/it/test_payment_gateway.py::test_refund - TimeoutError"),
        ("dependencies", None, "ERROR: No matching distribution found for moneyx==9.9"),
    ],
    // rust
    &[
        ("compile", None, "error: expected one of `,`, `.`, `;`, `?`, `}`, or an operator, found `let`\nerror: could not compile `billing`"),
        ("compile", None, "error[E0308]: mismatched types\n --> src/cost.rs:18:20\nerror: could not compile `cost`"),
        ("lint", None, "error: this `if` has identical blocks\n  = note: `#[deny(clippy::if_same_then_else)]` on by default"),
        ("format", None, "Diff in /builds/acme/cost/src/lib.rs at line 12:\n-fn f( ) {}\n+fn f() {}"),
        ("unit_test", None, "failures:\n\ntest result: FAILED. 41 passed; 1 failed; 0 ignored"),
        ("integration_test", Some("flaky_test"), "test it::gateway_refund ... FAILED (timed out after 30s)"),
    ],
    // gradle / kotlin
    &[
        ("compile", None, "e: /build/src/main/kotlin/App.kt: (12, 5): Expecting ')'\n> Task :compileKotlin FAILED"),
        ("compile", None, "> Task :compileJava FAILED\nCompilation failed; see the compiler error output for details."),
        ("lint", None, "> Task :detekt FAILED\nComplexity - 12/10 LongMethod"),
        ("format", None, "> Task :spotlessKotlinCheck FAILED\nThe following files had format violations:"),
        ("unit_test", None, "> Task :test FAILED\n42 tests completed, 1 failed\nThere were failing tests."),
        ("dependencies", None, "> Could not resolve all files for configuration ':compileClasspath'.\n   > Could not find com.acme:money:2.1."),
    ],
];
pub(crate) const TOOLCHAINS: usize = FAILURES.len();

const INFRA_LOGS: &[&str] = &[
    "fatal: write error: No space left on device",
    "ERROR: Job failed (system failure): prepare environment: setting up build pod: timed out",
    "The hosted runner lost communication with the server.",
    "Pod build-7f9c terminated: OOMKilled (exit code 137)",
];

/// (runner class, weight, typical minutes)
const RUNNERS: &[(&str, u32, f64)] = &[
    ("small", 30, 4.0),
    ("medium", 40, 8.0),
    ("large", 20, 14.0),
    ("xlarge", 6, 22.0),
    ("gpu", 2, 30.0),
    ("legacy-vm", 2, 10.0),
];

/// Produces the events of a [`GeneratorConfig`].
pub struct Generator {
    pub(crate) config: GeneratorConfig,
    pub(crate) teams: Vec<TeamSpec>,
    pub(crate) rng: ChaCha8Rng,
    next_id: u64,
    next_bad: usize,
    /// Recent events, for re-sent duplicates and same-commit rebuilds.
    recent: VecDeque<Value>,
    /// Business requests and deployments.
    pub(crate) delivery: crate::delivery::Delivery,
}

impl Generator {
    /// A generator for `config` (the organisation is fixed by the seed).
    pub fn new(config: GeneratorConfig) -> Self {
        let teams = build_org(&config);
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Generator {
            config,
            teams,
            rng,
            next_id: 0,
            next_bad: 0,
            recent: VecDeque::new(),
            delivery: crate::delivery::Delivery::default(),
        }
    }

    /// The organisation.
    pub fn teams(&self) -> &[TeamSpec] {
        &self.teams
    }

    /// The teams file (`team,product,developers,peer_group`) of the listed teams.
    pub fn teams_csv(&self) -> String {
        let mut out = String::from("team,product,developers,peer_group\n");
        for t in self.teams.iter().filter(|t| t.listed) {
            out.push_str(&format!(
                "{},{},{},{}\n",
                t.key(),
                t.product,
                t.developers,
                t.peer_group.as_deref().unwrap_or("")
            ));
        }
        out
    }

    /// The planted over- and under-spending teams: `team,product,planted,spend_factor`.
    pub fn planted_csv(&self) -> String {
        let mut out = String::from("team,product,planted,spend_factor\n");
        for t in &self.teams {
            if let Some(p) = t.planted {
                out.push_str(&format!(
                    "{},{},{p},{}\n",
                    t.key(),
                    t.product,
                    t.spend_factor
                ));
            }
        }
        out
    }

    /// Hands every line of the history to `sink`, day by day, oldest first.
    pub fn for_each_line(&mut self, sink: &mut dyn FnMut(&str), stats: &mut GenStats) {
        for day in (0..self.config.days).rev() {
            let day_end = self.config.end - Duration::days(i64::from(day));
            for line in self.day(day_end, stats) {
                sink(&line);
            }
        }
    }

    /// Writes every event as one NDJSON line, day by day, oldest first.
    ///
    /// # Errors
    /// Writing to `out` failed.
    pub fn write_events(&mut self, out: &mut dyn Write) -> std::io::Result<GenStats> {
        let mut stats = GenStats::default();
        for day in (0..self.config.days).rev() {
            let day_end = self.config.end - Duration::days(i64::from(day));
            for line in self.day(day_end, &mut stats) {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
            }
        }
        out.flush()?;
        Ok(stats)
    }

    /// The lines of the day ending at `day_end`, in order of `finished_at`.
    pub fn day(&mut self, day_end: DateTime<Utc>, stats: &mut GenStats) -> Vec<String> {
        let n = self.config.builds_per_day;
        self.span(day_end, Duration::days(1), n, stats)
    }

    /// The lines of `builds` builds finished in `[end - span, end)`, in order of `finished_at`,
    /// with re-sent and malformed messages in the configured ratios (live feeds: a few seconds
    /// at a time).
    pub fn span(
        &mut self,
        end: DateTime<Utc>,
        span: Duration,
        builds: u32,
        stats: &mut GenStats,
    ) -> Vec<String> {
        let weights: Vec<f64> = self
            .teams
            .iter()
            .map(|t| f64::from(t.developers) * t.spend_factor)
            .collect();
        let total: f64 = weights.iter().sum();
        let mut events: Vec<(DateTime<Utc>, String)> = Vec::new();
        let n = builds;
        let span_ms = span.num_milliseconds().max(1);
        let mut acc = 0.0;
        let mut picks = Vec::with_capacity(n as usize);
        // Deterministic apportioning: team i gets its share of the day's builds.
        for (i, w) in weights.iter().enumerate() {
            let before = (acc / total * f64::from(n)).round() as u32;
            acc += w;
            let after = (acc / total * f64::from(n)).round() as u32;
            picks.extend(std::iter::repeat_n(i, (after - before) as usize));
        }
        if self.config.deliveries {
            for (at, request) in self.new_requests(&picks, end, span_ms) {
                stats.valid += 1;
                stats.requests += 1;
                events.push((at, request.to_string()));
            }
        }
        for team in picks {
            let (finished, mut event) = self.build(team, end, span_ms);
            stats.valid += 1;
            if self.config.deliveries {
                if let Some((at, deployment)) = self.deliver(team, &mut event, end) {
                    stats.valid += 1;
                    stats.deployments += 1;
                    events.push((at, deployment.to_string()));
                }
            }
            events.push((finished, event.to_string()));
            self.recent.push_back(event);
            if self.recent.len() > 512 {
                self.recent.pop_front();
            }
        }
        events.sort_by_key(|a| a.0);
        let mut lines: Vec<String> = events.into_iter().map(|(_, l)| l).collect();
        let extra_dup = self.share(n, self.config.duplicate_ratio);
        for _ in 0..extra_dup {
            if self.recent.is_empty() {
                break;
            }
            let pick = self.rng.random_range(0..self.recent.len());
            if let Some(e) = self.recent.get(pick) {
                let at = self.rng.random_range(0..=lines.len());
                lines.insert(at, e.to_string());
                stats.duplicates += 1;
            }
        }
        let extra_bad = self.share(n, self.config.invalid_ratio);
        for _ in 0..extra_bad {
            let at = self.rng.random_range(0..=lines.len());
            // A running count, so every kind of malformed message turns up in short spans too.
            let k = self.next_bad;
            self.next_bad += 1;
            let bad = self.malformed(k, end);
            lines.insert(at, bad);
            stats.invalid += 1;
        }
        lines
    }

    /// `ratio` of `n`, rounded at random in proportion to the fraction, so short live spans get
    /// their share on average too.
    fn share(&mut self, n: u32, ratio: f64) -> usize {
        let exact = f64::from(n) * ratio;
        let whole = exact.floor();
        let fraction = exact - whole;
        let extra = fraction > 1e-9 && self.rng.random_bool(fraction.min(1.0));
        whole as usize + usize::from(extra)
    }

    fn build(
        &mut self,
        team_index: usize,
        end: DateTime<Utc>,
        span_ms: i64,
    ) -> (DateTime<Utc>, Value) {
        let rng = &mut self.rng;
        let team = &self.teams[team_index];
        self.next_id += 1;
        let id = self.next_id;
        let (runner, _, minutes) = *weighted(rng, RUNNERS);
        let duration_s = LogNormal::new(minutes.ln() + 4.09, 0.5)
            .map(|d| d.sample(rng))
            .unwrap_or(600.0)
            .clamp(20.0, 6.0 * 3600.0);
        let finished = end - Duration::milliseconds(rng.random_range(1..=span_ms));
        let started = finished - Duration::milliseconds((duration_s * 1000.0) as i64);
        let queued = started - Duration::seconds(rng.random_range(0..240));
        let pipeline = team.pipelines.choose(rng).cloned().unwrap_or_default();
        let repository = team.repositories.choose(rng).cloned().unwrap_or_default();
        let trigger = *[
            "push",
            "push",
            "push",
            "pull_request",
            "pull_request",
            "merge",
            "schedule",
            "manual",
            "api",
        ]
        .choose(rng)
        .unwrap_or(&"push");
        let roll: f64 = rng.random();
        let status = match roll {
            r if r < 0.76 => "success",
            r if r < 0.92 => "failure",
            r if r < 0.965 => "cancelled",
            r if r < 0.98 => "timeout",
            _ => "error",
        };
        let mut e = Map::new();
        e.insert("schema_version".into(), json!(1));
        e.insert(
            "event_id".into(),
            json!(format!("{}-{:x}-{id}", team.source, self.config.seed)),
        );
        e.insert("source".into(), json!(team.source));
        e.insert("build_id".into(), json!(id.to_string()));
        e.insert("pipeline".into(), json!(pipeline));
        e.insert("repository".into(), json!(repository));
        e.insert(
            "branch".into(),
            json!(if trigger == "pull_request" {
                "feature/x"
            } else {
                "main"
            }),
        );
        // Same-commit rebuilds: now and then a success re-runs a commit an earlier success built.
        let reuse = (status == "success" && rng.random_bool(0.06))
            .then(|| {
                self.recent.iter().rev().take(64).find(|r| {
                    r["status"] == "success"
                        && r["pipeline"] == json!(pipeline)
                        && r["repository"] == json!(repository)
                })
            })
            .flatten()
            .and_then(|r| r["commit"].as_str().map(str::to_owned));
        let commit = reuse.unwrap_or_else(|| format!("{:016x}{:024x}", rng.random::<u64>(), id));
        e.insert("commit".into(), json!(commit));
        e.insert("trigger".into(), json!(trigger));
        e.insert("team".into(), json!(team.name));
        if !(team_index % 5 == 2 && rng.random_bool(0.3)) {
            e.insert("product".into(), json!(team.product));
        }
        if trigger != "schedule" {
            e.insert(
                "author".into(),
                json!(team.authors.choose(rng).cloned().unwrap_or_default()),
            );
        }
        // A few CI systems report local times with an offset.
        let offset = if team_index % 6 == 1 {
            FixedOffset::east_opt(3600)
        } else {
            FixedOffset::east_opt(0)
        };
        let fmt = |t: DateTime<Utc>| match offset {
            Some(o) if o.local_minus_utc() != 0 => t
                .with_timezone(&o)
                .to_rfc3339_opts(SecondsFormat::Millis, false),
            _ => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        };
        e.insert("queued_at".into(), json!(fmt(queued)));
        e.insert("started_at".into(), json!(fmt(started)));
        e.insert("finished_at".into(), json!(fmt(finished)));
        e.insert("status".into(), json!(status));
        match status {
            "failure" => {
                let options = FAILURES[team.toolchain];
                // Half the failures are things an editor would have caught.
                let f = if rng.random_bool(0.5) {
                    &options[rng.random_range(0..4)]
                } else {
                    options.choose(rng).unwrap_or(&options[0])
                };
                e.insert("failure_stage".into(), json!(f.0));
                if let Some(c) = f.1 {
                    e.insert("failure_category".into(), json!(c));
                }
                if rng.random_bool(0.9) {
                    e.insert("log_excerpt".into(), json!(f.2));
                }
            }
            "error" => {
                e.insert(
                    "log_excerpt".into(),
                    json!(INFRA_LOGS.choose(rng).unwrap_or(&INFRA_LOGS[0])),
                );
            }
            "cancelled" if rng.random_bool(0.6) => {
                e.insert("superseded".into(), json!(true));
            }
            _ => {}
        }
        e.insert("runner_class".into(), json!(runner));
        if rng.random_bool(0.05) {
            e.insert(
                "cpu_cores".into(),
                json!(*[1, 4, 16].choose(rng).unwrap_or(&4)),
            );
        }
        if runner == "gpu" {
            e.insert("gpus".into(), json!(1));
        }
        if trigger == "manual" && rng.random_bool(0.5) {
            e.insert("trigger".into(), json!("retry"));
            e.insert("attempt".into(), json!(rng.random_range(2..4)));
        }
        e.insert(
            "labels".into(),
            json!({"env": "ci", "os": if rng.random_bool(0.8) { "linux" } else { "windows" }}),
        );
        (finished, Value::Object(e))
    }

    fn malformed(&mut self, k: usize, day_end: DateTime<Utc>) -> String {
        let mut base = self.recent.back().cloned().unwrap_or_else(|| json!({}));
        base["event_id"] = json!(format!(
            "bad-{:x}-{}-{k}",
            self.config.seed,
            day_end.timestamp()
        ));
        let set = |mut v: Value, field: &str, value: Value| {
            v[field] = value;
            v.to_string()
        };
        match k % 10 {
            0 => "{\"schema_version\":1,\"event_id\":\"trunc".to_owned(),
            1 => set(base, "schema_version", json!(2)),
            2 => {
                base.as_object_mut().map(|o| o.remove("team"));
                base.to_string()
            }
            3 => set(base, "status", json!("passed")),
            4 => set(base, "finished_at", json!("yesterday at noon")),
            5 => set(base, "cpu_cores", json!(-4)),
            6 => format!(
                "{{\"schema_version\":1,\"pad\":\"{}\"}}",
                "x".repeat(70 * 1024)
            ),
            7 => "[\"not\", \"an\", \"object\"]".to_owned(),
            8 => {
                let start = base["started_at"].clone();
                base["finished_at"] = start;
                set(base, "started_at", json!("2999-01-01T00:00:00Z"))
            }
            _ => set(base, "team", json!("   ")),
        }
    }
}

fn weighted<'a, R: Rng>(rng: &mut R, items: &'a [(&'a str, u32, f64)]) -> &'a (&'a str, u32, f64) {
    let total: u32 = items.iter().map(|i| i.1).sum();
    let mut x = rng.random_range(0..total);
    for item in items {
        if x < item.1 {
            return item;
        }
        x -= item.1;
    }
    &items[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn config() -> GeneratorConfig {
        GeneratorConfig {
            days: 3,
            builds_per_day: 400,
            end: Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap(),
            invalid_ratio: 0.05,
            duplicate_ratio: 0.02,
            ..GeneratorConfig::default()
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut c = Vec::new();
        Generator::new(config()).write_events(&mut a).unwrap();
        Generator::new(config()).write_events(&mut b).unwrap();
        Generator::new(GeneratorConfig {
            seed: 7,
            ..config()
        })
        .write_events(&mut c)
        .unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn counts_add_up_and_every_line_is_one_message() {
        let mut out = Vec::new();
        let stats = Generator::new(config()).write_events(&mut out).unwrap();
        assert_eq!(stats.builds(), 1200);
        assert!(stats.deployments > 50 && stats.requests > 50, "{stats:?}");
        assert_eq!(stats.invalid, 60);
        assert_eq!(stats.duplicates, 24);
        let lines = out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
        assert_eq!(lines, stats.valid + stats.invalid + stats.duplicates);
    }

    #[test]
    fn the_org_has_what_the_tests_need() {
        let g = Generator::new(GeneratorConfig::default());
        let teams = g.teams();
        assert!(teams.iter().any(|t| t.developers < 5), "small teams");
        assert!(teams.iter().any(|t| !t.listed), "unlisted teams");
        assert!(
            teams.iter().any(|t| t.peer_group.is_some()),
            "explicit peer groups"
        );
        assert!(
            teams.iter().any(|t| t.planted == Some("over"))
                && teams.iter().any(|t| t.planted == Some("under"))
        );
        assert!(
            teams.iter().any(|t| t.name != t.key()),
            "names that need normalising"
        );
        assert!(g.planted_csv().lines().count() > 2);
        assert!(g
            .teams_csv()
            .starts_with("team,product,developers,peer_group\n"));
    }
}
