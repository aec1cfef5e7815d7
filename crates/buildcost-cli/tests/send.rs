//! `buildcost report weekly --send` with real parts (spec section 14): a capturing SMTP server
//! (aiosmtpd, over STARTTLS) that refuses the first message with a transient 451, a local
//! Teams/Slack webhook receiver whose Teams path fails twice (503, then 429), a Slack path that
//! always answers 400, and a route to a team below the minimum size. The Teams card is parsed
//! by Microsoft's `adaptivecards` library as version 1.4.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

const WEEK: &str = "2026-W48";
const TEAM: &str = "checkout-lynx";
const FAILING_TEAM: &str = "checkout-orcas";

/// Euros as the messages print them, written here independently: `€1,234.56`.
fn eur(value: f64) -> String {
    let cents = (value * 100.0).round() as i64;
    let (int, frac) = (cents / 100, cents % 100);
    let digits = int.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("€{grouped}.{frac:02}")
}

fn send(config: &Path, dir: &Path, args: &[&str]) -> Output {
    buildcost()
        .current_dir(dir)
        .arg("--config")
        .arg(config)
        .args(["report", "weekly", "--week", WEEK, "--send"])
        .args(args)
        .env(
            "BC_SLACK_LYNX",
            format!("http://127.0.0.1:{}/ok/slack/lynx", port_of(dir)),
        )
        .env("BUILDCOST_SEND_BACKOFF_MS", "200")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn port_of(dir: &Path) -> u16 {
    std::fs::read_to_string(dir.join("webhook.port"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The payloads the receiver got: (path, status answered, body).
fn received(dir: &Path) -> Vec<(String, u16, serde_json::Value)> {
    files_with(dir, "json")
        .iter()
        .map(|f| {
            let r: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
            (
                r["path"].as_str().unwrap().to_owned(),
                r["status"].as_u64().unwrap() as u16,
                serde_json::from_str(r["body"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

fn mails(dir: &Path) -> Vec<String> {
    files_with(dir, "eml")
        .iter()
        .map(|f| String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned())
        .collect()
}

/// Decodes a MIME message's quoted-printable and base64 parts enough to search its text.
fn decoded(mail: &str, python: &Path) -> String {
    let mut child = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mail_text.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(mail.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn node_with_adaptivecards() -> Option<(PathBuf, PathBuf)> {
    let node = external_tool("BUILDCOST_NODE", "node", &["--version"])?;
    let dir = std::env::var_os("BUILDCOST_ADAPTIVECARDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/buildcost/npm")
        });
    if dir
        .join("node_modules/adaptivecards/dist/adaptivecards.js")
        .is_file()
    {
        return Some((node, dir));
    }
    let message = format!(
        "SKIPPED: npm `adaptivecards` is not in {} (set BUILDCOST_ADAPTIVECARDS; `.ci/run` installs it): the card was not parsed",
        dir.display()
    );
    assert!(!tools_required(), "{message}");
    eprintln!("\n!!!!! {message} !!!!!\n");
    None
}

#[test]
fn weekly_reports_reach_mail_teams_and_slack_once_with_retries_and_nothing_of_small_teams() {
    let Some(python) = python_with(&["aiosmtpd"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mail_dir, hook_dir) = (dir.path().join("mail"), dir.path().join("hooks"));
    let (cert, key, _) = certificate(dir.path());
    let smtp = Helper::start(
        &python,
        "smtp_capture.py",
        &[
            "--out",
            mail_dir.to_str().unwrap(),
            "--fail-first",
            "1",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    let hooks = Helper::start(
        &python,
        "webhook_receiver.py",
        &["--out", hook_dir.to_str().unwrap()],
    );
    std::fs::write(dir.path().join("webhook.port"), hooks.port.to_string()).unwrap();
    let base = format!("http://127.0.0.1:{}", hooks.port);
    std::fs::write(
        dir.path().join("summary-teams.url"),
        format!("{base}/ok/teams/summary\n"),
    )
    .unwrap();
    let config = generated_store(
        dir.path(),
        &format!(
            r#"
[smtp]
host = "localhost"
port = {smtp_port}
tls = "starttls"
ca_file = "{cert}"
from = "buildcost <buildcost@corp.example>"

[delivery]
report_base_url = "https://buildcost.corp.example/reports"

[[delivery.route]]
team = "{TEAM}"
email = ["lynx-ci@corp.example"]
teams_webhook = "{base}/flaky/2/teams/lynx"
slack_webhook = {{ env = "BC_SLACK_LYNX" }}

[[delivery.route]]
summary = true
email = ["directors@corp.example"]
teams_webhook = {{ file = "summary-teams.url" }}
teams_bare_card = true

[[delivery.route]]
team = "checkout-falcons"
email = ["falcons@corp.example"]

[[delivery.route]]
team = "{FAILING_TEAM}"
slack_webhook = "{base}/bad/slack/orcas"
"#,
            smtp_port = smtp.port,
            cert = cert.display(),
        ),
    );
    let small = small_teams(dir.path(), 5);
    assert!(
        small.contains(&"checkout-falcons".to_owned()),
        "the workload's small team: {small:?}"
    );
    // The week's figures, to check the messages against.
    let json_dir = dir.path().join("json");
    run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args([
                "report", "weekly", "--week", WEEK, "--format", "json", "--out",
            ])
            .arg(&json_dir),
    );
    let team_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(json_dir.join(format!("{TEAM}.json"))).unwrap(),
    )
    .unwrap();
    let team_cost = team_json["this_week"]["cost_eur"].as_f64().unwrap();
    let summary_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json_dir.join("summary.json")).unwrap())
            .unwrap();
    let org_cost = summary_json["org"]["cost_eur"].as_f64().unwrap();

    // First --send: everything but the 400 is delivered, after retries; exit 1 for the 400.
    let out = send(&config, dir.path(), &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let line = |dest: &str| {
        stdout
            .lines()
            .find(|l| l.contains(&format!(" {dest}")))
            .unwrap_or_else(|| panic!("no line for {dest}:\n{stdout}"))
            .to_owned()
    };
    assert!(
        line(&format!("{TEAM}/teams")).starts_with("sent")
            && line(&format!("{TEAM}/teams")).contains("3 attempts"),
        "{stdout}"
    );
    assert!(
        line(&format!("{TEAM}/lynx-ci@corp.example")).contains("2 attempts"),
        "{stdout}"
    );
    assert!(
        line(&format!("{TEAM}/slack")).starts_with("sent"),
        "{stdout}"
    );
    assert!(
        line("summary/directors@corp.example").starts_with("sent"),
        "{stdout}"
    );
    assert!(line("summary/teams").starts_with("sent"), "{stdout}");
    let failed = line(&format!("{FAILING_TEAM}/slack"));
    assert!(
        failed.starts_with("failed") && failed.contains("400") && failed.contains("not retried"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped  delivery.route[2] (checkout-falcons)")
            && stdout.contains("min_team_size"),
        "{stdout}"
    );
    assert!(
        stderr.contains("delivery.route[2]"),
        "the warning names the route:\n{stderr}"
    );
    // Webhook URLs are secrets: never in the output or the log.
    for secret in [
        "/flaky/2/teams",
        "/ok/slack/lynx",
        "/ok/teams/summary",
        "/bad/slack",
    ] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} leaked"
        );
    }

    let hooks_got = received(&hook_dir);
    let statuses: Vec<u16> = hooks_got
        .iter()
        .filter(|(p, _, _)| p.contains("/flaky/2/teams/lynx"))
        .map(|(_, s, _)| *s)
        .collect();
    assert_eq!(statuses, [503, 429, 202], "retried until accepted");
    assert_eq!(
        hooks_got
            .iter()
            .filter(|(p, _, _)| p.contains("/bad/"))
            .count(),
        1,
        "a 400 is not retried"
    );
    let (_, _, lynx_teams) = hooks_got
        .iter()
        .find(|(p, s, _)| p.contains("/teams/lynx") && *s == 202)
        .unwrap();
    assert_eq!(lynx_teams["type"], "message");
    assert_eq!(
        lynx_teams["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &lynx_teams["attachments"][0]["content"];
    let card_text = card.to_string();
    assert!(
        card_text.contains(&eur(team_cost)),
        "cost to the cent: {}",
        eur(team_cost)
    );
    assert!(
        card_text.contains(&format!(
            "https://buildcost.corp.example/reports/{WEEK}/{TEAM}.html"
        )),
        "{card_text}"
    );
    let (_, _, summary_card) = hooks_got
        .iter()
        .find(|(p, _, _)| p.contains("/ok/teams/summary"))
        .unwrap();
    assert_eq!(
        summary_card["type"], "AdaptiveCard",
        "teams_bare_card sends the card itself"
    );
    assert!(summary_card.to_string().contains(&eur(org_cost)));
    let (_, _, slack) = hooks_got
        .iter()
        .find(|(p, _, _)| p.contains("/ok/slack/lynx"))
        .unwrap();
    assert!(
        slack["blocks"].as_array().is_some_and(|b| b.len() >= 3),
        "{slack}"
    );
    assert!(slack["text"].as_str().unwrap().contains(&eur(team_cost)));

    // Cards, as Microsoft's renderer parses them.
    if let Some((node, modules)) = node_with_adaptivecards() {
        let cards = [card.clone(), summary_card.clone()];
        let mut files = Vec::new();
        for (i, c) in cards.iter().enumerate() {
            let f = dir.path().join(format!("card-{i}.json"));
            std::fs::write(&f, c.to_string()).unwrap();
            files.push(f);
        }
        let out = Command::new(node)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/check_card.js"))
            .arg(&modules)
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the cards are not valid Adaptive Cards 1.4:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The mails: one per address, HTML for Outlook and the CSV attached.
    let got = mails(&mail_dir);
    assert_eq!(
        got.len(),
        2,
        "the team's and the directors' (the first try was refused)"
    );
    let team_mail = got
        .iter()
        .find(|m| m.contains("lynx-ci@corp.example"))
        .unwrap();
    let team_text = decoded(team_mail, &python);
    assert!(
        team_text.contains(&format!("Subject: {TEAM}: CI cost in {WEEK}")),
        "{team_text}"
    );
    assert!(team_text.contains(&eur(team_cost)), "cost to the cent");
    assert!(
        team_text.contains(&format!("--- part text/csv {TEAM}-{WEEK}.csv")),
        "{team_text}"
    );
    assert!(team_text.contains("--- part text/html"));
    let html = team_text.split("--- part text/html").nth(1).unwrap();
    for banned in ["<style", "<img", "<script", "<svg", "src=", "<link"] {
        assert!(!html.contains(banned), "Outlook HTML: no {banned}");
    }
    assert!(html.contains("style=\""), "inline styles");
    let summary_mail = got
        .iter()
        .find(|m| m.contains("directors@corp.example"))
        .unwrap();
    assert!(decoded(summary_mail, &python).contains(&eur(org_cost)));

    // Nothing about a person or a small team in any byte sent.
    let mut sent_bytes: Vec<String> = got.iter().map(|m| decoded(m, &python)).collect();
    sent_bytes.extend(hooks_got.iter().map(|(_, _, b)| b.to_string()));
    let authors = raw_authors(&dir.path().join("events.ndjson"));
    let pseudonyms = String::from_utf8_lossy(
        &run_ok(buildcost().arg("--config").arg(&config).args([
            "query",
            "--format",
            "csv",
            "SELECT DISTINCT author_key FROM builds",
        ]))
        .stdout,
    )
    .lines()
    .skip(1)
    .map(str::to_owned)
    .filter(|p| p.len() > 6)
    .collect::<Vec<_>>();
    assert!(!authors.is_empty() && !pseudonyms.is_empty());
    for message in &sent_bytes {
        for who in authors.iter().chain(&pseudonyms).chain(&small) {
            assert!(
                !message.to_lowercase().contains(&who.to_lowercase()),
                "`{who}` was sent"
            );
        }
    }

    // Recorded: the second --send sends nothing already delivered, and retries the failure.
    let records = files_with(&dir.path().join("store/deliveries").join(WEEK), "json");
    assert_eq!(records.len(), 5, "{records:?}");
    for r in &records {
        let text = std::fs::read_to_string(r).unwrap();
        assert!(!text.contains("127.0.0.1"), "no URL in a record: {text}");
    }
    let before = (mails(&mail_dir).len(), received(&hook_dir).len());
    let out = send(&config, dir.path(), &[]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("already")).count(),
        5,
        "{stdout}"
    );
    assert_eq!(mails(&mail_dir).len(), before.0);
    assert_eq!(
        received(&hook_dir).len(),
        before.1 + 1,
        "only the failed one again"
    );

    // --resend sends to every destination again.
    let out = send(&config, dir.path(), &["--resend"]);
    let (stdout, _) = text(&out);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("sent")).count(),
        5,
        "{stdout}"
    );
    assert_eq!(mails(&mail_dir).len(), before.0 + 2);

    // --dry-run writes what would be sent, and sends and records nothing.
    let outbox = dir.path().join("outbox");
    let out = send(
        &config,
        dir.path(),
        &["--resend", "--dry-run", outbox.to_str().unwrap()],
    );
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(files_with(&outbox, "eml").len(), 2, "{stdout}");
    assert_eq!(files_with(&outbox, "json").len(), 4, "{stdout}");
    assert_eq!(mails(&mail_dir).len(), before.0 + 2);
    drop((smtp, hooks));
}
