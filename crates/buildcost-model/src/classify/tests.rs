use super::*;
use FailureCategory::*;

fn category(log: &str) -> Option<FailureCategory> {
    Classifier::builtin()
        .unwrap()
        .match_log(log)
        .map(|r| r.category)
}

/// Realistic excerpts, one or more per toolchain, with the category a person would give them.
const CASES: &[(&str, &str, FailureCategory)] = &[
    // javac
    ("javac", "src/main/java/com/acme/Order.java:42: error: ';' expected\n        return total\n                    ^\n1 error", Syntax),
    ("javac", "Billing.java:17: error: class, interface, enum, or record expected\n}\n^", Syntax),
    ("javac", "src/main/java/com/acme/Order.java:57: error: cannot find symbol\n    symbol:   variable discountRate\n    location: class Order", Compile),
    ("javac", "Invoice.java:12: error: incompatible types: String cannot be converted to int", Compile),
    // kotlin (gradle builds)
    ("kotlin", "e: /build/src/main/kotlin/App.kt: (12, 5): Expecting ')'", Syntax),
    ("kotlin", "e: /build/src/main/kotlin/App.kt: (30, 9): Unresolved reference: fooBar", Compile),
    // rustc, clippy, rustfmt
    ("rustc", "error: expected one of `,`, `.`, `;`, `?`, `}`, or an operator, found `let`\n --> src/lib.rs:12:5", Syntax),
    ("rustc", "error: this file contains an unclosed delimiter\n  --> src/main.rs:40:3\n\nerror: could not compile `billing` (lib) due to 1 previous error", Syntax),
    ("rustc", "error[E0308]: mismatched types\n --> src/cost.rs:18:20\nerror: could not compile `cost` (lib) due to 1 previous error", Compile),
    ("rustc", "error: this `if` has identical blocks\n  = note: `#[deny(clippy::if_same_then_else)]` on by default", Lint),
    ("rustc", "Diff in /builds/acme/cost/src/lib.rs at line 12:\n-fn f( ) {}\n+fn f() {}", Format),
    ("rustc", "test tests::rounding ... FAILED\n\nfailures:\n\ntest result: FAILED. 41 passed; 1 failed; 0 ignored", Test),
    ("cargo", "error: failed to select a version for `serde`.\n    ... required by package `cost v0.1.0`", Dependency),
    // go
    ("go", "# example.com/billing\n./invoice.go:23:2: syntax error: unexpected newline in composite literal; possibly missing comma or }", Syntax),
    ("go", "# example.com/billing\n./invoice.go:31:9: undefined: computeTotal", Compile),
    ("go", "--- FAIL: TestInvoiceTotal (0.01s)\n    invoice_test.go:19: got 41, want 42\nFAIL\nFAIL\texample.com/billing\t0.214s", Test),
    ("go", "invoice.go:12:2: ineffectual assignment to err (ineffassign)", Lint),
    ("go", "invoice.go:1: File is not `gofmt`-ed with `-s` (gofmt)", Format),
    ("go", "go: example.com/billing imports\n\tgithub.com/acme/money: missing go.sum entry for module providing package github.com/acme/money", Dependency),
    // tsc
    ("tsc", "src/cart.ts(14,22): error TS1005: ',' expected.", Syntax),
    ("tsc", "src/cart.ts(30,7): error TS2322: Type 'string' is not assignable to type 'number'.", Compile),
    // eslint
    ("eslint", "/builds/web/src/cart.ts\n  12:5  error  'total' is assigned a value but never used  no-unused-vars\n\n✖ 1 problem (1 error, 0 warnings)", Lint),
    ("eslint", "/builds/web/src/cart.ts\n  3:1  error  Parsing error: Unexpected token }", Syntax),
    // prettier
    ("prettier", "Checking formatting...\n[warn] src/cart.ts\n[warn] Code style issues found in the above file. Run Prettier with --write to fix.", Format),
    ("prettier", "/builds/web/src/cart.ts\n  4:1  error  Replace `··` with `····`  prettier/prettier\n\n✖ 1 problem (1 error, 0 warnings)", Format),
    // python / pytest
    ("python", "  File \"billing/invoice.py\", line 12\n    def total(self)\n                   ^\nSyntaxError: expected ':'", Syntax),
    ("python", "IndentationError: unexpected indent", Syntax),
    ("pytest", "FAILED tests/test_invoice.py::test_total - AssertionError: assert 41 == 42\n========= 1 failed, 87 passed in 3.21s =========", Test),
    ("flake8", "billing/invoice.py:3:1: F401 'os' imported but unused", Lint),
    ("black", "would reformat billing/invoice.py\nOh no! 💥 💔 💥\n1 file would be reformatted, 12 files would be left unchanged.", Format),
    ("pip", "ERROR: Could not find a version that satisfies the requirement moneyx==9.9\nERROR: No matching distribution found for moneyx==9.9", Dependency),
    ("mypy", "billing/invoice.py:12: error: Incompatible return value type (got \"str\", expected \"int\")  [return-value]\nFound 1 error in 1 file (checked 14 source files)", Compile),
    // maven
    ("maven", "[ERROR] COMPILATION ERROR : \n[ERROR] /src/main/java/com/acme/Order.java:[57,9] cannot find symbol\n[ERROR] Failed to execute goal org.apache.maven.plugins:maven-compiler-plugin:3.11.0:compile (default-compile) on project order", Compile),
    ("maven", "[ERROR] Tests run: 120, Failures: 2, Errors: 0, Skipped: 1\n[ERROR] Failed to execute goal org.apache.maven.plugins:maven-surefire-plugin:3.1.2:test (default-test) on project order: There are test failures.", Test),
    ("maven", "[ERROR] Failed to execute goal on project order: Could not resolve dependencies for project com.acme:order:jar:1.0: Could not find artifact com.acme:money:jar:2.1", Dependency),
    ("maven", "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-checkstyle-plugin:3.3.0:check (validate) on project order: You have 3 Checkstyle violations.", Lint),
    ("maven", "[ERROR] Failed to execute goal com.diffplug.spotless:spotless-maven-plugin:2.40.0:check (default) on project order: The following files had format violations:", Format),
    ("maven", "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-compiler-plugin:3.11.0:testCompile (default-testCompile) on project order: Compilation failure", Compile),
    // gradle
    ("gradle", "> Task :compileJava FAILED\n\nFAILURE: Build failed with an exception.\n* What went wrong:\nExecution failed for task ':compileJava'.\n> Compilation failed; see the compiler error output for details.", Compile),
    ("gradle", "> Task :test FAILED\n\nOrderTest > totals() FAILED\n    org.opentest4j.AssertionFailedError\n\n42 tests completed, 1 failed\n\nThere were failing tests.", Test),
    ("gradle", "* What went wrong:\nExecution failed for task ':compileJava'.\n> Could not resolve all files for configuration ':compileClasspath'.\n   > Could not find com.acme:money:2.1.", Dependency),
    ("gradle", "> Task :spotlessJavaCheck FAILED", Format),
    ("gradle", "> Task :checkstyleMain FAILED\n[ant:checkstyle] [ERROR] Order.java:12: Missing a Javadoc comment.", Lint),
    // npm
    ("npm", "npm ERR! code E404\nnpm ERR! 404 Not Found - GET https://registry.example/@acme%2fmoney - Not found", Dependency),
    ("npm", "npm ERR! code ERESOLVE\nnpm ERR! ERESOLVE unable to resolve dependency tree", Dependency),
    ("npm", "npm ERR! SyntaxError: Unexpected token } in JSON at position 112 while parsing near '...\"jest\": \"^29\",}'", Syntax),
    ("jest", "Tests:       2 failed, 118 passed, 120 total\nnpm ERR! Test failed.  See above for more details.", Test),
    ("junit", "org.opentest4j.AssertionFailedError: expected: <119.00> but was: <100.00>\n\tat com.acme.OrderTest.totals(OrderTest.java:31)", Test),
    // platform
    ("any", "fatal: write error: No space left on device", Infra),
    ("gitlab-runner", "ERROR: Job failed (system failure): prepare environment: setting up build pod: timed out", Infra),
    ("github-actions", "The hosted runner lost communication with the server. Anything in your workflow that terminates the runner process could cause this.", Infra),
    ("any", "curl: (6) Could not resolve host: nexus.acme.internal", Infra),
    ("kubernetes", "Pod build-7f9c terminated: OOMKilled (exit code 137)", Infra),
    ("jenkins", "Agent linux-agent-12 went offline during the build\nERROR: Connection was broken: java.nio.channels.ClosedChannelException", Infra),
];

#[test]
fn every_builtin_case_gets_the_category_a_person_would_give() {
    let mut wrong = Vec::new();
    for (toolchain, log, expected) in CASES {
        let got = category(log);
        if got != Some(*expected) {
            wrong.push(format!(
                "{toolchain}: expected {expected}, got {got:?} for {log:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
}

/// The excerpts of the labelled corpus and the held-out set (`tests/classifier/`).
fn corpus_logs() -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct File {
        case: Vec<Case>,
    }
    #[derive(serde::Deserialize)]
    struct Case {
        log: String,
    }
    [
        include_str!("../../tests/classifier/corpus.toml"),
        include_str!("../../tests/classifier/holdout.toml"),
    ]
    .into_iter()
    .flat_map(|text| toml::from_str::<File>(text).unwrap().case)
    .map(|c| c.log)
    .collect()
}

/// Every rule is the first match of a case here or in the corpus: a rule no excerpt reaches
/// is shadowed by one above it, or untested.
#[test]
fn every_builtin_rule_is_exercised_by_a_case() {
    let c = Classifier::builtin().unwrap();
    let mut used = vec![false; c.rules().len()];
    let corpus = corpus_logs();
    let logs = CASES
        .iter()
        .map(|(_, log, _)| *log)
        .chain(corpus.iter().map(String::as_str));
    for log in logs {
        if let Some(i) = c.first_match(log) {
            used[i] = true;
        }
    }
    let unused: Vec<_> = c
        .rules()
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(r, _)| format!("{} {}: {}", r.toolchain, r.category, r.pattern))
        .collect();
    assert!(
        unused.is_empty(),
        "rules with no test case:\n{}",
        unused.join("\n")
    );
}

#[test]
fn every_named_toolchain_has_a_rule() {
    let c = Classifier::builtin().unwrap();
    for tool in [
        "javac", "rustc", "go", "tsc", "eslint", "prettier", "python", "maven", "gradle", "npm",
    ] {
        assert!(
            c.rules().iter().any(|r| r.toolchain == tool),
            "no rule for {tool}"
        );
    }
}

#[test]
fn plain_log_lines_match_nothing() {
    assert_eq!(category("Building project...\nDone in 3.2s"), None);
    assert_eq!(category(""), None);
}

#[test]
fn log_beats_stage_and_stage_beats_unknown() {
    let c = Classifier::builtin().unwrap();
    let log = "src/cart.ts(14,22): error TS1005: ',' expected.";
    assert_eq!(
        c.classify(Some(log), Some(FailureStage::UnitTest)),
        (Syntax, CategorySource::Log)
    );
    assert_eq!(
        c.classify(Some("nothing"), Some(FailureStage::Lint)),
        (Lint, CategorySource::Stage)
    );
    assert_eq!(
        c.classify(None, Some(FailureStage::Checkout)),
        (Infra, CategorySource::Stage)
    );
    assert_eq!(
        c.classify(None, Some(FailureStage::Dependencies)),
        (Dependency, CategorySource::Stage)
    );
    assert_eq!(
        c.classify(None, Some(FailureStage::IntegrationTest)),
        (Test, CategorySource::Stage)
    );
    assert_eq!(
        c.classify(None, Some(FailureStage::Deploy)),
        (Unknown, CategorySource::Default)
    );
    assert_eq!(c.classify(None, None), (Unknown, CategorySource::Default));
}

#[test]
fn custom_rules_replace_the_builtin_ones() {
    let c = Classifier::from_toml("[[rule]]\ncategory = \"lint\"\npattern = 'ACME-STYLE-\\d+'\n")
        .unwrap();
    assert_eq!(
        c.match_log("ACME-STYLE-12 violated").map(|r| r.category),
        Some(Lint)
    );
    assert!(c.match_log("error TS1005: ',' expected.").is_none());
}

#[test]
fn patterns_are_ascii_unless_they_ask_for_unicode() {
    let unicode =
        Classifier::from_toml("[[rule]]\ncategory = \"lint\"\npattern = '\\p{Greek}+ lint'\n");
    let message = unicode.unwrap_err().to_string();
    assert!(message.contains("(?u)"), "{message}");
    let c = Classifier::from_toml(
        "[[rule]]\ncategory = \"lint\"\npattern = '(?u)\\p{Greek}+ lint'\n[[rule]]\ncategory = \"format\"\npattern = '✖ \\d+ (?i)PROBLEM'\n",
    )
    .unwrap();
    assert_eq!(c.match_log("αβγ lint").map(|r| r.category), Some(Lint));
    assert_eq!(
        c.match_log("\x1b[31m✖ 3 problems").map(|r| r.category),
        Some(Format)
    );
}

#[test]
fn bad_rules_files_name_the_problem() {
    let bad_category =
        Classifier::from_toml("[[rule]]\ncategory = \"flaky_test\"\npattern = 'x'\n");
    assert!(bad_category.unwrap_err().to_string().contains("flaky_test"));
    let bad_regex = Classifier::from_toml("[[rule]]\ncategory = \"lint\"\npattern = '(unclosed'\n");
    assert!(bad_regex.unwrap_err().to_string().contains("rule 0"));
    let unknown_key =
        Classifier::from_toml("[[rule]]\ncategory = \"lint\"\npattern = 'x'\nweight = 2\n");
    assert!(unknown_key.unwrap_err().to_string().contains("weight"));
}
