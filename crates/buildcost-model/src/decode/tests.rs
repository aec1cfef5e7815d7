use chrono::TimeZone;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

static DECODER: std::sync::LazyLock<Decoder> = std::sync::LazyLock::new(|| {
    Decoder::new(
        DEFAULT_MAX_EVENT_BYTES,
        Pseudonymiser::new(b"test-key").unwrap(),
        Classifier::builtin().unwrap(),
    )
});

fn decoder() -> &'static Decoder {
    &DECODER
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap()
}

fn valid() -> Value {
    json!({
        "schema_version": 1,
        "event_id": "gl-123-1",
        "source": "gitlab",
        "build_id": "123",
        "pipeline": "build-and-test",
        "repository": "acme/checkout",
        "branch": "main",
        "commit": "9f2c1e0",
        "trigger": "push",
        "team": "  Payments ",
        "product": "Checkout",
        "author": "Jane.Doe@acme.example",
        "queued_at": "2026-11-02T09:58:00Z",
        "started_at": "2026-11-02T10:00:00Z",
        "finished_at": "2026-11-02T10:12:30.5Z",
        "status": "success",
        "runner_class": "medium",
        "attempt": 1,
        "labels": {"env": "ci"}
    })
}

fn decode(v: &Value) -> Result<BuildRow, Rejection> {
    decoder()
        .decode(v.to_string().as_bytes(), now())
        .map(|e| e.into_build().expect("a build"))
}

fn reason(v: &Value) -> Option<RejectReason> {
    decode(v).err().map(|r| r.reason)
}

fn with(field: &str, value: Value) -> Value {
    let mut v = valid();
    v[field] = value;
    v
}

fn without(field: &str) -> Value {
    let mut v = valid();
    v.as_object_mut().unwrap().remove(field);
    v
}

#[test]
fn a_valid_event_is_normalised_and_pseudonymised() {
    let row = decode(&valid()).unwrap();
    assert_eq!(row.team, "payments");
    assert_eq!(row.product, "checkout");
    assert_eq!(row.duration_s, 750.5);
    assert_eq!(row.trigger, Trigger::Push);
    assert_eq!(row.attempt, 1);
    assert_eq!(row.labels, vec![("env".to_owned(), "ci".to_owned())]);
    let key = row.author_key.clone().unwrap();
    assert_eq!(
        key,
        Pseudonymiser::new(b"test-key")
            .unwrap()
            .author_key("jane.doe@acme.example")
    );
    assert!(!format!("{row:?}").to_lowercase().contains("jane"));
    assert_eq!(row.failure_category, None);
    assert_eq!(row.ingested_at, now());
}

#[test]
fn defaults_apply_to_absent_optional_fields() {
    let mut v = valid();
    for f in [
        "trigger",
        "product",
        "author",
        "attempt",
        "branch",
        "commit",
        "labels",
        "queued_at",
    ] {
        v.as_object_mut().unwrap().remove(f);
    }
    v["superseded"] = Value::Null;
    let row = decode(&v).unwrap();
    assert_eq!(row.trigger, Trigger::Other);
    assert_eq!(row.product, "unassigned");
    assert_eq!(row.author_key, None);
    assert_eq!(row.attempt, 1);
    assert!(!row.superseded);
    assert!(row.labels.is_empty());
}

#[test]
fn timestamps_with_offsets_become_utc() {
    let v = with("started_at", json!("2026-11-02T11:00:00+01:00"));
    let v = {
        let mut v = v;
        v["finished_at"] = json!("2026-11-02T05:30:00-04:30");
        v
    };
    let row = decode(&v).unwrap();
    assert_eq!(
        row.started_at,
        Utc.with_ymd_and_hms(2026, 11, 2, 10, 0, 0).unwrap()
    );
    assert_eq!(
        row.finished_at,
        Utc.with_ymd_and_hms(2026, 11, 2, 10, 0, 0).unwrap()
    );
    assert_eq!(row.duration_s, 0.0);
}

#[test]
fn unknown_fields_are_ignored_even_when_odd() {
    let mut v = valid();
    v["x_future_field"] = json!({"deep": [1, 2, 3]});
    assert!(decode(&v).is_ok());
    // A number no f64 can hold, in a field we do not read, does not reject the event.
    let text = v.to_string().replacen('{', "{\"x_huge\":1e999,", 1);
    assert!(decoder().decode(text.as_bytes(), now()).is_ok());
}

#[test]
fn each_reason_in_the_spec_order() {
    let d = Decoder::new(
        600,
        Pseudonymiser::new(b"k").unwrap(),
        Classifier::builtin().unwrap(),
    );
    let big = "x".repeat(700);
    assert_eq!(
        d.decode(big.as_bytes(), now()).unwrap_err().reason,
        RejectReason::TooLarge
    );
    // too_large wins over everything else.
    assert_eq!(
        d.decode(format!("{{{big}").as_bytes(), now())
            .unwrap_err()
            .reason,
        RejectReason::TooLarge
    );

    let cases: Vec<(Vec<u8>, RejectReason)> = vec![
        (b"\xff\xfe{}".to_vec(), RejectReason::InvalidJson),
        (
            b"{\"schema_version\":1,".to_vec(),
            RejectReason::InvalidJson,
        ),
        (b"[1,2,3]".to_vec(), RejectReason::InvalidJson),
        (b"\"just a string\"".to_vec(), RejectReason::InvalidJson),
        (b"".to_vec(), RejectReason::InvalidJson),
        (
            b"{\"event_id\":\"a\"}".to_vec(),
            RejectReason::UnsupportedVersion,
        ),
        (
            b"{\"schema_version\":2}".to_vec(),
            RejectReason::UnsupportedVersion,
        ),
        (
            b"{\"schema_version\":\"1\"}".to_vec(),
            RejectReason::UnsupportedVersion,
        ),
        (
            b"{\"schema_version\":null}".to_vec(),
            RejectReason::UnsupportedVersion,
        ),
        (
            b"{\"schema_version\":1}".to_vec(),
            RejectReason::MissingField,
        ),
        (
            b"{\"schema_version\":1.0}".to_vec(),
            RejectReason::MissingField,
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            decoder().decode(&bytes, now()).unwrap_err().reason,
            expected,
            "{:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[test]
fn missing_and_null_required_fields() {
    for f in REQUIRED {
        assert_eq!(
            reason(&without(f)),
            Some(RejectReason::MissingField),
            "absent {f}"
        );
        assert_eq!(
            reason(&with(f, Value::Null)),
            Some(RejectReason::MissingField),
            "null {f}"
        );
    }
    // missing_field beats invalid_field elsewhere in the same event.
    let mut v = without("team");
    v["status"] = json!("weird");
    let r = decode(&v).unwrap_err();
    assert_eq!(r.reason, RejectReason::MissingField);
    assert!(r.detail.contains("team"), "{}", r.detail);
}

#[test]
fn invalid_fields() {
    let cases = [
        ("event_id", json!("")),
        ("event_id", json!("x".repeat(257))),
        ("event_id", json!(42)),
        ("team", json!("   ")),
        ("team", json!(["a"])),
        ("pipeline", json!(true)),
        ("product", json!("")),
        ("author", json!("")),
        ("author", json!(7)),
        ("branch", json!("")),
        ("trigger", json!("cron")),
        ("status", json!("SUCCESS")),
        ("status", json!("passed")),
        ("failure_stage", json!("build")),
        ("failure_category", json!("typo")),
        ("log_excerpt", json!("x".repeat(8 * 1024 + 1))),
        ("cpu_cores", json!(0)),
        ("cpu_cores", json!(-2)),
        ("cpu_cores", json!("4")),
        ("memory_gb", json!(-0.5)),
        ("gpus", json!(1.5)),
        ("gpus", json!(-1)),
        ("attempt", json!(0)),
        ("attempt", json!("1")),
        ("superseded", json!("yes")),
        ("labels", json!({"a": 1})),
        ("labels", json!(["a"])),
        ("started_at", json!(1_700_000_000)),
        ("started_at", json!("")),
        ("runner_class", json!("")),
    ];
    for (field, value) in cases {
        let r = decode(&with(field, value.clone())).unwrap_err();
        assert_eq!(r.reason, RejectReason::InvalidField, "{field} = {value}");
        assert!(
            r.detail.contains(field),
            "detail {:?} should name {field}",
            r.detail
        );
    }
    // Exactly at the limits is fine.
    assert!(decode(&with("event_id", json!("é".repeat(256)))).is_ok());
    assert!(decode(&with("log_excerpt", json!("x".repeat(8 * 1024)))).is_ok());
    assert!(decode(&with("memory_gb", json!(0))).is_ok());
    assert!(decode(&with("gpus", json!(2.0))).is_ok());
}

#[test]
fn non_finite_numbers_are_invalid_fields() {
    let text = valid()
        .to_string()
        .replacen('{', "{\"cpu_cores\":1e999,", 1);
    let r = decoder().decode(text.as_bytes(), now()).unwrap_err();
    assert_eq!(r.reason, RejectReason::InvalidField);
    for nan_like in ["NaN", "Infinity", "-Infinity"] {
        let text = valid()
            .to_string()
            .replacen('{', &format!("{{\"cpu_cores\":{nan_like},"), 1);
        // Not JSON at all: the bare words are not JSON numbers.
        assert_eq!(
            decoder().decode(text.as_bytes(), now()).unwrap_err().reason,
            RejectReason::InvalidJson
        );
    }
    assert_eq!(
        reason(&with("cpu_cores", json!("NaN"))),
        Some(RejectReason::InvalidField)
    );
}

#[test]
fn timestamp_rules() {
    let cases = [
        with("started_at", json!("yesterday")),
        with("finished_at", json!("2026-11-02 10:12")),
        with("finished_at", json!("2026-13-02T10:00:00Z")),
        with("queued_at", json!("2026-11-02T10:00:01Z")),
        with("finished_at", json!("2026-11-02T09:59:59Z")),
        {
            let mut v = with("started_at", json!("2026-10-25T09:59:59Z"));
            v["finished_at"] = json!("2026-11-01T10:00:00Z");
            v
        },
        {
            let mut v = with("started_at", json!("2026-11-02T13:00:00Z"));
            v["finished_at"] = json!("2026-11-02T13:00:01Z");
            v
        },
    ];
    for v in cases {
        assert_eq!(reason(&v), Some(RejectReason::InvalidTimestamp), "{v}");
    }
    // Exactly 7 days, and up to one hour in the future, are accepted.
    let mut v = without("queued_at");
    v["started_at"] = json!("2026-10-26T10:00:00Z");
    v["finished_at"] = json!("2026-11-02T10:00:00Z");
    assert!(decode(&v).is_ok());
    let mut v = with("started_at", json!("2026-11-02T12:30:00Z"));
    v["finished_at"] = json!("2026-11-02T13:00:00Z");
    v["queued_at"] = json!("2026-11-02T12:30:00Z");
    assert!(decode(&v).is_ok());
    // invalid_field comes before invalid_timestamp.
    let mut v = with("started_at", json!("never"));
    v["status"] = json!("bogus");
    assert_eq!(reason(&v), Some(RejectReason::InvalidField));
}

#[test]
fn failure_category_is_derived_only_for_failures_without_one() {
    let mut v = with("status", json!("failure"));
    v["log_excerpt"] =
        json!("./main.go:5:2: syntax error: unexpected newline, expected comma or }");
    v["failure_stage"] = json!("unit_test");
    let row = decode(&v).unwrap();
    assert_eq!(row.failure_category, Some(FailureCategory::Syntax));
    assert_eq!(row.category_source, Some(CategorySource::Log));

    v["failure_category"] = json!("flaky_test");
    let row = decode(&v).unwrap();
    assert_eq!(row.failure_category, Some(FailureCategory::FlakyTest));
    assert_eq!(row.category_source, Some(CategorySource::Event));

    let mut v = with("status", json!("failure"));
    v["failure_stage"] = json!("lint");
    assert_eq!(
        decode(&v).unwrap().failure_category,
        Some(FailureCategory::Lint)
    );

    let v = with("status", json!("failure"));
    assert_eq!(
        decode(&v).unwrap().failure_category,
        Some(FailureCategory::Unknown)
    );

    let mut v = with("status", json!("error"));
    v["log_excerpt"] = json!("fatal: No space left on device");
    assert_eq!(decode(&v).unwrap().failure_category, None);
}

#[test]
fn lone_surrogates_and_escapes() {
    let text = valid()
        .to_string()
        .replace("\"acme/checkout\"", "\"acme/\\ud800\"");
    assert_eq!(
        decoder().decode(text.as_bytes(), now()).unwrap_err().reason,
        RejectReason::InvalidJson
    );
    let text = valid()
        .to_string()
        .replace("\"acme/checkout\"", "\"acme/\\u00e9t\\u00e9\"");
    assert_eq!(
        decoder()
            .decode(text.as_bytes(), now())
            .unwrap()
            .into_build()
            .unwrap()
            .repository,
        "acme/été"
    );
}

#[test]
fn duplicate_known_keys_are_invalid_json() {
    let text = valid().to_string().replacen('{', "{\"team\":\"other\",", 1);
    assert_eq!(
        decoder().decode(text.as_bytes(), now()).unwrap_err().reason,
        RejectReason::InvalidJson
    );
}

#[test]
fn details_never_quote_the_author_or_log() {
    let mut v = with("author", json!("Jane Secret"));
    v["log_excerpt"] = json!(12);
    let r = decode(&v).unwrap_err();
    assert!(!r.detail.contains("Jane"));
    assert!(!r.detail.contains("Secret"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes_give_a_row_or_one_rejection(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decoder().decode(&bytes, now());
    }

    #[test]
    fn any_json_object_gives_a_row_or_one_rejection(
        fields in proptest::collection::btree_map(
            prop_oneof![
                Just("schema_version".to_owned()), Just("event_id".to_owned()), Just("team".to_owned()),
                Just("started_at".to_owned()), Just("finished_at".to_owned()), Just("status".to_owned()),
                Just("cpu_cores".to_owned()), Just("labels".to_owned()), "[a-z_]{1,12}",
            ],
            prop_oneof![
                Just(Value::Null), any::<bool>().prop_map(Value::from), any::<i64>().prop_map(Value::from),
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
                ".{0,40}".prop_map(Value::from), Just(json!({"k": "v"})), Just(json!([1, "x"])),
            ],
            0..12,
        )
    ) {
        let v = Value::Object(fields.into_iter().collect());
        let _ = decoder().decode(v.to_string().as_bytes(), now());
    }

    #[test]
    fn mutated_valid_events_never_panic(cut in 0usize..400, byte in any::<u8>()) {
        let mut bytes = valid().to_string().into_bytes();
        let at = cut.min(bytes.len() - 1);
        bytes[at] = byte;
        let _ = decoder().decode(&bytes, now());
        bytes.truncate(at);
        let _ = decoder().decode(&bytes, now());
    }
}

#[test]
fn control_characters_in_shown_names_and_labels_are_invalid_fields() {
    for field in [
        "team",
        "product",
        "pipeline",
        "repository",
        "branch",
        "runner_class",
        "source",
        "build_id",
        "event_id",
    ] {
        for bad in ["a\u{0}b", "a\tb", "line\nbreak", "a\u{1f}", "del\u{7f}"] {
            let e = decode(&with(field, json!(bad))).unwrap_err();
            assert_eq!(e.reason, RejectReason::InvalidField, "{field} {bad:?}");
            assert!(
                e.detail.contains(field) && e.detail.contains("U+"),
                "{}",
                e.detail
            );
        }
    }
    let e = decode(&with("labels", json!({"env": "prod\r"}))).unwrap_err();
    assert_eq!(e.reason, RejectReason::InvalidField);
    assert!(e.detail.contains("labels.env"), "{}", e.detail);
    let e = decode(&with("labels", json!({"a\u{1b}[31m": "x"}))).unwrap_err();
    assert_eq!(e.reason, RejectReason::InvalidField);
    // Text that is not a name keeps its newlines and tabs; other characters are fine.
    let mut v = with("log_excerpt", json!("error: x\n\tat line 3\r\n"));
    v["pipeline"] = json!("build · tëst ✓");
    assert!(decode(&v).is_ok());
    // A control character outranks a time rule (invalid_field comes first).
    let mut v = with("team", json!("a\u{7}"));
    v["finished_at"] = json!("2020-01-01T00:00:00Z");
    assert_eq!(reason(&v), Some(RejectReason::InvalidField));
}

#[test]
fn builds_older_than_the_retention_are_invalid_timestamps() {
    let decoder = Decoder::new(
        DEFAULT_MAX_EVENT_BYTES,
        Pseudonymiser::new(b"test-key").unwrap(),
        Classifier::builtin().unwrap(),
    )
    .with_retention_days(30);
    let at = |finished: &str| {
        let mut v = valid();
        v["queued_at"] = json!(null);
        v["started_at"] = json!(finished);
        v["finished_at"] = json!(finished);
        decoder.decode(v.to_string().as_bytes(), now())
    };
    // now() is 2026-11-02T12:00Z: 30 days before is 2026-10-03T12:00Z.
    let e = at("2026-10-03T11:59:59Z").unwrap_err();
    assert_eq!(e.reason, RejectReason::InvalidTimestamp);
    assert!(e.detail.contains("retention"), "{}", e.detail);
    assert!(
        at("2026-10-03T12:00:00Z").is_ok(),
        "exactly at the edge is kept"
    );
    // Without a retention (the decoder's default) nothing is too old.
    let mut v = valid();
    v["queued_at"] = json!(null);
    v["started_at"] = json!("2020-01-01T00:00:00Z");
    v["finished_at"] = json!("2020-01-01T00:10:00Z");
    assert!(decode(&v).is_ok());
}

mod delivery_kinds {
    use super::*;

    fn deployment() -> Value {
        json!({
            "schema_version": 1,
            "type": "deployment",
            "event_id": "dep-1",
            "source": "argocd",
            "repository": "acme/checkout",
            "commit": "9f2c1e0",
            "environment": " Production ",
            "team": " Payments ",
            "status": "success",
            "author": "Jane.Doe@acme.example",
            "started_at": "2026-11-02T10:00:00Z",
            "finished_at": "2026-11-02T10:05:00Z",
            "correlation_ids": ["PAY-2", "PAY-1", "PAY-2"]
        })
    }

    fn request() -> Value {
        json!({
            "schema_version": 1,
            "type": "request",
            "event_id": "jira-PAY-1",
            "source": "jira",
            "correlation_id": "PAY-1",
            "requested_at": "2026-10-20T08:00:00Z",
            "title": "Let customers pay by invoice",
            "reporter": "Jane.Doe@acme.example",
            "team": "Payments"
        })
    }

    fn event(v: &Value) -> Result<Event, Rejection> {
        decoder().decode(v.to_string().as_bytes(), now())
    }

    fn set(mut v: Value, field: &str, value: Value) -> Value {
        v[field] = value;
        v
    }

    fn drop(mut v: Value, field: &str) -> Value {
        v.as_object_mut().unwrap().remove(field);
        v
    }

    #[test]
    fn a_deployment_is_normalised_and_keeps_no_author() {
        let Ok(Event::Deployment(d)) = event(&deployment()) else {
            panic!("not a deployment");
        };
        assert_eq!(d.environment, "production");
        assert_eq!(d.team, "payments");
        assert_eq!(d.product, "unassigned");
        assert_eq!(d.status, DeploymentStatus::Success);
        assert_eq!(d.correlation_ids, ["PAY-1", "PAY-2"]);
        assert!(!format!("{d:?}").contains("Jane"));
    }

    #[test]
    fn a_request_keeps_its_id_and_instant_only() {
        let Ok(Event::Request(r)) = event(&request()) else {
            panic!("not a request");
        };
        assert_eq!(r.correlation_id, "PAY-1");
        assert_eq!(r.team.as_deref(), Some("payments"));
        assert_eq!(r.product, None);
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("Jane") && !shown.contains("invoice"),
            "{shown}"
        );
    }

    #[test]
    fn the_type_is_checked_before_any_required_field() {
        for bad in [json!("deploy"), json!(3), json!(["build"]), json!("Build")] {
            let v = json!({"schema_version": 1, "type": bad});
            let r = event(&v).unwrap_err();
            assert_eq!(r.reason, RejectReason::InvalidField, "{bad}");
            assert!(r.detail.contains("`type`"), "{}", r.detail);
        }
        // Before the type: the version.
        let v = json!({"schema_version": 2, "type": "nonsense"});
        assert_eq!(
            event(&v).unwrap_err().reason,
            RejectReason::UnsupportedVersion
        );
        // An explicit build is a build.
        let v = set(valid(), "type", json!("build"));
        assert!(matches!(event(&v), Ok(Event::Build(_))));
    }

    #[test]
    fn bad_deployments_and_requests_each_get_their_reason() {
        use RejectReason::*;
        let cases = [
            (drop(deployment(), "commit"), MissingField),
            (drop(deployment(), "environment"), MissingField),
            (set(deployment(), "finished_at", Value::Null), MissingField),
            (
                set(deployment(), "status", json!("cancelled")),
                InvalidField,
            ),
            (set(deployment(), "environment", json!("  ")), InvalidField),
            (
                set(deployment(), "environment", json!("prod\u{7}")),
                InvalidField,
            ),
            (set(deployment(), "commit", json!("")), InvalidField),
            (
                set(deployment(), "correlation_ids", json!("PAY-1")),
                InvalidField,
            ),
            (
                set(deployment(), "correlation_ids", json!([""])),
                InvalidField,
            ),
            (
                set(deployment(), "correlation_ids", json!([1])),
                InvalidField,
            ),
            (
                set(deployment(), "correlation_ids", json!(vec!["A-1"; 101])),
                InvalidField,
            ),
            (
                set(deployment(), "started_at", json!("2026-11-02T10:06:00Z")),
                InvalidTimestamp,
            ),
            (
                set(deployment(), "finished_at", json!("2026-11-02T13:00:01Z")),
                InvalidTimestamp,
            ),
            (
                set(deployment(), "finished_at", json!("yesterday")),
                InvalidTimestamp,
            ),
            (drop(request(), "correlation_id"), MissingField),
            (drop(request(), "requested_at"), MissingField),
            (
                set(request(), "correlation_id", json!("x".repeat(257))),
                InvalidField,
            ),
            (set(request(), "team", json!(" ")), InvalidField),
            (
                set(request(), "requested_at", json!("2026-11-02T13:00:01Z")),
                InvalidTimestamp,
            ),
        ];
        for (v, expected) in cases {
            assert_eq!(event(&v).err().map(|r| r.reason), Some(expected), "{v}");
        }
        assert!(event(&set(
            deployment(),
            "correlation_ids",
            json!(vec!["A-1"; 100])
        ))
        .is_ok());
    }

    #[test]
    fn events_older_than_the_retention_are_invalid_timestamps_for_every_kind() {
        let d = Decoder::new(
            DEFAULT_MAX_EVENT_BYTES,
            Pseudonymiser::new(b"k").unwrap(),
            Classifier::builtin().unwrap(),
        )
        .with_retention_days(20);
        let old = "2026-10-01T00:00:00Z";
        for v in [
            set(drop(deployment(), "started_at"), "finished_at", json!(old)),
            set(request(), "requested_at", json!(old)),
        ] {
            let r = d.decode(v.to_string().as_bytes(), now()).unwrap_err();
            assert_eq!(r.reason, RejectReason::InvalidTimestamp);
            assert!(r.detail.contains("retention"), "{}", r.detail);
        }
        assert!(d.decode(request().to_string().as_bytes(), now()).is_ok());
    }

    #[test]
    fn builds_carry_their_request_ids_and_never_their_change_title() {
        let v = set(
            set(
                set(valid(), "branch", json!("feature/PAY-123-fix")),
                "change_title",
                json!("[OPS-7] Fix\n\tthe cart (abcXPAY-1, pay-12)"),
            ),
            "correlation_id",
            json!("pay-bulk"),
        );
        let row = decode(&v).unwrap();
        assert_eq!(row.request_ids, ["OPS-7", "PAY-123", "pay-bulk"]);
        assert!(!format!("{row:?}").contains("Fix"));
        assert_eq!(
            reason(&with("change_title", json!("x".repeat(1025)))),
            Some(RejectReason::InvalidField)
        );
        assert_eq!(
            reason(&with("change_title", json!(""))),
            Some(RejectReason::InvalidField)
        );
        assert!(decode(&with("change_title", json!("x".repeat(1024)))).is_ok());
    }
}
