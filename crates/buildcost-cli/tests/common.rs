//! Helpers shared by the binary's end-to-end tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `buildcost` binary under test.
pub fn buildcost() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_buildcost"));
    c.env_remove("BUILDCOST_CONFIG")
        .env("BUILDCOST_LOG", "info");
    c
}

/// Runs a command, failing the test with its output when it does not succeed.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether this run must have every external tool (CI sets BUILDCOST_REQUIRE_TOOLS=1).
pub fn tools_required() -> bool {
    std::env::var("BUILDCOST_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// An external program found through `env_var` or on the PATH; `None` (with a loud message)
/// when missing, or a failed test when CI requires it.
pub fn external_tool(env_var: &str, name: &str, probe: &[&str]) -> Option<PathBuf> {
    let candidate = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(name));
    let works = Command::new(&candidate)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(candidate);
    }
    let message = format!(
        "SKIPPED: `{name}` is not available (set {env_var} or install it; `.ci/run` does); this check did not run"
    );
    assert!(
        !tools_required(),
        "{message}, and BUILDCOST_REQUIRE_TOOLS=1 requires it"
    );
    eprintln!("\n!!!!! {message} !!!!!\n");
    None
}

/// Python 3.11+ with the given modules importable.
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let python = external_tool("BUILDCOST_PYTHON", "python3", &["-c", "import tomllib"])?;
    let import = format!("import {}", modules.join(", "));
    if modules.is_empty()
        || Command::new(&python)
            .args(["-c", &import])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    {
        return Some(python);
    }
    let message = format!(
        "SKIPPED: python modules {modules:?} are missing (pip install them; `.ci/run` does)"
    );
    assert!(
        !tools_required(),
        "{message}, and BUILDCOST_REQUIRE_TOOLS=1 requires them"
    );
    eprintln!("\n!!!!! {message} !!!!!\n");
    None
}

/// The reference scripts' folder.
pub fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference")
}

/// Every raw author in an NDJSON file (trimmed, lower-cased), for privacy checks.
pub fn raw_authors(events: &Path) -> Vec<String> {
    let text = std::fs::read(events).unwrap();
    let mut authors: Vec<String> = text
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            v.get("author")
                .and_then(|a| a.as_str())
                .map(|a| a.trim().to_lowercase())
        })
        .collect();
    authors.sort();
    authors.dedup();
    authors
}

/// The demo configuration with the store in `dir`, written to `dir/buildcost.toml`.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.toml"))
            .unwrap();
    let path = dir.join("buildcost.toml");
    std::fs::write(&path, format!("{template}\n{extra}")).unwrap();
    path
}

/// Runs `cmd` with `input` on its standard input and returns its output.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}
