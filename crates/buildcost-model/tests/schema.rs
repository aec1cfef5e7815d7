//! The JSON Schema in `schemas/` and the decoder agree on the example events beside it.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::PathBuf;

use buildcost_model::{Classifier, Decoder, Pseudonymiser, RejectReason};
use chrono::{TimeZone, Utc};
use serde_json::Value;

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

fn examples() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(schemas_dir().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn schema_and_decoder_agree_on_every_example() {
    let schema: Value =
        serde_json::from_slice(&std::fs::read(schemas_dir().join("build-event.v1.json")).unwrap())
            .unwrap();
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let decoder = Decoder::new(
        65536,
        Pseudonymiser::new(b"k").unwrap(),
        Classifier::builtin().unwrap(),
    );
    let now = Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap();
    let examples = examples();
    assert!(examples.len() >= 12, "examples are missing");
    for (name, bytes) in examples {
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        let schema_ok = validator.is_valid(&value);
        let decoded = decoder.decode(&bytes, now);
        if name.starts_with("valid-") {
            assert!(
                schema_ok,
                "{name} should satisfy the schema: {:?}",
                validator
                    .iter_errors(&value)
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
            );
            assert!(decoded.is_ok(), "{name} should decode: {:?}", decoded.err());
        } else {
            assert!(!schema_ok, "{name} should break the schema");
            let reason = decoded.expect_err("invalid example decoded").reason;
            let expected = match name
                .trim_start_matches("invalid-")
                .trim_end_matches(".json")
            {
                "status" | "deployment-status" | "type" => RejectReason::InvalidField,
                "missing-team" | "request-missing-id" => RejectReason::MissingField,
                "version" => RejectReason::UnsupportedVersion,
                "timestamp" => RejectReason::InvalidTimestamp,
                other => panic!("no expected reason for example `{other}`"),
            };
            assert_eq!(reason, expected, "{name}");
        }
    }
}
