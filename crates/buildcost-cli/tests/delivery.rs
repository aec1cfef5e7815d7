//! Deployments and requests end to end through the binary (spec section 12): one NDJSON of
//! builds, deployments and requests → `ingest` → the stored tables, `metrics --at` and the
//! `deployments`, `requests` and `repositories` views.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

fn events() -> String {
    let build = |id: &str, repo: &str, team: &str, finished: &str, extra: serde_json::Value| {
        let mut e = json!({
            "schema_version": 1, "event_id": id, "source": "github", "build_id": id,
            "pipeline": "ci", "repository": repo, "team": team, "author": "Jane.Doe@acme.example",
            "started_at": "2026-10-20T09:00:00Z", "finished_at": finished,
            "status": "success", "runner_class": "medium",
        });
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    };
    let lines = [
        build(
            "b1",
            "acme/shop",
            "payments",
            "2026-10-20T10:00:00Z",
            json!({"commit": "c1", "change_title": "PAY-1: pay by invoice"}),
        ),
        build(
            "b2",
            "acme/legacy",
            "payments",
            "2026-10-20T10:00:00Z",
            json!({}),
        ),
        json!({"schema_version": 1, "type": "deployment", "event_id": "d1", "source": "argocd",
            "repository": "acme/shop", "commit": "c1", "environment": "Production",
            "team": "payments", "product": "checkout", "status": "success",
            "finished_at": "2026-10-21T00:00:00Z", "author": "Jane.Doe@acme.example"}),
        json!({"schema_version": 1, "type": "request", "event_id": "r1", "source": "jira",
            "correlation_id": "PAY-1", "requested_at": "2026-10-11T00:00:00Z",
            "title": "Secret roadmap item", "reporter": "Jane.Doe@acme.example"}),
        // Bad ones, each with its reason.
        json!({"schema_version": 1, "type": "release", "event_id": "x1"}),
        json!({"schema_version": 1, "type": "deployment", "event_id": "x2", "source": "argocd",
            "repository": "acme/shop", "environment": "prod", "team": "payments",
            "status": "success", "finished_at": "2026-10-21T00:00:00Z"}),
        json!({"schema_version": 1, "type": "request", "event_id": "x3", "source": "jira",
            "correlation_id": "PAY-2", "requested_at": "next week"}),
    ];
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn deployments_and_requests_flow_from_ingest_to_gauges_and_views() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("buildcost.toml");
    std::fs::write(
        &config,
        "[store]\npath = \"buildcost-data\"\n[privacy]\nmin_team_size = 1\n",
    )
    .unwrap();
    let input = dir.path().join("events.ndjson");
    std::fs::write(&input, events()).unwrap();
    let out = run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args(["ingest", "--input"])
            .arg(&input),
    );
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(summary["accepted"], 4, "{summary}");
    assert_eq!(summary["rejected"], 3, "{summary}");
    let store = dir.path().join("buildcost-data");
    assert!(store.join("deployments").is_dir() && store.join("requests").is_dir());
    let stored = parquet_text(&store);
    for secret in ["jane.doe", "secret roadmap", "pay by invoice"] {
        assert!(!stored.contains(secret), "`{secret}` is stored");
    }

    let at = "2026-11-02T00:00:00Z";
    let out = run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args(["metrics", "--at", at]),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lead = 10.0 * 86_400.0;
    for (series, value) in [
        ("buildcost_product_deployments{product=\"checkout\",status=\"success\",window=\"28d\"}", 1.0),
        ("buildcost_product_deployments{product=\"checkout\",status=\"failure\",window=\"7d\"}", 0.0),
        ("buildcost_product_requests_delivered{product=\"checkout\",window=\"28d\"}", 1.0),
        ("buildcost_product_request_lead_time_seconds{product=\"checkout\",window=\"28d\",quantile=\"0.9\"}", lead),
        ("buildcost_product_request_lead_time_seconds_count{product=\"checkout\",window=\"28d\"}", 1.0),
        ("buildcost_org_deployments{status=\"success\",window=\"28d\"}", 1.0),
        ("buildcost_org_request_lead_time_seconds{window=\"28d\",quantile=\"0.5\"}", lead),
        ("buildcost_team_orphan_repositories{product=\"unassigned\",team=\"payments\"}", 1.0),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    let cost = sample(&text, "buildcost_org_orphan_repository_cost_euros").unwrap();
    assert!(cost > 0.0);
    assert_eq!(
        sample(
            &text,
            "buildcost_team_orphan_repository_cost_euros{product=\"unassigned\",team=\"payments\"}"
        ),
        Some(cost)
    );
    assert!(
        !text.contains("buildcost_team_request_lead_time_seconds"),
        "team lead times are opt-in"
    );
    assert!(
        !text.contains("PAY-1") && !text.contains("acme/"),
        "a request id or repository as a label"
    );
    assert_bounded_labels(&text, &["payments".to_owned()].into_iter().collect());

    let query = |sql: &str| {
        let out = run_ok(
            buildcost()
                .arg("--config")
                .arg(&config)
                .args(["query", "--at", at, "--format", "csv", sql]),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        query("SELECT request_id, lead_time_s, builds, team, product FROM requests"),
        "request_id,lead_time_s,builds,team,product\nPAY-1,864000.0,1,payments,checkout\n"
    );
    assert_eq!(
        query("SELECT repository, builds_28d, orphan FROM repositories ORDER BY repository"),
        "repository,builds_28d,orphan\nacme/legacy,1,true\nacme/shop,1,false\n"
    );
    assert_eq!(
        query("SELECT event_id, environment, production FROM deployments"),
        "event_id,environment,production\nd1,production,true\n"
    );

    // The weekly reports: the team's orphan repository, the org's delivery next to the
    // northstar; no request id, no title, no person.
    let reports = dir.path().join("reports");
    run_ok(
        buildcost()
            .arg("--config")
            .arg(&config)
            .args([
                "report", "weekly", "--week", "2026-W43", "--format", "md,json", "--out",
            ])
            .arg(&reports),
    );
    let team = std::fs::read_to_string(reports.join("payments.md")).unwrap();
    assert!(
        team.contains("Repositories that reach no production"),
        "{team}"
    );
    assert!(team.contains("| acme/legacy | never | 1 |"), "{team}");
    assert!(!team.contains("| acme/shop | never"), "{team}");
    let summary = std::fs::read_to_string(reports.join("summary.md")).unwrap();
    assert!(summary.contains("Orphan repositories"), "{summary}");
    assert!(
        summary.contains("1 to production; lead time p50 10.0 days, p90 10.0 days"),
        "{summary}"
    );
    let json = std::fs::read_to_string(reports.join("summary.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["delivery"]["requests_delivered"], 1, "{json}");
    for text in [&team, &summary] {
        for secret in ["PAY-1", "Jane", "invoice", "Secret"] {
            assert!(!text.contains(secret), "`{secret}` in a report");
        }
    }
}
