//! The store on a real S3-API server (SeaweedFS): every command works on it with the same
//! figures as on a local folder, pyarrow reads the history straight from the bucket, and a bad
//! bucket, key or endpoint stops the process at once with the setting to fix. (Scale-out with
//! two ingesters, a kill and an outage of the object store: tests/service.rs.)
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DurationRound, TimeDelta, Utc};
use common::*;

fn summary_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap()
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_command_works_on_an_s3_store_with_the_figures_of_a_local_one_and_pyarrow_reads_it() {
    let Some(weed) = Seaweed::find() else {
        return;
    };
    let Some(python) = python_with(&["pyarrow"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let seaweed = Seaweed::start(&weed, &dir.path().join("seaweed"), "buildcost");
    let at = Utc::now()
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap()
        .to_rfc3339();
    let events = generate(
        dir.path(),
        &Generate {
            seed: 5,
            days: 16,
            per_day: 150,
            teams: 24,
            invalid_ratio: 0.03,
            duplicate_ratio: 0.02,
            end: at.clone(),
            deliveries: true,
        },
    );

    // The reference: a local store.
    let local = dir.path().join("local");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::copy(dir.path().join("teams.csv"), local.join("teams.csv")).unwrap();
    let local_config = write_config(&local, "");
    let local_summary = summary_of(&run_ok(
        buildcost()
            .arg("--config")
            .arg(&local_config)
            .args(["ingest", "--no-progress", "--input"])
            .arg(&events),
    ));
    let local_metrics = run_ok(
        buildcost()
            .arg("--config")
            .arg(&local_config)
            .args(["metrics", "--at", &at]),
    );
    let expected = business_series(&String::from_utf8_lossy(&local_metrics.stdout));

    // The same events into s3://buildcost/history.
    let remote = dir.path().join("remote");
    std::fs::create_dir_all(&remote).unwrap();
    std::fs::copy(dir.path().join("teams.csv"), remote.join("teams.csv")).unwrap();
    // A webhook receiver for `report weekly --send`, whose records go to the bucket.
    let hooks_dir = dir.path().join("hooks");
    let hooks = Helper::start(
        &python,
        "webhook_receiver.py",
        &["--out", hooks_dir.to_str().unwrap()],
    );
    let config = write_s3_config(
        &remote,
        &seaweed,
        "history",
        &format!(
            "[[delivery.route]]\nsummary = true\nslack_webhook = \"http://127.0.0.1:{}/ok/slack/summary\"\n",
            hooks.port
        ),
    );
    let on_s3 = |args: &[&str]| {
        let mut cmd = buildcost();
        s3_credentials(&mut cmd)
            .arg("--config")
            .arg(&config)
            .args(args);
        cmd
    };
    let first = summary_of(&run_ok(
        on_s3(&["ingest", "--no-progress", "--input"]).arg(&events),
    ));
    assert_eq!(
        first, local_summary,
        "the same ingest summary as on a local store"
    );
    let accepted = first["accepted"].as_u64().unwrap();
    assert!(accepted > 2000 && first["rejected"].as_u64().unwrap() > 0);
    // The builds' table (`date=*/`); deployments and requests are tables of their own.
    let builds = first["accepted_by_kind"]["build"].as_u64().unwrap();
    assert!(
        first["accepted_by_kind"]["deployment"].as_u64() > Some(0),
        "{first}"
    );
    // A replay stores nothing twice: the event-id index reads the bucket.
    let again = summary_of(&run_ok(
        on_s3(&["ingest", "--no-progress", "--input"]).arg(&events),
    ));
    assert_eq!(again["accepted"], 0, "{again}");
    assert_eq!(
        again["duplicates"].as_u64().unwrap(),
        accepted + first["duplicates"].as_u64().unwrap(),
        "{again}"
    );

    // metrics, query, report: the figures of the local store.
    let metrics = run_ok(&mut on_s3(&["metrics", "--at", &at]));
    assert_same_gauges(
        &expected,
        &business_series(&String::from_utf8_lossy(&metrics.stdout)),
        "metrics --at on the S3 store",
    );
    let query = run_ok(&mut on_s3(&[
        "query",
        "--format",
        "csv",
        "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM builds",
    ]));
    let text = String::from_utf8_lossy(&query.stdout);
    assert!(
        text.contains(&format!("{builds},{builds}")),
        "query on the S3 store: {text}"
    );
    let week = "--week";
    let iso = (Utc::now() - TimeDelta::days(7))
        .format("%G-W%V")
        .to_string();
    run_ok(
        buildcost()
            .arg("--config")
            .arg(&local_config)
            .args(["report", "weekly", week, &iso, "--format", "all", "--out"])
            .arg(local.join("reports")),
    );
    run_ok(
        on_s3(&["report", "weekly", week, &iso, "--format", "all", "--out"])
            .arg(remote.join("reports")),
    );
    let (a, b) = (
        files_of(&local.join("reports")),
        files_of(&remote.join("reports")),
    );
    assert!(a.len() > 5, "reports written: {}", a.len());
    assert!(
        a == b,
        "the weekly reports of the S3 store differ from the local store's"
    );
    // Deliveries are recorded in the bucket: the second --send finds the record there.
    let send = [week, iso.as_str(), "--send"];
    let sent = run_ok(on_s3(&["report", "weekly"]).args(send));
    let text = String::from_utf8_lossy(&sent.stdout);
    assert!(text.contains("sent     summary/slack"), "{text}");
    let again = run_ok(on_s3(&["report", "weekly"]).args(send));
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("already  summary/slack"), "{text}");
    assert_eq!(files_with(&hooks_dir, "json").len(), 1, "one message sent");
    drop(hooks);

    // The FOCUS export reads the bucket as it reads a folder: the same file.
    let (from, to) = (
        (Utc::now().date_naive() - TimeDelta::days(14)).to_string(),
        Utc::now().date_naive().to_string(),
    );
    let export = [
        "export", "focus", "--from", &from, "--to", &to, "--format", "csv", "--out",
    ];
    run_ok(
        buildcost()
            .arg("--config")
            .arg(&local_config)
            .args(export)
            .arg(local.join("focus.csv")),
    );
    run_ok(on_s3(&export).arg(remote.join("focus.csv")));
    let focus = std::fs::read(local.join("focus.csv")).unwrap();
    assert!(focus.len() > 10_000);
    assert!(
        focus == std::fs::read(remote.join("focus.csv")).unwrap(),
        "the FOCUS export of the S3 store differs from the local store's"
    );

    // serve on the bucket: the same gauges, ready.
    let served = Served::start(&mut on_s3(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--at",
        &at,
    ]));
    wait_until(
        Duration::from_secs(60),
        "serve on the S3 store to be ready",
        || served.get("/readyz").0 == 200,
        || served.log_text(),
    );
    assert_same_gauges(
        &expected,
        &business_series(&served.get("/metrics").1),
        "serve on the S3 store",
    );
    let (status, _) = served.terminate();
    assert!(status.success());

    // pyarrow reads the bucket: every stored build once, the days, no raw identity anywhere.
    let authors = raw_authors(&events);
    assert!(authors.len() > 20);
    let authors_file = dir.path().join("authors.txt");
    std::fs::write(&authors_file, authors.join("\n")).unwrap();
    let summary = || {
        bucket_tool(
            &python,
            &seaweed,
            &[
                "summary",
                "buildcost/history",
                authors_file.to_str().unwrap(),
            ],
        )
    };
    let read = summary();
    eprintln!("pyarrow read the bucket: {read}");
    // The builds' table (`date=*/`); deployments and requests are tables of their own.
    let builds = first["accepted_by_kind"]["build"].as_u64();
    assert!(
        first["accepted_by_kind"]["deployment"].as_u64() > Some(0),
        "{first}"
    );
    assert_eq!(read["rows"].as_u64(), builds, "{read}");
    assert_eq!(read["distinct_ids"].as_u64(), builds, "{read}");
    assert_eq!(read["ids_stored_twice"], 0, "{read}");
    assert!(read["days"].as_u64().unwrap() >= 16, "{read}");
    assert_eq!(read["raw_authors_found"], 0, "{read}");
    let folders = &read["objects_by_folder"];
    for folder in [
        "date=*",
        "rejections",
        "dead-letter",
        "_rollups",
        "deliveries",
    ] {
        assert!(
            folders[folder].as_u64().unwrap_or(0) > 0,
            "{folder} in the bucket: {read}"
        );
    }
    assert!(
        folders.get("pseudonym.key").is_none(),
        "the key is never in the bucket: {read}"
    );

    // A damaged object is quarantined at start-up, not read; figures unchanged.
    let day = Utc::now().date_naive() - TimeDelta::days(3);
    let damaged = format!("buildcost/history/date={day}/damaged.parquet");
    bucket_tool(&python, &seaweed, &["put", &damaged, ""]);
    let metrics = run_ok(&mut on_s3(&["metrics", "--at", &at]));
    let log = String::from_utf8_lossy(&metrics.stderr);
    assert!(log.contains("quarantined a damaged store file"), "{log}");
    assert_same_gauges(
        &expected,
        &business_series(&String::from_utf8_lossy(&metrics.stdout)),
        "metrics after the quarantine",
    );
    let listed = bucket_tool(&python, &seaweed, &["ls", "buildcost/history"]);
    let listed: Vec<String> = serde_json::from_value(listed).unwrap();
    assert!(listed.contains(&format!("quarantine/date={day}/damaged.parquet")));
    assert!(!listed.contains(&format!("date={day}/damaged.parquet")));

    // Retention deletes old days from the bucket, rollups with them.
    // `on_s3` runs with `config`: keep 7 days in it.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("retention_days = 400", "retention_days = 7");
    std::fs::write(&config, text).unwrap();
    run_ok(on_s3(&["ingest", "--no-progress", "--input"]).arg("/dev/null"));
    let read = summary();
    let oldest = (Utc::now().date_naive() - TimeDelta::days(7)).to_string();
    assert!(
        read["first_day"].as_str().unwrap() >= oldest.as_str(),
        "retention kept {read}"
    );
    let listed: Vec<String> =
        serde_json::from_value(bucket_tool(&python, &seaweed, &["ls", "buildcost/history"]))
            .unwrap();
    assert!(
        listed
            .iter()
            .filter_map(|k| k.strip_prefix("_rollups/v1/"))
            .all(|name| name[..10] >= *oldest),
        "rollups of deleted days are gone: {listed:?}"
    );
}

/// Runs `cmd` expecting a quick failure; its stderr.
fn fails_fast(cmd: &mut Command, within: Duration) -> String {
    let started = Instant::now();
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{cmd:?} succeeded:\n{stderr}");
    assert!(took < within, "{cmd:?} took {took:?} to fail:\n{stderr}");
    stderr
}

#[test]
fn a_missing_bucket_refused_credentials_an_unreachable_endpoint_or_no_key_fail_at_start_up() {
    let Some(weed) = Seaweed::find() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let seaweed = Seaweed::start(&weed, &dir.path().join("seaweed"), "buildcost");
    let config = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let key = dir.path().join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let toml = |path: &str, endpoint: &str, key: &Path| {
        format!(
            "[store]\npath = \"{path}\"\n[store.s3]\nendpoint = \"{endpoint}\"\nallow_http = true\n\
             [privacy]\npseudonym_key_file = \"{}\"\n",
            key.display()
        )
    };
    let endpoint = seaweed.endpoint();
    let ok = config("ok.toml", toml("s3://buildcost/x", &endpoint, &key));
    let limit = Duration::from_secs(30);
    let run = |config: &Path, args: &[&str]| {
        let mut cmd = buildcost();
        s3_credentials(&mut cmd)
            .arg("--config")
            .arg(config)
            .args(args);
        cmd
    };
    // The good configuration works.
    run_ok(&mut run(&ok, &["metrics"]));

    let no_bucket = config("nb.toml", toml("s3://no-such-bucket/x", &endpoint, &key));
    let e = fails_fast(&mut run(&no_bucket, &["metrics"]), limit);
    assert!(
        e.contains("store.path") && e.contains("bucket does not exist"),
        "{e}"
    );

    let e = fails_fast(
        run(&ok, &["metrics"]).env("AWS_SECRET_ACCESS_KEY", "wrong"),
        limit,
    );
    assert!(e.contains("refused the credentials"), "{e}");
    assert!(!e.contains("wrong"), "the secret in an error: {e}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = config(
        "un.toml",
        toml(
            "s3://buildcost/x",
            &format!("http://127.0.0.1:{closed}"),
            &key,
        ),
    );
    let e = fails_fast(&mut run(&unreachable, &["metrics"]), limit);
    assert!(
        e.contains("store.s3.endpoint") && e.contains("cannot be reached"),
        "{e}"
    );

    // An object store never creates the key: a missing one stops ingest, naming the key.
    let missing_key = config(
        "nk.toml",
        toml(
            "s3://buildcost/x",
            &endpoint,
            &dir.path().join("absent.key"),
        ),
    );
    let e = fails_fast(
        &mut run(&missing_key, &["ingest", "--no-progress", "--input", "-"]),
        limit,
    );
    assert!(e.contains("privacy.pseudonym_key_file"), "{e}");
    assert!(!dir.path().join("absent.key").exists());

    // Plain http without allow_http, a credential in the file, no key file set.
    let http = config(
        "http.toml",
        toml("s3://buildcost/x", &endpoint, &key).replace("allow_http = true\n", ""),
    );
    let e = fails_fast(&mut run(&http, &["metrics"]), limit);
    assert!(e.contains("store.s3.allow_http"), "{e}");
    let secret = config(
        "secret.toml",
        toml("s3://buildcost/x", &endpoint, &key).replace(
            "allow_http = true\n",
            "allow_http = true\nsecret_access_key = \"x\"\n",
        ),
    );
    let e = fails_fast(&mut run(&secret, &["metrics"]), limit);
    assert!(e.contains("secret_access_key"), "{e}");
    let unset = config(
        "unset.toml",
        format!(
            "[store]\npath = \"s3://buildcost/x\"\n[store.s3]\nendpoint = \"{endpoint}\"\nallow_http = true\n"
        ),
    );
    let e = fails_fast(&mut run(&unset, &["metrics"]), limit);
    assert!(e.contains("privacy.pseudonym_key_file"), "{e}");
}
