//! The team API for the developer portal and the HTML reports under `/reports/` (issue 20,
//! SPEC §14), served by `buildcost serve` from the snapshot behind `/metrics`, behind the same
//! basic auth: the figures agree with the gauges, small and unknown teams look alike, the OpenAPI
//! document survives schemathesis, and headless Chromium renders the pages without a console
//! error.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

const USER: &str = "portal";
const PASSWORD: &str = "portal pass";
const AT: &str = "2026-11-30T00:00:00Z";
/// The last complete ISO week before `AT`.
const WEEK: &str = "2026-W48";
const TEAM: &str = "checkout-lynx";
const SMALL_TEAM: &str = "checkout-falcons";

/// `serve --at AT` on `config`, once its first refresh is done.
fn serve(config: &Path) -> Served {
    let served = Served::start(buildcost().arg("--config").arg(config).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--at",
        AT,
    ]));
    wait_until(
        std::time::Duration::from_secs(300),
        "the first refresh",
        || served.get("/readyz").0 == 200,
        || served.log_text(),
    );
    served
}

/// The generated organisation in `dir`, behind basic auth with the portal's user.
fn portal_store(dir: &Path) -> std::path::PathBuf {
    generated_store(
        dir,
        &format!(
            "[http]\nbasic_auth_users = {{ {USER} = \"{}\" }}\n",
            hash(PASSWORD)
        ),
    )
}

/// A GET with the portal's credentials: status, head and body.
fn get(served: &Served, path: &str) -> (u16, String, String) {
    http_exchange(&served.addr, "GET", path, &[basic(USER, PASSWORD)], b"")
}

/// A GET with the portal's credentials that must answer 200 with JSON.
fn json(served: &Served, path: &str) -> Value {
    let (status, head, body) = get(served, path);
    assert_eq!(status, 200, "{path}: {head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{path}: {head}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The sum of the samples of `name` whose labels hold every one of `labels` (`key="value"`).
fn gauge(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let values: Vec<f64> = metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn cents(value: f64) -> i64 {
    (value * 100.0).round() as i64
}

#[test]
fn the_team_api_answers_from_the_snapshot_behind_basic_auth_and_hides_small_teams() {
    let dir = tempfile::tempdir().unwrap();
    let config = portal_store(dir.path());
    let small = small_teams(dir.path(), 5);
    assert!(small.contains(&SMALL_TEAM.to_owned()), "{small:?}");
    let served = serve(&config);

    // Everything but the probes asks for credentials, the OpenAPI document and the reports too.
    for path in [
        "/api/v1/org",
        "/api/v1/teams",
        &format!("/api/v1/teams/{TEAM}"),
        "/api/v1/openapi.json",
        "/reports/",
        &format!("/reports/{WEEK}/{TEAM}.html"),
    ] {
        let (status, head, _) = http_exchange(&served.addr, "GET", path, &[], b"");
        assert_eq!(status, 401, "{path}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: basic"),
            "{path}: {head}"
        );
    }
    assert_eq!(served.get("/healthz").0, 200);

    let (status, _, metrics) = get(&served, "/metrics");
    assert_eq!(status, 200, "{metrics}");

    // The organisation: the euros of SQL over the stored builds in each window [at − d, at)
    // (the team gauges leave out a too-small org-wide bucket; the org total does not).
    let org = json(&served, "/api/v1/org");
    assert_eq!(org["at"], AT, "{org}");
    assert_eq!(org["currency"], "EUR");
    for (window, from) in [("7d", "2026-11-23"), ("28d", "2026-11-02")] {
        let api = org["windows"][window]["cost_eur"].as_f64().unwrap();
        let out = run_ok(buildcost().arg("--config").arg(&config).args([
            "query",
            "--format",
            "csv",
            &format!(
                "SELECT SUM(cost_eur) AS eur FROM builds WHERE finished_at >= TIMESTAMP '{from}T00:00:00Z' AND finished_at < TIMESTAMP '{AT}'"
            ),
        ]));
        let text = String::from_utf8_lossy(&out.stdout);
        let sql: f64 = text.lines().nth(1).unwrap().trim().parse().unwrap();
        assert_eq!(cents(api), cents(sql), "org {window}: {api} vs {sql}");
        let teams = gauge(
            &metrics,
            "buildcost_team_cost_euros",
            &[&format!("window=\"{window}\"")],
        )
        .unwrap();
        assert!(teams <= api + 0.005 && api > 0.0, "{teams} {api}");
    }
    let ratio = gauge(&metrics, "buildcost_org_waste_ratio", &["window=\"28d\""]);
    if let Some(ratio) = ratio {
        let api = org["waste_ratio_28d"].as_f64().unwrap();
        assert!((api - ratio).abs() < 1e-6, "{api} vs {ratio}");
    }
    assert!(org["delivery"].is_object(), "{org}");

    // The list: every team of its own, none of the small ones and not their merged row.
    let list = json(&served, "/api/v1/teams");
    let names: Vec<&str> = list["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["team"].as_str().unwrap())
        .collect();
    assert!(names.contains(&TEAM), "{names:?}");
    assert!(!names.contains(&"_small_teams"), "{names:?}");
    let list_text = list.to_string();
    let org_text = org.to_string();
    for team in &small {
        assert!(!list_text.contains(team.as_str()), "{team} in {list_text}");
        assert!(!org_text.contains(team.as_str()), "{team} in {org_text}");
    }
    assert_eq!(org["teams"].as_u64().unwrap() as usize, names.len());

    // One team: its windows equal its gauges; its trend ends with the last complete week; its
    // report is served under /reports/.
    let view = json(&served, &format!("/api/v1/teams/{TEAM}"));
    assert_eq!(view["team"], TEAM);
    for window in ["7d", "28d"] {
        let api = view["windows"][window]["cost_eur"].as_f64().unwrap();
        let gauge = gauge(
            &metrics,
            "buildcost_team_cost_euros",
            &[&format!("team=\"{TEAM}\""), &format!("window=\"{window}\"")],
        )
        .unwrap();
        assert_eq!(
            cents(api),
            cents(gauge),
            "{TEAM} {window}: {api} vs {gauge}"
        );
    }
    let trend = view["trend"].as_array().unwrap();
    assert!(!trend.is_empty() && trend.len() <= 9, "{trend:?}");
    assert_eq!(trend.last().unwrap()["week"], WEEK, "{trend:?}");
    let report = format!("/reports/{WEEK}/{TEAM}.html");
    assert_eq!(view["report"], report.as_str());
    let href = list["teams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["team"] == TEAM)
        .unwrap()["href"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(json(&served, &href)["team"], TEAM);

    // A small team and an unknown one cannot be told apart: same status, type and words.
    let (small_status, small_head, small_body) =
        get(&served, &format!("/api/v1/teams/{SMALL_TEAM}"));
    let (unknown_status, unknown_head, unknown_body) = get(&served, "/api/v1/teams/no-such-team");
    assert_eq!((small_status, unknown_status), (404, 404));
    let content_type = |head: &str| {
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-type:"))
            .map(str::to_owned)
    };
    assert_eq!(content_type(&small_head), content_type(&unknown_head));
    assert!(content_type(&small_head)
        .unwrap()
        .contains("application/json"));
    assert_eq!(
        small_body.replace(SMALL_TEAM, "X"),
        unknown_body.replace("no-such-team", "X")
    );
    let error: Value = serde_json::from_str(&small_body).unwrap();
    assert!(error["error"].is_string(), "{small_body}");
    let (status, _, _) = get(&served, "/api/v1/teams/_small_teams");
    assert_eq!(status, 404);

    // The reports: the week's index and the team's page, nothing for the small team.
    let (status, _, index) = get(&served, "/reports/");
    assert_eq!(status, 200, "{index}");
    assert!(index.contains(WEEK), "{index}");
    // Only weeks the store has builds of (70 days to 2026-11-30: from 2026-09-21, W39).
    assert!(
        index.contains("2026-W39") && !index.contains("2026-W38"),
        "{index}"
    );
    let (status, head, page) = get(&served, &report);
    assert_eq!(status, 200, "{head}");
    assert!(head.to_ascii_lowercase().contains("text/html"), "{head}");
    assert!(page.contains(TEAM), "{page}");
    let (status, _, _) = get(&served, &format!("/reports/{WEEK}/{SMALL_TEAM}.html"));
    assert_eq!(status, 404);
    let (status, _, _) = get(&served, &format!("/reports/{WEEK}/../../etc/passwd"));
    assert!(status == 404 || status == 400, "{status}");

    // The log holds neither the password nor a small team's name.
    let log = served.log_text();
    assert!(!log.contains(PASSWORD), "{log}");
}

#[test]
fn schemathesis_finds_no_failure_in_the_live_api() {
    let Some(schemathesis) =
        external_tool("BUILDCOST_SCHEMATHESIS", "schemathesis", &["--version"])
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = portal_store(dir.path());
    let served = serve(&config);
    // The document is generated from the types and names the basic scheme.
    let doc = json(&served, "/api/v1/openapi.json");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    for path in ["/api/v1/org", "/api/v1/teams", "/api/v1/teams/{team}"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path}: {doc}");
    }
    assert!(
        doc["components"]["securitySchemes"]
            .to_string()
            .contains("basic"),
        "{doc}"
    );
    let out = std::process::Command::new(&schemathesis)
        .current_dir(dir.path())
        .args([
            "run",
            &format!("http://{}/api/v1/openapi.json", served.addr),
            "--checks",
            "all",
            "--max-examples",
            "20",
            "--workers",
            "1",
            "--seed",
            "1",
            "--auth",
            &format!("{USER}:{PASSWORD}"),
            "--no-color",
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("No issues found"), "{stdout}");
}

/// Headless Chromium on `url` with a fresh profile in `profile` and `extra` flags.
fn chromium(chromium: &Path, profile: &Path, extra: &[String], url: &str) -> std::process::Output {
    std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .unwrap()
}

#[test]
fn headless_chromium_renders_the_reports_without_a_console_error() {
    let Some(browser) = external_tool("BUILDCOST_CHROMIUM", "chromium", &["--version"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = generated_store(dir.path(), "");
    let served = serve(&config);
    for path in [
        "/reports/".to_owned(),
        format!("/reports/{WEEK}/{TEAM}.html"),
    ] {
        let profile = tempfile::tempdir().unwrap();
        let png = dir.path().join("page.png");
        let _ = std::fs::remove_file(&png);
        let url = format!("http://{}{path}", served.addr);
        let out = chromium(
            &browser,
            profile.path(),
            &[
                "--enable-logging=stderr".into(),
                "--v=0".into(),
                "--window-size=1000,1800".into(),
                format!("--screenshot={}", png.display()),
            ],
            &url,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{url}: {stderr}");
        let console: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
            .collect();
        assert!(console.is_empty(), "{url}: console messages: {console:?}");
        let image = std::fs::read(&png).unwrap();
        assert!(image.starts_with(b"\x89PNG"), "{url}");
        // A blank page compresses to a few kilobytes; a rendered report with tables is larger.
        assert!(image.len() > 20_000, "{url}: {} bytes", image.len());
        // The DOM Chromium built holds the figures.
        let out = chromium(&browser, profile.path(), &["--dump-dom".into()], &url);
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(dom.contains(WEEK), "{url}: {dom}");
        if path.ends_with(".html") {
            assert!(dom.contains(TEAM) && dom.contains('€'), "{url}: {dom}");
        }
    }
}
