//! Spec section 12 by hand: requests, builds and deployments whose every delivery figure is
//! computed below (whole-word request ids, trimmed and lower-cased environments, ties, clamped
//! lead times, requests never delivered, orphans at exactly 90 days, small teams).
//!
//! Prices: 1 CPU at €1 per CPU-hour and nothing else, so a build costs its hours.
//! min_team_size = 2; teams: alpha (p1, 3), beta (p1, 2), tiny (p2, 1). The instant is
//! 2026-11-02T00:00Z: 7d starts 10-26, 28d starts 10-05, 90 days before is 08-04T00:00Z.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use buildcost_ingest::{ingest_ndjson, Ingestor, MemoryDeadLetters};
use buildcost_model::config::PricingConfig;
use buildcost_model::{Classifier, Decoder, DeliveryConfig, Pseudonymiser};
use buildcost_query::{DeliveryFigures, DeliveryWindow, Engine, QuerySettings, TeamsFile};
use buildcost_store::Store;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()
}

fn build(id: &str, repo: &str, team: &str, hours: f64, finished: &str, extra: Value) -> Value {
    let finished_at: DateTime<Utc> = DateTime::parse_from_rfc3339(finished).unwrap().into();
    let started = finished_at - chrono::Duration::seconds((hours * 3600.0) as i64);
    let mut e = json!({
        "schema_version": 1, "event_id": id, "source": "gitlab", "build_id": id,
        "pipeline": "ci", "repository": repo, "team": team, "started_at": started.to_rfc3339(),
        "finished_at": finished, "status": "success", "runner_class": "default",
        "author": "Jane.Doe@acme.example",
    });
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

#[allow(clippy::too_many_arguments)]
fn deployment(
    id: &str,
    repo: &str,
    commit: &str,
    environment: &str,
    team: &str,
    product: &str,
    status: &str,
    finished: &str,
    ids: &[&str],
) -> Value {
    json!({
        "schema_version": 1, "type": "deployment", "event_id": id, "source": "argocd",
        "repository": repo, "commit": commit, "environment": environment, "team": team,
        "product": product, "status": status, "finished_at": finished, "correlation_ids": ids,
        "author": "Jane.Doe@acme.example",
    })
}

fn request(id: &str, request_id: &str, requested: &str) -> Value {
    json!({
        "schema_version": 1, "type": "request", "event_id": id, "source": "jira",
        "correlation_id": request_id, "requested_at": requested,
        "title": "Let customers pay by invoice", "reporter": "Jane.Doe@acme.example",
    })
}

fn fixture() -> String {
    let events = [
        // shop: PAY-1 from the branch, PAY-2 from the change title (the rest are not whole
        // words, or not upper case), PAY-1 again from a correlation id.
        build(
            "b1",
            "shop",
            "alpha",
            1.0,
            "2026-10-20T10:00:00Z",
            json!({"commit": "c1", "branch": "feature/PAY-1-cart"}),
        ),
        build(
            "b2",
            "shop",
            "alpha",
            2.0,
            "2026-10-20T12:00:00Z",
            json!({"commit": "c1", "change_title": "[PAY-2] tidy (abcXPAY-9, PAY-77x, pay-3)"}),
        ),
        build(
            "b3",
            "shop",
            "beta",
            0.5,
            "2026-10-28T09:00:00Z",
            json!({"commit": "c2", "correlation_id": "PAY-1"}),
        ),
        // api: PAY-3's only build finished after api/a1 was deployed: never delivered.
        build(
            "b4",
            "api",
            "beta",
            4.0,
            "2026-10-30T00:00:00Z",
            json!({"commit": "a1", "branch": "PAY-3"}),
        ),
        // legacy: no deployment; two builds of tiny (a small team), one of alpha.
        build(
            "b5",
            "legacy",
            "tiny",
            3.0,
            "2026-10-10T00:00:00Z",
            json!({}),
        ),
        build(
            "b6",
            "legacy",
            "alpha",
            1.0,
            "2026-10-11T00:00:00Z",
            json!({}),
        ),
        build(
            "b7",
            "legacy",
            "tiny",
            1.0,
            "2026-10-12T00:00:00Z",
            json!({}),
        ),
        // tools: deployed exactly 90 days before the instant; web: one second earlier.
        build(
            "b8",
            "tools",
            "beta",
            2.0,
            "2026-10-15T00:00:00Z",
            json!({}),
        ),
        build("b9", "web", "beta", 1.0, "2026-10-17T00:00:00Z", json!({})),
        build(
            "b9a",
            "web",
            "alpha",
            1.0,
            "2026-10-16T00:00:00Z",
            json!({}),
        ),
        // Before the window: PAY-0's build.
        build(
            "b10",
            "shop",
            "alpha",
            10.0,
            "2026-09-01T00:00:00Z",
            json!({"commit": "c0", "correlation_id": "PAY-0"}),
        ),
        // Two successful production deployments of shop/c1 at the same instant: dep-a (the
        // smaller id) delivers PAY-1 and PAY-2; PAY-5 is only in dep-b's own ids.
        deployment(
            "dep-b",
            "shop",
            "c1",
            " Production ",
            "alpha",
            "p1",
            "success",
            "2026-10-21T00:00:00Z",
            &["PAY-5"],
        ),
        deployment(
            "dep-a",
            "shop",
            "c1",
            "PROD",
            "beta",
            "p9",
            "success",
            "2026-10-21T00:00:00Z",
            &[],
        ),
        deployment(
            "dep-c",
            "shop",
            "c2",
            "staging",
            "beta",
            "p1",
            "success",
            "2026-10-29T00:00:00Z",
            &[],
        ),
        deployment(
            "dep-d",
            "api",
            "a1",
            "production",
            "beta",
            "p1",
            "failure",
            "2026-10-29T00:00:00Z",
            &[],
        ),
        deployment(
            "dep-e",
            "api",
            "a1",
            "production",
            "beta",
            "p1",
            "success",
            "2026-10-29T06:00:00Z",
            &[],
        ),
        deployment(
            "dep-f",
            "tools",
            "t1",
            "production",
            "beta",
            "p1",
            "success",
            "2026-08-04T00:00:00Z",
            &[],
        ),
        deployment(
            "dep-g",
            "web",
            "w1",
            "production",
            "alpha",
            "p1",
            "success",
            "2026-08-03T23:59:59Z",
            &[],
        ),
        deployment(
            "dep-h",
            "shop",
            "c0",
            "production",
            "alpha",
            "p1",
            "success",
            "2026-09-02T00:00:00Z",
            &[],
        ),
        // PAY-1 was asked for twice (the earliest counts); PAY-2 after it was delivered.
        request("r1", "PAY-1", "2026-10-01T00:00:00Z"),
        request("r1b", "PAY-1", "2026-10-05T00:00:00Z"),
        request("r2", "PAY-2", "2026-10-22T00:00:00Z"),
        request("r3", "PAY-3", "2026-10-15T00:00:00Z"),
        request("r0", "PAY-0", "2026-08-30T00:00:00Z"),
        request("r2", "PAY-2", "2026-10-22T00:00:00Z"),
    ];
    events.iter().map(|e| format!("{e}\n")).collect()
}

fn settings(lead_time_by_team: bool) -> QuerySettings {
    let mut pricing = PricingConfig::default();
    pricing.default.cpu_cores = 1.0;
    pricing.default.memory_gb = 0.0;
    pricing.default.eur_per_cpu_hour = 1.0;
    pricing.default.eur_per_build = 0.0;
    QuerySettings {
        pricing,
        min_team_size: 2,
        teams: TeamsFile::parse(
            "team,product,developers,peer_group\nalpha,p1,3,\nbeta,p1,2,\ntiny,p2,1,\n",
        )
        .unwrap(),
        delivery: DeliveryConfig {
            lead_time_by_team,
            ..DeliveryConfig::default()
        },
        ..QuerySettings::default()
    }
}

fn store_with_fixture(dir: &std::path::Path) -> Store {
    let store = Store::open(dir).unwrap();
    let decoder = Decoder::new(
        65536,
        Pseudonymiser::new(b"k").unwrap(),
        Classifier::builtin().unwrap(),
    );
    let mut ingestor = Ingestor::new(decoder, &store, store.event_index(), "fixture");
    let mut dead = MemoryDeadLetters::default();
    ingest_ndjson(
        &mut fixture().as_bytes(),
        "fixture",
        &mut ingestor,
        &mut dead,
        at(),
        &mut |_| {},
    )
    .unwrap();
    let summary = ingestor.finish(&mut dead).unwrap();
    assert_eq!(
        (summary.accepted, summary.duplicates, summary.rejected()),
        (24, 1, 0)
    );
    store
}

fn figures(store: &Store, lead_time_by_team: bool) -> DeliveryFigures {
    Engine::new()
        .snapshot_now(store, &settings(lead_time_by_team), at())
        .unwrap()
        .delivery
}

fn window(
    success: u64,
    failure: u64,
    delivered: u64,
    leads: &[f64],
    lead: Option<(f64, f64)>,
    cost: f64,
) -> DeliveryWindow {
    DeliveryWindow {
        deployments_success: success,
        deployments_failure: failure,
        requests_delivered: delivered,
        lead_time: lead,
        lead_times: leads.len() as u64,
        lead_time_sum_s: leads.iter().sum(),
        delivered_ci_cost_eur: cost,
    }
}

const DAY: f64 = 86_400.0;

#[test]
fn products_and_the_org_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fixture(dir.path());
    let d = figures(&store, false);
    assert!(d.has_deployments);
    let products: Vec<&str> = d.products.iter().map(|p| p.product.as_str()).collect();
    assert_eq!(products, ["p1", "p9"]);
    let p1 = &d.products[0].windows;
    // p1: dep-b and dep-e succeeded, dep-d failed in 28d; PAY-5 delivered, no request event.
    assert_eq!(p1["28d"], window(2, 1, 1, &[], None, 0.0));
    assert_eq!(p1["7d"], window(1, 1, 0, &[], None, 0.0));
    // p9: dep-a delivered PAY-1 (lead 20 days) and PAY-2 (asked for after: 0).
    let p9 = &d.products[1].windows;
    assert_eq!(
        p9["28d"],
        window(
            1,
            0,
            2,
            &[0.0, 20.0 * DAY],
            Some((10.0 * DAY, 20.0 * DAY)),
            1.5 + 2.0
        )
    );
    assert_eq!(p9["7d"], window(0, 0, 0, &[], None, 0.0));
    assert_eq!(
        d.org["28d"],
        window(
            3,
            1,
            3,
            &[0.0, 20.0 * DAY],
            Some((10.0 * DAY, 20.0 * DAY)),
            3.5
        )
    );
    assert_eq!(d.org["7d"], window(1, 1, 0, &[], None, 0.0));
    assert!(d.team_lead_times.is_empty(), "team lead times are opt-in");
}

#[test]
fn team_lead_times_only_when_opted_in() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fixture(dir.path());
    let d = figures(&store, true);
    let leads: Vec<(String, String, String, f64, f64, u64, f64)> = d
        .team_lead_times
        .iter()
        .map(|t| {
            (
                t.team.clone(),
                t.product.clone(),
                t.window.clone(),
                t.p50,
                t.p90,
                t.count,
                t.sum_s,
            )
        })
        .collect();
    assert_eq!(
        leads,
        [(
            "beta".into(),
            "p9".into(),
            "28d".into(),
            10.0 * DAY,
            20.0 * DAY,
            2,
            20.0 * DAY
        )]
    );
}

#[test]
fn orphan_repositories_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fixture(dir.path());
    let d = figures(&store, false);
    let repos: Vec<(&str, Option<&str>, u64, f64, bool)> = d
        .repositories
        .iter()
        .map(|r| {
            (
                r.repository.as_str(),
                r.team.as_deref(),
                r.builds_28d,
                r.cost_28d,
                r.orphan,
            )
        })
        .collect();
    assert_eq!(
        repos,
        [
            ("api", Some("beta"), 1, 4.0, false),
            // tiny ran two of three builds: its repository, shown in no team gauge.
            ("legacy", Some("tiny"), 3, 5.0, true),
            ("shop", Some("alpha"), 3, 3.5, false),
            // Deployed exactly 90 days before: not an orphan.
            ("tools", Some("beta"), 1, 2.0, false),
            // One build each: the alphabetically smaller team; both builds cost.
            ("web", Some("alpha"), 2, 2.0, true),
        ]
    );
    let orphans: Vec<(&str, &str, u64, f64)> = d
        .team_orphans
        .iter()
        .map(|t| {
            (
                t.team.as_str(),
                t.product.as_str(),
                t.repositories,
                t.cost_eur,
            )
        })
        .collect();
    assert_eq!(orphans, [("alpha", "p1", 1, 2.0)]);
    assert_eq!(d.hidden_orphans, 1);
    assert_eq!(d.org_orphan_cost_eur, 7.0);
}

#[test]
fn the_requests_view_rows_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fixture(dir.path());
    let d = figures(&store, false);
    let rows: Vec<String> = d
        .requests
        .iter()
        .map(|r| {
            format!(
                "{} {} {:?} {:?} {} {} {:?} {:?}",
                r.request_id,
                r.requested_at.to_rfc3339(),
                r.delivered_at.map(|t| t.to_rfc3339()),
                r.lead_time_s,
                r.builds,
                r.ci_cost_eur,
                r.team,
                r.product
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "PAY-0 2026-08-30T00:00:00+00:00 Some(\"2026-09-02T00:00:00+00:00\") Some(259200.0) 1 10 Some(\"alpha\") Some(\"p1\")",
            "PAY-1 2026-10-01T00:00:00+00:00 Some(\"2026-10-21T00:00:00+00:00\") Some(1728000.0) 2 1.5 Some(\"beta\") Some(\"p9\")",
            "PAY-2 2026-10-22T00:00:00+00:00 Some(\"2026-10-21T00:00:00+00:00\") Some(0.0) 1 2 Some(\"beta\") Some(\"p9\")",
            "PAY-3 2026-10-15T00:00:00+00:00 None None 1 4 None None",
        ]
    );
}

#[test]
fn before_any_deployment_there_are_no_orphan_figures() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fixture(dir.path());
    let early = Utc.with_ymd_and_hms(2026, 8, 3, 0, 0, 0).unwrap();
    let d = Engine::new()
        .snapshot_now(&store, &settings(false), early)
        .unwrap()
        .delivery;
    assert!(!d.has_deployments);
    assert!(d.team_orphans.is_empty() && d.org.is_empty() && d.products.is_empty());
}

#[test]
fn the_incremental_engine_gives_the_same_figures() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_fixture(dir.path());
    let mut engine = Engine::new();
    let earlier = Utc.with_ymd_and_hms(2026, 10, 25, 0, 0, 0).unwrap();
    engine
        .snapshot_now(&store, &settings(false), earlier)
        .unwrap();
    let again = engine.snapshot_now(&store, &settings(false), at()).unwrap();
    assert_eq!(again.delivery, figures(&store, false));
}
